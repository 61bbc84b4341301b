using Tripline.Capture.Parsing;

namespace Tripline.Capture.Sources;

/// <summary>
/// Losses and parse outcomes counted by a capture thread, without locks. Each source thread owns its own
/// instance; readers sum <see cref="Snapshot"/>s at scrape time.
/// </summary>
public sealed class CaptureCounters
{
    private readonly long[] _byStatus = new long[ParseStatusExtensions.Count];

    public long Frames;
    /// <summary>Batches the flow-table thread could not take in time (live capture never waits).</summary>
    public long QueueDroppedPackets;
    public long CaptureErrors;
    /// <summary>Any device: packets of an interface that was gone before its index could be named (whose, nobody can say).</summary>
    public long UnresolvedInterfacePackets;

    public void Count(ParseStatus status) => _byStatus[(int)status]++;

    public long this[ParseStatus status] => Volatile.Read(ref _byStatus[(int)status]);

    public long Malformed
    {
        get
        {
            long sum = 0;
            for (int i = 0; i < _byStatus.Length; i++) if (((ParseStatus)i).IsMalformed()) sum += Volatile.Read(ref _byStatus[i]);
            return sum;
        }
    }

    public long Skipped
    {
        get
        {
            long sum = 0;
            for (int i = 0; i < _byStatus.Length; i++) if (((ParseStatus)i).IsSkipped()) sum += Volatile.Read(ref _byStatus[i]);
            return sum;
        }
    }

    public void AddTo(CaptureCounters total)
    {
        for (int i = 0; i < _byStatus.Length; i++) total._byStatus[i] += Volatile.Read(ref _byStatus[i]);
        total.Frames += Volatile.Read(ref Frames);
        total.QueueDroppedPackets += Volatile.Read(ref QueueDroppedPackets);
        total.CaptureErrors += Volatile.Read(ref CaptureErrors);
        total.UnresolvedInterfacePackets += Volatile.Read(ref UnresolvedInterfacePackets);
    }

    public IEnumerable<(ParseStatus Status, long Count)> ByStatus()
    {
        for (int i = 0; i < _byStatus.Length; i++)
        {
            long n = Volatile.Read(ref _byStatus[i]);
            if (n > 0) yield return ((ParseStatus)i, n);
        }
    }
}
