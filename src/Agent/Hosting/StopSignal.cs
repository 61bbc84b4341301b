using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Tripline.Hosting;

/// <summary>
/// SIGTERM and SIGINT (Ctrl-C) as a cancellation token that the command owns. The signals' default action (end the
/// process) is cancelled, so nothing ends the process behind the command's back: it stops in its own order, within
/// its own deadline. System.CommandLine's own handling is switched off (<c>ProcessTerminationTimeout = null</c>),
/// since it ends the process two seconds after the signal whatever the command is writing.
/// </summary>
internal sealed class StopSignal : IDisposable
{
    private readonly CancellationTokenSource _stop;
    private readonly PosixSignalRegistration[] _registrations;
    private long _requestedAt;
    private volatile string? _reason;

    /// <param name="linked">Another token that stops the command too (a test's, or a caller's).</param>
    public StopSignal(CancellationToken linked = default)
    {
        _stop = CancellationTokenSource.CreateLinkedTokenSource(linked);
        _stop.Token.Register(() => Request("cancelled"));
        _registrations =
        [
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal),
            PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal),
        ];
    }

    public CancellationToken Token => _stop.Token;

    /// <summary>What asked the command to stop (SIGTERM, SIGINT, cancelled), or null while it runs.</summary>
    public string? Reason => _reason;

    /// <summary>Time since the stop was asked for; zero while running.</summary>
    public TimeSpan SinceRequested => Volatile.Read(ref _requestedAt) is var at && at != 0 ? Stopwatch.GetElapsedTime(at) : TimeSpan.Zero;

    private void OnSignal(PosixSignalContext context)
    {
        // Keep the process: the command ends it once everything is written.
        context.Cancel = true;
        Request(context.Signal.ToString());
        _stop.Cancel();
    }

    private void Request(string reason)
    {
        if (Interlocked.CompareExchange(ref _requestedAt, Stopwatch.GetTimestamp(), 0) == 0) _reason = reason;
    }

    public void Dispose()
    {
        foreach (var registration in _registrations) registration.Dispose();
        _stop.Dispose();
    }
}
