using System.Net;
using Tripline.Capture.Flows;

namespace Tripline.Hosting;

/// <summary>Everything <c>tripline run</c> is configured with, validated once at start.</summary>
internal sealed record AgentOptions
{
    public string? Kubeconfig { get; init; }
    public IReadOnlyList<string> Manifests { get; init; } = [];
    public IReadOnlyList<string> Interfaces { get; init; } = [];
    public IReadOnlyList<string> Pcaps { get; init; } = [];
    public required string Node { get; init; }
    public string? FlowLog { get; init; }
    public string Listen { get; init; } = ":9090";
    public FlowTableOptions FlowTable { get; init; } = new();
    /// <summary>
    /// Longest time a flow-log record waits in memory before it is written to the file: what a crash (SIGKILL, an OOM
    /// kill) can cost. A write a second costs nothing measurable.
    /// </summary>
    public TimeSpan FlushInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// How long a stop (SIGTERM, SIGINT) may take: past it the agent writes out what it holds, logs and counts what it
    /// could not finish, and exits 1. Well under the DaemonSet's terminationGracePeriodSeconds, so the kubelet's
    /// SIGKILL never lands mid-write.
    /// </summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// With state from the API: how long a flow whose address lies in a pod range, but belongs to no pod the agent
    /// knows yet, waits for the pod to appear (the CNI gives a pod its address before the watch tells the agent).
    /// </summary>
    public TimeSpan AttributionWait { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>Live capture settings; <see cref="Interfaces"/>, when given, replaces its globs.</summary>
    public Tripline.Capture.Live.LiveCaptureOptions LiveCapture { get; init; } = new();
    public Tripline.Export.MetricsOptions Metrics { get; init; } = new();
    /// <summary>Flow records kept in memory for <c>/api/v1/flows</c>.</summary>
    public int RecentFlows { get; init; } = 10_000;
    public Tripline.Export.FlowLogOptions FlowLogOptions { get; init; } = new();
    /// <summary>Staged documents: every flow is judged with them applied as well (design.md section 8).</summary>
    public IReadOnlyList<string> Staged { get; init; } = [];
    /// <summary>TLS and bearer tokens on the listener (design.md section 12).</summary>
    public Tripline.Http.Auth.HttpAuthOptions Http { get; init; } = new();

    /// <summary>Cluster state from manifest files: no API server to review tokens.</summary>
    public bool FromManifests => Manifests.Count > 0;

    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        foreach (string path in Manifests)
        {
            if (!File.Exists(path) && !Directory.Exists(path)) problems.Add($"--manifests: no such file or directory: {path}");
        }
        foreach (string path in Staged)
        {
            if (!File.Exists(path) && !Directory.Exists(path)) problems.Add($"--staged: no such file or directory: {path}");
        }
        foreach (string path in Pcaps)
        {
            if (path != "-" && !File.Exists(path)) problems.Add($"--pcap: no such file: {path}");
        }
        if (Kubeconfig is not null && !File.Exists(Kubeconfig)) problems.Add($"--kubeconfig: no such file: {Kubeconfig}");
        if (Kubeconfig is not null && Manifests.Count > 0) problems.Add("--kubeconfig and --manifests exclude each other: cluster state comes from one source");
        if (Pcaps.Count > 0 && Interfaces.Count > 0) problems.Add("--pcap and --interfaces exclude each other: packets come from one source");
        if (!TryParseListen(Listen, out var listen)) problems.Add($"--listen: '{Listen}' is not ADDR:PORT (for example :9090 or 127.0.0.1:9090)");
        else problems.AddRange(Http.Validate(FromManifests, listen));
        problems.AddRange(FlowTable.Validate().Select(p => "flow table: " + p));
        problems.AddRange(Metrics.Validate());
        if (RecentFlows < 1) problems.Add("--recent-flows: must be at least 1");
        if (FlushInterval < TimeSpan.FromMilliseconds(10) || FlushInterval > TimeSpan.FromMinutes(1)) problems.Add($"--flow-log-flush-interval: must be between 10ms and 1m (was {FlushInterval})");
        if (AttributionWait < TimeSpan.Zero || AttributionWait > TimeSpan.FromMinutes(1)) problems.Add($"--attribution-wait: must be between 0 and 1m (was {AttributionWait})");
        if (ShutdownTimeout < TimeSpan.FromSeconds(1) || ShutdownTimeout > TimeSpan.FromMinutes(10)) problems.Add($"--shutdown-timeout: must be between 1s and 10m (was {ShutdownTimeout})");
        problems.AddRange(FlowLogOptions.Validate());
        return problems;
    }

    /// <summary>Parses ":9090", "0.0.0.0:9090", "127.0.0.1:0", "[::1]:9090".</summary>
    public static bool TryParseListen(string text, out IPEndPoint endpoint)
    {
        endpoint = new IPEndPoint(IPAddress.Any, 0);
        if (string.IsNullOrWhiteSpace(text)) return false;
        if (text.StartsWith(':') && int.TryParse(text.AsSpan(1), out int anyPort) && anyPort is >= 0 and <= 65535)
        {
            endpoint = new IPEndPoint(IPAddress.IPv6Any, anyPort);
            return true;
        }
        if (IPEndPoint.TryParse(text, out var parsed) && parsed.Port is >= 0 and <= 65535 && text.Contains(':'))
        {
            endpoint = parsed;
            return true;
        }
        return false;
    }
}
