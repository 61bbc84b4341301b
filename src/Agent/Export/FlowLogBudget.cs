namespace Tripline.Export;

/// <summary>Which records a full budget gives way to: denied flows first, then flows of peer pairs not seen recently.</summary>
internal enum RecordPriority
{
    Denied,
    NewPair,
    Ordinary,
}

/// <summary>
/// The flow log's records-per-second budget, a token bucket on the events' own clock (packet time), so that a replay
/// spends it exactly as live capture did. Tiers keep a reserve: ordinary records stop at half the burst, new peer
/// pairs at a quarter, and denied flows may take the last token, so a flood of ordinary or new-pair flows never
/// crowds out a denial. Records that must follow one already written (its end, an aggregate) are charged as debt,
/// never refused, so the long-run rate holds and no flow is left with a start and no end.
/// </summary>
internal sealed class FlowLogBudget
{
    private readonly double _perNanosecond;
    private double _tokens;
    private long _clockNs = long.MinValue;

    public FlowLogBudget(double recordsPerSecond, int burst)
    {
        RecordsPerSecond = recordsPerSecond;
        Burst = burst;
        _perNanosecond = recordsPerSecond / 1e9;
        _tokens = burst;
    }

    public double RecordsPerSecond { get; }

    public int Burst { get; }

    /// <summary>Tokens now (negative while in debt); for tests.</summary>
    public double Tokens => _tokens;

    /// <summary>Takes <paramref name="records"/> tokens if the tier's reserve stays untouched.</summary>
    public bool TryTake(int records, RecordPriority priority, long nowNs)
    {
        Refill(nowNs);
        double reserve = priority switch
        {
            RecordPriority.Denied => 0,
            RecordPriority.NewPair => Burst / 4.0,
            _ => Burst / 2.0,
        };
        if (_tokens - records < reserve) return false;
        _tokens -= records;
        return true;
    }

    /// <summary>Charges records that are written whatever the budget; the debt is bounded by one burst.</summary>
    public void Charge(int records, long nowNs)
    {
        Refill(nowNs);
        _tokens = Math.Max(-Burst, _tokens - records);
    }

    /// <summary>Gives back tokens taken for records that were not written after all (a short flow folded).</summary>
    public void Refund(int records) => _tokens = Math.Min(Burst, _tokens + records);

    private void Refill(long nowNs)
    {
        // Events come nearly in time order (an idle end is stamped ahead): the clock only moves forward.
        if (nowNs <= _clockNs) return;
        if (_clockNs != long.MinValue) _tokens = Math.Min(Burst, _tokens + (nowNs - _clockNs) * _perNanosecond);
        _clockNs = nowNs;
    }
}
