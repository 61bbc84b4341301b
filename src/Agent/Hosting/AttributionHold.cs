using Tripline.Capture.Flows;
using Tripline.Correlation.Cluster;

namespace Tripline.Hosting;

/// <summary>
/// Flow events whose address lies in a pod range but belongs to no pod the cluster state knows. A new pod sends its
/// first packets as soon as the CNI has set it up, and the API server learns its IP from the kubelet a moment later:
/// judged at once, the pod's first flows would be written as <c>external</c>. They wait here instead (export thread
/// only), with every later event of the same flow so that a flow's records keep their order, until the pod is known
/// or <see cref="Wait"/> has passed; then they are judged as things stand, with a note. At most
/// <see cref="Capacity"/> events wait; past that a new flow is judged at once.
/// </summary>
internal sealed class AttributionHold(TimeSpan wait, int capacity = 16_384)
{
    private readonly List<FlowEvent> _events = [];
    // Flow id → when its first event was held.
    private readonly Dictionary<ulong, long> _flows = [];
    private readonly Dictionary<ulong, byte> _decided = [];
    private readonly long _waitTicks = (long)(wait.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);

    public TimeSpan Wait { get; } = wait;

    public int Capacity { get; } = capacity;

    public int Count => _events.Count;

    /// <summary>Flows let go after the whole wait with an address still unnamed.</summary>
    public long TimedOutFlows;

    public string TimeoutNote => $"an address in a pod range belonged to no known pod within {Wait.TotalSeconds:0.#} s of waiting (the cluster state may lag, or the pod is gone)";

    /// <summary>Holds the event when its flow is held already, or when one of its addresses may be a pod not known yet.</summary>
    public bool TryHold(in FlowEvent flowEvent, ClusterModel model, long now)
    {
        ref readonly var flow = ref flowEvent.Flow;
        if (!_flows.ContainsKey(flow.Id))
        {
            if (!Unnamed(in flow, model) || _events.Count >= Capacity) return false;
            _flows[flow.Id] = now;
        }
        _events.Add(flowEvent);
        return true;
    }

    private static bool Unnamed(in FlowEntry flow, ClusterModel model) =>
        model.IsUnnamedPodAddress(flow.Source.ToKey(), flow.FirstSeenNs) || model.IsUnnamedPodAddress(flow.Destination.ToKey(), flow.FirstSeenNs);

    private const byte Keep = 0, Named = 1, Unnamed_ = 2;

    /// <summary>Lets go, in the order they came, the events of every flow that is named now or has waited long enough.</summary>
    public void Release(ClusterModel model, long now, bool all, IReleasedFlowSink sink)
    {
        _decided.Clear();
        int kept = 0;
        for (int i = 0; i < _events.Count; i++)
        {
            var flowEvent = _events[i];
            ulong id = flowEvent.Flow.Id;
            // Decided once per flow and pass, on its first held event: the flow's later events follow it.
            if (!_decided.TryGetValue(id, out byte state))
            {
                bool named = !Unnamed(in flowEvent.Flow, model);
                state = named ? Named : all || now - _flows[id] >= _waitTicks ? Unnamed_ : Keep;
                _decided[id] = state;
                if (state != Keep) _flows.Remove(id);
                if (state == Unnamed_) Interlocked.Increment(ref TimedOutFlows);
            }
            if (state == Keep)
            {
                _events[kept++] = flowEvent;
                continue;
            }
            sink.ExportReleased(ref flowEvent, model, timedOut: state == Unnamed_);
        }
        _events.RemoveRange(kept, _events.Count - kept);
    }
}

/// <summary>Receives the events <see cref="AttributionHold"/> lets go, in order: the pipeline judges and exports them.</summary>
internal interface IReleasedFlowSink
{
    void ExportReleased(ref FlowEvent flowEvent, ClusterModel model, bool timedOut);
}
