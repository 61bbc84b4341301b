namespace Tripline.Records;

/// <summary>Times as the flow log writes them (fixed-width UTC), which order as bytes, so a period widens without parsing.</summary>
internal static class RecordedTimes
{
    /// <summary>Widens [<paramref name="first"/>, <paramref name="last"/>] (empty: nothing yet) to take in [<paramref name="start"/>, <paramref name="end"/>].</summary>
    public static void Widen(ref byte[] first, ref byte[] last, ReadOnlySpan<byte> start, ReadOnlySpan<byte> end)
    {
        if (first.Length == 0 || start.SequenceCompareTo(first) < 0) first = start.ToArray();
        if (end.SequenceCompareTo(last) > 0) last = end.ToArray();
    }
}
