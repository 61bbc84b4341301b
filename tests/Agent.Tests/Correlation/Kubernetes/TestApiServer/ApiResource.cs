using k8s;
using k8s.Models;
using Tripline.Correlation.Cluster;

namespace Tripline.Tests.Correlation.Kubernetes;

/// <summary>
/// A resource the test API server serves, at the path the real API server serves it. <see cref="Name"/> is how the
/// agent names it in its status, logs and metrics: the plural, or <c>plural.group</c> for Calico's kinds, whose plurals
/// two groups share.
/// </summary>
public sealed record ApiResource(string Name, string Path, string ApiVersion, string Kind, bool Namespaced, Type ModelType)
{
    public const string AdminPolicyGroup = "policy.networking.k8s.io";
    public const string CalicoGroup = CalicoObject.Group;
    public const string CalicoCrdGroup = CalicoObject.CrdGroup;

    public static readonly ApiResource Namespaces = new("namespaces", "/api/v1/namespaces", "v1", "Namespace", false, typeof(V1Namespace));
    public static readonly ApiResource Pods = new("pods", "/api/v1/pods", "v1", "Pod", true, typeof(V1Pod));
    public static readonly ApiResource Services = new("services", "/api/v1/services", "v1", "Service", true, typeof(V1Service));
    public static readonly ApiResource EndpointSlices = new("endpointslices", "/apis/discovery.k8s.io/v1/endpointslices", "discovery.k8s.io/v1", "EndpointSlice", true, typeof(V1EndpointSlice));
    public static readonly ApiResource Nodes = new("nodes", "/api/v1/nodes", "v1", "Node", false, typeof(V1Node));
    public static readonly ApiResource NetworkPolicies = new("networkpolicies", "/apis/networking.k8s.io/v1/networkpolicies", "networking.k8s.io/v1", "NetworkPolicy", true, typeof(V1NetworkPolicy));
    public static readonly ApiResource ServiceAccounts = new("serviceaccounts", "/api/v1/serviceaccounts", "v1", "ServiceAccount", true, typeof(V1ServiceAccount));

    // SIG Network's network-policy-api CRDs, as its releases define them: ClusterNetworkPolicy at v1alpha2 and (later)
    // v1beta1, the older AdminNetworkPolicy and BaselineAdminNetworkPolicy at v1alpha1. All cluster-scoped.
    public static readonly ApiResource ClusterNetworkPolicies = Admin("clusternetworkpolicies", "ClusterNetworkPolicy", "v1beta1", "v1alpha2");
    public static readonly ApiResource AdminNetworkPolicies = Admin("adminnetworkpolicies", "AdminNetworkPolicy", "v1alpha1");
    public static readonly ApiResource BaselineAdminNetworkPolicies = Admin("baselineadminnetworkpolicies", "BaselineAdminNetworkPolicy", "v1alpha1");

    public static readonly IReadOnlyList<ApiResource> AdminPolicies = [ClusterNetworkPolicies, AdminNetworkPolicies, BaselineAdminNetworkPolicies];

    // Calico's eight kinds as Calico's API server serves them (projectcalico.org/v3) and as its CRDs store them
    // (crd.projectcalico.org/v1). The server keeps the two apart; a test puts an object in both for a cluster that has both.
    public static readonly IReadOnlyList<ApiResource> Calico = [.. CalicoObject.Kinds.Select(k => Custom(CalicoGroup, k.Resource, k.Kind, k.Namespaced, typeof(CalicoObject), "v3"))];
    public static readonly IReadOnlyList<ApiResource> CalicoCrds = [.. CalicoObject.Kinds.Select(k => Custom(CalicoCrdGroup, k.Resource, k.Kind, k.Namespaced, typeof(CalicoObject), "v1"))];

    /// <summary>Istio's PeerAuthentications (the mesh audit), served at v1 and v1beta1.</summary>
    public static readonly ApiResource PeerAuthentications =
        Custom(PeerAuthenticationObject.Group, PeerAuthenticationObject.Resource, PeerAuthenticationObject.KindName, true, typeof(PeerAuthenticationObject), PeerAuthenticationObject.Versions);

    public static readonly IReadOnlyList<ApiResource> All =
        [Namespaces, Pods, Services, EndpointSlices, Nodes, NetworkPolicies, ServiceAccounts, .. AdminPolicies, .. Calico, .. CalicoCrds, PeerAuthentications];

    /// <summary>The plural that the path names; <see cref="Name"/> but for a name qualified by its group.</summary>
    public string Plural
    {
        get => field ?? Name;
        init;
    }

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

    /// <summary>The resource of an object: by its type, for an admin policy by its kind, for a Calico object by its group and kind.</summary>
    public static ApiResource Of(IKubernetesObject<V1ObjectMeta> obj) => obj switch
    {
        AdminPolicyObject policy => All.FirstOrDefault(r => r.ModelType == typeof(AdminPolicyObject) && r.Kind == policy.Kind)
            ?? throw new ArgumentException($"kind '{policy.Kind}' is not served", nameof(obj)),
        CalicoObject calico => All.FirstOrDefault(r => r.ModelType == typeof(CalicoObject) && r.Kind == calico.Kind && calico.ApiVersion.StartsWith(r.Group + "/", StringComparison.Ordinal))
            ?? throw new ArgumentException($"'{calico.ApiVersion}' '{calico.Kind}' is not served", nameof(obj)),
        _ => For(obj.GetType()),
    };

    /// <summary>The Calico resource of a kind in a group.</summary>
    public static ApiResource CalicoKind(string group, string kind) =>
        (group == CalicoGroup ? Calico : CalicoCrds).Single(r => r.Kind == kind);

    private static ApiResource Admin(string name, string kind, params string[] versions) =>
        Custom(AdminPolicyGroup, name, kind, false, typeof(AdminPolicyObject), versions);

    private static ApiResource Custom(string group, string plural, string kind, bool namespaced, Type modelType, params string[] versions) =>
        new(modelType == typeof(CalicoObject) ? $"{plural}.{group}" : plural, $"/apis/{group}/{versions[0]}/{plural}", $"{group}/{versions[0]}", kind, namespaced, modelType)
        {
            Versions = versions,
            Plural = plural,
        };
}
