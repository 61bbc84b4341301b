using System.Net;
using System.Text;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Policy;
using Tripline.WhatIf;

namespace Tripline.Recommend;

/// <summary>
/// Turns observed endpoint pairs into one policy per workload of the namespaces asked for: ingress from every peer
/// seen reaching it, egress to every peer it was seen reaching, each on the ports seen, plus the DNS egress every pod
/// needs. Peers are workloads by their stable labels (a Service by its backends, on the ports the backends serve),
/// nodes and outside addresses by ipBlock.
/// </summary>
internal sealed class RecommendationBuilder
{
    private readonly ClusterSnapshot _cluster;
    private readonly ClusterModel _model;
    private readonly ClusterIndex _index;
    private readonly IReadOnlySet<string>? _namespaces;
    private readonly Dictionary<(string Namespace, string Name), WorkloadFacts> _workloads = [];
    private readonly Dictionary<(string Namespace, string Name), WorkloadPolicy> _policies = [];
    private readonly Dictionary<ObservedPair, Uncovered> _uncovered = [];
    private readonly Peer _dns;
    private readonly HashSet<(string From, string To, int Port, string Protocol)> _podEdges = [];

    public RecommendationBuilder(ClusterSnapshot cluster, IReadOnlyCollection<string> namespaces)
    {
        _cluster = cluster;
        _model = ClusterModel.Build(cluster);
        _index = new ClusterIndex(cluster);
        _namespaces = namespaces.Count > 0 ? new HashSet<string>(namespaces, StringComparer.Ordinal) : null;
        foreach (var pod in cluster.Pods)
        {
            if (pod.IsTerminated || pod.HostNetwork) continue;
            var facts = Facts(pod.Namespace, WorkloadName(pod.Workload?.ToString(), pod.Name));
            facts.LabelSets.Add(pod.Labels);
            facts.Pods.Add(pod.Name);
            facts.DeclaredPorts.AddRange(pod.Ports);
            facts.Represent(pod);
        }
        // The DNS every pod needs: the kube-dns Service's pods, by its selector, else CoreDNS's usual label.
        var dnsSelector = cluster.Services.FirstOrDefault(s => s.Key == "kube-system/kube-dns")?.Selector;
        var dnsLabels = dnsSelector is { Count: > 0 } ? dnsSelector.OrderBy(l => l.Key, StringComparer.Ordinal).ToList() : [new("k8s-app", "kube-dns")];
        _dns = new Peer("kube-system", new LabelChoice(dnsLabels, null), null);
    }

    public IReadOnlyDictionary<(string Namespace, string Name), WorkloadFacts> Workloads => _workloads;
    public ClusterModel Model => _model;
    public long DeniedFlowsLeftOut { get; private set; }
    public long DeniedPairsLeftOut { get; private set; }
    public long ReplyFlows { get; private set; }

    /// <summary>The namespaces recommended for: those asked, else every namespace a pod of the traffic lives in.</summary>
    public IReadOnlyList<string> Namespaces => _namespaces is { } asked ? [.. asked.Order(StringComparer.Ordinal)]
        : [.. _policies.Keys.Select(k => k.Namespace).Distinct().Order(StringComparer.Ordinal)];

    public bool InScope(string ns) => _namespaces is null || _namespaces.Contains(ns);

    private static string WorkloadName(string? workload, string? pod) => workload is { Length: > 0 } w ? w : $"Pod/{pod}";

    private WorkloadFacts Facts(string ns, string name)
    {
        if (!_workloads.TryGetValue((ns, name), out var facts)) _workloads[(ns, name)] = facts = new WorkloadFacts(ns, name);
        return facts;
    }

    /// <summary>The pairs' ends, read once; every pod seen joins its workload's facts before any label is chosen.</summary>
    public List<ReadPair> Read(IEnumerable<ObservedPair> pairs)
    {
        var read = new List<ReadPair>();
        foreach (var pair in pairs)
        {
            var source = RecordedEndpoint.Read(pair.Source);
            var destination = RecordedEndpoint.Read(pair.Destination);
            foreach (var end in new[] { source, destination })
            {
                if (end.Kind != "pod") continue;
                var facts = Facts(end.Namespace ?? "", WorkloadName(end.Workload, end.Pod));
                facts.LabelSets.Add(LabelSet.Intern(end.Labels));
                if (end.Pod is { } name) facts.Pods.Add(name);
                if (facts.Second is null && facts.Representative?.Name != end.Pod)
                {
                    facts.Represent(new PodInfo
                    {
                        Namespace = end.Namespace ?? "",
                        Name = end.Pod ?? "",
                        Uid = end.Uid ?? "",
                        Labels = LabelSet.Intern(end.Labels),
                        Ips = end.Ip is not null && IPAddress.TryParse(end.Ip, out var ip) ? [ip] : [],
                        NodeName = end.Node,
                    });
                }
            }
            read.Add(new ReadPair(pair, source, destination));
        }
        foreach (var facts in _workloads.Values.OrderBy(f => f.Namespace, StringComparer.Ordinal).ThenBy(f => f.Name, StringComparer.Ordinal))
        {
            var others = _workloads.Values.Where(o => o.Namespace == facts.Namespace && o != facts)
                .SelectMany(o => o.LabelSets).Distinct().Select(s => s.Labels).ToList();
            facts.Labels = StableLabels.Choose([.. facts.LabelSets.Select(s => s.Labels)], others, $"{facts.Namespace}/{facts.Name}");
        }
        return read;
    }

    /// <summary>The pairs the recommendation is derived from: allowed flows whose opening was seen.</summary>
    public void Derive(IEnumerable<ReadPair> pairs, bool includeDenied)
    {
        foreach (var read in pairs)
        {
            var pair = read.Pair;
            long flows = includeDenied ? pair.Flows : pair.AllowedFlows;
            if (!includeDenied && pair.DeniedFlows > 0 && Touches(read))
            {
                DeniedFlowsLeftOut += pair.DeniedFlows;
                DeniedPairsLeftOut++;
            }
            if (flows == 0) continue;
            // A pair seen only without its opening is left to the check: if the opposite direction's rule does not
            // cover it as recorded, it is added then, and counted.
            if (pair.UnknownInitiator >= pair.Flows) continue;
            Add(read, flows, addressesOnly: false);
        }
    }

    /// <summary>Whether a pair has an end in the namespaces recommended for (a Service counts by its namespace).</summary>
    public bool Touches(ReadPair read) =>
        (read.Source.Kind == "pod" && InScope(read.Source.Namespace ?? "")) || (read.Destination.Kind is "pod" or "service" && InScope(read.Destination.Namespace ?? ""))
        || (read.Destination.Kind == "service" && read.Destination.Service is { } s && _index.FindService(s) is { } service
            && _model.ServiceBackends(service, Math.Max(0, read.Destination.Port), Protocol(read.Pair.Protocol)).Any(b => InScope(b.Pod.Namespace)));

    /// <summary>A pair the check found newly denied, added as recorded (the second round) or by address (the third).</summary>
    public void AddFromCheck(ReadPair read, bool addressesOnly)
    {
        if (read.Pair.UnknownInitiator > 0 && !addressesOnly) ReplyFlows += read.Pair.UnknownInitiator;
        Add(read, read.Pair.AllowedFlows, addressesOnly);
    }

    private static PolicyProtocol Protocol(string text) => text switch
    {
        "TCP" => PolicyProtocol.TCP,
        "UDP" => PolicyProtocol.UDP,
        "SCTP" => PolicyProtocol.SCTP,
        "ICMP" or "ICMPv6" => PolicyProtocol.ICMP,
        _ => PolicyProtocol.Other,
    };

    private void Add(ReadPair read, long flows, bool addressesOnly)
    {
        var pair = read.Pair;
        var protocol = Protocol(pair.Protocol);
        if (protocol == PolicyProtocol.Other)
        {
            Uncover(read, flows, $"protocol {pair.Protocol} is not one policies name");
            return;
        }
        bool ported = protocol <= PolicyProtocol.SCTP;
        int port = ported ? Math.Max(0, read.Destination.Port) : 0;
        var from = Identify(read.Source);
        string first = Encoding.UTF8.GetString(pair.First), last = Encoding.UTF8.GetString(pair.Last);
        if (read.Destination.Kind == "service")
        {
            if (read.Destination.Service is not { } key || _index.FindService(key) is not { } service)
            {
                Uncover(read, flows, $"Service {read.Destination.Service} is not in the cluster given: its backends, which policies judge, are unknown (pass --manifests or --kubeconfig)");
                return;
            }
            var backends = _model.ServiceBackends(service, port, protocol);
            if (backends.Count == 0 && addressesOnly)
            {
                // Without a backend the engine judges the ClusterIP itself, as an address.
                AddEdge(from, new Identity(PeerKind.External, "", "", read.Destination.Ip ?? ""), read.Source.Ip, read.Destination.Ip, port, pair.Protocol, flows, first, last, pair.Nodes, addressesOnly);
                return;
            }
            if (backends.Count == 0)
            {
                Uncover(read, flows, $"Service {key} has no ready backend for {port}/{pair.Protocol} in the cluster given");
                return;
            }
            foreach (var (pod, targetPort) in backends.DistinctBy(b => (WorkloadName(b.Pod.Workload?.ToString(), b.Pod.Name), b.Port)))
            {
                var to = new Identity(PeerKind.Pod, pod.Namespace, WorkloadName(pod.Workload?.ToString(), pod.Name), "");
                AddEdge(from, to, read.Source.Ip, pod.Ips.Count > 0 ? pod.Ips[0].ToString() : null, ported ? targetPort : 0, pair.Protocol, flows, first, last, pair.Nodes, addressesOnly);
            }
            return;
        }
        AddEdge(from, Identify(read.Destination), read.Source.Ip, read.Destination.Ip, port, pair.Protocol, flows, first, last, pair.Nodes, addressesOnly);
    }

    private void Uncover(ReadPair read, long flows, string reason)
    {
        if (Touches(read)) _uncovered[read.Pair] = new Uncovered(read.Source.Group, read.Destination.Group, Port(read), flows, reason);
    }

    public static string Port(ReadPair read) => read.Destination.Port >= 0 && Protocol(read.Pair.Protocol) <= PolicyProtocol.SCTP
        ? $"{read.Destination.Port}/{read.Pair.Protocol}" : read.Pair.Protocol;

    private static Identity Identify(RecordedEndpoint end) => end.Kind switch
    {
        "pod" => new Identity(PeerKind.Pod, end.Namespace ?? "", WorkloadName(end.Workload, end.Pod), end.Ip ?? ""),
        "node" => new Identity(PeerKind.Node, "", end.Node ?? "", end.Ip ?? ""),
        _ => new Identity(PeerKind.External, "", "", end.Ip ?? ""),
    };

    /// <summary>Workload-to-workload edges seen (namespace/workload each end), for tightness.</summary>
    public IReadOnlySet<(string From, string To, int Port, string Protocol)> PodEdges => _podEdges;

    private void AddEdge(Identity from, Identity to, string? fromIp, string? toIp, int port, string protocol, long flows, string first, string last, IEnumerable<string> nodes, bool addressesOnly)
    {
        if (from.Kind == PeerKind.Pod && to.Kind == PeerKind.Pod) _podEdges.Add((from.Display, to.Display, port, protocol));
        if (from.Kind == PeerKind.Pod && InScope(from.Namespace))
        {
            var policy = Policy(from);
            var peer = addressesOnly || to.Kind != PeerKind.Pod ? AddressPeer(toIp) : PodPeer(to);
            if (peer is not null)
            {
                var ports = Ports(policy.Egress, peer);
                ports.Ports.Add(PortOf(to, port, protocol, peer.Key == _dns.Key));
                ports.Flows += flows;
                policy.Count(flows, first, last, nodes);
            }
        }
        if (to.Kind == PeerKind.Pod && InScope(to.Namespace))
        {
            var policy = Policy(to);
            var peer = addressesOnly || from.Kind != PeerKind.Pod ? AddressPeer(fromIp) : PodPeer(from);
            if (peer is not null)
            {
                var ports = Ports(policy.Ingress, peer);
                ports.Ports.Add(PortOf(to, port, protocol, numeric: false));
                ports.Flows += flows;
                policy.Count(flows, first, last, nodes);
            }
        }
    }

    private static Peer? AddressPeer(string? ip) => ip is not null && IPAddress.TryParse(ip, out var address) ? new Peer("", null, address) : null;

    private Peer PodPeer(Identity workload)
    {
        var facts = _workloads[(workload.Namespace, workload.Name)];
        return new Peer(workload.Namespace, facts.Labels, null);
    }

    private static PeerPorts Ports(SortedDictionary<string, PeerPorts> rules, Peer peer)
    {
        if (!rules.TryGetValue(peer.Key, out var ports)) rules[peer.Key] = ports = new PeerPorts(peer);
        return ports;
    }

    /// <summary>The port as the destination's pods name it, when every pod of it that declares the number declares one name.</summary>
    private PortSpec PortOf(Identity destination, int port, string protocol, bool numeric)
    {
        if (protocol is "ICMP" or "ICMPv6") return new PortSpec(protocol, 0, null);
        if (numeric || destination.Kind != PeerKind.Pod || !_workloads.TryGetValue((destination.Namespace, destination.Name), out var facts)) return new PortSpec(protocol, port, null);
        var names = facts.DeclaredPorts.Where(p => p.Port == port && p.Protocol == protocol).Select(p => p.Name).Distinct().ToList();
        return new PortSpec(protocol, port, names is [{ Length: > 0 } name] ? name : null);
    }

    private WorkloadPolicy Policy(Identity workload)
    {
        if (!_policies.TryGetValue((workload.Namespace, workload.Name), out var policy))
        {
            var facts = _workloads[(workload.Namespace, workload.Name)];
            policy = new WorkloadPolicy(workload.Namespace, workload.Name, facts.Labels!);
            _policies[(workload.Namespace, workload.Name)] = policy;
        }
        return policy;
    }

    /// <summary>The policies, named and sorted, each with the DNS egress; and what was left uncovered.</summary>
    public (IReadOnlyList<WorkloadPolicy> Policies, IReadOnlyList<Uncovered> Uncovered) Finish()
    {
        var policies = _policies.Values.OrderBy(p => p.Namespace, StringComparer.Ordinal).ThenBy(p => p.Workload, StringComparer.Ordinal).ToList();
        foreach (var group in policies.GroupBy(p => p.Namespace))
        {
            var byName = group.GroupBy(p => ShortName(p.Workload)).ToList();
            foreach (var same in byName)
            {
                foreach (var policy in same)
                {
                    string kind = policy.Workload[..policy.Workload.IndexOf('/')].ToLowerInvariant();
                    policy.Name = "recommended-" + (same.Count() > 1 ? $"{kind}-{same.Key}" : same.Key);
                }
            }
        }
        foreach (var policy in policies)
        {
            var dns = Ports(policy.Egress, _dns);
            dns.Ports.Add(new PortSpec("TCP", 53, null));
            dns.Ports.Add(new PortSpec("UDP", 53, null));
            if (policy.Subject.Note is { } note) policy.Notes.Add(note);
            foreach (var peer in policy.Ingress.Values.Concat(policy.Egress.Values))
            {
                if (peer.Peer.Pods?.Note is { } peerNote) policy.Notes.Add("peer " + peerNote);
            }
        }
        var uncovered = _uncovered.Values.GroupBy(u => (u.Source, u.Destination, u.Port, u.Reason))
            .Select(g => new Uncovered(g.Key.Source, g.Key.Destination, g.Key.Port, g.Sum(u => u.Flows), g.Key.Reason))
            .OrderBy(u => u.Source, StringComparer.Ordinal).ThenBy(u => u.Destination, StringComparer.Ordinal).ThenBy(u => u.Port, StringComparer.Ordinal).ToList();
        return (policies, uncovered);
    }

    /// <summary>The name part of a workload, lower-cased and cut to what a policy name may hold.</summary>
    private static string ShortName(string workload)
    {
        string name = workload[(workload.IndexOf('/') + 1)..].ToLowerInvariant();
        return name.Length > 200 ? name[..200] : name;
    }
}

/// <summary>An observed pair with its ends read.</summary>
internal sealed record ReadPair(ObservedPair Pair, RecordedEndpoint Source, RecordedEndpoint Destination);
