using System.Collections.Concurrent;
using System.Collections.Frozen;
using k8s;
using k8s.Models;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;
using Tripline.Correlation.Policy.Admin;
using Tripline.Correlation.Policy.Calico;
using Tripline.Correlation.Policy.Tiers;

namespace Tripline.Correlation.Policy;

/// <summary>
/// The policies of one cluster snapshot compiled into tiers: the administrator's Admin tier (ClusterNetworkPolicy,
/// AdminNetworkPolicy), NetworkPolicy (networking.k8s.io/v1), the Baseline tier, then allow. Immutable once built and safe to read
/// from any thread: a cluster change compiles a new engine, which the pipeline swaps in while the packet path keeps
/// reading the old one. Verdicts are cached by identity (namespace, interned labels, ipBlock class), never by pod.
/// </summary>
public sealed partial class PolicyEngine
{
    private const int KindPod = 0;
    private const int KindTerminatedPod = 1;
    private const int KindHostNetworkPod = 2;
    private const int KindNode = 3;
    private const int KindExternal = 4;
    private const int KindService = 5;
    private const int KindResidentNode = 6;

    /// <summary>In a key's kinds: a pod reaching its own address, which the administrator's tiers do not judge.</summary>
    private const int SelfFlow = 1 << 24;

    private static readonly ConcurrentDictionary<string, int> NamespaceIds = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, int> PortDeclarationIds = new(StringComparer.Ordinal);
    private static int _lastNamespaceId;
    private static int _lastPortDeclarationId;

    private readonly CompiledPolicy[] _policies;
    private readonly FrozenDictionary<string, int[]> _policiesByNamespace;
    private readonly FrozenDictionary<string, LabelSet> _namespaceLabels;
    private readonly FrozenDictionary<PodInfo, PodProfile> _profiles;
    /// <summary>The policy objects by ns/name: a changed policy is a new object, so most comparisons are by reference.</summary>
    private readonly FrozenDictionary<string, V1NetworkPolicy> _policySources;
    private readonly IpClassifier _classifier;
    private readonly bool _hasNamedPorts;
    private readonly VerdictCache _cache;

    /// <summary>The tiers, by order then name; the default tier (holding the NetworkPolicies) always among them.</summary>
    private readonly PolicyTier[] _tiers;

    /// <summary>The tier policies, by tier, then order, then name: the order they are walked in.</summary>
    private readonly TierPolicy[] _tierPolicies;

    /// <summary>For each tier policy, the index of its tier in <see cref="_tiers"/>.</summary>
    private readonly int[] _tierOf;
    /// <summary>The objects the tiers were compiled from (AdminPolicyObject, CalicoObject), by key.</summary>
    private readonly FrozenDictionary<string, object> _tierSources;

    /// <summary>Calico's network sets, which its selectors take as they take pods; empty without them.</summary>
    private readonly LabelledNetwork[] _networkSets;

    /// <summary>
    /// Whether a pod's identity is its labels as Calico sees them (with namespace and service account): so only when a
    /// Calico policy is compiled, since its selectors and service account selectors are the only ones to ask more.
    /// </summary>
    private readonly bool _calicoIdentity;

    /// <summary>Why some objects judge nothing (host endpoints only, invalid), for <c>explain</c>.</summary>
    public IReadOnlyList<string> PolicyNotes { get; }

    /// <summary>Whether a rule tests ICMP types: only then do ICMP verdicts depend on the type (and are keyed by it).</summary>
    private readonly bool _testsIcmp;

    /// <summary>
    /// The port argument of an ICMP flow: its first message's type and code, above every port number. Flows recorded
    /// without them (a flow log's ICMP flows) pass 0 and are taken as echo requests, the conversations flows hold.
    /// </summary>
    public static int IcmpPort(byte type, byte code) => 0x10000 | (type << 8) | code;

    internal static (int Type, int Code) IcmpTypeOf(int port) => port >= 0x10000 ? ((port >> 8) & 0xFF, port & 0xFF) : (8, 0);

    /// <summary>Node labels by address, for <c>nodes</c> peers; empty when no rule has one.</summary>
    private readonly FrozenDictionary<IpKey, LabelSet> _nodeLabels;

    private PolicyEngine(ClusterSnapshot snapshot, PolicyEngine? previous, int cacheCapacity, bool staged)
    {
        Snapshot = snapshot;
        IsStagedView = staged;
        var policies = new List<CompiledPolicy>(snapshot.Policies.Count);
        var sources = new Dictionary<string, V1NetworkPolicy>(StringComparer.Ordinal);
        foreach (var policy in snapshot.Policies)
        {
            sources[PolicyKey(policy)] = policy;
            policies.Add(CompiledPolicy.Compile(policy));
        }
        // The staged view: Calico's StagedKubernetesNetworkPolicies join the NetworkPolicies, under their own names.
        foreach (var item in staged ? snapshot.CalicoObjects.Where(o => o.Kind == CalicoObject.StagedKubernetesNetworkPolicy && CalicoStaging.StagedAction(o) == "Set") : [])
        {
            policies.Add(CompiledPolicy.Compile(CalicoStaging.AsKubernetes(item), item.Key));
        }
        _policies = [.. policies];
        _policySources = sources.ToFrozenDictionary(StringComparer.Ordinal);
        _policiesByNamespace = _policies
            .Select((p, i) => (p.Namespace, i))
            .GroupBy(x => x.Namespace, StringComparer.Ordinal)
            .ToFrozenDictionary(g => g.Key, g => g.Select(x => x.i).ToArray(), StringComparer.Ordinal);
        _namespaceLabels = snapshot.Namespaces.ToFrozenDictionary(kv => kv.Key, kv => kv.Value.Labels, StringComparer.Ordinal);
        var calico = CalicoPolicySet.Compile(snapshot, staged);
        var compiled = snapshot.AdminPolicies.Select(p => AdminPolicyCompiler.Compile(p, [])).Concat(calico.Policies).ToList();
        _tiers = [.. compiled.Select(p => p.Tier).Append(PolicyTier.Default).Distinct().Order(Comparer<PolicyTier>.Create(PolicyTier.Compare))];
        _tierPolicies = [.. compiled
            .OrderBy(p => Array.IndexOf(_tiers, p.Tier)).ThenBy(p => p.Order).ThenBy(p => p.SortName ?? p.Key, StringComparer.Ordinal)];
        _tierOf = [.. _tierPolicies.Select(p => Array.IndexOf(_tiers, p.Tier))];
        _tierSources = snapshot.AdminPolicies.Select(p => (p.Key, Source: (object)p))
            .Concat(snapshot.CalicoObjects.Where(o => staged || !CalicoStaging.IsStaged(o)).Select(o => (o.Key, Source: (object)o)))
            .GroupBy(p => p.Key, StringComparer.Ordinal).ToFrozenDictionary(g => g.Key, g => g.Last().Source, StringComparer.Ordinal);
        _networkSets = calico.Networks;
        _calicoIdentity = calico.Policies.Length > 0;
        PolicyNotes = calico.Notes;
        var tierPeers = _tierPolicies.SelectMany(p => p.AllRules).SelectMany(r => r.Peers).ToArray();
        _nodeLabels = tierPeers.Any(p => p.Kind == TierPeerKind.Nodes) ? NodeLabelsByAddress(snapshot) : FrozenDictionary<IpKey, LabelSet>.Empty;
        // Every address a verdict can depend on gets a class of its own: ipBlocks, networks, network sets, and nodes' addresses.
        _classifier = new IpClassifier(_policies.SelectMany(p => p.IpRanges)
            .Concat(tierPeers.SelectMany(p => p.Networks))
            .Concat(_networkSets.SelectMany(n => n.Ranges))
            .Concat(_nodeLabels.Keys.Select(ip => new IpRange(ip, ip, ip.ToString()))));
        _testsIcmp = _tierPolicies.SelectMany(p => p.AllRules).Any(r => r.PortCondition is { TestsIcmp: true });
        _hasNamedPorts = _policies.Any(p => p.HasNamedPorts)
            || _tierPolicies.SelectMany(p => p.AllRules).Any(r => r.Ports.Any(port => port.Name is not null) || r.PortCondition is { HasNamedPorts: true });

        // Selection is computed once per distinct (namespace, identity), then shared by every pod that has them.
        var selections = new Dictionary<(string, LabelSet), Selection>();
        var profiles = new Dictionary<PodInfo, PodProfile>(ReferenceEqualityComparer.Instance);
        foreach (var pod in snapshot.Pods)
        {
            var identity = IdentityOf(pod);
            if (!selections.TryGetValue((pod.Namespace, identity), out var selection))
            {
                selection = ComputeSelection(pod.Namespace, pod.Labels, identity);
                selections[(pod.Namespace, identity)] = selection;
            }
            profiles[pod] = CreateProfile(pod, identity, selection);
        }
        _profiles = profiles.ToFrozenDictionary(ReferenceEqualityComparer.Instance);
        _cache = previous is null ? new VerdictCache(cacheCapacity) : CarryOver(previous, cacheCapacity);
    }

    /// <summary>The snapshot this engine judges by.</summary>
    public ClusterSnapshot Snapshot { get; }

    public int PolicyCount => _policies.Length;

    /// <summary>ClusterNetworkPolicies, AdminNetworkPolicies, BaselineAdminNetworkPolicies and Calico's policies compiled.</summary>
    public int TierPolicyCount => _tierPolicies.Length;

    public static PolicyEngine Compile(ClusterSnapshot snapshot) => new(snapshot, null, VerdictCache.DefaultCapacity, staged: false);

    /// <summary>
    /// The staged view of <paramref name="snapshot"/>: its policies, and Calico's staged policies judged as if enforced
    /// (<see cref="CalicoStaging"/>). The engine of a record's <c>staged</c> verdict.
    /// </summary>
    public static PolicyEngine CompileStaged(ClusterSnapshot snapshot, PolicyEngine? previous) =>
        new(snapshot, previous is { IsStagedView: true } ? previous : null, VerdictCache.DefaultCapacity, staged: true);

    /// <summary>Whether Calico's staged policies are judged here as if enforced (<see cref="CompileStaged"/>).</summary>
    public bool IsStagedView { get; }

    /// <summary>
    /// Compiles <paramref name="snapshot"/> and keeps the verdicts of <paramref name="previous"/> that still hold:
    /// a changed policy drops only verdicts with a pod of its namespace, a namespace whose labels changed only
    /// verdicts with a pod in it; a pod whose labels changed has a new label set and so simply a new key.
    /// </summary>
    public static PolicyEngine Compile(ClusterSnapshot snapshot, PolicyEngine? previous, int cacheCapacity = VerdictCache.DefaultCapacity) =>
        new(snapshot, previous is { IsStagedView: false } ? previous : null, cacheCapacity, staged: false);

    /// <summary>Judges one flow from <paramref name="source"/> to <paramref name="destination"/>. Allocation-free when cached.</summary>
    public Verdict Evaluate(in ResolvedEndpoint source, IpKey sourceIp, in ResolvedEndpoint destination, IpKey destinationIp, int port, PolicyProtocol protocol)
    {
        var key = KeyOf(in source, sourceIp, in destination, destinationIp, ref port, protocol, out var sourceProfile, out var destinationProfile);
        if (_cache.TryGet(in key, out var verdict)) return verdict;
        verdict = Judge(in key, in source, sourceIp, sourceProfile, in destination, destinationIp, destinationProfile, port, protocol);
        _cache.Set(in key, verdict);
        return verdict;
    }

    /// <summary>Judges without reading or filling the cache: the reference the cache is tested and benchmarked against.</summary>
    public Verdict EvaluateUncached(in ResolvedEndpoint source, IpKey sourceIp, in ResolvedEndpoint destination, IpKey destinationIp, int port, PolicyProtocol protocol)
    {
        var key = KeyOf(in source, sourceIp, in destination, destinationIp, ref port, protocol, out var sourceProfile, out var destinationProfile);
        return Judge(in key, in source, sourceIp, sourceProfile, in destination, destinationIp, destinationProfile, port, protocol);
    }

    /// <summary>Names (ns/name) of the policies that select <paramref name="pod"/> for <paramref name="direction"/>; empty: unprotected.</summary>
    public IReadOnlyList<string> PoliciesSelecting(PodInfo pod, PolicyDirection direction)
    {
        var profile = ProfileOf(pod);
        if (!profile.Selectable) return [];
        return direction == PolicyDirection.Ingress ? profile.Selection.AllIngressNames : profile.Selection.AllEgressNames;
    }

    private VerdictKey KeyOf(in ResolvedEndpoint source, IpKey sourceIp, in ResolvedEndpoint destination, IpKey destinationIp, ref int port, PolicyProtocol protocol, out PodProfile? sourceProfile, out PodProfile? destinationProfile)
    {
        // ICMP and other protocols have no port that a policy could name; an ICMP type only Calico's rules test.
        if (protocol > PolicyProtocol.SCTP && !(protocol == PolicyProtocol.ICMP && _testsIcmp)) port = 0;
        int sourceKind = KindOf(in source, out sourceProfile);
        int destinationKind = KindOf(in destination, out destinationProfile);
        if (destinationProfile is not null && (sourceKind is KindNode or KindHostNetworkPod) && IsResidentNode(in source, destinationProfile.Pod))
        {
            sourceKind = KindResidentNode;
        }
        int sourceNs = -1, sourceLabels = 0, sourceClass = 0;
        if (sourceProfile is not null)
        {
            sourceNs = sourceProfile.NamespaceId;
            sourceLabels = sourceProfile.Identity.Id;
            sourceClass = ClassOf(sourceProfile, sourceIp);
        }
        else if (sourceKind != KindResidentNode)
        {
            sourceClass = _classifier.Classify(sourceIp);
        }
        int destinationNs = -1, destinationLabels = 0, destinationClass, destinationPorts = 0;
        if (destinationProfile is not null)
        {
            destinationNs = destinationProfile.NamespaceId;
            destinationLabels = destinationProfile.Identity.Id;
            destinationClass = ClassOf(destinationProfile, destinationIp);
            if (_hasNamedPorts) destinationPorts = destinationProfile.PortsId;
        }
        else
        {
            destinationClass = _classifier.Classify(destinationIp);
        }
        int kinds = (int)protocol | (sourceKind << 8) | (destinationKind << 16);
        if (sourceProfile is not null && destinationProfile is not null && ReferenceEquals(sourceProfile.Pod, destinationProfile.Pod)) kinds |= SelfFlow;
        return new VerdictKey(sourceNs, sourceLabels, sourceClass, destinationNs, destinationLabels, destinationClass, destinationPorts, port, kinds);
    }

    /// <summary>The endpoint's kind; a profile for pods whose own policies and labels count (not host-network pods).</summary>
    private int KindOf(in ResolvedEndpoint endpoint, out PodProfile? profile)
    {
        profile = null;
        switch (endpoint.Kind)
        {
            case EndpointKind.Pod when endpoint.Pod is { } pod:
                if (pod.HostNetwork) return KindHostNetworkPod;
                profile = ProfileOf(pod);
                return profile.Selectable ? KindPod : KindTerminatedPod;
            case EndpointKind.Node:
                return KindNode;
            case EndpointKind.Service:
                return KindService;
            default:
                return KindExternal;
        }
    }

    /// <summary>NetworkPolicy cannot block a pod's own node from reaching it (kubelet probes): the Kubernetes docs say so.</summary>
    private static bool IsResidentNode(in ResolvedEndpoint source, PodInfo destination)
    {
        string? node = source.Kind == EndpointKind.Node ? source.Node?.Name : source.Pod?.NodeName;
        return node is not null && string.Equals(node, destination.NodeName, StringComparison.Ordinal);
    }

    private int ClassOf(PodProfile profile, IpKey ip)
    {
        var ips = profile.Ips;
        for (int i = 0; i < ips.Length; i++)
        {
            if (ips[i] == ip) return profile.IpClasses[i];
        }
        return _classifier.Classify(ip);
    }

    private PodProfile ProfileOf(PodInfo pod)
    {
        if (_profiles.TryGetValue(pod, out var profile)) return profile;
        // A pod from another snapshot than the one compiled: correct, only slower (and allocating).
        var identity = IdentityOf(pod);
        return CreateProfile(pod, identity, ComputeSelection(pod.Namespace, pod.Labels, identity));
    }

    /// <summary>What the policies select a pod by: its labels, or with Calico's, the labels Calico's selectors see.</summary>
    private LabelSet IdentityOf(PodInfo pod)
    {
        if (!_calicoIdentity) return pod.Labels;
        var account = Snapshot.ServiceAccounts.GetValueOrDefault($"{pod.Namespace}/{pod.ServiceAccount}");
        return CalicoLabels.ForPod(pod.Labels, NamespaceLabelsOf(pod.Namespace), pod.ServiceAccount, account?.Labels);
    }

    private PodProfile CreateProfile(PodInfo pod, LabelSet identity, Selection selection)
    {
        var ips = pod.Ips.Select(IpKey.From).ToArray();
        string ports = string.Join(";", pod.Ports.Select(p => $"{p.Name}:{p.Port}/{p.Protocol}").Order(StringComparer.Ordinal));
        return new PodProfile(
            pod,
            NamespaceId(pod.Namespace),
            PortDeclarationIds.GetOrAdd(ports, static _ => Interlocked.Increment(ref _lastPortDeclarationId)),
            !pod.HostNetwork && !pod.IsTerminated,
            selection,
            ips,
            ips.Select(_classifier.Classify).ToArray(),
            NamespaceLabelsOf(pod.Namespace),
            identity);
    }

    private Selection ComputeSelection(string ns, LabelSet labels, LabelSet identity)
    {
        var ingress = new List<int>();
        var egress = new List<int>();
        if (_policiesByNamespace.TryGetValue(ns, out var candidates))
        {
            foreach (int index in candidates)
            {
                var policy = _policies[index];
                if (!policy.PodSelector.Matches(labels)) continue;
                if (policy.AffectsIngress) ingress.Add(index);
                if (policy.AffectsEgress) egress.Add(index);
            }
        }
        var tiers = new TierSelection(_tiers.Length);
        if (_tierPolicies.Length > 0)
        {
            var namespaceLabels = NamespaceLabelsOf(ns);
            for (int index = 0; index < _tierPolicies.Length; index++)
            {
                var policy = _tierPolicies[index];
                if (!policy.Subject.Selects(namespaceLabels, labels, identity)) continue;
                tiers.Add(policy, index, _tierOf[index]);
            }
        }
        return new Selection([.. ingress], [.. egress], [.. ingress.Select(i => _policies[i].Key)], [.. egress.Select(i => _policies[i].Key)], tiers.Build());
    }

    private LabelSet NamespaceLabelsOf(string ns) => _namespaceLabels.TryGetValue(ns, out var labels) ? labels : Snapshot.NamespaceLabels(ns);

    private Verdict Judge(in VerdictKey key, in ResolvedEndpoint source, IpKey sourceIp, PodProfile? sourceProfile, in ResolvedEndpoint destination, IpKey destinationIp, PodProfile? destinationProfile, int port, PolicyProtocol protocol)
    {
        int sourceKind = (key.Kinds >> 8) & 0xFF;
        int destinationKind = (key.Kinds >> 16) & 0xFF;
        var destinationPod = destinationProfile?.Pod;
        bool tiers = _tierPolicies.Length > 0 && (key.Kinds & SelfFlow) == 0;
        string? unjudgeable = null;
        SideVerdict? egress = null, ingress = null;
        if (sourceProfile is not null)
        {
            egress = sourceProfile.Selectable
                ? JudgeSide(PolicyDirection.Egress, sourceProfile.Selection, PeerOf(destinationProfile, destinationIp, sourceProfile), destinationPod, port, protocol, tiers, ref unjudgeable)
                : SideVerdict.NotIsolated;
        }
        if (destinationProfile is not null)
        {
            if (!destinationProfile.Selectable) ingress = SideVerdict.NotIsolated;
            else if (sourceKind == KindResidentNode) ingress = new SideVerdict(destinationProfile.Selection.Ingress.Length > 0, true, []);
            else ingress = JudgeSide(PolicyDirection.Ingress, destinationProfile.Selection, PeerOf(sourceProfile, sourceIp, destinationProfile), destinationPod, port, protocol, tiers, ref unjudgeable);
        }
        bool allowed = (egress?.Allowed ?? true) && (ingress?.Allowed ?? true);
        string? note = NoteFor(sourceKind, destinationKind, tiers || _tierPolicies.Length == 0);
        if (unjudgeable is not null) note = note is null ? unjudgeable : unjudgeable + "; " + note;
        return new Verdict(allowed, egress, ingress, note, unjudgeable is null ? null : NotJudgeableDomainNames);
    }

    /// <summary>The reason <see cref="Verdict.NotJudgeable"/> gives when only a rule's <c>domainNames</c> could decide a flow.</summary>
    public const string NotJudgeableDomainNames = "domain_names";

    /// <summary>The other end as the subject's rules see it: a pod of the cluster, or an address (a node's, with its labels).</summary>
    private PeerView PeerOf(PodProfile? other, IpKey ip, PodProfile subject) =>
        new(other?.Pod, other?.NamespaceLabels, ip, _nodeLabels.Count == 0 ? null : _nodeLabels.GetValueOrDefault(ip), subject.NamespaceLabels,
            _calicoIdentity ? other?.Identity : null, NetworkSetsAt(ip));

    private LabelledNetwork[] NetworkSetsAt(IpKey ip)
    {
        if (_networkSets.Length == 0) return [];
        List<LabelledNetwork>? found = null;
        foreach (var set in _networkSets)
        {
            if (set.Contains(ip)) (found ??= []).Add(set);
        }
        return found is null ? [] : [.. found];
    }

    private SideVerdict JudgeSide(PolicyDirection direction, Selection selection, in PeerView peer, PodInfo? destinationPod, int port, PolicyProtocol protocol, bool tiers, ref string? unjudgeable)
    {
        if (!tiers || !selection.Tiers.Any(direction)) return JudgeNetworkPolicies(direction, selection, in peer, destinationPod, port, protocol);
        // Tier by tier: a rule's Accept or Deny is final, Pass goes to the next tier, and a tier whose policies apply
        // but decide nothing ends with its end action (the default tier's Deny is NetworkPolicy's isolation).
        TierRule? pendingRule = null;
        TierPolicy? pendingPolicy = null;
        SideVerdict? side = null;
        for (int t = 0; t < _tiers.Length && side is null; t++)
        {
            var tier = _tiers[t];
            var policies = selection.Tiers.For(t, direction);
            var networkPolicies = tier.HoldsNetworkPolicies ? (direction == PolicyDirection.Ingress ? selection.Ingress : selection.Egress) : [];
            if (policies.Length == 0 && networkPolicies.Length == 0) continue;
            var (policy, rule, allowedBy) = WalkTier(policies, networkPolicies, direction, in peer, destinationPod, port, protocol, ref pendingRule, ref pendingPolicy);
            if (allowedBy is not null) side = allowedBy;
            else if (rule is { Action: RuleAction.Accept or RuleAction.Deny }) side = policy!.Decided(rule.Action == RuleAction.Accept);
            else if (rule is null && tier.EndAction == RuleAction.Deny) side = EndOfTierDenial(direction, selection, policies);
        }
        side ??= SideVerdict.NotIsolated;
        if (pendingRule is not null && (pendingRule.Action == RuleAction.Pass || side.Allowed != (pendingRule.Action == RuleAction.Accept)))
        {
            // Only a domain name could have decided otherwise: say so, and judge by what the packets show.
            string text = $"not judgeable: {direction.ToString().ToLowerInvariant()} rule {pendingRule.Describe(direction)} of {pendingPolicy!.Key} ({pendingRule.Action}) matches by domainNames ({string.Join(",", pendingRule.Peers.Where(p => p.Kind == TierPeerKind.DomainNames).SelectMany(p => p.Domains))}), and packets do not say which names {peer.Ip.ToIPAddress()} had; judged as if it had none of them";
            unjudgeable = unjudgeable is null ? text : unjudgeable + "; " + text;
        }
        return side;
    }

    /// <summary>The denial at a Deny tier's end: it names every policy of the tier that applies (NetworkPolicies first).</summary>
    private SideVerdict EndOfTierDenial(PolicyDirection direction, Selection selection, int[] policies)
    {
        var denied = direction == PolicyDirection.Ingress ? selection.DeniedIngress : selection.DeniedEgress;
        if (policies.Length == 0) return denied;
        return new SideVerdict(true, false, [.. denied.Policies, .. policies.Select(i => _tierPolicies[i].Key)]);
    }

    /// <summary>
    /// Walks one tier: its policies in order, with the NetworkPolicies of the default tier as one group at their
    /// order (any of them allowing allows). Returns the first rule that matched, or the group's allowing side; a rule
    /// only a domain name could match is kept aside.
    /// </summary>
    private (TierPolicy? Policy, TierRule? Rule, SideVerdict? AllowedBy) WalkTier(int[] policies, int[] networkPolicies, PolicyDirection direction, in PeerView peer, PodInfo? destinationPod, int port, PolicyProtocol protocol, ref TierRule? pendingRule, ref TierPolicy? pendingPolicy)
    {
        bool groupDone = networkPolicies.Length == 0;
        foreach (int index in policies)
        {
            var policy = _tierPolicies[index];
            if (!groupDone && policy.Order > PolicyTier.NetworkPolicyOrder)
            {
                groupDone = true;
                if (AllowedByNetworkPolicies(networkPolicies, direction, in peer, destinationPod, port, protocol) is { } allowed) return (null, null, allowed);
            }
            foreach (var rule in policy.Rules(direction))
            {
                if (rule.Action == RuleAction.Log || !rule.MatchesPort(destinationPod, port, protocol)) continue;
                switch (rule.MatchPeer(in peer))
                {
                    case PeerMatch.Yes:
                        return (policy, rule, null);
                    case PeerMatch.NotJudgeable when pendingRule is null:
                        (pendingRule, pendingPolicy) = (rule, policy);
                        break;
                }
            }
        }
        if (!groupDone && AllowedByNetworkPolicies(networkPolicies, direction, in peer, destinationPod, port, protocol) is { } last) return (null, null, last);
        return (null, null, null);
    }

    private SideVerdict? AllowedByNetworkPolicies(int[] selecting, PolicyDirection direction, in PeerView peer, PodInfo? destinationPod, int port, PolicyProtocol protocol)
    {
        List<string>? allowedBy = null;
        foreach (int index in selecting)
        {
            var policy = _policies[index];
            if (policy.Allows(direction, in peer, destinationPod, port, protocol)) (allowedBy ??= []).Add(policy.Key);
        }
        return allowedBy is null ? null : new SideVerdict(true, true, allowedBy);
    }

    private SideVerdict JudgeNetworkPolicies(PolicyDirection direction, Selection selection, in PeerView peer, PodInfo? destinationPod, int port, PolicyProtocol protocol)
    {
        var selecting = direction == PolicyDirection.Ingress ? selection.Ingress : selection.Egress;
        if (selecting.Length == 0) return SideVerdict.NotIsolated;
        return AllowedByNetworkPolicies(selecting, direction, in peer, destinationPod, port, protocol)
            ?? (direction == PolicyDirection.Ingress ? selection.DeniedIngress : selection.DeniedEgress);
    }

    private static string? NoteFor(int sourceKind, int destinationKind, bool tiersJudged)
    {
        var notes = new List<string>(2);
        if (!tiersJudged) notes.Add("a pod reaching its own address: ClusterNetworkPolicies do not apply to it");
        if (sourceKind == KindHostNetworkPod) notes.Add("the source is a host-network pod: NetworkPolicy does not select it, so it is judged as its node (no egress side; peers match it by IP only)");
        if (sourceKind == KindResidentNode) notes.Add("the source is the destination pod's own node: NetworkPolicy cannot block a node from reaching its pods, so ingress is allowed");
        if (sourceKind == KindTerminatedPod) notes.Add("the source pod has terminated (Succeeded/Failed): policies no longer select it");
        if (destinationKind == KindHostNetworkPod) notes.Add("the destination is a host-network pod: NetworkPolicy does not select it, so it is judged as its node (no ingress side; peers match it by IP only)");
        if (destinationKind == KindTerminatedPod) notes.Add("the destination pod has terminated (Succeeded/Failed): policies no longer select it");
        if (sourceKind == KindService || destinationKind == KindService) notes.Add("a Service ClusterIP was judged as an address: expand it into its backend pods for a pod-to-pod verdict");
        return notes.Count == 0 ? null : string.Join("; ", notes);
    }

    private VerdictCache CarryOver(PolicyEngine previous, int capacity)
    {
        if (!previous._classifier.SameAs(_classifier) || previous._cache.Capacity != capacity) return new VerdictCache(capacity);
        var changed = new HashSet<int>();
        foreach (string key in _policySources.Keys.Union(previous._policySources.Keys))
        {
            _policySources.TryGetValue(key, out var now);
            previous._policySources.TryGetValue(key, out var before);
            if (ReferenceEquals(now, before)) continue;
            // A new object with the same spec (a relist, a label-only edit) keeps its namespace's verdicts.
            if (now is null || before is null || !string.Equals(KubernetesJson.Serialize(now.Spec), KubernetesJson.Serialize(before.Spec), StringComparison.Ordinal))
            {
                changed.Add(NamespaceId(key[..key.IndexOf('/')]));
            }
        }
        foreach (string ns in _namespaceLabels.Keys.Union(previous._namespaceLabels.Keys))
        {
            if (!ReferenceEquals(NamespaceLabelsOf(ns), previous.NamespaceLabelsOf(ns))) changed.Add(NamespaceId(ns));
        }
        // The administrator's tiers are cluster-wide: any change to them, or to the nodes they name, drops every verdict.
        if (!SameTiers(previous)) return new VerdictCache(capacity);
        // A network set inherits its namespace's labels, and its addresses are keyed by class, not by namespace.
        if (_networkSets.Length > 0 && changed.Count > 0) return new VerdictCache(capacity);
        if (changed.Count == 0) return previous._cache.CopyWhere(static _ => true);
        return previous._cache.CopyWhere(k => !changed.Contains(k.SourceNamespace) && !changed.Contains(k.DestinationNamespace));
    }

    private bool SameTiers(PolicyEngine previous)
    {
        if (_tierSources.Count != previous._tierSources.Count) return false;
        foreach (var (key, now) in _tierSources)
        {
            if (!previous._tierSources.TryGetValue(key, out var before)) return false;
            if (!ReferenceEquals(now, before) && !SameSource(now, before)) return false;
        }
        if (_nodeLabels.Count != previous._nodeLabels.Count) return false;
        foreach (var (ip, labels) in _nodeLabels)
        {
            if (!previous._nodeLabels.TryGetValue(ip, out var before) || !ReferenceEquals(labels, before)) return false;
        }
        return true;
    }

    /// <summary>A relist or a label-only edit leaves a policy's verdicts; a network set's labels are what selectors see.</summary>
    private static bool SameSource(object now, object before) => (now, before) switch
    {
        (AdminPolicyObject a, AdminPolicyObject b) => a.SameSpec(b),
        (CalicoObject a, CalicoObject b) => a.SameSpec(b) && (a.Kind is not (CalicoObject.NetworkSet or CalicoObject.GlobalNetworkSet) || ReferenceEquals(LabelSet.Intern(a.Metadata.Labels), LabelSet.Intern(b.Metadata.Labels))),
        _ => false,
    };

    private static FrozenDictionary<IpKey, LabelSet> NodeLabelsByAddress(ClusterSnapshot snapshot)
    {
        var labels = new Dictionary<IpKey, LabelSet>();
        foreach (var node in snapshot.Nodes)
        {
            foreach (var address in node.Addresses) labels[IpKey.From(address)] = node.Labels;
        }
        return labels.ToFrozenDictionary();
    }

    /// <summary>Process-wide namespace ids, stable across compiles so that cached keys survive a recompile.</summary>
    private static int NamespaceId(string ns) => NamespaceIds.GetOrAdd(ns, static _ => Interlocked.Increment(ref _lastNamespaceId));

    private static string PolicyKey(V1NetworkPolicy policy) =>
        $"{(string.IsNullOrEmpty(policy.Metadata?.NamespaceProperty) ? "default" : policy.Metadata.NamespaceProperty)}/{policy.Metadata?.Name}";

    /// <summary>The policies selecting one (namespace, labels) identity, by direction.</summary>
    private sealed class Selection(int[] ingress, int[] egress, string[] ingressNames, string[] egressNames, TierSelection tiers)
    {
        public TierSelection Tiers { get; } = tiers;

        /// <summary>Every policy of any tier that selects the identity for ingress: none means unprotected.</summary>
        public string[] AllIngressNames { get; } = [.. tiers.Names(PolicyDirection.Ingress, beforeNetworkPolicies: true), .. ingressNames, .. tiers.Names(PolicyDirection.Ingress, beforeNetworkPolicies: false)];
        public string[] AllEgressNames { get; } = [.. tiers.Names(PolicyDirection.Egress, beforeNetworkPolicies: true), .. egressNames, .. tiers.Names(PolicyDirection.Egress, beforeNetworkPolicies: false)];

        public int[] Ingress { get; } = ingress;
        public int[] Egress { get; } = egress;
        public string[] IngressNames { get; } = ingressNames;
        public string[] EgressNames { get; } = egressNames;

        /// <summary>Shared denials: a denied side names the isolating policies, the same list every time.</summary>
        public SideVerdict DeniedIngress { get; } = new(true, false, ingressNames);
        public SideVerdict DeniedEgress { get; } = new(true, false, egressNames);
    }

    /// <summary>What the engine precomputes per pod of the snapshot.</summary>
    private sealed record PodProfile(PodInfo Pod, int NamespaceId, int PortsId, bool Selectable, Selection Selection, IpKey[] Ips, int[] IpClasses, LabelSet NamespaceLabels, LabelSet Identity);
}
