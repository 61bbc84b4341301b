using System.Runtime.InteropServices;

namespace Tripline.Cli;

/// <summary>
/// Standard output as a stream that writes straight to descriptor 1 with <c>write(2)</c>.
/// <para>
/// Not <c>Console.OpenStandardOutput()</c>: it writes under the console's own lock, which the runtime's signal handling
/// also takes, so a flow log on standard output whose reader stalls (a slow log shipper, a pager) would block SIGTERM
/// itself, and every log line on standard error.
/// </para>
/// <para>
/// Not a <see cref="FileStream"/> over the descriptor either: on a regular file it writes at a position of its own
/// (<c>pwrite</c>), while standard error, sharing the same open file after <c>&gt; f 2&gt;&amp;1</c>, writes at the
/// file's offset, and the two overwrite each other. <c>write(2)</c> uses and moves the offset they share, as every
/// other program's output does.
/// </para>
/// </summary>
internal static class StandardStreams
{
    public static Stream OpenOutput() => new DescriptorOutputStream(1);
}

/// <summary>A write-only, unbuffered stream over a descriptor it does not own.</summary>
internal sealed partial class DescriptorOutputStream(int descriptor) : Stream
{
    private const int Eintr = 4;

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override unsafe void Write(ReadOnlySpan<byte> buffer)
    {
        fixed (byte* start = buffer)
        {
            var written = 0;
            while (written < buffer.Length)
            {
                var n = SysWrite(descriptor, start + written, (nuint)(buffer.Length - written));
                if (n >= 0)
                {
                    written += (int)n;
                    continue;
                }
                var errno = Marshal.GetLastPInvokeError();
                if (errno == Eintr) continue;
                throw new IOException($"writing to descriptor {descriptor}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
            }
        }
    }

    public override void WriteByte(byte value) => Write([value]);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        Write(buffer.AsSpan(offset, count));
        return Task.CompletedTask;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    [LibraryImport("libc.so.6", EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint SysWrite(int descriptor, byte* buffer, nuint count);
}
