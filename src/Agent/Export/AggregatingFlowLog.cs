using System.Globalization;
using System.Text.Json;
using Tripline.Capture.Flows;
using Tripline.Capture.Parsing;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;
using Tripline.Correlation.Policy;

namespace Tripline.Export;

/// <summary>
/// Keeps a noisy node's flow log small: a flow that starts and ends within the interval (a DNS lookup, a health
/// check) is not written as a start and an end but folded into one <c>aggregate</c> record per interval and peer
/// pair (both ends by namespace and workload, or IP when not a pod; destination port; protocol; verdict), carrying
/// <c>flows</c> and the summed <c>packets</c> and <c>bytes</c>. A flow still alive after the interval gets its
/// start written late, with its own time, and its updates and end as usual. Time is the events' time, so replay
/// aggregates the same way as live capture.
/// </summary>
internal sealed class AggregatingFlowLog : IFlowExporter, IDisposable
{
    private readonly long _intervalNs;
    private readonly Dictionary<ulong, Held> _held = [];
    private readonly Queue<(ulong Id, long StartNs)> _heldOrder = new();
    private readonly Dictionary<string, Aggregate> _aggregates = new(StringComparer.Ordinal);
    private long _bucket = long.MinValue;
    private long _latestNs;

    public AggregatingFlowLog(FlowLogExporter inner, TimeSpan interval)
    {
        Inner = inner;
        _intervalNs = interval.Ticks * 100;
    }

    public FlowLogExporter Inner { get; }

    /// <summary>Flows folded into aggregate records so far.</summary>
    public long FlowsAggregated { get; private set; }

    public void Export(in FlowEvent flowEvent, in FlowJudgement judgement, FlowContext context)
    {
        long now = flowEvent.TimeNs;
        if (now > _latestNs) _latestNs = now;
        ulong id = flowEvent.Flow.Id;
        switch (flowEvent.Kind)
        {
            case FlowEventKind.Start:
                _held[id] = new Held(flowEvent, judgement, context);
                _heldOrder.Enqueue((id, now));
                break;
            case FlowEventKind.Update:
                // A held flow's end carries its totals; its updates add nothing an aggregate would show.
                if (!_held.ContainsKey(id)) Inner.Export(in flowEvent, in judgement, context);
                break;
            default:
                if (_held.Remove(id, out var held))
                {
                    if (now - held.Event.TimeNs < _intervalNs) Fold(in flowEvent, in judgement, context);
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

    private void Fold(in FlowEvent end, in FlowJudgement judgement, FlowContext context)
    {
        ref readonly var f = ref end.Flow;
        bool allowed = judgement.Verdict.Allowed;
        if (Inner.Filter.DeniedOnly && allowed) return;
        long bucket = Math.DivRem(end.TimeNs, _intervalNs, out long remainder) - (remainder < 0 ? 1 : 0);
        if (bucket > _bucket) EmitFinishedBuckets(all: true);
        _bucket = Math.Max(_bucket, bucket);
        int port = IpProtocol.HasPorts(f.Protocol) ? f.DestinationPort : -1;
        string key = string.Create(CultureInfo.InvariantCulture,
            $"{(allowed ? 'a' : 'd')}|{f.Protocol}|{Identity(judgement.Source, f.Source)}|{Identity(judgement.Destination, f.Destination)}|{port}|{context.Node}");
        if (!_aggregates.TryGetValue(key, out var aggregate))
        {
            aggregate = new Aggregate(end, judgement, context, port) { FirstSeenNs = f.FirstSeenNs };
            _aggregates[key] = aggregate;
        }
        aggregate.Flows++;
        aggregate.PacketsSent += f.PacketsSent;
        aggregate.PacketsReceived += f.PacketsReceived;
        aggregate.BytesSent += f.BytesSent;
        aggregate.BytesReceived += f.BytesReceived;
        aggregate.FirstSeenNs = Math.Min(aggregate.FirstSeenNs, f.FirstSeenNs);
        aggregate.LastSeenNs = Math.Max(aggregate.LastSeenNs, f.LastSeenNs);
        FlowsAggregated++;
    }

    private static string Identity(in ResolvedEndpoint endpoint, IpAddress ip) => endpoint.Kind switch
    {
        EndpointKind.Pod => "pod:" + endpoint.Pod!.Namespace + "/" + (endpoint.Pod!.Workload?.ToString() ?? endpoint.Pod!.Name),
        EndpointKind.Service => "service:" + endpoint.Service!.Key,
        EndpointKind.Node => "node:" + endpoint.Node!.Name,
        _ => "ip:" + ip,
    };

    /// <summary>Writes the aggregates of intervals that are over (or all of them at shutdown).</summary>
    private void EmitFinishedBuckets(bool all)
    {
        if (_aggregates.Count == 0) return;
        long bucketEnd = (_bucket + 1) * _intervalNs;
        if (!all && _latestNs < bucketEnd) return;
        foreach (var aggregate in _aggregates.Values) Inner.WriteRecord((aggregate, bucketEnd), static (w, s) => Write(w, s.aggregate, s.bucketEnd));
        _aggregates.Clear();
    }

    private static void Write(Utf8JsonWriter w, Aggregate a, long timeNs)
    {
        ref readonly var f = ref a.Sample.Flow;
        var j = a.Judgement;
        w.WriteStartObject();
        w.WriteString("time", FlowRecordWriter.FormatTime(timeNs));
        w.WriteString("event", "aggregate");
        w.WriteString("node", a.Context.Node);
        w.WriteString("interface", a.Context.InterfaceName(f.Interfaces[0]));
        w.WriteString("protocol", IpProtocol.Name(f.Protocol));
        WriteEndpoint(w, "src", j.Source, f.Source, -1);
        WriteEndpoint(w, "dst", j.Destination, f.Destination, a.Port);
        w.WriteString("verdict", j.Verdict.Allowed ? "allow" : "deny");
        FlowRecordWriter.WriteSide(w, FlowRecordWriter.Egress, j.Verdict.Egress);
        FlowRecordWriter.WriteSide(w, FlowRecordWriter.Ingress, j.Verdict.Ingress);
        w.WriteNumber("flows", a.Flows);
        w.WriteStartObject("packets");
        w.WriteNumber("sent", a.PacketsSent);
        w.WriteNumber("received", a.PacketsReceived);
        w.WriteEndObject();
        w.WriteStartObject("bytes");
        w.WriteNumber("sent", a.BytesSent);
        w.WriteNumber("received", a.BytesReceived);
        w.WriteEndObject();
        w.WriteString("first_seen", FlowRecordWriter.FormatTime(a.FirstSeenNs));
        w.WriteString("last_seen", FlowRecordWriter.FormatTime(a.LastSeenNs));
        w.WriteEndObject();
    }

    private static void WriteEndpoint(Utf8JsonWriter w, string name, ResolvedEndpoint endpoint, IpAddress ip, int port)
    {
        w.WriteStartObject(name);
        // Pods are named by workload: the aggregate stands for many pods' flows. Other ends keep their IP.
        if (endpoint.Kind != EndpointKind.Pod) w.WriteString("ip", ip.ToString());
        if (port >= 0) w.WriteNumber("port", port);
        w.WriteString("kind", endpoint.KindName);
        switch (endpoint.Kind)
        {
            case EndpointKind.Pod:
                w.WriteString("namespace", endpoint.Pod!.Namespace);
                if (endpoint.Pod!.Workload is { } workload) w.WriteString("workload", workload.ToString());
                else w.WriteString("pod", endpoint.Pod!.Name);
                break;
            case EndpointKind.Service:
                w.WriteString("namespace", endpoint.Service!.Namespace);
                w.WriteString("service", endpoint.Service!.Key);
                break;
            case EndpointKind.Node:
                w.WriteString("node", endpoint.Node!.Name);
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

    private sealed class Held(FlowEvent flowEvent, FlowJudgement judgement, FlowContext context)
    {
        public FlowEvent Event = flowEvent;
        public FlowJudgement Judgement = judgement;
        public FlowContext Context { get; } = context;
    }

    private sealed class Aggregate(FlowEvent sample, FlowJudgement judgement, FlowContext context, int port)
    {
        public FlowEvent Sample = sample;
        public FlowJudgement Judgement { get; } = judgement;
        public FlowContext Context { get; } = context;
        public int Port { get; } = port;
        public long Flows;
        public ulong PacketsSent;
        public ulong PacketsReceived;
        public ulong BytesSent;
        public ulong BytesReceived;
        public long FirstSeenNs;
        public long LastSeenNs;
    }
}
