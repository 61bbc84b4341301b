using System.CommandLine;
using System.Text.Json;
using Tripline.Capture.Flows;
using Tripline.Capture.Sources;
using Tripline.Cli;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Kubernetes;
using Tripline.Correlation.Manifests;
using Tripline.Export;
using Tripline.Hosting;
using Tripline.Records;

namespace Tripline.WhatIf;

/// <summary>
/// <c>tripline whatif</c> (design.md section 8): judges recorded traffic against the cluster as it is and as it would
/// be after a change, and lists the flows whose verdict the change flips.
/// </summary>
internal static class WhatIfCommand
{
    public static Command Create()
    {
        var flowLog = EnvironmentDefaults.List("--flow-log", "flow-log files or directories (rotated and gzipped included), from one node or many");
        var pcap = EnvironmentDefaults.List("--pcap", "capture files instead of flow logs");
        var manifests = EnvironmentDefaults.List("--manifests", "the cluster as it is, from manifest files or directories");
        var kubeconfig = EnvironmentDefaults.String("--kubeconfig", "the cluster as it is, from the API server (in-cluster when neither this nor --manifests is given)");
        var apply = EnvironmentDefaults.List("--apply", "documents applied as kubectl apply -f would (policies, namespaces, pods)");
        var delete = EnvironmentDefaults.List("--delete", "policies removed: KIND/NAMESPACE/NAME (NetworkPolicy/shop/db), or KIND/NAME for a cluster-scoped kind (ClusterNetworkPolicy/deny-metadata); Calico's as records name them (NetworkPolicy(calico)/shop/db, GlobalNetworkPolicy/name)");
        var node = EnvironmentDefaults.Node();
        var output = EnvironmentDefaults.String("--output", "table or json (one line per changed flow)", "table");
        var failOnBreak = EnvironmentDefaults.Flag("--fail-on-break", "exit 3 when any flow would be newly denied (a CI gate)");
        var filters = new FlowFilterOptionSet();
        var command = new Command("whatif", "What would a policy change break? Judge recorded traffic before and after the change, and list the flows whose verdict flips.")
        {
            flowLog, pcap, manifests, kubeconfig, apply, delete, node, output, failOnBreak,
        };
        filters.AddTo(command);
        command.SetAction((parse, cancellationToken) => Task.FromResult(Run(new WhatIfOptions
        {
            FlowLogs = parse.GetValue(flowLog) ?? [],
            Pcaps = parse.GetValue(pcap) ?? [],
            Manifests = parse.GetValue(manifests) ?? [],
            Kubeconfig = parse.GetValue(kubeconfig),
            Apply = parse.GetValue(apply) ?? [],
            Delete = parse.GetValue(delete) ?? [],
            Node = parse.GetValue(node) ?? Environment.MachineName,
            Output = parse.GetValue(output) ?? "table",
            FailOnBreak = parse.GetValue(failOnBreak),
            Filter = filters.Bind(parse),
        }, StandardStreams.OpenOutput(), Console.Error, cancellationToken)));
        return command;
    }

    internal sealed record WhatIfOptions
    {
        public IReadOnlyList<string> FlowLogs { get; init; } = [];
        public IReadOnlyList<string> Pcaps { get; init; } = [];
        public IReadOnlyList<string> Manifests { get; init; } = [];
        public string? Kubeconfig { get; init; }
        public IReadOnlyList<string> Apply { get; init; } = [];
        public IReadOnlyList<string> Delete { get; init; } = [];
        public string Node { get; init; } = "node";
        public string Output { get; init; } = "table";
        public bool FailOnBreak { get; init; }
        public FlowFilterOptions Filter { get; init; } = new();
    }

    internal static int Run(WhatIfOptions options, Stream stdout, TextWriter stderr, CancellationToken cancellationToken = default)
    {
        var problems = new List<string>();
        if ((options.FlowLogs.Count > 0) == (options.Pcaps.Count > 0)) problems.Add("give the traffic: --flow-log or --pcap (one of them)");
        foreach (string path in options.FlowLogs.Where(p => !File.Exists(p) && !Directory.Exists(p))) problems.Add($"--flow-log: no such file or directory: {path}");
        foreach (string path in options.Pcaps.Where(p => p != "-" && !File.Exists(p))) problems.Add($"--pcap: no such file: {path}");
        if (options.Manifests.Count > 0 && options.Kubeconfig is not null) problems.Add("--manifests and --kubeconfig exclude each other: the cluster comes from one source");
        if (options.Output is not ("table" or "json")) problems.Add($"--output: '{options.Output}' is not table or json");
        FlowFilter.TryCreate(options.Filter, DateTimeOffset.UtcNow, out var filter, out var filterProblems);
        problems.AddRange(filterProblems);
        if (problems.Count > 0) return Fail(stderr, problems, ExitCodes.BadUsage);

        // The change first: a document that does not parse fails the run before any traffic is read.
        var change = ProposedChange.Load(options.Apply, options.Delete, problems);
        if (problems.Count > 0) return Fail(stderr, problems, ExitCodes.BadUsage);
        if (!TryLoadCluster(options, stderr, cancellationToken, out var before)) return ExitCodes.BadUsage;
        var after = change.AppliedTo(before, problems);
        if (problems.Count > 0) return Fail(stderr, problems, ExitCodes.BadUsage);

        var analysis = new WhatIfAnalysis(before, after);
        using var output = new BufferedStream(stdout, 1 << 16);
        using var report = new WhatIfReport(output, options.Output == "json");
        FlowLineHandler onLine = line =>
        {
            if (line.Trim(" \t\r"u8).IsEmpty) return;
            report.CountRecord();
            // Without a filter the record is read once, and only as far as its ends and verdict; start and update
            // records are dropped as soon as their event is read.
            bool filtered = !filter.MatchesEverything;
            if (filtered && filter.Evaluate(line) != FilterResult.Match) return;
            if (!FlowRecordFields.TryRead(line, out var record, JudgedEvents, stopAfterVerdict: true)) return;
            if (record.Event.SequenceEqual("aggregate"u8))
            {
                report.SkipAggregate(record.Flows);
                return;
            }
            // A flow once: at its end record, which every flow writes last.
            if (!record.Event.SequenceEqual("end"u8)) return;
            report.Add(in record, analysis.Judge(in record), DestinationPort(record.Destination));
        };
        try
        {
            if (options.FlowLogs.Count > 0)
            {
                foreach (string file in options.FlowLogs.SelectMany(FlowLogReader.ListFiles))
                {
                    if (cancellationToken.IsCancellationRequested) break;
                    try
                    {
                        FlowLogReader.ReadFile(file, onLine);
                    }
                    catch (FileNotFoundException)
                    {
                        // Rotated away while listed.
                    }
                    catch (InvalidDataException e)
                    {
                        stderr.WriteLine($"tripline whatif: {file}: {e.Message}");
                    }
                }
            }
            else
            {
                int code = ReplayCaptures(options, before, onLine, stderr, cancellationToken);
                if (code != ExitCodes.Success) return code;
            }
        }
        catch (IOException e)
        {
            stderr.WriteLine("tripline whatif: " + e.Message);
            return ExitCodes.RuntimeFailure;
        }
        report.Finish(stderr);
        return options.FailOnBreak && report.NewlyDenied > 0 ? ExitCodes.DeniedFlows : ExitCodes.Success;
    }

    /// <summary>Each flow once, at its end record; aggregates are counted.</summary>
    private static readonly EventFilter JudgedEvents = name => name.SequenceEqual("end"u8) || name.SequenceEqual("aggregate"u8);

    private static ReadOnlySpan<byte> DestinationPort(ReadOnlySpan<byte> destination)
    {
        int at = destination.IndexOf("\"port\":"u8);
        if (at < 0) return default;
        var rest = destination[(at + 7)..];
        int end = 0;
        while (end < rest.Length && rest[end] is >= (byte)'0' and <= (byte)'9') end++;
        return rest[..end];
    }

    /// <summary>The cluster as it is: manifests, or the API server's lists (read once).</summary>
    private static bool TryLoadCluster(WhatIfOptions options, TextWriter stderr, CancellationToken cancellationToken, out ClusterSnapshot snapshot)
    {
        snapshot = ClusterSnapshot.Empty;
        if (options.Manifests.Count > 0)
        {
            var loaded = ManifestLoader.Load(options.Manifests);
            foreach (var error in loaded.Errors) stderr.WriteLine("tripline whatif: manifest error: " + error);
            if (loaded.FilesRead == 0)
            {
                stderr.WriteLine("tripline whatif: --manifests: no .yaml, .yml or .json files found");
                return false;
            }
            snapshot = loaded.Snapshot;
            return true;
        }
        try
        {
            var source = new KubernetesClusterSource(new KubernetesSourceOptions { KubeconfigPath = options.Kubeconfig });
            try
            {
                source.StartAsync(cancellationToken).GetAwaiter().GetResult();
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(TimeSpan.FromMinutes(2));
                source.WaitForSyncAsync(timeout.Token).GetAwaiter().GetResult();
                snapshot = source.Current;
                return true;
            }
            finally
            {
                source.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
        }
        catch (Exception e) when (e is ArgumentException or k8s.Exceptions.KubeConfigException or IOException or OperationCanceledException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"tripline whatif: the cluster: {e.Message}{(options.Kubeconfig is null ? " (pass --kubeconfig or --manifests)" : "")}");
            return false;
        }
    }

    /// <summary>Captures: the flows replay would record, as records, judged like a flow log's.</summary>
    private static int ReplayCaptures(WhatIfOptions options, ClusterSnapshot before, FlowLineHandler onLine, TextWriter stderr, CancellationToken cancellationToken)
    {
        using var cluster = new ClusterState(new ManifestClusterSource(new ManifestLoadResult(before, [], new Dictionary<string, int>(), 1)));
        var records = new RecordLines(onLine);
        var pipeline = new FlowPipeline(new PcapFileSource([.. options.Pcaps]), cluster, new FlowTableOptions(), [records], options.Node);
        try
        {
            pipeline.RunToEnd(cancellationToken);
        }
        catch (InvalidOperationException e)
        {
            stderr.WriteLine("tripline whatif: " + e.Message);
            return ExitCodes.RuntimeFailure;
        }
        return ExitCodes.Success;
    }

    private static int Fail(TextWriter stderr, List<string> problems, int code)
    {
        foreach (string problem in problems) stderr.WriteLine("tripline whatif: " + problem);
        return code;
    }

    /// <summary>Each flow event as the record the flow log would hold, handed to the line handler.</summary>
    private sealed class RecordLines(FlowLineHandler onLine) : IFlowExporter
    {
        private readonly System.Buffers.ArrayBufferWriter<byte> _buffer = new(4096);
        private Utf8JsonWriter? _writer;

        public void Export(in FlowEvent flowEvent, in Tripline.Correlation.Cluster.FlowJudgement judgement, FlowContext context)
        {
            if (flowEvent.Kind != FlowEventKind.End) return;
            _buffer.ResetWrittenCount();
            _writer ??= new Utf8JsonWriter(_buffer);
            _writer.Reset(_buffer);
            FlowRecordWriter.Write(_writer, in flowEvent, in judgement, context);
            _writer.Flush();
            onLine(_buffer.WrittenSpan);
        }

        public void Flush()
        {
        }
    }
}
