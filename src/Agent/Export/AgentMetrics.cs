using System.Reflection;
using Prometheus;
using Tripline.Capture.Flows;
using Tripline.Capture.Parsing;
using Tripline.Capture.Sources;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;
using Tripline.Correlation.Policy;

namespace Tripline.Export;

/// <summary>How the metrics keep their label sets bounded.</summary>
internal sealed record MetricsOptions
{
    /// <summary>Most label sets per labelled flow counter; the excess is folded into <c>other</c>.</summary>
    public int MaxSeries { get; init; } = 2000;

    /// <summary>A series idle this long whose namespace or workload left the cluster is removed.</summary>
    public TimeSpan SeriesTtl { get; init; } = TimeSpan.FromHours(1);

    public IEnumerable<string> Validate()
    {
        if (MaxSeries < 1) yield return "--metrics-max-series: must be at least 1";
        if (SeriesTtl <= TimeSpan.Zero) yield return "--metrics-series-ttl: must be positive";
    }
}

/// <summary>What the metrics read at scrape time: counters owned by other threads and the cluster state.</summary>
internal sealed record MetricsSources(
    Func<FlowTableStats> FlowTable,
    IPacketSource Packets,
    IClusterSource Cluster,
    Func<ClusterModel> Model,
    IReadOnlyList<FlowLogExporter> FlowLogs,
    Func<(int Held, long TimedOut)>? Attribution = null);

/// <summary>
/// The agent's Prometheus metrics (design §4) in a registry of its own, so several agents can live in one process.
/// Flows are counted once, at their start record, by the flow-table thread; packet-thread counters are copied in
/// at scrape time by a before-collect callback, never incremented per packet.
/// <para>
/// No double counting across the DaemonSet: a flow is counted in <c>tripline_flows_total</c> by the node of its
/// source pod; when the source is not a pod, by the node of its destination pod; when neither is a pod, by the node
/// that saw it. A denial is counted per side: the egress side by the source pod's node, the ingress side by the
/// destination pod's node. A pod whose node is unknown (manifests without <c>nodeName</c>) counts as local.
/// </para>
/// </summary>
internal sealed class AgentMetrics : IFlowExporter
{
    public const string External = "(external)";
    public const string NodeEndpoint = "(node)";
    public const string NoWorkload = "(none)";

    private readonly string _node;
    private readonly MetricsOptions _options;
    private readonly TimeProvider _time;
    private readonly BoundedCounter _flows;
    private readonly BoundedCounter _denied;
    private readonly BoundedCounter _enforcement;
    private readonly BoundedCounter _notEnforced;
    private readonly BoundedCounter _stagedDenied;
    private readonly BoundedCounter _plaintext;
    private readonly Counter _packets;
    private readonly Counter _bytes;
    private readonly Counter _lost;
    private readonly Counter _flowLogLost;
    private readonly Counter _flowLogWritten;
    private readonly Counter _flowLogFolded;
    private readonly Gauge _tableFlows;
    private readonly Counter _evictions;
    private readonly Gauge _unprotected;
    private readonly Gauge _policies;
    private readonly Gauge _synced;
    private readonly Gauge _installed;
    private readonly Gauge _eventAge;
    private readonly Counter _events;
    private readonly Counter _relists;
    private readonly Counter _watchRestarts;
    private readonly Gauge _objects;
    private readonly Counter _folded;
    private readonly Gauge _attributionHeld;
    private readonly Counter _attributionTimedOut;
    private readonly Counter _notJudgeable;
    private HashSet<string> _interfaceSeries = [];
    private readonly Lock _collectLock = new();
    private MetricsSources? _sources;
    private long _unprotectedVersion = -1;
    private HashSet<(string Namespace, string Direction)> _unprotectedSeries = [];
    private long _liveVersion = -1;
    private HashSet<string> _liveNamespaces = [];
    private HashSet<string> _liveWorkloads = [];

    public AgentMetrics(string node, MetricsOptions? options = null, TimeProvider? time = null)
    {
        _node = node;
        _options = options ?? new MetricsOptions();
        _time = time ?? TimeProvider.System;
        Registry = Metrics.NewCustomRegistry();
        var factory = Metrics.WithCustomRegistry(Registry);

        _flows = new BoundedCounter(
            factory.CreateCounter("tripline_flows_total", "Flows seen, counted once at their start by the node owning their source pod (see docs).",
                ["verdict", "src_namespace", "dst_namespace", "protocol"]),
            [false, true, true, false], _options.MaxSeries, _options.SeriesTtl, _time);
        _denied = new BoundedCounter(
            factory.CreateCounter("tripline_denied_flows_total", "Denied flows by the side that denies them, counted by the node of that side's pod; policy lists the isolating policies.",
                ["direction", "namespace", "workload", "policy"]),
            [false, true, true, true], _options.MaxSeries, _options.SeriesTtl, _time);
        _enforcement = new BoundedCounter(
            factory.CreateCounter("tripline_enforcement_flows_total", "Flows by what the network did with their verdict (enforced, not_enforced, dropped, delivered, unknown), counted once per flow when the packets settle it (or at its end), by the node owning its source pod.",
                ["enforcement", "src_namespace", "dst_namespace", "protocol"]),
            [false, true, true, false], _options.MaxSeries, _options.SeriesTtl, _time);
        _notEnforced = new BoundedCounter(
            factory.CreateCounter("tripline_not_enforced_flows_total", "Denied flows that went through (answered, or reached the destination's interface), by the side that denies them, counted by the node of that side's pod.",
                ["direction", "namespace", "workload", "policy"]),
            [false, true, true, true], _options.MaxSeries, _options.SeriesTtl, _time);
        _stagedDenied = new BoundedCounter(
            factory.CreateCounter("tripline_staged_denied_flows_total", "Flows allowed now that the staged change (--staged) would deny, by the side that would deny them, counted by the node of that side's pod; policy lists the staged isolating policies.",
                ["direction", "namespace", "workload", "policy"]),
            [false, true, true, true], _options.MaxSeries, _options.SeriesTtl, _time);
        _plaintext = new BoundedCounter(
            factory.CreateCounter("tripline_plaintext_flows_total", "TCP flows whose first payload was plaintext where Istio's mutual TLS should be: into a destination whose PeerAuthentication is STRICT (reason strict) or between two meshed pods (reason meshed), counted once per flow by the node of the destination pod.",
                ["reason", "src_namespace", "dst_namespace", "dst_workload"]),
            [false, true, true, true], _options.MaxSeries, _options.SeriesTtl, _time);
        _packets = factory.CreateCounter("tripline_packets_total", "Packets captured, by interface.", ["interface"]);
        _bytes = factory.CreateCounter("tripline_bytes_total", "Bytes captured (IP length), by interface.", ["interface"]);
        _lost = factory.CreateCounter("tripline_lost_packets_total", "Packets lost, by stage: kernel, interface, queue, flow_table (unattributable fragments), malformed, unnamed_interface (any device: the interface was gone before its index could be named).", ["stage"]);
        _attributionHeld = factory.CreateGauge("tripline_attribution_held_events", "Flow events waiting for the pod holding their address to appear in the cluster state.");
        _notJudgeable = factory.CreateCounter("tripline_not_judgeable_flows_total",
            "Flows whose verdict packets cannot settle, by reason: domain_names (only a rule's domainNames peer could have decided otherwise); judged by the other rules, their enforcement unknown. Counted once at their start by the node owning their source pod.",
            ["reason"]);
        _attributionTimedOut = factory.CreateCounter("tripline_attribution_timeouts_total", "Flows judged after --attribution-wait with an address in a pod range that no known pod held.");
        _flowLogLost = factory.CreateCounter("tripline_flow_log_lost_records_total",
            "Flow-log records that could not be written, by reason: write_failed (disk full, read-only, closed pipe), stop_deadline (offered after the stop deadline sealed the log).", ["reason"]);
        _flowLogFolded = factory.CreateCounter("tripline_flow_log_folded_records_total",
            "Flow-log records not written because their content went into another record, by reason: short (--flow-log-aggregate), rate_limit (the records-per-second budget was spent: the flow went into its source's aggregate), update (an update skipped under the budget; the end record carries its totals).", ["reason"]);
        _flowLogWritten = factory.CreateCounter("tripline_flow_log_records_total", "Flow-log records written.");
        _tableFlows = factory.CreateGauge("tripline_flow_table_flows", "Flows held in the flow table.");
        _evictions = factory.CreateCounter("tripline_flow_table_evictions_total", "Flows ended early because the flow table was full.");
        _unprotected = factory.CreateGauge("tripline_unprotected_pods", "Pods on this node that no policy of any tier (ClusterNetworkPolicy, AdminNetworkPolicy, NetworkPolicy, BaselineAdminNetworkPolicy) selects with rules for the direction.", ["namespace", "direction"]);
        _policies = factory.CreateGauge("tripline_policies", "NetworkPolicies loaded.");
        _synced = factory.CreateGauge("tripline_cluster_synced",
            "1 when the resource's cluster state has completed its first list. Stays 0 for a custom resource whose CRD is not installed (tripline_cluster_resource_installed 0), which the agent does not wait for.", ["resource"]);
        _installed = factory.CreateGauge("tripline_cluster_resource_installed",
            "1 when the API server serves the resource; 0 when it answered 404 for every version read: the CRD is not installed, its kinds are not judged, and the agent asks again every 30 s. No series while it cannot tell (403).", ["resource"]);
        _eventAge = factory.CreateGauge("tripline_cluster_last_event_age_seconds", "Seconds since the resource's last list or watch event.", ["resource"]);
        _events = factory.CreateCounter("tripline_cluster_events_total", "Watch events applied, by resource.", ["resource"]);
        _relists = factory.CreateCounter("tripline_cluster_relists_total", "Full re-lists, by resource.", ["resource"]);
        _watchRestarts = factory.CreateCounter("tripline_cluster_watch_restarts_total", "Watch restarts, by resource.", ["resource"]);
        _objects = factory.CreateGauge("tripline_cluster_objects", "Objects cached, by resource.", ["resource"]);
        _folded = factory.CreateCounter("tripline_metrics_folded_label_sets_total", "Increments folded into the 'other' label value because a metric reached its label-set cap.");
        factory.CreateGauge("tripline_build_info", "Build information; always 1.", ["version"]).WithLabels(Version).Set(1);
        Registry.AddBeforeCollectCallback(Collect);
    }

    public CollectorRegistry Registry { get; }

    public static string Version { get; } =
        typeof(AgentMetrics).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "unknown";

    /// <summary>Gives the scrape-time sources once the agent's parts exist; until then only flow counters publish.</summary>
    public void Attach(MetricsSources sources) => Volatile.Write(ref _sources, sources);

    public void Export(in FlowEvent flowEvent, in FlowJudgement judgement, FlowContext context)
    {
        // Enforcement is counted once per flow: on the first record whose evidence is settled, or at its end.
        bool reported = (flowEvent.Flow.Evidence & FlowEvidence.Reported) != 0;
        if (!reported && (flowEvent.Flow.EvidenceSettled || flowEvent.Kind == FlowEventKind.End)) CountEnforcement(in flowEvent, in judgement, context);
        // Plaintext is counted once per flow, on the first record that shows it.
        if (flowEvent.Flow.Tls == false && (flowEvent.Flow.Evidence & FlowEvidence.PlaintextReported) == 0 && judgement.Mesh.PlaintextReason is { } plaintext
            && judgement.Destination.Kind == EndpointKind.Pod && IsLocal(judgement.Destination.Pod!))
        {
            _plaintext.Inc([plaintext, NamespaceLabel(judgement.Source), judgement.Destination.Pod!.Namespace, WorkloadLabel(judgement.Destination.Pod!)]);
        }
        if (flowEvent.Kind != FlowEventKind.Start) return;
        var verdict = judgement.Verdict;
        if (verdict.Allowed && judgement.Staged is { Allowed: false } staged) CountDenyingSides(_stagedDenied, staged, in judgement);
        if (IsOwned(in judgement))
        {
            _flows.Inc([verdict.Allowed ? "allow" : "deny", NamespaceLabel(judgement.Source), NamespaceLabel(judgement.Destination), IpProtocol.Name(flowEvent.Flow.Protocol)]);
            if (verdict.NotJudgeable is { } reason) _notJudgeable.WithLabels(reason).Inc();
        }
        if (!verdict.Allowed) CountDenyingSides(_denied, verdict, in judgement);
    }

    /// <summary>
    /// One increment per side that <paramref name="verdict"/> denies, by the node of that side's pod (a Service
    /// destination's ingress side is counted by the backend's node, which sees the translated flow).
    /// </summary>
    private void CountDenyingSides(BoundedCounter counter, Verdict verdict, in FlowJudgement judgement)
    {
        var source = judgement.Source;
        var destination = judgement.Destination;
        if (verdict.Egress is { Allowed: false } egress && source.Kind == EndpointKind.Pod && IsLocal(source.Pod!))
        {
            counter.Inc(["egress", source.Pod!.Namespace, WorkloadLabel(source.Pod!), PolicyLabel(egress)]);
        }
        if (verdict.Ingress is { Allowed: false } ingress && destination.Kind == EndpointKind.Pod && IsLocal(destination.Pod!))
        {
            counter.Inc(["ingress", destination.Pod!.Namespace, WorkloadLabel(destination.Pod!), PolicyLabel(ingress)]);
        }
    }

    private void CountEnforcement(in FlowEvent flowEvent, in FlowJudgement judgement, FlowContext context)
    {
        var enforcement = EnforcementJudge.Judge(in flowEvent, in judgement, context);
        if (IsOwned(in judgement))
        {
            _enforcement.Inc([EnforcementJudge.Name(enforcement), NamespaceLabel(judgement.Source), NamespaceLabel(judgement.Destination), IpProtocol.Name(flowEvent.Flow.Protocol)]);
        }
        if (enforcement == Enforcement.NotEnforced) CountDenyingSides(_notEnforced, judgement.Verdict, in judgement);
    }

    public void Flush()
    {
    }

    /// <summary>This node counts the flow: it holds the source pod, or (the source not a pod) the destination pod, or neither end is a pod.</summary>
    private bool IsOwned(in FlowJudgement judgement) => judgement.Source.Kind == EndpointKind.Pod
        ? IsLocal(judgement.Source.Pod!)
        : judgement.Destination.Kind != EndpointKind.Pod || IsLocal(judgement.Destination.Pod!);

    private bool IsLocal(PodInfo pod) => pod.NodeName is null || string.Equals(pod.NodeName, _node, StringComparison.Ordinal);

    private static string NamespaceLabel(in ResolvedEndpoint endpoint) => endpoint.Kind switch
    {
        EndpointKind.Pod => endpoint.Pod!.Namespace,
        EndpointKind.Service => endpoint.Service!.Namespace,
        EndpointKind.Node => NodeEndpoint,
        _ => External,
    };

    private static string WorkloadLabel(PodInfo pod) => pod.Workload?.ToString() ?? NoWorkload;

    private static string PolicyLabel(SideVerdict side) => side.Policies.Count switch
    {
        0 => NoWorkload,
        1 => side.Policies[0],
        _ => string.Join(',', side.Policies.Order(StringComparer.Ordinal)),
    };

    /// <summary>Copies the packet- and table-thread counters and the cluster state into the registry.</summary>
    private void Collect()
    {
        lock (_collectLock)
        {
            _folded.IncTo(Volatile.Read(ref _flows.Folded) + Volatile.Read(ref _denied.Folded) + Volatile.Read(ref _enforcement.Folded) + Volatile.Read(ref _notEnforced.Folded) + Volatile.Read(ref _stagedDenied.Folded) + Volatile.Read(ref _plaintext.Folded));
            var sources = Volatile.Read(ref _sources);
            if (sources is null) return;
            CollectCapture(sources);
            long lost = 0, pastDeadline = 0, written = 0;
            Span<long> folded = stackalloc long[FoldReasons.All.Length];
            foreach (var log in sources.FlowLogs)
            {
                lost += Volatile.Read(ref log.RecordsLost);
                pastDeadline += Volatile.Read(ref log.RecordsLostPastDeadline);
                written += Volatile.Read(ref log.RecordsWritten);
                foreach (var reason in FoldReasons.All) folded[(int)reason] += log.Folded(reason);
            }
            _flowLogLost.WithLabels("write_failed").IncTo(lost - pastDeadline);
            _flowLogLost.WithLabels("stop_deadline").IncTo(pastDeadline);
            _flowLogWritten.IncTo(written);
            foreach (var reason in FoldReasons.All) _flowLogFolded.WithLabels(FoldReasons.Name(reason)).IncTo(folded[(int)reason]);
            CollectCluster(sources);
        }
    }

    private void CollectCapture(MetricsSources sources)
    {
        var table = sources.FlowTable().Snapshot();
        var counters = sources.Packets.Counters;
        long kernel = 0, interfaceDrops = 0;
        if (sources.Packets is ICaptureStatistics statistics)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var s in statistics.InterfaceStatistics())
            {
                _packets.WithLabels(s.Interface).IncTo(s.Packets);
                _bytes.WithLabels(s.Interface).IncTo(s.Bytes);
                kernel += s.KernelDrops;
                interfaceDrops += s.InterfaceDrops;
                seen.Add(s.Interface);
            }
            // Interfaces of pods long gone were folded into "other" by capture: their series go, so pod churn does not
            // grow the scrape.
            foreach (string gone in _interfaceSeries)
            {
                if (seen.Contains(gone)) continue;
                _packets.RemoveLabelled(gone);
                _bytes.RemoveLabelled(gone);
            }
            _interfaceSeries = seen;
        }
        else
        {
            // A source without per-interface statistics (capture files): frames read, and bytes of the flows' packets.
            string name = sources.Packets.InterfaceName(0);
            _packets.WithLabels(name).IncTo(Volatile.Read(ref counters.Frames));
            _bytes.WithLabels(name).IncTo(table.Bytes);
        }
        _lost.WithLabels("kernel").IncTo(kernel);
        _lost.WithLabels("interface").IncTo(interfaceDrops);
        _lost.WithLabels("queue").IncTo(Volatile.Read(ref counters.QueueDroppedPackets));
        _lost.WithLabels("flow_table").IncTo(table.UnmatchedFragments);
        _lost.WithLabels("malformed").IncTo(counters.Malformed);
        _lost.WithLabels("unnamed_interface").IncTo(Volatile.Read(ref counters.UnresolvedInterfacePackets));
        if (sources.Attribution is { } attribution)
        {
            var (held, timedOut) = attribution();
            _attributionHeld.Set(held);
            _attributionTimedOut.IncTo(timedOut);
        }
        _tableFlows.Set(table.Active);
        _evictions.IncTo(table.Evictions);
    }

    private void CollectCluster(MetricsSources sources)
    {
        var now = _time.GetUtcNow();
        foreach (var status in sources.Cluster.Status)
        {
            _synced.WithLabels(status.Resource).Set(status.Synced ? 1 : 0);
            // Unknown is no series rather than a guess: a 403 hides whether the CRD exists.
            if (status.Installed is { } installed) _installed.WithLabels(status.Resource).Set(installed ? 1 : 0);
            else _installed.RemoveLabelled(status.Resource);
            if (status.LastEventAt is { } last) _eventAge.WithLabels(status.Resource).Set(Math.Max(0, (now - last).TotalSeconds));
            _events.WithLabels(status.Resource).IncTo(status.EventsApplied);
            _relists.WithLabels(status.Resource).IncTo(status.Relists);
            _watchRestarts.WithLabels(status.Resource).IncTo(status.WatchRestarts);
            _objects.WithLabels(status.Resource).Set(status.ObjectsCached);
        }
        var model = sources.Model();
        _policies.Set(model.Engine.PolicyCount);
        UpdateUnprotected(model);
        UpdateLiveNames(model.Snapshot);
        _flows.Expire(labels => !IsLiveNamespace(labels[1]) || !IsLiveNamespace(labels[2]));
        _denied.Expire(labels => !IsLiveNamespace(labels[1]) || (labels[2] is not (NoWorkload or BoundedCounter.Other) && !_liveWorkloads.Contains(labels[2])));
        _enforcement.Expire(labels => !IsLiveNamespace(labels[1]) || !IsLiveNamespace(labels[2]));
        _stagedDenied.Expire(labels => !IsLiveNamespace(labels[1]) || (labels[2] is not (NoWorkload or BoundedCounter.Other) && !_liveWorkloads.Contains(labels[2])));
        _notEnforced.Expire(labels => !IsLiveNamespace(labels[1]) || (labels[2] is not (NoWorkload or BoundedCounter.Other) && !_liveWorkloads.Contains(labels[2])));
        _plaintext.Expire(labels => !IsLiveNamespace(labels[1]) || !IsLiveNamespace(labels[2]) || (labels[3] is not (NoWorkload or BoundedCounter.Other) && !_liveWorkloads.Contains(labels[3])));
    }

    private bool IsLiveNamespace(string label) => label is External or NodeEndpoint or BoundedCounter.Other || _liveNamespaces.Contains(label);

    private void UpdateLiveNames(ClusterSnapshot snapshot)
    {
        if (snapshot.Version == _liveVersion) return;
        var namespaces = new HashSet<string>(snapshot.Namespaces.Keys, StringComparer.Ordinal);
        var workloads = new HashSet<string>(StringComparer.Ordinal);
        foreach (var pod in snapshot.Pods)
        {
            namespaces.Add(pod.Namespace);
            if (pod.Workload is { } workload) workloads.Add(workload.ToString());
        }
        foreach (var service in snapshot.Services) namespaces.Add(service.Namespace);
        _liveNamespaces = namespaces;
        _liveWorkloads = workloads;
        _liveVersion = snapshot.Version;
    }

    /// <summary>Recounts on a new snapshot only; every namespace with pods here has a series, zero included, so alerts can compare.</summary>
    private void UpdateUnprotected(ClusterModel model)
    {
        if (model.Snapshot.Version == _unprotectedVersion) return;
        var counts = new Dictionary<(string, string), int>();
        foreach (var pod in model.Snapshot.Pods)
        {
            if (pod.HostNetwork || pod.IsTerminated || !IsLocal(pod)) continue;
            foreach (var (direction, name) in Directions)
            {
                var key = (pod.Namespace, name);
                counts[key] = counts.GetValueOrDefault(key) + (model.Engine.PoliciesSelecting(pod, direction).Count == 0 ? 1 : 0);
            }
        }
        foreach (var stale in _unprotectedSeries)
        {
            if (!counts.ContainsKey(stale)) _unprotected.RemoveLabelled(stale.Namespace, stale.Direction);
        }
        foreach (var ((ns, direction), count) in counts) _unprotected.WithLabels(ns, direction).Set(count);
        _unprotectedSeries = [.. counts.Keys];
        _unprotectedVersion = model.Snapshot.Version;
    }

    private static readonly (PolicyDirection Direction, string Name)[] Directions = [(PolicyDirection.Ingress, "ingress"), (PolicyDirection.Egress, "egress")];
}
