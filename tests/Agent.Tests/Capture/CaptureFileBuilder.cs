using System.Buffers.Binary;
using System.Text;

namespace Tripline.Tests.Capture;

/// <summary>Writes classic pcap and pcapng files byte by byte, remembering where each record starts.</summary>
internal sealed class CaptureFileBuilder
{
    private readonly MemoryStream _bytes = new();
    private readonly bool _bigEndian;

    private CaptureFileBuilder(bool bigEndian) => _bigEndian = bigEndian;

    /// <summary>File offsets at which each packet record (or block) starts, and the offset after the last.</summary>
    public List<long> RecordStarts { get; } = [];

    public long Length => _bytes.Length;

    public byte[] ToArray() => _bytes.ToArray();

    public static CaptureFileBuilder Classic(bool bigEndian = false, bool nanoseconds = false, ushort linkType = 1, uint snapLength = 65535)
    {
        var b = new CaptureFileBuilder(bigEndian);
        b.U32(nanoseconds ? 0xA1B23C4Du : 0xA1B2C3D4u);
        b.U16(2);
        b.U16(4);
        b.U32(0);
        b.U32(0);
        b.U32(snapLength);
        b.U32(linkType);
        return b;
    }

    public CaptureFileBuilder Record(uint seconds, uint fraction, ReadOnlySpan<byte> data, int? originalLength = null)
    {
        RecordStarts.Add(_bytes.Length);
        U32(seconds);
        U32(fraction);
        U32((uint)data.Length);
        U32((uint)(originalLength ?? data.Length));
        _bytes.Write(data);
        return this;
    }

    public static CaptureFileBuilder Pcapng(bool bigEndian = false)
    {
        var b = new CaptureFileBuilder(bigEndian);
        b.SectionHeader();
        return b;
    }

    public CaptureFileBuilder SectionHeader()
    {
        byte[] body = new byte[16];
        Write32(body, 0, 0x1A2B3C4D);
        Write16(body, 4, 1);
        Write16(body, 6, 0);
        BinaryPrimitives.WriteInt64LittleEndian(body.AsSpan(8), -1);
        return Block(0x0A0D0D0A, body, packet: false);
    }

    public CaptureFileBuilder Interface(ushort linkType, uint snapLength = 262144, byte? tsresol = null, string? name = null)
    {
        var body = new List<byte>();
        byte[] head = new byte[8];
        Write16(head, 0, linkType);
        Write32(head, 4, snapLength);
        body.AddRange(head);
        if (name is not null) body.AddRange(Option(2, Encoding.UTF8.GetBytes(name)));
        if (tsresol is { } r) body.AddRange(Option(9, [r]));
        if (name is not null || tsresol is not null) body.AddRange(Option(0, []));
        return Block(1, [.. body], packet: false);
    }

    public CaptureFileBuilder Enhanced(int iface, ulong stamp, ReadOnlySpan<byte> data, int? originalLength = null)
    {
        byte[] body = new byte[20 + Pad(data.Length)];
        Write32(body, 0, (uint)iface);
        Write32(body, 4, (uint)(stamp >> 32));
        Write32(body, 8, (uint)stamp);
        Write32(body, 12, (uint)data.Length);
        Write32(body, 16, (uint)(originalLength ?? data.Length));
        data.CopyTo(body.AsSpan(20));
        return Block(6, body, packet: true);
    }

    public CaptureFileBuilder Obsolete(int iface, ulong stamp, ReadOnlySpan<byte> data)
    {
        byte[] body = new byte[20 + Pad(data.Length)];
        Write16(body, 0, (ushort)iface);
        Write16(body, 2, 0);
        Write32(body, 4, (uint)(stamp >> 32));
        Write32(body, 8, (uint)stamp);
        Write32(body, 12, (uint)data.Length);
        Write32(body, 16, (uint)data.Length);
        data.CopyTo(body.AsSpan(20));
        return Block(2, body, packet: true);
    }

    public CaptureFileBuilder Simple(ReadOnlySpan<byte> data)
    {
        byte[] body = new byte[4 + Pad(data.Length)];
        Write32(body, 0, (uint)data.Length);
        data.CopyTo(body.AsSpan(4));
        return Block(3, body, packet: true);
    }

    /// <summary>A block the reader must skip: name resolution, statistics, or a type nobody defined.</summary>
    public CaptureFileBuilder Other(uint type, int bodyLength) => Block(type, new byte[Pad(bodyLength)], packet: false);

    public CaptureFileBuilder Raw(ReadOnlySpan<byte> bytes)
    {
        _bytes.Write(bytes);
        return this;
    }

    private CaptureFileBuilder Block(uint type, byte[] body, bool packet)
    {
        if (packet) RecordStarts.Add(_bytes.Length);
        uint length = (uint)(12 + body.Length);
        U32(type);
        U32(length);
        _bytes.Write(body);
        U32(length);
        return this;
    }

    private IEnumerable<byte> Option(ushort code, byte[] value)
    {
        byte[] o = new byte[4 + Pad(value.Length)];
        Write16(o, 0, code);
        Write16(o, 2, (ushort)value.Length);
        value.CopyTo(o, 4);
        return o;
    }

    private static int Pad(int n) => (n + 3) & ~3;

    private void U32(uint v)
    {
        Span<byte> b = stackalloc byte[4];
        if (_bigEndian) BinaryPrimitives.WriteUInt32BigEndian(b, v); else BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        _bytes.Write(b);
    }

    private void U16(ushort v)
    {
        Span<byte> b = stackalloc byte[2];
        if (_bigEndian) BinaryPrimitives.WriteUInt16BigEndian(b, v); else BinaryPrimitives.WriteUInt16LittleEndian(b, v);
        _bytes.Write(b);
    }

    private void Write32(byte[] a, int o, uint v)
    {
        if (_bigEndian) BinaryPrimitives.WriteUInt32BigEndian(a.AsSpan(o), v); else BinaryPrimitives.WriteUInt32LittleEndian(a.AsSpan(o), v);
    }

    private void Write16(byte[] a, int o, ushort v)
    {
        if (_bigEndian) BinaryPrimitives.WriteUInt16BigEndian(a.AsSpan(o), v); else BinaryPrimitives.WriteUInt16LittleEndian(a.AsSpan(o), v);
    }
}

/// <summary>A pipe-like stream: cannot seek, and hands out at most a few bytes per read.</summary>
internal sealed class TrickleStream(byte[] data, int chunk) : Stream
{
    private int _position;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count)
    {
        int n = Math.Min(Math.Min(count, chunk), data.Length - _position);
        Array.Copy(data, _position, buffer, offset, n);
        _position += n;
        return n;
    }

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
