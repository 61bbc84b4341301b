using SharpPcap;
using SharpPcap.LibPcap;
using Tripline.Capture.Parsing;

namespace Tripline.Capture.Live;

/// <summary>One open libpcap handle, in non-blocking mode, read by the capture thread only.</summary>
internal sealed class LiveDevice : IDisposable
{
    private uint _lastReceived, _lastDropped, _lastIfDropped;

    private LiveDevice(LibPcapLiveDevice pcap, string name, int index, LinkType link, int fd, bool nanoseconds)
    {
        Pcap = pcap;
        Name = name;
        Index = index;
        LinkType = link;
        FileDescriptor = fd;
        Nanoseconds = nanoseconds;
    }

    public LibPcapLiveDevice Pcap { get; }
    public string Name { get; }
    /// <summary>The kernel's ifindex: stable while the interface lives, and what SLL2 headers carry.</summary>
    public int Index { get; }
    public LinkType LinkType { get; }
    public int FileDescriptor { get; }
    public bool Nanoseconds { get; }

    /// <summary>Set when a read failed (the interface went away or down): the device is closed at the next rescan.</summary>
    public string? Failure { get; set; }

    // Counted by the capture thread; published with the statistics once per rescan.
    public long Packets;
    public long Bytes;
    public long KernelReceived, KernelDrops, InterfaceDrops;

    /// <summary>Opens, configures and activates a device; throws <see cref="PcapException"/> as libpcap reports.</summary>
    public static LiveDevice Open(LibPcapLiveDevice pcap, int index, LiveCaptureOptions options, bool cooked, Action<string> onConfigurationWarning)
    {
        var configuration = new DeviceConfiguration
        {
            Snaplen = options.SnapLength,
            Mode = options.Promiscuous ? DeviceModes.Promiscuous : DeviceModes.None,
            ReadTimeout = (int)Math.Max(1, options.ReadTimeout.TotalMilliseconds),
            BufferSize = options.KernelBufferBytes,
            Immediate = options.Immediate,
            TimestampResolution = TimestampResolution.Nanosecond,
        };
        // A refused timestamp precision or buffer size is not worth losing the interface for.
        configuration.ConfigurationFailed += (_, e) => onConfigurationWarning($"{pcap.Name}: {e.Property}: {e.Message}");
        pcap.Open(configuration);
        try
        {
            pcap.NonBlockingMode = true;
            if (cooked && LibPcap.SetDatalink(pcap.Handle, LibPcap.DltLinuxSll2) != 0)
            {
                throw new CaptureOpenException($"{pcap.Name}: cannot select Linux cooked capture v2: {pcap.LastError}");
            }
            if (options.BpfFilter is { } filter) pcap.Filter = filter;
            int dlt = LibPcap.Datalink(pcap.Handle);
            int fd = LibPcap.SelectableFd(pcap.Handle);
            if (fd < 0) throw new CaptureOpenException($"{pcap.Name}: no selectable descriptor");
            bool nanoseconds = pcap.TimestampResolution == TimestampResolution.Nanosecond;
            return new LiveDevice(pcap, pcap.Name, index, FromDlt(dlt), fd, nanoseconds);
        }
        catch
        {
            pcap.Close();
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
        try
        {
            var s = Pcap.Statistics;
            KernelReceived += unchecked(s.ReceivedPackets - _lastReceived);
            KernelDrops += unchecked(s.DroppedPackets - _lastDropped);
            InterfaceDrops += unchecked(s.InterfaceDroppedPackets - _lastIfDropped);
            _lastReceived = s.ReceivedPackets;
            _lastDropped = s.DroppedPackets;
            _lastIfDropped = s.InterfaceDroppedPackets;
        }
        catch (Exception e) when (e is PcapException or DeviceNotReadyException or ObjectDisposedException)
        {
            // A vanished interface has no statistics left to read; what was read before stays.
        }
    }

    public void Dispose() => Pcap.Close();
}

/// <summary>An interface opened but could not be set up for capture (link type, descriptor).</summary>
internal sealed class CaptureOpenException(string message) : Exception(message);
