using System.Buffers.Binary;
using System.Text;

namespace Tripline.TrafficGen;

public enum CaptureFormat
{
    Pcap,
    Pcapng,
}

/// <summary>
/// Writes packet records into one large buffer and hands it to the stream when full: one stream write per
/// megabyte, nothing allocated per packet.
/// </summary>
internal abstract class CaptureWriter : IDisposable
{
    private const int BufferSize = 1 << 20;
    private readonly Stream _stream;
    private readonly bool _ownsStream;
    private readonly byte[] _buffer = new byte[BufferSize];
    private int _used;

    protected CaptureWriter(Stream stream, bool ownsStream, int snapLength)
    {
        _stream = stream;
        _ownsStream = ownsStream;
        SnapLength = snapLength;
    }

    public int SnapLength { get; }

    public long Packets { get; private set; }

    public long BytesWritten { get; private set; }

    public static CaptureWriter Create(CaptureFormat format, Stream stream, bool ownsStream, int snapLength, bool nanoseconds) => format switch
    {
        CaptureFormat.Pcapng => new PcapngWriter(stream, ownsStream, snapLength, nanoseconds),
        _ => new ClassicPcapWriter(stream, ownsStream, snapLength, nanoseconds),
    };

    /// <summary>Writes one record: <paramref name="captured"/> holds at most the snap length, <paramref name="wireLength"/> the frame's real size.</summary>
    public void Write(long timestampNs, ReadOnlySpan<byte> captured, int wireLength)
    {
        Span<byte> record = Reserve(RecordLength(captured.Length));
        WriteRecord(record, timestampNs, captured, wireLength);
        Packets++;
    }

    protected abstract int RecordLength(int capturedLength);

    protected abstract void WriteRecord(Span<byte> record, long timestampNs, ReadOnlySpan<byte> captured, int wireLength);

    protected Span<byte> Reserve(int length)
    {
        if (_used + length > _buffer.Length) Flush();
        var span = _buffer.AsSpan(_used, length);
        _used += length;
        BytesWritten += length;
        return span;
    }

    public void Flush()
    {
        if (_used > 0)
        {
            _stream.Write(_buffer, 0, _used);
            _used = 0;
        }
        _stream.Flush();
    }

    public void Dispose()
    {
        Flush();
        if (_ownsStream) _stream.Dispose();
    }
}

/// <summary>Classic pcap, little-endian, microsecond or nanosecond stamps, LINKTYPE_ETHERNET.</summary>
internal sealed class ClassicPcapWriter : CaptureWriter
{
    private readonly bool _nanoseconds;

    public ClassicPcapWriter(Stream stream, bool ownsStream, int snapLength, bool nanoseconds) : base(stream, ownsStream, snapLength)
    {
        _nanoseconds = nanoseconds;
        Span<byte> header = Reserve(24);
        BinaryPrimitives.WriteUInt32LittleEndian(header, nanoseconds ? 0xA1B23C4Du : 0xA1B2C3D4u);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], 2);
        BinaryPrimitives.WriteUInt16LittleEndian(header[6..], 4);
        BinaryPrimitives.WriteInt32LittleEndian(header[8..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(header[16..], (uint)snapLength);
        BinaryPrimitives.WriteUInt32LittleEndian(header[20..], 1);
    }

    protected override int RecordLength(int capturedLength) => 16 + capturedLength;

    protected override void WriteRecord(Span<byte> record, long timestampNs, ReadOnlySpan<byte> captured, int wireLength)
    {
        long seconds = timestampNs / 1_000_000_000L;
        long fraction = timestampNs % 1_000_000_000L;
        BinaryPrimitives.WriteUInt32LittleEndian(record, (uint)seconds);
        BinaryPrimitives.WriteUInt32LittleEndian(record[4..], (uint)(_nanoseconds ? fraction : fraction / 1000));
        BinaryPrimitives.WriteUInt32LittleEndian(record[8..], (uint)captured.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(record[12..], (uint)wireLength);
        captured.CopyTo(record[16..]);
    }
}

/// <summary>pcapng: one section, one Ethernet interface, enhanced packet blocks.</summary>
internal sealed class PcapngWriter : CaptureWriter
{
    private readonly bool _nanoseconds;

    public PcapngWriter(Stream stream, bool ownsStream, int snapLength, bool nanoseconds) : base(stream, ownsStream, snapLength)
    {
        _nanoseconds = nanoseconds;
        WriteSectionHeader();
        WriteInterfaceDescription(snapLength);
    }

    private static int Padded(int length) => (length + 3) & ~3;

    private void WriteSectionHeader()
    {
        byte[] application = Encoding.UTF8.GetBytes("tripline-trafficgen");
        int length = 28 + 4 + Padded(application.Length) + 4;
        Span<byte> block = Reserve(length);
        block.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(block, 0x0A0D0D0A);
        BinaryPrimitives.WriteUInt32LittleEndian(block[4..], (uint)length);
        BinaryPrimitives.WriteUInt32LittleEndian(block[8..], 0x1A2B3C4D);
        BinaryPrimitives.WriteUInt16LittleEndian(block[12..], 1);
        BinaryPrimitives.WriteUInt16LittleEndian(block[14..], 0);
        BinaryPrimitives.WriteInt64LittleEndian(block[16..], -1); // section length unknown: the file is streamed
        int o = 24;
        BinaryPrimitives.WriteUInt16LittleEndian(block[o..], 4); // shb_userappl
        BinaryPrimitives.WriteUInt16LittleEndian(block[(o + 2)..], (ushort)application.Length);
        application.CopyTo(block[(o + 4)..]);
        o += 4 + Padded(application.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(block[o..], 0); // opt_endofopt
        BinaryPrimitives.WriteUInt32LittleEndian(block[^4..], (uint)length);
    }

    private void WriteInterfaceDescription(int snapLength)
    {
        byte[] name = Encoding.UTF8.GetBytes("eth0");
        int length = 16 + (4 + Padded(name.Length)) + (4 + 4) + 4 + 4;
        Span<byte> block = Reserve(length);
        block.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(block, 1);
        BinaryPrimitives.WriteUInt32LittleEndian(block[4..], (uint)length);
        BinaryPrimitives.WriteUInt16LittleEndian(block[8..], 1); // LINKTYPE_ETHERNET
        BinaryPrimitives.WriteUInt32LittleEndian(block[12..], (uint)snapLength);
        int o = 16;
        BinaryPrimitives.WriteUInt16LittleEndian(block[o..], 2); // if_name
        BinaryPrimitives.WriteUInt16LittleEndian(block[(o + 2)..], (ushort)name.Length);
        name.CopyTo(block[(o + 4)..]);
        o += 4 + Padded(name.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(block[o..], 9); // if_tsresol
        BinaryPrimitives.WriteUInt16LittleEndian(block[(o + 2)..], 1);
        block[o + 4] = (byte)(_nanoseconds ? 9 : 6);
        o += 8;
        BinaryPrimitives.WriteUInt32LittleEndian(block[o..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(block[^4..], (uint)length);
    }

    protected override int RecordLength(int capturedLength) => 32 + Padded(capturedLength);

    protected override void WriteRecord(Span<byte> record, long timestampNs, ReadOnlySpan<byte> captured, int wireLength)
    {
        ulong stamp = (ulong)(_nanoseconds ? timestampNs : timestampNs / 1000);
        BinaryPrimitives.WriteUInt32LittleEndian(record, 6);
        BinaryPrimitives.WriteUInt32LittleEndian(record[4..], (uint)record.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(record[8..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(record[12..], (uint)(stamp >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(record[16..], (uint)stamp);
        BinaryPrimitives.WriteUInt32LittleEndian(record[20..], (uint)captured.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(record[24..], (uint)wireLength);
        captured.CopyTo(record[28..]);
        record.Slice(28 + captured.Length, record.Length - 32 - captured.Length).Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(record[^4..], (uint)record.Length);
    }
}
