using System.Buffers.Binary;
using System.Text;

namespace Tripline.TrafficGen;

/// <summary>The Internet checksum (RFC 1071): 16-bit big-endian words summed wide, folded once at the end.</summary>
internal static class Checksum
{
    public static ulong Sum(ReadOnlySpan<byte> data, ulong sum = 0)
    {
        int i = 0;
        for (; i + 1 < data.Length; i += 2) sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        if (i < data.Length) sum += (ulong)data[i] << 8;
        return sum;
    }

    public static ushort Fold(ulong sum)
    {
        while ((sum >> 16) != 0) sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }

    public static ulong PseudoHeaderV4(uint source, uint destination, byte protocol, int length) =>
        (source >> 16) + (source & 0xFFFF) + (destination >> 16) + (destination & 0xFFFF) + protocol + (ulong)(uint)length;

    public static ulong PseudoHeaderV6(UInt128 source, UInt128 destination, byte next, int length)
    {
        ulong sum = 0;
        for (int shift = 0; shift < 128; shift += 16)
        {
            sum += (ulong)(ushort)(source >> shift);
            sum += (ulong)(ushort)(destination >> shift);
        }
        return sum + ((uint)length >> 16) + ((uint)length & 0xFFFF) + next;
    }
}

/// <summary>
/// Payload bytes as a repeating 64-byte block. Only the captured prefix is ever written, yet the checksum covers
/// the whole payload: the sum of a repeating block is a multiple of the block's sum plus a precomputed prefix.
/// </summary>
internal sealed class PayloadPattern
{
    public const int Length = 64;
    private readonly byte[] _bytes = new byte[Length];
    private readonly ulong _blockSum;
    private readonly ulong[] _prefix = new ulong[Length + 1];

    public PayloadPattern(ReadOnlySpan<byte> seed)
    {
        for (int i = 0; i < Length; i++) _bytes[i] = seed.IsEmpty ? (byte)0 : seed[i % seed.Length];
        for (int r = 0; r <= Length; r++) _prefix[r] = Checksum.Sum(_bytes.AsSpan(0, r));
        _blockSum = _prefix[Length];
    }

    public PayloadPattern(string text) : this(Encoding.ASCII.GetBytes(text))
    {
    }

    /// <summary>Checksum contribution of <paramref name="length"/> payload bytes that start word-aligned.</summary>
    public ulong Sum(int length) => (ulong)(length / Length) * _blockSum + _prefix[length % Length];

    public void Fill(Span<byte> destination)
    {
        while (destination.Length >= Length)
        {
            _bytes.CopyTo(destination);
            destination = destination[Length..];
        }
        _bytes.AsSpan(0, destination.Length).CopyTo(destination);
    }

    public static readonly PayloadPattern HttpRequest = new("GET /api/v1/items?page=2 HTTP/1.1\r\nHost: backend\r\nAccept: */*\r\n\r\n");
    public static readonly PayloadPattern HttpResponse = new("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1");
    public static readonly PayloadPattern Tls = new([0x17, 0x03, 0x03, 0x40, 0x00, 0x9c, 0x2f, 0x61, 0xd4, 0x0e, 0x7b, 0x13, 0x88, 0x52, 0xc1, 0x3a]);
    public static readonly PayloadPattern Postgres = new([0x51, 0x00, 0x00, 0x00, 0x2a, 0x53, 0x45, 0x4c, 0x45, 0x43, 0x54, 0x20, 0x2a, 0x20, 0x46, 0x52, 0x4f, 0x4d, 0x20, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x73, 0x3b, 0x00]);
    public static readonly PayloadPattern Redis = new("*2\r\n$3\r\nGET\r\n$16\r\ncart:8e3f2a61b7c4\r\n");
    public static readonly PayloadPattern Metrics = new("# HELP http_requests_total Total requests.\n# TYPE http_requests_total counter\n");
    public static readonly PayloadPattern Datagram = new([0x00, 0x01, 0x5a, 0xa5, 0x13, 0x37, 0xc0, 0xde]);
    public static readonly PayloadPattern Ping = new([0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
        0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37]);

    /// <summary>
    /// A TLS ClientHello record as a client's first data: handshake (22), record version 3.1 as clients send it, 512
    /// bytes (the padded size browsers send, so the segment is exactly 517 bytes); handshake type 1, length 508,
    /// client_version 3.3, the random, a 32-byte session id, cipher suites.
    /// </summary>
    public static readonly PayloadPattern TlsClientHello = new([
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        0x5e, 0x91, 0x0c, 0x7a, 0x33, 0xd8, 0x41, 0xe6, 0x02, 0xb9, 0x6f, 0x14, 0xa8, 0x27, 0xcd, 0x70,
        0x95, 0x3b, 0xee, 0x08, 0x61, 0xf2, 0x4d, 0x1a, 0xc6, 0x89, 0x57, 0x2e, 0xb0, 0x13, 0x7c, 0xd4,
        0x20, 0x8a, 0x44, 0xf1, 0x2b, 0x96, 0x0d, 0x63, 0xba, 0x1f, 0xe8, 0x35, 0x72, 0xc9, 0x06, 0x5d,
        0x4b, 0x00, 0x20, 0x13, 0x01]);

    /// <summary>A TLS ServerHello record as a server's first data: handshake (22), version 3.3, 122 bytes; type 2, server_version 3.3.</summary>
    public static readonly PayloadPattern TlsServerHello = new([
        0x16, 0x03, 0x03, 0x00, 0x7a, 0x02, 0x00, 0x00, 0x76, 0x03, 0x03,
        0xc4, 0x19, 0x7e, 0x52, 0xa3, 0x0b, 0xd6, 0x38, 0x84, 0xf7, 0x21, 0x6a, 0x9d, 0x40, 0xe3, 0x15,
        0xb8, 0x5f, 0x02, 0x97, 0x6c, 0xd1, 0x2a, 0x83, 0x4e, 0xfa, 0x11, 0x78, 0xc5, 0x3d, 0x60, 0x9b,
        0x20, 0x8a, 0x44, 0xf1, 0x2b, 0x96, 0x0d, 0x63, 0xba, 0x1f, 0xe8, 0x35, 0x72, 0xc9, 0x06, 0x5d,
        0x4b, 0x13, 0x01, 0x00, 0x00]);

    /// <summary>Size of the segment that carries a <see cref="TlsClientHello"/>: the record's header and its 512 bytes.</summary>
    public const int ClientHelloSegment = 5 + 512;
}

/// <summary>
/// What a TCP connection carries: the pattern of each side's segments, and of each side's first data segment when it
/// differs (a TLS handshake opens with hellos, then application data records follow).
/// </summary>
internal sealed record PayloadSet(PayloadPattern Request, PayloadPattern Response, PayloadPattern? FirstRequest = null, PayloadPattern? FirstResponse = null)
{
    public static readonly PayloadSet Tls = new(PayloadPattern.Tls, PayloadPattern.Tls, PayloadPattern.TlsClientHello, PayloadPattern.TlsServerHello);
    public static readonly PayloadSet Http = new(PayloadPattern.HttpRequest, PayloadPattern.HttpResponse);
    public static readonly PayloadSet Datagrams = new(PayloadPattern.Datagram, PayloadPattern.Datagram);

    /// <summary>The payloads of a connection: as asked, or as a server on this port would carry them.</summary>
    public static PayloadSet For(PayloadKind kind, int port) => kind switch
    {
        PayloadKind.Tls => Tls,
        PayloadKind.Plain => Http,
        _ => port switch
        {
            443 or 8443 or 6443 => Tls,
            5432 => Postgres,
            6379 => Redis,
            9090 or 9100 or 9153 or 9102 or 8081 => Metrics,
            _ => Http,
        },
    };

    private static readonly PayloadSet Postgres = new(PayloadPattern.Postgres, PayloadPattern.Postgres);
    private static readonly PayloadSet Redis = new(PayloadPattern.Redis, PayloadPattern.Redis);
    private static readonly PayloadSet Metrics = new(PayloadPattern.HttpRequest, PayloadPattern.Metrics);
}
