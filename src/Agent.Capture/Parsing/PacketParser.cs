using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Tripline.Capture.Parsing;

/// <summary>
/// Reads link, network and transport headers in place. Never throws and never allocates: a frame that cannot be
/// read is a <see cref="ParseStatus"/> the caller counts. Bounds are checked as <c>(uint)offset &gt; (uint)length</c>.
/// </summary>
public static class PacketParser
{
    private const ushort EtherTypeIpv4 = 0x0800;
    private const ushort EtherTypeIpv6 = 0x86DD;
    private const ushort EtherTypeVlan = 0x8100;
    private const ushort EtherTypeQinQ = 0x88A8;
    private const ushort EtherTypeQinQOld = 0x9100;
    private const ushort EtherTypeTransparentBridging = 0x6558;
    private const int MaxVlanTags = 4;
    private const int MaxExtensionHeaders = 10;

    public const ushort VxlanPort = 4789;
    public const ushort VxlanLinuxPort = 8472;
    public const ushort GenevePort = 6081;

    /// <summary>Parses one captured frame; <paramref name="headers"/> is overwritten whatever the result.</summary>
    /// <param name="decapsulate">Follow VXLAN and Geneve into the inner frame (one level).</param>
    // Optimized from the first call: a replay lasts a second or two, and tiered compilation would spend it in
    // unoptimized and instrumented versions of the per-packet code.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static ParseStatus TryParse(ReadOnlySpan<byte> frame, LinkType link, ref PacketHeaders headers, bool decapsulate = true)
    {
        if (link == LinkType.Ethernet && TryParseCommon(frame, ref headers)) return ParseStatus.Ok;
        return TryParseGeneral(frame, link, ref headers, decapsulate);
    }

    /// <summary>The parser without <see cref="TryParseCommon"/>: what the fast path must agree with, frame for frame.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static ParseStatus TryParseGeneral(ReadOnlySpan<byte> frame, LinkType link, ref PacketHeaders headers, bool decapsulate = true)
    {
        Reset(ref headers, frame.Length);
        return ParseLink(frame, link, ref headers, decapsulate ? 1 : 0);
    }

    /// <summary>Clears what a parse fills in, keeping what the source set: the time, the wire length and the interface.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Reset(ref PacketHeaders headers, int capturedLength)
    {
        long ts = headers.TimestampNs;
        int wire = headers.WireLength;
        int iface = headers.InterfaceIndex;
        headers = default;
        headers.TimestampNs = ts;
        headers.WireLength = wire == 0 ? capturedLength : wire;
        headers.CapturedLength = capturedLength;
        headers.InterfaceIndex = iface;
    }

    /// <summary>
    /// The frame nearly every packet on a node is, read in one pass: untagged Ethernet, IPv4 without options that is
    /// not a fragment, and a TCP or UDP header (the snaplen may cut what follows) that is not a tunnel's. Answers false,
    /// having written nothing, for anything else, which the general parser then reads. The result is the general
    /// parser's, field for field (a property test holds them equal).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TryParseCommon(ReadOnlySpan<byte> frame, ref PacketHeaders h)
    {
        const int Ip = 14;
        const int Transport = Ip + 20;
        // Every offset read below lies before this length, so no read is checked again.
        if (frame.Length < Transport + 14) return false;
        // EtherType IPv4, then version 4 with a 20-byte header.
        if (BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) != EtherTypeIpv4 || frame[Ip] != 0x45) return false;
        int totalLength = BinaryPrimitives.ReadUInt16BigEndian(frame[(Ip + 2)..]);
        ushort fragment = BinaryPrimitives.ReadUInt16BigEndian(frame[(Ip + 6)..]);
        // Offload's zero length, a length shorter than the header, and fragments: the general parser's cases.
        if (totalLength < 20 || (fragment & 0x3FFF) != 0) return false;
        byte protocol = frame[Ip + 9];
        int ipCaptured = frame.Length - Ip;
        bool truncated = totalLength > ipCaptured;
        int segment = Math.Min(ipCaptured, totalLength) - 20;
        ushort sourcePort = BinaryPrimitives.ReadUInt16BigEndian(frame[Transport..]);
        ushort destinationPort = BinaryPrimitives.ReadUInt16BigEndian(frame[(Transport + 2)..]);
        TcpFlags tcpFlags = 0;
        PayloadClass payload = default;
        if (protocol == IpProtocol.Tcp)
        {
            if (segment < 14) return false;
            int dataOffset = (frame[Transport + 12] >> 4) * 4;
            if (dataOffset < 20 || (dataOffset > segment && !truncated)) return false;
            tcpFlags = (TcpFlags)frame[Transport + 13];
            if (totalLength - 20 > dataOffset) payload = PayloadClass.Classify(dataOffset < segment ? frame.Slice(Transport + dataOffset, segment - dataOffset) : default, totalLength - 20 - dataOffset);
        }
        else if (protocol == IpProtocol.Udp)
        {
            if (segment < 8 || destinationPort is VxlanPort or VxlanLinuxPort or GenevePort) return false;
        }
        else
        {
            return false;
        }

        Reset(ref h, frame.Length);
        h.IpVersion = 4;
        h.IpLength = totalLength;
        h.Source = IpAddress.FromV4(frame.Slice(Ip + 12, 4));
        h.Destination = IpAddress.FromV4(frame.Slice(Ip + 16, 4));
        h.Protocol = protocol;
        h.FragmentId = BinaryPrimitives.ReadUInt16BigEndian(frame[(Ip + 4)..]);
        h.SourcePort = sourcePort;
        h.DestinationPort = destinationPort;
        h.TcpFlags = tcpFlags;
        h.Payload = payload;
        h.Flags = truncated ? PacketFlags.HasPorts | PacketFlags.Truncated : PacketFlags.HasPorts;
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static ParseStatus ParseLink(ReadOnlySpan<byte> frame, LinkType link, ref PacketHeaders h, int tunnelDepth)
    {
        switch (link)
        {
            case LinkType.Ethernet:
                return ParseEthernet(frame, ref h, tunnelDepth);
            case LinkType.Raw:
                if (frame.IsEmpty) return ParseStatus.TruncatedIpHeader;
                return (frame[0] >> 4) switch
                {
                    4 => ParseIpv4(frame, ref h, tunnelDepth),
                    6 => ParseIpv6(frame, ref h, tunnelDepth),
                    _ => ParseStatus.BadIpVersion,
                };
            case LinkType.Ipv4:
                return ParseIpv4(frame, ref h, tunnelDepth);
            case LinkType.Ipv6:
                return ParseIpv6(frame, ref h, tunnelDepth);
            case LinkType.LinuxSll:
                if (frame.Length < 16) return ParseStatus.TruncatedLinkHeader;
                return ParseEtherType(BinaryPrimitives.ReadUInt16BigEndian(frame[14..]), frame[16..], ref h, tunnelDepth);
            case LinkType.LinuxSll2:
                if (frame.Length < 20) return ParseStatus.TruncatedLinkHeader;
                h.InterfaceIndex = BinaryPrimitives.ReadInt32BigEndian(frame[4..]);
                return ParseEtherType(BinaryPrimitives.ReadUInt16BigEndian(frame), frame[20..], ref h, tunnelDepth);
            case LinkType.Null:
            case LinkType.Loop:
                {
                    if (frame.Length < 4) return ParseStatus.TruncatedLinkHeader;
                    // DLT_NULL's family is in the capturing host's byte order, DLT_LOOP's in network order.
                    uint family = link == LinkType.Loop
                        ? BinaryPrimitives.ReadUInt32BigEndian(frame)
                        : BinaryPrimitives.ReadUInt32LittleEndian(frame);
                    if (family > 0xFFFF) family = BinaryPrimitives.ReverseEndianness(family);
                    var payload = frame[4..];
                    return family switch
                    {
                        2 => ParseIpv4(payload, ref h, tunnelDepth),
                        10 or 24 or 28 or 30 => ParseIpv6(payload, ref h, tunnelDepth),
                        _ => ParseStatus.NonIp,
                    };
                }
            default:
                return ParseStatus.UnsupportedLinkType;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static ParseStatus ParseEthernet(ReadOnlySpan<byte> frame, ref PacketHeaders h, int tunnelDepth)
    {
        if (frame.Length < 14) return ParseStatus.TruncatedLinkHeader;
        int offset = 12;
        ushort etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[offset..]);
        offset += 2;
        int tags = 0;
        while (etherType is EtherTypeVlan or EtherTypeQinQ or EtherTypeQinQOld)
        {
            if (++tags > MaxVlanTags) return ParseStatus.TooManyHeaders;
            if ((uint)(offset + 4) > (uint)frame.Length) return ParseStatus.TruncatedLinkHeader;
            h.VlanId = (ushort)(BinaryPrimitives.ReadUInt16BigEndian(frame[offset..]) & 0x0FFF);
            h.Flags |= PacketFlags.Vlan;
            etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[(offset + 2)..]);
            offset += 4;
        }
        return ParseEtherType(etherType, frame[offset..], ref h, tunnelDepth);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ParseStatus ParseEtherType(ushort etherType, ReadOnlySpan<byte> payload, ref PacketHeaders h, int tunnelDepth) => etherType switch
    {
        EtherTypeIpv4 => ParseIpv4(payload, ref h, tunnelDepth),
        EtherTypeIpv6 => ParseIpv6(payload, ref h, tunnelDepth),
        _ => ParseStatus.NonIp,
    };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static ParseStatus ParseIpv4(ReadOnlySpan<byte> packet, ref PacketHeaders h, int tunnelDepth)
    {
        if (packet.Length < 20) return packet.Length > 0 && (packet[0] >> 4) != 4 ? ParseStatus.BadIpVersion : ParseStatus.TruncatedIpHeader;
        byte versionIhl = packet[0];
        if ((versionIhl >> 4) != 4) return ParseStatus.BadIpVersion;
        int headerLength = (versionIhl & 0x0F) * 4;
        if (headerLength < 20) return ParseStatus.BadIpHeaderLength;
        if ((uint)headerLength > (uint)packet.Length) return ParseStatus.TruncatedIpHeader;
        int totalLength = BinaryPrimitives.ReadUInt16BigEndian(packet[2..]);
        if (totalLength == 0)
        {
            // Segmentation offload hands large packets to the capture with a zero length; trust what was seen.
            totalLength = Math.Max(packet.Length, headerLength);
        }
        else if (totalLength < headerLength)
        {
            return ParseStatus.BadIpTotalLength;
        }

        h.IpVersion = 4;
        h.IpLength = totalLength;
        h.Source = IpAddress.FromV4(packet[12..]);
        h.Destination = IpAddress.FromV4(packet[16..]);
        h.Protocol = packet[9];
        h.FragmentId = BinaryPrimitives.ReadUInt16BigEndian(packet[4..]);
        ushort fragment = BinaryPrimitives.ReadUInt16BigEndian(packet[6..]);
        bool moreFragments = (fragment & 0x2000) != 0;
        int fragmentOffset = fragment & 0x1FFF;
        if (moreFragments || fragmentOffset != 0) h.Flags |= PacketFlags.Fragment;
        if (fragmentOffset != 0)
        {
            h.Flags |= PacketFlags.NonFirstFragment;
            return IsFlowProtocol(h.Protocol) ? ParseStatus.Ok : ParseStatus.OtherProtocol;
        }

        // Ethernet pads short frames; the IP length, not the capture, says where the packet ends.
        int end = Math.Min(packet.Length, totalLength);
        return ParseTransport(packet[headerLength..end], totalLength - headerLength, totalLength > packet.Length, ref h, tunnelDepth);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static ParseStatus ParseIpv6(ReadOnlySpan<byte> packet, ref PacketHeaders h, int tunnelDepth)
    {
        if (packet.Length < 40) return packet.Length > 0 && (packet[0] >> 4) != 6 ? ParseStatus.BadIpVersion : ParseStatus.TruncatedIpHeader;
        if ((packet[0] >> 4) != 6) return ParseStatus.BadIpVersion;
        int payloadLength = BinaryPrimitives.ReadUInt16BigEndian(packet[4..]);
        int totalLength = payloadLength == 0 ? packet.Length : 40 + payloadLength; // 0: jumbogram or offload
        h.IpVersion = 6;
        h.IpLength = totalLength;
        h.Source = IpAddress.FromV6(packet[8..]);
        h.Destination = IpAddress.FromV6(packet[24..]);
        byte next = packet[6];
        int offset = 40;
        int end = Math.Min(packet.Length, totalLength);
        bool truncated = totalLength > packet.Length;

        for (int count = 0; ; count++)
        {
            if (count > MaxExtensionHeaders) return ParseStatus.TooManyHeaders;
            switch (next)
            {
                case 0:   // hop-by-hop options
                case 43:  // routing
                case 60:  // destination options
                case 135: // mobility
                case 139: // HIP
                case 140: // shim6
                    {
                        if ((uint)(offset + 2) > (uint)end) return ParseStatus.BadExtensionHeader;
                        int length = (packet[offset + 1] + 1) * 8;
                        next = packet[offset];
                        offset += length;
                        if ((uint)offset > (uint)end) return truncated ? TruncatedInExtensions(ref h, next) : ParseStatus.BadExtensionHeader;
                        continue;
                    }
                case 51: // authentication header: length in 4-octet units, minus 2
                    {
                        if ((uint)(offset + 2) > (uint)end) return ParseStatus.BadExtensionHeader;
                        int length = (packet[offset + 1] + 2) * 4;
                        next = packet[offset];
                        offset += length;
                        if ((uint)offset > (uint)end) return truncated ? TruncatedInExtensions(ref h, next) : ParseStatus.BadExtensionHeader;
                        continue;
                    }
                case 44: // fragment
                    {
                        if ((uint)(offset + 8) > (uint)end) return ParseStatus.BadExtensionHeader;
                        next = packet[offset];
                        ushort fragment = BinaryPrimitives.ReadUInt16BigEndian(packet[(offset + 2)..]);
                        int fragmentOffset = fragment >> 3;
                        bool more = (fragment & 1) != 0;
                        h.FragmentId = BinaryPrimitives.ReadUInt32BigEndian(packet[(offset + 4)..]);
                        offset += 8;
                        if (more || fragmentOffset != 0) h.Flags |= PacketFlags.Fragment;
                        if (fragmentOffset != 0)
                        {
                            h.Protocol = next;
                            h.Flags |= PacketFlags.NonFirstFragment;
                            return IsFlowProtocol(next) ? ParseStatus.Ok : ParseStatus.OtherProtocol;
                        }
                        continue;
                    }
                default:
                    h.Protocol = next;
                    return ParseTransport(packet[offset..end], totalLength - offset, truncated, ref h, tunnelDepth);
            }
        }
    }

    private static ParseStatus TruncatedInExtensions(ref PacketHeaders h, byte next)
    {
        // The snaplen ended inside the extension headers: the addresses are good, the ports are not known.
        h.Protocol = next;
        h.Flags |= PacketFlags.Truncated;
        return IsFlowProtocol(next) ? ParseStatus.TruncatedTransportHeader : ParseStatus.OtherProtocol;
    }

    private static bool IsFlowProtocol(byte protocol) => protocol is IpProtocol.Tcp or IpProtocol.Udp or IpProtocol.Sctp or IpProtocol.Icmp or IpProtocol.Icmpv6;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static ParseStatus ParseTransport(ReadOnlySpan<byte> segment, int declaredLength, bool truncated, ref PacketHeaders h, int tunnelDepth)
    {
        if (truncated) h.Flags |= PacketFlags.Truncated;
        switch (h.Protocol)
        {
            case IpProtocol.Tcp:
                {
                    if (segment.Length < 14) return ParseStatus.TruncatedTransportHeader;
                    int dataOffset = (segment[12] >> 4) * 4;
                    if (dataOffset < 20) return ParseStatus.BadTransportHeader;
                    if (dataOffset > segment.Length && !truncated) return ParseStatus.BadTransportHeader;
                    h.SourcePort = BinaryPrimitives.ReadUInt16BigEndian(segment);
                    h.DestinationPort = BinaryPrimitives.ReadUInt16BigEndian(segment[2..]);
                    h.TcpFlags = (TcpFlags)segment[13];
                    h.Flags |= PacketFlags.HasPorts;
                    if (declaredLength > dataOffset) h.Payload = PayloadClass.Classify(dataOffset < segment.Length ? segment[dataOffset..] : default, declaredLength - dataOffset);
                    return ParseStatus.Ok;
                }
            case IpProtocol.Udp:
                {
                    if (segment.Length < 8) return ParseStatus.TruncatedTransportHeader;
                    h.SourcePort = BinaryPrimitives.ReadUInt16BigEndian(segment);
                    h.DestinationPort = BinaryPrimitives.ReadUInt16BigEndian(segment[2..]);
                    h.Flags |= PacketFlags.HasPorts;
                    if (tunnelDepth > 0 && (h.Flags & PacketFlags.Fragment) == 0)
                    {
                        ushort dport = h.DestinationPort;
                        if (dport is VxlanPort or VxlanLinuxPort) return TryDecapsulateVxlan(segment[8..], ref h, tunnelDepth);
                        if (dport == GenevePort) return TryDecapsulateGeneve(segment[8..], ref h, tunnelDepth);
                    }
                    return ParseStatus.Ok;
                }
            case IpProtocol.Sctp:
                {
                    if (segment.Length < 12) return ParseStatus.TruncatedTransportHeader;
                    h.SourcePort = BinaryPrimitives.ReadUInt16BigEndian(segment);
                    h.DestinationPort = BinaryPrimitives.ReadUInt16BigEndian(segment[2..]);
                    h.Flags |= PacketFlags.HasPorts;
                    if (segment.Length > 12) h.SctpChunkType = segment[12];
                    return ParseStatus.Ok;
                }
            case IpProtocol.Icmp:
            case IpProtocol.Icmpv6:
                {
                    if (segment.Length < 4) return ParseStatus.TruncatedTransportHeader;
                    byte type = segment[0];
                    h.IcmpType = type;
                    h.IcmpCode = segment[1];
                    bool echo = h.Protocol == IpProtocol.Icmp ? type is 0 or 8 : type is 128 or 129;
                    if (echo)
                    {
                        if (segment.Length < 8) return ParseStatus.TruncatedTransportHeader;
                        // The echo identifier tells concurrent pings apart; it stands in for both ports.
                        ushort id = BinaryPrimitives.ReadUInt16BigEndian(segment[4..]);
                        h.SourcePort = id;
                        h.DestinationPort = id;
                        h.Flags |= PacketFlags.HasPorts;
                    }
                    else if (IsIcmpError(h.Protocol, type))
                    {
                        h.Flags |= PacketFlags.IcmpError;
                        if (segment.Length > 8 && (h.Flags & PacketFlags.Tunnel) == 0) ReadQuote(segment[8..], ref h);
                    }
                    return ParseStatus.Ok;
                }
            default:
                return ParseStatus.OtherProtocol;
        }
    }

    /// <summary>
    /// The IP header and first 8 bytes of the packet an ICMP error answers (RFC 792, RFC 4443): its flow, so that the
    /// error counts as evidence on that flow (a port or host unreachable). Left unset when too little was captured.
    /// </summary>
    private static void ReadQuote(ReadOnlySpan<byte> quote, ref PacketHeaders h)
    {
        int version = quote[0] >> 4;
        int header;
        byte protocol;
        if (version == 4 && h.Protocol == IpProtocol.Icmp)
        {
            header = (quote[0] & 0x0F) * 4;
            if (header < 20 || quote.Length < header + 4) return;
            protocol = quote[9];
            h.OuterSource = IpAddress.FromV4(quote[12..]);
            h.OuterDestination = IpAddress.FromV4(quote[16..]);
        }
        else if (version == 6 && h.Protocol == IpProtocol.Icmpv6)
        {
            header = 40;
            if (quote.Length < header + 4) return;
            protocol = quote[6];
            h.OuterSource = IpAddress.FromV6(quote[8..]);
            h.OuterDestination = IpAddress.FromV6(quote[24..]);
        }
        else
        {
            return;
        }
        var transport = quote[header..];
        switch (protocol)
        {
            case IpProtocol.Tcp or IpProtocol.Udp or IpProtocol.Sctp:
                h.QuotedPorts = BinaryPrimitives.ReadUInt32BigEndian(transport);
                break;
            case IpProtocol.Icmp or IpProtocol.Icmpv6:
                // A quoted echo request: its identifier stands in for both ports, as for the echo flow itself.
                if (transport[0] is not (8 or 128) || transport.Length < 6) return;
                ushort id = BinaryPrimitives.ReadUInt16BigEndian(transport[4..]);
                h.QuotedPorts = (uint)id << 16 | id;
                break;
            default:
                return;
        }
        h.QuotedProtocol = protocol;
        h.Flags |= PacketFlags.IcmpQuote;
    }

    private static bool IsIcmpError(byte protocol, byte type) => protocol == IpProtocol.Icmp
        ? type is 3 or 4 or 5 or 11 or 12
        : type is 1 or 2 or 3 or 4;

    private static ParseStatus TryDecapsulateVxlan(ReadOnlySpan<byte> payload, ref PacketHeaders h, int tunnelDepth)
    {
        // VXLAN: flags (I bit 0x08), 3 reserved, VNI (3 bytes), 1 reserved; then an Ethernet frame.
        if (payload.Length < 8 + 14 || (payload[0] & 0x08) == 0) return ParseStatus.Ok;
        uint vni = (uint)(payload[4] << 16 | payload[5] << 8 | payload[6]);
        return ParseInner(payload[8..], LinkType.Ethernet, vni, ref h, tunnelDepth);
    }

    private static ParseStatus TryDecapsulateGeneve(ReadOnlySpan<byte> payload, ref PacketHeaders h, int tunnelDepth)
    {
        // Geneve: version (2 bits) + options length (6 bits, 4-byte units), flags, protocol type, VNI (3 bytes), reserved.
        if (payload.Length < 8 || (payload[0] >> 6) != 0) return ParseStatus.Ok;
        int headerLength = 8 + (payload[0] & 0x3F) * 4;
        if ((uint)headerLength > (uint)payload.Length) return ParseStatus.Ok;
        ushort protocolType = BinaryPrimitives.ReadUInt16BigEndian(payload[2..]);
        uint vni = (uint)(payload[4] << 16 | payload[5] << 8 | payload[6]);
        LinkType inner;
        if (protocolType == EtherTypeTransparentBridging) inner = LinkType.Ethernet;
        else if (protocolType == EtherTypeIpv4) inner = LinkType.Ipv4;
        else if (protocolType == EtherTypeIpv6) inner = LinkType.Ipv6;
        else return ParseStatus.Ok;
        return ParseInner(payload[headerLength..], inner, vni, ref h, tunnelDepth);
    }

    private static ParseStatus ParseInner(ReadOnlySpan<byte> inner, LinkType link, uint vni, ref PacketHeaders h, int tunnelDepth)
    {
        // Parse into a copy so that an unreadable inner frame leaves the outer UDP flow intact.
        PacketHeaders outer = h;
        PacketHeaders candidate = outer;
        candidate.Flags = PacketFlags.None;
        candidate.SourcePort = 0;
        candidate.DestinationPort = 0;
        ParseStatus status = ParseLink(inner, link, ref candidate, tunnelDepth - 1);
        if (status != ParseStatus.Ok) return ParseStatus.Ok;
        h = candidate;
        h.OuterSource = outer.Source;
        h.OuterDestination = outer.Destination;
        h.TunnelId = vni;
        h.Flags |= PacketFlags.Tunnel;
        return ParseStatus.Ok;
    }
}
