using Tripline.Capture.Flows;
using Tripline.Capture.Parsing;
using Tripline.Correlation.Policy;

namespace Tripline.Hosting;

/// <summary>Answers the flow table's "which side serves?" from the ports the cluster declares.</summary>
internal sealed class ClusterServerPortHint(ClusterState state) : IServerPortHint
{
    /// <summary>
    /// Set for a finite replay, whose verdicts wait for the whole cluster anyway: until it is loaded the answer is
    /// <see cref="ServerSide.Later"/>, and the export thread decides those flows with the loaded cluster
    /// (<see cref="FlowTable.ResolvePending"/>) rather than orienting them against a cluster not loaded yet.
    /// </summary>
    public bool DeferUntilSynced { get; set; }

    public ServerSide Classify(IpAddress first, ushort firstPort, IpAddress second, ushort secondPort, byte protocol)
    {
        var model = state.Current;
        if (!model.IsSynced && DeferUntilSynced) return ServerSide.Later;
        var proto = ToPolicyProtocol(protocol);
        bool firstServes = model.IsDeclaredServerPort(first.ToKey(), firstPort, proto);
        bool secondServes = model.IsDeclaredServerPort(second.ToKey(), secondPort, proto);
        if (firstServes == secondServes) return ServerSide.Unknown;
        return firstServes ? ServerSide.First : ServerSide.Second;
    }

    public static PolicyProtocol ToPolicyProtocol(byte protocol) => protocol switch
    {
        IpProtocol.Tcp => PolicyProtocol.TCP,
        IpProtocol.Udp => PolicyProtocol.UDP,
        IpProtocol.Sctp => PolicyProtocol.SCTP,
        IpProtocol.Icmp or IpProtocol.Icmpv6 => PolicyProtocol.ICMP,
        _ => PolicyProtocol.Other,
    };
}
