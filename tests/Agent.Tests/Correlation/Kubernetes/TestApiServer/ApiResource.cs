using k8s;
using k8s.Models;
using Tripline.Correlation.Cluster;

namespace Tripline.Tests.Correlation.Kubernetes;

/// <summary>A resource the test API server serves, at the path the real API server serves it.</summary>
public sealed record ApiResource(string Name, string Path, string ApiVersion, string Kind, bool Namespaced, Type ModelType)
{
    public const string AdminPolicyGroup = "policy.networking.k8s.io";

    public static readonly ApiResource Namespaces = new("namespaces", "/api/v1/namespaces", "v1", "Namespace", false, typeof(V1Namespace));
    public static readonly ApiResource Pods = new("pods", "/api/v1/pods", "v1", "Pod", true, typeof(V1Pod));
    public static readonly ApiResource Services = new("services", "/api/v1/services", "v1", "Service", true, typeof(V1Service));
    public static readonly ApiResource EndpointSlices = new("endpointslices", "/apis/discovery.k8s.io/v1/endpointslices", "discovery.k8s.io/v1", "EndpointSlice", true, typeof(V1EndpointSlice));
    public static readonly ApiResource Nodes = new("nodes", "/api/v1/nodes", "v1", "Node", false, typeof(V1Node));
    public static readonly ApiResource NetworkPolicies = new("networkpolicies", "/apis/networking.k8s.io/v1/networkpolicies", "networking.k8s.io/v1", "NetworkPolicy", true, typeof(V1NetworkPolicy));

    // SIG Network's network-policy-api CRDs, as its releases define them: ClusterNetworkPolicy at v1alpha2 and (later)
    // v1beta1, the older AdminNetworkPolicy and BaselineAdminNetworkPolicy at v1alpha1. All cluster-scoped.
    public static readonly ApiResource ClusterNetworkPolicies = Custom("clusternetworkpolicies", "ClusterNetworkPolicy", "v1beta1", "v1alpha2");
    public static readonly ApiResource AdminNetworkPolicies = Custom("adminnetworkpolicies", "AdminNetworkPolicy", "v1alpha1");
    public static readonly ApiResource BaselineAdminNetworkPolicies = Custom("baselineadminnetworkpolicies", "BaselineAdminNetworkPolicy", "v1alpha1");

    public static readonly IReadOnlyList<ApiResource> All =
        [Namespaces, Pods, Services, EndpointSlices, Nodes, NetworkPolicies, ClusterNetworkPolicies, AdminNetworkPolicies, BaselineAdminNetworkPolicies];

    public static readonly IReadOnlyList<ApiResource> AdminPolicies = [ClusterNetworkPolicies, AdminNetworkPolicies, BaselineAdminNetworkPolicies];

    /// <summary>For a custom resource, every version its CRD can serve, newest first; empty for a built-in one.</summary>
    public IReadOnlyList<string> Versions { get; init; } = [];

    public bool IsCustom => Versions.Count > 0;

    public string Group => ApiVersion.Contains('/', StringComparison.Ordinal) ? ApiVersion[..ApiVersion.IndexOf('/', StringComparison.Ordinal)] : "";

    public string ListKind => Kind + "List";

    public string ApiVersionAt(string version) => $"{Group}/{version}";

    /// <summary>The resource of a model type that only one resource has.</summary>
    public static ApiResource For(Type modelType)
    {
        var matches = All.Where(r => r.ModelType == modelType).ToList();
        return matches.Count switch
        {
            1 => matches[0],
            0 => throw new ArgumentException($"{modelType.Name} is not served", nameof(modelType)),
            _ => throw new ArgumentException($"{modelType.Name} is the model of several resources; name the resource", nameof(modelType)),
        };
    }

    /// <summary>The resource of an object: by its type, or for an admin policy by its kind.</summary>
    public static ApiResource Of(IKubernetesObject<V1ObjectMeta> obj) =>
        obj is AdminPolicyObject policy
            ? All.FirstOrDefault(r => r.IsCustom && r.Kind == policy.Kind) ?? throw new ArgumentException($"kind '{policy.Kind}' is not served", nameof(obj))
            : For(obj.GetType());

    private static ApiResource Custom(string name, string kind, params string[] versions) =>
        new(name, $"/apis/{AdminPolicyGroup}/{versions[0]}/{name}", $"{AdminPolicyGroup}/{versions[0]}", kind, false, typeof(AdminPolicyObject)) { Versions = versions };
}
