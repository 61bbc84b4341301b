using System.Collections.Frozen;
using k8s.Models;

namespace Tripline.Correlation.Cluster;

/// <summary>
/// Everything the agent knows about the cluster at one moment. Immutable: the packet path and the policy engine
/// read one snapshot while the cluster source builds the next, and a new one is swapped in whole.
/// </summary>
public sealed class ClusterSnapshot
{
    public static readonly ClusterSnapshot Empty = new(0, [], [], [], [], [], []);

    public ClusterSnapshot(
        long version,
        IEnumerable<NamespaceInfo> namespaces,
        IEnumerable<PodInfo> pods,
        IEnumerable<ServiceInfo> services,
        IEnumerable<EndpointSliceInfo> endpointSlices,
        IEnumerable<NodeInfo> nodes,
        IEnumerable<V1NetworkPolicy> policies,
        IEnumerable<AdminPolicyObject>? adminPolicies = null,
        IEnumerable<CalicoObject>? calicoObjects = null,
        IEnumerable<ServiceAccountInfo>? serviceAccounts = null,
        IEnumerable<PeerAuthenticationObject>? peerAuthentications = null)
    {
        Version = version;
        Namespaces = namespaces.GroupBy(n => n.Name, StringComparer.Ordinal).Select(g => g.Last()).ToFrozenDictionary(n => n.Name, StringComparer.Ordinal);
        Pods = [.. pods];
        Services = [.. services];
        EndpointSlices = [.. endpointSlices];
        Nodes = [.. nodes];
        // In name order, whatever the source's: lists, watches and manifest files order them differently, and the
        // policies a record names must not depend on where the cluster state came from.
        Policies = [.. policies.OrderBy(p => p.Metadata?.NamespaceProperty, StringComparer.Ordinal).ThenBy(p => p.Metadata?.Name, StringComparer.Ordinal)];
        AdminPolicies = [.. (adminPolicies ?? []).OrderBy(p => p.Key, StringComparer.Ordinal)];
        CalicoObjects = [.. (calicoObjects ?? []).OrderBy(p => p.Key, StringComparer.Ordinal)];
        PeerAuthentications = [.. (peerAuthentications ?? []).OrderBy(p => p.Key, StringComparer.Ordinal)];
        ServiceAccounts = (serviceAccounts ?? []).GroupBy(a => a.Key, StringComparer.Ordinal).Select(g => g.Last()).ToFrozenDictionary(a => a.Key, StringComparer.Ordinal);
    }

    /// <summary>Increases with every change; caches keyed on it never serve a stale answer.</summary>
    public long Version { get; }

    public FrozenDictionary<string, NamespaceInfo> Namespaces { get; }
    public IReadOnlyList<PodInfo> Pods { get; }
    public IReadOnlyList<ServiceInfo> Services { get; }
    public IReadOnlyList<EndpointSliceInfo> EndpointSlices { get; }
    public IReadOnlyList<NodeInfo> Nodes { get; }
    public IReadOnlyList<V1NetworkPolicy> Policies { get; }

    /// <summary>ClusterNetworkPolicies, AdminNetworkPolicies and BaselineAdminNetworkPolicies, by <c>Kind/name</c>.</summary>
    public IReadOnlyList<AdminPolicyObject> AdminPolicies { get; }

    /// <summary>Calico's policies, tiers and network sets (enforced and staged kinds alike), by key.</summary>
    public IReadOnlyList<CalicoObject> CalicoObjects { get; }

    /// <summary>Istio's PeerAuthentications, by <c>ns/name</c> (the mesh audit's "what it should be").</summary>
    public IReadOnlyList<PeerAuthenticationObject> PeerAuthentications { get; }

    /// <summary>ServiceAccounts by <c>ns/name</c>: Calico's service account selectors match their labels.</summary>
    public FrozenDictionary<string, ServiceAccountInfo> ServiceAccounts { get; }

    /// <summary>
    /// The namespace's labels. A pod's namespace that no Namespace object describes still has the label that the
    /// API server always sets, <c>kubernetes.io/metadata.name</c>, so selectors on it work with partial manifests.
    /// </summary>
    public LabelSet NamespaceLabels(string name)
    {
        if (Namespaces.TryGetValue(name, out var ns)) return ns.Labels;
        return LabelSet.Intern(new Dictionary<string, string> { ["kubernetes.io/metadata.name"] = name });
    }
}
