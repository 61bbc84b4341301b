namespace Tripline.TrafficGen;

/// <summary>What to generate; validated once, read by the planner and the writer.</summary>
internal sealed record GeneratorOptions
{
    public IReadOnlyList<string> Manifests { get; init; } = [];
    public string Output { get; init; } = "-";
    public int Flows { get; init; } = 1000;
    public int PacketsPerFlow { get; init; } = 20;
    public ulong Seed { get; init; } = 1;
    public int SnapLength { get; init; } = 128;
    public long StartNs { get; init; }
    public string? PlanPath { get; init; }
    public CaptureFormat Format { get; init; } = CaptureFormat.Pcap;
    public bool Nanoseconds { get; init; }
    /// <summary>Share of frames that are noise: ARP, neighbour discovery, LLDP, malformed frames.</summary>
    public double Noise { get; init; } = 0.002;
    /// <summary>New flows per second of capture time.</summary>
    public double FlowRate { get; init; } = 200;

    public IEnumerable<string> Validate()
    {
        if (PlanPath is null && Flows < 1) yield return $"--flows: must be at least 1 (was {Flows})";
        if (PacketsPerFlow < 1) yield return $"--packets-per-flow: must be at least 1 (was {PacketsPerFlow})";
        if (SnapLength is < 60 or > 262_144) yield return $"--snaplen: must be between 60 and 262144 (was {SnapLength})";
        if (Noise is < 0 or > 0.5) yield return $"--noise: must be between 0 and 0.5 (was {Noise})";
        if (FlowRate is <= 0 or > 10_000_000) yield return $"--flow-rate: must be positive (was {FlowRate})";
        if (PlanPath is not null && !File.Exists(PlanPath)) yield return $"--plan: no such file: {PlanPath}";
        foreach (string path in Manifests)
        {
            if (!File.Exists(path) && !Directory.Exists(path)) yield return $"--manifests: no such file or directory: {path}";
        }
    }
}
