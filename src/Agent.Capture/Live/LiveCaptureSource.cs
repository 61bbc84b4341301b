using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SharpPcap;
using SharpPcap.LibPcap;
using Tripline.Capture.Parsing;
using Tripline.Capture.Sources;

namespace Tripline.Capture.Live;

/// <summary>
/// Captures on the node's CNI interfaces with libpcap (through SharpPcap). One thread serves every interface: the
/// handles are non-blocking and the thread sleeps in <c>poll()</c> over all their descriptors, then hands whatever
/// the kernel delivered to one <c>pcap_dispatch</c> call per device, whose callback parses each packet in place
/// (no copy, no allocation: SharpPcap's <c>GetNextPacket</c> allocates a header object and a poll array per
/// packet, and even its pointer-only read costs a native call and a handle reference count per packet) into
/// pooled batches that go to the flow table without ever waiting: a full queue is a counted loss. Interfaces are
/// listed again every <see cref="LiveCaptureOptions.RescanInterval"/>, so veths of new pods are captured and
/// vanished ones released. The flow table is woken once per poll round, and a busy round is followed by a short
/// pause (<see cref="LiveCaptureOptions.BusyPause"/>) so that the next one reads several kernel blocks at once.
/// </summary>
/// <remarks>
/// Double counting is left to the flow table's rule: a packet between two pods of the node is read on both veths
/// (and on a bridge, when one is captured), each copy tagged with its interface's index; the flow counts the
/// packets of the first interface that saw it and only lists the others.
/// </remarks>
public sealed partial class LiveCaptureSource : IPacketSource
{
    private const int DrainBudget = 8192;
    private const int IdlePollMs = 250;
    private const int PcapErrorPermissionDenied = -8;
    private const int PcapErrorNoSuchDevice = -5;

    private readonly LiveCaptureOptions _options;
    private readonly ILogger _logger;
    private readonly InterfaceDiscovery _discovery;
    private readonly ConcurrentDictionary<int, string> _names = new();

    // Capture thread only.
    private readonly List<LiveDevice> _devices = [];
    private readonly Dictionary<string, long> _retryAt = new(StringComparer.Ordinal);
    // Counters of captures that ended, by interface name.
    private readonly Dictionary<string, InterfaceStatistics> _closed = new(StringComparer.Ordinal);
    private LibPcap.PollFd[] _pollFds = [];
    private bool[] _wantedIndex = [];
    private string? _lastReason = "";

    // The dispatch in progress (capture thread only): the callback reaches them through the GC handle it is given.
    private BatchHandoff _handoff = null!;
    private LiveDevice? _current;
    private long _scale;
    private bool _cooked;
    private Exception? _callbackFailure;

    private volatile InterfaceStatistics[] _statistics = [];
    private volatile string? _notReadyReason = "capture is starting";

    public LiveCaptureSource(LiveCaptureOptions options, ILogger? logger = null, string sysClassNet = InterfaceDiscovery.DefaultRoot)
    {
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        _discovery = new InterfaceDiscovery(sysClassNet);
    }

    public LiveCaptureOptions Options => _options;

    public CaptureCounters Counters { get; } = new();

    public string? NotReadyReason => _notReadyReason;

    /// <summary>
    /// Per-interface counters, including interfaces that have vanished; refreshed by the capture thread once per
    /// rescan interval (libpcap's counters are read there, never from a scrape thread that could race a close).
    /// </summary>
    public IReadOnlyList<InterfaceStatistics> InterfaceStatistics() => _statistics;

    public string InterfaceName(int index) => _names.TryGetValue(index, out var name) ? name : "if" + index.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public void Run(ChannelWriter<PacketBatch> output, PacketBatchPool pool, CancellationToken cancellationToken)
    {
        long rescanMs = (long)_options.RescanInterval.TotalMilliseconds;
        long handoffMs = Math.Max(1, (long)_options.HandoffDelay.TotalMilliseconds);
        long nextRescan = 0;
        long pauseMs = (long)_options.BusyPause.TotalMilliseconds;
        _handoff = new BatchHandoff(output, pool, Counters);
        var self = GCHandle.Alloc(this);
        long batchSince = 0;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                long now = Environment.TickCount64;
                if (now >= nextRescan)
                {
                    Rescan(now);
                    nextRescan = now + rescanMs;
                }
                int timeout = (int)Math.Clamp(nextRescan - now, 0, IdlePollMs);
                if (_handoff.Current.Count > 0) timeout = (int)Math.Clamp(batchSince + handoffMs - now, 0, timeout);

                if (_devices.Count == 0)
                {
                    cancellationToken.WaitHandle.WaitOne(timeout);
                    continue;
                }
                int ready = Poll(timeout);
                long framesBefore = Counters.Frames;
                if (ready > 0)
                {
                    for (int i = 0; i < _devices.Count; i++)
                    {
                        if (_pollFds[i].Revents == 0) continue;
                        int before = _handoff.Current.Count;
                        var device = _devices[i];
                        Drain(device, GCHandle.ToIntPtr(self));
                        if (before == 0 && _handoff.Current.Count > 0) batchSince = Environment.TickCount64;
                        // A failed handle polls as ready forever: release it now rather than spin until the next rescan.
                        if (device.Failure is not null) nextRescan = 0;
                    }
                }
                if (_handoff.Current.Count > 0 && Environment.TickCount64 - batchSince >= handoffMs)
                {
                    _handoff.Handoff();
                }
                // One wake-up of the flow table for everything this round handed over.
                _handoff.Announce();
                // Busy: let the kernel fill a few more blocks before the next round (a quiet node never waits here).
                if (pauseMs > 0 && Counters.Frames - framesBefore >= _handoff.Current.Items.Length) cancellationToken.WaitHandle.WaitOne((int)pauseMs);
            }
        }
        finally
        {
            // Shutdown: what the kernel already holds was seen before the stop, so it is read too; then what was read goes
            // to the flow table, which ends every flow after draining the queue.
            DrainBeforeStop(GCHandle.ToIntPtr(self));
            if (_handoff.Current.Count > 0) _handoff.Handoff();
            _handoff.Announce();
            _handoff.Release();
            self.Free();
            foreach (var device in _devices) Release(device, "capture stopped");
            _devices.Clear();
            PublishStatistics();
        }
    }

    /// <summary>
    /// Reads what the kernel holds at the stop. The ring hands a partly filled block over only after the read timeout,
    /// so reading goes on that long (a little more than 100 ms by default), then stops.
    /// </summary>
    private void DrainBeforeStop(IntPtr self)
    {
        long until = Environment.TickCount64 + (long)_options.ReadTimeout.TotalMilliseconds + 20;
        try
        {
            while (_devices.Count > 0)
            {
                int remaining = (int)(until - Environment.TickCount64);
                if (remaining <= 0) break;
                if (Poll(remaining) <= 0) continue;
                for (int i = 0; i < _devices.Count; i++)
                {
                    var device = _devices[i];
                    if (_pollFds[i].Revents == 0 || device.Failure is not null) continue;
                    Drain(device, self);
                }
            }
        }
        catch (Exception e) when (e is PcapException or ObjectDisposedException)
        {
            // A device that went away as the agent stopped has nothing more to give.
        }
    }

    private unsafe int Poll(int timeoutMs)
    {
        fixed (LibPcap.PollFd* fds = _pollFds)
        {
            int n = LibPcap.Poll(fds, (nuint)_devices.Count, timeoutMs);
            if (n < 0 && System.Runtime.InteropServices.Marshal.GetLastPInvokeError() != LibPcap.Eintr) Counters.CaptureErrors++;
            return n;
        }
    }

    /// <summary>Reads everything the kernel has handed over on one device, up to a budget so no device starves the others.</summary>
    private unsafe void Drain(LiveDevice device, IntPtr self)
    {
        _current = device;
        _scale = device.Nanoseconds ? 1 : 1000;
        _cooked = _options.UseAnyDevice;
        int result = LibPcap.Dispatch(device.Pcap.Handle, DrainBudget, &OnPacket, self);
        _current = null;
        if (_callbackFailure is { } failure)
        {
            // Cannot happen short of a bug: an exception must not unwind through libpcap's frames, so it stops here.
            _callbackFailure = null;
            device.Failure = "packet callback failed: " + failure.Message;
            Counters.CaptureErrors++;
        }
        else if (result < 0)
        {
            device.Failure = result == -1 ? device.Pcap.LastError : "read ended (" + result + ")";
        }
    }

    [UnmanagedCallersOnly]
    private static void OnPacket(IntPtr self, IntPtr header, IntPtr data)
    {
        var source = (LiveCaptureSource)GCHandle.FromIntPtr(self).Target!;
        try
        {
            source.Accept(header, data);
        }
        catch (Exception e)
        {
            source._callbackFailure = e;
            if (source._current is { } device) LibPcap.BreakLoop(device.Pcap.Handle.DangerousGetHandle());
        }
    }

    /// <summary>One packet, read in place inside the dispatch: counted, parsed into the batch, the batch handed over when full.</summary>
    private unsafe void Accept(IntPtr header, IntPtr data)
    {
        var device = _current!;
        // struct pcap_pkthdr on LP64 Linux: timeval (two longs), caplen, len.
        byte* h = (byte*)header;
        long seconds = *(long*)h;
        long fraction = *(long*)(h + 8);
        int captured = (int)*(uint*)(h + 16);
        int wire = (int)*(uint*)(h + 20);
        Counters.Frames++;
        device.Packets++;
        device.Bytes += wire;

        var batch = _handoff.Current;
        ref PacketHeaders headers = ref batch.Next;
        headers.TimestampNs = seconds * 1_000_000_000 + fraction * _scale;
        headers.WireLength = wire;
        headers.InterfaceIndex = device.Index;
        ParseStatus status = PacketParser.TryParse(new ReadOnlySpan<byte>((void*)data, captured), device.LinkType, ref headers);
        if (status != ParseStatus.Ok)
        {
            Counters.Count(status);
            return;
        }
        if (_cooked)
        {
            // The any device sees every interface: keep those that match the globs.
            int ifindex = headers.InterfaceIndex;
            var wanted = _wantedIndex;
            if ((uint)ifindex >= (uint)wanted.Length || !wanted[ifindex]) return;
        }
        batch.Commit();
        if (batch.IsFull) _handoff.Handoff();
    }

    private void Rescan(long now)
    {
        if (!LibPcap.TryLoad(out string? missing))
        {
            SetReason(missing);
            return;
        }
        var present = _discovery.List();
        foreach (var (name, index) in present) _names[index] = name;

        bool changed = false;
        // Release devices that failed or whose interface is gone (or was recreated under its name).
        for (int i = _devices.Count - 1; i >= 0; i--)
        {
            var device = _devices[i];
            bool listed = present.TryGetValue(device.Name, out int index) || _options.UseAnyDevice;
            string? why = !listed ? "interface vanished"
                : !_options.UseAnyDevice && index != device.Index ? "interface recreated"
                : device.Failure is { } failure ? "read failed: " + failure
                : null;
            if (why is null) continue;
            Release(device, why);
            _devices.RemoveAt(i);
            _discovery.Forget(device.Name);
            // A device that failed while its interface is still there (down, say) is retried after a pause.
            if (listed && device.Failure is not null) _retryAt[device.Name] = now + 5 * (long)_options.RescanInterval.TotalMilliseconds;
            changed = true;
        }

        var wanted = new List<(string Name, int Index)>();
        if (_options.UseAnyDevice)
        {
            int max = present.Count == 0 ? 0 : present.Values.Max();
            var flags = new bool[max + 1];
            foreach (var (name, index) in present)
            {
                if (index >= 0 && InterfaceDiscovery.Matches(name, _options.Interfaces)) flags[index] = true;
            }
            _wantedIndex = flags;
            wanted.Add(("any", 0));
        }
        else
        {
            foreach (var (name, index) in present)
            {
                if (InterfaceDiscovery.Matches(name, _options.Interfaces)) wanted.Add((name, index));
            }
        }

        string? openError = null;
        bool permissionDenied = false;
        LibPcapLiveDeviceList? list = null;
        foreach (var (name, index) in wanted)
        {
            if (_devices.Exists(d => d.Name == name)) continue;
            if (_retryAt.TryGetValue(name, out long retry) && now < retry) continue;
            _retryAt.Remove(name);
            try
            {
                list ??= LibPcapLiveDeviceList.New();
                var pcap = list.FirstOrDefault(d => d.Name == name);
                if (pcap is null) continue; // Listed by the kernel but gone by the time libpcap looked: next rescan.
                var device = LiveDevice.Open(pcap, index, _options, _options.UseAnyDevice, warning => LogConfigurationWarning(_logger, warning));
                _devices.Add(device);
                LogCapturing(_logger, name, index, device.LinkType.ToString());
                changed = true;
            }
            catch (PcapException e) when ((int)e.Error == PcapErrorNoSuchDevice)
            {
                // Gone between the listing and the open: nothing to report.
            }
            catch (Exception e) when (e is PcapException or CaptureOpenException)
            {
                bool permission = (e is PcapException p && (int)p.Error == PcapErrorPermissionDenied) || e.Message.Contains("permitted", StringComparison.OrdinalIgnoreCase)
                    || e.Message.Contains("permission", StringComparison.OrdinalIgnoreCase);
                permissionDenied |= permission;
                openError ??= $"cannot open {name}: {e.Message}";
                _retryAt[name] = now + 5 * (long)_options.RescanInterval.TotalMilliseconds;
                LogOpenFailed(_logger, name, permission ? LibPcap.PermissionMessage : e.Message);
            }
            catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException)
            {
                SetReason(LibPcap.MissingMessage);
                return;
            }
        }
        if (changed) RebuildPollSet();
        foreach (var device in _devices) device.RefreshStatistics();
        PublishStatistics();

        SetReason(_devices.Count > 0 ? null
            : permissionDenied ? LibPcap.PermissionMessage
            : openError is not null ? openError + " (retrying)"
            : $"no interface matches {string.Join(", ", _options.Interfaces)} in {_discovery.Root} (still watching)");
    }

    private void RebuildPollSet()
    {
        var fds = new LibPcap.PollFd[_devices.Count];
        for (int i = 0; i < fds.Length; i++)
        {
            fds[i].Fd = _devices[i].FileDescriptor;
            fds[i].Events = LibPcap.PollIn | LibPcap.PollPri;
        }
        _pollFds = fds;
    }

    private void Release(LiveDevice device, string why)
    {
        device.RefreshStatistics();
        _closed.TryGetValue(device.Name, out var before);
        _closed[device.Name] = Sum(before, device, capturing: false);
        try
        {
            device.Dispose();
        }
        catch (Exception e) when (e is PcapException or ObjectDisposedException)
        {
            // Closing a handle whose interface is gone can only fail; the handle is released either way.
        }
        LogReleased(_logger, device.Name, why, device.Packets, device.KernelDrops, device.InterfaceDrops);
    }

    /// <summary>Counters of earlier captures of the same name plus the device's own: a name may come and go.</summary>
    private static InterfaceStatistics Sum(InterfaceStatistics before, LiveDevice device, bool capturing) => new(device.Name, device.Index, capturing,
        before.Packets + device.Packets, before.Bytes + device.Bytes, before.KernelReceived + device.KernelReceived,
        before.KernelDrops + device.KernelDrops, before.InterfaceDrops + device.InterfaceDrops);

    private void PublishStatistics()
    {
        var list = new List<InterfaceStatistics>(_closed.Count + _devices.Count);
        foreach (var device in _devices)
        {
            _closed.TryGetValue(device.Name, out var before);
            list.Add(Sum(before, device, capturing: true));
        }
        foreach (var (name, closed) in _closed)
        {
            if (!_devices.Exists(d => d.Name == name)) list.Add(closed);
        }
        list.Sort((a, b) => string.CompareOrdinal(a.Interface, b.Interface));
        _statistics = [.. list];
    }

    private void SetReason(string? reason)
    {
        _notReadyReason = reason;
        if (reason == _lastReason) return;
        _lastReason = reason;
        if (reason is null) LogReady(_logger, _devices.Count);
        else LogNotReady(_logger, reason);
    }

    public void Dispose()
    {
        // The capture thread releases its devices when it stops; nothing is shared with other threads.
    }

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "capturing on {Interface} (ifindex {Index}, {LinkType})")]
    private static partial void LogCapturing(ILogger logger, string @interface, int index, string linkType);

    [LoggerMessage(EventId = 102, Level = LogLevel.Information, Message = "released {Interface}: {Reason} ({Packets} packets read, {KernelDrops} dropped by the kernel, {InterfaceDrops} by the interface)")]
    private static partial void LogReleased(ILogger logger, string @interface, string reason, long packets, long kernelDrops, long interfaceDrops);

    [LoggerMessage(EventId = 103, Level = LogLevel.Warning, Message = "cannot capture on {Interface}: {Error}")]
    private static partial void LogOpenFailed(ILogger logger, string @interface, string error);

    [LoggerMessage(EventId = 104, Level = LogLevel.Warning, Message = "capture not ready: {Reason}")]
    private static partial void LogNotReady(ILogger logger, string reason);

    [LoggerMessage(EventId = 105, Level = LogLevel.Information, Message = "capture ready on {Count} interface(s)")]
    private static partial void LogReady(ILogger logger, int count);

    [LoggerMessage(EventId = 106, Level = LogLevel.Debug, Message = "capture configuration: {Warning}")]
    private static partial void LogConfigurationWarning(ILogger logger, string warning);
}
