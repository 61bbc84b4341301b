using System.Text.Json;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Policy.Tiers;

namespace Tripline.Correlation.Policy.Calico;

/// <summary>
/// The Calico objects of one snapshot compiled for the engine: the enforced policies in their tiers, the network sets
/// their selectors may take, and a note for each object that cannot judge pod traffic (host endpoints only, or
/// invalid). Staged kinds are compiled only for the staged view (<see cref="CalicoStaging"/>).
/// </summary>
internal sealed class CalicoPolicySet
{
    public static readonly CalicoPolicySet Empty = new([], [], []);

    private CalicoPolicySet(TierPolicy[] policies, LabelledNetwork[] networks, string[] notes)
    {
        Policies = policies;
        Networks = networks;
        Notes = notes;
    }

    public TierPolicy[] Policies { get; }
    public LabelledNetwork[] Networks { get; }

    /// <summary>Why an object compiled to nothing: <c>Kind/name: reason</c>.</summary>
    public string[] Notes { get; }

    /// <param name="staged">
    /// The staged view: StagedNetworkPolicies and StagedGlobalNetworkPolicies are compiled too, as if enforced, beside
    /// the enforced policies and under their own names, as Calico's pending view judges them.
    /// </param>
    public static CalicoPolicySet Compile(ClusterSnapshot snapshot, bool staged = false)
    {
        if (snapshot.CalicoObjects.Count == 0) return Empty;
        var notes = new List<string>();
        var tiers = new Dictionary<string, PolicyTier>(StringComparer.Ordinal);
        foreach (var tier in snapshot.CalicoObjects.Where(o => o.Kind == CalicoObject.Tier))
        {
            var problems = new List<string>();
            var compiled = CalicoPolicyCompiler.CompileTier(tier, problems);
            Note(notes, tier, problems);
            tiers[compiled.Name] = compiled;
        }

        var services = ServiceAddresses(snapshot);
        var policies = new List<TierPolicy>();
        var networks = new List<LabelledNetwork>();
        foreach (var item in snapshot.CalicoObjects)
        {
            var problems = new List<string>();
            switch (item.Kind)
            {
                case CalicoObject.NetworkPolicy or CalicoObject.GlobalNetworkPolicy:
                    var compiled = CalicoPolicyCompiler.Compile(item, tiers, problems, out string? excluded, services: services);
                    // An invalid policy is not guessed at: a selector read wrongly would select the wrong pods.
                    if (problems.Count > 0) Note(notes, item, problems);
                    else if (excluded is not null) notes.Add(excluded);
                    else policies.AddRange(compiled);
                    break;
                case CalicoObject.StagedNetworkPolicy or CalicoObject.StagedGlobalNetworkPolicy when staged:
                    if (CalicoStaging.StagedAction(item) != "Set")
                    {
                        notes.Add(CalicoStaging.NotInPendingView(item));
                        break;
                    }
                    var stagedPolicies = CalicoPolicyCompiler.Compile(CalicoStaging.AsEnforced(item), tiers, problems, out string? stagedExcluded, item.Key, services);
                    if (problems.Count > 0) Note(notes, item, problems);
                    else if (stagedExcluded is not null) notes.Add(stagedExcluded);
                    else policies.AddRange(stagedPolicies);
                    break;
                case CalicoObject.StagedKubernetesNetworkPolicy when staged && CalicoStaging.StagedAction(item) != "Set":
                    notes.Add(CalicoStaging.NotInPendingView(item));
                    break;
                case CalicoObject.NetworkSet or CalicoObject.GlobalNetworkSet:
                    var nets = item.Spec.ValueKind == JsonValueKind.Object ? CalicoPolicyCompiler.Nets(item.Spec, "nets", "spec", problems) : [];
                    string? ns = item.Kind == CalicoObject.NetworkSet ? item.Metadata.NamespaceProperty ?? "default" : null;
                    var own = LabelSet.Intern(item.Metadata.Labels);
                    var labels = CalicoLabels.ForNetworkSet(own, ns is null ? null : snapshot.NamespaceLabels(ns));
                    Note(notes, item, problems);
                    if (nets.Length > 0) networks.Add(new LabelledNetwork(item.Key, ns, labels, nets));
                    break;
            }
        }
        return new CalicoPolicySet([.. policies], [.. networks], [.. notes]);
    }

    /// <summary>Each Service's endpoint addresses (every one its EndpointSlices list, ready or not), by <c>ns/name</c>.</summary>
    private static Dictionary<string, IpRange[]> ServiceAddresses(ClusterSnapshot snapshot) =>
        snapshot.EndpointSlices.Where(s => s.ServiceName is not null)
            .GroupBy(s => $"{s.Namespace}/{s.ServiceName}", StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.SelectMany(s => s.Endpoints).SelectMany(e => e.Addresses).Distinct()
                .Select(ip => { var key = Endpoints.IpKey.From(ip); return new IpRange(key, key, ip.ToString()); }).ToArray(), StringComparer.Ordinal);

    private static void Note(List<string> notes, CalicoObject item, List<string> problems)
    {
        if (problems.Count > 0) notes.Add($"{item.Key} is not judged: {string.Join("; ", problems)}");
    }
}
