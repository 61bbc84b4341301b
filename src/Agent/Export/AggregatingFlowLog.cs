using System.Text.Json;
using Tripline.Capture.Flows;
using Tripline.Capture.Parsing;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;

namespace Tripline.Export;

/// <summary>
/// Keeps the flow log bounded, so that a noisy node (or a pod that opens a million connections) cannot roll days of
/// history off the disk, and folds what it does not write into <c>aggregate</c> records rather than losing it.
/// <para>
/// <c>--flow-log-aggregate</c>: a flow that starts and ends within the interval (a DNS lookup, a health check) is not
/// written as a start and an end but folded into one aggregate per interval and peer pair (both ends by namespace and
/// workload, or IP when not a pod; destination port; protocol; verdict), <c>reason: short</c>. A flow still alive
/// after the interval gets its start written late, with its own time, and its updates and end as usual.
/// </para>
/// <para>
/// <c>--flow-log-rate-limit</c>: each flow is judged at its start against the records-per-second budget
/// (<see cref="FlowLogBudget"/>). Denied flows come first, then flows of a peer pair not seen in the last hour, then
/// the rest; a source whose flows are being folded loses its preference until it is quiet for an interval, so one
/// source's flood cannot spend the others' share. A flow admitted is written whole (start, updates while the budget
/// allows, end); a flow refused goes, whole, into its source's aggregate for the interval, <c>reason: rate_limit</c>,
/// with the distinct destinations and ports it reached. Written flows plus the aggregates' <c>flows</c> are every flow.
/// </para>
/// Time is the events' time, so replay folds exactly as live capture. Memory is bounded: at most
/// <see cref="MaxAggregates"/> aggregates (then coarser ones, by kind and namespace), <see cref="MaxHeld"/> held starts,
/// a fixed table of recent pairs, and the ids of the flows being folded, which the flow table bounds.
/// </summary>
internal sealed class AggregatingFlowLog : IFlowExporter, IDisposable
{
    /// <summary>Aggregates held per interval; past it, new sources fold into one aggregate per kind and namespace.</summary>
    public const int MaxAggregates = 4096;

    /// <summary>Starts held back by <c>--flow-log-aggregate</c>; past it, the oldest is written early.</summary>
    public const int MaxHeld = 65_536;

    /// <summary>How long rate-limit aggregates collect without <c>--flow-log-aggregate</c>.</summary>
    public static readonly TimeSpan DefaultFoldInterval = TimeSpan.FromSeconds(10);

    /// <summary>How long a peer pair stays "seen recently".</summary>
    public static readonly TimeSpan PairMemory = TimeSpan.FromHours(1);

    private readonly long _intervalNs;
    private readonly bool _foldShort;
    private readonly FlowLogBudget? _budget;
    private readonly RecentPairs? _pairs;
    private readonly Dictionary<ulong, Held> _held = [];
    private readonly Queue<(ulong Id, long StartNs)> _heldOrder = new();
    private readonly HashSet<ulong> _folding = [];
    private readonly Dictionary<Peer, long> _foldingSources = [];
    private readonly Dictionary<AggregateKey, Aggregate> _aggregates = [];
    private long _bucket = long.MinValue;
    private long _latestNs;

    public AggregatingFlowLog(FlowLogExporter inner, TimeSpan interval)
        : this(inner, interval, budget: null)
    {
    }

    /// <summary><paramref name="shortFlows"/> folds short flows; <paramref name="budget"/> bounds the records per second.</summary>
    public AggregatingFlowLog(FlowLogExporter inner, TimeSpan? shortFlows, FlowLogBudget? budget)
    {
        Inner = inner;
        _foldShort = shortFlows is not null;
        _intervalNs = (shortFlows ?? DefaultFoldInterval).Ticks * 100;
        _budget = budget;
        _pairs = budget is null ? null : new RecentPairs(PairMemory);
    }

    /// <summary>Builds the flow log's exporter for the options: the plain exporter when nothing is folded.</summary>
    public static IFlowExporter Wrap(FlowLogExporter exporter, FlowLogOptions options) =>
        options.Aggregate is null && options.RateLimit <= 0
            ? exporter
            : new AggregatingFlowLog(exporter, options.Aggregate, options.RateLimit > 0 ? new FlowLogBudget(options.RateLimit, options.RateBurst) : null);

    public FlowLogExporter Inner { get; }

    public FlowLogBudget? Budget => _budget;

    /// <summary>Flows folded into aggregate records so far.</summary>
    public long FlowsAggregated { get; private set; }

    /// <summary>Aggregate records handed to the flow log so far.</summary>
    public long AggregatesWritten { get; private set; }

    public void Export(in FlowEvent flowEvent, in FlowJudgement judgement, FlowContext context)
    {
        long now = flowEvent.TimeNs;
        if (now > _latestNs) _latestNs = now;
        ulong id = flowEvent.Flow.Id;
        bool allowed = judgement.Verdict.Allowed;
        var filter = Inner.Filter;
        switch (flowEvent.Kind)
        {
            case FlowEventKind.Start:
                if (_budget is { } budget && filter.Accepts(FlowEventKind.Start, allowed) && !Admit(budget, in flowEvent, in judgement))
                {
                    _folding.Add(id);
                    Inner.CountFolded(FoldReason.RateLimit, 1);
                }
                else if (_foldShort)
                {
                    Hold(in flowEvent, in judgement, context);
                }
                else
                {
                    Inner.Export(in flowEvent, in judgement, context);
                }
                break;
            case FlowEventKind.Update:
                if (!filter.Accepts(FlowEventKind.Update, allowed)) break;
                if (_folding.Contains(id)) Inner.CountFolded(FoldReason.RateLimit, 1);
                // A held flow's end carries its totals; its updates add nothing an aggregate would show.
                else if (_held.ContainsKey(id)) Inner.CountFolded(FoldReason.Short, 1);
                else if (_budget is { } b && !b.TryTake(1, allowed ? RecordPriority.Ordinary : RecordPriority.Denied, now)) Inner.CountFolded(FoldReason.Update, 1);
                else Inner.Export(in flowEvent, in judgement, context);
                break;
            default:
                if (_folding.Remove(id))
                {
                    Fold(in flowEvent, in judgement, context, FoldReason.RateLimit);
                }
                else if (_held.Remove(id, out var held))
                {
                    if (now - held.Event.TimeNs < _intervalNs)
                    {
                        // Its start and end were paid for at admission; the aggregate is charged when written.
                        _budget?.Refund(2);
                        Fold(in flowEvent, in judgement, context, FoldReason.Short);
                    }
                    else
                    {
                        Inner.Export(in held.Event, in held.Judgement, held.Context);
                        Inner.Export(in flowEvent, in judgement, context);
                    }
                }
                else
                {
                    Inner.Export(in flowEvent, in judgement, context);
                }
                break;
        }
        ReleaseLongLived();
        EmitFinishedBuckets(all: false);
    }

    /// <summary>Whether the budget writes this flow (its start and its end, paid now).</summary>
    private bool Admit(FlowLogBudget budget, in FlowEvent start, in FlowJudgement judgement)
    {
        ref readonly var f = ref start.Flow;
        var source = Peer.Of(judgement.Source, f.Source);
        var destination = Peer.Of(judgement.Destination, f.Destination);
        bool newPair = _pairs!.Touch(source, destination, start.TimeNs);
        var priority = !judgement.Verdict.Allowed ? RecordPriority.Denied : newPair ? RecordPriority.NewPair : RecordPriority.Ordinary;
        // A source being folded has spent its preference: its flood must not eat the reserve kept for everyone else.
        if (priority != RecordPriority.Ordinary && _foldingSources.TryGetValue(source, out long since) && start.TimeNs - since < _intervalNs)
        {
            priority = RecordPriority.Ordinary;
        }
        if (budget.TryTake(2, priority, start.TimeNs)) return true;
        if (_foldingSources.Count < MaxAggregates || _foldingSources.ContainsKey(source)) _foldingSources[source] = start.TimeNs;
        return false;
    }

    private void Hold(in FlowEvent start, in FlowJudgement judgement, FlowContext context)
    {
        if (_held.Count >= MaxHeld)
        {
            // A flood of short flows without a budget: write the oldest start now rather than hold without bound.
            while (_heldOrder.TryDequeue(out var oldest))
            {
                if (_held.Remove(oldest.Id, out var early))
                {
                    Inner.Export(in early.Event, in early.Judgement, early.Context);
                    break;
                }
            }
        }
        _held[start.Flow.Id] = new Held(start, judgement, context);
        _heldOrder.Enqueue((start.Flow.Id, start.TimeNs));
    }

    public void Flush()
    {
        EmitFinishedBuckets(all: false);
        Inner.Flush();
    }

    /// <summary>Writes held starts whose flows outlived the interval.</summary>
    private void ReleaseLongLived()
    {
        while (_heldOrder.TryPeek(out var oldest) && _latestNs - oldest.StartNs >= _intervalNs)
        {
            _heldOrder.Dequeue();
            if (_held.Remove(oldest.Id, out var held)) Inner.Export(in held.Event, in held.Judgement, held.Context);
        }
    }

    private void Fold(in FlowEvent end, in FlowJudgement judgement, FlowContext context, FoldReason reason)
    {
        ref readonly var f = ref end.Flow;
        bool allowed = judgement.Verdict.Allowed;
        if (Inner.Filter.DeniedOnly && allowed) return;
        long bucket = Math.DivRem(end.TimeNs, _intervalNs, out long remainder) - (remainder < 0 ? 1 : 0);
        if (bucket > _bucket) EmitFinishedBuckets(all: true);
        _bucket = Math.Max(_bucket, bucket);
        bool ports = IpProtocol.HasPorts(f.Protocol);
        int port = ports ? f.DestinationPort : -1;
        var source = Peer.Of(judgement.Source, f.Source);
        var destination = Peer.Of(judgement.Destination, f.Destination);
        // Short flows are grouped by peer pair and port; a rate-limited source's flows together, whatever they reached.
        var key = reason == FoldReason.Short
            ? new AggregateKey(reason, allowed, f.Protocol, source, destination, port)
            : new AggregateKey(reason, allowed, f.Protocol, source, default, -1);
        if (!_aggregates.TryGetValue(key, out var aggregate))
        {
            if (_aggregates.Count >= MaxAggregates)
            {
                // Too many sources (spoofed addresses, say): fold by kind and namespace; those are few.
                key = new AggregateKey(reason, allowed, f.Protocol, source.Coarse(), default, -1);
                _aggregates.TryGetValue(key, out aggregate);
            }
            if (aggregate is null)
            {
                aggregate = new Aggregate(end, judgement, context, key, destination) { FirstSeenNs = f.FirstSeenNs };
                _aggregates[key] = aggregate;
            }
        }
        aggregate.Add(in f, destination, port);
        FlowsAggregated++;
        // A rate-limited flow's start was counted when it was refused.
        Inner.CountFolded(reason, reason == FoldReason.Short ? 2 : 1);
    }

    /// <summary>Writes the aggregates of intervals that are over (or all of them at shutdown).</summary>
    private void EmitFinishedBuckets(bool all)
    {
        if (_aggregates.Count == 0) return;
        long bucketEnd = (_bucket + 1) * _intervalNs;
        if (!all && _latestNs < bucketEnd) return;
        foreach (var aggregate in _aggregates.Values)
        {
            _budget?.Charge(1, bucketEnd);
            Inner.WriteRecord((aggregate, bucketEnd), static (w, s) => Write(w, s.aggregate, s.bucketEnd));
            AggregatesWritten++;
        }
        _aggregates.Clear();
        if (_foldingSources.Count > 0)
        {
            foreach (var (source, since) in _foldingSources)
            {
                if (bucketEnd - since >= _intervalNs) _foldingSources.Remove(source);
            }
        }
    }

    private static void Write(Utf8JsonWriter w, Aggregate a, long timeNs)
    {
        ref readonly var f = ref a.Sample.Flow;
        var j = a.Judgement;
        var key = a.Key;
        w.WriteStartObject();
        w.WriteString("time", FlowRecordWriter.FormatTime(timeNs));
        w.WriteString("event", "aggregate");
        w.WriteString("node", a.Context.EncodedNode);
        w.WriteString("interface", a.Context.EncodedInterface(f.Interfaces[0]));
        w.WriteString("protocol", IpProtocol.Name(f.Protocol));
        WriteEndpoint(w, "src", j.Source, f.Source, -1, key.Source.IsCoarse);
        // A rate-limited source's aggregate names its destination only when every flow went to the same one.
        bool oneDestination = key.Reason == FoldReason.Short || !a.MixedDestinations;
        if (oneDestination) WriteEndpoint(w, "dst", j.Destination, f.Destination, key.Reason == FoldReason.Short ? key.Port : a.SinglePort, coarse: false);
        w.WriteString("verdict", j.Verdict.Allowed ? "allow" : "deny");
        if (oneDestination)
        {
            FlowRecordWriter.WriteSide(w, FlowRecordWriter.Egress, j.Verdict.Egress);
            FlowRecordWriter.WriteSide(w, FlowRecordWriter.Ingress, j.Verdict.Ingress);
        }
        w.WriteString("reason", FoldReasons.Name(key.Reason));
        w.WriteNumber("flows", a.Flows);
        w.WriteStartObject("packets");
        w.WriteNumber("sent", a.PacketsSent);
        w.WriteNumber("received", a.PacketsReceived);
        w.WriteEndObject();
        w.WriteStartObject("bytes");
        w.WriteNumber("sent", a.BytesSent);
        w.WriteNumber("received", a.BytesReceived);
        w.WriteEndObject();
        w.WriteNumber("distinct_sources", a.Sources.Count);
        w.WriteNumber("distinct_destinations", a.Destinations.Count);
        if (IpProtocol.HasPorts(f.Protocol)) w.WriteNumber("distinct_ports", a.Ports.Count);
        if (a.Sources.Estimated || a.Destinations.Estimated || a.Ports.Estimated) w.WriteBoolean("distinct_estimated", true);
        w.WriteString("first_seen", FlowRecordWriter.FormatTime(a.FirstSeenNs));
        w.WriteString("last_seen", FlowRecordWriter.FormatTime(a.LastSeenNs));
        w.WriteEndObject();
    }

    private static void WriteEndpoint(Utf8JsonWriter w, string name, ResolvedEndpoint endpoint, IpAddress ip, int port, bool coarse)
    {
        w.WriteStartObject(name);
        // Pods are named by workload: the aggregate stands for many pods' flows. Other ends keep their IP, unless the
        // aggregate is the coarse overflow of many sources, which only a kind and a namespace describe.
        if (endpoint.Kind != EndpointKind.Pod && !coarse) w.WriteString("ip", ip.ToString());
        if (port >= 0) w.WriteNumber("port", port);
        w.WriteString("kind", endpoint.KindName);
        switch (endpoint.Kind)
        {
            case EndpointKind.Pod:
                w.WriteString("namespace", endpoint.Pod!.Namespace);
                if (coarse) break;
                if (endpoint.Pod!.Workload is { } workload) w.WriteString("workload", workload.ToString());
                else w.WriteString("pod", endpoint.Pod!.Name);
                break;
            case EndpointKind.Service:
                w.WriteString("namespace", endpoint.Service!.Namespace);
                if (!coarse) w.WriteString("service", endpoint.Service!.Key);
                break;
            case EndpointKind.Node:
                if (!coarse) w.WriteString("node", endpoint.Node!.Name);
                break;
        }
        w.WriteEndObject();
    }

    public void Dispose()
    {
        // Shutdown: the pipeline has ended every flow; write what is still held, then the aggregates.
        foreach (var held in _held.Values) Inner.Export(in held.Event, in held.Judgement, held.Context);
        _held.Clear();
        _heldOrder.Clear();
        EmitFinishedBuckets(all: true);
        Inner.Dispose();
    }

    private readonly record struct AggregateKey(FoldReason Reason, bool Allowed, byte Protocol, Peer Source, Peer Destination, int Port);

    private sealed class Held(FlowEvent flowEvent, FlowJudgement judgement, FlowContext context)
    {
        public FlowEvent Event = flowEvent;
        public FlowJudgement Judgement = judgement;
        public FlowContext Context { get; } = context;
    }

    private sealed class Aggregate(FlowEvent sample, FlowJudgement judgement, FlowContext context, AggregateKey key, Peer destination)
    {
        public FlowEvent Sample = sample;
        public FlowJudgement Judgement { get; } = judgement;
        public FlowContext Context { get; } = context;
        public AggregateKey Key { get; } = key;
        private readonly Peer _destination = destination;
        public bool MixedDestinations;
        public int SinglePort = -1;
        private bool _mixedPorts;
        public long Flows;
        public ulong PacketsSent;
        public ulong PacketsReceived;
        public ulong BytesSent;
        public ulong BytesReceived;
        public long FirstSeenNs;
        public long LastSeenNs;
        public readonly DistinctCounter Sources = new();
        public readonly DistinctCounter Destinations = new();
        public readonly DistinctCounter Ports = new(ports: true);

        public void Add(in FlowEntry f, Peer destination, int port)
        {
            Flows++;
            PacketsSent += f.PacketsSent;
            PacketsReceived += f.PacketsReceived;
            BytesSent += f.BytesSent;
            BytesReceived += f.BytesReceived;
            FirstSeenNs = Math.Min(FirstSeenNs, f.FirstSeenNs);
            LastSeenNs = Math.Max(LastSeenNs, f.LastSeenNs);
            Sources.Add(Fingerprint(f.Source));
            Destinations.Add(Fingerprint(f.Destination));
            if (destination != _destination) MixedDestinations = true;
            if (port >= 0)
            {
                Ports.Add((ulong)port);
                if (Flows == 1) SinglePort = port;
                else if (port != SinglePort) _mixedPorts = true;
            }
            if (_mixedPorts) SinglePort = -1;
        }

        private static ulong Fingerprint(IpAddress ip) => DistinctCounter.Mix(ip.High) ^ ip.Low;
    }
}
