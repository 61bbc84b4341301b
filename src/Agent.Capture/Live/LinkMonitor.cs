using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace Tripline.Capture.Live;

/// <summary>What the kernel said about one interface.</summary>
internal readonly record struct LinkEvent(bool Deleted, int Index, string Name, bool Up);

/// <summary>
/// The kernel's link notifications (rtnetlink, <c>RTM_NEWLINK</c> and <c>RTM_DELLINK</c> of the
/// <c>RTMGRP_LINK</c> group) on a non-blocking socket that the capture thread polls beside its capture handles, so
/// that a pod's interface is opened the moment it can carry a packet rather than at the next listing. Joining the
/// group needs no capability. The periodic listing stays as a safety net: when the kernel drops notifications
/// (the socket's buffer overran), <see cref="Overrun"/> says a full listing is due.
/// </summary>
internal sealed partial class LinkMonitor : IDisposable
{
    private const int AfNetlink = 16;
    private const int SockRaw = 3;
    private const int SockNonblock = 0x800;
    private const int SockCloexec = 0x80000;
    private const int NetlinkRoute = 0;
    private const uint RtmgrpLink = 1;
    private const ushort RtmNewlink = 16;
    private const ushort RtmDellink = 17;
    private const ushort NlmsgError = 2;
    private const ushort NlmsgOverrun = 4;
    private const ushort IflaIfname = 3;
    private const uint IffUp = 1;
    private const int Eagain = 11;
    private const int Enobufs = 105;
    private const int Eintr = 4;

    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _fd;

    private LinkMonitor(int fd) => _fd = fd;

    /// <summary>The socket, for poll().</summary>
    public int FileDescriptor => _fd;

    /// <summary>Set when notifications were lost; cleared by the caller once it has listed every interface again.</summary>
    public bool Overrun { get; set; }

    /// <summary>A monitor, or null (with why) where rtnetlink is not available; capture then relies on listing.</summary>
    public static LinkMonitor? TryOpen(out string? error)
    {
        int fd = Socket(AfNetlink, SockRaw | SockNonblock | SockCloexec, NetlinkRoute);
        if (fd < 0)
        {
            error = $"rtnetlink socket: errno {Marshal.GetLastPInvokeError()}";
            return null;
        }
        var address = new SockaddrNl { Family = AfNetlink, Groups = RtmgrpLink };
        if (Bind(fd, ref address, Marshal.SizeOf<SockaddrNl>()) != 0)
        {
            error = $"rtnetlink bind: errno {Marshal.GetLastPInvokeError()}";
            Close(fd);
            return null;
        }
        error = null;
        return new LinkMonitor(fd);
    }

    /// <summary>Reads every notification waiting now; false when the socket failed.</summary>
    public unsafe bool ReadAll(List<LinkEvent> into)
    {
        while (true)
        {
            nint n;
            fixed (byte* buffer = _buffer)
            {
                n = Recv(_fd, buffer, (nuint)_buffer.Length, 0);
            }
            if (n < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Eagain) return true;
                if (errno == Eintr) continue;
                if (errno == Enobufs)
                {
                    // The kernel dropped notifications: only a full listing knows what changed meanwhile.
                    Overrun = true;
                    continue;
                }
                return false;
            }
            if (n == 0) return true;
            Parse(_buffer.AsSpan(0, (int)n), into, this);
        }
    }

    /// <summary>Parses a datagram of netlink messages (exposed for tests).</summary>
    internal static void Parse(ReadOnlySpan<byte> data, List<LinkEvent> into, LinkMonitor? owner = null)
    {
        while (data.Length >= 16)
        {
            uint length = BinaryPrimitives.ReadUInt32LittleEndian(data);
            ushort type = BinaryPrimitives.ReadUInt16LittleEndian(data[4..]);
            if (length < 16 || length > data.Length) return;
            var message = data[16..(int)length];
            if (type == NlmsgOverrun && owner is not null) owner.Overrun = true;
            else if (type is RtmNewlink or RtmDellink && message.Length >= 16 && type != NlmsgError)
            {
                int index = BinaryPrimitives.ReadInt32LittleEndian(message[4..]);
                uint flags = BinaryPrimitives.ReadUInt32LittleEndian(message[8..]);
                string? name = null;
                var attributes = message[16..];
                while (attributes.Length >= 4)
                {
                    ushort attributeLength = BinaryPrimitives.ReadUInt16LittleEndian(attributes);
                    ushort attributeType = BinaryPrimitives.ReadUInt16LittleEndian(attributes[2..]);
                    if (attributeLength < 4 || attributeLength > attributes.Length) break;
                    if ((attributeType & 0x3FFF) == IflaIfname)
                    {
                        var value = attributes[4..attributeLength];
                        int end = value.IndexOf((byte)0);
                        name = Encoding.ASCII.GetString(end >= 0 ? value[..end] : value);
                    }
                    int aligned = (attributeLength + 3) & ~3;
                    if (aligned >= attributes.Length) break;
                    attributes = attributes[aligned..];
                }
                if (name is not null && index > 0) into.Add(new LinkEvent(type == RtmDellink, index, name, (flags & IffUp) != 0));
            }
            int next = (int)((length + 3) & ~3u);
            if (next >= data.Length) return;
            data = data[next..];
        }
    }

    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) Close(fd);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct SockaddrNl
    {
        public ushort Family;
        public ushort Pad;
        public uint Pid;
        public uint Groups;
    }

    [LibraryImport("libc.so.6", EntryPoint = "socket", SetLastError = true)]
    private static partial int Socket(int domain, int type, int protocol);

    [LibraryImport("libc.so.6", EntryPoint = "bind", SetLastError = true)]
    private static partial int Bind(int fd, ref SockaddrNl address, int length);

    [LibraryImport("libc.so.6", EntryPoint = "recv", SetLastError = true)]
    private static unsafe partial nint Recv(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc.so.6", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
