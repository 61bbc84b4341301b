using Tripline.Correlation.Cluster;

namespace Tripline.Correlation.Endpoints;

public enum EndpointKind : byte
{
    External,
    Pod,
    Node,
    Service,
}

/// <summary>Who held an IP at a time: a pod, a node (host-network pods included), a Service ClusterIP, or nobody known.</summary>
public readonly struct ResolvedEndpoint
{
    public ResolvedEndpoint(EndpointKind kind, PodInfo? pod = null, NodeInfo? node = null, ServiceInfo? service = null)
    {
        Kind = kind;
        Pod = pod;
        Node = node;
        Service = service;
    }

    public static ResolvedEndpoint External => default;

    public EndpointKind Kind { get; }
    public PodInfo? Pod { get; }
    public NodeInfo? Node { get; }
    public ServiceInfo? Service { get; }

    public string KindName => Kind switch
    {
        EndpointKind.Pod => "pod",
        EndpointKind.Node => "node",
        EndpointKind.Service => "service",
        _ => "external",
    };
}
