using System.Buffers.Binary;

namespace Tripline.Benchmarks;

/// <summary>
/// A seeded corpus of realistic header-only frames (snaplen 128): Ethernet with and without VLAN tags, IPv4 and
/// IPv6 (some with extension headers), TCP with options, UDP, ICMP. The same corpus feeds every variant.
/// </summary>
public static class FrameCorpus
{
    public static byte[][] Create(int count, int seed, int flows = 1024)
    {
        var random = new Random(seed);
        var frames = new byte[count][];
        for (int i = 0; i < count; i++)
        {
            int flow = random.Next(flows);
            int kind = flow % 10;
            bool reply = random.Next(2) == 0;
            frames[i] = kind switch
            {
                < 5 => Tcp(flow, reply, vlan: false, ipv6: false, random),
                5 => Tcp(flow, reply, vlan: true, ipv6: false, random),
                6 => Tcp(flow, reply, vlan: false, ipv6: true, random),
                7 => Udp(flow, reply, ipv6: false),
                8 => Udp(flow, reply, ipv6: true),
                _ => Icmp(flow, reply),
            };
        }
        return frames;
    }

    private static int Ethernet(Span<byte> frame, bool vlan, ushort etherType)
    {
        frame[..6].Fill(0x02);
        frame.Slice(6, 6).Fill(0x04);
        int offset = 12;
        if (vlan)
        {
            BinaryPrimitives.WriteUInt16BigEndian(frame[offset..], 0x8100);
            BinaryPrimitives.WriteUInt16BigEndian(frame[(offset + 2)..], 100);
            offset += 4;
        }
        BinaryPrimitives.WriteUInt16BigEndian(frame[offset..], etherType);
        return offset + 2;
    }

    private static int Ipv4(Span<byte> p, int flow, bool reply, byte protocol, int payload)
    {
        uint a = 0x0A000000u | (uint)(flow & 0xFFFF) << 8 | 1;
        uint b = 0x0A010000u | (uint)(flow % 200) << 8 | 2;
        p[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(p[2..], (ushort)(20 + payload));
        BinaryPrimitives.WriteUInt16BigEndian(p[4..], (ushort)flow);
        p[6] = 0x40;
        p[8] = 64;
        p[9] = protocol;
        BinaryPrimitives.WriteUInt32BigEndian(p[12..], reply ? b : a);
        BinaryPrimitives.WriteUInt32BigEndian(p[16..], reply ? a : b);
        return 20;
    }

    private static int Ipv6(Span<byte> p, int flow, bool reply, byte protocol, int payload, bool hopByHop)
    {
        p[0] = 0x60;
        int ext = hopByHop ? 8 : 0;
        BinaryPrimitives.WriteUInt16BigEndian(p[4..], (ushort)(payload + ext));
        p[6] = hopByHop ? (byte)0 : protocol;
        p[7] = 64;
        Span<byte> a = stackalloc byte[16];
        Span<byte> b = stackalloc byte[16];
        a[0] = 0xfd; a[1] = 0x00; BinaryPrimitives.WriteInt32BigEndian(a[12..], flow); a[11] = 1;
        b[0] = 0xfd; b[1] = 0x01; BinaryPrimitives.WriteInt32BigEndian(b[12..], flow % 200); b[11] = 2;
        (reply ? b : a).CopyTo(p[8..]);
        (reply ? a : b).CopyTo(p[24..]);
        if (hopByHop)
        {
            p[40] = protocol;
            p[41] = 0;
            p.Slice(42, 6).Clear(); // PadN
            p[42] = 1; p[43] = 4;
        }
        return 40 + ext;
    }

    private static byte[] Tcp(int flow, bool reply, bool vlan, bool ipv6, Random random)
    {
        var frame = new byte[128];
        int payload = random.Next(0, 1400);
        int offset = Ethernet(frame, vlan, ipv6 ? (ushort)0x86DD : (ushort)0x0800);
        offset += ipv6 ? Ipv6(frame.AsSpan(offset), flow, reply, 6, 32 + payload, hopByHop: flow % 3 == 0) : Ipv4(frame.AsSpan(offset), flow, reply, 6, 32 + payload);
        var tcp = frame.AsSpan(offset);
        ushort client = (ushort)(32768 + flow % 28000), server = (ushort)(flow % 2 == 0 ? 443 : 8080);
        BinaryPrimitives.WriteUInt16BigEndian(tcp, reply ? server : client);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], reply ? client : server);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], (uint)random.Next());
        BinaryPrimitives.WriteUInt32BigEndian(tcp[8..], (uint)random.Next());
        tcp[12] = 0x80; // 32-byte header: timestamps option
        tcp[13] = 0x18; // PSH ACK
        BinaryPrimitives.WriteUInt16BigEndian(tcp[14..], 502);
        tcp[20] = 1; tcp[21] = 1; tcp[22] = 8; tcp[23] = 10;
        int length = Math.Min(128, offset + 32 + Math.Min(payload, 60));
        return frame[..length];
    }

    private static byte[] Udp(int flow, bool reply, bool ipv6)
    {
        var frame = new byte[128];
        int offset = Ethernet(frame, false, ipv6 ? (ushort)0x86DD : (ushort)0x0800);
        offset += ipv6 ? Ipv6(frame.AsSpan(offset), flow, reply, 17, 8 + 40, hopByHop: false) : Ipv4(frame.AsSpan(offset), flow, reply, 17, 8 + 40);
        var udp = frame.AsSpan(offset);
        ushort client = (ushort)(40000 + flow % 20000);
        BinaryPrimitives.WriteUInt16BigEndian(udp, reply ? (ushort)53 : client);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], reply ? client : (ushort)53);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], 48);
        return frame[..Math.Min(128, offset + 48)];
    }

    private static byte[] Icmp(int flow, bool reply)
    {
        var frame = new byte[128];
        int offset = Ethernet(frame, false, 0x0800);
        offset += Ipv4(frame.AsSpan(offset), flow, reply, 1, 64);
        var icmp = frame.AsSpan(offset);
        icmp[0] = reply ? (byte)0 : (byte)8;
        BinaryPrimitives.WriteUInt16BigEndian(icmp[4..], (ushort)flow);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[6..], 1);
        return frame[..(offset + 64)];
    }
}
