using System.Runtime.InteropServices;

namespace Tripline.Capture.Pcap;

/// <summary>
/// Standard input that a stop can end: a read waits for data in short polls and, once the stop is asked for, ends
/// the input instead of blocking in read() on a pipe that may never deliver again (a replay piped from tcpdump on a
/// quiet node, stopped with Ctrl-C). What arrived before the stop is still read.
/// </summary>
internal sealed partial class StoppableInput(Stream inner, int descriptor, CancellationToken stop) : Stream
{
    private const short PollIn = 0x001;
    private const int PollMilliseconds = 100;
    private const int Eintr = 4;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        while (!stop.IsCancellationRequested)
        {
            int ready = Poll(descriptor, PollMilliseconds);
            // A signal (the stop itself, say) interrupted the wait: wait again.
            if (ready < 0 && Marshal.GetLastPInvokeError() == Eintr) continue;
            // Data, end of file, an error or a descriptor that cannot be polled: the read itself says which.
            if (ready != 0) return inner.Read(buffer);
        }
        return 0;
    }

    private static unsafe int Poll(int fd, int timeoutMs)
    {
        var entry = new PollFd { Fd = fd, Events = PollIn };
        return PollNative(&entry, 1, timeoutMs);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc.so.6", EntryPoint = "poll", SetLastError = true)]
    private static unsafe partial int PollNative(PollFd* fds, nuint count, int timeoutMs);

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
