namespace Tripline.Hosting;

/// <summary>
/// Lets the producer of a bounded queue sleep while the queue is full, and the consumer wake it once it has read the
/// queue down to half its capacity rather than on every read. Used between the file reader and the flow table, and
/// between the flow table and the export thread.
/// </summary>
internal sealed class RoomSignal(int capacity)
{
    private readonly ManualResetEventSlim _room = new(false, spinCount: 1);
    private int _waiting;

    /// <summary>
    /// Producer: sleeps while <paramref name="full"/> holds. The condition is checked after the wait is announced, so a
    /// read in between is not missed, and again every 100 ms in case the consumer is gone.
    /// </summary>
    public void WaitWhile(Func<bool> full, CancellationToken cancellationToken = default)
    {
        _room.Reset();
        Interlocked.Exchange(ref _waiting, 1);
        try
        {
            while (full()) _room.Wait(100, cancellationToken);
        }
        finally
        {
            Volatile.Write(ref _waiting, 0);
        }
    }

    /// <summary>Consumer, after a read that left <paramref name="queued"/> items: wakes a waiting producer once at most half remain.</summary>
    public void Read(int queued)
    {
        if (Volatile.Read(ref _waiting) != 0 && queued <= capacity / 2)
        {
            Volatile.Write(ref _waiting, 0);
            _room.Set();
        }
    }
}
