using k8s.Models;
using Tripline.Correlation.Manifests;

namespace Tripline.Correlation.Cluster;

/// <summary>
/// A policy to remove: <c>NetworkPolicy/shop/db</c>, or a cluster-scoped one, <c>ClusterNetworkPolicy/name</c>; Calico's
/// as records name them (<c>NetworkPolicy(calico)/shop/db</c>, <c>GlobalNetworkPolicy/name</c>, <c>NetworkSet/shop/name</c>).
/// </summary>
public sealed record ObjectRef(string Kind, string Namespace, string Name)
{
    /// <summary>Kinds that <c>--delete</c> takes, as <c>kubectl</c> names them.</summary>
    public static readonly string[] Kinds =
    [
        "NetworkPolicy", .. AdminPolicyObject.Kinds.Select(k => k.Kind),
        CalicoNetworkPolicy, .. CalicoObject.Kinds.Where(k => k.Kind != CalicoObject.NetworkPolicy).Select(k => k.Kind),
    ];

    /// <summary>How a Calico NetworkPolicy is told from a Kubernetes one, here as in records.</summary>
    public const string CalicoNetworkPolicy = "NetworkPolicy(calico)";

    private static bool IsNamespaced(string kind) =>
        kind is "NetworkPolicy" or CalicoNetworkPolicy || CalicoObject.Kinds.Any(k => k.Namespaced && k.Kind == kind);

    /// <summary>The key of the Calico object this names (<see cref="CalicoObject.Key"/>); null for the other kinds.</summary>
    public string? CalicoKey => Kind == CalicoNetworkPolicy || (Kind != "NetworkPolicy" && CalicoObject.Kinds.Any(k => k.Kind == Kind)) ? ToString() : null;

    /// <summary>Other names kubectl accepts for the kinds: plural resources and short names.</summary>
    private static readonly (string Alias, string Kind)[] Aliases =
    [
        ("netpol", "NetworkPolicy"), ("networkpolicies", "NetworkPolicy"),
        ("cnp", AdminPolicyObject.ClusterNetworkPolicy), ("clusternetworkpolicies", AdminPolicyObject.ClusterNetworkPolicy),
        ("anp", AdminPolicyObject.AdminNetworkPolicy), ("adminnetworkpolicies", AdminPolicyObject.AdminNetworkPolicy),
        ("banp", AdminPolicyObject.BaselineAdminNetworkPolicy), ("baselineadminnetworkpolicies", AdminPolicyObject.BaselineAdminNetworkPolicy),
        ("gnp", CalicoObject.GlobalNetworkPolicy), ("globalnetworkpolicies", CalicoObject.GlobalNetworkPolicy),
    ];

    public static bool TryParse(string text, out ObjectRef reference, out string problem)
    {
        reference = new ObjectRef("", "", "");
        string[] parts = text.Split('/');
        string? kind = parts.Length == 0 ? null : Kinds.FirstOrDefault(k => string.Equals(k, parts[0], StringComparison.OrdinalIgnoreCase))
            ?? Aliases.FirstOrDefault(a => string.Equals(a.Alias, parts[0], StringComparison.OrdinalIgnoreCase)).Kind;
        bool clusterScoped = kind is not null && !IsNamespaced(kind);
        if (parts.Length != (clusterScoped ? 2 : 3) || parts.Any(p => p.Length == 0))
        {
            problem = clusterScoped
                ? $"'{text}' is not {kind}/NAME ({kind} is cluster-scoped)"
                : $"'{text}' is not KIND/NAMESPACE/NAME (for example NetworkPolicy/shop/db) or KIND/NAME for a cluster-scoped kind (ClusterNetworkPolicy/deny-metadata)";
            return false;
        }
        if (kind is null)
        {
            problem = $"'{text}': kind {parts[0]} is not one of {string.Join(", ", Kinds)}";
            return false;
        }
        reference = clusterScoped ? new ObjectRef(kind, "", parts[1]) : new ObjectRef(kind, parts[1], parts[2]);
        problem = "";
        return true;
    }

    public override string ToString() => Namespace.Length == 0 ? $"{Kind}/{Name}" : $"{Kind}/{Namespace}/{Name}";
}

/// <summary>A change as the command line gives it: the documents to apply, loaded, and the policies to delete.</summary>
public sealed record ProposedChange(ClusterSnapshot Applied, IReadOnlyList<ObjectRef> Deletions)
{
    /// <summary>
    /// Reads <c>--apply</c> documents (only what they declare) and parses <c>--delete</c> references. Every problem is
    /// added, naming the option: a document that does not parse (file, line, object), no manifest file at all, a
    /// kind the engine does not judge (it would change nothing here and everything in the cluster), a bad reference.
    /// </summary>
    public static ProposedChange Load(IReadOnlyList<string> apply, IReadOnlyList<string> delete, List<string> problems)
    {
        var applied = apply.Count == 0 ? ClusterSnapshot.Empty : Read(apply, problems);
        var deletions = new List<ObjectRef>();
        foreach (string text in delete)
        {
            if (ObjectRef.TryParse(text, out var reference, out string problem)) deletions.Add(reference);
            else problems.Add("--delete: " + problem);
        }
        return new ProposedChange(applied, deletions);
    }

    private static ClusterSnapshot Read(IReadOnlyList<string> apply, List<string> problems)
    {
        var loaded = ManifestLoader.Load(apply, declaredOnly: true);
        problems.AddRange(loaded.Errors.Select(e => "--apply: " + e));
        if (loaded.FilesRead == 0) problems.Add("--apply: no .yaml, .yml or .json files found");
        problems.AddRange(loaded.IgnoredKinds.Select(k =>
            $"--apply: {k.Value} document(s) of kind {k.Key}, which the engine does not judge; apply only kinds it knows (NetworkPolicy, ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy, Calico's {string.Join(", ", CalicoObject.Kinds.Select(c => c.Kind))}, Namespace, ServiceAccount, Pod, Service, Node)"));
        return loaded.Snapshot;
    }

    /// <summary>The cluster with this change applied (<see cref="ClusterChange.Apply"/>).</summary>
    public ClusterSnapshot AppliedTo(ClusterSnapshot cluster, List<string> problems) => ClusterChange.Apply(cluster, Applied, Deletions, problems);
}

/// <summary>
/// The cluster with a change applied, as <c>kubectl apply -f</c> and <c>kubectl delete</c> would leave it: every
/// object of the applied documents creates or replaces the object of the same kind, namespace and name (a Namespace
/// relabelled, a Pod, a policy), and each deleted policy goes. One way to build it, for <c>whatif</c>,
/// <c>explain</c> and staged policies alike.
/// </summary>
public static class ClusterChange
{
    /// <summary>
    /// Applies <paramref name="applied"/> (loaded with <see cref="ManifestLoader.Load"/>'s <c>declaredOnly</c>) and
    /// the deletions. A deletion of a policy the cluster does not hold is a problem, as <c>kubectl delete</c> says
    /// NotFound: a misspelt name must not pass for a change.
    /// </summary>
    public static ClusterSnapshot Apply(ClusterSnapshot cluster, ClusterSnapshot applied, IReadOnlyList<ObjectRef> deletions, List<string> problems)
    {
        var namespaces = cluster.Namespaces.Values.ToDictionary(n => n.Name, StringComparer.Ordinal);
        foreach (var ns in applied.Namespaces.Values) namespaces[ns.Name] = ns;
        var pods = Replace(cluster.Pods, applied.Pods, p => p.Key);
        var services = Replace(cluster.Services, applied.Services, s => s.Key);
        var slices = Replace(cluster.EndpointSlices, applied.EndpointSlices, s => $"{s.Namespace}/{s.Name}");
        var nodes = Replace(cluster.Nodes, applied.Nodes, n => n.Name);
        var policies = Replace(cluster.Policies, applied.Policies, PolicyKey);
        var adminPolicies = Replace(cluster.AdminPolicies, applied.AdminPolicies, p => p.Key);
        var calico = Replace(cluster.CalicoObjects, applied.CalicoObjects, o => o.Key);
        var accounts = Replace(cluster.ServiceAccounts.Values, applied.ServiceAccounts.Values, a => a.Key);
        var peerAuthentications = Replace(cluster.PeerAuthentications, applied.PeerAuthentications, p => p.Key);
        foreach (var deletion in deletions)
        {
            bool removed = deletion.CalicoKey is { } calicoKey ? calico.Remove(calicoKey)
                : deletion.Kind == "NetworkPolicy" ? policies.Remove($"{deletion.Namespace}/{deletion.Name}")
                : adminPolicies.Remove($"{deletion.Kind}/{deletion.Name}");
            if (!removed) problems.Add($"--delete {deletion}: no such policy in the cluster");
        }
        // A namespace that an applied object lives in exists, as the API server would require.
        foreach (string name in applied.Pods.Select(p => p.Namespace).Concat(applied.Policies.Select(p => p.Metadata.NamespaceProperty))
            .Concat(applied.CalicoObjects.Select(o => o.Metadata.NamespaceProperty).OfType<string>()))
        {
            if (!namespaces.ContainsKey(name)) namespaces[name] = ClusterObjectConverter.ToNamespace(new V1Namespace { Metadata = new V1ObjectMeta { Name = name } });
        }
        return new ClusterSnapshot(cluster.Version + 1, namespaces.Values, pods.Values, services.Values, slices.Values, nodes.Values, policies.Values, adminPolicies.Values, calico.Values, accounts.Values, peerAuthentications.Values);
    }

    private static string PolicyKey(V1NetworkPolicy policy) => $"{policy.Metadata.NamespaceProperty}/{policy.Metadata.Name}";

    private static Dictionary<string, T> Replace<T>(IEnumerable<T> current, IEnumerable<T> applied, Func<T, string> key)
    {
        var result = new Dictionary<string, T>(StringComparer.Ordinal);
        foreach (var item in current) result[key(item)] = item;
        foreach (var item in applied) result[key(item)] = item;
        return result;
    }
}
