using Microsoft.Extensions.Logging;

namespace Tripline.Hosting;

/// <summary>
/// The agent owns its stop deadline. Once a stop is asked for, it has <c>--shutdown-timeout</c> to write everything
/// and exit; past it, this writes out what the flow log holds (no write is ever cut), logs what is missing, and
/// exits 1, well before the kubelet's SIGKILL would cut a write.
/// </summary>
internal sealed partial class StopDeadline : IDisposable
{
    private readonly ManualResetEventSlim _stopped = new(false);
    private readonly ILogger _logger;
    private readonly Thread _thread;
    private AgentHost? _host;

    public StopDeadline(StopSignal signal, TimeSpan timeout, ILoggerFactory loggers)
    {
        _logger = loggers.CreateLogger("tripline");
        _thread = new Thread(() =>
        {
            // Waits for the stop to be asked for, then for the agent to finish within the deadline.
            WaitHandle.WaitAny([signal.Token.WaitHandle, _stopped.WaitHandle]);
            if (_stopped.IsSet) return;
            if (_stopped.Wait(timeout)) return;
            string missing = Volatile.Read(ref _host)?.SealPastDeadline() ?? "the agent had not started";
            LogPastDeadline(_logger, timeout.TotalSeconds, missing);
            // The console logger writes on its own thread: disposing it writes out the line above.
            loggers.Dispose();
            Environment.Exit(Cli.ExitCodes.RuntimeFailure);
        })
        { Name = "tripline-stop-deadline", IsBackground = true };
        _thread.Start();
    }

    /// <summary>The host whose flow log is sealed if the deadline passes.</summary>
    public void Watch(AgentHost host) => Volatile.Write(ref _host, host);

    /// <summary>Everything was written: the deadline no longer applies.</summary>
    public void Stopped() => _stopped.Set();

    public void Dispose() => _stopped.Set();

    [LoggerMessage(EventId = 4, Level = LogLevel.Error, Message = "stop took longer than --shutdown-timeout ({Seconds} s): exiting with what was written ({Missing})")]
    private static partial void LogPastDeadline(ILogger logger, double seconds, string missing);
}
