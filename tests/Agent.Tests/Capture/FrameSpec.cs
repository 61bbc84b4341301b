using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using PacketDotNet;
using PacketDotNet.Utils;
using Tripline.Capture.Parsing;
using LinkType = Tripline.Capture.Parsing.LinkType;

namespace Tripline.Tests.Capture;

public enum Link
{
    Ethernet,
    Vlan,
    QinQ,
    Sll,
    Sll2,
    Raw,
}

public enum Transport
{
    Tcp,
    Udp,
    Icmp,
    IcmpError,
    Sctp,
}

/// <summary>
/// A frame described by its fields. <see cref="Build"/> makes it with PacketDotNet (IP and transport) and adds
/// the link header, VLAN tags and IPv6 extension headers by hand where PacketDotNet has no constructor for them.
/// </summary>
public sealed record FrameSpec(
    Link Link,
    bool V6,
    int ExtensionHeaders,
    Transport Transport,
    ushort SourcePort,
    ushort DestinationPort,
    byte TcpFlags,
    int Payload,
    ushort Vlan,
    int InterfaceIndex,
    int Seed)
{
    public override string ToString() => $"{Link}/{(V6 ? "v6" : "v4")}+{ExtensionHeaders}/{Transport} {SourcePort}->{DestinationPort} flags={TcpFlags:x2} payload={Payload} seed={Seed}";

    public IPAddress Source => V6 ? IPAddress.Parse($"fd00:{Seed & 0xFFFF:x}::{(Seed >> 3) & 0xFFFF:x}:1") : new IPAddress(new byte[] { 10, (byte)Seed, (byte)(Seed >> 8), 1 });
    public IPAddress Destination => V6 ? IPAddress.Parse($"2001:db8:{Seed & 0xFFFF:x}::2") : new IPAddress(new byte[] { 192, 168, (byte)(Seed >> 4), 2 });

    public byte Protocol => Transport switch
    {
        Transport.Tcp => IpProtocol.Tcp,
        Transport.Udp => IpProtocol.Udp,
        Transport.Sctp => IpProtocol.Sctp,
        _ => V6 ? IpProtocol.Icmpv6 : IpProtocol.Icmp,
    };

    public LinkType LinkType => Link switch
    {
        Link.Sll => LinkType.LinuxSll,
        Link.Sll2 => LinkType.LinuxSll2,
        Link.Raw => LinkType.Raw,
        _ => LinkType.Ethernet,
    };

    public bool HasPorts => Transport != Transport.IcmpError;

    public ushort ExpectedSourcePort => Transport is Transport.Icmp ? SourcePort : Transport == Transport.IcmpError ? (ushort)0 : SourcePort;
    public ushort ExpectedDestinationPort => Transport is Transport.Icmp ? SourcePort : Transport == Transport.IcmpError ? (ushort)0 : DestinationPort;

    public byte IcmpType => Transport switch
    {
        Transport.Icmp => V6 ? (byte)128 : (byte)8,
        Transport.IcmpError => V6 ? (byte)1 : (byte)3,
        _ => 0,
    };

    public byte IcmpCode => Transport == Transport.IcmpError ? (byte)3 : (byte)0;

    /// <summary>The IP packet alone (what a raw-IP link carries).</summary>
    public byte[] BuildIp()
    {
        byte[] payload = new byte[Payload];
        for (int i = 0; i < payload.Length; i++) payload[i] = (byte)(Seed + i * 7);
        Packet transport;
        switch (Transport)
        {
            case Transport.Tcp:
                {
                    // MSS, SACK permitted, timestamps, NOP, window scale: the options a Linux SYN carries. PacketDotNet
                    // cannot grow a constructed header, so the segment is laid out first and PacketDotNet fills it in.
                    byte[] options = (Seed & 1) == 0 ? [2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7] : [];
                    byte[] segment = new byte[20 + options.Length + payload.Length];
                    segment[12] = (byte)((20 + options.Length) / 4 << 4);
                    options.CopyTo(segment, 20);
                    payload.CopyTo(segment, 20 + options.Length);
                    var tcp = new TcpPacket(new ByteArraySegment(segment))
                    {
                        SourcePort = SourcePort,
                        DestinationPort = DestinationPort,
                        SequenceNumber = (uint)Seed * 2654435761u,
                        AcknowledgmentNumber = (uint)Seed,
                        Flags = TcpFlags,
                        WindowSize = 502,
                    };
                    transport = tcp;
                    break;
                }
            case Transport.Udp:
                transport = new UdpPacket(SourcePort, DestinationPort) { PayloadData = payload };
                break;
            case Transport.Sctp:
                {
                    // Common header, then an INIT chunk's type byte; PacketDotNet has no SCTP packet, so it is raw data.
                    byte[] sctp = new byte[12 + 4 + payload.Length];
                    BinaryPrimitives.WriteUInt16BigEndian(sctp, SourcePort);
                    BinaryPrimitives.WriteUInt16BigEndian(sctp.AsSpan(2), DestinationPort);
                    sctp[12] = 1;
                    payload.CopyTo(sctp, 16);
                    return Ip(null, sctp);
                }
            default:
                {
                    byte[] icmp = new byte[8 + payload.Length];
                    icmp[0] = IcmpType;
                    icmp[1] = IcmpCode;
                    if (Transport == Transport.Icmp)
                    {
                        BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(4), SourcePort);
                        BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(6), DestinationPort);
                    }
                    payload.CopyTo(icmp, 8);
                    transport = V6 ? new IcmpV6Packet(new ByteArraySegment(icmp)) : new IcmpV4Packet(new ByteArraySegment(icmp));
                    break;
                }
        }
        return Ip(transport, null);
    }

    private byte[] Ip(Packet? transport, byte[]? rawPayload)
    {
        byte[] bytes;
        if (V6)
        {
            var ip = new IPv6Packet(Source, Destination) { HopLimit = 64 };
            if (transport is not null) ip.PayloadPacket = transport; else ip.PayloadData = rawPayload;
            ip.NextHeader = (ProtocolType)Protocol;
            ip.PayloadLength = (ushort)(transport?.Bytes.Length ?? rawPayload!.Length);
            bytes = ip.Bytes;
            if (ExtensionHeaders > 0) bytes = InsertExtensionHeaders(bytes);
        }
        else
        {
            var ip = new IPv4Packet(Source, Destination) { TimeToLive = 64, Id = (ushort)Seed };
            if (transport is not null) ip.PayloadPacket = transport; else ip.PayloadData = rawPayload;
            ip.Protocol = (ProtocolType)Protocol;
            ip.TotalLength = ip.HeaderLength + (transport?.Bytes.Length ?? rawPayload!.Length);
            ip.UpdateIPChecksum();
            bytes = ip.Bytes;
        }
        return bytes;
    }

    private byte[] InsertExtensionHeaders(byte[] packet)
    {
        // Hop-by-hop (8 bytes of PadN), destination options (16), and a first fragment (offset 0, more set).
        byte[] kinds = [0, 60, 44, 60];
        var inserted = new List<byte>();
        byte finalNext = packet[6];
        int count = Math.Min(ExtensionHeaders, kinds.Length);
        for (int i = 0; i < count; i++)
        {
            byte next = i + 1 < count ? kinds[i + 1] : finalNext;
            if (kinds[i] == 44)
            {
                inserted.AddRange(new byte[] { next, 0, 0, 1, 0, 0, (byte)(Seed >> 8), (byte)Seed });
            }
            else
            {
                int length = kinds[i] == 60 ? 16 : 8;
                var h = new byte[length];
                h[0] = next;
                h[1] = (byte)(length / 8 - 1);
                h[2] = 1; // PadN
                h[3] = (byte)(length - 4);
                inserted.AddRange(h);
            }
        }
        byte[] result = new byte[packet.Length + inserted.Count];
        packet.AsSpan(0, 40).CopyTo(result);
        result[6] = kinds[0];
        inserted.CopyTo(result, 40);
        packet.AsSpan(40).CopyTo(result.AsSpan(40 + inserted.Count));
        BinaryPrimitives.WriteUInt16BigEndian(result.AsSpan(4), (ushort)(result.Length - 40));
        return result;
    }

    public byte[] Build()
    {
        byte[] ip = BuildIp();
        ushort etherType = V6 ? (ushort)0x86DD : (ushort)0x0800;
        switch (Link)
        {
            case Link.Raw:
                return ip;
            case Link.Sll:
                {
                    byte[] frame = new byte[16 + ip.Length];
                    BinaryPrimitives.WriteUInt16BigEndian(frame, 0);      // sent to us
                    BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(2), 1);
                    BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(4), 6);
                    frame[6] = 0x02; frame[11] = (byte)Seed;
                    BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(14), etherType);
                    ip.CopyTo(frame, 16);
                    return frame;
                }
            case Link.Sll2:
                {
                    byte[] frame = new byte[20 + ip.Length];
                    BinaryPrimitives.WriteUInt16BigEndian(frame, etherType);
                    BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(4), InterfaceIndex);
                    BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(8), 1);
                    frame[10] = 0; frame[11] = 6; frame[12] = 0x02; frame[17] = (byte)Seed;
                    ip.CopyTo(frame, 20);
                    return frame;
                }
            default:
                {
                    var ethernet = new EthernetPacket(PhysicalAddress.Parse("02-00-00-00-00-01"), PhysicalAddress.Parse("0A-58-0A-F4-00-02"), V6 ? EthernetType.IPv6 : EthernetType.IPv4)
                    {
                        PayloadData = ip,
                    };
                    byte[] frame = ethernet.Bytes;
                    if (Link == Link.Ethernet) return frame;
                    // Tags sit between the source MAC and the EtherType: QinQ is an 802.1ad tag, then an 802.1Q one.
                    var tags = new List<byte>();
                    if (Link == Link.QinQ) tags.AddRange(new byte[] { 0x88, 0xA8, 0x20, 100 });
                    tags.AddRange(new byte[] { 0x81, 0x00, (byte)(0x60 | (Vlan >> 8)), (byte)Vlan });
                    return [.. frame.AsSpan(0, 12), .. tags, .. frame.AsSpan(12)];
                }
        }
    }
}
