using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Tripline.Correlation.Endpoints;

/// <summary>Addresses as 128-bit keys, IPv4 held IPv4-mapped, the same form the capture side uses.</summary>
public static class IpKey
{
    private static readonly UInt128 V4Mapped = new(0, 0x0000_FFFF_0000_0000UL);

    public static UInt128 From(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            address.TryWriteBytes(bytes, out _);
            return V4Mapped | BinaryPrimitives.ReadUInt32BigEndian(bytes);
        }
        if (address.IsIPv4MappedToIPv6) return From(address.MapToIPv4());
        address.TryWriteBytes(bytes, out _);
        return BinaryPrimitives.ReadUInt128BigEndian(bytes);
    }

    public static bool IsV4(UInt128 key) => (key >> 32) == (V4Mapped >> 32);

    public static IPAddress ToIPAddress(UInt128 key)
    {
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(bytes, key);
        return IsV4(key) ? new IPAddress(bytes[12..]) : new IPAddress(bytes);
    }
}
