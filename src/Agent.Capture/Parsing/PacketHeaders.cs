namespace Tripline.Capture.Parsing;

/// <summary>What was learned about a frame besides its addresses and ports.</summary>
[Flags]
public enum PacketFlags : ushort
{
    None = 0,
    /// <summary>At least one 802.1Q/802.1ad tag was removed.</summary>
    Vlan = 1 << 0,
    /// <summary>The capture stopped inside the transport header or payload (snaplen): counters use the IP length.</summary>
    Truncated = 1 << 1,
    /// <summary>The IP packet is a fragment (more-fragments set or a non-zero offset).</summary>
    Fragment = 1 << 2,
    /// <summary>A fragment after the first: it carries no transport header, so no ports.</summary>
    NonFirstFragment = 1 << 3,
    /// <summary>The flow is the inner packet of a VXLAN or Geneve tunnel; the outer endpoints are kept.</summary>
    Tunnel = 1 << 4,
    /// <summary>Ports (or the ICMP echo identifier) were read.</summary>
    HasPorts = 1 << 5,
    /// <summary>An ICMP error (unreachable, time exceeded, ...): it belongs to the flow that caused it, not a new conversation.</summary>
    IcmpError = 1 << 6,
    /// <summary>
    /// An ICMP error that quotes the packet it answers: <see cref="PacketHeaders.OuterSource"/>,
    /// <see cref="PacketHeaders.OuterDestination"/>, <see cref="PacketHeaders.QuotedPorts"/> and
    /// <see cref="PacketHeaders.QuotedProtocol"/> hold that packet's flow (never set on a tunnelled packet).
    /// </summary>
    IcmpQuote = 1 << 7,
}

/// <summary>
/// The headers of one frame, filled in place by <see cref="PacketParser"/>. A plain mutable struct so that batches
/// of them are arrays that the capture thread writes and the flow-table thread reads without copying objects.
/// </summary>
/// <remarks>
/// Ordered by use: everything the flow table reads for a packet comes first and fills one cache line, so that the
/// flow-table thread, which reads batches written on another core, fetches one line per packet rather than two.
/// The rest (tunnel endpoints, link-level lengths and tags) is read only when a tunnelled flow starts.
/// </remarks>
public struct PacketHeaders
{
    /// <summary>Capture time, nanoseconds since the Unix epoch.</summary>
    public long TimestampNs;
    public IpAddress Source;
    public IpAddress Destination;
    public ushort SourcePort;
    public ushort DestinationPort;
    public byte Protocol;
    public TcpFlags TcpFlags;
    public PacketFlags Flags;
    /// <summary>Length of the IP packet as its header declares it: the unit of the byte counters.</summary>
    public int IpLength;
    /// <summary>Interface the frame was seen on: the capture device's index, a pcapng interface id, or SLL2's ifindex.</summary>
    public int InterfaceIndex;
    /// <summary>IPv4 identification (low 16 bits of the IPv6 one) for matching fragments to their first.</summary>
    public uint FragmentId;
    public byte IcmpType;
    public byte IcmpCode;
    /// <summary>Type of the first SCTP chunk (INIT, INIT ACK, ABORT, SHUTDOWN COMPLETE, ...).</summary>
    public byte SctpChunkType;
    /// <summary>TCP: what the segment's payload begins with (<see cref="PayloadClass"/>); never the bytes themselves.</summary>
    public PayloadClass Payload;

    /// <summary>
    /// Outer tunnel endpoints when <see cref="PacketFlags.Tunnel"/> is set; with <see cref="PacketFlags.IcmpQuote"/>,
    /// the source and destination of the packet an ICMP error quotes.
    /// </summary>
    public IpAddress OuterSource;
    public IpAddress OuterDestination;
    /// <summary>With <see cref="PacketFlags.IcmpQuote"/>: the quoted packet's ports (source high, destination low).</summary>
    public uint QuotedPorts;
    /// <summary>With <see cref="PacketFlags.IcmpQuote"/>: the quoted packet's protocol.</summary>
    public byte QuotedProtocol;
    /// <summary>VXLAN VNI or Geneve VNI when tunnelled.</summary>
    public uint TunnelId;
    /// <summary>Length of the frame on the wire.</summary>
    public int WireLength;
    /// <summary>Bytes captured (at most the snaplen).</summary>
    public int CapturedLength;
    /// <summary>Innermost VLAN id when <see cref="PacketFlags.Vlan"/> is set.</summary>
    public ushort VlanId;
    public byte IpVersion;

    /// <summary>The bytes, from the start, that hold every field the flow table reads for a packet that is not tunnelled.</summary>
    public const int FlowBytes = 64;

    public readonly bool Has(PacketFlags flag) => (Flags & flag) != 0;
}
