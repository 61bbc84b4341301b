using k8s.Models;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;

namespace Tripline.Correlation.Policy;

/// <summary>The other end of a flow as a rule's peers see it: a pod (by labels and namespace) and always an IP.</summary>
internal readonly struct PeerView
{
    public PeerView(PodInfo? pod, LabelSet? namespaceLabels, IpKey ip, LabelSet? nodeLabels = null, LabelSet? subjectNamespaceLabels = null, LabelSet? identity = null, LabelledNetwork[]? networks = null)
    {
        Identity = identity;
        Networks = networks ?? [];
        Pod = pod;
        NamespaceLabels = namespaceLabels;
        Ip = ip;
        NodeLabels = nodeLabels;
        SubjectNamespaceLabels = subjectNamespaceLabels;
    }

    /// <summary>Null when the peer is not a pod that selectors can see (a node, an external address, a host-network pod).</summary>
    public PodInfo? Pod { get; }
    public LabelSet? NamespaceLabels { get; }
    public IpKey Ip { get; }

    /// <summary>The labels of the node whose address <see cref="Ip"/> is (a node, or a host-network pod); null otherwise.</summary>
    public LabelSet? NodeLabels { get; }

    /// <summary>The namespace labels of the pod whose side is judged (for peers that compare namespaces with it).</summary>
    public LabelSet? SubjectNamespaceLabels { get; }

    /// <summary>The pod's labels as a selector language with inherited labels sees them (Calico's); null when not a pod.</summary>
    public LabelSet? Identity { get; }

    /// <summary>The labelled networks (Calico's network sets) whose addresses hold <see cref="Ip"/>.</summary>
    public LabelledNetwork[] Networks { get; }
}

/// <summary>
/// Addresses that selectors select by labels, as they select pods (Calico's NetworkSet and GlobalNetworkSet).
/// <paramref name="Labels"/> are as the selectors see them: a namespaced set's carry its namespace's.
/// </summary>
internal sealed record LabelledNetwork(string Key, string? Namespace, LabelSet Labels, IpRange[] Ranges)
{
    public bool Contains(IpKey ip)
    {
        foreach (var range in Ranges)
        {
            if (range.Contains(ip)) return true;
        }
        return false;
    }
}

/// <summary>One NetworkPolicy compiled for evaluation: selectors parsed, CIDRs as ranges, defaults applied.</summary>
internal sealed class CompiledPolicy
{
    private CompiledPolicy(string ns, string key, CompiledSelector podSelector, bool ingress, bool egress, bool typesInferred, CompiledRule[] ingressRules, CompiledRule[] egressRules)
    {
        Namespace = ns;
        Key = key;
        PodSelector = podSelector;
        AffectsIngress = ingress;
        AffectsEgress = egress;
        TypesInferred = typesInferred;
        IngressRules = ingressRules;
        EgressRules = egressRules;
    }

    public string Namespace { get; }

    /// <summary><c>namespace/name</c>, as verdicts and metrics name it (a staged one, <c>StagedKubernetesNetworkPolicy/namespace/name</c>).</summary>
    public string Key { get; }
    public CompiledSelector PodSelector { get; }
    public bool AffectsIngress { get; }
    public bool AffectsEgress { get; }

    /// <summary>policyTypes was absent and was derived from the rules, as the API server's defaulting does.</summary>
    public bool TypesInferred { get; }
    public CompiledRule[] IngressRules { get; }
    public CompiledRule[] EgressRules { get; }

    public bool HasNamedPorts => IngressRules.Concat(EgressRules).Any(r => r.Ports.Any(p => p.Name is not null));

    public IEnumerable<IpRange> IpRanges => IngressRules.Concat(EgressRules).SelectMany(r => r.Peers).SelectMany(p => p.IpRanges);

    public static CompiledPolicy Compile(V1NetworkPolicy policy, string? key = null)
    {
        string ns = string.IsNullOrEmpty(policy.Metadata?.NamespaceProperty) ? "default" : policy.Metadata.NamespaceProperty;
        string name = policy.Metadata?.Name ?? "";
        var spec = policy.Spec ?? new V1NetworkPolicySpec();
        bool inferred = spec.PolicyTypes is not { Count: > 0 };
        // Defaulting as in the API server: Ingress always, Egress only when the policy has egress rules.
        bool ingress = inferred || spec.PolicyTypes!.Contains("Ingress");
        bool egress = inferred ? spec.Egress is { Count: > 0 } : spec.PolicyTypes!.Contains("Egress");
        var ingressRules = (spec.Ingress ?? []).Select((r, i) => CompiledRule.Compile(i, ns, r.FromProperty, r.Ports)).ToArray();
        var egressRules = (spec.Egress ?? []).Select((r, i) => CompiledRule.Compile(i, ns, r.To, r.Ports)).ToArray();
        return new CompiledPolicy(ns, key ?? $"{ns}/{name}", CompiledSelector.Compile(spec.PodSelector), ingress, egress, inferred, ingressRules, egressRules);
    }

    public CompiledRule[] Rules(PolicyDirection direction) => direction == PolicyDirection.Ingress ? IngressRules : EgressRules;

    /// <summary>Whether any rule for <paramref name="direction"/> admits the peer on this port.</summary>
    public bool Allows(PolicyDirection direction, in PeerView peer, PodInfo? destinationPod, int port, PolicyProtocol protocol)
    {
        foreach (var rule in Rules(direction))
        {
            if (rule.MatchesPort(destinationPod, port, protocol) && rule.MatchesPeer(in peer)) return true;
        }
        return false;
    }
}

/// <summary>One ingress or egress rule: a flow matches when one peer and one port match (no peers or no ports: any).</summary>
internal sealed class CompiledRule
{
    private CompiledRule(int index, CompiledPeer[] peers, CompiledPort[] ports)
    {
        Index = index;
        Peers = peers;
        Ports = ports;
    }

    public int Index { get; }

    /// <summary>Empty when the rule has no from/to (or an empty list): every source or destination.</summary>
    public CompiledPeer[] Peers { get; }

    /// <summary>Empty when the rule has no ports: every port and every protocol, ICMP included.</summary>
    public CompiledPort[] Ports { get; }

    public static CompiledRule Compile(int index, string policyNamespace, IList<V1NetworkPolicyPeer>? peers, IList<V1NetworkPolicyPort>? ports) =>
        new(index, [.. (peers ?? []).Select((p, i) => CompiledPeer.Compile(i, policyNamespace, p))], [.. (ports ?? []).Select(CompiledPort.Compile)]);

    public bool MatchesPeer(in PeerView peer)
    {
        if (Peers.Length == 0) return true;
        foreach (var candidate in Peers)
        {
            if (candidate.Matches(in peer)) return true;
        }
        return false;
    }

    public bool MatchesPort(PodInfo? destinationPod, int port, PolicyProtocol protocol)
    {
        if (Ports.Length == 0) return true;
        foreach (var candidate in Ports)
        {
            if (candidate.Matches(destinationPod, port, protocol)) return true;
        }
        return false;
    }
}

/// <summary>A from/to entry: an ipBlock, or pod and/or namespace selectors (both in one peer: AND).</summary>
internal sealed class CompiledPeer
{
    private CompiledPeer(int index, string policyNamespace, CompiledSelector? podSelector, CompiledSelector? namespaceSelector, IpRange? block, IpRange[] except)
    {
        Index = index;
        PolicyNamespace = policyNamespace;
        PodSelector = podSelector;
        NamespaceSelector = namespaceSelector;
        Block = block;
        Except = except;
    }

    public int Index { get; }
    public string PolicyNamespace { get; }
    public CompiledSelector? PodSelector { get; }

    /// <summary>Null means the policy's own namespace; <c>{}</c> means every namespace.</summary>
    public CompiledSelector? NamespaceSelector { get; }
    public IpRange? Block { get; }
    public IpRange[] Except { get; }

    public IEnumerable<IpRange> IpRanges => Block is { } block ? Except.Prepend(block) : [];

    public static CompiledPeer Compile(int index, string policyNamespace, V1NetworkPolicyPeer peer)
    {
        if (peer.IpBlock is { } ipBlock)
        {
            // The validator refuses bad CIDRs; a block that still fails to parse matches nothing (0/0 would be fail-open).
            IpRange? block = IpRange.TryParse(ipBlock.Cidr, out var range) ? range : null;
            var except = (ipBlock.Except ?? []).Select(e => IpRange.TryParse(e, out var r) ? r : (IpRange?)null).Where(r => r is not null).Select(r => r!.Value).ToArray();
            return new CompiledPeer(index, policyNamespace, null, null, block ?? new IpRange(IpKey.MaxValue, IpKey.Zero, ipBlock.Cidr ?? ""), except);
        }
        return new CompiledPeer(index, policyNamespace,
            peer.PodSelector is null ? null : CompiledSelector.Compile(peer.PodSelector),
            peer.NamespaceSelector is null ? null : CompiledSelector.Compile(peer.NamespaceSelector),
            null, []);
    }

    public bool Matches(in PeerView peer)
    {
        if (Block is { } block)
        {
            // ipBlock sees addresses, pods included: the upstream conformance suite expects a pod's IP in a block to match.
            if (!block.Contains(peer.Ip)) return false;
            foreach (var except in Except)
            {
                if (except.Contains(peer.Ip)) return false;
            }
            return true;
        }
        var pod = peer.Pod;
        if (pod is null) return false;
        if (NamespaceSelector is null)
        {
            if (!string.Equals(pod.Namespace, PolicyNamespace, StringComparison.Ordinal)) return false;
        }
        else if (peer.NamespaceLabels is null || !NamespaceSelector.Matches(peer.NamespaceLabels))
        {
            return false;
        }
        return PodSelector is null || PodSelector.Matches(pod.Labels);
    }

    /// <summary>The peer as a person would write it.</summary>
    public override string ToString()
    {
        if (Block is { } block) return Except.Length == 0 ? $"ipBlock {block.Text}" : $"ipBlock {block.Text} except {string.Join(",", Except.Select(e => e.Text))}";
        string ns = NamespaceSelector is null ? $"namespace {PolicyNamespace}" : $"namespaceSelector {NamespaceSelector}";
        string pods = PodSelector is null ? "any pod" : $"podSelector {PodSelector}";
        return $"{ns} and {pods}";
    }

    /// <summary>Why the peer does or does not match, in one clause.</summary>
    public string Describe(in PeerView peer, string peerName)
    {
        if (Block is { } block)
        {
            string ip = peer.Ip.ToIPAddress().ToString();
            if (!block.Contains(peer.Ip)) return $"{ip} is outside {block.Text}";
            foreach (var except in Except)
            {
                if (except.Contains(peer.Ip)) return $"{ip} is in {block.Text} but excepted by {except.Text}";
            }
            return $"{ip} is in {block.Text}";
        }
        var pod = peer.Pod;
        if (pod is null) return $"{peerName} is not a pod, and only ipBlocks match nodes and external addresses";
        if (NamespaceSelector is null)
        {
            if (!string.Equals(pod.Namespace, PolicyNamespace, StringComparison.Ordinal)) return $"no namespaceSelector, so only pods of {PolicyNamespace} match, and {pod.Key} is in {pod.Namespace}";
        }
        else if (peer.NamespaceLabels is null)
        {
            return $"namespace {pod.Namespace} is unknown, so namespaceSelector {NamespaceSelector} cannot match it";
        }
        else if (NamespaceSelector.FirstMismatch(peer.NamespaceLabels) is { } nsMiss)
        {
            return $"namespace {pod.Namespace} does not match namespaceSelector {NamespaceSelector} (fails {nsMiss})";
        }
        if (PodSelector is not null && PodSelector.FirstMismatch(pod.Labels) is { } podMiss)
        {
            return $"{pod.Key} does not match podSelector {PodSelector} (fails {podMiss}; pod labels: {(pod.Labels.Count == 0 ? "none" : pod.Labels.ToString())})";
        }
        return $"{pod.Key} matches {this}";
    }
}

/// <summary>A ports entry: protocol (TCP when absent), and a number, a number range, a name, or nothing (all ports).</summary>
internal sealed class CompiledPort
{
    private CompiledPort(PolicyProtocol protocol, int port, int endPort, string? name)
    {
        Protocol = protocol;
        Port = port;
        EndPort = endPort;
        Name = name;
    }

    public PolicyProtocol Protocol { get; }

    /// <summary>0 when the entry names no port: every port of the protocol.</summary>
    public int Port { get; }
    public int EndPort { get; }
    public string? Name { get; }

    public static CompiledPort Compile(V1NetworkPolicyPort port)
    {
        var protocol = port.Protocol switch
        {
            null or "" or "TCP" => PolicyProtocol.TCP,
            "UDP" => PolicyProtocol.UDP,
            "SCTP" => PolicyProtocol.SCTP,
            // Unknown protocols are refused by the validator; Other never matches a flow's TCP/UDP/SCTP.
            _ => PolicyProtocol.Other,
        };
        string? value = port.Port?.Value;
        if (string.IsNullOrEmpty(value)) return new CompiledPort(protocol, 0, 0, null);
        if (int.TryParse(value, out int number)) return new CompiledPort(protocol, number, port.EndPort is { } end && end >= number ? end : number, null);
        return new CompiledPort(protocol, -1, -1, value);
    }

    public bool Matches(PodInfo? destinationPod, int port, PolicyProtocol protocol)
    {
        // A ports entry always carries a protocol (TCP by default), so ICMP and other protocols never match it.
        if (protocol != Protocol || protocol > PolicyProtocol.SCTP) return false;
        if (Name is null) return Port == 0 || (port >= Port && port <= EndPort);
        return ResolvesTo(destinationPod, port);
    }

    /// <summary>A named port matches when the destination pod declares that name for this protocol and number.</summary>
    private bool ResolvesTo(PodInfo? destinationPod, int port) => Declares(destinationPod, Name!, port, Protocol);

    /// <summary>
    /// Whether <paramref name="pod"/> declares <paramref name="name"/> for this port number and protocol: what a named
    /// port means in every policy kind. Two containers may declare the same name with different numbers; either is it.
    /// </summary>
    public static bool Declares(PodInfo? pod, string name, int port, PolicyProtocol protocol)
    {
        if (pod is null) return false;
        string protocolName = ProtocolName(protocol);
        foreach (var declared in pod.Ports)
        {
            if (declared.Port == port && string.Equals(declared.Name, name, StringComparison.Ordinal) && string.Equals(declared.Protocol, protocolName, StringComparison.Ordinal)) return true;
        }
        return false;
    }

    public static string ProtocolName(PolicyProtocol protocol) => protocol switch
    {
        PolicyProtocol.TCP => "TCP",
        PolicyProtocol.UDP => "UDP",
        PolicyProtocol.SCTP => "SCTP",
        PolicyProtocol.ICMP => "ICMP",
        _ => "other",
    };

    public override string ToString()
    {
        string proto = ProtocolName(Protocol);
        if (Name is not null) return $"{Name}/{proto}";
        if (Port == 0) return $"all {proto} ports";
        return EndPort > Port ? $"{Port}-{EndPort}/{proto}" : $"{Port}/{proto}";
    }

    /// <summary>What a named port resolves to on the destination pod, for explanations.</summary>
    public string DescribeResolution(PodInfo? destinationPod)
    {
        if (Name is null) return ToString();
        if (destinationPod is null) return $"{this} (the destination is not a pod, so a named port matches nothing)";
        string protocolName = ProtocolName(Protocol);
        var numbers = destinationPod.Ports.Where(p => string.Equals(p.Name, Name, StringComparison.Ordinal) && string.Equals(p.Protocol, protocolName, StringComparison.Ordinal)).Select(p => p.Port).Distinct().ToList();
        return numbers.Count == 0
            ? $"{this} ({destinationPod.Key} declares no {protocolName} port named {Name})"
            : $"{this} (= {string.Join(" or ", numbers)} on {destinationPod.Key})";
    }
}
