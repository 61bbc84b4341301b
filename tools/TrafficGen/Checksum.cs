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

    /// <summary>The request and response patterns a server on this port would carry.</summary>
    public static (PayloadPattern Request, PayloadPattern Response) ForPort(int port) => port switch
    {
        443 or 8443 or 6443 => (Tls, Tls),
        5432 => (Postgres, Postgres),
        6379 => (Redis, Redis),
        9090 or 9100 or 9153 or 9102 or 8081 => (HttpRequest, Metrics),
        _ => (HttpRequest, HttpResponse),
    };
}
