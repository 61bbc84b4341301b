using System.CommandLine;
using System.Text.Json;
using Tripline.Capture.Flows;
using Tripline.Capture.Sources;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Kubernetes;
using Tripline.Correlation.Manifests;
using Tripline.Export;
using Tripline.Hosting;
using Tripline.Records;

namespace Tripline.Cli;

/// <summary>
/// What the offline analyses (<c>whatif</c>, <c>recommend</c>, <c>report</c>) read: the cluster (manifests, or the API server's lists
/// read once) and the traffic (flow logs as <c>tripline flows</c> reads them, or captures replayed into the records the
/// flow log would hold). One way to read both, so that every analysis sees the same records.
/// </summary>
internal static class OfflineInput
{
    /// <summary>The usage problems of the traffic and cluster options, each naming its option.</summary>
    public static void Validate(IReadOnlyList<string> flowLogs, IReadOnlyList<string> pcaps, IReadOnlyList<string> manifests, string? kubeconfig, List<string> problems)
    {
        if ((flowLogs.Count > 0) == (pcaps.Count > 0)) problems.Add("give the traffic: --flow-log or --pcap (one of them)");
        foreach (string path in flowLogs.Where(p => !File.Exists(p) && !Directory.Exists(p))) problems.Add($"--flow-log: no such file or directory: {path}");
        foreach (string path in pcaps.Where(p => p != "-" && !File.Exists(p))) problems.Add($"--pcap: no such file: {path}");
        if (manifests.Count > 0 && kubeconfig is not null) problems.Add("--manifests and --kubeconfig exclude each other: the cluster comes from one source");
    }

    /// <summary>The cluster as it is: manifests, or the API server's lists (read once).</summary>
    public static bool TryLoadCluster(IReadOnlyList<string> manifests, string? kubeconfig, string command, TextWriter stderr, CancellationToken cancellationToken, out ClusterSnapshot snapshot)
    {
        snapshot = ClusterSnapshot.Empty;
        if (manifests.Count > 0)
        {
            var loaded = ManifestLoader.Load(manifests);
            foreach (var error in loaded.Errors) stderr.WriteLine($"tripline {command}: manifest error: {error}");
            if (loaded.FilesRead == 0)
            {
                stderr.WriteLine($"tripline {command}: --manifests: no .yaml, .yml or .json files found");
                return false;
            }
            snapshot = loaded.Snapshot;
            return true;
        }
        try
        {
            var source = new KubernetesClusterSource(new KubernetesSourceOptions { KubeconfigPath = kubeconfig });
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
            stderr.WriteLine($"tripline {command}: the cluster: {e.Message}{(kubeconfig is null ? " (pass --kubeconfig or --manifests)" : "")}");
            return false;
        }
    }

    /// <summary>
    /// Hands every record of the traffic to <paramref name="onLine"/>: each line of the flow logs (rotated and gzipped
    /// files included, oldest first), or, for captures, each flow's end record as replay would write it against
    /// <paramref name="cluster"/>. Returns an exit code: a damaged archive is reported and skipped, a read that fails is a
    /// runtime failure.
    /// </summary>
    public static int ReadTraffic(IReadOnlyList<string> flowLogs, IReadOnlyList<string> pcaps, ClusterSnapshot cluster, string node, FlowLineHandler onLine,
        string command, TextWriter stderr, CancellationToken cancellationToken)
    {
        try
        {
            if (flowLogs.Count == 0) return ReplayCaptures(pcaps, cluster, node, onLine, command, stderr, cancellationToken);
            foreach (string file in flowLogs.SelectMany(FlowLogReader.ListFiles))
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
                    stderr.WriteLine($"tripline {command}: {file}: {e.Message}");
                }
            }
            return ExitCodes.Success;
        }
        catch (IOException e)
        {
            stderr.WriteLine($"tripline {command}: {e.Message}");
            return ExitCodes.RuntimeFailure;
        }
    }

    /// <summary>Captures: the flows replay would record, as records.</summary>
    private static int ReplayCaptures(IReadOnlyList<string> pcaps, ClusterSnapshot cluster, string node, FlowLineHandler onLine, string command, TextWriter stderr, CancellationToken cancellationToken)
    {
        using var state = new ClusterState(new ManifestClusterSource(new ManifestLoadResult(cluster, [], new Dictionary<string, int>(), 1)));
        var records = new RecordLines(onLine);
        var pipeline = new FlowPipeline(new PcapFileSource([.. pcaps]), state, new FlowTableOptions(), [records], node);
        try
        {
            pipeline.RunToEnd(cancellationToken);
        }
        catch (InvalidOperationException e)
        {
            stderr.WriteLine($"tripline {command}: {e.Message}");
            return ExitCodes.RuntimeFailure;
        }
        return ExitCodes.Success;
    }

    /// <summary>Each flow's end event as the record the flow log would hold, handed to the line handler.</summary>
    private sealed class RecordLines(FlowLineHandler onLine) : IFlowExporter
    {
        private readonly System.Buffers.ArrayBufferWriter<byte> _buffer = new(4096);
        private Utf8JsonWriter? _writer;

        public void Export(in FlowEvent flowEvent, in FlowJudgement judgement, FlowContext context)
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

/// <summary>The options of the offline analyses' inputs, declared once: the traffic, the cluster and the node replay writes.</summary>
internal sealed class OfflineInputOptionSet
{
    private readonly Option<string[]> _flowLog = EnvironmentDefaults.List("--flow-log", "flow-log files or directories (rotated and gzipped included), from one node or many");
    private readonly Option<string[]> _pcap = EnvironmentDefaults.List("--pcap", "capture files instead of flow logs");
    private readonly Option<string[]> _manifests;
    private readonly Option<string?> _kubeconfig;
    private readonly Option<string> _node = EnvironmentDefaults.Node();

    public OfflineInputOptionSet(string cluster)
    {
        _manifests = EnvironmentDefaults.List("--manifests", $"{cluster}, from manifest files or directories");
        _kubeconfig = EnvironmentDefaults.String("--kubeconfig", $"{cluster}, from the API server (in-cluster when neither this nor --manifests is given)");
    }

    public void AddTo(Command command)
    {
        command.Add(_flowLog);
        command.Add(_pcap);
        command.Add(_manifests);
        command.Add(_kubeconfig);
        command.Add(_node);
    }

    public (IReadOnlyList<string> FlowLogs, IReadOnlyList<string> Pcaps, IReadOnlyList<string> Manifests, string? Kubeconfig, string Node) Bind(ParseResult parse) =>
        (parse.GetValue(_flowLog) ?? [], parse.GetValue(_pcap) ?? [], parse.GetValue(_manifests) ?? [], parse.GetValue(_kubeconfig), parse.GetValue(_node) ?? Environment.MachineName);
}
