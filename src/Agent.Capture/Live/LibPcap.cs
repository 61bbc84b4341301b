using System.Runtime.InteropServices;

namespace Tripline.Capture.Live;

/// <summary>
/// libpcap, bound by hand. SharpPcap opens a device only from libpcap's list of every interface
/// (<c>pcap_findalldevs</c>, plus .NET's own interface enumeration), which costs hundreds of milliseconds on a node
/// with a thousand veths, once per new pod: long enough to miss a pod's first packets. So live capture opens
/// interfaces by name here (<c>pcap_create</c> and <c>pcap_activate</c>), and reads them with <c>pcap_dispatch</c>
/// and <c>poll</c> over many descriptors, which SharpPcap does not expose either.
/// </summary>
internal static unsafe partial class LibPcap
{
    public const string MissingMessage = "libpcap not found: install libpcap0.8 (apt-get install -y libpcap0.8; the package is libpcap0.8t64 on Debian 13 and Ubuntu 24.04)";
    public const string PermissionMessage = "capture needs CAP_NET_RAW";

    /// <summary>DLT_LINUX_SLL2: cooked capture v2, which carries the interface index.</summary>
    public const int DltLinuxSll2 = 276;

    public const int ErrorGeneric = -1;
    public const int ErrorNoSuchDevice = -5;
    public const int ErrorPermissionDenied = -8;
    public const int ErrorInterfaceNotUp = -9;
    public const int ErrorPromiscuousPermissionDenied = -11;
    private const int ErrorBufferSize = 256;
    private const int TimestampPrecisionNano = 1;
    private const uint NetmaskUnknown = 0xffffffff;

    private static readonly string[] Names = ["libpcap.so.0.8", "libpcap.so.1", "libpcap.so"];
    private static readonly object Gate = new();
    private static IntPtr _library;
    private static delegate* unmanaged<IntPtr, int> _getSelectableFd;
    private static delegate* unmanaged<IntPtr, int, int> _setDatalink;
    private static delegate* unmanaged<IntPtr, int> _datalink;
    private static delegate* unmanaged<IntPtr, int, delegate* unmanaged<IntPtr, IntPtr, IntPtr, void>, IntPtr, int> _dispatch;
    private static delegate* unmanaged<IntPtr, void> _breakloop;
    private static delegate* unmanaged<byte*, byte*, IntPtr> _create;
    private static delegate* unmanaged<IntPtr, int, int> _setSnaplen;
    private static delegate* unmanaged<IntPtr, int, int> _setPromisc;
    private static delegate* unmanaged<IntPtr, int, int> _setTimeout;
    private static delegate* unmanaged<IntPtr, int, int> _setBufferSize;
    private static delegate* unmanaged<IntPtr, int, int> _setImmediate;
    private static delegate* unmanaged<IntPtr, int, int> _setTstampPrecision;
    private static delegate* unmanaged<IntPtr, int> _getTstampPrecision;
    private static delegate* unmanaged<IntPtr, int> _activate;
    private static delegate* unmanaged<IntPtr, int, byte*, int> _setNonblock;
    private static delegate* unmanaged<IntPtr, BpfProgram*, byte*, int, uint, int> _compile;
    private static delegate* unmanaged<IntPtr, BpfProgram*, int> _setFilter;
    private static delegate* unmanaged<BpfProgram*, void> _freeCode;
    private static delegate* unmanaged<IntPtr, PcapStat*, int> _stats;
    private static delegate* unmanaged<IntPtr, byte*> _getErr;
    private static delegate* unmanaged<int, byte*> _statusToStr;
    private static delegate* unmanaged<IntPtr, void> _close;
    private static delegate* unmanaged<BpfProgram*, IntPtr, IntPtr, int> _offlineFilter;

    /// <summary>Loads libpcap once; false (with the message to show) when it is not installed.</summary>
    public static bool TryLoad(out string? error)
    {
        lock (Gate)
        {
            if (_library != IntPtr.Zero)
            {
                error = null;
                return true;
            }
            foreach (string name in Names)
            {
                if (!NativeLibrary.TryLoad(name, out var handle)) continue;
                if (TryBind(handle))
                {
                    _library = handle;
                    error = null;
                    return true;
                }
            }
            error = MissingMessage;
            return false;
        }
    }

    private static bool TryBind(IntPtr handle)
    {
        bool ok = true;
        IntPtr Get(string name)
        {
            if (NativeLibrary.TryGetExport(handle, name, out var address)) return address;
            ok = false;
            return IntPtr.Zero;
        }
        var dispatch = Get("pcap_dispatch");
        var breakloop = Get("pcap_breakloop");
        var fd = Get("pcap_get_selectable_fd");
        var set = Get("pcap_set_datalink");
        var get = Get("pcap_datalink");
        var create = Get("pcap_create");
        var snaplen = Get("pcap_set_snaplen");
        var promisc = Get("pcap_set_promisc");
        var timeout = Get("pcap_set_timeout");
        var buffer = Get("pcap_set_buffer_size");
        var immediate = Get("pcap_set_immediate_mode");
        var setPrecision = Get("pcap_set_tstamp_precision");
        var getPrecision = Get("pcap_get_tstamp_precision");
        var activate = Get("pcap_activate");
        var nonblock = Get("pcap_setnonblock");
        var compile = Get("pcap_compile");
        var setfilter = Get("pcap_setfilter");
        var freecode = Get("pcap_freecode");
        var stats = Get("pcap_stats");
        var geterr = Get("pcap_geterr");
        var statustostr = Get("pcap_statustostr");
        var close = Get("pcap_close");
        var offline = Get("pcap_offline_filter");
        if (!ok) return false;
        _offlineFilter = (delegate* unmanaged<BpfProgram*, IntPtr, IntPtr, int>)offline;
        _dispatch = (delegate* unmanaged<IntPtr, int, delegate* unmanaged<IntPtr, IntPtr, IntPtr, void>, IntPtr, int>)dispatch;
        _breakloop = (delegate* unmanaged<IntPtr, void>)breakloop;
        _getSelectableFd = (delegate* unmanaged<IntPtr, int>)fd;
        _setDatalink = (delegate* unmanaged<IntPtr, int, int>)set;
        _datalink = (delegate* unmanaged<IntPtr, int>)get;
        _create = (delegate* unmanaged<byte*, byte*, IntPtr>)create;
        _setSnaplen = (delegate* unmanaged<IntPtr, int, int>)snaplen;
        _setPromisc = (delegate* unmanaged<IntPtr, int, int>)promisc;
        _setTimeout = (delegate* unmanaged<IntPtr, int, int>)timeout;
        _setBufferSize = (delegate* unmanaged<IntPtr, int, int>)buffer;
        _setImmediate = (delegate* unmanaged<IntPtr, int, int>)immediate;
        _setTstampPrecision = (delegate* unmanaged<IntPtr, int, int>)setPrecision;
        _getTstampPrecision = (delegate* unmanaged<IntPtr, int>)getPrecision;
        _activate = (delegate* unmanaged<IntPtr, int>)activate;
        _setNonblock = (delegate* unmanaged<IntPtr, int, byte*, int>)nonblock;
        _compile = (delegate* unmanaged<IntPtr, BpfProgram*, byte*, int, uint, int>)compile;
        _setFilter = (delegate* unmanaged<IntPtr, BpfProgram*, int>)setfilter;
        _freeCode = (delegate* unmanaged<BpfProgram*, void>)freecode;
        _stats = (delegate* unmanaged<IntPtr, PcapStat*, int>)stats;
        _getErr = (delegate* unmanaged<IntPtr, byte*>)geterr;
        _statusToStr = (delegate* unmanaged<int, byte*>)statustostr;
        _close = (delegate* unmanaged<IntPtr, void>)close;
        return true;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct BpfProgram
    {
        public uint Length;
        public IntPtr Instructions;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct PcapStat
    {
        public uint Received;
        public uint Dropped;
        public uint InterfaceDropped;
    }

    /// <summary>
    /// <c>pcap_create</c> by name, configured and activated (non-blocking, nanosecond stamps where the kernel gives
    /// them). Throws <see cref="CaptureOpenException"/> with libpcap's status and message.
    /// </summary>
    public static PcapHandle Open(string device, int snaplen, bool promiscuous, int timeoutMs, int bufferBytes, bool immediate, Action<string> onWarning)
    {
        byte* errors = stackalloc byte[ErrorBufferSize];
        errors[0] = 0;
        byte[] name = System.Text.Encoding.UTF8.GetBytes(device + "\0");
        IntPtr pcap;
        fixed (byte* n = name) pcap = _create(n, errors);
        if (pcap == IntPtr.Zero) throw new CaptureOpenException($"{device}: {Text(errors)}", ErrorGeneric);
        var handle = new PcapHandle(pcap);
        try
        {
            Configure(_setSnaplen(pcap, snaplen), device, "snaplen", onWarning);
            Configure(_setPromisc(pcap, promiscuous ? 1 : 0), device, "promiscuous mode", onWarning);
            Configure(_setTimeout(pcap, timeoutMs), device, "read timeout", onWarning);
            Configure(_setBufferSize(pcap, bufferBytes), device, "buffer size", onWarning);
            Configure(_setImmediate(pcap, immediate ? 1 : 0), device, "immediate mode", onWarning);
            Configure(_setTstampPrecision(pcap, TimestampPrecisionNano), device, "nanosecond timestamps", onWarning);
            int status = _activate(pcap);
            if (status < 0)
            {
                // For these libpcap leaves the details in its error buffer; for the others its status text says it all.
                string message = status is ErrorGeneric or ErrorNoSuchDevice or ErrorPermissionDenied or ErrorPromiscuousPermissionDenied && Text(_getErr(pcap)) is { Length: > 0 } detail
                    ? detail
                    : Text(_statusToStr(status));
                throw new CaptureOpenException($"{device}: {message}", status);
            }
            if (status > 0) onWarning($"{device}: {Text(_statusToStr(status))}");
            if (_setNonblock(pcap, 1, errors) < 0) throw new CaptureOpenException($"{device}: cannot set non-blocking mode: {Text(errors)}", ErrorGeneric);
            return handle;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static void Configure(int status, string device, string what, Action<string> onWarning)
    {
        if (status != 0) onWarning($"{device}: {what}: {Text(_statusToStr(status))}");
    }

    /// <summary>Compiles and installs a BPF filter (pcap-filter syntax); throws with libpcap's message when it does not compile.</summary>
    public static void SetFilter(PcapHandle pcap, string device, string filter)
    {
        BpfProgram program = default;
        byte[] text = System.Text.Encoding.UTF8.GetBytes(filter + "\0");
        int compiled;
        fixed (byte* t = text) compiled = _compile(pcap.Pointer, &program, t, 1, NetmaskUnknown);
        if (compiled < 0) throw new CaptureOpenException($"{device}: filter '{filter}': {LastError(pcap)}", ErrorGeneric);
        try
        {
            if (_setFilter(pcap.Pointer, &program) < 0) throw new CaptureOpenException($"{device}: filter '{filter}': {LastError(pcap)}", ErrorGeneric);
        }
        finally
        {
            _freeCode(&program);
        }
    }

    private const int SolSocket = 1;
    private const int SoAttachFilter = 26;

    [StructLayout(LayoutKind.Sequential)]
    private struct SockFilter
    {
        public ushort Code;
        public byte JumpTrue;
        public byte JumpFalse;
        public uint K;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct SockFprog
    {
        public ushort Length;
        public SockFilter* Filter;
    }

    /// <summary>
    /// Installs, on a socket of the <c>any</c> device, the kernel filter "interface index above
    /// <paramref name="floor"/>": three classic BPF instructions (load the ancillary ifindex, compare, return), so
    /// every other packet of the node costs the kernel one comparison on this socket.
    /// </summary>
    public static bool SetIndexFloor(PcapHandle pcap, int floor)
    {
        SockFilter* program = stackalloc SockFilter[4];
        program[0] = new SockFilter { Code = 0x20, K = 0xfffff000 + 8 };             // ld [SKF_AD_OFF + SKF_AD_IFINDEX]
        program[1] = new SockFilter { Code = 0x25, JumpTrue = 0, JumpFalse = 1, K = (uint)Math.Max(0, floor) }; // jgt #floor
        program[2] = new SockFilter { Code = 0x06, K = 0x40000 };                   // ret #262144 (snaplen cuts it)
        program[3] = new SockFilter { Code = 0x06, K = 0 };                         // ret #0
        var fprog = new SockFprog { Length = 4, Filter = program };
        return SetSockOpt(SelectableFd(pcap), SolSocket, SoAttachFilter, &fprog, (uint)sizeof(SockFprog)) == 0;
    }

    [LibraryImport("libc.so.6", EntryPoint = "setsockopt", SetLastError = true)]
    private static partial int SetSockOpt(int fd, int level, int name, void* value, uint length);

    /// <summary>A filter compiled for a handle's link type, to run in the callback with <see cref="Matches"/>.</summary>
    public static IntPtr CompileForUserland(PcapHandle pcap, string filter)
    {
        var program = (BpfProgram*)NativeMemory.AllocZeroed((nuint)sizeof(BpfProgram));
        byte[] text = System.Text.Encoding.UTF8.GetBytes(filter + "\0");
        int compiled;
        fixed (byte* t = text) compiled = _compile(pcap.Pointer, program, t, 1, NetmaskUnknown);
        if (compiled < 0)
        {
            NativeMemory.Free(program);
            throw new CaptureOpenException($"filter '{filter}': {LastError(pcap)}", ErrorGeneric);
        }
        return (IntPtr)program;
    }

    public static void FreeUserland(IntPtr program)
    {
        _freeCode((BpfProgram*)program);
        NativeMemory.Free((void*)program);
    }

    /// <summary><c>pcap_offline_filter</c>: whether a packet passes a compiled filter, evaluated here rather than in the kernel.</summary>
    public static bool Matches(IntPtr program, IntPtr header, IntPtr data) => _offlineFilter((BpfProgram*)program, header, data) != 0;

    public static bool NanosecondStamps(PcapHandle pcap) => _getTstampPrecision(pcap.Pointer) == TimestampPrecisionNano;

    public static bool TryGetStatistics(PcapHandle pcap, out PcapStat statistics)
    {
        PcapStat s;
        bool ok = _stats(pcap.Pointer, &s) == 0;
        statistics = s;
        return ok;
    }

    public static string LastError(PcapHandle pcap) => Text(_getErr(pcap.Pointer));

    internal static void Close(IntPtr pcap) => _close(pcap);

    private static string Text(byte* text) => text == null ? "" : Marshal.PtrToStringUTF8((IntPtr)text) ?? "";

    // The capture thread alone opens, reads and closes its handles, so the calls below take the pointer directly.

    public static int SelectableFd(PcapHandle pcap) => _getSelectableFd(pcap.Pointer);

    public static int Datalink(PcapHandle pcap) => _datalink(pcap.Pointer);

    public static int SetDatalink(PcapHandle pcap, int dlt) => _setDatalink(pcap.Pointer, dlt);

    /// <summary>
    /// <c>pcap_dispatch</c>: hands up to <paramref name="count"/> packets that the kernel already delivered to
    /// <paramref name="callback"/>, one native call for the lot (the ring's packets are walked in C, the callback
    /// reads each in place). Answers the number handled, 0 when none was waiting, -1 on error, -2 after
    /// <see cref="BreakLoop"/>.
    /// </summary>
    public static int Dispatch(PcapHandle pcap, int count, delegate* unmanaged<IntPtr, IntPtr, IntPtr, void> callback, IntPtr user) =>
        _dispatch(pcap.Pointer, count, callback, user);

    /// <summary><c>pcap_dispatch</c> on a handle another owner opened (a capture file SharpPcap reads, in tests).</summary>
    public static int Dispatch(IntPtr pcap, int count, delegate* unmanaged<IntPtr, IntPtr, IntPtr, void> callback, IntPtr user) =>
        _dispatch(pcap, count, callback, user);

    /// <summary><c>pcap_breakloop</c>, from inside a callback: the dispatch returns -2 after the current packet.</summary>
    public static void BreakLoop(PcapHandle pcap) => _breakloop(pcap.Pointer);

    public const short PollIn = 0x001;
    public const short PollPri = 0x002;
    public const int Eintr = 4;

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    /// <summary>The name of an interface index (<c>if_indextoname</c>), or null when no such interface exists now.</summary>
    public static string? IndexToName(int index)
    {
        byte* name = stackalloc byte[IfNameSize];
        if (index <= 0 || IfIndexToName((uint)index, name) == null) return null;
        return Marshal.PtrToStringAnsi((IntPtr)name);
    }

    private const int IfNameSize = 16;

    [LibraryImport("libc.so.6", EntryPoint = "if_indextoname")]
    private static partial byte* IfIndexToName(uint index, byte* name);

    [LibraryImport("libc.so.6", EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMs);
}

/// <summary>An open libpcap handle (<c>pcap_t*</c>), closed with <c>pcap_close</c>.</summary>
internal sealed class PcapHandle : SafeHandle
{
    public PcapHandle(IntPtr pcap) : base(IntPtr.Zero, ownsHandle: true) => SetHandle(pcap);

    public override bool IsInvalid => handle == IntPtr.Zero;

    public IntPtr Pointer => handle;

    protected override bool ReleaseHandle()
    {
        LibPcap.Close(handle);
        return true;
    }
}
