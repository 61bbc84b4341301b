using System.Net;
using Tripline.Correlation.Cluster;

namespace Tripline.Recommend;

/// <summary>What an end of an observed flow is to recommend: a workload's pods, a node, or an address outside.</summary>
internal enum PeerKind : byte
{
    Pod,
    Node,
    External,
}

/// <summary>
/// One end as recommend groups flows: a workload (<c>Deployment/name</c>, or <c>Pod/name</c> for a pod no controller
/// owns) in its namespace, a node by name and address, or an outside address.
/// </summary>
internal sealed record Identity(PeerKind Kind, string Namespace, string Name, string Address)
{
    public string Display => Kind switch
    {
        PeerKind.Pod => $"{Namespace}/{Name}",
        PeerKind.Node => $"node {Name} ({Address})",
        _ => Address,
    };
}

/// <summary>A port as a rule names it: by number, or by the name the destination pods declare for it.</summary>
internal sealed record PortSpec(string Protocol, int Number, string? Name) : IComparable<PortSpec>
{
    public int CompareTo(PortSpec? other)
    {
        if (other is null) return 1;
        int c = string.CompareOrdinal(Protocol, other.Protocol);
        if (c != 0) return c;
        c = Number.CompareTo(other.Number);
        return c != 0 ? c : string.CompareOrdinal(Name, other.Name);
    }

    public override string ToString() => $"{Name ?? Number.ToString(System.Globalization.CultureInfo.InvariantCulture)}/{Protocol}";
}

/// <summary>
/// A peer of a rule: pods by labels, in the policy's namespace (<see cref="Namespace"/> equal to it) or another, or
/// one address (an ipBlock; merged with others of the same rule under <c>--merge-cidrs</c>).
/// </summary>
internal sealed record Peer(string Namespace, LabelChoice? Pods, IPAddress? Address)
{
    public string Key => Address is { } a ? $"~ip|{(a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 4 : 6)}|{a}" : $"pods|{Namespace}|{Pods!.Text}";
}

/// <summary>The ports a subject allows to or from one peer; all ports when some observed protocol has none (ICMP).</summary>
internal sealed class PeerPorts(Peer peer)
{
    public Peer Peer { get; } = peer;
    public SortedSet<PortSpec> Ports { get; } = [];
    public bool AllPorts { get; set; }
    public long Flows { get; set; }

    public string PortsKey => AllPorts ? "*" : string.Join(",", Ports);
}

/// <summary>The policy recommended for one workload: its selector, and the peers and ports it was seen to talk with.</summary>
internal sealed class WorkloadPolicy(string ns, string workload, LabelChoice subject)
{
    public string Namespace { get; } = ns;
    public string Workload { get; } = workload;
    public LabelChoice Subject { get; } = subject;
    public string Name { get; set; } = "";
    public SortedDictionary<string, PeerPorts> Ingress { get; } = new(StringComparer.Ordinal);
    public SortedDictionary<string, PeerPorts> Egress { get; } = new(StringComparer.Ordinal);
    public long Flows { get; set; }
    public string First { get; set; } = "";
    public string Last { get; set; } = "";
    public SortedSet<string> Nodes { get; } = new(StringComparer.Ordinal);
    /// <summary>What a reader of the policy should know: a selector on per-pod labels, a rule widened for ICMP.</summary>
    public SortedSet<string> Notes { get; } = new(StringComparer.Ordinal);

    public void Count(long flows, string first, string last, IEnumerable<string> nodes)
    {
        Flows += flows;
        if (First.Length == 0 || string.CompareOrdinal(first, First) < 0) First = first;
        if (string.CompareOrdinal(last, Last) > 0) Last = last;
        Nodes.UnionWith(nodes);
    }
}

/// <summary>Flows the recommendation does not allow, and why.</summary>
internal sealed record Uncovered(string Source, string Destination, string Port, long Flows, string Reason);

/// <summary>What is known of a workload: its pods' label sets, its pods, the ports they declare.</summary>
internal sealed class WorkloadFacts(string ns, string name)
{
    public string Namespace { get; } = ns;
    public string Name { get; } = name;
    public HashSet<LabelSet> LabelSets { get; } = [];
    public SortedSet<string> Pods { get; } = new(StringComparer.Ordinal);
    public List<ContainerPortInfo> DeclaredPorts { get; } = [];
    /// <summary>A pod that stands for the workload when tightness is judged.</summary>
    public PodInfo? Representative { get; set; }
    /// <summary>Another pod of the workload, for the pairs of its own pods.</summary>
    public PodInfo? Second { get; set; }

    public void Represent(PodInfo pod)
    {
        if (Representative is null) Representative = pod;
        else if (Second is null && pod.Name != Representative.Name) Second = pod;
    }
    public LabelChoice? Labels { get; set; }
}
