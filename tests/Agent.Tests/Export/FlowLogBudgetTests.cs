using Tripline.Capture.Parsing;
using Tripline.Correlation.Endpoints;
using Tripline.Export;

namespace Tripline.Tests.Export;

/// <summary>The parts of the flood guard on their own: the budget's tiers and clock, distinct counting, recent pairs.</summary>
public sealed class FlowLogBudgetTests
{
    private const long Second = 1_000_000_000;
    private static readonly long T0 = 1_764_100_000 * Second;

    [Fact]
    public void TryTake_OrdinaryFlood_StopsAtHalfTheBurstAndLeavesTheRestToDenials()
    {
        var budget = new FlowLogBudget(recordsPerSecond: 10, burst: 100);
        int ordinary = 0;
        while (budget.TryTake(2, RecordPriority.Ordinary, T0)) ordinary++;
        int newPairs = 0;
        while (budget.TryTake(2, RecordPriority.NewPair, T0)) newPairs++;
        int denied = 0;
        while (budget.TryTake(2, RecordPriority.Denied, T0)) denied++;

        Assert.Equal(25, ordinary);
        Assert.Equal(12, newPairs);
        Assert.Equal(13, denied);
    }

    [Fact]
    public void TryTake_RefillsOnTheEventsClock_NotTheWallClock()
    {
        var budget = new FlowLogBudget(recordsPerSecond: 10, burst: 4);
        Assert.True(budget.TryTake(4, RecordPriority.Denied, T0));
        Assert.False(budget.TryTake(1, RecordPriority.Denied, T0));
        // An event stamped earlier does not move the clock back, nor refill.
        Assert.False(budget.TryTake(1, RecordPriority.Denied, T0 - Second));
        Assert.True(budget.TryTake(1, RecordPriority.Denied, T0 + Second / 10));
        Assert.False(budget.TryTake(1, RecordPriority.Denied, T0 + Second / 10));
        // Never more than the burst, however long the quiet.
        Assert.True(budget.TryTake(4, RecordPriority.Denied, T0 + 3600 * Second));
        Assert.False(budget.TryTake(1, RecordPriority.Denied, T0 + 3600 * Second));
    }

    [Fact]
    public void Charge_RecordsThatMustFollow_GoIntoBoundedDebt()
    {
        var budget = new FlowLogBudget(recordsPerSecond: 10, burst: 20);
        budget.Charge(1000, T0);
        Assert.Equal(-20, budget.Tokens);
        // Two seconds repay the debt: admissions resume.
        Assert.False(budget.TryTake(2, RecordPriority.Denied, T0 + Second));
        Assert.True(budget.TryTake(2, RecordPriority.Denied, T0 + 3 * Second));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(200)]
    [InlineData(DistinctCounter.ExactLimit)]
    public void DistinctCounter_UpToTheLimit_IsExact(int distinct)
    {
        var counter = new DistinctCounter();
        for (int round = 0; round < 3; round++)
        {
            for (int i = 0; i < distinct; i++) counter.Add((ulong)i * 7919);
        }
        Assert.Equal(distinct, counter.Count);
        Assert.False(counter.Estimated);
    }

    [Theory]
    [InlineData(1_000)]
    [InlineData(100_000)]
    [InlineData(1_000_000)]
    public void DistinctCounter_PastTheLimit_EstimatesWithinFivePercent(int distinct)
    {
        var counter = new DistinctCounter();
        for (int i = 0; i < distinct; i++)
        {
            var ip = IpAddress.FromV4((uint)(0x0A800000 + i));
            counter.Add(ip.High ^ ip.Low);
            counter.Add(ip.High ^ ip.Low);
        }
        Assert.True(counter.Estimated);
        Assert.InRange(counter.Count, distinct * 95L / 100, distinct * 105L / 100);
    }

    [Fact]
    public void DistinctCounter_Ports_AreExactEvenPastTheLimit()
    {
        var counter = new DistinctCounter(ports: true);
        for (int port = 0; port < 65_536; port++) counter.Add((ulong)port);
        for (int port = 0; port < 1000; port++) counter.Add((ulong)port);
        Assert.Equal(65_536, counter.Count);
        Assert.False(counter.Estimated);
    }

    [Fact]
    public void RecentPairs_Touch_NewThenSeenThenNewAgainAfterTheMemory()
    {
        var pairs = new RecentPairs(TimeSpan.FromMinutes(10));
        var a = new Peer(EndpointKind.External, null, null, null, IpAddress.Parse("10.0.0.1"));
        var b = new Peer(EndpointKind.External, null, null, null, IpAddress.Parse("10.0.0.2"));
        Assert.True(pairs.Touch(a, b, T0));
        Assert.False(pairs.Touch(a, b, T0 + Second));
        Assert.True(pairs.Touch(b, a, T0 + Second));
        Assert.False(pairs.Touch(a, b, T0 + 9 * 60 * Second));
        Assert.True(pairs.Touch(a, b, T0 + 20 * 60 * Second));
    }

    [Fact]
    public void RecentPairs_MillionPairs_ForgetTheOldestAndStayFixedInSize()
    {
        var pairs = new RecentPairs(TimeSpan.FromHours(1));
        var source = new Peer(EndpointKind.External, null, null, null, IpAddress.Parse("10.0.0.1"));
        pairs.Touch(source, source, T0);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1_000_000; i++) Assert.True(pairs.Touch(source, new Peer(EndpointKind.External, null, null, null, IpAddress.FromV4((uint)i + 1)), T0 + i));
        // Nothing per pair (one byte each would be a megabyte); a few KiB of the runtime's own (tiered compilation).
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 64 * 1024, $"{allocated:N0} bytes allocated for a million pairs");
        // The latest pairs are remembered; the first were forgotten for room.
        Assert.False(pairs.Touch(source, new Peer(EndpointKind.External, null, null, null, IpAddress.FromV4(1_000_000)), T0 + 1_000_000));
        Assert.True(pairs.Touch(source, new Peer(EndpointKind.External, null, null, null, IpAddress.FromV4(1)), T0 + 1_000_001));
    }
}
