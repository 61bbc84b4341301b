using System.Buffers.Binary;
using Tripline.Capture.Parsing;

namespace Tripline.TrafficGen;

/// <summary>One direction of a conversation as it appears on the wire: MACs and IP addresses of one family.</summary>
internal struct Leg
{
    public ulong SourceMac;
    public ulong DestinationMac;
    public bool V6;
    public uint Source4;
    public uint Destination4;
    public UInt128 Source6;
    public UInt128 Destination6;
    public uint FlowLabel;
    public byte Ttl;
}

internal enum TcpOptionSet : byte
{
    None,
    /// <summary>MSS, SACK permitted, timestamps, window scale: what Linux puts on a SYN (20 bytes).</summary>
    Syn,
    /// <summary>NOP, NOP, timestamps (12 bytes) on every later segment.</summary>
    Timestamps,
    /// <summary>
    /// NOP, NOP, timestamps, NOP, NOP and SACK with three blocks: 40 bytes, the most TCP allows, as a receiver
    /// recovering from losses sends. The payload starts 94 bytes into an Ethernet/IPv4 frame.
    /// </summary>
    Long,
}

/// <summary>
/// Writes Ethernet frames by hand into one reusable buffer. Only what the snap length keeps is written, but lengths
/// and checksums describe the whole frame, as a capture truncated by the kernel would show it.
/// </summary>
internal sealed class FrameBuilder
{
    public const ushort EtherTypeIpv4 = 0x0800;
    public const ushort EtherTypeIpv6 = 0x86DD;
    public const ushort EtherTypeArp = 0x0806;
    private const int MinimumFrame = 60;

    private readonly byte[] _frame;
    private readonly int _snapLength;

    public FrameBuilder(int snapLength)
    {
        _snapLength = snapLength;
        _frame = new byte[Math.Max(snapLength, 512) + 64];
    }

    /// <summary>Length of the last frame on the wire.</summary>
    public int WireLength { get; private set; }

    /// <summary>The captured part of the last frame (at most the snap length).</summary>
    public ReadOnlySpan<byte> Captured => _frame.AsSpan(0, Math.Min(WireLength, _snapLength));

    /// <summary>Scratch for payloads built elsewhere (DNS messages).</summary>
    public Span<byte> Buffer => _frame;

    public void Tcp(in Leg leg, ushort sourcePort, ushort destinationPort, uint seq, uint ack, TcpFlags flags, ushort window,
        TcpOptionSet options, uint tsValue, uint tsEcho, int payloadLength, PayloadPattern? pattern, ushort ipId)
    {
        int optionLength = options switch { TcpOptionSet.Syn => 20, TcpOptionSet.Timestamps => 12, TcpOptionSet.Long => 40, _ => 0 };
        int headerLength = 20 + optionLength;
        int segmentLength = headerLength + payloadLength;
        int t = WriteIp(in leg, IpProtocol.Tcp, segmentLength, ipId);
        Span<byte> f = _frame;
        BinaryPrimitives.WriteUInt16BigEndian(f[t..], sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(f[(t + 2)..], destinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(f[(t + 4)..], seq);
        BinaryPrimitives.WriteUInt32BigEndian(f[(t + 8)..], (flags & TcpFlags.Ack) != 0 ? ack : 0);
        f[t + 12] = (byte)(headerLength / 4 << 4);
        f[t + 13] = (byte)flags;
        BinaryPrimitives.WriteUInt16BigEndian(f[(t + 14)..], window);
        BinaryPrimitives.WriteUInt32BigEndian(f[(t + 16)..], 0); // checksum and urgent pointer
        int o = t + 20;
        if (options == TcpOptionSet.Syn)
        {
            f[o] = 2; f[o + 1] = 4; BinaryPrimitives.WriteUInt16BigEndian(f[(o + 2)..], leg.V6 ? (ushort)1440 : (ushort)1460);
            f[o + 4] = 4; f[o + 5] = 2; // SACK permitted
            f[o + 6] = 8; f[o + 7] = 10;
            BinaryPrimitives.WriteUInt32BigEndian(f[(o + 8)..], tsValue);
            BinaryPrimitives.WriteUInt32BigEndian(f[(o + 12)..], tsEcho);
            f[o + 16] = 1; f[o + 17] = 3; f[o + 18] = 3; f[o + 19] = 7; // NOP, window scale 7
        }
        else if (options is TcpOptionSet.Timestamps or TcpOptionSet.Long)
        {
            f[o] = 1; f[o + 1] = 1; f[o + 2] = 8; f[o + 3] = 10;
            BinaryPrimitives.WriteUInt32BigEndian(f[(o + 4)..], tsValue);
            BinaryPrimitives.WriteUInt32BigEndian(f[(o + 8)..], tsEcho);
            if (options == TcpOptionSet.Long)
            {
                // Three blocks above the acknowledged sequence: segments that arrived after a lost one.
                f[o + 12] = 1; f[o + 13] = 1; f[o + 14] = 5; f[o + 15] = 26;
                for (int b = 0; b < 3; b++)
                {
                    BinaryPrimitives.WriteUInt32BigEndian(f[(o + 16 + 8 * b)..], ack + (uint)(2 * b + 1) * 1448);
                    BinaryPrimitives.WriteUInt32BigEndian(f[(o + 20 + 8 * b)..], ack + (uint)(2 * b + 2) * 1448);
                }
            }
        }
        int payloadStart = t + headerLength;
        ulong sum = Checksum.Sum(f.Slice(t, headerLength), PseudoHeader(in leg, IpProtocol.Tcp, segmentLength));
        if (payloadLength > 0 && pattern is not null)
        {
            int written = Math.Clamp(_snapLength - payloadStart, 0, payloadLength);
            written = Math.Min(written, _frame.Length - payloadStart);
            pattern.Fill(f.Slice(payloadStart, written));
            sum += pattern.Sum(payloadLength);
        }
        BinaryPrimitives.WriteUInt16BigEndian(f[(t + 16)..], Checksum.Fold(sum));
        Finish(payloadStart + payloadLength);
    }

    public void Udp(in Leg leg, ushort sourcePort, ushort destinationPort, int payloadLength, PayloadPattern pattern, ushort ipId)
    {
        int length = 8 + payloadLength;
        int u = WriteIp(in leg, IpProtocol.Udp, length, ipId);
        Span<byte> f = _frame;
        BinaryPrimitives.WriteUInt16BigEndian(f[u..], sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(f[(u + 2)..], destinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(f[(u + 4)..], (ushort)length);
        BinaryPrimitives.WriteUInt16BigEndian(f[(u + 6)..], 0);
        int payloadStart = u + 8;
        int written = Math.Min(Math.Clamp(_snapLength - payloadStart, 0, payloadLength), _frame.Length - payloadStart);
        pattern.Fill(f.Slice(payloadStart, written));
        ulong sum = Checksum.Sum(f.Slice(u, 8), PseudoHeader(in leg, IpProtocol.Udp, length)) + pattern.Sum(payloadLength);
        ushort checksum = Checksum.Fold(sum);
        BinaryPrimitives.WriteUInt16BigEndian(f[(u + 6)..], checksum == 0 ? (ushort)0xFFFF : checksum);
        Finish(payloadStart + payloadLength);
    }

    /// <summary>A UDP datagram whose payload is given whole (DNS): small enough to build in full.</summary>
    public void Udp(in Leg leg, ushort sourcePort, ushort destinationPort, ReadOnlySpan<byte> payload, ushort ipId)
    {
        int length = 8 + payload.Length;
        int u = WriteIp(in leg, IpProtocol.Udp, length, ipId);
        Span<byte> f = _frame;
        BinaryPrimitives.WriteUInt16BigEndian(f[u..], sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(f[(u + 2)..], destinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(f[(u + 4)..], (ushort)length);
        BinaryPrimitives.WriteUInt16BigEndian(f[(u + 6)..], 0);
        payload.CopyTo(f[(u + 8)..]);
        ushort checksum = Checksum.Fold(Checksum.Sum(f.Slice(u, length), PseudoHeader(in leg, IpProtocol.Udp, length)));
        BinaryPrimitives.WriteUInt16BigEndian(f[(u + 6)..], checksum == 0 ? (ushort)0xFFFF : checksum);
        Finish(u + length);
    }

    /// <summary>An echo request or reply (ICMP or ICMPv6 by the leg's family) with ping's 56-byte payload.</summary>
    public void IcmpEcho(in Leg leg, bool reply, ushort id, ushort seq, long timestampNs, ushort ipId)
    {
        const int payloadLength = 56;
        int length = 8 + payloadLength;
        byte protocol = leg.V6 ? IpProtocol.Icmpv6 : IpProtocol.Icmp;
        int c = WriteIp(in leg, protocol, length, ipId);
        Span<byte> f = _frame;
        f[c] = leg.V6 ? (byte)(reply ? 129 : 128) : (byte)(reply ? 0 : 8);
        f[c + 1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(f[(c + 2)..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(f[(c + 4)..], id);
        BinaryPrimitives.WriteUInt16BigEndian(f[(c + 6)..], seq);
        // ping's payload: the send time (struct timeval), then 0x10, 0x11, ...
        long micros = timestampNs / 1000;
        BinaryPrimitives.WriteInt64LittleEndian(f[(c + 8)..], micros / 1_000_000);
        BinaryPrimitives.WriteInt64LittleEndian(f[(c + 16)..], micros % 1_000_000);
        PayloadPattern.Ping.Fill(f.Slice(c + 24, payloadLength - 16));
        ulong sum = Checksum.Sum(f.Slice(c, length), leg.V6 ? PseudoHeader(in leg, protocol, length) : 0);
        BinaryPrimitives.WriteUInt16BigEndian(f[(c + 2)..], Checksum.Fold(sum));
        Finish(c + length);
    }

    /// <summary>An ARP request (who-has) or reply, padded to the Ethernet minimum.</summary>
    public void Arp(ulong senderMac, uint senderIp, ulong targetMac, uint targetIp, bool reply)
    {
        Span<byte> f = _frame;
        WriteMac(f, reply ? targetMac : 0xFFFF_FFFF_FFFFUL);
        WriteMac(f[6..], senderMac);
        BinaryPrimitives.WriteUInt16BigEndian(f[12..], EtherTypeArp);
        BinaryPrimitives.WriteUInt16BigEndian(f[14..], 1);
        BinaryPrimitives.WriteUInt16BigEndian(f[16..], EtherTypeIpv4);
        f[18] = 6;
        f[19] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(f[20..], reply ? (ushort)2 : (ushort)1);
        WriteMac(f[22..], senderMac);
        BinaryPrimitives.WriteUInt32BigEndian(f[28..], senderIp);
        WriteMac(f[32..], reply ? targetMac : 0);
        BinaryPrimitives.WriteUInt32BigEndian(f[38..], targetIp);
        Finish(42);
    }

    /// <summary>An IPv6 neighbour solicitation to the target's solicited-node multicast group.</summary>
    public void NeighborSolicitation(ulong sourceMac, UInt128 sourceLinkLocal, UInt128 target)
    {
        var group = new UInt128(0xFF02_0000_0000_0000UL, 0x0000_0001_FF00_0000UL | (ulong)(target & 0xFFFFFF));
        ulong groupMac = 0x3333_0000_0000UL | (ulong)(uint)(group & 0xFFFFFFFF);
        var leg = new Leg { SourceMac = sourceMac, DestinationMac = groupMac, V6 = true, Source6 = sourceLinkLocal, Destination6 = group, Ttl = 255 };
        const int length = 32; // type, code, checksum, reserved, target, source link-layer address option
        int c = WriteIp(in leg, IpProtocol.Icmpv6, length, 0);
        Span<byte> f = _frame;
        f[c] = 135;
        f[c + 1] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(f[(c + 2)..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(f[(c + 6)..], 0);
        BinaryPrimitives.WriteUInt128BigEndian(f[(c + 8)..], target);
        f[c + 24] = 1;
        f[c + 25] = 1;
        WriteMac(f[(c + 26)..], sourceMac);
        ulong sum = Checksum.Sum(f.Slice(c, length), PseudoHeader(in leg, IpProtocol.Icmpv6, length));
        BinaryPrimitives.WriteUInt16BigEndian(f[(c + 2)..], Checksum.Fold(sum));
        Finish(c + length);
    }

    /// <summary>An LLDP frame from a switch port: not IP, counted as skipped.</summary>
    public void Lldp(ulong sourceMac)
    {
        Span<byte> f = _frame;
        WriteMac(f, 0x0180_C200_000EUL);
        WriteMac(f[6..], sourceMac);
        BinaryPrimitives.WriteUInt16BigEndian(f[12..], 0x88CC);
        int o = 14;
        // Chassis id (MAC), port id (interface name), TTL, end.
        BinaryPrimitives.WriteUInt16BigEndian(f[o..], (1 << 9) | 7); f[o + 2] = 4; WriteMac(f[(o + 3)..], sourceMac); o += 9;
        BinaryPrimitives.WriteUInt16BigEndian(f[o..], (2 << 9) | 6); f[o + 2] = 5; "eth0\0"u8.CopyTo(f[(o + 3)..]); o += 8;
        BinaryPrimitives.WriteUInt16BigEndian(f[o..], (3 << 9) | 2); BinaryPrimitives.WriteUInt16BigEndian(f[(o + 2)..], 120); o += 4;
        BinaryPrimitives.WriteUInt16BigEndian(f[o..], 0); o += 2;
        Finish(o);
    }

    /// <summary>A broken frame of one of several kinds (bad header length, bad version, cut short, bad TCP offset).</summary>
    public void Malformed(in Leg leg, int kind, ushort ipId)
    {
        Span<byte> f = _frame;
        switch (kind % 4)
        {
            case 0:
                {
                    // IPv4 with a header length of 8 bytes: no such header.
                    int ip = WriteIp(leg with { V6 = false }, IpProtocol.Tcp, 20, ipId) - 20;
                    f[ip] = 0x42;
                    f.Slice(ip + 20, 20).Clear();
                    Finish(ip + 40);
                    break;
                }
            case 1:
                {
                    // An EtherType that says IPv4 over a version-7 header.
                    int ip = WriteIp(leg with { V6 = false }, IpProtocol.Udp, 8, ipId) - 20;
                    f[ip] = 0x75;
                    f.Slice(ip + 20, 8).Clear();
                    Finish(ip + 28);
                    break;
                }
            case 2:
                {
                    // Cut inside the IP header: a frame damaged on a bad link.
                    WriteIp(leg with { V6 = false }, IpProtocol.Tcp, 40, ipId);
                    WireLength = 14 + 12;
                    break;
                }
            default:
                {
                    // TCP with a data offset of 3 words (less than the fixed header).
                    Tcp(leg with { V6 = false }, 40000, 80, 1, 0, TcpFlags.Syn, 1024, TcpOptionSet.None, 0, 0, 0, null, ipId);
                    f[14 + 20 + 12] = 0x30;
                    break;
                }
        }
    }

    private int WriteIp(in Leg leg, byte protocol, int payloadLength, ushort ipId)
    {
        Span<byte> f = _frame;
        WriteMac(f, leg.DestinationMac);
        WriteMac(f[6..], leg.SourceMac);
        byte ttl = leg.Ttl == 0 ? (byte)64 : leg.Ttl;
        if (leg.V6)
        {
            BinaryPrimitives.WriteUInt16BigEndian(f[12..], EtherTypeIpv6);
            BinaryPrimitives.WriteUInt32BigEndian(f[14..], 0x6000_0000u | (leg.FlowLabel & 0xFFFFF));
            BinaryPrimitives.WriteUInt16BigEndian(f[18..], (ushort)payloadLength);
            f[20] = protocol;
            f[21] = ttl;
            BinaryPrimitives.WriteUInt128BigEndian(f[22..], leg.Source6);
            BinaryPrimitives.WriteUInt128BigEndian(f[38..], leg.Destination6);
            return 54;
        }
        BinaryPrimitives.WriteUInt16BigEndian(f[12..], EtherTypeIpv4);
        f[14] = 0x45;
        f[15] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(f[16..], (ushort)(20 + payloadLength));
        BinaryPrimitives.WriteUInt16BigEndian(f[18..], ipId);
        BinaryPrimitives.WriteUInt16BigEndian(f[20..], 0x4000); // don't fragment
        f[22] = ttl;
        f[23] = protocol;
        BinaryPrimitives.WriteUInt16BigEndian(f[24..], 0);
        BinaryPrimitives.WriteUInt32BigEndian(f[26..], leg.Source4);
        BinaryPrimitives.WriteUInt32BigEndian(f[30..], leg.Destination4);
        BinaryPrimitives.WriteUInt16BigEndian(f[24..], Checksum.Fold(Checksum.Sum(f.Slice(14, 20))));
        return 34;
    }

    private static ulong PseudoHeader(in Leg leg, byte protocol, int length) => leg.V6
        ? Checksum.PseudoHeaderV6(leg.Source6, leg.Destination6, protocol, length)
        : Checksum.PseudoHeaderV4(leg.Source4, leg.Destination4, protocol, length);

    private void Finish(int length)
    {
        if (length < MinimumFrame)
        {
            // Ethernet pads short frames; the IP length tells a parser where the packet really ends.
            _frame.AsSpan(length, MinimumFrame - length).Clear();
            length = MinimumFrame;
        }
        WireLength = length;
    }

    private static void WriteMac(Span<byte> destination, ulong mac)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)(mac >> 32));
        BinaryPrimitives.WriteUInt32BigEndian(destination[2..], (uint)mac);
    }
}
