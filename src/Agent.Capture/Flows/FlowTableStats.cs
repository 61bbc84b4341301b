namespace Tripline.Capture.Flows;

/// <summary>
/// Counters owned by the flow-table thread. Plain fields, written without locks; readers on other threads take
/// a <see cref="Snapshot"/> at scrape time, which may be a few packets stale but never torn on 64-bit hosts.
/// </summary>
public sealed class FlowTableStats
{
    public long Packets;
    public long Bytes;
    public long FlowsStarted;
    public long FlowsEnded;
    public long Evictions;
    /// <summary>Packets of a flow seen again on a second interface (the same packet on another veth or a bridge): not counted twice.</summary>
    public long DuplicatePackets;
    /// <summary>Later fragments whose first fragment was not seen, so their ports are unknown.</summary>
    public long UnmatchedFragments;
    /// <summary>ICMP errors counted as evidence on the flow they quote rather than as flows of their own.</summary>
    public long IcmpErrors;
    public long Active;

    public FlowTableStats Snapshot() => new()
    {
        Packets = Volatile.Read(ref Packets),
        Bytes = Volatile.Read(ref Bytes),
        FlowsStarted = Volatile.Read(ref FlowsStarted),
        FlowsEnded = Volatile.Read(ref FlowsEnded),
        Evictions = Volatile.Read(ref Evictions),
        DuplicatePackets = Volatile.Read(ref DuplicatePackets),
        UnmatchedFragments = Volatile.Read(ref UnmatchedFragments),
        IcmpErrors = Volatile.Read(ref IcmpErrors),
        Active = Volatile.Read(ref Active),
    };
}
