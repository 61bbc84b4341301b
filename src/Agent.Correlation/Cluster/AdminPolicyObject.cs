using System.Text.Json;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace Tripline.Correlation.Cluster;

/// <summary>
/// A cluster administrator's policy of SIG Network's <c>policy.networking.k8s.io</c> group, as read from a manifest or
/// the API: <c>ClusterNetworkPolicy</c> (v1beta1, v1alpha2; tier Admin or Baseline), or the older
/// <c>AdminNetworkPolicy</c> and <c>BaselineAdminNetworkPolicy</c> (v1alpha1). KubernetesClient has no model for these
/// custom resources, so the spec is kept as JSON and compiled by the policy engine (<c>Policy/Admin</c>).
/// </summary>
public sealed class AdminPolicyObject : CustomObject
{
    public const string Group = "policy.networking.k8s.io";
    public const string ClusterNetworkPolicy = "ClusterNetworkPolicy";
    public const string AdminNetworkPolicy = "AdminNetworkPolicy";
    public const string BaselineAdminNetworkPolicy = "BaselineAdminNetworkPolicy";

    /// <summary>The kinds of the group, each with the versions read, newest first, and its plural resource name.</summary>
    public static readonly IReadOnlyList<(string Kind, string Resource, string[] Versions)> Kinds =
    [
        (ClusterNetworkPolicy, "clusternetworkpolicies", ["v1beta1", "v1alpha2"]),
        (AdminNetworkPolicy, "adminnetworkpolicies", ["v1alpha1"]),
        (BaselineAdminNetworkPolicy, "baselineadminnetworkpolicies", ["v1alpha1"]),
    ];

    /// <summary>The spec as written; an object without one compiles to a policy that selects nothing.</summary>
    [JsonPropertyName("spec")]
    public JsonElement Spec { get; set; }

    /// <summary><c>Kind/name</c>: how verdicts, records and metrics name the policy (design.md section 3).</summary>
    [JsonIgnore]
    public string Key => $"{Kind}/{Metadata?.Name}";

    /// <summary>Whether <paramref name="apiVersion"/> and <paramref name="kind"/> name a kind and version of the group.</summary>
    public static bool IsKnown(string apiVersion, string kind)
    {
        int slash = apiVersion.IndexOf('/');
        if (slash < 0 || !apiVersion.AsSpan(0, slash).SequenceEqual(Group)) return false;
        string version = apiVersion[(slash + 1)..];
        foreach (var (k, _, versions) in Kinds)
        {
            if (string.Equals(k, kind, StringComparison.Ordinal)) return Array.IndexOf(versions, version) >= 0;
        }
        return false;
    }

    /// <summary>The same spec (a relist, a label-only edit): compiled verdicts still hold.</summary>
    public bool SameSpec(AdminPolicyObject other) =>
        string.Equals(ApiVersion, other.ApiVersion, StringComparison.Ordinal) &&
        string.Equals(Kind, other.Kind, StringComparison.Ordinal) &&
        string.Equals(SpecText, other.SpecText, StringComparison.Ordinal);

    [JsonIgnore]
    private string SpecText => Spec.ValueKind == JsonValueKind.Undefined ? "" : Spec.GetRawText();
}
