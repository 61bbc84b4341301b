using System.Buffers.Binary;
using System.Net;
using System.Runtime.CompilerServices;

namespace Tripline.Capture.Parsing;

/// <summary>An IPv4 or IPv6 address as 128 bits, IPv4 held IPv4-mapped (::ffff:a.b.c.d); no allocation.</summary>
public readonly struct IpAddress : IEquatable<IpAddress>, IComparable<IpAddress>
{
    private const ulong V4MappedHigh = 0;
    private const ulong V4MappedLowPrefix = 0x0000_FFFF_0000_0000UL;

    public readonly UInt128 Value;

    public IpAddress(UInt128 value) => Value = value;

    public bool IsV4 => (ulong)(Value >> 64) == V4MappedHigh && ((ulong)Value & 0xFFFF_FFFF_0000_0000UL) == V4MappedLowPrefix;

    public bool IsZero => Value == UInt128.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static IpAddress FromV4(uint hostOrder) => new(new UInt128(V4MappedHigh, V4MappedLowPrefix | hostOrder));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static IpAddress FromV4(ReadOnlySpan<byte> fourBytes) => FromV4(BinaryPrimitives.ReadUInt32BigEndian(fourBytes));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static IpAddress FromV6(ReadOnlySpan<byte> sixteenBytes) => new(BinaryPrimitives.ReadUInt128BigEndian(sixteenBytes));

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
        BinaryPrimitives.WriteUInt128BigEndian(bytes, Value);
        return IsV4 ? new IPAddress(bytes[12..]) : new IPAddress(bytes);
    }

    /// <summary>Writes the textual form (dotted quad or RFC 5952) without allocating.</summary>
    public bool TryFormat(Span<char> destination, out int written)
    {
        if (IsV4)
        {
            uint v = (uint)(ulong)Value;
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

    public bool Equals(IpAddress other) => Value == other.Value;
    public override bool Equals(object? obj) => obj is IpAddress other && Equals(other);
    public override int GetHashCode() => Value.GetHashCode();
    public int CompareTo(IpAddress other) => Value.CompareTo(other.Value);
    public static bool operator ==(IpAddress left, IpAddress right) => left.Equals(right);
    public static bool operator !=(IpAddress left, IpAddress right) => !left.Equals(right);
    public static bool operator <(IpAddress left, IpAddress right) => left.Value < right.Value;
    public static bool operator >(IpAddress left, IpAddress right) => left.Value > right.Value;
    public static bool operator <=(IpAddress left, IpAddress right) => left.Value <= right.Value;
    public static bool operator >=(IpAddress left, IpAddress right) => left.Value >= right.Value;
}
