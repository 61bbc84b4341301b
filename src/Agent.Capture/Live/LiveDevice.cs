using Tripline.Capture.Parsing;

namespace Tripline.Capture.Live;

/// <summary>One open libpcap handle, in non-blocking mode, read by the capture thread only.</summary>
internal sealed class LiveDevice : IDisposable
{
    private uint _lastReceived, _lastDropped, _lastIfDropped;

    private LiveDevice(PcapHandle pcap, string name, int index, LinkType link, int fd, bool nanoseconds)
    {
        Pcap = pcap;
        Name = name;
        Index = index;
        LinkType = link;
        FileDescriptor = fd;
        Nanoseconds = nanoseconds;
    }

    public PcapHandle Pcap { get; }
    public string Name { get; }
    /// <summary>The kernel's ifindex: stable while the interface lives, and what SLL2 headers carry.</summary>
    public int Index { get; }
    public LinkType LinkType { get; }
    public int FileDescriptor { get; }
    public bool Nanoseconds { get; }

    /// <summary>
    /// Packets stamped before this (Unix ns) belong to the gap socket, which watched the interface until this handle
    /// was open (see <see cref="LiveCaptureSource"/>); zero when no gap socket covered it.
    /// </summary>
    public long KeepFromNs { get; set; }

    /// <summary>The any-device socket that covers new interfaces until their own handle is open.</summary>
    public bool IsGap { get; init; }

    /// <summary>Set when a read failed (the interface went away or down): the device is closed at the next rescan.</summary>
    public string? Failure { get; set; }

    // Counted by the capture thread; published with the statistics once per rescan.
    public long Packets;
    public long Bytes;
    public long KernelReceived, KernelDrops, InterfaceDrops;

    public string LastError => LibPcap.LastError(Pcap);

    /// <summary>Opens an interface by name, configured and activated; throws <see cref="CaptureOpenException"/> as libpcap reports.</summary>
    public static LiveDevice Open(string name, int index, LiveCaptureOptions options, bool cooked, Action<string> onConfigurationWarning, int? bufferBytes = null, bool gap = false)
    {
        var pcap = LibPcap.Open(name, options.SnapLength, options.Promiscuous, (int)Math.Max(1, options.ReadTimeout.TotalMilliseconds),
            bufferBytes ?? options.KernelBufferBytes, options.Immediate, onConfigurationWarning);
        try
        {
            if (cooked && LibPcap.SetDatalink(pcap, LibPcap.DltLinuxSll2) != 0)
            {
                throw new CaptureOpenException($"{name}: cannot select Linux cooked capture v2: {LibPcap.LastError(pcap)}", LibPcap.ErrorGeneric);
            }
            // The gap socket's kernel filter is its own (interfaces above a floor); a user's filter is applied to its few
            // packets in the callback instead.
            if (options.BpfFilter is { } filter && !gap) LibPcap.SetFilter(pcap, name, filter);
            int dlt = LibPcap.Datalink(pcap);
            int fd = LibPcap.SelectableFd(pcap);
            if (fd < 0) throw new CaptureOpenException($"{name}: no selectable descriptor", LibPcap.ErrorGeneric);
            return new LiveDevice(pcap, name, index, FromDlt(dlt), fd, LibPcap.NanosecondStamps(pcap)) { IsGap = gap };
        }
        catch
        {
            pcap.Dispose();
            throw;
        }
    }

    /// <summary>pcap_datalink() answers DLT_* values, which differ from the LINKTYPE_* of files for raw IP.</summary>
    internal static LinkType FromDlt(int dlt) => dlt switch
    {
        1 => LinkType.Ethernet,
        0 => LinkType.Null,
        108 => LinkType.Loop,
        12 or 14 or 101 => LinkType.Raw,
        113 => LinkType.LinuxSll,
        276 => LinkType.LinuxSll2,
        228 => LinkType.Ipv4,
        229 => LinkType.Ipv6,
        _ => (LinkType)dlt,
    };

    /// <summary>Reads libpcap's counters (they wrap at 2^32) into the cumulative totals.</summary>
    public void RefreshStatistics()
    {
        // A vanished interface has no statistics left to read; what was read before stays.
        if (Pcap.IsClosed || !LibPcap.TryGetStatistics(Pcap, out var s)) return;
        KernelReceived += unchecked(s.Received - _lastReceived);
        KernelDrops += unchecked(s.Dropped - _lastDropped);
        InterfaceDrops += unchecked(s.InterfaceDropped - _lastIfDropped);
        _lastReceived = s.Received;
        _lastDropped = s.Dropped;
        _lastIfDropped = s.InterfaceDropped;
    }

    public void Dispose() => Pcap.Dispose();
}

/// <summary>An interface could not be opened or set up for capture; <see cref="Status"/> is libpcap's (negative) status.</summary>
internal sealed class CaptureOpenException(string message, int status) : Exception(message)
{
    public int Status { get; } = status;
}
