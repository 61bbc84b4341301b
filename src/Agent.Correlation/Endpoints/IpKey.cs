using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Tripline.Correlation.Endpoints;

/// <summary>
/// An address as a 128-bit key, IPv4 held IPv4-mapped (::ffff:a.b.c.d), the same form the capture side uses. Two
/// 64-bit halves rather than a <see cref="UInt128"/>: ReadyToRun leaves every method that handles a UInt128 by value
/// to the JIT, and the per-flow lookups and verdicts must be compiled ahead of time.
/// </summary>
public readonly struct IpKey : IEquatable<IpKey>, IComparable<IpKey>
{
    private const ulong V4MappedPrefix = 0x0000_FFFF_0000_0000UL;

    /// <summary>The first 64 bits in network order.</summary>
    public readonly ulong High;
    /// <summary>The last 64 bits in network order.</summary>
    public readonly ulong Low;

    public IpKey(ulong high, ulong low)
    {
        High = high;
        Low = low;
    }

    public static IpKey Zero => default;
    public static IpKey MaxValue => new(ulong.MaxValue, ulong.MaxValue);

    public static IpKey From(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            address.TryWriteBytes(bytes, out _);
            return new IpKey(0, V4MappedPrefix | BinaryPrimitives.ReadUInt32BigEndian(bytes));
        }
        if (address.IsIPv4MappedToIPv6) return From(address.MapToIPv4());
        address.TryWriteBytes(bytes, out _);
        return new IpKey(BinaryPrimitives.ReadUInt64BigEndian(bytes), BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]));
    }

    public bool IsV4 => High == 0 && (Low & 0xFFFF_FFFF_0000_0000UL) == V4MappedPrefix;

    public IPAddress ToIPAddress()
    {
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, High);
        BinaryPrimitives.WriteUInt64BigEndian(bytes[8..], Low);
        return IsV4 ? new IPAddress(bytes[12..]) : new IPAddress(bytes);
    }

    /// <summary>The mask of the host bits after a prefix of <paramref name="bits"/> (0 to 128) bits.</summary>
    public static IpKey HostMask(int bits) => bits switch
    {
        <= 0 => MaxValue,
        < 64 => new IpKey(ulong.MaxValue >> bits, ulong.MaxValue),
        < 128 => new IpKey(0, ulong.MaxValue >> (bits - 64)),
        _ => Zero,
    };

    /// <summary>The next key; <see cref="MaxValue"/> wraps to <see cref="Zero"/>.</summary>
    public IpKey Next() => Low == ulong.MaxValue ? new IpKey(High + 1, 0) : new IpKey(High, Low + 1);

    public static IpKey operator &(IpKey left, IpKey right) => new(left.High & right.High, left.Low & right.Low);
    public static IpKey operator |(IpKey left, IpKey right) => new(left.High | right.High, left.Low | right.Low);
    public static IpKey operator ~(IpKey key) => new(~key.High, ~key.Low);

    public bool Equals(IpKey other) => ((High ^ other.High) | (Low ^ other.Low)) == 0;
    public override bool Equals(object? obj) => obj is IpKey other && Equals(other);
    public override int GetHashCode() => (High ^ Low ^ (Low >> 32)).GetHashCode();
    public int CompareTo(IpKey other) => High != other.High ? High.CompareTo(other.High) : Low.CompareTo(other.Low);
    public static bool operator ==(IpKey left, IpKey right) => left.Equals(right);
    public static bool operator !=(IpKey left, IpKey right) => !left.Equals(right);
    public static bool operator <(IpKey left, IpKey right) => left.High < right.High || (left.High == right.High && left.Low < right.Low);
    public static bool operator >(IpKey left, IpKey right) => right < left;
    public static bool operator <=(IpKey left, IpKey right) => !(right < left);
    public static bool operator >=(IpKey left, IpKey right) => !(left < right);

    public override string ToString() => ToIPAddress().ToString();
}
