using Prometheus;
using Tripline.Export;

namespace Tripline.Tests.Export;

public sealed class BoundedCounterTests
{
    private static async Task<string> ScrapeAsync(CollectorRegistry registry)
    {
        using var stream = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(stream);
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    [Fact]
    public async Task Inc_PastTheCap_FoldsFoldableLabelsIntoOtherAndKeepsTotals()
    {
        var registry = Metrics.NewCustomRegistry();
        var counter = Metrics.WithCustomRegistry(registry).CreateCounter("t_flows_total", "h", ["verdict", "namespace"]);
        var bounded = new BoundedCounter(counter, [false, true], maxSeries: 2, TimeSpan.FromHours(1), TimeProvider.System);
        bounded.Inc(["allow", "a"]);
        bounded.Inc(["allow", "b"]);
        bounded.Inc(["deny", "c"]);
        bounded.Inc(["deny", "d"]);
        bounded.Inc(["allow", "a"]);
        string text = await ScrapeAsync(registry);
        Assert.Contains("t_flows_total{verdict=\"allow\",namespace=\"a\"} 2", text);
        Assert.Contains("t_flows_total{verdict=\"deny\",namespace=\"other\"} 2", text);
        Assert.DoesNotContain("namespace=\"c\"", text);
        Assert.Equal(2, bounded.Folded);
    }

    [Fact]
    public async Task Expire_IdleSeriesOfGoneNamespace_IsRemovedOthersStay()
    {
        var time = new ManualTime();
        var registry = Metrics.NewCustomRegistry();
        var counter = Metrics.WithCustomRegistry(registry).CreateCounter("t_denied_total", "h", ["namespace"]);
        var bounded = new BoundedCounter(counter, [true], 100, TimeSpan.FromMinutes(10), time);
        bounded.Inc(["deleted"]);
        bounded.Inc(["alive"]);
        time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(0, bounded.Expire(labels => labels[0] == "deleted"));
        time.Advance(TimeSpan.FromMinutes(6));
        Assert.Equal(1, bounded.Expire(labels => labels[0] == "deleted"));
        string text = await ScrapeAsync(registry);
        Assert.DoesNotContain("deleted", text);
        Assert.Contains("t_denied_total{namespace=\"alive\"} 1", text);
    }

    /// <summary>A clock the test moves by hand.</summary>
    private sealed class ManualTime : TimeProvider
    {
        private long _ticks = DateTimeOffset.UnixEpoch.Ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public override DateTimeOffset GetUtcNow() => new(_ticks, TimeSpan.Zero);
    }
}
