using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using Tripline.Capture.Sources;
using Tripline.Correlation.Cluster;
using Tripline.Export;

namespace Tripline.Hosting;

/// <summary>
/// <c>tripline run</c>: composes a cluster source, a packet source, the flow pipeline, the exporters and the HTTP
/// endpoints, and shuts them down in order (stop capture, drain, end flows, flush the log).
/// </summary>
internal sealed partial class AgentHost : IAsyncDisposable
{
    private readonly AgentOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly IClusterSource _clusterSource;
    private readonly ClusterState _cluster;
    private readonly IPacketSource _packets;
    private readonly FlowPipeline _pipeline;
    private readonly List<IFlowExporter> _exporters = [];
    private readonly List<IDisposable> _disposables = [];
    private WebApplication? _web;

    public AgentHost(AgentOptions options, ILoggerFactory loggerFactory, AgentParts parts)
    {
        _options = options;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger("tripline");
        _clusterSource = parts.ClusterSource;
        _cluster = new ClusterState(_clusterSource);
        _cluster.ModelChanged += model =>
        {
            LogModel(_logger, model.Snapshot.Version, model.Snapshot.Pods.Count, model.Engine.PolicyCount, model.IsSynced);
            CheckNode(model);
        };
        // A source that was whole before the subscription (manifests) published its model already.
        CheckNode(_cluster.Current);
        if (options.Staged.Count > 0) _disposables.Add(new StagedPolicies(options.Staged, _cluster, loggerFactory.CreateLogger("tripline.staged")));
        _packets = parts.PacketSource;
        _exporters.AddRange(parts.Exporters);
        foreach (var exporter in parts.Exporters) if (exporter is IDisposable d) _disposables.Add(d);
        _pipeline = new FlowPipeline(_packets, _cluster, options.FlowTable, _exporters, options.Node)
        {
            // Manifests do not change: an address no pod of theirs holds will not be named later.
            AttributionWait = options.Manifests.Count == 0 ? options.AttributionWait : TimeSpan.Zero,
        };
        Parts = parts;
    }

    public AgentParts Parts { get; }

    public FlowPipeline Pipeline => _pipeline;

    public ClusterState Cluster => _cluster;

    /// <summary>The address the HTTP endpoints listen on, once started (port 0 resolves to the real port).</summary>
    public Uri? ListenAddress { get; private set; }

    /// <summary>
    /// Set while the cluster (once whole) has neither a Node nor a pod by the agent's node name: the agent then counts
    /// none of its flows as its own node's, which is almost always a wrong or missing --node.
    /// </summary>
    public string? NodeWarning { get; private set; }

    private void CheckNode(ClusterModel model)
    {
        if (!model.IsSynced) return;
        var snapshot = model.Snapshot;
        string node = _options.Node;
        bool known = snapshot.Nodes.Any(n => n.Name == node) || snapshot.Pods.Any(p => p.NodeName == node);
        string? warning = known
            ? null
            : $"node '{node}' is neither a Node of the cluster nor the node of any pod: no flow counts as this node's; set --node (TRIPLINE_NODE, or NODE_NAME from the downward API)";
        if (warning is not null && NodeWarning is null) LogUnknownNode(_logger, node, snapshot.Nodes.Count);
        NodeWarning = warning;
    }

    /// <summary>What keeps the agent from being ready; empty when ready.</summary>
    public IReadOnlyList<string> NotReadyReasons()
    {
        var reasons = new List<string>();
        foreach (var status in _clusterSource.Status)
        {
            // Not an optional resource that is absent or forbidden: it may never come, and the source does not wait for it either.
            if (status.Awaited) reasons.Add($"cluster state: {status.Resource} not listed yet{(status.LastError is { } error ? " (" + error + ")" : "")}");
        }
        if (_packets.NotReadyReason is { } capture) reasons.Add("capture: " + capture);
        if (_pipeline.SourceFailure is { } failure) reasons.Add("capture: failed: " + failure.Message);
        return reasons;
    }

    /// <summary>
    /// Runs until <paramref name="stopping"/> is cancelled, then stops capture, drains what the kernel and the queues
    /// hold, ends every flow (<c>shutdown</c>) and writes every record. A stop during start-up is a stop, not an
    /// error: nothing was captured yet.
    /// </summary>
    public async Task RunAsync(CancellationToken stopping)
    {
        await _clusterSource.StartAsync(stopping).ConfigureAwait(false);
        _web = BuildWeb();
        try
        {
            await _web.StartAsync(stopping).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            return;
        }
        ListenAddress = ResolveListenAddress(_web);
        LogListening(_logger, ListenAddress?.ToString() ?? _options.Listen);

        using var captureStop = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        var producer = _pipeline.StartSource(captureStop.Token);
        bool live = _options.Pcaps.Count == 0;
        try
        {
            await _pipeline.ConsumeAsync(live ? TimeProvider.System : null, _options.FlushInterval, stopping).ConfigureAwait(false);
        }
        finally
        {
            captureStop.Cancel();
            producer.Join(TimeSpan.FromSeconds(10));
        }
    }

    /// <summary>Set once every record is written and the flow log closed.</summary>
    public bool Stopped => Volatile.Read(ref _stopped);

    private bool _stopped;

    /// <summary>
    /// Closes in the order that loses nothing: the flow log first (every record is already handed to it), then the
    /// HTTP endpoints, the packet source and the cluster source, each bounded so that a hung connection cannot hold the
    /// exit. Logs the one <c>stopped</c> line.
    /// </summary>
    public async Task StopAsync(string reason, Func<TimeSpan> sinceRequested)
    {
        if (_stopped) return;
        foreach (var disposable in _disposables) disposable.Dispose();
        var (written, lost) = FlowLogCounts();
        Volatile.Write(ref _stopped, true);
        var table = _pipeline.Table.Stats;
        LogStopped(_logger, reason, sinceRequested().TotalSeconds, table.FlowsEnded, written, lost);
        if (_web is not null)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            try
            {
                await _web.StopAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Scrapes in flight are cut: they hold no evidence.
            }
        }
        _packets.Dispose();
        _cluster.Dispose();
        // Watches end on cancellation; one that hangs on a dead connection must not hold the exit.
        await _clusterSource.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(2)).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
    }

    /// <summary>The flow-log exporters (inside an aggregating one too).</summary>
    private IEnumerable<FlowLogExporter> FlowLogs() => _exporters.Select(e => e is AggregatingFlowLog a ? a.Inner : e).OfType<FlowLogExporter>();

    private (long Written, long Lost) FlowLogCounts() => (FlowLogs().Sum(f => Interlocked.Read(ref f.RecordsWritten)), FlowLogs().Sum(f => Interlocked.Read(ref f.RecordsLost)));

    /// <summary>
    /// The stop deadline passed: writes out what the flow log holds and takes no more (the process then exits, never in
    /// the middle of a write). Returns what is known to be missing, for the one error line.
    /// </summary>
    public string SealPastDeadline()
    {
        int stuck = FlowLogs().Count(log => !log.Seal(TimeSpan.FromSeconds(1)));
        var (written, lost) = FlowLogCounts();
        long open = _pipeline.Table.Stats.FlowsStarted - _pipeline.Table.Stats.FlowsEnded;
        return $"{written} records written, {lost} lost, {Math.Max(0, open)} flows without their end record"
            + (stuck > 0 ? $"; {stuck} flow log(s) blocked in a write (a reader that stopped reading)" : "");
    }

    private WebApplication BuildWeb()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(_loggerFactory);
        var certificate = Parts.ServingCertificate;
        if (certificate is not null) builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            if (!AgentOptions.TryParseListen(_options.Listen, out var endpoint)) throw new InvalidOperationException($"--listen: '{_options.Listen}' is not ADDR:PORT");
            Action<ListenOptions> tls = listen =>
            {
                // Asked on every handshake: a certificate rotated on disk is served from the next connection on.
                if (certificate is not null) listen.UseHttps(https => https.ServerCertificateSelector = (_, _) => certificate.Current);
            };
            if (_options.Listen.StartsWith(':')) kestrel.ListenAnyIP(endpoint.Port, tls);
            else kestrel.Listen(endpoint, tls);
        });
        var app = builder.Build();
        if (Parts.Authorization is { } authorization) app.Use(authorization.InvokeAsync);
        app.MapGet("/healthz", () => Results.Text("ok\n"));
        app.MapGet("/readyz", () =>
        {
            var reasons = NotReadyReasons();
            return reasons.Count == 0
                ? Results.Text("ready\n" + (NodeWarning is { } warning ? "  warning: " + warning + "\n" : ""))
                : Results.Text("not ready:\n" + string.Concat(reasons.Select(r => "  " + r + "\n")), statusCode: StatusCodes.Status503ServiceUnavailable);
        });
        foreach (var map in Parts.Endpoints) map(app, this);
        return app;
    }

    private static Uri? ResolveListenAddress(WebApplication web)
    {
        var address = web.Urls.FirstOrDefault();
        if (address is null) return null;
        // Kestrel reports the bound port; "[::]" and "0.0.0.0" are reachable through loopback.
        var uri = new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal).Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal));
        return uri;
    }

    public async ValueTask DisposeAsync() => await StopAsync("disposed", () => TimeSpan.Zero).ConfigureAwait(false);

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "listening on {Address}")]
    private static partial void LogListening(ILogger logger, string address);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "cluster state v{Version}: {Pods} pods, {Policies} policies, synced={Synced}")]
    private static partial void LogModel(ILogger logger, long version, int pods, int policies, bool synced);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "node '{Node}' is neither one of the cluster's {Nodes} Nodes nor the node of any pod: no flow will count as this node's; set --node (TRIPLINE_NODE, or NODE_NAME from the downward API)")]
    private static partial void LogUnknownNode(ILogger logger, string node, int nodes);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "stopped ({Reason}) in {Seconds:F2} s; {Flows} flows ended, {Records} flow-log records written, {Lost} lost")]
    private static partial void LogStopped(ILogger logger, string reason, double seconds, long flows, long records, long lost);
}

/// <summary>The parts an agent is made of, chosen from the options by <see cref="AgentParts"/>'s factory.</summary>
internal sealed class AgentParts
{
    public required IClusterSource ClusterSource { get; init; }
    public required IPacketSource PacketSource { get; init; }
    public List<IFlowExporter> Exporters { get; } = [];
    /// <summary>Extra HTTP endpoints (metrics, the flow query API), mapped on the agent's web application.</summary>
    public List<Action<WebApplication, AgentHost>> Endpoints { get; } = [];
    /// <summary>The listener's TLS certificate; null for plain HTTP.</summary>
    public Tripline.Http.Auth.ServingCertificate? ServingCertificate { get; set; }
    /// <summary>Bearer tokens reviewed by the API server on every path but the probes; null when <c>--http-auth none</c>.</summary>
    public Tripline.Http.Auth.BearerAuthorization? Authorization { get; set; }
}
