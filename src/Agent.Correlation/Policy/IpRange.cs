using System.Net;
using System.Net.Sockets;
using Tripline.Correlation.Endpoints;

namespace Tripline.Correlation.Policy;

/// <summary>A CIDR as an inclusive range of <see cref="IpKey"/> values, so IPv4 and IPv6 blocks compare the same way.</summary>
internal readonly record struct IpRange(IpKey First, IpKey Last, string Text)
{
    public bool Contains(IpKey ip) => ip >= First && ip <= Last;

    /// <summary>Parses <c>10.0.0.0/8</c> or <c>fd00::/64</c>; host bits set after the prefix are masked off, as Kubernetes does.</summary>
    public static bool TryParse(string? text, out IpRange range)
    {
        range = default;
        if (string.IsNullOrEmpty(text)) return false;
        int slash = text.IndexOf('/');
        if (slash <= 0 || !IPAddress.TryParse(text.AsSpan(0, slash), out var address)) return false;
        if (!int.TryParse(text.AsSpan(slash + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int prefix)) return false;
        bool v4 = address.AddressFamily == AddressFamily.InterNetwork;
        // IPAddress also reads "10.0.0", "0x0a.0.0.1" and "fe80::1%eth0"; the API server's CIDRs are dotted quads
        // and plain IPv6, so anything else is a typo to report, not a block to guess at.
        if (v4 ? !IsDottedQuad(text.AsSpan(0, slash)) : text.AsSpan(0, slash).Contains('%')) return false;
        if (prefix > (v4 ? 32 : 128)) return false;
        // An IPv4 block lives in the IPv4-mapped part of the 128-bit space.
        int bits = v4 ? 96 + prefix : prefix;
        IpKey key = IpKey.From(address);
        IpKey hostMask = IpKey.HostMask(bits);
        range = new IpRange(key & ~hostMask, (key & ~hostMask) | hostMask, text);
        return true;
    }

    private static bool IsDottedQuad(ReadOnlySpan<char> text)
    {
        int parts = 0;
        foreach (var part in text.Split('.'))
        {
            var digits = text[part];
            if (digits.Length is 0 or > 3 || digits.ContainsAnyExceptInRange('0', '9')) return false;
            parts++;
        }
        return parts == 4;
    }

    /// <summary>True when <paramref name="inner"/> lies wholly inside this range.</summary>
    public bool Covers(IpRange inner) => inner.First >= First && inner.Last <= Last;
}

/// <summary>
/// Splits the address space at every ipBlock boundary. Two addresses in the same class are inside exactly the same
/// ipBlocks and excepts, so a verdict cached for one holds for the other: the class, not the IP, goes in the cache key.
/// </summary>
internal sealed class IpClassifier
{
    private readonly IpKey[] _boundaries;

    public IpClassifier(IEnumerable<IpRange> ranges)
    {
        var points = new SortedSet<IpKey>();
        foreach (var range in ranges)
        {
            points.Add(range.First);
            if (range.Last != IpKey.MaxValue) points.Add(range.Last.Next());
        }
        _boundaries = [.. points];
    }

    /// <summary>The number of boundaries at or below <paramref name="ip"/>: a dense class id.</summary>
    public int Classify(IpKey ip)
    {
        var boundaries = _boundaries;
        int lo = 0, hi = boundaries.Length;
        while (lo < hi)
        {
            int mid = (int)((uint)(lo + hi) >> 1);
            if (boundaries[mid] <= ip) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    public bool SameAs(IpClassifier other) => _boundaries.AsSpan().SequenceEqual(other._boundaries);
}
