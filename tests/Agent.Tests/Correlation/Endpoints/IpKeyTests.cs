using System.Net;
using CsCheck;
using Tripline.Capture.Parsing;
using Tripline.Correlation.Endpoints;
using Tripline.Hosting;
using Xunit;

namespace Tripline.Tests.Correlation.Endpoints;

/// <summary>
/// The capture side's <see cref="IpAddress"/> and the cluster side's <see cref="IpKey"/> hold 128 bits as two halves;
/// their order, masks and successor must be those of the 128-bit number, which is what UInt128 computes.
/// </summary>
public sealed class IpKeyTests
{
    // Halves drawn from a few values near the edges as well as anywhere, so that carries and ties come up often.
    private static readonly Gen<ulong> Half = Gen.Frequency((3, Gen.ULong), (1, Gen.OneOfConst(0UL, 1UL, ulong.MaxValue, ulong.MaxValue - 1, 0x0000_FFFF_0000_0000UL)));
    private static readonly Gen<(ulong High, ulong Low)> Bits = Gen.Select(Half, Half);

    private static UInt128 Number((ulong High, ulong Low) bits) => new(bits.High, bits.Low);

    [Fact]
    public void Keys_order_and_compare_as_128_bit_numbers()
    {
        Gen.Select(Bits, Bits).Sample((a, b) =>
        {
            IpKey x = new(a.High, a.Low), y = new(b.High, b.Low);
            UInt128 m = Number(a), n = Number(b);
            return (x < y) == (m < n) && (x <= y) == (m <= n) && (x > y) == (m > n) && (x >= y) == (m >= n)
                && (x == y) == (m == n) && Math.Sign(x.CompareTo(y)) == Math.Sign(m.CompareTo(n))
                && (x == y ? x.GetHashCode() == y.GetHashCode() : true);
        });
    }

    [Fact]
    public void Addresses_order_and_compare_as_128_bit_numbers()
    {
        Gen.Select(Bits, Bits).Sample((a, b) =>
        {
            IpAddress x = new(a.High, a.Low), y = new(b.High, b.Low);
            UInt128 m = Number(a), n = Number(b);
            return (x < y) == (m < n) && (x <= y) == (m <= n) && (x > y) == (m > n) && (x >= y) == (m >= n)
                && x.Equals(y) == (m == n) && Math.Sign(x.CompareTo(y)) == Math.Sign(m.CompareTo(n))
                && x.ToKey() == new IpKey(a.High, a.Low);
        });
    }

    [Fact]
    public void Host_masks_and_successors_are_those_of_the_number()
    {
        Gen.Select(Bits, Gen.Int[0, 128]).Sample((a, bits) =>
        {
            UInt128 mask = bits == 128 ? UInt128.Zero : UInt128.MaxValue >> bits;
            IpKey hostMask = IpKey.HostMask(bits);
            UInt128 next = Number(a) + 1;
            IpKey successor = new IpKey(a.High, a.Low).Next();
            return new UInt128(hostMask.High, hostMask.Low) == mask && new UInt128(successor.High, successor.Low) == next;
        });
    }

    [Theory]
    [InlineData("10.244.0.7")]
    [InlineData("0.0.0.0")]
    [InlineData("255.255.255.255")]
    [InlineData("fd00:10:244::7")]
    [InlineData("::1")]
    [InlineData("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")]
    public void Both_sides_read_an_address_to_the_same_bits_and_back(string text)
    {
        var address = IPAddress.Parse(text);
        IpKey key = IpKey.From(address);
        Assert.Equal(key, IpAddress.FromIPAddress(address).ToKey());
        Assert.Equal(address, key.ToIPAddress());
        Assert.Equal(address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork, key.IsV4);
        Assert.Equal(text, IpAddress.FromIPAddress(address).ToString());
        // An IPv4-mapped IPv6 address is the IPv4 address it maps.
        if (key.IsV4) Assert.Equal(key, IpKey.From(address.MapToIPv6()));
    }
}
