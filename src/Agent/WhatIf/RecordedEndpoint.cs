using System.Net;
using System.Text.Json;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;

namespace Tripline.WhatIf;

/// <summary>
/// One end of a recorded flow as the record names it (kind, IP, port, and for a pod its namespace, name, uid,
/// workload, labels and node), made into what the policy engine judges. A pod is judged as it was recorded, even if
/// it has been deleted since; only its declared ports, which records do not carry, come from the cluster given.
/// </summary>
internal sealed class RecordedEndpoint
{
    public string Kind = "external";
    public string? Ip;
    public int Port = -1;
    public string? Namespace;
    public string? Pod;
    public string? Uid;
    public string? Workload;
    public string? Service;
    public string? Node;
    public Dictionary<string, string> Labels = new(StringComparer.Ordinal);

    public static RecordedEndpoint Read(ReadOnlySpan<byte> json)
    {
        var endpoint = new RecordedEndpoint();
        var reader = new Utf8JsonReader(json);
        reader.Read();
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string name = reader.GetString()!;
            reader.Read();
            switch (name)
            {
                case "port" when reader.TokenType == JsonTokenType.Number:
                    endpoint.Port = reader.GetInt32();
                    break;
                case "labels" when reader.TokenType == JsonTokenType.StartObject:
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        string key = reader.GetString()!;
                        reader.Read();
                        if (reader.TokenType == JsonTokenType.String) endpoint.Labels[key] = reader.GetString()!;
                    }
                    break;
                default:
                    if (reader.TokenType == JsonTokenType.String)
                    {
                        string value = reader.GetString()!;
                        switch (name)
                        {
                            case "kind": endpoint.Kind = value; break;
                            case "ip": endpoint.Ip = value; break;
                            case "namespace": endpoint.Namespace = value; break;
                            case "pod": endpoint.Pod = value; break;
                            case "uid": endpoint.Uid = value; break;
                            case "workload": endpoint.Workload = value; break;
                            case "service": endpoint.Service = value; break;
                            case "node": endpoint.Node = value; break;
                        }
                    }
                    else
                    {
                        reader.Skip();
                    }
                    break;
            }
        }
        return endpoint;
    }

    /// <summary>How the table groups this end: namespace and workload (or pod), Service, node, or the IP.</summary>
    public string Group => Kind switch
    {
        "pod" => $"{Namespace}/{(Workload is { Length: > 0 } w ? w : Pod)}",
        "service" => "service " + Service,
        "node" => "node " + Node,
        _ => Ip ?? "?",
    };

    public IpKey IpKey => Ip is not null && IPAddress.TryParse(Ip, out var address) ? IpKey.From(address) : IpKey.Zero;

    /// <summary>
    /// The endpoint to judge, or null with the reason when it cannot be judged without guessing: a Service or a node the
    /// cluster given does not hold, or a pod whose declared ports are unknown while a policy names ports by name.
    /// </summary>
    public ResolvedEndpoint? Resolve(ClusterIndex cluster, bool destination, out string? notJudgeable)
    {
        notJudgeable = null;
        switch (Kind)
        {
            case "pod":
                {
                    var known = cluster.FindPod(Uid, Namespace, Pod, Workload);
                    if (known is null && destination && cluster.HasNamedPorts)
                    {
                        notJudgeable = $"pod {Namespace}/{Pod} and its workload are gone from the cluster given, and a policy names ports by name";
                    }
                    var pod = new PodInfo
                    {
                        Namespace = Namespace ?? "",
                        Name = Pod ?? "",
                        Uid = Uid ?? "",
                        Labels = LabelSet.Intern(Labels),
                        Ips = Ip is not null && IPAddress.TryParse(Ip, out var address) ? [address] : [],
                        NodeName = Node,
                        Workload = ParseWorkload(Workload),
                        Ports = known?.Ports ?? [],
                        HostNetwork = known?.HostNetwork ?? false,
                    };
                    return new ResolvedEndpoint(EndpointKind.Pod, pod: pod);
                }
            case "service":
                {
                    if (cluster.FindService(Service) is { } service) return new ResolvedEndpoint(EndpointKind.Service, service: service);
                    notJudgeable = $"Service {Service} is not in the cluster given";
                    return null;
                }
            case "node":
                {
                    var node = cluster.FindNode(Node) ?? new NodeInfo { Name = Node ?? "", Addresses = Ip is not null && IPAddress.TryParse(Ip, out var address) ? [address] : [] };
                    return new ResolvedEndpoint(EndpointKind.Node, node: node);
                }
            default:
                return ResolvedEndpoint.External;
        }
    }

    private static WorkloadRef? ParseWorkload(string? text)
    {
        int slash = text?.IndexOf('/') ?? -1;
        return slash > 0 ? new WorkloadRef(text![..slash], text[(slash + 1)..]) : null;
    }
}

/// <summary>What <see cref="RecordedEndpoint.Resolve"/> looks up in the cluster given.</summary>
internal sealed class ClusterIndex
{
    private readonly Dictionary<string, PodInfo> _byUid = new(StringComparer.Ordinal);
    private readonly Dictionary<string, PodInfo> _byKey = new(StringComparer.Ordinal);
    private readonly Dictionary<string, PodInfo> _byWorkload = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ServiceInfo> _services = new(StringComparer.Ordinal);
    private readonly Dictionary<string, NodeInfo> _nodes = new(StringComparer.Ordinal);

    public ClusterIndex(params ClusterSnapshot[] snapshots)
    {
        foreach (var snapshot in snapshots)
        {
            foreach (var pod in snapshot.Pods)
            {
                if (pod.Uid.Length > 0) _byUid.TryAdd(pod.Uid, pod);
                _byKey.TryAdd(pod.Key, pod);
                if (pod.Workload is { } workload && pod.Ports.Count > 0) _byWorkload.TryAdd($"{pod.Namespace}/{workload}", pod);
            }
            foreach (var service in snapshot.Services) _services.TryAdd(service.Key, service);
            foreach (var node in snapshot.Nodes) _nodes.TryAdd(node.Name, node);
            HasNamedPorts |= snapshot.Policies.Any(p =>
                (p.Spec?.Ingress ?? []).SelectMany(r => r.Ports ?? []).Concat((p.Spec?.Egress ?? []).SelectMany(r => r.Ports ?? []))
                    .Any(port => port.Port?.Value is { } value && !int.TryParse(value, out _)));
        }
    }

    /// <summary>Some policy, before or after the change, names a port by name (resolved against the pod's declared ports).</summary>
    public bool HasNamedPorts { get; }

    /// <summary>The pod by uid, else by name; else a pod of the same workload (its declared ports are the template's).</summary>
    public PodInfo? FindPod(string? uid, string? ns, string? name, string? workload) =>
        (uid is { Length: > 0 } && _byUid.TryGetValue(uid, out var byUid)) ? byUid
        : _byKey.TryGetValue($"{ns}/{name}", out var byKey) ? byKey
        : workload is { Length: > 0 } && _byWorkload.TryGetValue($"{ns}/{workload}", out var sibling) ? sibling
        : null;

    public ServiceInfo? FindService(string? key) => key is not null && _services.TryGetValue(key, out var service) ? service : null;

    public NodeInfo? FindNode(string? name) => name is not null && _nodes.TryGetValue(name, out var node) ? node : null;
}
