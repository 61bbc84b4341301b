using Tripline.Capture.Flows;
using Tripline.Capture.Parsing;
using Tripline.Correlation.Policy;

namespace Tripline.Hosting;

/// <summary>Answers the flow table's "which side serves?" from the ports the cluster declares.</summary>
internal sealed class ClusterServerPortHint(ClusterState state) : IServerPortHint
{
    /// <summary>
    /// Set for a finite replay: the first flow that needs the cluster's answer waits for the manifests to load
    /// (packets are read meanwhile), rather than being oriented against a cluster not loaded yet.
    /// </summary>
    public CancellationToken? HoldUntilSynced { get; set; }

    public ServerSide Classify(IpAddress first, ushort firstPort, IpAddress second, ushort secondPort, byte protocol)
    {
        var model = state.Current;
        if (!model.IsSynced && HoldUntilSynced is { } cancel && state.WaitUntilSynced(cancel)) model = state.Current;
        var proto = ToPolicyProtocol(protocol);
        bool firstServes = model.IsDeclaredServerPort(first.Value, firstPort, proto);
        bool secondServes = model.IsDeclaredServerPort(second.Value, secondPort, proto);
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
