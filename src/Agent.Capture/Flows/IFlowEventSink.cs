using Tripline.Capture.Parsing;

namespace Tripline.Capture.Flows;

/// <summary>Receives flow events on the flow-table thread. Implementations copy what they need and return quickly.</summary>
public interface IFlowEventSink
{
    void OnFlowEvent(FlowEventKind kind, long timeNs, in FlowEntry flow);
}

/// <summary>Which side of a half-seen connection serves, as the cluster declares it (container and Service ports).</summary>
public enum ServerSide : byte
{
    Unknown,
    First,
    Second,
    /// <summary>
    /// The cluster is not known yet (a replay reads packets while its manifests load): the flow keeps a provisional
    /// orientation marked <see cref="FlowOrientation.Pending"/>, decided again by enrichment with
    /// <see cref="FlowTable.ResolvePending"/> once the cluster is whole.
    /// </summary>
    Later,
}

/// <summary>
/// Asked once per new flow whose start was not seen. Capture owns this seam so that it never learns about
/// Kubernetes; the host implements it from the cluster state.
/// </summary>
public interface IServerPortHint
{
    ServerSide Classify(IpAddress first, ushort firstPort, IpAddress second, ushort secondPort, byte protocol);
}
