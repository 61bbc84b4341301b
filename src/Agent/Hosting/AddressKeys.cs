using Tripline.Capture.Parsing;
using Tripline.Correlation.Endpoints;

namespace Tripline.Hosting;

/// <summary>The capture side's address as the cluster side's key: the same 128 bits, IPv4 mapped alike.</summary>
internal static class AddressKeys
{
    public static IpKey ToKey(this IpAddress address) => new(address.High, address.Low);
}
