namespace Tripline.Capture.Sources;

/// <summary>
/// A batch writer whose reader can be woken once for several batches. Live capture writes the batches of one poll
/// round quietly and wakes the flow table when the round ends, so that the table drains them in one go instead of
/// sleeping and being woken between them: on a busy node each wake-up is a context switch on both threads.
/// </summary>
public interface ICoalescingBatchWriter
{
    /// <summary>Queues the batch without waking the reader; false when the queue is full and the batch was not taken.</summary>
    bool TryWriteQuietly(PacketBatch batch);

    /// <summary>Wakes the reader for the batches written quietly.</summary>
    void Wake();
}
