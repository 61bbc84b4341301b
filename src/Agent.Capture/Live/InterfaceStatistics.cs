namespace Tripline.Capture.Live;

/// <summary>
/// Cumulative counters of one interface since the agent started, kept after the interface vanished so that the
/// exported counters never go back. <see cref="Packets"/> and <see cref="Bytes"/> are what capture read (wire
/// lengths); the drops are libpcap's: <see cref="KernelDrops"/> the socket ring was full, <see cref="InterfaceDrops"/>
/// the interface or its driver dropped.
/// </summary>
public readonly record struct InterfaceStatistics(
    string Interface,
    int Index,
    bool Capturing,
    long Packets,
    long Bytes,
    long KernelReceived,
    long KernelDrops,
    long InterfaceDrops);
