using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;

namespace Tripline.Correlation.Policy.Tiers;

/// <summary>What a tier rule does with a flow it matches.</summary>
public enum RuleAction : byte
{
    /// <summary>Allowed, final (ClusterNetworkPolicy's <c>Accept</c>, v1alpha1's <c>Allow</c>).</summary>
    Accept,

    /// <summary>Denied, final.</summary>
    Deny,

    /// <summary>The rest of this tier is skipped; the next tier decides.</summary>
    Pass,

    /// <summary>Calico's Log: nothing is decided, the next rule is tried.</summary>
    Log,
}

/// <summary>
/// A tier: policies walked in order until a rule decides. When policies of the tier select the pod for the direction
/// and none decides, the tier's end action applies: Deny, or Pass to the next tier. Tiers are walked by order, then
/// name; after the last, everything is allowed. NetworkPolicies (namespaced, <c>networking.k8s.io/v1</c>) sit in the
/// default tier at <see cref="NetworkPolicyOrder"/>, where Calico places them; the administrator's Admin tier comes
/// before it and the Baseline tier after, at the orders Calico gives them.
/// </summary>
internal sealed class PolicyTier(string name, string label, double order, RuleAction endAction, bool holdsNetworkPolicies = false)
{
    /// <summary>The order NetworkPolicies have within the default tier.</summary>
    public const double NetworkPolicyOrder = 1000;

    public static readonly PolicyTier Admin = new("kube-admin", "Admin", 1_000, RuleAction.Pass);
    public static readonly PolicyTier Default = new("default", "default", 1_000_000, RuleAction.Deny, holdsNetworkPolicies: true);
    public static readonly PolicyTier Baseline = new("kube-baseline", "Baseline", 10_000_000, RuleAction.Pass);

    public string Name { get; } = name;

    /// <summary>How explanations name the tier: Admin, Baseline, or the tier's own name.</summary>
    public string Label { get; } = label;

    /// <summary>Lower first; a tier without an order is last (positive infinity).</summary>
    public double Order { get; } = order;

    /// <summary>What happens when the tier's policies select the pod and none decides: Deny or Pass.</summary>
    public RuleAction EndAction { get; } = endAction;
    public bool HoldsNetworkPolicies { get; } = holdsNetworkPolicies;

    public static int Compare(PolicyTier a, PolicyTier b)
    {
        int byOrder = a.Order.CompareTo(b.Order);
        return byOrder != 0 ? byOrder : string.CompareOrdinal(a.Name, b.Name);
    }
}

/// <summary>
/// One policy of an ordered tier: whom it applies to (its subject) and, per direction, rules evaluated in order,
/// the first that matches deciding with its action. Kinds compile into it (<c>Policy/Admin</c>); the engine walks it
/// without asking which kind it came from, except to name it.
/// </summary>
internal sealed class TierPolicy
{
    public TierPolicy(string key, PolicyTier tier, double order, string orderText, TierSubject subject, TierRule[] ingress, TierRule[] egress)
    {
        Key = key;
        Tier = tier;
        Order = order;
        OrderText = orderText;
        Subject = subject;
        Ingress = ingress;
        Egress = egress;
    }

    /// <summary><c>Kind/name</c>, as verdicts, records and metrics name it.</summary>
    public string Key { get; }
    public PolicyTier Tier { get; }

    /// <summary>Lower first within the tier (a ClusterNetworkPolicy's priority); equal orders are walked by name.</summary>
    public double Order { get; }

    /// <summary>Breaks ties of <see cref="Order"/>: the key, unless the kind sorts otherwise (Calico: name, namespace, kind).</summary>
    public string? SortName { get; init; }

    /// <summary>The order as the kind spells it, for explanations: <c>priority 10</c>, <c>order 100</c>.</summary>
    public string OrderText { get; }
    public TierSubject Subject { get; }
    public TierRule[] Ingress { get; }
    public TierRule[] Egress { get; }

    public TierRule[] Rules(PolicyDirection direction) => direction == PolicyDirection.Ingress ? Ingress : Egress;

    public IEnumerable<TierRule> AllRules => Ingress.Concat(Egress);

    /// <summary>
    /// Whether the policy applies to its subject for <paramref name="direction"/>: it has rules for it, or (Calico's
    /// <c>types</c>) declares the direction without rules, which makes the tier's end action apply.
    /// </summary>
    public bool Applies(PolicyDirection direction) => Rules(direction).Length > 0 || (direction == PolicyDirection.Ingress ? DeclaresIngress : DeclaresEgress);

    /// <summary>Set by kinds with declared directions (Calico's <c>types</c>); ClusterNetworkPolicies apply where they have rules.</summary>
    public bool DeclaresIngress { get; init; }
    public bool DeclaresEgress { get; init; }

    private SideVerdict? _accepted, _denied;

    /// <summary>The side this policy decides, shared: verdicts are cached and never mutated.</summary>
    public SideVerdict Decided(bool accepted) => accepted
        ? _accepted ??= new SideVerdict(true, true, [Key])
        : _denied ??= new SideVerdict(true, false, [Key]);
}

/// <summary>The pods a policy applies to: those of matching namespaces, and of them those matching the pod selector.</summary>
internal class TierSubject(CompiledSelector namespaceSelector, CompiledSelector? podSelector)
{
    public CompiledSelector NamespaceSelector { get; } = namespaceSelector;

    /// <summary>Null: every pod of the matching namespaces (<c>subject.namespaces</c>).</summary>
    public CompiledSelector? PodSelector { get; } = podSelector;

    /// <summary>
    /// Kinds with a selector language of their own (Calico) override it; the engine only asks. <paramref name="identity"/>
    /// is the pod's labels as such a language sees them (with its namespace's and service account's inherited ones).
    /// </summary>
    public virtual bool Selects(LabelSet namespaceLabels, LabelSet podLabels, LabelSet identity) =>
        NamespaceSelector.Matches(namespaceLabels) && (PodSelector is null || PodSelector.Matches(podLabels));

    public override string ToString() => PodSelector is null
        ? $"namespaces {NamespaceSelector}"
        : $"pods {PodSelector} in namespaces {NamespaceSelector}";
}

/// <summary>One ingress or egress rule: it matches a flow when one peer and one port entry match (no entries: all traffic).</summary>
internal sealed class TierRule(int index, string? name, RuleAction action, TierPeer[] peers, TierPort[] ports)
{
    public int Index { get; } = index;

    /// <summary>The rule's own name when it has one; explanations use it.</summary>
    public string? Name { get; } = name;
    public RuleAction Action { get; } = action;
    public TierPeer[] Peers { get; } = peers;

    /// <summary>Empty: every port and every protocol, ICMP included.</summary>
    public TierPort[] Ports { get; } = ports;

    /// <summary>A kind's own protocol and port test (Calico's protocol/notProtocol, ports/notPorts), AND-ed with <see cref="Ports"/>.</summary>
    public TierPortCondition? PortCondition { get; init; }

    public bool MatchesPort(PodInfo? destinationPod, int port, PolicyProtocol protocol)
    {
        if (PortCondition is not null && !PortCondition.Matches(destinationPod, port, protocol)) return false;
        if (Ports.Length == 0) return true;
        foreach (var candidate in Ports)
        {
            if (candidate.Matches(destinationPod, port, protocol)) return true;
        }
        return false;
    }

    /// <summary>How the rule's peers take the flow's other end; <see cref="PeerMatch.NotJudgeable"/> when only a domain name could match.</summary>
    public PeerMatch MatchPeer(in PeerView peer)
    {
        var result = PeerMatch.No;
        foreach (var candidate in Peers)
        {
            var match = candidate.Match(in peer, Action);
            if (match == PeerMatch.Yes) return PeerMatch.Yes;
            if (match == PeerMatch.NotJudgeable) result = PeerMatch.NotJudgeable;
        }
        return result;
    }

    public string Describe(PolicyDirection direction) =>
        Name is { Length: > 0 } ? $"{(direction == PolicyDirection.Ingress ? "ingress" : "egress")}[{Index}] \"{Name}\"" : $"{(direction == PolicyDirection.Ingress ? "ingress" : "egress")}[{Index}]";
}

/// <summary>A peer test of a kind's own (Calico's selectors, nets and notNets); ToString says what it matches.</summary>
internal abstract class TierPeerCondition
{
    public abstract PeerMatch Match(in PeerView peer);
}

/// <summary>A protocol and port test of a kind's own; it sees only the destination port, the one a flow's key keeps.</summary>
internal abstract class TierPortCondition
{
    public abstract bool Matches(PodInfo? destinationPod, int port, PolicyProtocol protocol);

    /// <summary>Whether the answer depends on the destination pod's named ports.</summary>
    public abstract bool HasNamedPorts { get; }

    /// <summary>Whether the answer depends on an ICMP message's type and code (<see cref="PolicyEngine.IcmpPort"/>).</summary>
    public virtual bool TestsIcmp => false;
}

/// <summary>Whether a peer takes the other end of a flow.</summary>
internal enum PeerMatch : byte
{
    No,
    Yes,

    /// <summary>Only a domain name could match, and packets do not say which names an address had.</summary>
    NotJudgeable,
}

internal enum TierPeerKind : byte
{
    Namespaces,
    Pods,
    Nodes,
    Networks,
    DomainNames,

    /// <summary>A kind's own peer test (Calico's entity rule), in <see cref="TierPeer.Condition"/>.</summary>
    Condition,

    /// <summary>A peer with no field this reader knows (a newer API): matches nothing for Accept, everything otherwise.</summary>
    Unrecognised,
}

/// <summary>One entry of a rule's <c>from</c> or <c>to</c>.</summary>
internal sealed class TierPeer
{
    private TierPeer(int index, TierPeerKind kind, CompiledSelector? namespaceSelector, CompiledSelector? podSelector, CompiledSelector? nodeSelector, IpRange[] networks, string[] domains, string text, string[]? sameLabels = null, string[]? notSameLabels = null)
    {
        SameLabels = sameLabels ?? [];
        NotSameLabels = notSameLabels ?? [];
        Index = index;
        Kind = kind;
        NamespaceSelector = namespaceSelector;
        PodSelector = podSelector;
        NodeSelector = nodeSelector;
        Networks = networks;
        Domains = domains;
        Text = text;
    }

    public int Index { get; }
    public TierPeerKind Kind { get; }
    public CompiledSelector? NamespaceSelector { get; }
    public CompiledSelector? PodSelector { get; }
    public CompiledSelector? NodeSelector { get; }
    public IpRange[] Networks { get; }

    /// <summary>v1alpha1 before v0.1.5: label keys whose values the peer's namespace shares with the subject's (or does not).</summary>
    public string[] SameLabels { get; }
    public string[] NotSameLabels { get; }
    public string[] Domains { get; }
    private string Text { get; }

    public static TierPeer ForNamespaces(int index, CompiledSelector namespaces, string[]? sameLabels = null, string[]? notSameLabels = null) =>
        new(index, TierPeerKind.Namespaces, namespaces, null, null, [], [], $"namespaces {namespaces}{SameText(sameLabels, notSameLabels)}", sameLabels, notSameLabels);

    public static TierPeer ForPods(int index, CompiledSelector namespaces, CompiledSelector pods, string[]? sameLabels = null, string[]? notSameLabels = null) =>
        new(index, TierPeerKind.Pods, namespaces, pods, null, [], [], $"pods {pods} in namespaces {namespaces}{SameText(sameLabels, notSameLabels)}", sameLabels, notSameLabels);

    private static string SameText(string[]? same, string[]? notSame) =>
        (same is { Length: > 0 } ? $" with the subject's {string.Join(",", same)}" : "") + (notSame is { Length: > 0 } ? $" without the subject's {string.Join(",", notSame)}" : "");

    public static TierPeer ForNodes(int index, CompiledSelector nodes) => new(index, TierPeerKind.Nodes, null, null, nodes, [], [], $"nodes {nodes}");

    public static TierPeer ForNetworks(int index, IpRange[] networks) => new(index, TierPeerKind.Networks, null, null, null, networks, [], $"networks {string.Join(",", networks.Select(n => n.Text))}");

    public static TierPeer ForDomainNames(int index, string[] domains) => new(index, TierPeerKind.DomainNames, null, null, null, [], domains, $"domainNames {string.Join(",", domains)}");

    /// <summary>A peer a kind tests itself; <paramref name="networks"/> are the addresses its answer depends on (the engine classes them).</summary>
    public static TierPeer ForCondition(int index, TierPeerCondition condition, IpRange[] networks) =>
        new(index, TierPeerKind.Condition, null, null, null, networks, [], condition.ToString() ?? "") { Condition = condition };

    public TierPeerCondition? Condition { get; private init; }

    public static TierPeer ForUnrecognised(int index, string fields) => new(index, TierPeerKind.Unrecognised, null, null, null, [], [], $"a peer of unknown kind ({fields})");

    public PeerMatch Match(in PeerView peer, RuleAction action)
    {
        switch (Kind)
        {
            case TierPeerKind.Namespaces:
                // Host-network pods are neither subjects nor namespace or pod peers: PeerView carries no pod for them.
                return peer.Pod is not null && peer.NamespaceLabels is { } nsLabels && NamespaceSelector!.Matches(nsLabels) && SameAsSubject(in peer, nsLabels) ? PeerMatch.Yes : PeerMatch.No;
            case TierPeerKind.Pods:
                return peer.Pod is { } pod && peer.NamespaceLabels is { } podNs && NamespaceSelector!.Matches(podNs) && PodSelector!.Matches(pod.Labels) && SameAsSubject(in peer, podNs) ? PeerMatch.Yes : PeerMatch.No;
            case TierPeerKind.Nodes:
                return peer.NodeLabels is { } nodeLabels && NodeSelector!.Matches(nodeLabels) ? PeerMatch.Yes : PeerMatch.No;
            case TierPeerKind.Networks:
                // Addresses of pods too: "cluster-internal traffic will be checked against the rule as well".
                foreach (var network in Networks)
                {
                    if (network.Contains(peer.Ip)) return PeerMatch.Yes;
                }
                return PeerMatch.No;
            case TierPeerKind.Condition:
                return Condition!.Match(in peer);
            case TierPeerKind.DomainNames:
                // A pod of the cluster is not reached by an outside name; anything else might be.
                return peer.Pod is null ? PeerMatch.NotJudgeable : PeerMatch.No;
            default:
                // Fail closed, as the API asks of an implementation that reads a peer it does not know.
                return action == RuleAction.Accept ? PeerMatch.No : PeerMatch.Yes;
        }
    }

    private bool SameAsSubject(in PeerView peer, LabelSet peerNamespace)
    {
        if (SameLabels.Length == 0 && NotSameLabels.Length == 0) return true;
        var subject = peer.SubjectNamespaceLabels ?? LabelSet.Empty;
        foreach (string key in SameLabels)
        {
            // A key the subject's namespace lacks matches no namespace.
            if (!subject.TryGetValue(key, out var mine) || !peerNamespace.TryGetValue(key, out var theirs) || !string.Equals(mine, theirs, StringComparison.Ordinal)) return false;
        }
        foreach (string key in NotSameLabels)
        {
            if (!subject.TryGetValue(key, out var mine)) return false;
            if (peerNamespace.TryGetValue(key, out var theirs) && string.Equals(mine, theirs, StringComparison.Ordinal)) return false;
        }
        return true;
    }

    /// <summary>Why the peer does or does not take the other end, in one clause.</summary>
    public string Describe(in PeerView peer, string peerName, RuleAction action)
    {
        var match = Match(in peer, action);
        string verb = match switch { PeerMatch.Yes => "matches", PeerMatch.NotJudgeable => "might match", _ => "does not match" };
        string why = Kind switch
        {
            TierPeerKind.Namespaces or TierPeerKind.Pods when peer.Pod is null => " (not a pod of the cluster, or a host-network pod)",
            TierPeerKind.Nodes when peer.NodeLabels is null => " (not a node's address)",
            TierPeerKind.DomainNames => match == PeerMatch.NotJudgeable ? " (packets do not say which names the address had)" : " (a pod of the cluster)",
            TierPeerKind.Unrecognised => action == RuleAction.Accept ? " (fails closed: an Accept rule matches nothing)" : " (fails closed: a Deny or Pass rule matches everything)",
            _ => "",
        };
        return $"{peerName} {verb} {Text}{why}";
    }

    public override string ToString() => Text;
}

/// <summary>
/// A protocols or ports entry: a protocol with a destination port or an inclusive range, or a named port, which the
/// destination pod's containers resolve (number and protocol both).
/// </summary>
internal sealed class TierPort(PolicyProtocol protocol, int start, int end, string? name)
{
    public PolicyProtocol Protocol { get; } = protocol;
    public int Start { get; } = start;
    public int End { get; } = end;

    /// <summary>A container port's name; then <see cref="Protocol"/> is not used.</summary>
    public string? Name { get; } = name;

    public bool Matches(PodInfo? destinationPod, int port, PolicyProtocol protocol)
    {
        if (protocol > PolicyProtocol.SCTP) return false;
        if (Name is null) return protocol == Protocol && port >= Start && port <= End;
        // The container port names the protocol too: the flow's own is the one to look for.
        return CompiledPort.Declares(destinationPod, Name, port, protocol);
    }

    public override string ToString()
    {
        if (Name is not null) return $"named port {Name}";
        string proto = CompiledPort.ProtocolName(Protocol);
        return End > Start ? $"{Start}-{End}/{proto}" : $"{Start}/{proto}";
    }
}

/// <summary>The tier policies that select one (namespace, labels) identity: per tier and direction, in walking order.</summary>
internal sealed class TierSelection(int tiers)
{
    private readonly List<(TierPolicy Policy, int Index, int Tier)> _policies = [];
    private readonly int[][] _ingress = new int[tiers][];
    private readonly int[][] _egress = new int[tiers][];
    private bool _anyIngress, _anyEgress;

    public void Add(TierPolicy policy, int index, int tier) => _policies.Add((policy, index, tier));

    public TierSelection Build()
    {
        for (int t = 0; t < _ingress.Length; t++)
        {
            // A policy applies to a direction it has rules for, or declares (Calico's types): only then can the tier's end apply.
            _ingress[t] = [.. _policies.Where(p => p.Tier == t && p.Policy.Applies(PolicyDirection.Ingress)).Select(p => p.Index)];
            _egress[t] = [.. _policies.Where(p => p.Tier == t && p.Policy.Applies(PolicyDirection.Egress)).Select(p => p.Index)];
            _anyIngress |= _ingress[t].Length > 0;
            _anyEgress |= _egress[t].Length > 0;
        }
        return this;
    }

    public int[] For(int tier, PolicyDirection direction) => direction == PolicyDirection.Ingress ? _ingress[tier] : _egress[tier];

    public bool Any(PolicyDirection direction) => direction == PolicyDirection.Ingress ? _anyIngress : _anyEgress;

    /// <summary>The keys of the tier policies applying for <paramref name="direction"/>, in tiers before (or after) NetworkPolicies.</summary>
    public IEnumerable<string> Names(PolicyDirection direction, bool beforeNetworkPolicies) =>
        _policies.Where(p => p.Policy.Applies(direction) && (p.Policy.Tier.Order < PolicyTier.Default.Order || (p.Policy.Tier == PolicyTier.Default && p.Policy.Order <= PolicyTier.NetworkPolicyOrder)) == beforeNetworkPolicies)
            .Select(p => p.Policy.Key);
}
