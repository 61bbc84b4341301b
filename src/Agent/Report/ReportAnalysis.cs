using System.Net;
using System.Text;
using System.Text.Json;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;
using Tripline.Correlation.Policy;
using Tripline.WhatIf;

namespace Tripline.Report;

/// <summary>How the report reads its inputs and how long its tables are.</summary>
internal sealed record ReportLimits(int Top = 50, int MapEdges = 120);

/// <summary>
/// Turns the folded traffic and the cluster into the report's facts. Posture and exposure come from the policy engine
/// and the cluster snapshot, never from traffic: the traffic only says which rules matched and which reach was used.
/// </summary>
internal sealed class ReportAnalysis
{
    /// <summary>The outside address exposure and the default-deny probe ask about (TEST-NET-3, RFC 5737: no rule names it by accident).</summary>
    internal static readonly IPAddress OutsideAddress = IPAddress.Parse("203.0.113.1");
    /// <summary>The address of the probe pods (TEST-NET-2) and the port they are probed on: one no rule is likely to name.</summary>
    internal static readonly IPAddress ProbeAddress = IPAddress.Parse("198.51.100.7");
    internal const int ProbePort = 54321;
    internal const string OutsideId = "outside";
    internal const string NodesId = "nodes";
    internal const string OutsideColumn = "(outside the cluster)";

    private readonly ClusterSnapshot _cluster;
    private readonly ClusterModel _model;
    private readonly ClusterIndex _index;
    private readonly ReportLimits _limits;
    private readonly List<Workload> _workloads;
    private readonly Dictionary<string, Workload> _workloadByGroup;
    private readonly List<Read> _reads = [];

    private sealed class Workload(string ns, string name)
    {
        public string Namespace { get; } = ns;
        public string Name { get; } = name;
        public string Group => $"{Namespace}/{Name}";
        public List<PodInfo> Pods { get; } = [];
        public PodInfo? Representative => Pods.FirstOrDefault(p => p.Ips.Count > 0);
    }

    /// <summary>A folded pair with its ends read.</summary>
    private sealed record Read(ReportPair Pair, RecordedEndpoint Source, RecordedEndpoint Destination);

    public ReportAnalysis(ClusterSnapshot cluster, ReportLimits limits)
    {
        _cluster = cluster;
        _model = ClusterModel.Build(cluster);
        _index = new ClusterIndex(cluster);
        _limits = limits;
        _workloadByGroup = new Dictionary<string, Workload>(StringComparer.Ordinal);
        foreach (var pod in cluster.Pods.Where(Active).OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            string name = pod.Workload?.ToString() ?? pod.Name;
            string group = $"{pod.Namespace}/{name}";
            if (!_workloadByGroup.TryGetValue(group, out var workload)) _workloadByGroup[group] = workload = new Workload(pod.Namespace, name);
            workload.Pods.Add(pod);
        }
        _workloads = [.. _workloadByGroup.Values.OrderBy(w => w.Group, StringComparer.Ordinal)];
    }

    /// <summary>Pods that policies can select: running (or pending), not deleted, not on the host's network.</summary>
    private static bool Active(PodInfo pod) => !pod.IsTerminated && pod.DeletedAt is null && !pod.HostNetwork;

    public ReportFacts Build(TrafficFold fold, Coverage coverage)
    {
        foreach (var pair in fold.Pairs) _reads.Add(new Read(pair, RecordedEndpoint.Read(pair.Source), RecordedEndpoint.Read(pair.Destination)));
        _reads.Sort((a, b) => string.CompareOrdinal(Key(a), Key(b)));
        coverage = coverage with
        {
            AllowedFlows = _reads.Sum(r => r.Pair.AllowedFlows),
            DeniedFlows = _reads.Sum(r => r.Pair.DeniedFlows),
            EndpointPairs = _reads.Count,
            Namespaces = _cluster.Namespaces.Count,
            Pods = _cluster.Pods.Count(Active),
            Workloads = _workloads.Count,
            Policies = _model.Engine.PolicyKeys().Count,
        };
        return new ReportFacts(coverage, Posture(), Exposure(), Violations(), Mesh(fold), Map());
    }

    private static string Key(Read read) => $"{read.Pair.Protocol}|{Encoding.UTF8.GetString(read.Pair.Source)}|{Encoding.UTF8.GetString(read.Pair.Destination)}";

    // ---- posture ----

    private Posture Posture()
    {
        var engine = _model.Engine;
        var selecting = new HashSet<string>(StringComparer.Ordinal);
        var unprotected = new List<UnprotectedWorkload>();
        int pods = 0, noIngress = 0, noEgress = 0;
        foreach (var workload in _workloads)
        {
            int ingress = 0, egress = 0;
            foreach (var pod in workload.Pods)
            {
                pods++;
                var byIngress = engine.PoliciesSelecting(pod, PolicyDirection.Ingress);
                var byEgress = engine.PoliciesSelecting(pod, PolicyDirection.Egress);
                selecting.UnionWith(byIngress);
                selecting.UnionWith(byEgress);
                if (byIngress.Count == 0) ingress++;
                if (byEgress.Count == 0) egress++;
            }
            noIngress += ingress;
            noEgress += egress;
            if (ingress + egress > 0) unprotected.Add(new UnprotectedWorkload(workload.Namespace, workload.Name, workload.Pods.Count, ingress, egress));
        }
        var (rules, explained, notExplained) = RuleUses();
        var unmatched = rules.Where(r => r.Flows == 0).ToList();
        return new Posture
        {
            Unprotected = Limited<UnprotectedWorkload>.Of(unprotected
                .OrderByDescending(u => u.IngressUnprotected > 0).ThenBy(u => u.Namespace, StringComparer.Ordinal).ThenBy(u => u.Workload, StringComparer.Ordinal), _limits.Top),
            PodsJudged = pods,
            PodsWithoutIngressPolicy = noIngress,
            PodsWithoutEgressPolicy = noEgress,
            Namespaces = NamespaceDefaultsOf(),
            PoliciesSelectingNoPod = [.. engine.PolicyKeys().Where(k => !selecting.Contains(k))],
            RulesWithoutFlows = Limited<RuleUse>.Of(unmatched, _limits.Top),
            Rules = rules.Count,
            PairsExplained = explained,
            PairsNotExplained = notExplained,
        };
    }

    /// <summary>
    /// The default-deny probe: a pod without labels in the namespace, judged by every policy kind the engine knows.
    /// A namespace denies ingress by default when the probe is denied both from an outside address and from a pod of a
    /// namespace without labels; egress, when the probe may not reach an outside address.
    /// </summary>
    private List<NamespaceDefaults> NamespaceDefaultsOf()
    {
        var engine = _model.Engine;
        var names = new SortedSet<string>(_cluster.Namespaces.Keys, StringComparer.Ordinal);
        names.UnionWith(_workloads.Select(w => w.Namespace));
        var outsideKey = IpKey.From(OutsideAddress);
        var probeKey = IpKey.From(ProbeAddress);
        var stranger = new ResolvedEndpoint(EndpointKind.Pod, pod: Probe("tripline-report-probe-elsewhere"));
        var result = new List<NamespaceDefaults>();
        foreach (string ns in names)
        {
            var probePod = Probe(ns);
            var probe = new ResolvedEndpoint(EndpointKind.Pod, pod: probePod);
            var outside = ResolvedEndpoint.External;
            bool fromOutside = engine.Evaluate(in outside, outsideKey, in probe, probeKey, ProbePort, PolicyProtocol.TCP).Allowed;
            bool fromStranger = engine.Evaluate(in stranger, probeKey, in probe, probeKey, ProbePort, PolicyProtocol.TCP).Allowed;
            bool toOutside = engine.Evaluate(in probe, probeKey, in outside, outsideKey, ProbePort, PolicyProtocol.TCP).Allowed;
            result.Add(new NamespaceDefaults(ns, _workloads.Where(w => w.Namespace == ns).Sum(w => w.Pods.Count), !fromOutside && !fromStranger, !toOutside,
                [.. engine.PoliciesSelecting(probePod, PolicyDirection.Ingress)], [.. engine.PoliciesSelecting(probePod, PolicyDirection.Egress)]));
        }
        return result;
    }

    private static PodInfo Probe(string ns) => new()
    {
        Namespace = ns,
        Name = "tripline-report-probe",
        Uid = "tripline-report-probe/" + ns,
        Labels = LabelSet.Empty,
        Ips = [ProbeAddress],
    };

    /// <summary>
    /// Every rule of every policy with the flows it matched: each distinct observed pair (a Service's by each backend) is
    /// explained by the engine as <c>tripline explain</c> does, and a rule counts the pair's flows when the explanation
    /// says it matched (a NetworkPolicy rule that admits it, or a tier rule that decided it). Pairs that judge alike (the
    /// same namespaces, labels, addresses of nodes and outside peers, port and protocol) are explained once.
    /// </summary>
    private (List<RuleUse> Rules, long Explained, long NotExplained) RuleUses()
    {
        var engine = _model.Engine;
        var flows = new Dictionary<(string, string, string), long>();
        foreach (var rule in engine.RuleNames()) flows.TryAdd((rule.Policy, Dir(rule.Direction), rule.Rule), 0);
        if (flows.Count == 0) return ([], 0, 0);
        var matchedBy = new Dictionary<string, List<(string, string, string)>>(StringComparer.Ordinal);
        long explained = 0, notExplained = 0;
        foreach (var read in _reads)
        {
            if (!TryProtocol(read.Pair.Protocol, out var protocol)) continue;
            var from = read.Source.Resolve(_index, destination: false, out string? sourceProblem);
            var to = read.Destination.Resolve(_index, destination: true, out string? destinationProblem);
            if (from is null || to is null || (sourceProblem ?? destinationProblem) is not null)
            {
                notExplained++;
                continue;
            }
            var source = from.Value;
            int port = protocol <= PolicyProtocol.SCTP ? Math.Max(0, read.Destination.Port) : 0;
            var targets = new List<(ResolvedEndpoint Endpoint, IpKey Ip, int Port)>();
            if (to.Value.Kind == EndpointKind.Service)
            {
                foreach (var (pod, targetPort) in _model.ServiceBackends(to.Value.Service!, port, protocol))
                {
                    if (pod.Ips.Count > 0) targets.Add((new ResolvedEndpoint(EndpointKind.Pod, pod: pod), IpKey.From(pod.Ips[0]), targetPort));
                }
                if (targets.Count == 0)
                {
                    notExplained++;
                    continue;
                }
            }
            else
            {
                targets.Add((to.Value, read.Destination.IpKey, port));
            }
            foreach (var target in targets)
            {
                string key = $"{Identity(in source, read.Source.Ip)}|{Identity(target.Endpoint, read.Destination.Ip)}|{target.Port}|{protocol}";
                if (!matchedBy.TryGetValue(key, out var matched))
                {
                    explained++;
                    var destination = target.Endpoint;
                    var explanation = engine.Explain(in source, read.Source.IpKey, in destination, target.Ip, target.Port, protocol);
                    matched = [];
                    foreach (var side in new[] { explanation.Egress, explanation.Ingress })
                    {
                        if (side is null) continue;
                        foreach (var policy in side.Policies)
                        {
                            foreach (var rule in policy.Rules)
                            {
                                if (rule.Matched) matched.Add((policy.Name, Dir(side.Direction), rule.Rule));
                            }
                        }
                    }
                    matchedBy[key] = matched;
                }
                foreach (var rule in matched)
                {
                    if (flows.TryGetValue(rule, out long n)) flows[rule] = n + read.Pair.Flows;
                }
            }
        }
        var rules = flows.Select(f => new RuleUse(f.Key.Item1, f.Key.Item2, f.Key.Item3, f.Value))
            .OrderBy(r => r.Policy, StringComparer.Ordinal).ThenBy(r => r.Direction, StringComparer.Ordinal).ThenBy(r => r.Rule, StringComparer.Ordinal).ToList();
        return (rules, explained, notExplained);
    }

    /// <summary>What the engine judges an end by: a pod's namespace, labels and ports owner; another end's kind and address.</summary>
    private static string Identity(in ResolvedEndpoint endpoint, string? ip) => endpoint.Kind switch
    {
        EndpointKind.Pod when endpoint.Pod is { } pod => $"pod:{pod.Namespace}:{Owner(pod)}:{string.Join(',', pod.Labels.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}"))}:{ip}",
        EndpointKind.Node => $"node:{endpoint.Node?.Name}:{ip}",
        _ => $"{endpoint.Kind}:{ip}",
    };

    // Named ports resolve against the pod's declared ports, so two pods alike in labels may still differ: keep the workload.
    private static string Owner(PodInfo pod) => pod.Workload?.ToString() ?? pod.Name;

    private static string Dir(PolicyDirection direction) => direction == PolicyDirection.Ingress ? "ingress" : "egress";

    private static bool TryProtocol(string text, out PolicyProtocol protocol)
    {
        protocol = text switch
        {
            "TCP" => PolicyProtocol.TCP,
            "UDP" => PolicyProtocol.UDP,
            "SCTP" => PolicyProtocol.SCTP,
            "ICMP" or "ICMPv6" => PolicyProtocol.ICMP,
            _ => PolicyProtocol.Other,
        };
        return protocol != PolicyProtocol.Other;
    }

    // ---- what traffic reached, by destination workload ----

    /// <summary>An end of an observed flow as the map and exposure name it: a workload, a Service without known backends, the nodes, the outside.</summary>
    private readonly record struct Place(string Id, string Namespace, string Label, string Category);

    private Place PlaceOf(RecordedEndpoint end) => end.Kind switch
    {
        "pod" => new Place(end.Group, end.Namespace ?? "", end.Workload is { Length: > 0 } w ? w : end.Pod ?? "?", "pod"),
        "service" => new Place(end.Group, ServiceNamespace(end), end.Group, "service"),
        "node" => new Place(NodesId, OutsideColumn, "cluster nodes", "node"),
        _ => new Place(OutsideId, OutsideColumn, "outside addresses", "outside"),
    };

    private static string ServiceNamespace(RecordedEndpoint end) =>
        end.Namespace ?? (end.Service is { } s && s.IndexOf('/') is > 0 and var slash ? s[..slash] : "");

    /// <summary>The destinations a flow reached: a Service's backends (their workloads and target ports) when the cluster knows them.</summary>
    private IEnumerable<(Place Place, int Port)> Destinations(Read read)
    {
        var place = PlaceOf(read.Destination);
        int port = read.Destination.Port;
        if (read.Destination.Kind == "service" && _index.FindService(read.Destination.Service) is { } service && TryProtocol(read.Pair.Protocol, out var protocol))
        {
            var backends = _model.ServiceBackends(service, port, protocol)
                .Select(b => (Place: new Place($"{b.Pod.Namespace}/{b.Pod.Workload?.ToString() ?? b.Pod.Name}", b.Pod.Namespace, b.Pod.Workload?.ToString() ?? b.Pod.Name, "pod"), b.Port))
                .Distinct().ToList();
            if (backends.Count > 0) return backends;
        }
        return [(place, port)];
    }

    // ---- exposure ----

    private Limited<WorkloadExposure> Exposure()
    {
        // Who traffic showed reaching each workload's port, allowed: source places by destination workload, port and protocol.
        var used = new Dictionary<(string Group, int Port, string Protocol), HashSet<string>>();
        var usedOutside = new Dictionary<(string Group, int Port, string Protocol), HashSet<string>>();
        foreach (var read in _reads)
        {
            if (read.Pair.AllowedFlows == 0) continue;
            var source = PlaceOf(read.Source);
            foreach (var (place, port) in Destinations(read))
            {
                if (place.Category != "pod") continue;
                var key = (place.Id, port, read.Pair.Protocol);
                if (source.Category is "pod")
                {
                    if (!used.TryGetValue(key, out var set)) used[key] = set = new HashSet<string>(StringComparer.Ordinal);
                    set.Add(source.Id);
                }
                else if (source.Category is "outside" or "node")
                {
                    if (!usedOutside.TryGetValue(key, out var set)) usedOutside[key] = set = new HashSet<string>(StringComparer.Ordinal);
                    set.Add(read.Source.Ip ?? "?");
                }
            }
        }

        var engine = _model.Engine;
        var outside = ResolvedEndpoint.External;
        var outsideKey = IpKey.From(OutsideAddress);
        var withAddress = _workloads.Where(w => w.Representative is not null).ToList();
        var result = new List<WorkloadExposure>();
        foreach (var workload in withAddress)
        {
            var pod = workload.Representative!;
            var target = new ResolvedEndpoint(EndpointKind.Pod, pod: pod);
            var targetKey = IpKey.From(pod.Ips[0]);
            var ports = new List<PortExposure>();
            foreach (var (port, protocolName) in PortsOf(workload, used.Keys.Concat(usedOutside.Keys)))
            {
                var protocol = Enum.Parse<PolicyProtocol>(protocolName);
                int sameAllowed = 0, sameOf = 0, otherAllowed = 0, otherOf = 0;
                var otherNamespaces = new SortedSet<string>(StringComparer.Ordinal);
                foreach (var peer in withAddress)
                {
                    if (peer == workload) continue;
                    var from = new ResolvedEndpoint(EndpointKind.Pod, pod: peer.Representative);
                    bool allowed = engine.Evaluate(in from, IpKey.From(peer.Representative!.Ips[0]), in target, targetKey, port, protocol).Allowed;
                    if (peer.Namespace == workload.Namespace)
                    {
                        sameOf++;
                        if (allowed) sameAllowed++;
                    }
                    else
                    {
                        otherOf++;
                        if (allowed)
                        {
                            otherAllowed++;
                            otherNamespaces.Add(peer.Namespace);
                        }
                    }
                }
                bool fromOutside = engine.Evaluate(in outside, outsideKey, in target, targetKey, port, protocol).Allowed;
                var sources = used.GetValueOrDefault((workload.Group, port, protocolName)) ?? [];
                int sameUsed = sources.Count(s => s != workload.Group && s.StartsWith(workload.Namespace + "/", StringComparison.Ordinal));
                int otherUsed = sources.Count(s => !s.StartsWith(workload.Namespace + "/", StringComparison.Ordinal));
                int outsideUsed = usedOutside.GetValueOrDefault((workload.Group, port, protocolName))?.Count ?? 0;
                ports.Add(new PortExposure(port, protocolName, new PeerReach(sameAllowed, sameOf, sameUsed, []),
                    new PeerReach(otherAllowed, otherOf, otherUsed, [.. otherNamespaces]), fromOutside, outsideUsed));
            }
            if (ports.Count > 0) result.Add(new WorkloadExposure(workload.Namespace, workload.Name, workload.Pods.Count, ports));
        }
        return Limited<WorkloadExposure>.Of(result.OrderByDescending(w => w.Breadth)
            .ThenBy(w => w.Namespace, StringComparer.Ordinal).ThenBy(w => w.Workload, StringComparer.Ordinal), _limits.Top);
    }

    /// <summary>
    /// The ports a workload is asked about: those its containers declare, those its Services send to, the numeric ports
    /// of the NetworkPolicy ingress rules that select it, and those traffic reached it on.
    /// </summary>
    private SortedSet<(int Port, string Protocol)> PortsOf(Workload workload, IEnumerable<(string Group, int Port, string Protocol)> observed)
    {
        var ports = new SortedSet<(int, string)>();
        foreach (var pod in workload.Pods)
        {
            foreach (var p in pod.Ports) if (p.Port > 0 && p.Protocol is "TCP" or "UDP" or "SCTP") ports.Add((p.Port, p.Protocol));
        }
        foreach (var service in _cluster.Services)
        {
            foreach (var servicePort in service.Ports)
            {
                if (!Enum.TryParse<PolicyProtocol>(servicePort.Protocol, out var protocol) || protocol > PolicyProtocol.SCTP) continue;
                foreach (var (pod, port) in _model.ServiceBackends(service, servicePort.Port, protocol))
                {
                    if (workload.Pods.Contains(pod)) ports.Add((port, servicePort.Protocol));
                }
            }
        }
        if (workload.Representative is { } representative)
        {
            var selecting = new HashSet<string>(_model.Engine.PoliciesSelecting(representative, PolicyDirection.Ingress), StringComparer.Ordinal);
            foreach (var policy in _cluster.Policies)
            {
                if (!selecting.Contains($"{policy.Metadata?.NamespaceProperty}/{policy.Metadata?.Name}")) continue;
                foreach (var port in (policy.Spec?.Ingress ?? []).SelectMany(r => r.Ports ?? []))
                {
                    if (port.Port?.Value is { } value && int.TryParse(value, out int number) && number > 0) ports.Add((number, port.Protocol ?? "TCP"));
                }
            }
        }
        foreach (var (group, port, protocol) in observed)
        {
            if (group == workload.Group && port > 0 && protocol is "TCP" or "UDP" or "SCTP") ports.Add((port, protocol));
        }
        return ports;
    }

    // ---- violations ----

    private Limited<Violation> Violations()
    {
        var groups = new Dictionary<string, (Violation Head, List<FlowFacet> Facets)>(StringComparer.Ordinal);
        foreach (var read in _reads)
        {
            foreach (var ((egress, ingress), facet) in read.Pair.Denials)
            {
                var (direction, policies) = Deciding(egress, ingress);
                int? port = PortOf(read);
                string key = $"{read.Source.Group}|{read.Destination.Group}|{port}|{read.Pair.Protocol}|{direction}|{string.Join(',', policies)}";
                if (!groups.TryGetValue(key, out var group))
                {
                    groups[key] = group = (new Violation(read.Source.Group, read.Destination.Group, port, read.Pair.Protocol, direction, policies, 0, "", "",
                        new SortedDictionary<string, long>()), []);
                }
                group.Facets.Add(facet);
            }
        }
        var violations = groups.Values.Select(g =>
        {
            var enforcement = new SortedDictionary<string, long>(StringComparer.Ordinal);
            foreach (var facet in g.Facets)
            {
                foreach (var (name, n) in facet.Enforcement) enforcement[name] = enforcement.GetValueOrDefault(name) + n;
            }
            return g.Head with
            {
                Flows = g.Facets.Sum(f => f.Flows),
                First = Encoding.UTF8.GetString(g.Facets.Select(f => f.First).Min(ByteOrder.Instance)!),
                Last = Encoding.UTF8.GetString(g.Facets.Select(f => f.Last).Max(ByteOrder.Instance)!),
                Enforcement = enforcement,
            };
        });
        return Limited<Violation>.Of(violations.OrderByDescending(v => v.Flows).ThenBy(v => v.Source, StringComparer.Ordinal)
            .ThenBy(v => v.Destination, StringComparer.Ordinal).ThenBy(v => v.Port).ThenBy(v => v.Protocol, StringComparer.Ordinal)
            .ThenBy(v => v.Direction, StringComparer.Ordinal).ThenBy(v => string.Join(',', v.Policies), StringComparer.Ordinal), _limits.Top);
    }

    private static int? PortOf(Read read) => read.Pair.Protocol is "TCP" or "UDP" or "SCTP" && read.Destination.Port >= 0 ? read.Destination.Port : null;

    /// <summary>The side(s) whose judgement denied, and the policies the record names there (those that isolate the pod).</summary>
    internal static (string Direction, IReadOnlyList<string> Policies) Deciding(string egress, string ingress)
    {
        var (egressDenied, egressPolicies) = Side(egress);
        var (ingressDenied, ingressPolicies) = Side(ingress);
        string direction = (egressDenied, ingressDenied) switch
        {
            (true, true) => "both",
            (true, false) => "egress",
            (false, true) => "ingress",
            _ => "unknown",
        };
        var policies = new SortedSet<string>(StringComparer.Ordinal);
        if (egressDenied) policies.UnionWith(egressPolicies);
        if (ingressDenied) policies.UnionWith(ingressPolicies);
        return (direction, [.. policies]);
    }

    private static (bool Denied, List<string> Policies) Side(string json)
    {
        if (json.Length == 0) return (false, []);
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object) return (false, []);
        bool denied = root.TryGetProperty("allowed", out var allowed) && allowed.ValueKind == JsonValueKind.False;
        var policies = root.TryGetProperty("policies", out var list) && list.ValueKind == JsonValueKind.Array
            ? list.EnumerateArray().Where(p => p.ValueKind == JsonValueKind.String).Select(p => p.GetString()!).ToList()
            : [];
        return (denied, policies);
    }

    // ---- mesh ----

    private MeshFacts Mesh(TrafficFold fold)
    {
        var groups = new Dictionary<string, (PlaintextFinding Head, List<FlowFacet> Facets)>(StringComparer.Ordinal);
        foreach (var read in _reads)
        {
            foreach (var (mesh, facet) in read.Pair.Plaintext)
            {
                if (MeshReason(mesh) is not { } found) continue;
                int? port = PortOf(read);
                string key = $"{read.Source.Group}|{read.Destination.Group}|{port}|{read.Pair.Protocol}|{found.Reason}|{found.PeerAuthentication}";
                if (!groups.TryGetValue(key, out var group))
                {
                    groups[key] = group = (new PlaintextFinding(read.Source.Group, read.Destination.Group, port, read.Pair.Protocol, found.Reason, found.PeerAuthentication, 0, "", ""), []);
                }
                group.Facets.Add(facet);
            }
        }
        var findings = groups.Values.Select(g => g.Head with
        {
            Flows = g.Facets.Sum(f => f.Flows),
            First = Encoding.UTF8.GetString(g.Facets.Select(f => f.First).Min(ByteOrder.Instance)!),
            Last = Encoding.UTF8.GetString(g.Facets.Select(f => f.Last).Max(ByteOrder.Instance)!),
        }).OrderByDescending(f => f.Flows).ThenBy(f => f.Source, StringComparer.Ordinal).ThenBy(f => f.Destination, StringComparer.Ordinal)
            .ThenBy(f => f.Port).ThenBy(f => f.Protocol, StringComparer.Ordinal).ThenBy(f => f.Reason, StringComparer.Ordinal).ToList();
        return new MeshFacts(fold.MeshRecords, findings.Sum(f => f.Flows), Limited<PlaintextFinding>.Of(findings, _limits.Top));
    }

    /// <summary>Why a plaintext flow is a finding (design §10): both ends meshed, or a STRICT destination; null when it is not one.</summary>
    internal static (string Reason, string PeerAuthentication)? MeshReason(string mesh)
    {
        if (mesh.Length == 0) return null;
        using var document = JsonDocument.Parse(mesh);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object) return null;
        bool src = root.TryGetProperty("src", out var s) && s.ValueKind == JsonValueKind.True;
        bool dst = root.TryGetProperty("dst", out var d) && d.ValueKind == JsonValueKind.True;
        string pa = root.TryGetProperty("peer_authentication", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString()! : "none";
        bool strict = pa == "STRICT";
        if (src && dst) return (strict ? "between meshed pods, into a STRICT destination" : "between meshed pods", pa);
        return strict ? ("into a STRICT destination", pa) : null;
    }

    // ---- map ----

    private TrafficMap Map()
    {
        var nodes = new Dictionary<string, (Place Place, long Flows)>(StringComparer.Ordinal);
        var edges = new Dictionary<(string, string), (long Allowed, long Denied)>();
        foreach (var read in _reads)
        {
            var source = PlaceOf(read.Source);
            var destinations = Destinations(read).Select(d => d.Place).Distinct().ToList();
            foreach (var destination in destinations)
            {
                foreach (var place in source.Id == destination.Id ? new[] { source } : [source, destination])
                {
                    nodes[place.Id] = (place, nodes.GetValueOrDefault(place.Id).Flows + read.Pair.Flows);
                }
                var edge = edges.GetValueOrDefault((source.Id, destination.Id));
                edges[(source.Id, destination.Id)] = (edge.Allowed + read.Pair.AllowedFlows, edge.Denied + read.Pair.DeniedFlows);
            }
        }
        var all = edges.Select(e => new MapEdge(e.Key.Item1, e.Key.Item2, e.Value.Allowed, e.Value.Denied))
            .OrderByDescending(e => e.Flows).ThenBy(e => e.Source, StringComparer.Ordinal).ThenBy(e => e.Destination, StringComparer.Ordinal).ToList();
        var kept = all.Take(_limits.MapEdges).OrderBy(e => e.Source, StringComparer.Ordinal).ThenBy(e => e.Destination, StringComparer.Ordinal).ToList();
        var keptNodes = kept.SelectMany(e => new[] { e.Source, e.Destination }).Distinct()
            .Select(id => nodes[id]).Select(n => new MapNode(n.Place.Id, n.Place.Namespace, n.Place.Label, n.Flows))
            .OrderBy(n => n.Namespace == OutsideColumn).ThenBy(n => n.Namespace, StringComparer.Ordinal).ThenBy(n => n.Id, StringComparer.Ordinal).ToList();
        return new TrafficMap(keptNodes, kept, nodes.Count, all.Count);
    }

    private sealed class ByteOrder : IComparer<byte[]>
    {
        public static readonly ByteOrder Instance = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }
}
