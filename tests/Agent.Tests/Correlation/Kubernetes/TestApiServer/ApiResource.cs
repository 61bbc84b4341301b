using k8s.Models;

namespace Tripline.Tests.Correlation.Kubernetes;

/// <summary>A resource the test API server serves, at the path the real API server serves it.</summary>
public sealed record ApiResource(string Name, string Path, string ApiVersion, string Kind, bool Namespaced, Type ModelType)
{
    public static readonly ApiResource Namespaces = new("namespaces", "/api/v1/namespaces", "v1", "Namespace", false, typeof(V1Namespace));
    public static readonly ApiResource Pods = new("pods", "/api/v1/pods", "v1", "Pod", true, typeof(V1Pod));
    public static readonly ApiResource Services = new("services", "/api/v1/services", "v1", "Service", true, typeof(V1Service));
    public static readonly ApiResource EndpointSlices = new("endpointslices", "/apis/discovery.k8s.io/v1/endpointslices", "discovery.k8s.io/v1", "EndpointSlice", true, typeof(V1EndpointSlice));
    public static readonly ApiResource Nodes = new("nodes", "/api/v1/nodes", "v1", "Node", false, typeof(V1Node));
    public static readonly ApiResource NetworkPolicies = new("networkpolicies", "/apis/networking.k8s.io/v1/networkpolicies", "networking.k8s.io/v1", "NetworkPolicy", true, typeof(V1NetworkPolicy));

    public static readonly IReadOnlyList<ApiResource> All = [Namespaces, Pods, Services, EndpointSlices, Nodes, NetworkPolicies];

    public string ListKind => Kind + "List";

    public static ApiResource For(Type modelType) =>
        All.FirstOrDefault(r => r.ModelType == modelType) ?? throw new ArgumentException($"{modelType.Name} is not served", nameof(modelType));
}
