namespace Tripline.Export;

/// <summary>How the flow log is written: rotation and retention of files, and which records it keeps.</summary>
internal sealed record FlowLogOptions
{
    /// <summary>A file is rotated once it would grow past this.</summary>
    public long MaxFileBytes { get; init; } = 100L << 20;

    /// <summary>Rotated files kept, besides the one being written.</summary>
    public int MaxFiles { get; init; } = 20;

    /// <summary>Bytes kept in all files together, the one being written counted at its maximum size.</summary>
    public long MaxTotalBytes { get; init; } = 2L << 30;

    /// <summary>gzip rotated files (in the background).</summary>
    public bool Compress { get; init; } = true;

    public bool DeniedOnly { get; init; }

    /// <summary>Only <c>start</c> and <c>end</c> records, no <c>update</c>s.</summary>
    public bool StartsAndEndsOnly { get; init; }

    /// <summary>When set, flows that start and end within this interval are written as one <c>aggregate</c> record per peer pair.</summary>
    public TimeSpan? Aggregate { get; init; }

    /// <summary>
    /// Records per second the flow log may take, on average, on the events' clock; 0 for no limit. Past it, denied
    /// flows and new peer pairs are written first and the rest folded into aggregates (<see cref="AggregatingFlowLog"/>).
    /// 500/s is some 0.4 MB/s of JSON before compression: the default retention holds hours of it, and a log shipper
    /// keeps up. GKE's NetworkPolicy logging caps at the same 500/s.
    /// </summary>
    public double RateLimit { get; init; } = 500;

    /// <summary>Records the budget may spend at once after a quiet spell.</summary>
    public int RateBurst { get; init; } = 2000;

    /// <summary>When set, rotated files older than this are deleted, whatever their size and count.</summary>
    public TimeSpan? MaxAge { get; init; }

    public FlowLogFilter Filter => new() { DeniedOnly = DeniedOnly, StartsAndEndsOnly = StartsAndEndsOnly };

    public IEnumerable<string> Validate()
    {
        if (MaxFileBytes < 4096) yield return "--flow-log-max-size: must be at least 4KiB";
        if (MaxFiles < 0) yield return "--flow-log-max-files: must not be negative";
        if (MaxTotalBytes < MaxFileBytes) yield return "--flow-log-max-total: must be at least --flow-log-max-size";
        if (RateLimit < 0 || double.IsNaN(RateLimit) || RateLimit > 1_000_000) yield return "--flow-log-rate-limit: must be between 0 (no limit) and 1000000 records/s";
        if (RateLimit > 0 && (RateBurst < 2 || RateBurst > 10_000_000)) yield return "--flow-log-rate-burst: must be between 2 and 10000000 records";
        if (MaxAge is { } age && age < TimeSpan.FromMinutes(1)) yield return "--flow-log-max-age: must be at least 1m";
        if (Aggregate is { } interval && (interval < TimeSpan.FromSeconds(1) || interval > TimeSpan.FromHours(1))) yield return "--flow-log-aggregate: must be between 1s and 1h";
    }

    /// <summary>Parses sizes as "512", "64K", "100M", "2G" (powers of 1024, optional "i"/"B" suffixes).</summary>
    public static bool TryParseSize(string text, out long bytes)
    {
        bytes = 0;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var s = text.Trim().ToUpperInvariant();
        if (s.EndsWith('B')) s = s[..^1];
        if (s.EndsWith('I')) s = s[..^1];
        long unit = 1;
        if (s.Length > 0 && s[^1] is 'K' or 'M' or 'G' or 'T')
        {
            unit = s[^1] switch { 'K' => 1L << 10, 'M' => 1L << 20, 'G' => 1L << 30, _ => 1L << 40 };
            s = s[..^1];
        }
        if (!long.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long n) || n > long.MaxValue / unit) return false;
        bytes = n * unit;
        return true;
    }
}
