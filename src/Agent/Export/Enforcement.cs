using Tripline.Capture.Flows;
using Tripline.Capture.Parsing;
using Tripline.Correlation.Cluster;

namespace Tripline.Export;

/// <summary>What the network did with a flow's verdict, as the packets show it (the record's <c>enforcement</c>).</summary>
internal enum Enforcement : byte
{
    /// <summary>Too early to say, mid-stream, or one-way by design (a UDP datagram no one answers).</summary>
    Unknown,
    /// <summary>Denied, and never answered (for two pods of this node: never reached the destination's interface).</summary>
    Enforced,
    /// <summary>Denied, yet answered or delivered: the violation.</summary>
    NotEnforced,
    /// <summary>Allowed, yet unanswered after retransmissions or refused on the way: the network denied what the policies allow.</summary>
    Dropped,
    /// <summary>Allowed and answered (or delivered to the destination's interface).</summary>
    Delivered,
}

/// <summary>
/// Joins a flow's evidence (<see cref="FlowEntry.Evidence"/>, its counters) with its verdict. The rules, in order:
/// <list type="number">
/// <item>Answered (any packet from the responder), or, for two pods of this node captured on their own veths, the
/// initiator's packet seen on the second: <c>not_enforced</c> when denied, <c>delivered</c> when allowed.</item>
/// <item>An ICMP destination unreachable about the flow: <c>enforced</c> when denied; when allowed, <c>dropped</c>,
/// unless it was a port unreachable (the destination host itself said nothing listens: <c>delivered</c>).</item>
/// <item>No answer, and the initiator has given the network its chance: a TCP SYN sent <see cref="FlowEntry.UnansweredAfter"/>
/// more times, an echo request more than that, or the flow ended idle after its opening; for two pods of this node, the
/// flow ended without reaching the second veth: <c>enforced</c> when denied, <c>dropped</c> when allowed.</item>
/// <item>Otherwise <c>unknown</c>: a connection seen mid-stream, a single SYN at the end of a capture, a UDP datagram
/// that expects no answer.</item>
/// </list>
/// </summary>
internal static class EnforcementJudge
{
    public static readonly string[] Names = ["unknown", "enforced", "not_enforced", "dropped", "delivered"];

    public static string Name(Enforcement enforcement) => Names[(int)enforcement];

    public static bool TryParse(string text, out Enforcement enforcement)
    {
        int index = Array.IndexOf(Names, text);
        enforcement = index < 0 ? Enforcement.Unknown : (Enforcement)index;
        return index >= 0;
    }

    public static Enforcement Judge(in FlowEvent e, in FlowJudgement j, FlowContext context)
    {
        ref readonly FlowEntry f = ref e.Flow;
        // A verdict the packets cannot settle (a domain name might have decided it) cannot be held against the network.
        if (j.Verdict.NotJudgeable is not null) return Enforcement.Unknown;
        bool denied = !j.Verdict.Allowed;
        bool peerWatched = context.CapturesEachInterface && SameNodePods(in j, context.Node);
        if (f.PacketsReceived > 0 || (peerWatched && (f.Evidence & FlowEvidence.ReachedPeer) != 0))
        {
            return denied ? Enforcement.NotEnforced : Enforcement.Delivered;
        }
        if ((f.Evidence & FlowEvidence.Unreachable) != 0)
        {
            if (denied) return Enforcement.Enforced;
            return (f.Evidence & FlowEvidence.PortUnreachable) != 0 ? Enforcement.Delivered : Enforcement.Dropped;
        }
        bool ended = e.Kind == FlowEventKind.End;
        bool opened = f.Orientation == FlowOrientation.Observed;
        bool unanswered = f.Protocol switch
        {
            IpProtocol.Tcp => f.SynRetransmits >= FlowEntry.UnansweredAfter
                || (ended && opened && (f.EndReason == FlowEndReason.Idle || f.SynRetransmits > 0)),
            IpProtocol.Icmp or IpProtocol.Icmpv6 when f.IsEchoRequest => f.PacketsSent > FlowEntry.UnansweredAfter || (ended && f.EndReason == FlowEndReason.Idle),
            _ => false,
        };
        if (unanswered || (peerWatched && ended && f.PacketsSent > 0)) return denied ? Enforcement.Enforced : Enforcement.Dropped;
        return Enforcement.Unknown;
    }

    /// <summary>Both ends are pods of this node (not one pod talking to itself), so both veths are watched.</summary>
    private static bool SameNodePods(in FlowJudgement j, string node) =>
        j.Source.Pod is { } source && j.Destination.Pod is { } destination && !ReferenceEquals(source, destination)
        && source.NodeName == node && destination.NodeName == node && source.HostNetwork == false && destination.HostNetwork == false;
}
