namespace Tripline.Report;

/// <summary>The first entries of a sorted table and how many there were in all: a report of a large input says how many more.</summary>
internal sealed record Limited<T>(IReadOnlyList<T> Items, int Total)
{
    public int Omitted => Total - Items.Count;

    public static Limited<T> Of(IEnumerable<T> sorted, int top)
    {
        var all = sorted as IReadOnlyList<T> ?? [.. sorted];
        return new Limited<T>([.. all.Take(top)], all.Count);
    }
}

/// <summary>What was looked at: the inputs, the period, the traffic and the cluster.</summary>
internal sealed record Coverage
{
    public required string InputKind { get; init; }
    public required IReadOnlyList<string> Inputs { get; init; }
    public required string Cluster { get; init; }
    public string? Since { get; init; }
    public string? Until { get; init; }
    public string? FirstSeen { get; init; }
    public string? LastSeen { get; init; }
    public long Records { get; init; }
    public long Unreadable { get; init; }
    public long OutsidePeriod { get; init; }
    public long Flows { get; init; }
    public long AllowedFlows { get; init; }
    public long DeniedFlows { get; init; }
    public long AggregatedFlows { get; init; }
    public int EndpointPairs { get; init; }
    public required IReadOnlyList<string> Nodes { get; init; }
    public int Namespaces { get; init; }
    public int Pods { get; init; }
    public int Workloads { get; init; }
    public int Policies { get; init; }
}

/// <summary>A workload some of whose pods no policy selects for a direction.</summary>
internal sealed record UnprotectedWorkload(string Namespace, string Workload, int Pods, int IngressUnprotected, int EgressUnprotected);

/// <summary>
/// Whether a new pod without labels in the namespace would be denied by default: ingress from an outside address and
/// from a pod of another namespace, egress to an outside address; with the policies that would select it.
/// </summary>
internal sealed record NamespaceDefaults(string Namespace, int Pods, bool IngressDenied, bool EgressDenied, IReadOnlyList<string> IngressPolicies, IReadOnlyList<string> EgressPolicies);

/// <summary>One rule and the flows it matched (admitted, or decided with its action) in the period.</summary>
internal sealed record RuleUse(string Policy, string Direction, string Rule, long Flows);

internal sealed record Posture
{
    public required Limited<UnprotectedWorkload> Unprotected { get; init; }
    public int PodsJudged { get; init; }
    public int PodsWithoutIngressPolicy { get; init; }
    public int PodsWithoutEgressPolicy { get; init; }
    public required IReadOnlyList<NamespaceDefaults> Namespaces { get; init; }
    public required IReadOnlyList<string> PoliciesSelectingNoPod { get; init; }
    public required Limited<RuleUse> RulesWithoutFlows { get; init; }
    public int Rules { get; init; }
    /// <summary>Distinct endpoint pairs (after Service backends) whose rules were explained.</summary>
    public long PairsExplained { get; init; }
    /// <summary>Pairs that could not be explained (a Service or node the cluster given lacks).</summary>
    public long PairsNotExplained { get; init; }
}

/// <summary>How many peer workloads of a kind the policies let reach a port, of how many, and how many traffic used.</summary>
internal sealed record PeerReach(int Allowed, int Of, int Used, IReadOnlyList<string> Namespaces);

/// <summary>One port of a workload: who may reach it under the policies, and who did.</summary>
internal sealed record PortExposure(int Port, string Protocol, PeerReach SameNamespace, PeerReach OtherNamespaces, bool Outside, int OutsideUsed);

internal sealed record WorkloadExposure(string Namespace, string Workload, int Pods, IReadOnlyList<PortExposure> Ports)
{
    /// <summary>How wide it is open: the outside first, then the peer workloads admitted.</summary>
    public long Breadth => (Ports.Any(p => p.Outside) ? 1_000_000_000L : 0) + Ports.Sum(p => (long)p.SameNamespace.Allowed + p.OtherNamespaces.Allowed);
}

/// <summary>Denied flows of one workload pair, port and deciding policies.</summary>
internal sealed record Violation(string Source, string Destination, int? Port, string Protocol, string Direction, IReadOnlyList<string> Policies,
    long Flows, string First, string Last, IReadOnlyDictionary<string, long> Enforcement);

/// <summary>Plaintext flows (<c>tls: false</c>) between two meshed pods or into a STRICT destination.</summary>
internal sealed record PlaintextFinding(string Source, string Destination, int? Port, string Protocol, string Reason, string PeerAuthentication, long Flows, string First, string Last);

internal sealed record MeshFacts(long RecordsWithMeshData, long PlaintextFlows, Limited<PlaintextFinding> Plaintext);

internal sealed record MapNode(string Id, string Namespace, string Label, long Flows);

internal sealed record MapEdge(string Source, string Destination, long AllowedFlows, long DeniedFlows)
{
    public long Flows => AllowedFlows + DeniedFlows;
    public string Verdict => DeniedFlows == 0 ? "allowed" : AllowedFlows == 0 ? "denied" : "both";
}

/// <summary>The observed workload-to-workload traffic: the busiest edges, the nodes they join, and how many were left out.</summary>
internal sealed record TrafficMap(IReadOnlyList<MapNode> Nodes, IReadOnlyList<MapEdge> Edges, int TotalNodes, int TotalEdges);

internal sealed record ReportFacts(Coverage Coverage, Posture Posture, Limited<WorkloadExposure> Exposure, Limited<Violation> Violations, MeshFacts Mesh, TrafficMap Map);
