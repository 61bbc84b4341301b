using System.Buffers.Binary;
using System.Net;
using System.Runtime.CompilerServices;

namespace Tripline.Capture.Parsing;

/// <summary>
/// An IPv4 or IPv6 address as 128 bits, IPv4 held IPv4-mapped (::ffff:a.b.c.d); no allocation. The bits are two
/// 64-bit halves rather than a <see cref="UInt128"/>: ReadyToRun leaves every method that handles a UInt128 by value
/// to the JIT (its calling convention differs between runtime versions), and the per-packet and per-flow code that
/// handles addresses must be compiled ahead of time, not start unoptimised.
/// </summary>
public readonly struct IpAddress : IEquatable<IpAddress>, IComparable<IpAddress>
{
    private const ulong V4MappedHigh = 0;
    private const ulong V4MappedLowPrefix = 0x0000_FFFF_0000_0000UL;

    /// <summary>The first 64 bits in network order (0 for an IPv4 address).</summary>
    public readonly ulong High;
    /// <summary>The last 64 bits in network order (::ffff:a.b.c.d for an IPv4 address).</summary>
    public readonly ulong Low;

    public IpAddress(ulong high, ulong low)
    {
        High = high;
        Low = low;
    }

    public bool IsV4 => High == V4MappedHigh && (Low & 0xFFFF_FFFF_0000_0000UL) == V4MappedLowPrefix;

    public bool IsZero => (High | Low) == 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static IpAddress FromV4(uint hostOrder) => new(V4MappedHigh, V4MappedLowPrefix | hostOrder);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static IpAddress FromV4(ReadOnlySpan<byte> fourBytes) => FromV4(BinaryPrimitives.ReadUInt32BigEndian(fourBytes));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static IpAddress FromV6(ReadOnlySpan<byte> sixteenBytes) =>
        new(BinaryPrimitives.ReadUInt64BigEndian(sixteenBytes), BinaryPrimitives.ReadUInt64BigEndian(sixteenBytes[8..]));

    public static IpAddress FromIPAddress(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        if (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
        {
            address.TryWriteBytes(bytes, out _);
            return FromV4(bytes[..4]);
        }
        address.TryWriteBytes(bytes, out _);
        return FromV6(bytes);
    }

    public static IpAddress Parse(string text) => FromIPAddress(IPAddress.Parse(text));

    public IPAddress ToIPAddress()
    {
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, High);
        BinaryPrimitives.WriteUInt64BigEndian(bytes[8..], Low);
        return IsV4 ? new IPAddress(bytes[12..]) : new IPAddress(bytes);
    }

    /// <summary>Writes the textual form (dotted quad or RFC 5952) without allocating.</summary>
    public bool TryFormat(Span<char> destination, out int written)
    {
        if (IsV4)
        {
            uint v = (uint)Low;
            written = 0;
            for (int i = 3; i >= 0; i--)
            {
                if (!((byte)(v >> (i * 8))).TryFormat(destination[written..], out int n)) return false;
                written += n;
                if (i > 0)
                {
                    if ((uint)written >= (uint)destination.Length) return false;
                    destination[written++] = '.';
                }
            }
            return true;
        }
        return ToIPAddress().TryFormat(destination, out written);
    }

    public override string ToString() => ToIPAddress().ToString();

    public bool Equals(IpAddress other) => ((High ^ other.High) | (Low ^ other.Low)) == 0;
    public override bool Equals(object? obj) => obj is IpAddress other && Equals(other);
    public override int GetHashCode() => HashCode.Combine(High, Low);
    public int CompareTo(IpAddress other) => High != other.High ? High.CompareTo(other.High) : Low.CompareTo(other.Low);
    public static bool operator ==(IpAddress left, IpAddress right) => left.Equals(right);
    public static bool operator !=(IpAddress left, IpAddress right) => !left.Equals(right);
    public static bool operator <(IpAddress left, IpAddress right) => left.High < right.High || (left.High == right.High && left.Low < right.Low);
    public static bool operator >(IpAddress left, IpAddress right) => right < left;
    public static bool operator <=(IpAddress left, IpAddress right) => !(right < left);
    public static bool operator >=(IpAddress left, IpAddress right) => !(left < right);
}
