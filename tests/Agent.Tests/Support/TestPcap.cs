using System.Buffers.Binary;

namespace Tripline.Tests.Support;

/// <summary>Writes classic pcap files of hand-built Ethernet/IPv4 frames for replay tests.</summary>
internal sealed class TestPcap : IDisposable
{
    private readonly BinaryWriter _writer;

    public TestPcap(Stream stream, int linkType = 1)
    {
        _writer = new BinaryWriter(stream);
        _writer.Write(0xA1B2C3D4u);
        _writer.Write((ushort)2);
        _writer.Write((ushort)4);
        _writer.Write(0);
        _writer.Write(0u);
        _writer.Write(65535u);
        _writer.Write((uint)linkType);
    }

    public void Write(long unixMicros, ReadOnlySpan<byte> frame, int? originalLength = null)
    {
        _writer.Write((uint)(unixMicros / 1_000_000));
        _writer.Write((uint)(unixMicros % 1_000_000));
        _writer.Write((uint)frame.Length);
        _writer.Write((uint)(originalLength ?? frame.Length));
        _writer.Write(frame);
    }

    /// <summary>A capture of one whole TCP connection, headers only: handshake, then each side's FIN, then the last ACK.</summary>
    public static void WriteConnection(string path, string client, ushort clientPort, string server, ushort serverPort)
    {
        using var writer = new TestPcap(File.Create(path));
        long t = 1_764_100_000_000_000;
        writer.WriteConnection(ref t, client, clientPort, server, serverPort);
    }

    /// <summary>A capture of whole TCP connections one after the other, each from its own client port (30000 up).</summary>
    public static void WriteConnections(string path, IEnumerable<(string Client, string Server, ushort Port)> connections)
    {
        using var writer = new TestPcap(File.Create(path));
        long t = 1_764_100_000_000_000;
        ushort clientPort = 30000;
        foreach (var (client, server, port) in connections) writer.WriteConnection(ref t, client, clientPort++, server, port);
    }

    private void WriteConnection(ref long t, string client, ushort clientPort, string server, ushort serverPort)
    {
        uint c = Ip(client), s = Ip(server);
        Write(t++, Tcp(c, clientPort, s, serverPort, 0x02));
        Write(t++, Tcp(s, serverPort, c, clientPort, 0x12));
        Write(t++, Tcp(c, clientPort, s, serverPort, 0x10));
        Write(t++, Tcp(c, clientPort, s, serverPort, 0x11));
        Write(t++, Tcp(s, serverPort, c, clientPort, 0x11));
        Write(t++, Tcp(c, clientPort, s, serverPort, 0x10));
    }

    /// <summary>An Ethernet + IPv4 + TCP frame, headers only.</summary>
    public static byte[] Tcp(uint source, ushort sourcePort, uint destination, ushort destinationPort, byte flags, int payload = 0)
    {
        var frame = new byte[14 + 20 + 20];
        Ipv4(frame, source, destination, 6, 20 + payload);
        var tcp = frame.AsSpan(34);
        BinaryPrimitives.WriteUInt16BigEndian(tcp, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], destinationPort);
        tcp[12] = 0x50;
        tcp[13] = flags;
        return frame;
    }

    /// <summary>An Ethernet + IPv4 + UDP frame, headers only.</summary>
    public static byte[] Udp(uint source, ushort sourcePort, uint destination, ushort destinationPort, int payload = 0)
    {
        var frame = new byte[14 + 20 + 8];
        Ipv4(frame, source, destination, 17, 8 + payload);
        var udp = frame.AsSpan(34);
        BinaryPrimitives.WriteUInt16BigEndian(udp, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], destinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], (ushort)(8 + payload));
        return frame;
    }

    /// <summary>
    /// An Ethernet + IPv4 + SCTP frame holding one INIT-shaped chunk (INIT is 1, INIT ACK 2): the common header, then the
    /// chunk's type, flags, length, initiate tag, window, stream counts and first TSN. The checksum is left zero.
    /// </summary>
    public static byte[] Sctp(uint source, ushort sourcePort, uint destination, ushort destinationPort, byte chunkType, uint verificationTag = 0, uint initiateTag = 1)
    {
        var frame = new byte[14 + 20 + 12 + 20];
        Ipv4(frame, source, destination, 132, 12 + 20);
        var sctp = frame.AsSpan(34);
        BinaryPrimitives.WriteUInt16BigEndian(sctp, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(sctp[2..], destinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(sctp[4..], verificationTag);
        var chunk = sctp[12..];
        chunk[0] = chunkType;
        BinaryPrimitives.WriteUInt16BigEndian(chunk[2..], 20);
        BinaryPrimitives.WriteUInt32BigEndian(chunk[4..], initiateTag);
        BinaryPrimitives.WriteUInt32BigEndian(chunk[8..], 106_496);
        BinaryPrimitives.WriteUInt16BigEndian(chunk[12..], 10);
        BinaryPrimitives.WriteUInt16BigEndian(chunk[14..], 10);
        BinaryPrimitives.WriteUInt32BigEndian(chunk[16..], initiateTag);
        return frame;
    }

    /// <summary>
    /// An Ethernet + IPv4 + ICMP frame: type, code, and the rest of the header (for an echo request or reply its
    /// identifier and sequence number; zero otherwise, so an error quotes nothing). The checksum is left zero.
    /// </summary>
    public static byte[] Icmp(uint source, uint destination, byte type, byte code, ushort identifier = 0, ushort sequence = 0)
    {
        var frame = new byte[14 + 20 + 8];
        Ipv4(frame, source, destination, 1, 8);
        IcmpHeader(frame.AsSpan(34), type, code, identifier, sequence);
        return frame;
    }

    /// <summary>An Ethernet + IPv6 + ICMPv6 frame, as <see cref="Icmp"/>.</summary>
    public static byte[] Icmpv6(System.Net.IPAddress source, System.Net.IPAddress destination, byte type, byte code, ushort identifier = 0, ushort sequence = 0)
    {
        var frame = new byte[14 + 40 + 8];
        frame.AsSpan(0, 12).Fill(0x02);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), 0x86DD);
        var ip = frame.AsSpan(14);
        ip[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(ip[4..], 8);
        ip[6] = 58;
        ip[7] = 64;
        source.GetAddressBytes().CopyTo(ip[8..]);
        destination.GetAddressBytes().CopyTo(ip[24..]);
        IcmpHeader(frame.AsSpan(54), type, code, identifier, sequence);
        return frame;
    }

    private static void IcmpHeader(Span<byte> icmp, byte type, byte code, ushort identifier, ushort sequence)
    {
        icmp[0] = type;
        icmp[1] = code;
        BinaryPrimitives.WriteUInt16BigEndian(icmp[4..], identifier);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[6..], sequence);
    }

    private static void Ipv4(byte[] frame, uint source, uint destination, byte protocol, int payload)
    {
        frame.AsSpan(0, 12).Fill(0x02);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), 0x0800);
        var ip = frame.AsSpan(14);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(20 + payload));
        ip[8] = 64;
        ip[9] = protocol;
        BinaryPrimitives.WriteUInt32BigEndian(ip[12..], source);
        BinaryPrimitives.WriteUInt32BigEndian(ip[16..], destination);
    }

    public static uint Ip(string dotted) => BinaryPrimitives.ReadUInt32BigEndian(System.Net.IPAddress.Parse(dotted).GetAddressBytes());

    public void Dispose() => _writer.Dispose();
}
