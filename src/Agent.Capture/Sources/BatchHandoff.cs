using System.Threading.Channels;

namespace Tripline.Capture.Sources;

/// <summary>
/// The batch a live source is filling, and its hand-over to the flow table, which never waits: when the queue is
/// full the batch's packets are counted as lost (<see cref="CaptureCounters.QueueDroppedPackets"/>) and the batch is
/// filled again. With an <see cref="ICoalescingBatchWriter"/> the flow table is woken once per
/// <see cref="Announce"/> for all the batches handed over since, or every <see cref="WakeAtBatches"/> batches, so
/// that a round over many busy interfaces cannot fill the queue while the table sleeps. <see cref="AnnounceIfDue"/>
/// wakes it only once the oldest of them has waited a given delay: every wake-up costs both threads a context
/// switch, which on a busy node costs more than the packets a round reads.
/// </summary>
internal sealed class BatchHandoff
{
    /// <summary>A quarter of the pipeline's queue (64 batches).</summary>
    public const int WakeAtBatches = 16;

    private readonly ChannelWriter<PacketBatch> _output;
    private readonly ICoalescingBatchWriter? _quiet;
    private readonly PacketBatchPool _pool;
    private readonly CaptureCounters _counters;
    // Batches handed over quietly since the flow table was last woken.
    private int _unannounced;
    // When the oldest of them was handed over (Environment.TickCount64).
    private long _unannouncedSince;

    public BatchHandoff(ChannelWriter<PacketBatch> output, PacketBatchPool pool, CaptureCounters counters)
    {
        _output = output;
        _quiet = output as ICoalescingBatchWriter;
        _pool = pool;
        _counters = counters;
        Current = pool.Rent();
    }

    /// <summary>The batch being filled.</summary>
    public PacketBatch Current { get; private set; }

    /// <summary>Hands the current batch over (or counts it lost) and starts an empty one.</summary>
    public void Handoff()
    {
        var batch = Current;
        if (_quiet is { } quiet ? quiet.TryWriteQuietly(batch) : _output.TryWrite(batch))
        {
            Current = _pool.Rent();
            if (_quiet is null) return;
            if (_unannounced == 0) _unannouncedSince = Environment.TickCount64;
            if (++_unannounced >= WakeAtBatches) Announce();
        }
        else
        {
            // Never wait for the flow table: waiting would fill the kernel ring and lose packets uncounted there.
            _counters.QueueDroppedPackets += batch.Count;
            batch.Count = 0;
        }
    }

    /// <summary>When the flow table is due to be woken for batches handed over quietly (<paramref name="delayMs"/> after the oldest), or null.</summary>
    public long? AnnounceDue(long delayMs) => _unannounced == 0 ? null : _unannouncedSince + delayMs;

    /// <summary>Wakes the flow table if the oldest batch handed over quietly has waited <paramref name="delayMs"/>.</summary>
    public void AnnounceIfDue(long nowMs, long delayMs)
    {
        if (_unannounced > 0 && nowMs - _unannouncedSince >= delayMs) Announce();
    }

    /// <summary>Wakes the flow table for the batches handed over quietly, if any.</summary>
    public void Announce()
    {
        if (_unannounced == 0) return;
        _unannounced = 0;
        _quiet!.Wake();
    }

    /// <summary>Returns the batch being filled to the pool (the source is stopping; hand it over first if it holds packets).</summary>
    public void Release() => _pool.Return(Current);
}
