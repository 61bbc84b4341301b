using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using Tripline.Capture.Parsing;

namespace Tripline.Capture.Pcap;

/// <summary>
/// Reads classic pcap (both byte orders, micro- and nanosecond stamps) and pcapng from a stream that need not seek,
/// so standard input works. Packets are returned as spans into an internal buffer, valid until the next read.
/// Corruption ends the file with a <see cref="CaptureFileException"/> that names the byte offset; every packet
/// before it has been returned.
/// </summary>
public sealed class CaptureFileReader : IDisposable
{
    private const uint PcapMagicMicro = 0xA1B2C3D4;
    private const uint PcapMagicNano = 0xA1B23C4D;
    private const uint PcapngSectionHeader = 0x0A0D0D0A;
    private const uint PcapngByteOrderMagic = 0x1A2B3C4D;
    private const uint BlockInterfaceDescription = 1;
    private const uint BlockObsoletePacket = 2;
    private const uint BlockSimplePacket = 3;
    private const uint BlockEnhancedPacket = 6;

    /// <summary>No real capture holds a record this large; a larger length means the file is corrupt.</summary>
    public const int MaxRecordLength = 16 * 1024 * 1024;

    private readonly Stream _stream;
    private readonly bool _ownsStream;
    private byte[] _buffer;
    private int _start;
    private int _end;
    private long _bufferOffset; // file offset of _buffer[0]
    private bool _eof;

    private readonly bool _isPcapng;
    private bool _bigEndian;
    private bool _nanoseconds;
    private LinkType _classicLinkType;
    private readonly List<CaptureInterface> _interfaces = [];
    private readonly List<(ulong Divisor, ulong Multiplier, bool Binary, int Shift)> _resolutions = [];
    private readonly List<long> _offsetsNs = [];

    /// <param name="buffer">A buffer to read into, reused across files by a caller that reads many.</param>
    public CaptureFileReader(Stream stream, string name, bool ownsStream = true, int bufferSize = 1 << 20, byte[]? buffer = null)
    {
        _stream = stream;
        _ownsStream = ownsStream;
        Name = name;
        _buffer = buffer is { Length: >= 64 * 1024 } ? buffer : new byte[Math.Max(bufferSize, 64 * 1024)];

        if (!Fill(4))
        {
            throw new CaptureFileException(name, Available, _end == 0 ? "empty file: no capture header" : "file too short for a capture header");
        }
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(_buffer.AsSpan(_start));
        if (magic == PcapngSectionHeader)
        {
            _isPcapng = true;
            // The section header is read as the first block so that the byte order is learned from it.
            if (!ReadSectionHeaderBlock()) throw Corrupt("file ended inside the section header block");
        }
        else
        {
            ReadClassicHeader(magic);
        }
    }

    /// <param name="stop">Ends a read of standard input that waits for data (a pipe with nothing coming) as an end of input.</param>
    public static CaptureFileReader Open(string path, CancellationToken stop = default)
    {
        if (path == "-") return new CaptureFileReader(new StoppableInput(new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(0, ownsHandle: false), FileAccess.Read, bufferSize: 0), 0, stop), "<stdin>", ownsStream: true);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0, FileOptions.SequentialScan);
        return new CaptureFileReader(stream, path);
    }

    public string Name { get; }

    /// <summary>The interfaces declared so far (pcapng declares them as it goes).</summary>
    public IReadOnlyList<CaptureInterface> Interfaces => _interfaces;

    /// <summary>Bytes of the file consumed so far.</summary>
    public long Position => _bufferOffset + _start;

    private int Available => _end - _start;

    /// <summary>Returns the next packet, or false at the clean end of the file.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool TryReadPacket(out ReadOnlySpan<byte> data, out PacketInfo info)
    {
        return _isPcapng ? TryReadPcapngPacket(out data, out info) : TryReadClassicPacket(out data, out info);
    }

    private void ReadClassicHeader(uint magic)
    {
        if (!Fill(24)) throw Corrupt("file ended inside the pcap file header");
        switch (magic)
        {
            case PcapMagicMicro: break;
            case PcapMagicNano: _nanoseconds = true; break;
            default:
                uint swapped = BinaryPrimitives.ReverseEndianness(magic);
                if (swapped == PcapMagicMicro) _bigEndian = true;
                else if (swapped == PcapMagicNano) { _bigEndian = true; _nanoseconds = true; }
                else throw Corrupt($"not a pcap or pcapng file (magic 0x{magic:x8})");
                break;
        }
        var header = _buffer.AsSpan(_start, 24);
        uint snap = ReadU32(header[16..]);
        uint network = ReadU32(header[20..]);
        // The upper bits of the link-type field carry FCS information, not the type.
        _classicLinkType = (LinkType)(network & 0xFFFF);
        _interfaces.Add(new CaptureInterface(0, _classicLinkType, (int)Math.Min(snap, int.MaxValue), null));
        _start += 24;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryReadClassicPacket(out ReadOnlySpan<byte> data, out PacketInfo info)
    {
        if (Available < 16 && !Fill(16))
        {
            if (Available == 0) { data = default; info = default; return false; }
            throw Corrupt($"file ended inside a packet record header ({Available} of 16 bytes)");
        }
        var header = _buffer.AsSpan(_start, 16);
        uint seconds = ReadU32(header);
        uint fraction = ReadU32(header[4..]);
        uint captured = ReadU32(header[8..]);
        uint original = ReadU32(header[12..]);
        if (captured > MaxRecordLength) throw Corrupt($"packet record claims {captured} captured bytes");
        int total = 16 + (int)captured;
        if (Available < total && !Fill(total))
        {
            throw Corrupt($"file ended inside a packet record ({Available - 16} of {captured} bytes)");
        }
        data = _buffer.AsSpan(_start + 16, (int)captured);
        info.TimestampNs = seconds * 1_000_000_000L + (_nanoseconds ? fraction : fraction * 1000L);
        info.OriginalLength = (int)Math.Min(original, int.MaxValue);
        info.LinkType = _classicLinkType;
        info.InterfaceId = 0;
        _start += total;
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private bool TryReadPcapngPacket(out ReadOnlySpan<byte> data, out PacketInfo info)
    {
        while (true)
        {
            if (Available < 12 && !Fill(12))
            {
                if (Available == 0) { data = default; info = default; return false; }
                throw Corrupt($"file ended inside a block header ({Available} of 12 bytes)");
            }
            var head = _buffer.AsSpan(_start, 8);
            uint type = ReadU32(head);
            if (type == PcapngSectionHeader)
            {
                if (!ReadSectionHeaderBlock()) throw Corrupt("file ended inside a section header block");
                continue;
            }
            uint length = ReadU32(head[4..]);
            if (length < 12 || (length & 3) != 0 || length > MaxRecordLength) throw Corrupt($"block of type 0x{type:x} has an invalid length {length}");
            if (Available < (int)length && !Fill((int)length))
            {
                throw Corrupt($"file ended inside a block of type 0x{type:x} ({Available} of {length} bytes)");
            }
            var block = _buffer.AsSpan(_start, (int)length);
            if (ReadU32(block[^4..]) != length) throw Corrupt($"block of type 0x{type:x} has mismatched lengths ({length} and {ReadU32(block[^4..])})");
            var body = block[8..^4];
            switch (type)
            {
                case BlockEnhancedPacket:
                case BlockObsoletePacket:
                    {
                        // The obsolete packet block differs only in its 16-bit interface id (then a 16-bit drop count).
                        string blockName = type == BlockEnhancedPacket ? "enhanced packet block" : "packet block";
                        if (body.Length < 20) throw Corrupt(blockName + " too short");
                        int iface = type == BlockEnhancedPacket ? (int)ReadU32(body) : ReadU16(body);
                        uint captured = ReadU32(body[12..]);
                        if (captured > body.Length - 20) throw Corrupt($"{blockName} claims {captured} captured bytes in a {length}-byte block");
                        ulong stamp = (ulong)ReadU32(body[4..]) << 32 | ReadU32(body[8..]);
                        info.TimestampNs = ToNanoseconds(iface, stamp);
                        info.OriginalLength = (int)Math.Min(ReadU32(body[16..]), int.MaxValue);
                        info.LinkType = LinkTypeOf(iface);
                        info.InterfaceId = iface;
                        data = body.Slice(20, (int)captured);
                        _start += (int)length;
                        return true;
                    }
                case BlockSimplePacket:
                    {
                        if (body.Length < 4) throw Corrupt("simple packet block too short");
                        if (_interfaces.Count == 0) throw Corrupt("simple packet block before any interface description");
                        uint original = ReadU32(body);
                        int snap = _interfaces[0].SnapLength;
                        int captured = (int)Math.Min(Math.Min(original, (uint)(body.Length - 4)), snap > 0 ? (uint)snap : uint.MaxValue);
                        info.TimestampNs = 0; // simple packet blocks carry no time
                        info.OriginalLength = (int)Math.Min(original, int.MaxValue);
                        info.LinkType = _interfaces[0].LinkType;
                        info.InterfaceId = 0;
                        data = body.Slice(4, captured);
                        _start += (int)length;
                        return true;
                    }
                case BlockInterfaceDescription:
                    ReadInterfaceDescription(body);
                    _start += (int)length;
                    continue;
                default:
                    // Name resolution, statistics, custom and unknown blocks carry no packets.
                    _start += (int)length;
                    continue;
            }
        }
    }

    private bool ReadSectionHeaderBlock()
    {
        if (!Fill(12)) return false;
        uint order = BinaryPrimitives.ReadUInt32LittleEndian(_buffer.AsSpan(_start + 8));
        if (order == PcapngByteOrderMagic) _bigEndian = false;
        else if (order == BinaryPrimitives.ReverseEndianness(PcapngByteOrderMagic)) _bigEndian = true;
        else throw Corrupt($"pcapng section header has an unknown byte-order magic 0x{order:x8}");
        uint length = ReadU32(_buffer.AsSpan(_start + 4));
        if (length < 28 || (length & 3) != 0 || length > MaxRecordLength) throw Corrupt($"section header block has an invalid length {length}");
        if (!Fill((int)length)) return false;
        // A new section starts a new set of interfaces.
        _interfaces.Clear();
        _resolutions.Clear();
        _offsetsNs.Clear();
        _start += (int)length;
        return true;
    }

    private void ReadInterfaceDescription(ReadOnlySpan<byte> body)
    {
        if (body.Length < 8) throw Corrupt("interface description block too short");
        var link = (LinkType)ReadU16(body);
        int snap = (int)Math.Min(ReadU32(body[4..]), int.MaxValue);
        string? name = null;
        byte resolution = 6;
        long offsetSeconds = 0;
        var options = body[8..];
        while (options.Length >= 4)
        {
            ushort code = ReadU16(options);
            ushort length = ReadU16(options[2..]);
            if (code == 0) break;
            int padded = (length + 3) & ~3;
            if (4 + length > options.Length) break; // a broken option list ends the options, not the file
            var value = options.Slice(4, length);
            switch (code)
            {
                case 2: name = System.Text.Encoding.UTF8.GetString(value).TrimEnd('\0'); break;
                case 9 when length >= 1: resolution = value[0]; break;
                case 14 when length >= 8: offsetSeconds = (long)ReadU64(value); break;
            }
            if (4 + padded > options.Length) break;
            options = options[(4 + padded)..];
        }
        _interfaces.Add(new CaptureInterface(_interfaces.Count, link, snap, name));
        _resolutions.Add(ResolutionOf(resolution));
        _offsetsNs.Add(offsetSeconds * 1_000_000_000L);
    }

    private static (ulong Divisor, ulong Multiplier, bool Binary, int Shift) ResolutionOf(byte tsresol)
    {
        if ((tsresol & 0x80) != 0)
        {
            int shift = tsresol & 0x7F;
            return (1, 1, true, shift);
        }
        int exponent = tsresol;
        if (exponent <= 9)
        {
            ulong multiplier = 1;
            for (int i = exponent; i < 9; i++) multiplier *= 10;
            return (1, multiplier, false, 0);
        }
        ulong divisor = 1;
        for (int i = 9; i < Math.Min(exponent, 28); i++) divisor *= 10;
        return (divisor, 1, false, 0);
    }

    private long ToNanoseconds(int iface, ulong stamp)
    {
        if ((uint)iface >= (uint)_resolutions.Count) throw Corrupt($"packet refers to undeclared interface {iface}");
        var (divisor, multiplier, binary, shift) = _resolutions[iface];
        UInt128 ns = binary
            ? ((UInt128)stamp * 1_000_000_000UL) >> Math.Min(shift, 127)
            : (UInt128)stamp * multiplier / divisor;
        return (long)(ulong)(ns > long.MaxValue ? (UInt128)long.MaxValue : ns) + _offsetsNs[iface];
    }

    private LinkType LinkTypeOf(int iface)
    {
        if ((uint)iface >= (uint)_interfaces.Count) throw Corrupt($"packet refers to undeclared interface {iface}");
        return _interfaces[iface].LinkType;
    }

    /// <summary>Makes at least <paramref name="count"/> bytes available from <c>_start</c>; false at end of stream.</summary>
    private bool Fill(int count)
    {
        if (Available >= count) return true;
        if (count > _buffer.Length)
        {
            var bigger = new byte[Math.Max(count, _buffer.Length * 2)];
            Buffer.BlockCopy(_buffer, _start, bigger, 0, Available);
            _bufferOffset += _start;
            _end = Available;
            _start = 0;
            _buffer = bigger;
        }
        else if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, Available);
            _bufferOffset += _start;
            _end = Available;
            _start = 0;
        }
        while (Available < count && !_eof)
        {
            int read = _stream.Read(_buffer, _end, _buffer.Length - _end);
            if (read == 0) { _eof = true; break; }
            _end += read;
        }
        return Available >= count;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint ReadU32(ReadOnlySpan<byte> span) => _bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(span) : BinaryPrimitives.ReadUInt32LittleEndian(span);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ushort ReadU16(ReadOnlySpan<byte> span) => _bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(span) : BinaryPrimitives.ReadUInt16LittleEndian(span);

    private ulong ReadU64(ReadOnlySpan<byte> span) => _bigEndian ? BinaryPrimitives.ReadUInt64BigEndian(span) : BinaryPrimitives.ReadUInt64LittleEndian(span);

    private CaptureFileException Corrupt(string reason) => new(Name, Position, reason);

    public void Dispose()
    {
        if (_ownsStream) _stream.Dispose();
    }
}
