using System.Collections.Frozen;
using Tripline.Correlation.Endpoints;
using Tripline.Correlation.Mesh;
using Tripline.Correlation.Policy;
using Tripline.Correlation.Policy.Calico;

namespace Tripline.Correlation.Cluster;

/// <summary>The judgement of one flow: who the two ends are and what the policies say.</summary>
/// <param name="Staged">The verdict with the staged change applied (<c>tripline run --staged</c>); null without one.</param>
/// <param name="Mesh">What the mesh says of the ends (TCP flows only): who is meshed, and the destination's PeerAuthentication.</param>
public readonly record struct FlowJudgement(ResolvedEndpoint Source, ResolvedEndpoint Destination, Verdict Verdict, int BackendCount, Verdict? Staged = null, MeshFacts Mesh = default);

/// <summary>
/// One snapshot with everything derived from it: the endpoint index and the compiled policies. Built off the
/// packet path when the cluster changes and swapped in whole, so readers never see a half-applied change.
/// </summary>
public sealed class ClusterModel
{
    private readonly FrozenDictionary<string, ServiceBackend[]> _backends;
    private readonly FrozenSet<(IpKey Ip, int Port, PolicyProtocol Protocol)> _serverPorts;

    private ClusterModel(ClusterSnapshot snapshot, EndpointIndex index, PolicyEngine engine, bool synced)
    {
        Snapshot = snapshot;
        Index = index;
        Engine = engine;
        IsSynced = synced;
        _backends = BuildBackends(snapshot, index);
        _serverPorts = BuildServerPorts(snapshot);
        Mesh = MeshView.Build(snapshot);
        _podRanges = [.. snapshot.Nodes.SelectMany(n => n.PodCidrs).Select(c => Policy.IpRange.TryParse(c, out var range) ? range : (Policy.IpRange?)null).OfType<Policy.IpRange>()];
    }

    private readonly Policy.IpRange[] _podRanges;

    private static readonly Policy.IpRange[] PrivateRanges =
        [.. new[] { "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7" }.Select(c => Policy.IpRange.TryParse(c, out var r) ? r : throw new InvalidOperationException(c))];

    /// <summary>
    /// True when <paramref name="ip"/> may be a pod that this state does not know yet: no pod, Service or node holds it,
    /// and it lies in a node's pod range (or, when no node declares one, as with Calico's own IPAM, in a private range).
    /// </summary>
    public bool IsUnnamedPodAddress(IpKey ip, long timeNs)
    {
        if (Index.Resolve(ip, timeNs).Kind != EndpointKind.External) return false;
        var ranges = _podRanges.Length > 0 ? _podRanges : PrivateRanges;
        foreach (var range in ranges)
        {
            if (range.Contains(ip)) return true;
        }
        return false;
    }

    /// <summary>
    /// True when the cluster declares <paramref name="port"/> as a serving port at <paramref name="ip"/>: a container
    /// port of the pod holding it, or a port of the Service whose ClusterIP it is. Tells which side of a connection
    /// whose start was not seen is the server.
    /// </summary>
    public bool IsDeclaredServerPort(IpKey ip, int port, PolicyProtocol protocol) => _serverPorts.Contains((ip, port, protocol));

    private static FrozenSet<(IpKey, int, PolicyProtocol)> BuildServerPorts(ClusterSnapshot snapshot)
    {
        var set = new HashSet<(IpKey, int, PolicyProtocol)>();
        foreach (var pod in snapshot.Pods)
        {
            foreach (var ip in pod.Ips)
            {
                var key = IpKey.From(ip);
                foreach (var p in pod.Ports) if (Enum.TryParse<PolicyProtocol>(p.Protocol, out var proto)) set.Add((key, p.Port, proto));
            }
        }
        foreach (var service in snapshot.Services)
        {
            foreach (var ip in service.ClusterIps)
            {
                var key = IpKey.From(ip);
                foreach (var p in service.Ports) if (Enum.TryParse<PolicyProtocol>(p.Protocol, out var proto)) set.Add((key, p.Port, proto));
            }
        }
        return set.ToFrozenSet();
    }

    /// <param name="previous">The model being replaced: verdicts that the change does not touch are carried over.</param>
    /// <param name="staged">
    /// A change to judge every flow against as well (staged policies): the cluster with it applied. Calico's staged
    /// policies in the cluster are staged too, judged as if enforced (<see cref="CalicoStaging"/>).
    /// </param>
    public static ClusterModel Build(ClusterSnapshot snapshot, bool synced = true, TimeSpan? deletedGrace = null, ClusterModel? previous = null, ClusterSnapshot? staged = null)
    {
        staged ??= CalicoStaging.HasStaged(snapshot) ? snapshot : null;
        return new(snapshot, EndpointIndex.Build(snapshot, deletedGrace), PolicyEngine.Compile(snapshot, previous?.Engine), synced)
        {
            StagedEngine = staged is null ? null : PolicyEngine.CompileStaged(staged, previous?.StagedEngine),
        };
    }

    /// <summary>The engine of the cluster with the staged change applied; null when nothing is staged.</summary>
    public PolicyEngine? StagedEngine { get; private init; }

    public static readonly ClusterModel Empty = new(ClusterSnapshot.Empty, EndpointIndex.Build(ClusterSnapshot.Empty), PolicyEngine.Compile(ClusterSnapshot.Empty), synced: false);

    public ClusterSnapshot Snapshot { get; }
    public EndpointIndex Index { get; }
    /// <summary>Mesh membership and PeerAuthentication of every pod (the mesh audit).</summary>
    public MeshView Mesh { get; }
    public PolicyEngine Engine { get; }

    /// <summary>False while a live source has not completed its first list: verdicts are then provisional.</summary>
    public bool IsSynced { get; }

    /// <summary>Resolves both ends at the packet time and judges the flow; a Service is judged by its backends.</summary>
    public FlowJudgement Judge(IpKey sourceIp, IpKey destinationIp, int port, PolicyProtocol protocol, long timeNs)
    {
        var source = Index.Resolve(sourceIp, timeNs);
        var destination = Index.Resolve(destinationIp, timeNs);
        var judgement = JudgeWith(Engine, source, sourceIp, destination, destinationIp, port, protocol);
        if (protocol == PolicyProtocol.TCP && !Mesh.IsEmpty) judgement = judgement with { Mesh = Mesh.Facts(in source, in destination, port) };
        // Staged: the same ends judged by the changed cluster's policies (per flow event, never per packet).
        return StagedEngine is { } staged ? judgement with { Staged = JudgeWith(staged, source, sourceIp, destination, destinationIp, port, protocol).Verdict } : judgement;
    }

    /// <summary>
    /// Judges ends already resolved (a recorded flow's, as <c>whatif</c> reads them): a Service destination by its
    /// backends in this model's cluster, as <see cref="Judge"/> does.
    /// </summary>
    public FlowJudgement JudgeResolved(in ResolvedEndpoint source, IpKey sourceIp, in ResolvedEndpoint destination, IpKey destinationIp, int port, PolicyProtocol protocol)
    {
        var judgement = JudgeWith(Engine, source, sourceIp, destination, destinationIp, port, protocol);
        return protocol == PolicyProtocol.TCP && !Mesh.IsEmpty ? judgement with { Mesh = Mesh.Facts(in source, in destination, port) } : judgement;
    }

    private FlowJudgement JudgeWith(PolicyEngine engine, ResolvedEndpoint source, IpKey sourceIp, ResolvedEndpoint destination, IpKey destinationIp, int port, PolicyProtocol protocol)
    {
        if (destination.Kind != EndpointKind.Service)
        {
            return new FlowJudgement(source, destination, engine.Evaluate(in source, sourceIp, in destination, destinationIp, port, protocol), 0);
        }
        return JudgeService(engine, source, sourceIp, destination, destinationIp, port, protocol);
    }

    private FlowJudgement JudgeService(PolicyEngine engine, ResolvedEndpoint source, IpKey sourceIp, ResolvedEndpoint service, IpKey serviceIp, int port, PolicyProtocol protocol)
    {
        // Policies apply after the ClusterIP is translated: the flow is allowed if some backend would accept it
        // on its target port, and denied only when every backend denies it.
        var info = service.Service!;
        string protocolName = protocol.ToString();
        ServicePortInfo? servicePort = null;
        foreach (var p in info.Ports)
        {
            if (p.Port == port && string.Equals(p.Protocol, protocolName, StringComparison.Ordinal)) { servicePort = p; break; }
        }
        if (servicePort is null || !_backends.TryGetValue(info.Key, out var backends) || backends.Length == 0)
        {
            var external = ResolvedEndpoint.External;
            var verdict = engine.Evaluate(in source, sourceIp, in external, serviceIp, port, protocol);
            string why = servicePort is null ? $"service {info.Key} declares no {protocolName} port{(protocol > PolicyProtocol.SCTP ? "" : $" {port}")}" : $"service {info.Key} has no ready backends";
            return new FlowJudgement(source, service, verdict with { Note = why + "; judged against the ClusterIP alone" }, 0);
        }

        Verdict? firstAllowed = null;
        Verdict? firstDenied = null;
        var denyingPolicies = new SortedSet<string>(StringComparer.Ordinal);
        int judged = 0;
        foreach (var backend in backends)
        {
            int targetPort = TargetPort(servicePort, backend);
            if (targetPort <= 0) continue;
            var pod = new ResolvedEndpoint(EndpointKind.Pod, pod: backend.Pod);
            var verdict = engine.Evaluate(in source, sourceIp, in pod, backend.Ip, targetPort, protocol);
            judged++;
            if (verdict.Allowed) { firstAllowed ??= verdict; break; }
            firstDenied ??= verdict;
            foreach (var side in new[] { verdict.Egress, verdict.Ingress })
            {
                if (side is { Allowed: false }) denyingPolicies.UnionWith(side.Policies);
            }
        }
        if (firstAllowed is not null)
        {
            return new FlowJudgement(source, service, firstAllowed with { Note = $"judged against the backends of service {info.Key}" }, backends.Length);
        }
        if (firstDenied is null)
        {
            var external = ResolvedEndpoint.External;
            var verdict = engine.Evaluate(in source, sourceIp, in external, serviceIp, port, protocol);
            return new FlowJudgement(source, service, verdict with { Note = $"service {info.Key} port {port} maps to no backend port; judged against the ClusterIP alone" }, backends.Length);
        }
        return new FlowJudgement(source, service, firstDenied with
        {
            Note = $"denied for all {judged} backends of service {info.Key} by {string.Join(", ", denyingPolicies)}",
        }, backends.Length);
    }

    /// <summary>
    /// The ready backends of <paramref name="service"/> that a flow to its <paramref name="port"/> reaches, each with the
    /// port it reaches there (policies judge the pod on that port, after the ClusterIP is translated); empty when the
    /// Service declares no such port or has no ready backend.
    /// </summary>
    public IReadOnlyList<(PodInfo Pod, int Port)> ServiceBackends(ServiceInfo service, int port, PolicyProtocol protocol)
    {
        string protocolName = protocol.ToString();
        var servicePort = service.Ports.FirstOrDefault(p => p.Port == port && string.Equals(p.Protocol, protocolName, StringComparison.Ordinal));
        if (servicePort is null || !_backends.TryGetValue(service.Key, out var backends)) return [];
        var result = new List<(PodInfo, int)>();
        foreach (var backend in backends)
        {
            int targetPort = TargetPort(servicePort, backend);
            if (targetPort > 0) result.Add((backend.Pod, targetPort));
        }
        return result;
    }

    private static int TargetPort(ServicePortInfo servicePort, ServiceBackend backend)
    {
        if (backend.SlicePorts is { } slicePorts)
        {
            foreach (var p in slicePorts)
            {
                if (string.Equals(p.Name ?? "", servicePort.Name ?? "", StringComparison.Ordinal) && p.Protocol == servicePort.Protocol) return p.Port;
            }
            return slicePorts.Count == 1 ? slicePorts[0].Port : -1;
        }
        if (servicePort.TargetPort is { } number) return number;
        foreach (var p in backend.Pod.Ports)
        {
            if (p.Name == servicePort.TargetPortName && p.Protocol == servicePort.Protocol) return p.Port;
        }
        return -1;
    }

    private sealed record ServiceBackend(PodInfo Pod, IpKey Ip, IReadOnlyList<EndpointSlicePort>? SlicePorts);

    private static FrozenDictionary<string, ServiceBackend[]> BuildBackends(ClusterSnapshot snapshot, EndpointIndex index)
    {
        var result = new Dictionary<string, List<ServiceBackend>>(StringComparer.Ordinal);
        var withSlices = new HashSet<string>(StringComparer.Ordinal);
        foreach (var slice in snapshot.EndpointSlices)
        {
            if (slice.ServiceName is null) continue;
            string key = $"{slice.Namespace}/{slice.ServiceName}";
            withSlices.Add(key);
            if (!result.TryGetValue(key, out var list)) result[key] = list = [];
            foreach (var endpoint in slice.Endpoints)
            {
                if (!endpoint.Ready) continue;
                foreach (var address in endpoint.Addresses)
                {
                    var ip = IpKey.From(address);
                    var resolved = index.Resolve(ip, 0);
                    if (resolved.Kind == EndpointKind.Pod) list.Add(new ServiceBackend(resolved.Pod!, ip, slice.Ports));
                }
            }
        }
        // Manifests often carry no EndpointSlices: the Service's selector finds its running pods instead.
        foreach (var service in snapshot.Services)
        {
            if (withSlices.Contains(service.Key) || service.Selector is null) continue;
            var list = new List<ServiceBackend>();
            foreach (var pod in snapshot.Pods)
            {
                if (pod.Namespace != service.Namespace || pod.HostNetwork || pod.IsTerminated || pod.Ips.Count == 0) continue;
                bool matches = true;
                foreach (var (key, value) in service.Selector)
                {
                    if (!pod.Labels.TryGetValue(key, out var actual) || actual != value) { matches = false; break; }
                }
                if (matches) list.Add(new ServiceBackend(pod, IpKey.From(pod.Ips[0]), null));
            }
            result[service.Key] = list;
        }
        return result.ToFrozenDictionary(kv => kv.Key, kv => kv.Value.ToArray(), StringComparer.Ordinal);
    }
}
