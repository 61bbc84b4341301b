using System.Text.Json;
using k8s;
using k8s.Models;
using Tripline.Correlation.Cluster;

namespace Tripline.Correlation.Policy.Calico;

/// <summary>
/// Calico's staged policies (StagedNetworkPolicy, StagedGlobalNetworkPolicy, StagedKubernetesNetworkPolicy) are never
/// enforced: they say what a policy would do if it were. Tripline judges them as it judges <c>--staged</c> documents,
/// on the staged path (design.md section 8): the cluster with each staged policy put in force, as Calico's
/// <c>stagedAction</c> says (<c>Set</c>, the default: create or replace the policy of the same name; <c>Delete</c>:
/// remove it). The policy in force keeps the name it would have once applied.
/// </summary>
public static class CalicoStaging
{
    public static bool IsStaged(CalicoObject item) =>
        item.Kind is CalicoObject.StagedNetworkPolicy or CalicoObject.StagedGlobalNetworkPolicy or CalicoObject.StagedKubernetesNetworkPolicy;

    public static bool HasStaged(ClusterSnapshot snapshot) => snapshot.CalicoObjects.Any(IsStaged);

    /// <summary>The cluster with every staged policy in force, and no staged policy left; <paramref name="snapshot"/> itself when it has none.</summary>
    public static ClusterSnapshot Promote(ClusterSnapshot snapshot)
    {
        if (!HasStaged(snapshot)) return snapshot;
        var calico = snapshot.CalicoObjects.Where(o => !IsStaged(o)).ToDictionary(o => o.Key, StringComparer.Ordinal);
        var policies = snapshot.Policies.ToDictionary(p => $"{p.Metadata.NamespaceProperty}/{p.Metadata.Name}", StringComparer.Ordinal);
        foreach (var staged in snapshot.CalicoObjects.Where(IsStaged))
        {
            bool delete = StagedAction(staged) == "Delete";
            if (staged.Kind == CalicoObject.StagedKubernetesNetworkPolicy)
            {
                string key = $"{staged.Metadata.NamespaceProperty ?? "default"}/{staged.Metadata.Name}";
                if (delete) policies.Remove(key);
                else policies[key] = AsKubernetes(staged);
                continue;
            }
            var enforced = AsEnforced(staged);
            if (delete) calico.Remove(enforced.Key);
            else calico[enforced.Key] = enforced;
        }
        return new ClusterSnapshot(snapshot.Version, snapshot.Namespaces.Values, snapshot.Pods, snapshot.Services, snapshot.EndpointSlices, snapshot.Nodes,
            policies.Values, snapshot.AdminPolicies, calico.Values, snapshot.ServiceAccounts.Values);
    }

    /// <summary>A StagedNetworkPolicy or StagedGlobalNetworkPolicy as the policy it stages (its spec is that policy's).</summary>
    public static CalicoObject AsEnforced(CalicoObject staged) => new()
    {
        ApiVersion = staged.ApiVersion,
        Kind = staged.Kind == CalicoObject.StagedGlobalNetworkPolicy ? CalicoObject.GlobalNetworkPolicy : CalicoObject.NetworkPolicy,
        Metadata = staged.Metadata,
        Spec = staged.Spec,
    };

    /// <summary>A StagedKubernetesNetworkPolicy as the NetworkPolicy it stages.</summary>
    public static V1NetworkPolicy AsKubernetes(CalicoObject staged) => new()
    {
        ApiVersion = "networking.k8s.io/v1",
        Kind = "NetworkPolicy",
        Metadata = new V1ObjectMeta { Name = staged.Metadata.Name, NamespaceProperty = staged.Metadata.NamespaceProperty ?? "default", Labels = staged.Metadata.Labels },
        Spec = staged.Spec.ValueKind == JsonValueKind.Object ? KubernetesJson.Deserialize<V1NetworkPolicySpec>(staged.Spec.GetRawText()) : new V1NetworkPolicySpec(),
    };

    public static string StagedAction(CalicoObject staged) =>
        staged.Spec.ValueKind == JsonValueKind.Object && staged.Spec.TryGetProperty("stagedAction", out var action) && action.ValueKind == JsonValueKind.String
            ? action.GetString()! : "Set";
}
