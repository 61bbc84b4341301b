using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
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
/// vanished ones released. Wake-ups are what a busy node pays for beyond its packets, so there are few: the flow
/// table is woken once its oldest waiting batch has waited <see cref="LiveCaptureOptions.HandoffDelay"/> (or the
/// queue holds <see cref="BatchHandoff.WakeAtBatches"/> batches), and while packets keep coming a round begins at
/// most every <see cref="LiveCaptureOptions.BusyPause"/>, so that each reads several kernel blocks at once.
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
    // Any device: whether each interface index is captured (IndexWanted), not (IndexUnwanted), or not known yet.
    private byte[] _indexStates = new byte[256];
    private LinkMonitor? _monitor;
    private readonly List<LinkEvent> _events = [];
    private IntPtr _self;
    // Interfaces gone, by index: their name, and when they went.
    private readonly Dictionary<int, (string Name, long At)> _vanishedAt = [];
    private InterfaceStatistics _retired;
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

    /// <summary>Every matching interface is its own vantage point (with the any device too: each packet names its interface).</summary>
    public bool CapturesEachInterface => true;

    public string InterfaceName(int index) => _names.TryGetValue(index, out var name) ? name : "if" + index.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public void Run(ChannelWriter<PacketBatch> output, PacketBatchPool pool, CancellationToken cancellationToken)
    {
        _monitor = LinkMonitor.TryOpen(out string? monitorError);
        if (_monitor is null) LogNoNotifications(_logger, monitorError ?? "unavailable", _options.RescanInterval.TotalSeconds);
        RebuildPollSet();
        // With notifications, listing is only a safety net; without them it is how new interfaces are found.
        long rescanMs = (long)(_monitor is null ? _options.RescanInterval : _options.NotifiedRescanInterval).TotalMilliseconds;
        long handoffMs = Math.Max(1, (long)_options.HandoffDelay.TotalMilliseconds);
        long nextRescan = 0;
        long pauseMs = (long)_options.BusyPause.TotalMilliseconds;
        _handoff = new BatchHandoff(output, pool, Counters);
        var self = GCHandle.Alloc(this);
        _self = GCHandle.ToIntPtr(self);
        long batchSince = 0;
        long lastBusyRound = 0;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                long now = Environment.TickCount64;
                if (now >= nextRescan || _monitor is { Overrun: true })
                {
                    if (_monitor is not null) _monitor.Overrun = false;
                    Rescan(now);
                    nextRescan = now + rescanMs;
                }
                int timeout = (int)Math.Clamp(nextRescan - now, 0, IdlePollMs);
                if (_handoff.Current.Count > 0) timeout = (int)Math.Clamp(batchSince + handoffMs - now, 0, timeout);
                if (_handoff.AnnounceDue(handoffMs) is long due) timeout = (int)Math.Clamp(due - now, 0, timeout);

                if (_pollFds.Length == 0)
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
                        Drain(device, _self);
                        if (before == 0 && _handoff.Current.Count > 0) batchSince = Environment.TickCount64;
                        // A failed handle polls as ready forever: release it now rather than spin until the next rescan.
                        if (device.Failure is not null) nextRescan = 0;
                    }
                    if (_gap is { } gap && _pollFds[_devices.Count].Revents != 0)
                    {
                        int before = _handoff.Current.Count;
                        Drain(gap, _self);
                        if (before == 0 && _handoff.Current.Count > 0) batchSince = Environment.TickCount64;
                        if (gap.Failure is not null) CloseGap("read failed: " + gap.Failure);
                    }
                    // Link notifications last: the devices indexed above are those the poll set was built from.
                    if (_monitor is not null && _pollFds[^1].Revents != 0) OnLinkNotifications(Environment.TickCount64);
                }
                if (_handoff.Current.Count > 0 && Environment.TickCount64 - batchSince >= handoffMs)
                {
                    _handoff.Handoff();
                }
                // One wake-up of the flow table for everything handed over since its last, once the oldest has waited.
                _handoff.AnnounceIfDue(Environment.TickCount64, handoffMs);
                // Busy: let the kernel fill a few more blocks before the next round (a quiet node never waits here). The
                // pause spaces rounds rather than following each: when blocks come slower than that, the poll is the wait,
                // and a pause on top would only add a second sleep and wake-up to every round.
                if (pauseMs > 0 && Counters.Frames - framesBefore >= _handoff.Current.Items.Length)
                {
                    long rest = lastBusyRound + pauseMs - Environment.TickCount64;
                    if (rest > 0) cancellationToken.WaitHandle.WaitOne((int)rest);
                    lastBusyRound = Environment.TickCount64;
                }
            }
        }
        finally
        {
            // Shutdown: what the kernel already holds was seen before the stop, so it is read too; then what was read goes
            // to the flow table, which ends every flow after draining the queue.
            DrainBeforeStop(_self);
            if (_handoff.Current.Count > 0) _handoff.Handoff();
            _handoff.Announce();
            _handoff.Release();
            self.Free();
            foreach (var device in _devices) Release(device, "capture stopped");
            _devices.Clear();
            CloseGap("capture stopped");
            _monitor?.Dispose();
            _monitor = null;
            PublishStatistics();
        }
    }

    /// <summary>
    /// Interfaces that came, went, or came up, as the kernel announces them: a pod's interface is opened the moment
    /// it is up, which is before it can carry a packet (libpcap cannot open an interface that is down, and nothing
    /// crosses a down link). An interface that goes away is released at once.
    /// </summary>
    private void OnLinkNotifications(long now)
    {
        _events.Clear();
        if (!_monitor!.ReadAll(_events))
        {
            LogNoNotifications(_logger, "the rtnetlink socket failed", _options.RescanInterval.TotalSeconds);
            _monitor.Dispose();
            _monitor = null;
            RebuildPollSet();
            return;
        }
        bool changed = false;
        foreach (var link in _events)
        {
            if (link.Deleted)
            {
                SetIndexState(link.Index, IndexUnknown);
                MarkVanished(link.Index, now);
                int open = _devices.FindIndex(d => d.Index == link.Index && d.Name == link.Name);
                SetOpenedAt(link.Index, 0);
                if (open >= 0)
                {
                    Release(_devices[open], "interface deleted");
                    _devices.RemoveAt(open);
                    _discovery.Forget(link.Name);
                    changed = true;
                }
                continue;
            }
            _names[link.Index] = link.Name;
            _vanishedAt.Remove(link.Index);
            bool wanted = InterfaceDiscovery.Matches(link.Name, _options.Interfaces);
            SetIndexState(link.Index, wanted ? IndexWanted : IndexUnwanted);
            if (_options.UseAnyDevice || !wanted) continue;
            int existing = _devices.FindIndex(d => d.Name == link.Name);
            if (existing >= 0)
            {
                if (_devices[existing].Index == link.Index) continue;
                // The name came back under a new index: the old handle watches an interface that is gone.
                Release(_devices[existing], "interface recreated");
                _devices.RemoveAt(existing);
                changed = true;
            }
            if (!link.Up) continue;
            // Up now: whatever an earlier failure said (it was down, say), try at once.
            _retryAt.Remove(link.Name);
            long opening = System.Diagnostics.Stopwatch.GetTimestamp();
            bool opened = TryOpen(link.Name, link.Index, now, out _);
            changed |= opened;
            if (opened) LogOpenedOnNotice(_logger, link.Name, System.Diagnostics.Stopwatch.GetElapsedTime(opening).TotalMilliseconds);
        }
        if (changed)
        {
            RebuildPollSet();
            PublishStatistics();
            SetReason(_devices.Count > 0 ? null : _notReadyReason);
        }
        UpdateGapFloor();
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
            while (_devices.Count > 0 && _pollFds.Length > 0)
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
                if (_gap is { Failure: null } gap && _pollFds[_devices.Count].Revents != 0) Drain(gap, self);
            }
        }
        catch (ObjectDisposedException)
        {
            // A device that went away as the agent stopped has nothing more to give.
        }
    }

    private unsafe int Poll(int timeoutMs)
    {
        fixed (LibPcap.PollFd* fds = _pollFds)
        {
            int n = LibPcap.Poll(fds, (nuint)_pollFds.Length, timeoutMs);
            if (n < 0 && System.Runtime.InteropServices.Marshal.GetLastPInvokeError() != LibPcap.Eintr) Counters.CaptureErrors++;
            return n;
        }
    }

    /// <summary>Reads everything the kernel has handed over on one device, up to a budget so no device starves the others.</summary>
    private unsafe void Drain(LiveDevice device, IntPtr self)
    {
        _current = device;
        _scale = device.Nanoseconds ? 1 : 1000;
        _cooked = _options.UseAnyDevice || device.IsGap;
        int result = LibPcap.Dispatch(device.Pcap, DrainBudget, &OnPacket, self);
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
            device.Failure = result == -1 ? device.LastError : "read ended (" + result + ")";
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
            if (source._current is { } device) LibPcap.BreakLoop(device.Pcap);
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
        long timestamp = seconds * 1_000_000_000 + fraction * _scale;
        // An interface watched by the gap socket until its own handle opened: what came before is the gap's.
        if (timestamp < device.KeepFromNs) return;
        if (device.IsGap && !KeepGapPacket((byte*)data, captured, timestamp, header)) return;
        Counters.Frames++;
        device.Packets++;
        device.Bytes += wire;

        var batch = _handoff.Current;
        ref PacketHeaders headers = ref batch.Next;
        headers.TimestampNs = timestamp;
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
            // The any device sees every interface: keep those that match the globs. An index not known yet (an
            // interface created since the last notification was read) is named on the spot, never dropped unseen.
            int ifindex = headers.InterfaceIndex;
            var states = _indexStates;
            byte state = (uint)ifindex < (uint)states.Length ? states[ifindex] : IndexUnknown;
            if (state == IndexUnknown) state = ResolveIndex(ifindex);
            if (state != IndexWanted) return;
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
        foreach (var (name, index) in present)
        {
            _names[index] = name;
            _vanishedAt.Remove(index);
        }
        // Interfaces gone since the last listing whose removal no notification reported (none arrive without rtnetlink).
        if (_names.Count > present.Count)
        {
            var listed = new HashSet<int>(present.Values);
            foreach (int index in _names.Keys)
            {
                if (!listed.Contains(index)) MarkVanished(index, now);
            }
        }

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
        foreach (var (name, index) in present) SetIndexState(index, InterfaceDiscovery.Matches(name, _options.Interfaces) ? IndexWanted : IndexUnwanted);
        if (_options.UseAnyDevice)
        {
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
        foreach (var (name, index) in wanted)
        {
            if (_devices.Exists(d => d.Name == name)) continue;
            if (_retryAt.TryGetValue(name, out long retry) && now < retry) continue;
            _retryAt.Remove(name);
            if (TryOpen(name, index, now, out var failure)) changed = true;
            else if (failure is { } f)
            {
                if (f.Missing)
                {
                    SetReason(LibPcap.MissingMessage);
                    return;
                }
                permissionDenied |= f.Permission;
                openError ??= f.Message;
            }
        }
        ExpireVanished(now);
        if (!_options.UseAnyDevice && _options.GapCapture && _monitor is not null && _gap is null && OpenGap()) changed = true;
        if (changed) RebuildPollSet();
        UpdateGapFloor();
        foreach (var device in _devices) device.RefreshStatistics();
        PublishStatistics();

        SetReason(_devices.Count > 0 ? null
            : permissionDenied ? LibPcap.PermissionMessage
            : openError is not null ? openError + " (retrying)"
            : $"no interface matches {string.Join(", ", _options.Interfaces)} in {_discovery.Root} (still watching)");
    }

    private void RebuildPollSet()
    {
        int count = _devices.Count + (_gap is null ? 0 : 1) + (_monitor is null ? 0 : 1);
        var fds = new LibPcap.PollFd[count];
        for (int i = 0; i < _devices.Count; i++)
        {
            fds[i].Fd = _devices[i].FileDescriptor;
            fds[i].Events = LibPcap.PollIn | LibPcap.PollPri;
        }
        if (_gap is not null)
        {
            fds[_devices.Count].Fd = _gap.FileDescriptor;
            fds[_devices.Count].Events = LibPcap.PollIn | LibPcap.PollPri;
        }
        if (_monitor is not null)
        {
            fds[^1].Fd = _monitor.FileDescriptor;
            fds[^1].Events = LibPcap.PollIn;
        }
        _pollFds = fds;
    }

    /// <summary>Why an interface could not be opened, for the readiness reason.</summary>
    private readonly record struct OpenFailure(string Message, bool Permission, bool Missing);

    /// <summary>Opens capture on one interface; false (with why, unless it simply vanished meanwhile) when it cannot.</summary>
    private bool TryOpen(string name, int index, long now, out OpenFailure? failure)
    {
        failure = null;
        if (!LibPcap.TryLoad(out string? missing))
        {
            failure = new OpenFailure(missing!, Permission: false, Missing: true);
            return false;
        }
        try
        {
            var device = LiveDevice.Open(name, index, _options, _options.UseAnyDevice, warning => LogConfigurationWarning(_logger, warning));
            if (_gap is not null && index > _gapFloor)
            {
                // The gap socket saw this interface until now: from here on its packets are this handle's.
                long openedAt = UnixNanoseconds();
                device.KeepFromNs = openedAt;
                SetOpenedAt(index, openedAt);
            }
            _devices.Add(device);
            LogCapturing(_logger, name, index, device.LinkType.ToString());
            return true;
        }
        catch (CaptureOpenException e) when (e.Status == LibPcap.ErrorNoSuchDevice)
        {
            // Gone between the listing and the open: nothing to report.
            return false;
        }
        catch (CaptureOpenException e) when (e.Status == LibPcap.ErrorInterfaceNotUp)
        {
            // Created but not up yet: its notification of coming up opens it (or a later listing does).
            _retryAt[name] = now + (long)_options.RescanInterval.TotalMilliseconds;
            return false;
        }
        catch (CaptureOpenException e)
        {
            bool permission = e.Status is LibPcap.ErrorPermissionDenied or LibPcap.ErrorPromiscuousPermissionDenied
                || e.Message.Contains("not permitted", StringComparison.OrdinalIgnoreCase);
            failure = new OpenFailure($"cannot open {name}: {e.Message}", permission, Missing: false);
            _retryAt[name] = now + 5 * (long)_options.RescanInterval.TotalMilliseconds;
            LogOpenFailed(_logger, name, permission ? LibPcap.PermissionMessage + " (" + e.Message + ")" : e.Message);
            return false;
        }
    }

    /// <summary>
    /// The gap socket. Opening a capture handle takes the kernel a grace period (an RCU wait as it sets up the packet
    /// ring: some 5 to 25 ms), and libpcap cannot open an interface before it is up, so a pod that talks the moment
    /// its interface comes up would lose its first packets. One socket on the <c>any</c> device, with a small ring,
    /// watches every interface whose index is above a floor: the floor sits below every wanted interface not open yet
    /// (and interfaces get higher indexes as they are created), so a new pod's packets are read here until its own
    /// handle is open, and handed over by timestamp: before the handle opened they are the gap's, after it its own.
    /// Every other packet of the node costs the kernel one comparison on this socket.
    /// </summary>
    private bool OpenGap()
    {
        try
        {
            var gap = LiveDevice.Open("any", 0, _options, cooked: true, warning => LogConfigurationWarning(_logger, warning), bufferBytes: GapBufferBytes, gap: true);
            _gapFloor = int.MaxValue;
            if (!LibPcap.SetIndexFloor(gap.Pcap, _gapFloor))
            {
                gap.Dispose();
                LogGapUnavailable(_logger, "the kernel refused its filter");
                _gapFailed = true;
                return false;
            }
            if (_options.BpfFilter is { } filter) _gapFilter = LibPcap.CompileForUserland(gap.Pcap, filter);
            _gap = gap;
            return true;
        }
        catch (CaptureOpenException e)
        {
            // Without it the agent still opens new interfaces as they come up, a few milliseconds late.
            if (!_gapFailed) LogGapUnavailable(_logger, e.Message);
            _gapFailed = true;
            return false;
        }
    }

    private const int GapBufferBytes = 1 << 20;
    private LiveDevice? _gap;
    private int _gapFloor = int.MaxValue;
    private IntPtr _gapFilter;
    private bool _gapFailed;
    // Per interface index: when its own handle opened (Unix ns) while the gap socket covered it; 0 otherwise.
    private long[] _openedAt = new long[256];

    private void CloseGap(string why)
    {
        if (_gap is null) return;
        _gap.Dispose();
        _gap = null;
        if (_gapFilter != IntPtr.Zero)
        {
            LibPcap.FreeUserland(_gapFilter);
            _gapFilter = IntPtr.Zero;
        }
        LogGapClosed(_logger, why);
        RebuildPollSet();
    }

    /// <summary>Moves the gap socket's floor just below the lowest wanted interface that has no handle of its own yet.</summary>
    private void UpdateGapFloor()
    {
        if (_gap is null) return;
        int highest = 0, lowestPending = int.MaxValue;
        foreach (var (index, name) in _names)
        {
            if (_vanishedAt.ContainsKey(index)) continue;
            highest = Math.Max(highest, index);
            if (InterfaceDiscovery.Matches(name, _options.Interfaces) && !HasHandle(index)) lowestPending = Math.Min(lowestPending, index);
        }
        int floor = lowestPending == int.MaxValue ? highest : Math.Min(highest, lowestPending - 1);
        if (floor == _gapFloor) return;
        if (LibPcap.SetIndexFloor(_gap.Pcap, floor)) _gapFloor = floor;
        else CloseGap("the kernel refused its filter");
    }

    /// <summary>A packet the gap socket read: kept when its interface is wanted and its own handle was not open yet when it came.</summary>
    private unsafe bool KeepGapPacket(byte* data, int captured, long timestamp, IntPtr header)
    {
        // Linux cooked v2: the interface index is bytes 4 to 7, big-endian.
        if (captured < 20) return false;
        int ifindex = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(new ReadOnlySpan<byte>(data + 4, 4));
        var states = _indexStates;
        byte state = (uint)ifindex < (uint)states.Length ? states[ifindex] : IndexUnknown;
        if (state == IndexUnknown) state = ResolveIndex(ifindex);
        if (state != IndexWanted) return false;
        long opened = (uint)ifindex < (uint)_openedAt.Length ? _openedAt[ifindex] : 0;
        if (opened != 0 && timestamp >= opened) return false;
        // A handle open for it that the gap did not cover (opened before the gap, or below its floor) has it all.
        if (opened == 0 && HasHandle(ifindex)) return false;
        return _gapFilter == IntPtr.Zero || LibPcap.Matches(_gapFilter, header, (IntPtr)data);
    }

    /// <summary>Whether an interface index has a handle of its own (a loop: a lambda would allocate on every gap packet).</summary>
    private bool HasHandle(int index)
    {
        foreach (var device in _devices)
        {
            if (device.Index == index) return true;
        }
        return false;
    }

    private void SetOpenedAt(int index, long unixNs)
    {
        if ((uint)index >= MaxTabledIndex) return;
        if (index >= _openedAt.Length)
        {
            if (unixNs == 0) return;
            Array.Resize(ref _openedAt, Math.Max(index + 1, _openedAt.Length * 2));
        }
        _openedAt[index] = unixNs;
    }

    private static long UnixNanoseconds() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;

    private const byte IndexUnknown = 0;
    private const byte IndexWanted = 1;
    private const byte IndexUnwanted = 2;
    /// <summary>Indexes past this are named on every packet rather than kept in the table (they do not occur in practice).</summary>
    private const int MaxTabledIndex = 1 << 22;

    /// <summary>Records whether an interface index is captured (any device); the table grows to the highest index seen.</summary>
    private void SetIndexState(int index, byte state)
    {
        if ((uint)index >= MaxTabledIndex) return;
        var states = _indexStates;
        if (index >= states.Length)
        {
            if (state == IndexUnknown) return;
            Array.Resize(ref states, Math.Max(index + 1, states.Length * 2));
            _indexStates = states;
        }
        states[index] = state;
    }

    /// <summary>
    /// The any device delivered a packet of an interface index no listing or notification named yet (its notification
    /// is still in the socket): the index names the interface, so it is resolved now, once, inside the capture callback.
    /// </summary>
    private byte ResolveIndex(int index)
    {
        string? name = LibPcap.IndexToName(index);
        if (name is null)
        {
            // Already gone: nothing says whether it was a pod's. Counted, and asked again if the index comes back.
            Counters.UnresolvedInterfacePackets++;
            return IndexUnknown;
        }
        _names[index] = name;
        byte state = InterfaceDiscovery.Matches(name, _options.Interfaces) ? IndexWanted : IndexUnwanted;
        SetIndexState(index, state);
        return state;
    }

    /// <summary>An interface went away: its name and counters are kept for a while (flows still name it, counters must not go back).</summary>
    private void MarkVanished(int index, long now)
    {
        if (_names.TryGetValue(index, out string? name)) _vanishedAt.TryAdd(index, (name, now));
    }

    /// <summary>
    /// Forgets interfaces gone for longer than <see cref="LiveCaptureOptions.VanishedRetention"/>: their names, and their
    /// counters, which are folded into one <c>other</c> entry so that totals never go back. Pods come and go by the
    /// thousand; what the agent keeps of them must not grow with them.
    /// </summary>
    private void ExpireVanished(long now)
    {
        if (_vanishedAt.Count == 0) return;
        long ttl = (long)_options.VanishedRetention.TotalMilliseconds;
        List<int>? expired = null;
        foreach (var (index, (name, at)) in _vanishedAt)
        {
            if (now - at < ttl) continue;
            (expired ??= []).Add(index);
            if (_names.TryGetValue(index, out string? current) && current == name) _names.TryRemove(index, out _);
            if (!_devices.Exists(d => d.Name == name) && _closed.Remove(name, out var closed))
            {
                _retired = new InterfaceStatistics(RetiredName, 0, false, _retired.Packets + closed.Packets, _retired.Bytes + closed.Bytes,
                    _retired.KernelReceived + closed.KernelReceived, _retired.KernelDrops + closed.KernelDrops, _retired.InterfaceDrops + closed.InterfaceDrops);
            }
        }
        if (expired is null) return;
        foreach (int index in expired) _vanishedAt.Remove(index);
        PublishStatistics();
    }

    /// <summary>The counters of interfaces long gone, together.</summary>
    public const string RetiredName = "other";

    private void Release(LiveDevice device, string why)
    {
        SetOpenedAt(device.Index, 0);
        device.RefreshStatistics();
        _closed.TryGetValue(device.Name, out var before);
        _closed[device.Name] = Sum(before, device, capturing: false);
        device.Dispose();
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
        if (_retired.Interface is not null) list.Add(_retired);
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

    [LoggerMessage(EventId = 108, Level = LogLevel.Debug, Message = "{Interface} came up: capture opened in {Milliseconds:F1} ms")]
    private static partial void LogOpenedOnNotice(ILogger logger, string @interface, double milliseconds);

    [LoggerMessage(EventId = 109, Level = LogLevel.Warning, Message = "no gap socket ({Reason}): a new interface is captured from the moment its own handle opens, a few milliseconds after it comes up")]
    private static partial void LogGapUnavailable(ILogger logger, string reason);

    [LoggerMessage(EventId = 110, Level = LogLevel.Debug, Message = "gap socket closed: {Reason}")]
    private static partial void LogGapClosed(ILogger logger, string reason);

    [LoggerMessage(EventId = 107, Level = LogLevel.Warning, Message = "no link notifications ({Reason}): new interfaces are found by listing them every {Seconds} s")]
    private static partial void LogNoNotifications(ILogger logger, string reason, double seconds);

    [LoggerMessage(EventId = 106, Level = LogLevel.Debug, Message = "capture configuration: {Warning}")]
    private static partial void LogConfigurationWarning(ILogger logger, string warning);
}
