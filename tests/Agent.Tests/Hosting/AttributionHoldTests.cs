using System.Diagnostics;
using Tripline.Capture.Flows;
using Tripline.Capture.Parsing;
using Tripline.Correlation.Cluster;
using Tripline.Hosting;
using Tripline.Tests.Correlation.Policy;

namespace Tripline.Tests.Hosting;

public sealed class AttributionHoldTests
{
    private sealed class Sink : IReleasedFlowSink
    {
        public List<(ulong Id, FlowEventKind Kind, bool TimedOut, string? SourcePod)> Released { get; } = [];

        public void ExportReleased(ref FlowEvent flowEvent, ClusterModel model, bool timedOut) =>
            Released.Add((flowEvent.Flow.Id, flowEvent.Kind, timedOut, model.Index.Resolve(flowEvent.Flow.Source.ToKey(), flowEvent.Flow.FirstSeenNs).Pod?.Name));
    }

    private static FlowEvent Event(ulong id, FlowEventKind kind, string source, string destination) => new()
    {
        Kind = kind,
        Flow = new FlowEntry { Id = id, Source = IpAddress.Parse(source), Destination = IpAddress.Parse(destination), Protocol = IpProtocol.Tcp, FirstSeenNs = 1 },
    };

    private static ClusterModel Model(bool withNewPod, long version) => ClusterModel.Build(PolicyBuilders.Snapshot(
        withNewPod ? [PolicyBuilders.Pod("shop", "server", "10.244.1.9"), PolicyBuilders.Pod("shop", "new", "10.244.1.50")] : [PolicyBuilders.Pod("shop", "server", "10.244.1.9")],
        "",
        nodes: [new NodeInfo { Name = "node-1", PodCidrs = ["10.244.1.0/24"] }],
        version: version));

    [Fact]
    public void Release_PodAppearsLater_HeldFlowGoesOutNamedWithItsLaterEventsInOrder()
    {
        var hold = new AttributionHold(TimeSpan.FromSeconds(5));
        var before = Model(withNewPod: false, 1);
        long now = Stopwatch.GetTimestamp();
        Assert.True(hold.TryHold(Event(1, FlowEventKind.Start, "10.244.1.50", "10.244.1.9"), before, now));
        Assert.True(hold.TryHold(Event(1, FlowEventKind.End, "10.244.1.50", "10.244.1.9"), before, now), "a later event of a held flow waits behind it");
        Assert.False(hold.TryHold(Event(2, FlowEventKind.Start, "10.244.1.9", "192.0.2.1"), before, now), "outside every pod range: judged at once");
        var sink = new Sink();

        hold.Release(before, now, all: false, sink);
        Assert.Empty(sink.Released);
        hold.Release(Model(withNewPod: true, 2), now, all: false, sink);

        Assert.Equal([(1UL, FlowEventKind.Start, false, "new"), (1UL, FlowEventKind.End, false, "new")], sink.Released);
        Assert.Equal(0, hold.Count);
        Assert.Equal(0, hold.TimedOutFlows);
    }

    [Fact]
    public void Release_PodNeverAppears_GoesOutAfterTheWaitMarkedAndCounted()
    {
        var hold = new AttributionHold(TimeSpan.FromMilliseconds(200));
        var model = Model(withNewPod: false, 1);
        long start = Stopwatch.GetTimestamp();
        Assert.True(hold.TryHold(Event(7, FlowEventKind.Start, "10.244.1.77", "10.244.1.9"), model, start));
        var sink = new Sink();

        hold.Release(model, start + Stopwatch.Frequency / 10, all: false, sink);
        Assert.Empty(sink.Released);
        hold.Release(model, start + Stopwatch.Frequency / 4, all: false, sink);

        Assert.Equal([(7UL, FlowEventKind.Start, true, null)], sink.Released);
        Assert.Equal(1, hold.TimedOutFlows);
    }

    [Fact]
    public void TryHold_AtCapacity_JudgesNewFlowsAtOnce()
    {
        var hold = new AttributionHold(TimeSpan.FromSeconds(5), capacity: 2);
        var model = Model(withNewPod: false, 1);
        long now = Stopwatch.GetTimestamp();
        Assert.True(hold.TryHold(Event(1, FlowEventKind.Start, "10.244.1.60", "10.244.1.9"), model, now));
        Assert.True(hold.TryHold(Event(2, FlowEventKind.Start, "10.244.1.61", "10.244.1.9"), model, now));
        Assert.False(hold.TryHold(Event(3, FlowEventKind.Start, "10.244.1.62", "10.244.1.9"), model, now));
    }
}
