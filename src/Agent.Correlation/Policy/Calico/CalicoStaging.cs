using System.Text.Json;
using k8s;
using k8s.Models;
using Tripline.Correlation.Cluster;

namespace Tripline.Correlation.Policy.Calico;

/// <summary>
/// Calico's staged policies (StagedNetworkPolicy, StagedGlobalNetworkPolicy, StagedKubernetesNetworkPolicy) never
/// enforce: the enforced engine leaves them out. The staged engine (the staged path of design.md section 8, the
/// record's <c>staged</c> verdict) judges them as Calico's pending view does (semantics.md section 3): each staged
/// policy with <c>stagedAction: Set</c> as if it were enforced, beside the enforced policies (an enforced policy of the
/// same name stays) and under its own name, <c>StagedGlobalNetworkPolicy/name</c>; one with <c>stagedAction: Delete</c>
/// is not part of that view (Calico does not send it to Felix), and <c>explain</c> says so.
/// </summary>
public static class CalicoStaging
{
    public static bool IsStaged(CalicoObject item) =>
        item.Kind is CalicoObject.StagedNetworkPolicy or CalicoObject.StagedGlobalNetworkPolicy or CalicoObject.StagedKubernetesNetworkPolicy;

    public static bool HasStaged(ClusterSnapshot snapshot) => snapshot.CalicoObjects.Any(IsStaged);

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

    public static string NotInPendingView(CalicoObject staged) =>
        $"{staged.Key} has stagedAction {StagedAction(staged)}: Calico's pending view judges only Set, so the staged verdict leaves it out (`tripline whatif --delete` judges a deletion)";
}
