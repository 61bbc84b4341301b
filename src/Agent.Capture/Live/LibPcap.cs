using System.Runtime.InteropServices;

namespace Tripline.Capture.Live;

/// <summary>
/// The few libpcap and libc calls SharpPcap does not expose (the selectable descriptor, the link type of the
/// <c>any</c> device, <c>poll</c> over many descriptors), bound by hand from the same library SharpPcap loads.
/// </summary>
internal static unsafe partial class LibPcap
{
    public const string MissingMessage = "libpcap not found: install libpcap0.8 (apt-get install -y libpcap0.8; the package is libpcap0.8t64 on Debian 13 and Ubuntu 24.04)";
    public const string PermissionMessage = "capture needs CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode)";

    /// <summary>DLT_LINUX_SLL2: cooked capture v2, which carries the interface index.</summary>
    public const int DltLinuxSll2 = 276;

    private static readonly string[] Names = ["libpcap.so.0.8", "libpcap.so.1", "libpcap.so"];
    private static readonly object Gate = new();
    private static IntPtr _library;
    private static delegate* unmanaged<IntPtr, int> _getSelectableFd;
    private static delegate* unmanaged<IntPtr, int, int> _setDatalink;
    private static delegate* unmanaged<IntPtr, int> _datalink;
    private static delegate* unmanaged<IntPtr, int, delegate* unmanaged<IntPtr, IntPtr, IntPtr, void>, IntPtr, int> _dispatch;
    private static delegate* unmanaged<IntPtr, void> _breakloop;

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
                if (NativeLibrary.TryGetExport(handle, "pcap_get_selectable_fd", out var fd)
                    && NativeLibrary.TryGetExport(handle, "pcap_set_datalink", out var set)
                    && NativeLibrary.TryGetExport(handle, "pcap_datalink", out var get)
                    && NativeLibrary.TryGetExport(handle, "pcap_dispatch", out var dispatch)
                    && NativeLibrary.TryGetExport(handle, "pcap_breakloop", out var breakloop))
                {
                    _dispatch = (delegate* unmanaged<IntPtr, int, delegate* unmanaged<IntPtr, IntPtr, IntPtr, void>, IntPtr, int>)dispatch;
                    _breakloop = (delegate* unmanaged<IntPtr, void>)breakloop;
                    _getSelectableFd = (delegate* unmanaged<IntPtr, int>)fd;
                    _setDatalink = (delegate* unmanaged<IntPtr, int, int>)set;
                    _datalink = (delegate* unmanaged<IntPtr, int>)get;
                    _library = handle;
                    error = null;
                    return true;
                }
            }
            error = MissingMessage;
            return false;
        }
    }

    public static int SelectableFd(SafeHandle pcap) => With(pcap, static h => _getSelectableFd(h));

    public static int Datalink(SafeHandle pcap) => With(pcap, static h => _datalink(h));

    public static int SetDatalink(SafeHandle pcap, int dlt) => With(pcap, h => _setDatalink(h, dlt));

    /// <summary>
    /// <c>pcap_dispatch</c>: hands up to <paramref name="count"/> packets that the kernel already delivered to
    /// <paramref name="callback"/>, one native call for the lot (the ring's packets are walked in C, the callback
    /// reads each in place). Answers the number handled, 0 when none was waiting, -1 on error, -2 after
    /// <see cref="BreakLoop"/>.
    /// </summary>
    public static int Dispatch(SafeHandle pcap, int count, delegate* unmanaged<IntPtr, IntPtr, IntPtr, void> callback, IntPtr user)
    {
        bool added = false;
        try
        {
            pcap.DangerousAddRef(ref added);
            return _dispatch(pcap.DangerousGetHandle(), count, callback, user);
        }
        finally
        {
            if (added) pcap.DangerousRelease();
        }
    }

    /// <summary><c>pcap_breakloop</c>, from inside a callback: the dispatch returns -2 after the current packet.</summary>
    public static void BreakLoop(IntPtr pcap) => _breakloop(pcap);

    private static int With(SafeHandle pcap, Func<IntPtr, int> call)
    {
        bool added = false;
        try
        {
            pcap.DangerousAddRef(ref added);
            return call(pcap.DangerousGetHandle());
        }
        finally
        {
            if (added) pcap.DangerousRelease();
        }
    }

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

    [LibraryImport("libc.so.6", EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMs);
}
