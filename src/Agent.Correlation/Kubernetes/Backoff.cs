namespace Tripline.Correlation.Kubernetes;

/// <summary>Exponential backoff with jitter: initial × 2^(n−1), capped, then spread by ±jitter.</summary>
internal static class Backoff
{
    public static TimeSpan Delay(int consecutiveFailures, TimeSpan initial, TimeSpan max, double jitter, Random random)
    {
        if (consecutiveFailures < 1) return TimeSpan.Zero;
        int exponent = Math.Min(consecutiveFailures - 1, 30);
        double ticks = Math.Min(initial.Ticks * Math.Pow(2, exponent), max.Ticks);
        double spread = 1 + jitter * (random.NextDouble() * 2 - 1);
        return TimeSpan.FromTicks((long)Math.Max(ticks * spread, 0));
    }
}
