namespace Tripline.Export;

/// <summary>
/// Per-interface capture statistics, read at scrape time. A packet source that knows them (live capture: the
/// kernel's and the interface's drop counters) implements this next to <c>IPacketSource</c>; the metrics take
/// them from here and fall back to the source's <c>CaptureCounters</c> when a source does not.
/// </summary>
internal interface ICaptureStatistics
{
    /// <summary>One entry per interface captured so far; counters are cumulative since the agent started.</summary>
    IReadOnlyList<InterfaceCaptureStatistics> InterfaceStatistics();
}

/// <summary>Cumulative counters of one interface. Drops the source cannot know are zero.</summary>
internal readonly record struct InterfaceCaptureStatistics(
    string Interface,
    long Packets,
    long Bytes,
    long KernelDrops,
    long InterfaceDrops);
