namespace Tripline.Correlation.Policy;

/// <summary>Transport as NetworkPolicy ports name it; ICMP and others match only rules without ports.</summary>
public enum PolicyProtocol : byte
{
    TCP,
    UDP,
    SCTP,
    ICMP,
    Other,
}

public enum PolicyDirection : byte
{
    Ingress,
    Egress,
}

/// <summary>One side of a verdict: the source pod's egress or the destination pod's ingress.</summary>
public sealed record SideVerdict(bool Isolated, bool Allowed, IReadOnlyList<string> Policies)
{
    /// <summary>A pod that no policy selects for this direction: everything is allowed.</summary>
    public static readonly SideVerdict NotIsolated = new(false, true, []);
}

/// <summary>
/// The judgement of one flow. Egress is null when the source is not a pod of the cluster (or is a host-network
/// pod, judged as its node); Ingress likewise for the destination. Instances are cached and shared: never mutate.
/// </summary>
/// <param name="NotJudgeable">Why packets cannot settle the verdict (<c>domain_names</c>: only a rule's domain names
/// could have decided otherwise); the verdict is then what the rest of the policies say, and <see cref="Note"/> says so.</param>
public sealed record Verdict(bool Allowed, SideVerdict? Egress, SideVerdict? Ingress, string? Note = null, string? NotJudgeable = null);
