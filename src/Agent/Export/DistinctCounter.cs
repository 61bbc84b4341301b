using System.Numerics;

namespace Tripline.Export;

/// <summary>
/// Counts distinct values in bounded memory: exactly up to <see cref="ExactLimit"/> values, then as a HyperLogLog
/// sketch of 4 KiB (about 1.6% standard error). A port scan of a million addresses costs 4 KiB, not a set of a million.
/// Values below 65,536 (ports) are counted exactly in an 8 KiB bitmap instead of a sketch.
/// </summary>
internal sealed class DistinctCounter(bool ports = false)
{
    public const int ExactLimit = 256;
    private const int Precision = 12;
    private const int Registers = 1 << Precision;

    private readonly bool _ports = ports;
    private HashSet<ulong>? _exact;
    private byte[]? _sketch;
    private ulong[]? _bitmap;
    private int _bitmapCount;

    /// <summary>Adds a value (64 bits that identify it, such as an address folded to 64 bits).</summary>
    public void Add(ulong value)
    {
        if (_bitmap is not null)
        {
            Mark(value);
            return;
        }
        if (_sketch is null)
        {
            _exact ??= [];
            if (_exact.Count < ExactLimit || _exact.Contains(value))
            {
                _exact.Add(value);
                return;
            }
            if (_ports)
            {
                _bitmap = new ulong[65_536 / 64];
                foreach (ulong seen in _exact) Mark(seen);
                _exact = null;
                Mark(value);
                return;
            }
            _sketch = new byte[Registers];
            foreach (ulong seen in _exact) Sketch(seen);
            _exact = null;
        }
        Sketch(value);
    }

    private void Mark(ulong port)
    {
        ulong bit = 1UL << (int)(port & 63);
        ref ulong word = ref _bitmap![(port >> 6) & 1023];
        if ((word & bit) != 0) return;
        word |= bit;
        _bitmapCount++;
    }

    /// <summary>True once the count is an estimate (more than <see cref="ExactLimit"/> distinct values).</summary>
    public bool Estimated => _sketch is not null;

    public long Count => _bitmap is not null ? _bitmapCount : _sketch is { } sketch ? Estimate(sketch) : _exact?.Count ?? 0;

    private void Sketch(ulong value)
    {
        ulong hash = Mix(value);
        int index = (int)(hash >> (64 - Precision));
        // The guard bit bounds the rank when the remaining bits are all zero.
        int rank = BitOperations.LeadingZeroCount((hash << Precision) | (1UL << (Precision - 1))) + 1;
        if (rank > _sketch![index]) _sketch[index] = (byte)rank;
    }

    private static long Estimate(byte[] sketch)
    {
        double sum = 0;
        int zeros = 0;
        foreach (byte r in sketch)
        {
            sum += Math.ScaleB(1, -r);
            if (r == 0) zeros++;
        }
        double m = Registers;
        double estimate = 0.7213 / (1 + 1.079 / m) * m * m / sum;
        // Small ranges: linear counting on the empty registers is the better estimate.
        if (estimate <= 2.5 * m && zeros > 0) estimate = m * Math.Log(m / zeros);
        return (long)Math.Round(estimate);
    }

    /// <summary>SplitMix64's finaliser: every input bit moves every output bit, which the sketch needs.</summary>
    public static ulong Mix(ulong x)
    {
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9UL;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebUL;
        return x ^ (x >> 31);
    }
}
