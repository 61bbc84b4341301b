using System.Net;
using System.Net.Sockets;

namespace Tripline.Recommend;

/// <summary>
/// Addresses as ipBlock CIDRs: one address is a <c>/32</c> (or <c>/128</c>); merged, the fewest CIDRs that cover the
/// addresses and no address that was not observed (two halves of a block become the block only when both are whole).
/// </summary>
internal static class CidrMerge
{
    public static string Single(IPAddress address) =>
        $"{address}/{(address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128)}";

    /// <summary>Sorted: IPv4 before IPv6, by address.</summary>
    public static IReadOnlyList<string> Singles(IEnumerable<IPAddress> addresses) =>
        [.. Sorted(addresses).Select(Single)];

    public static IReadOnlyList<string> Merge(IEnumerable<IPAddress> addresses)
    {
        var result = new List<string>();
        foreach (var family in Sorted(addresses).GroupBy(a => a.AddressFamily))
        {
            int bits = family.Key == AddressFamily.InterNetwork ? 32 : 128;
            // Blocks as (first address, prefix length), merged bottom-up: a block and its sibling become their parent.
            var blocks = new SortedDictionary<UInt128, int>();
            foreach (var address in family) blocks[ToNumber(address)] = bits;
            bool merged = true;
            while (merged)
            {
                merged = false;
                var next = new SortedDictionary<UInt128, int>();
                var list = blocks.ToList();
                for (int i = 0; i < list.Count; i++)
                {
                    var (start, prefix) = list[i];
                    if (prefix > 0 && i + 1 < list.Count && list[i + 1].Value == prefix)
                    {
                        UInt128 size = UInt128.One << (bits - prefix);
                        bool aligned = (start & ((size << 1) - 1)) == 0;
                        if (aligned && list[i + 1].Key == start + size)
                        {
                            next[start] = prefix - 1;
                            i++;
                            merged = true;
                            continue;
                        }
                    }
                    next[start] = prefix;
                }
                blocks = next;
            }
            foreach (var (start, prefix) in blocks) result.Add($"{FromNumber(start, family.Key)}/{prefix}");
        }
        return result;
    }

    private static IEnumerable<IPAddress> Sorted(IEnumerable<IPAddress> addresses) =>
        addresses.Distinct().OrderBy(a => a.AddressFamily == AddressFamily.InterNetwork ? 0 : 1).ThenBy(ToNumber);

    private static UInt128 ToNumber(IPAddress address)
    {
        UInt128 value = 0;
        foreach (byte b in address.GetAddressBytes()) value = (value << 8) | b;
        return value;
    }

    private static IPAddress FromNumber(UInt128 value, AddressFamily family)
    {
        var bytes = new byte[family == AddressFamily.InterNetwork ? 4 : 16];
        for (int i = bytes.Length - 1; i >= 0; i--)
        {
            bytes[i] = (byte)(value & 0xFF);
            value >>= 8;
        }
        return new IPAddress(bytes);
    }
}
