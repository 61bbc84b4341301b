using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Tripline.Capture.Parsing;

namespace Tripline.Capture.Flows;

/// <summary>How the initiator of a flow was known.</summary>
public enum FlowOrientation : byte
{
    /// <summary>The start was seen: SYN, SYN-ACK, SCTP INIT, an echo request, or the first packet of a datagram flow.</summary>
    Observed,
    /// <summary>The start was missed; a declared container or Service port told which side serves.</summary>
    Inferred,
    /// <summary>The start was missed and nothing declared the server side.</summary>
    Unknown,
    /// <summary>
    /// The cluster's answer was not available when the flow began: the direction is provisional until enrichment
    /// resolves it (<see cref="FlowTable.ResolvePending"/>). Never written to a record.
    /// </summary>
    Pending,
}

public enum FlowEndReason : byte
{
    None,
    Fin,
    Rst,
    Idle,
    Shutdown,
    Eof,
    /// <summary>The table was full and this flow was the least recently active in its neighbourhood.</summary>
    Evicted,
}

public enum FlowEventKind : byte
{
    Start,
    Update,
    End,
}

/// <summary>
/// What the packets said about a flow's fate, beyond its counters (an answer is <see cref="FlowEntry.PacketsReceived"/>
/// above zero): joined with the verdict at export into the record's <c>enforcement</c>.
/// </summary>
[Flags]
public enum FlowEvidence : byte
{
    None = 0,
    /// <summary>An ICMP destination unreachable quoted a packet of the flow: the network or the host refused it.</summary>
    Unreachable = 1 << 0,
    /// <summary>A packet from the initiator was seen again on another interface (the destination pod's, on one node).</summary>
    ReachedPeer = 1 << 1,
    /// <summary>A record was written after the evidence settled (<see cref="FlowEntry.EvidenceSettled"/>).</summary>
    Reported = 1 << 2,
    /// <summary>The unreachable said "port": the destination host itself answered that nothing listens there.</summary>
    PortUnreachable = 1 << 3,
    /// <summary>A record was written once a first payload showed plaintext (<see cref="FlowEntry.Tls"/> false).</summary>
    PlaintextReported = 1 << 4,
}

internal enum TcpCloseState : byte
{
    Open,
    /// <summary>Both FINs or a RST were seen: the entry lingers to absorb the last ACKs, then ends.</summary>
    Closing,
}

/// <summary>The interfaces that saw a flow (the first is the one whose packets are counted).</summary>
[InlineArray(Capacity)]
public struct InterfaceSet
{
    public const int Capacity = 4;
    private int _element;
}

/// <summary>
/// One flow, oriented from initiator (<see cref="Source"/>) to responder (<see cref="Destination"/>).
/// Lives by value in the flow table's slot array; copies of it travel in flow events.
/// </summary>
/// <remarks>
/// Three cache lines exactly (<see cref="Size"/>), stored from a line boundary (<see cref="AlignedArray{T}"/>), so the
/// hot part, which leads, fills the first two lines whole: a packet's lookup and update touch those two and no other.
/// </remarks>
[StructLayout(LayoutKind.Sequential, Size = Size)]
public struct FlowEntry
{
    public const int Size = 192;
    /// <summary>The key and everything a packet updates (through <see cref="BytesReceived"/>) lie within these first bytes.</summary>
    public const int HotBytes = 128;

    // Ordered by use: the key and everything a packet updates come first (104 bytes, the two cache lines that the
    // flow table prefetches), what only records and sweeps read comes after.
    public IpAddress Source;
    public IpAddress Destination;
    public ushort SourcePort;
    public ushort DestinationPort;
    public byte Protocol;
    public TcpFlags TcpFlagsSeen;
    public FlowEndReason EndReason;
    internal TcpCloseState CloseState;
    internal bool FinFromSource;
    internal bool FinFromDestination;
    internal bool ActivitySinceRecord;
    public byte InterfaceCount;
    public InterfaceSet Interfaces;
    public uint Hash;
    public long LastSeenNs;
    public ulong PacketsSent;
    public ulong PacketsReceived;
    public ulong BytesSent;
    public ulong BytesReceived;
    public FlowEvidence Evidence;
    /// <summary>TCP SYNs the initiator sent again before any answer (saturates at 255).</summary>
    public byte SynRetransmits;
    /// <summary>
    /// TCP: what the first payload that the initiator sent began with, once seen (<see cref="PayloadKind.Unknown"/> when
    /// the connection's start was not seen, since a payload caught midway may begin anywhere in a TLS record).
    /// </summary>
    public PayloadClass SourcePayload;
    /// <summary>TCP: the same for the responder's first payload.</summary>
    public PayloadClass DestinationPayload;

    public IpAddress OuterSource;
    public IpAddress OuterDestination;
    public uint TunnelId;
    public byte IcmpType;
    public byte IcmpCode;
    public FlowOrientation Orientation;
    internal bool Occupied;
    public ulong Id;
    public long FirstSeenNs;
    public long LastRecordNs;

    /// <summary>SYNs unanswered this often, or echo requests, settle that no answer is coming.</summary>
    public const int UnansweredAfter = 2;

    /// <summary>
    /// The packets have said what they will: the responder answered, an ICMP unreachable came back, the packets
    /// reached the peer's interface, or the initiator tried again and again without an answer.
    /// </summary>
    public readonly bool EvidenceSettled => PacketsReceived > 0
        || (Evidence & (FlowEvidence.Unreachable | FlowEvidence.ReachedPeer)) != 0
        || SynRetransmits >= UnansweredAfter
        || (IsEchoRequest && PacketsSent > UnansweredAfter);

    /// <summary>An ICMP echo flow (ping), whose initiator expects a reply to each request.</summary>
    public readonly bool IsEchoRequest => (Protocol == IpProtocol.Icmp && IcmpType is 8 or 0) || (Protocol == IpProtocol.Icmpv6 && IcmpType is 128 or 129);

    public readonly bool HasPorts => IpProtocol.HasPorts(Protocol);

    /// <summary>
    /// Whether the connection speaks TLS, from the first payload of each direction: false when either began with
    /// something other than a TLS record, true when one began with a TLS record and the other did not say otherwise,
    /// null while nothing tells (no payload yet, the start not seen, bytes cut by the snaplen, not TCP).
    /// </summary>
    public readonly bool? Tls
    {
        get
        {
            PayloadKind source = SourcePayload.Kind, destination = DestinationPayload.Kind;
            if (source == PayloadKind.Plain || destination == PayloadKind.Plain) return false;
            if (source == PayloadKind.Tls || destination == PayloadKind.Tls) return true;
            return null;
        }
    }

    /// <summary>The TLS version the first records declare (the responder's, which chose it, before the initiator's); null when not known.</summary>
    public readonly string? TlsVersion => DestinationPayload.Kind == PayloadKind.Tls && DestinationPayload.TlsVersion is { } chosen ? chosen
        : SourcePayload.Kind == PayloadKind.Tls ? SourcePayload.TlsVersion : null;

    public readonly int InterfaceAt(int index) => Interfaces[index];
}

/// <summary>A flow's start, update or end, carried by value from the flow table to enrichment.</summary>
public struct FlowEvent
{
    public FlowEventKind Kind;
    /// <summary>When the event happened: a packet time in replay, the wall clock live.</summary>
    public long TimeNs;
    public FlowEntry Flow;
}
