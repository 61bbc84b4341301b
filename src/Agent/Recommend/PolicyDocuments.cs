using System.Globalization;
using System.Net;
using Tripline.Correlation.Cluster;

namespace Tripline.Recommend;

/// <summary>The policy kinds recommend writes.</summary>
internal enum RecommendKind : byte
{
    NetworkPolicy,
    ClusterNetworkPolicy,
    Calico,
}

/// <summary>One document to write: its file's name and the object.</summary>
internal sealed record PolicyDocument(string FileName, DocMap Object);

/// <summary>
/// Writes the recommended policies as documents of one kind, every list sorted: peers by kind then labels or address,
/// ports by protocol then number, rules by their first peer, so that the same traffic gives the same bytes.
/// </summary>
internal static class PolicyDocuments
{
    public const string Annotation = "tripline.dev/";
    private const string NamespaceNameLabel = "kubernetes.io/metadata.name";
    /// <summary>The priority of recommended ClusterNetworkPolicies in the Admin tier (0 is first, 1000 last).</summary>
    public const int AdminPriority = 500;

    public static List<PolicyDocument> Render(IReadOnlyList<WorkloadPolicy> policies, IReadOnlyList<string> defaultDenyNamespaces, RecommendKind kind, bool mergeCidrs)
    {
        var documents = new List<PolicyDocument>();
        foreach (string ns in defaultDenyNamespaces)
        {
            documents.Add(new PolicyDocument($"{ns}.default-deny", kind switch
            {
                RecommendKind.Calico => CalicoDefaultDeny(ns),
                RecommendKind.ClusterNetworkPolicy => BaselineDefaultDeny(ns),
                _ => DefaultDeny(ns),
            }));
        }
        foreach (var policy in policies)
        {
            documents.Add(new PolicyDocument($"{policy.Namespace}.{policy.Name}", kind switch
            {
                RecommendKind.Calico => Calico(policy, mergeCidrs),
                RecommendKind.ClusterNetworkPolicy => Cluster(policy, mergeCidrs),
                _ => Kubernetes(policy, mergeCidrs),
            }));
        }
        return [.. documents.OrderBy(d => d.FileName, StringComparer.Ordinal)];
    }

    private static DocMap Metadata(string name, string? ns, WorkloadPolicy? policy, string? what)
    {
        var annotations = new DocMap();
        if (policy is not null)
        {
            annotations.Set(Annotation + "recommended-for", $"{policy.Namespace}/{policy.Workload}");
            annotations.Set(Annotation + "flows", policy.Flows.ToString(CultureInfo.InvariantCulture));
            annotations.Set(Annotation + "period", $"{policy.First}/{policy.Last}");
            annotations.Set(Annotation + "nodes", string.Join(",", policy.Nodes));
            if (policy.Notes.Count > 0) annotations.Set(Annotation + "notes", string.Join("; ", policy.Notes));
        }
        if (what is not null) annotations.Set(Annotation + "recommended-for", what);
        annotations.Set(Annotation + "generated-by", "tripline recommend");
        return new DocMap().Set("name", name).Set("namespace", ns).Set("annotations", annotations);
    }

    private static DocMap MatchLabels(IEnumerable<KeyValuePair<string, string>> labels)
    {
        var match = new DocMap();
        foreach (var (key, value) in labels.OrderBy(l => l.Key, StringComparer.Ordinal)) match.Set(key, value);
        return match.Count == 0 ? new DocMap() : new DocMap().Set("matchLabels", match);
    }

    private static DocMap NamespaceSelector(string ns) => MatchLabels([new(NamespaceNameLabel, ns)]);

    private static List<object> List(IEnumerable<object> items) => [.. items];

    /// <summary>Peers grouped by the ports they use: one rule per distinct set of ports, its peers sorted.</summary>
    private static IEnumerable<(List<Peer> Peers, List<PortSpec> Ports, bool AllPorts)> Rules(SortedDictionary<string, PeerPorts> peers, bool portsNameIcmp)
    {
        return peers.Values
            .Select(p => (Peer: p.Peer, Ports: p.Ports.ToList(), All: !portsNameIcmp && p.Ports.Any(IsIcmp)))
            .Select(p => (p.Peer, Ports: p.All ? [] : p.Ports, p.All))
            .GroupBy(p => (Key: p.All ? "*" : string.Join(",", p.Ports), p.All))
            .Select(g => (Peers: g.Select(p => p.Peer).ToList(), Ports: g.First().Ports, AllPorts: g.Key.All))
            .OrderBy(r => r.Peers[0].Key, StringComparer.Ordinal);
    }

    private static bool IsIcmp(PortSpec port) => port.Protocol is "ICMP" or "ICMPv6";

    /// <summary>Addresses as CIDRs: one each, or merged.</summary>
    private static IReadOnlyList<string> Cidrs(IEnumerable<IPAddress> addresses, bool merge) => merge ? CidrMerge.Merge(addresses) : CidrMerge.Singles(addresses);

    // networking.k8s.io/v1 NetworkPolicy

    private static DocMap DefaultDeny(string ns) => new DocMap()
        .Set("apiVersion", "networking.k8s.io/v1").Set("kind", "NetworkPolicy")
        .Set("metadata", Metadata("default-deny", ns, null, $"every pod of {ns}: what no other policy allows is denied"))
        .Set("spec", new DocMap().Set("podSelector", new DocMap()).Set("policyTypes", List(["Ingress", "Egress"])));

    private static DocMap Kubernetes(WorkloadPolicy policy, bool mergeCidrs)
    {
        var spec = new DocMap()
            .Set("podSelector", MatchLabels(policy.Subject.Labels))
            .Set("policyTypes", List(["Ingress", "Egress"]));
        var ingress = KubernetesRules(policy, policy.Ingress, "from", mergeCidrs);
        var egress = KubernetesRules(policy, policy.Egress, "to", mergeCidrs);
        if (ingress.Count > 0) spec.Set("ingress", ingress);
        if (egress.Count > 0) spec.Set("egress", egress);
        return new DocMap().Set("apiVersion", "networking.k8s.io/v1").Set("kind", "NetworkPolicy")
            .Set("metadata", Metadata(policy.Name, policy.Namespace, policy, null)).Set("spec", spec);
    }

    private static List<object> KubernetesRules(WorkloadPolicy policy, SortedDictionary<string, PeerPorts> peers, string field, bool mergeCidrs)
    {
        var rules = new List<object>();
        foreach (var (group, ports, allPorts) in Rules(peers, portsNameIcmp: false))
        {
            var list = new List<object>();
            foreach (var peer in group.Where(p => p.Address is null))
            {
                var selector = new DocMap();
                if (peer.Namespace != policy.Namespace) selector.Set("namespaceSelector", NamespaceSelector(peer.Namespace));
                selector.Set("podSelector", MatchLabels(peer.Pods!.Labels));
                list.Add(selector);
            }
            foreach (string cidr in Cidrs(group.Where(p => p.Address is not null).Select(p => p.Address!), mergeCidrs))
            {
                list.Add(new DocMap().Set("ipBlock", new DocMap().Set("cidr", cidr)));
            }
            var rule = new DocMap().Set(field, list);
            if (!allPorts) rule.Set("ports", List(ports.Select(p => (object)new DocMap().Set("port", p.Name is { } name ? name : p.Number).Set("protocol", p.Protocol))));
            else policy.Notes.Add($"{(field == "from" ? "ingress from" : "egress to")} {string.Join(", ", group.Select(Describe))} carries ICMP, which NetworkPolicy cannot name: its rule allows every port");
            rules.Add(rule);
        }
        return rules;
    }

    private static string Describe(Peer peer) => peer.Address?.ToString() ?? $"{peer.Namespace}/{peer.Pods!.Text}";

    // projectcalico.org/v3 NetworkPolicy

    private static string CalicoSelector(IEnumerable<KeyValuePair<string, string>> labels)
    {
        var terms = labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key} == '{l.Value}'").ToList();
        return terms.Count == 0 ? "all()" : string.Join(" && ", terms);
    }

    private static DocMap CalicoDefaultDeny(string ns) => new DocMap()
        .Set("apiVersion", "projectcalico.org/v3").Set("kind", "NetworkPolicy")
        .Set("metadata", Metadata("default-deny", ns, null, $"every endpoint of {ns}: what no other policy of the tier allows is denied"))
        .Set("spec", new DocMap().Set("selector", "all()").Set("types", List(["Ingress", "Egress"])));

    private static DocMap Calico(WorkloadPolicy policy, bool mergeCidrs)
    {
        var spec = new DocMap()
            .Set("selector", CalicoSelector(policy.Subject.Labels))
            .Set("types", List(["Ingress", "Egress"]));
        var ingress = CalicoRules(policy, policy.Ingress, ingress: true, mergeCidrs);
        var egress = CalicoRules(policy, policy.Egress, ingress: false, mergeCidrs);
        if (ingress.Count > 0) spec.Set("ingress", ingress);
        if (egress.Count > 0) spec.Set("egress", egress);
        return new DocMap().Set("apiVersion", "projectcalico.org/v3").Set("kind", "NetworkPolicy")
            .Set("metadata", Metadata(policy.Name, policy.Namespace, policy, null)).Set("spec", spec);
    }

    /// <summary>Calico's rules name one protocol and one selector each: a rule per peer and protocol, addresses sharing one.</summary>
    private static List<object> CalicoRules(WorkloadPolicy policy, SortedDictionary<string, PeerPorts> peers, bool ingress, bool mergeCidrs)
    {
        var rules = new List<(string Sort, DocMap Rule)>();
        var byProtocol = peers.Values.SelectMany(p => p.Ports.GroupBy(port => port.Protocol).Select(g => (p.Peer, Protocol: g.Key, Ports: g.ToList())));
        foreach (var (peer, protocol, ports) in byProtocol.Where(r => r.Peer.Address is null))
        {
            var entity = new DocMap().Set("selector", CalicoSelector(peer.Pods!.Labels));
            if (peer.Namespace != policy.Namespace) entity.Set("namespaceSelector", $"projectcalico.org/name == '{peer.Namespace}'");
            rules.Add(($"{peer.Key}|{protocol}", CalicoRule(protocol, ports, entity, ingress)));
        }
        foreach (var group in byProtocol.Where(r => r.Peer.Address is not null).GroupBy(r => (r.Protocol, Ports: string.Join(",", r.Ports))))
        {
            var entity = new DocMap().Set("nets", List(Cidrs(group.Select(r => r.Peer.Address!), mergeCidrs)));
            rules.Add(($"~ip|{group.Key.Protocol}|{group.Key.Ports}|{group.First().Peer.Key}", CalicoRule(group.Key.Protocol, group.First().Ports, entity, ingress)));
        }
        return [.. rules.OrderBy(r => r.Sort, StringComparer.Ordinal).Select(r => (object)r.Rule)];
    }

    private static DocMap CalicoRule(string protocol, List<PortSpec> ports, DocMap peer, bool ingress)
    {
        var local = new DocMap();
        if (!IsIcmp(ports[0])) local.Set("ports", List(ports.OrderBy(p => p).Select(p => p.Name is { } name ? (object)name : p.Number)));
        var rule = new DocMap().Set("action", "Allow").Set("protocol", protocol);
        if (ingress) rule.Set("source", peer).Set("destination", local);
        else
        {
            foreach (var (key, value) in local) peer.Set(key, value);
            rule.Set("destination", peer);
        }
        return rule;
    }

    // policy.networking.k8s.io/v1alpha2 ClusterNetworkPolicy

    private static DocMap BaselineDefaultDeny(string ns) => new DocMap()
        .Set("apiVersion", "policy.networking.k8s.io/v1alpha2").Set("kind", "ClusterNetworkPolicy")
        .Set("metadata", Metadata($"default-deny-{ns}", null, null, $"every pod of {ns}: what no policy of a higher tier allows is denied"))
        .Set("spec", new DocMap()
            .Set("tier", "Baseline").Set("priority", 0)
            .Set("subject", new DocMap().Set("namespaces", NamespaceSelector(ns)))
            .Set("ingress", List([new DocMap().Set("name", "deny-all").Set("action", "Deny").Set("from", List([new DocMap().Set("namespaces", new DocMap())]))]))
            .Set("egress", List([new DocMap().Set("name", "deny-all").Set("action", "Deny").Set("to", List([
                new DocMap().Set("namespaces", new DocMap()),
                new DocMap().Set("networks", List(["0.0.0.0/0", "::/0"])),
            ]))])));

    private static DocMap Cluster(WorkloadPolicy policy, bool mergeCidrs)
    {
        var spec = new DocMap()
            .Set("tier", "Admin").Set("priority", AdminPriority)
            .Set("subject", new DocMap().Set("pods", new DocMap().Set("namespaceSelector", NamespaceSelector(policy.Namespace)).Set("podSelector", MatchLabels(policy.Subject.Labels))));
        var ingress = ClusterRules(policy, policy.Ingress, "from", mergeCidrs);
        var egress = ClusterRules(policy, policy.Egress, "to", mergeCidrs);
        if (ingress.Count > 0) spec.Set("ingress", ingress);
        if (egress.Count > 0) spec.Set("egress", egress);
        return new DocMap().Set("apiVersion", "policy.networking.k8s.io/v1alpha2").Set("kind", "ClusterNetworkPolicy")
            .Set("metadata", Metadata($"{policy.Name}-{policy.Namespace}", null, policy, null)).Set("spec", spec);
    }

    private static List<object> ClusterRules(WorkloadPolicy policy, SortedDictionary<string, PeerPorts> peers, string field, bool mergeCidrs)
    {
        var rules = new List<object>();
        foreach (var (group, ports, allPorts) in Rules(peers, portsNameIcmp: false))
        {
            var list = new List<object>();
            foreach (var peer in group.Where(p => p.Address is null))
            {
                list.Add(new DocMap().Set("pods", new DocMap().Set("namespaceSelector", NamespaceSelector(peer.Namespace)).Set("podSelector", MatchLabels(peer.Pods!.Labels))));
            }
            var addresses = group.Where(p => p.Address is not null).Select(p => p.Address!).ToList();
            if (addresses.Count > 0)
            {
                // A ClusterNetworkPolicy names addresses as egress peers only: ingress from outside is left to the other tiers.
                if (field == "to") list.Add(new DocMap().Set("networks", List(Cidrs(addresses, mergeCidrs))));
                else policy.Notes.Add($"ingress from {string.Join(", ", CidrMerge.Singles(addresses))}: a ClusterNetworkPolicy names no address as an ingress peer, so it is left to the tiers below");
            }
            if (list.Count == 0) continue;
            var rule = new DocMap().Set("action", "Accept").Set(field, list);
            if (!allPorts)
            {
                // The engine, as the API, reads a named port as TCP: other protocols are named by number.
                rule.Set("protocols", List(ports.Select(p => (object)(p.Name is { } name && p.Protocol == "TCP"
                    ? new DocMap().Set("destinationNamedPort", name)
                    : new DocMap().Set(p.Protocol.ToLowerInvariant(), new DocMap().Set("destinationPort", new DocMap().Set("number", p.Number)))))));
            }
            else policy.Notes.Add($"{(field == "from" ? "ingress from" : "egress to")} {string.Join(", ", group.Select(Describe))} carries ICMP, which a ClusterNetworkPolicy cannot name: its rule accepts every port");
            rules.Add(rule);
        }
        return rules;
    }
}
