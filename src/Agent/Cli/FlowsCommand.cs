using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Tripline.Export;
using Tripline.Records;

namespace Tripline.Cli;

/// <summary>
/// <c>tripline flows</c>: answers a responder's question from the flow logs on the node (rotated and gzipped files
/// included), streaming, so memory stays flat however large the log. Filters are those of <c>/api/v1/flows</c>.
/// </summary>
internal static class FlowsCommand
{
    public static Command Create()
    {
        var flowLog = EnvironmentDefaults.String("--flow-log", "flow-log file, or directory of rotated logs (.log, .log.gz)");
        var output = EnvironmentDefaults.String("--output", "table or json (the matching records as JSON lines)", "table");
        var follow = EnvironmentDefaults.Flag("--follow", "after reading, keep printing new records of the live file");
        var agent = EnvironmentDefaults.String("--agent", "ask a running agent instead of reading files (https://NODE:9477): its recent flows, same filters");
        var tokenFile = EnvironmentDefaults.String("--token-file", "with --agent: a file holding the bearer token (default: the pod's service account token, when there is one)");
        var caFile = EnvironmentDefaults.String("--ca-file", "with --agent: PEM certificates to trust for the agent (its CA, or its own certificate to pin)");
        var insecure = EnvironmentDefaults.Flag("--insecure-skip-tls-verify", "with --agent: accept any certificate (the agent's self-signed one, unpinned)");

        var command = new Command("flows", "Query flow logs (rotated and compressed files included) for incident response.")
        {
            flowLog, output, follow, agent, tokenFile, caFile, insecure,
        };
        var filters = new Tripline.Records.FlowFilterOptionSet();
        filters.AddTo(command);
        command.SetAction((parse, cancellationToken) => Task.FromResult(RunUntilStopped(new FlowsOptions(
            parse.GetValue(flowLog),
            filters.Bind(parse),
            parse.GetValue(output) ?? "table",
            parse.GetValue(follow))
        {
            Agent = parse.GetValue(agent) is { Length: > 0 } url ? url : null,
            TokenFile = parse.GetValue(tokenFile) is { Length: > 0 } token ? token : null,
            CaFile = parse.GetValue(caFile) is { Length: > 0 } ca ? ca : null,
            InsecureSkipTlsVerify = parse.GetValue(insecure),
        }, cancellationToken)));
        return command;
    }

    /// <summary>SIGTERM or Ctrl-C ends a query (a follow, usually) after what was read is printed and flushed.</summary>
    private static int RunUntilStopped(FlowsOptions options, CancellationToken cancellationToken)
    {
        using var stop = new Tripline.Hosting.StopSignal(cancellationToken);
        return Run(options, StandardStreams.OpenOutput(), Console.Error, TimeProvider.System, stop.Token);
    }

    internal sealed record FlowsOptions(string? FlowLog, FlowFilterOptions Filter, string Output, bool Follow)
    {
        /// <summary>A running agent's base address: its <c>/api/v1/flows</c> is read instead of files.</summary>
        public string? Agent { get; init; }
        public string? TokenFile { get; init; }
        public string? CaFile { get; init; }
        public bool InsecureSkipTlsVerify { get; init; }
    }

    /// <summary>What a query read, for the closing line on standard error and for tests.</summary>
    internal sealed class QueryStats
    {
        public int Files;
        public long Records;
        public long Matched;
        public long Corrupt;
    }

    internal static int Run(FlowsOptions options, Stream stdout, TextWriter stderr, TimeProvider time, CancellationToken cancellationToken, QueryStats? stats = null)
    {
        stats ??= new QueryStats();
        var problems = new List<string>();
        if (options.Agent is not null)
        {
            if (options.FlowLog is not null) problems.Add("--agent and --flow-log exclude each other: flows come from one place");
        }
        else if (options.TokenFile is not null || options.CaFile is not null || options.InsecureSkipTlsVerify)
        {
            problems.Add("--token-file, --ca-file and --insecure-skip-tls-verify go with --agent");
        }
        else if (string.IsNullOrEmpty(options.FlowLog)) problems.Add($"--flow-log: a file or directory is required (or {EnvironmentDefaults.VariableName("--flow-log")})");
        else if (!File.Exists(options.FlowLog) && !Directory.Exists(options.FlowLog)) problems.Add($"--flow-log: no such file or directory: {options.FlowLog}");
        if (options.Output is not ("table" or "json")) problems.Add($"--output: '{options.Output}' is not table or json");
        FlowFilter.TryCreate(options.Filter, time.GetUtcNow(), out var filter, out var filterProblems);
        problems.AddRange(filterProblems);
        if (problems.Count > 0)
        {
            foreach (string problem in problems) stderr.WriteLine("tripline flows: " + problem);
            return ExitCodes.BadUsage;
        }

        using var output = new BufferedStream(stdout, 1 << 16);
        var printer = new Printer(output, options.Output == "json");
        FlowLineHandler onLine = line =>
        {
            if (line.Trim(" \t\r"u8).IsEmpty) return;
            stats.Records++;
            switch (filter.Evaluate(line))
            {
                case FilterResult.Match:
                    stats.Matched++;
                    printer.Print(line);
                    break;
                case FilterResult.Corrupt:
                    stats.Corrupt++;
                    break;
            }
        };

        if (options.Agent is not null)
        {
            int code = RemoteFlows.Read(options, onLine, output, stderr, cancellationToken);
            if (code != ExitCodes.Success) return code;
            stats.Files = 0;
            printer.Finish();
            output.Flush();
            stderr.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"tripline flows: {stats.Matched:N0} of {stats.Records:N0} records matched from {options.Agent}{(stats.Corrupt > 0 ? $"; {stats.Corrupt:N0} damaged line(s) skipped" : "")}"));
            return ExitCodes.Success;
        }

        IReadOnlyList<string> files;
        try
        {
            files = FlowLogReader.ListFiles(options.FlowLog!);
            foreach (string file in files)
            {
                if (cancellationToken.IsCancellationRequested) break;
                stats.Files++;
                try
                {
                    if (options.Follow && file == files[^1] && !file.EndsWith(".gz", StringComparison.Ordinal)) break;
                    FlowLogReader.ReadFile(file, onLine);
                }
                catch (FileNotFoundException)
                {
                    // Rotated away (and compressed or deleted by retention) while listed: its successor is in the list.
                }
                catch (InvalidDataException e)
                {
                    stderr.WriteLine($"tripline flows: {file}: {e.Message}");
                }
            }
            if (options.Follow)
            {
                string live = files.Count > 0 && !files[^1].EndsWith(".gz", StringComparison.Ordinal)
                    ? files[^1]
                    : RotatingFileOutput.ResolveActivePath(options.FlowLog!);
                Follow(live, onLine, output, cancellationToken);
            }
        }
        catch (IOException e)
        {
            output.Flush();
            stderr.WriteLine($"tripline flows: --flow-log: {e.Message}");
            return ExitCodes.RuntimeFailure;
        }
        printer.Finish();
        output.Flush();
        stderr.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"tripline flows: {stats.Matched:N0} of {stats.Records:N0} records matched in {stats.Files} file(s){(stats.Corrupt > 0 ? $"; {stats.Corrupt:N0} damaged line(s) skipped" : "")}"));
        return ExitCodes.Success;
    }

    /// <summary>Like <c>tail -F</c>: reads the live file from its start, then what is appended; reopens it after a rotation.</summary>
    private static void Follow(string path, FlowLineHandler onLine, Stream output, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            FileStream stream;
            try
            {
                stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16);
            }
            catch (FileNotFoundException)
            {
                cancellationToken.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(250));
                continue;
            }
            using (stream)
            {
                var lines = new LineReader(stream);
                while (!cancellationToken.IsCancellationRequested)
                {
                    bool any = false;
                    while (lines.TryReadLine(out var line, final: false))
                    {
                        onLine(line);
                        any = true;
                    }
                    if (any) output.Flush();
                    // Rotated: the path now names a new, shorter file; what is left of the old one was read above.
                    if (!File.Exists(path) || new FileInfo(path).Length < lines.BytesConsumed) break;
                    cancellationToken.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(200));
                }
            }
        }
    }

    /// <summary>A readable table (one row per record), or the records themselves as JSON lines.</summary>
    private sealed class Printer(Stream output, bool json)
    {
        private bool _headerWritten;

        public void Print(ReadOnlySpan<byte> line)
        {
            if (json)
            {
                output.Write(line);
                output.WriteByte((byte)'\n');
                return;
            }
            if (!_headerWritten)
            {
                Write(Row("TIME", "EVENT", "VERDICT", "ENFORCEMENT", "PROTO", "SOURCE", "DESTINATION", "POLICIES"));
                _headerWritten = true;
            }
            var reader = new Utf8JsonReader(line);
            using var record = JsonDocument.ParseValue(ref reader);
            var root = record.RootElement;
            string time = Text(root, "time");
            string evt = Text(root, "event");
            if (evt == "aggregate" && root.TryGetProperty("flows", out var flows)) evt = $"agg×{flows.GetInt64()}";
            else if (evt == "end" && root.TryGetProperty("end_reason", out var reason)) evt = "end/" + reason.GetString();
            Write(Row(time, evt, Text(root, "verdict"), Text(root, "enforcement"), Text(root, "protocol"), Endpoint(root, "src"), Endpoint(root, "dst"), Policies(root)));
        }

        public void Finish()
        {
            if (!json && !_headerWritten) Write("no matching flows\n");
        }

        private void Write(string text) => output.Write(Encoding.UTF8.GetBytes(text));

        private static string Row(string time, string evt, string verdict, string enforcement, string protocol, string src, string dst, string policies) =>
            $"{time,-27}  {evt,-9}  {verdict,-7}  {enforcement,-12}  {protocol,-6}  {src,-40}  {dst,-40}  {policies}\n";

        private static string Text(JsonElement root, string name) =>
            root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString()! : "";

        private static string Endpoint(JsonElement root, string name)
        {
            if (!root.TryGetProperty(name, out var e) || e.ValueKind != JsonValueKind.Object) return "";
            string who = Text(e, "kind") switch
            {
                "pod" when e.TryGetProperty("pod", out var pod) => $"{Text(e, "namespace")}/{pod.GetString()}",
                "pod" => $"{Text(e, "namespace")}/{Text(e, "workload")}",
                "service" => "svc " + Text(e, "service"),
                "node" => "node " + Text(e, "node"),
                _ => Text(e, "ip"),
            };
            return e.TryGetProperty("port", out var port) ? $"{who}:{port.GetRawText()}" : who;
        }

        private static string Policies(JsonElement root)
        {
            var names = new List<string>();
            foreach (string side in new[] { "egress", "ingress" })
            {
                if (root.TryGetProperty(side, out var s) && s.ValueKind == JsonValueKind.Object && s.TryGetProperty("policies", out var list))
                {
                    bool allowed = s.TryGetProperty("allowed", out var a) && a.ValueKind == JsonValueKind.True;
                    foreach (var p in list.EnumerateArray())
                    {
                        names.Add($"{side}:{(allowed ? "" : "!")}{p.GetString()}");
                    }
                }
            }
            return string.Join(' ', names);
        }
    }
}
