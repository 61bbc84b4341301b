using Microsoft.Win32.SafeHandles;

namespace Tripline.Cli;

/// <summary>
/// Standard output as a plain file stream over descriptor 1. <c>Console.OpenStandardOutput()</c> writes under the
/// console's own lock, which the runtime's signal handling also takes: a flow log on standard output whose reader
/// stalls (a slow log shipper, a pager) would then block SIGTERM itself, and every log line on standard error.
/// </summary>
internal static class StandardStreams
{
    public static Stream OpenOutput() => new FileStream(new SafeFileHandle(1, ownsHandle: false), FileAccess.Write, bufferSize: 0);
}
