using System.Text.Json;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace Tripline.Correlation.Cluster;

/// <summary>
/// A Calico object as read from a manifest or the API: <c>projectcalico.org/v3</c> (as <c>calicoctl</c> and Calico's API
/// server show it) or <c>crd.projectcalico.org/v1</c> (as the CRDs store it; the same spec). KubernetesClient has no
/// model for them, so the spec is kept as JSON and compiled by the policy engine (<c>Policy/Calico</c>).
/// </summary>
public sealed class CalicoObject : CustomObject
{
    public const string Group = "projectcalico.org";
    public const string CrdGroup = "crd.projectcalico.org";
    public const string NetworkPolicy = "NetworkPolicy";
    public const string GlobalNetworkPolicy = "GlobalNetworkPolicy";
    public const string NetworkSet = "NetworkSet";
    public const string GlobalNetworkSet = "GlobalNetworkSet";
    public const string Tier = "Tier";
    public const string StagedNetworkPolicy = "StagedNetworkPolicy";
    public const string StagedGlobalNetworkPolicy = "StagedGlobalNetworkPolicy";
    public const string StagedKubernetesNetworkPolicy = "StagedKubernetesNetworkPolicy";

    /// <summary>The kinds read, with their plural resource name and whether they live in a namespace.</summary>
    public static readonly IReadOnlyList<(string Kind, string Resource, bool Namespaced)> Kinds =
    [
        (NetworkPolicy, "networkpolicies", true),
        (GlobalNetworkPolicy, "globalnetworkpolicies", false),
        (NetworkSet, "networksets", true),
        (GlobalNetworkSet, "globalnetworksets", false),
        (Tier, "tiers", false),
        (StagedNetworkPolicy, "stagednetworkpolicies", true),
        (StagedGlobalNetworkPolicy, "stagedglobalnetworkpolicies", false),
        (StagedKubernetesNetworkPolicy, "stagedkubernetesnetworkpolicies", true),
    ];

    /// <summary>The spec as written; absent means every field at its default.</summary>
    [JsonPropertyName("spec")]
    public JsonElement Spec { get; set; }

    /// <summary>Whether the object is in the CRDs' storage form (<c>crd.projectcalico.org/v1</c>), which nothing defaults.</summary>
    [JsonIgnore]
    public bool IsCrd => ApiVersion.StartsWith(CrdGroup + "/", StringComparison.Ordinal);

    [JsonIgnore]
    public bool IsNamespaced => Kinds.Any(k => string.Equals(k.Kind, Kind, StringComparison.Ordinal) && k.Namespaced);

    /// <summary>
    /// How verdicts, records and metrics name the object: <c>GlobalNetworkPolicy/name</c>,
    /// <c>NetworkPolicy(calico)/ns/name</c> (so that it is never taken for a Kubernetes NetworkPolicy's <c>ns/name</c>),
    /// <c>Kind/name</c> or <c>Kind/ns/name</c> for the others.
    /// </summary>
    [JsonIgnore]
    public string Key => Kind switch
    {
        NetworkPolicy => $"NetworkPolicy(calico)/{Metadata?.NamespaceProperty}/{Metadata?.Name}",
        _ when IsNamespaced => $"{Kind}/{Metadata?.NamespaceProperty}/{Metadata?.Name}",
        _ => $"{Kind}/{Metadata?.Name}",
    };

    /// <summary>Whether <paramref name="apiVersion"/> and <paramref name="kind"/> name a Calico kind read here.</summary>
    public static bool IsKnown(string apiVersion, string kind) =>
        (string.Equals(apiVersion, Group + "/v3", StringComparison.Ordinal) || string.Equals(apiVersion, CrdGroup + "/v1", StringComparison.Ordinal)) &&
        Kinds.Any(k => string.Equals(k.Kind, kind, StringComparison.Ordinal));

    /// <summary>
    /// The name as Calico shows it. Up to v3.31 the CRD of a default-tier policy was stored as <c>default.&lt;name&gt;</c>
    /// and the prefix stripped on read; a policy of another tier keeps its name (the tier is read from <c>spec.tier</c>,
    /// never from the name).
    /// </summary>
    public static string DisplayName(string apiVersion, string kind, string name, string? tier)
    {
        bool policy = kind is NetworkPolicy or GlobalNetworkPolicy or StagedNetworkPolicy or StagedGlobalNetworkPolicy;
        bool crd = apiVersion.StartsWith(CrdGroup + "/", StringComparison.Ordinal);
        if (policy && crd && string.IsNullOrEmpty(tier is null or "default" ? null : tier) && name.StartsWith("default.", StringComparison.Ordinal) && name.Length > "default.".Length)
        {
            return name["default.".Length..];
        }
        return name;
    }

    /// <summary>
    /// Puts the object as read (from a manifest or the API, at v3 or v1) in the one form the snapshot keeps: a namespaced
    /// kind without a namespace is in <c>default</c>, as <c>kubectl apply</c> would put it; a cluster-wide kind has none;
    /// the name is the one Calico shows (<see cref="DisplayName"/>), so that a policy is the same object under the same key
    /// whichever group it came from. Throws <see cref="InvalidDataException"/> when metadata.name is missing. Returns
    /// this object, changed in place.
    /// </summary>
    public CalicoObject Normalize()
    {
        if (string.IsNullOrEmpty(Metadata?.Name)) throw new InvalidDataException("metadata.name is missing");
        if (IsNamespaced) Metadata.NamespaceProperty ??= "default";
        else Metadata.NamespaceProperty = null;
        string? tier = Spec.ValueKind == JsonValueKind.Object && Spec.TryGetProperty("tier", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        Metadata.Name = DisplayName(ApiVersion, Kind, Metadata.Name, tier);
        return this;
    }

    /// <summary>The same spec (a relist, a label-only edit of a policy): compiled verdicts still hold.</summary>
    public bool SameSpec(CalicoObject other) =>
        string.Equals(ApiVersion, other.ApiVersion, StringComparison.Ordinal) &&
        string.Equals(Kind, other.Kind, StringComparison.Ordinal) &&
        string.Equals(SpecText, other.SpecText, StringComparison.Ordinal);

    [JsonIgnore]
    private string SpecText => Spec.ValueKind == JsonValueKind.Undefined ? "" : Spec.GetRawText();
}
