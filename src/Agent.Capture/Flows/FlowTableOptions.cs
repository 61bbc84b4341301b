namespace Tripline.Capture.Flows;

/// <summary>Bounds and timers of the flow table. Times are packet times in replay, wall-clock time live.</summary>
public sealed record FlowTableOptions
{
    /// <summary>Most flows held at once; past it the least recently active neighbour is evicted and counted.</summary>
    public int MaxFlows { get; init; } = 65_536;
    public TimeSpan TcpIdleTimeout { get; init; } = TimeSpan.FromMinutes(5);
    public TimeSpan UdpIdleTimeout { get; init; } = TimeSpan.FromSeconds(60);
    public TimeSpan IcmpIdleTimeout { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan SctpIdleTimeout { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>How long a closed TCP/SCTP flow keeps absorbing its last ACKs before its end record.</summary>
    public TimeSpan CloseLinger { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>Interval of update records while a flow is active.</summary>
    public TimeSpan UpdateInterval { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>How often the table is swept for idle, closed and due-for-update flows.</summary>
    public TimeSpan SweepInterval { get; init; } = TimeSpan.FromSeconds(1);

    public IEnumerable<string> Validate()
    {
        if (MaxFlows < 16) yield return $"max flows must be at least 16 (was {MaxFlows})";
        if (MaxFlows > 1 << 26) yield return $"max flows must be at most {1 << 26} (was {MaxFlows})";
        foreach (var (name, value) in new[] { ("tcp idle timeout", TcpIdleTimeout), ("udp idle timeout", UdpIdleTimeout), ("icmp idle timeout", IcmpIdleTimeout), ("sctp idle timeout", SctpIdleTimeout), ("update interval", UpdateInterval), ("sweep interval", SweepInterval) })
        {
            if (value <= TimeSpan.Zero) yield return $"{name} must be positive (was {value})";
        }
        if (CloseLinger < TimeSpan.Zero) yield return $"close linger must not be negative (was {CloseLinger})";
    }
}
