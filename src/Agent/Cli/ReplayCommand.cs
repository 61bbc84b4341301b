using System.CommandLine;
using System.Diagnostics;
using Tripline.Capture.Flows;
using Tripline.Capture.Sources;
using Tripline.Correlation.Manifests;
using Tripline.Export;
using Tripline.Hosting;

namespace Tripline.Cli;

/// <summary><c>tripline replay</c>: reads captures once, judges every flow, writes the flow log, prints a summary.</summary>
internal static class ReplayCommand
{
    public static Command Create()
    {
        var pcap = EnvironmentDefaults.List("--pcap", "capture files (pcap or pcapng) to read in order; '-' reads standard input");
        var manifests = EnvironmentDefaults.List("--manifests", "manifest files or directories (YAML/JSON, multi-document, kind: List)");
        var flowLog = EnvironmentDefaults.String("--flow-log", "write the flow log (JSON lines) to this file, or '-' for standard output");
        var node = EnvironmentDefaults.Node();
        var failOnDeny = EnvironmentDefaults.Flag("--fail-on-deny", "exit with code 3 when a denied flow was seen");
        var maxFlows = new Option<int>("--max-flows") { Description = "most flows held at once [env: TRIPLINE_MAX_FLOWS]" };
        maxFlows.DefaultValueFactory = _ => int.TryParse(Environment.GetEnvironmentVariable("TRIPLINE_MAX_FLOWS"), out int n) ? n : 262_144;
        var updateInterval = new Option<int>("--update-interval") { Description = "seconds between update records of a live flow [env: TRIPLINE_UPDATE_INTERVAL]" };
        updateInterval.DefaultValueFactory = _ => int.TryParse(Environment.GetEnvironmentVariable("TRIPLINE_UPDATE_INTERVAL"), out int n) ? n : 60;

        // A replay writes one file with no retention to protect: no rate limit unless asked, to see a flood as live capture would.
        var rateLimit = ExportOptionSet.RateLimitOption(fallback: "0");
        var rateBurst = ExportOptionSet.RateBurstOption();

        var command = new Command("replay", "Read capture files once, judge every flow against the manifests' NetworkPolicies, write the flow log and a summary.")
        {
            pcap, manifests, flowLog, node, failOnDeny, maxFlows, updateInterval, rateLimit, rateBurst,
        };
        command.SetAction(parse =>
        {
            var bad = new List<string>();
            var (rate, burst) = ExportOptionSet.Rate(parse, rateLimit, rateBurst, bad);
            var flowLogOptions = new FlowLogOptions { RateLimit = rate, RateBurst = burst };
            bad.AddRange(flowLogOptions.Validate());
            foreach (string problem in bad) Console.Error.WriteLine("tripline replay: " + problem);
            if (bad.Count > 0) return ExitCodes.BadUsage;
            return Run(new ReplayOptions(
                parse.GetValue(pcap) ?? [],
                parse.GetValue(manifests) ?? [],
                parse.GetValue(flowLog),
                parse.GetValue(node) ?? Environment.MachineName,
                parse.GetValue(failOnDeny),
                parse.GetValue(maxFlows),
                parse.GetValue(updateInterval),
                flowLogOptions));
        });
        return command;
    }

    /// <summary><paramref name="FlowLogOptions"/>: only its rate limit applies (a replay writes one file); none by default.</summary>
    internal sealed record ReplayOptions(string[] Pcaps, string[] Manifests, string? FlowLog, string Node, bool FailOnDeny, int MaxFlows, int UpdateIntervalSeconds,
        FlowLogOptions? FlowLogOptions = null);

    internal static int Run(ReplayOptions options, TextWriter? stdout = null, TextWriter? stderr = null, CancellationToken cancellationToken = default)
    {
        stdout ??= Console.Out;
        stderr ??= Console.Error;

        var problems = new List<string>();
        if (options.Pcaps.Length == 0) problems.Add("--pcap: at least one capture file is required");
        foreach (string pcapPath in options.Pcaps)
        {
            if (pcapPath != "-" && !File.Exists(pcapPath)) problems.Add($"--pcap: no such file: {pcapPath}");
        }
        if (options.Pcaps.Count(p => p == "-") > 1) problems.Add("--pcap: standard input ('-') can be read only once");
        if (options.Manifests.Length == 0) problems.Add("--manifests: at least one file or directory is required");
        foreach (string manifestPath in options.Manifests)
        {
            if (!File.Exists(manifestPath) && !Directory.Exists(manifestPath)) problems.Add($"--manifests: no such file or directory: {manifestPath}");
        }
        var tableOptions = new FlowTableOptions { MaxFlows = options.MaxFlows, UpdateInterval = TimeSpan.FromSeconds(options.UpdateIntervalSeconds) };
        problems.AddRange(tableOptions.Validate().Select(p => "--max-flows/--update-interval: " + p));
        if (options.FlowLog is { } logPath && logPath != "-" && Path.GetDirectoryName(Path.GetFullPath(logPath)) is { } dir && !Directory.Exists(dir))
        {
            problems.Add($"--flow-log: directory does not exist: {dir}");
        }
        if (problems.Count > 0)
        {
            foreach (string problem in problems) stderr.WriteLine("tripline replay: " + problem);
            return ExitCodes.BadUsage;
        }

        // Manifests load on the thread pool while packets are read; verdicts wait for them (FlowPipeline.RunToEnd).
        var manifests = ManifestClusterSource.StartLoading(options.Manifests);

        bool logToStdout = options.FlowLog == "-";
        TextWriter summaryOut = logToStdout ? stderr : stdout;
        var exporters = new List<IFlowExporter>();
        FlowLogExporter? flowLog = null;
        IFlowExporter? flowLogTop = null;
        if (options.FlowLog is { } path)
        {
            IFlowLogOutput output;
            try
            {
                output = logToStdout
                    ? new StreamFlowLogOutput(Tripline.Cli.StandardStreams.OpenOutput(), ownsStream: true)
                    : new SingleFileOutput(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                stderr.WriteLine($"tripline replay: --flow-log: cannot write {path}: {e.Message}");
                return ExitCodes.BadUsage;
            }
            flowLog = new FlowLogExporter(output);
            flowLogTop = AggregatingFlowLog.Wrap(flowLog, new FlowLogOptions { RateLimit = options.FlowLogOptions?.RateLimit ?? 0, RateBurst = options.FlowLogOptions?.RateBurst ?? 2000 });
            exporters.Add(flowLogTop);
        }
        var summary = new ReplaySummary();
        exporters.Add(summary);

        using var cluster = new ClusterState(manifests);
        var source = new PcapFileSource(options.Pcaps);
        var pipeline = new FlowPipeline(source, cluster, tableOptions, exporters, options.Node);

        // SIGTERM or Ctrl-C: reading stops, and what was read is judged and written before the summary.
        using var stop = new StopSignal(cancellationToken);
        var stopwatch = Stopwatch.StartNew();
        using var progress = new ProgressReporter(source, stopwatch, stderr);
        try
        {
            pipeline.RunToEnd(stop.Token);
        }
        catch (InvalidOperationException e)
        {
            stderr.WriteLine("tripline replay: " + e.Message);
            return ExitCodes.RuntimeFailure;
        }
        finally
        {
            progress.Dispose();
            (flowLogTop as IDisposable)?.Dispose();
        }
        stopwatch.Stop();

        if (manifests.Loading.IsFaulted)
        {
            stderr.WriteLine("tripline replay: cannot load manifests: " + manifests.Loading.Exception!.GetBaseException().Message);
            return ExitCodes.RuntimeFailure;
        }
        // Still loading only when the replay was interrupted; its verdicts were then held back, not judged partially.
        if (manifests.Loading.IsCompletedSuccessfully)
        {
            foreach (var error in manifests.Loading.Result.Errors) stderr.WriteLine("tripline replay: manifest error: " + error);
        }
        foreach (var error in source.FileErrors) stderr.WriteLine("tripline replay: " + error.Message);
        if (stop.Reason is { } reason) stderr.WriteLine($"tripline replay: stopped ({reason}): everything read before the stop was judged and written; flows still open ended with end_reason shutdown");
        summaryOut.Write(summary.Render(source.Counters, pipeline.Table.Stats, stopwatch.Elapsed, options.Pcaps.Length));
        if (flowLogTop is AggregatingFlowLog folding && folding.FlowsAggregated > 0)
        {
            summaryOut.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"  flow log  {flowLog!.RecordsWritten:N0} records written; {folding.FlowsAggregated:N0} flows folded into {folding.AggregatesWritten:N0} aggregate records (rate limit {folding.Budget!.RecordsPerSecond:N0}/s, burst {folding.Budget.Burst:N0}), {flowLog.Folded(FoldReason.Update):N0} updates left to their end records"));
        }
        if (flowLog is { RecordsLost: > 0 })
        {
            stderr.WriteLine($"tripline replay: {flowLog.RecordsLost} flow-log records could not be written: {flowLog.LastError}");
        }

        if (options.FailOnDeny && summary.Denied > 0) return ExitCodes.DeniedFlows;
        // A replay stopped before the end of its captures did not judge everything: not a success for a CI gate.
        if (source.FileErrors.Count > 0 || flowLog is { RecordsLost: > 0 } || stop.Reason is not null) return ExitCodes.RuntimeFailure;
        return ExitCodes.Success;
    }

    /// <summary>A progress line on standard error, only for inputs that take more than a couple of seconds.</summary>
    private sealed class ProgressReporter : IDisposable
    {
        private readonly Timer _timer;
        private readonly PcapFileSource _source;
        private readonly Stopwatch _stopwatch;
        private readonly TextWriter _stderr;
        private bool _printed;

        public ProgressReporter(PcapFileSource source, Stopwatch stopwatch, TextWriter stderr)
        {
            _source = source;
            _stopwatch = stopwatch;
            _stderr = stderr;
            _timer = new Timer(_ => Report(), null, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(1));
        }

        private void Report()
        {
            long read = _source.BytesRead;
            long total = _source.TotalBytes;
            long frames = Volatile.Read(ref _source.Counters.Frames);
            string share = total > 0 ? $"{100.0 * read / total:F0}% " : "";
            lock (_stderr)
            {
                _stderr.Write($"\rreplay: {share}{read / (1024 * 1024)} MiB, {frames:N0} packets, {_stopwatch.Elapsed.TotalSeconds:F0} s   ");
                _printed = true;
            }
        }

        public void Dispose()
        {
            _timer.Dispose();
            lock (_stderr)
            {
                if (_printed) _stderr.WriteLine();
                _printed = false;
            }
        }
    }
}
