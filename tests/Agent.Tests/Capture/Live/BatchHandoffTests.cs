using System.Threading.Channels;
using Tripline.Capture.Sources;

namespace Tripline.Tests.Capture.Live;

/// <summary>How live capture hands batches to the flow table: never waiting, and waking the table seldom.</summary>
public sealed class BatchHandoffTests
{
    /// <summary>A coalescing writer over a bounded channel that records when the reader would have been woken.</summary>
    private sealed class RecordingWriter(int capacity) : ChannelWriter<PacketBatch>, ICoalescingBatchWriter
    {
        private readonly Channel<PacketBatch> _channel = Channel.CreateBounded<PacketBatch>(capacity);

        public List<int> WakesAt { get; } = [];
        public int Quiet { get; private set; }
        public int Loud { get; private set; }
        public ChannelReader<PacketBatch> Reader => _channel.Reader;

        public bool TryWriteQuietly(PacketBatch batch)
        {
            if (!_channel.Writer.TryWrite(batch)) return false;
            Quiet++;
            return true;
        }

        public void Wake() => WakesAt.Add(Quiet);

        public override bool TryWrite(PacketBatch item)
        {
            Loud++;
            return _channel.Writer.TryWrite(item);
        }

        public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default) => _channel.Writer.WaitToWriteAsync(cancellationToken);
    }

    private static void Fill(BatchHandoff handoff, int packets)
    {
        for (int i = 0; i < packets; i++) handoff.Current.Commit();
    }

    [Fact]
    public void Handoff_CoalescingWriter_WakesOncePerRoundAndEveryWakeAtBatchesWithin()
    {
        var writer = new RecordingWriter(capacity: 64);
        var handoff = new BatchHandoff(writer, new PacketBatchPool(70, batchSize: 16), new CaptureCounters());

        // A round of three batches: one wake, at its end.
        for (int i = 0; i < 3; i++)
        {
            Fill(handoff, 16);
            handoff.Handoff();
        }
        Assert.Empty(writer.WakesAt);
        handoff.Announce();
        handoff.Announce();
        Assert.Equal([3], writer.WakesAt);

        // A round over many busy interfaces: woken mid-round each WakeAtBatches batches, then at the end for the rest.
        int many = 2 * BatchHandoff.WakeAtBatches + 5;
        for (int i = 0; i < many; i++)
        {
            Fill(handoff, 16);
            handoff.Handoff();
        }
        handoff.Announce();
        Assert.Equal([3, 3 + BatchHandoff.WakeAtBatches, 3 + 2 * BatchHandoff.WakeAtBatches, 3 + many], writer.WakesAt);
        Assert.Equal(0, writer.Loud);
    }

    [Fact]
    public void AnnounceIfDue_WakesOnlyOnceTheOldestBatchHasWaitedTheDelay_ThenFromTheNextBatch()
    {
        var writer = new RecordingWriter(capacity: 64);
        var handoff = new BatchHandoff(writer, new PacketBatchPool(70, batchSize: 16), new CaptureCounters());
        Assert.Null(handoff.AnnounceDue(50));
        handoff.AnnounceIfDue(long.MaxValue, 50);
        Assert.Empty(writer.WakesAt);

        Fill(handoff, 16);
        handoff.Handoff();
        long due = Assert.NotNull(handoff.AnnounceDue(50));
        Fill(handoff, 16);
        handoff.Handoff();
        // A later batch does not move the oldest one's deadline.
        Assert.Equal(due, handoff.AnnounceDue(50));
        handoff.AnnounceIfDue(due - 1, 50);
        Assert.Empty(writer.WakesAt);
        handoff.AnnounceIfDue(due, 50);
        Assert.Equal([2], writer.WakesAt);
        Assert.Null(handoff.AnnounceDue(50));

        Fill(handoff, 16);
        handoff.Handoff();
        long next = Assert.NotNull(handoff.AnnounceDue(50));
        Assert.True(next >= due, $"{next} < {due}");
        handoff.AnnounceIfDue(next, 50);
        Assert.Equal([2, 3], writer.WakesAt);
    }

    [Fact]
    public void Handoff_FullQueue_CountsTheBatchLostAndRefillsIt()
    {
        var writer = new RecordingWriter(capacity: 1);
        var counters = new CaptureCounters();
        var handoff = new BatchHandoff(writer, new PacketBatchPool(4, batchSize: 16), counters);

        Fill(handoff, 16);
        handoff.Handoff();
        var kept = handoff.Current;
        Fill(handoff, 10);
        handoff.Handoff();

        Assert.Equal(10, counters.QueueDroppedPackets);
        Assert.Same(kept, handoff.Current);
        Assert.Equal(0, handoff.Current.Count);
        Assert.True(writer.Reader.TryRead(out var first));
        Assert.Equal(16, first.Count);
        handoff.Announce();
        Assert.Equal([1], writer.WakesAt);
    }

    [Fact]
    public void Handoff_PlainWriter_WritesEachBatchAtOnce()
    {
        var channel = Channel.CreateBounded<PacketBatch>(8);
        var handoff = new BatchHandoff(channel.Writer, new PacketBatchPool(10, batchSize: 16), new CaptureCounters());

        Fill(handoff, 5);
        handoff.Handoff();
        handoff.Announce();

        Assert.True(channel.Reader.TryRead(out var batch));
        Assert.Equal(5, batch.Count);
    }
}
