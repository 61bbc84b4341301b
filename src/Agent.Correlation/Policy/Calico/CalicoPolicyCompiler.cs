using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Policy.Tiers;

namespace Tripline.Correlation.Policy.Calico;

/// <summary>
/// Compiles Calico's <c>NetworkPolicy</c> and <c>GlobalNetworkPolicy</c> into tier policies, and its <c>Tier</c>s into
/// policy tiers (research/calico/semantics.md sections 2 to 5). What Calico's validators would refuse is a problem named
/// by field. Policies for host endpoints only (<c>doNotTrack</c>, <c>preDNAT</c>) compile to nothing, with a reason.
/// </summary>
internal static class CalicoPolicyCompiler
{
    /// <summary>Collects what Calico's API server would refuse in <paramref name="calico"/>, by field.</summary>
    public static void Validate(CalicoObject calico, List<string> problems)
    {
        switch (calico.Kind)
        {
            case CalicoObject.NetworkPolicy or CalicoObject.GlobalNetworkPolicy:
                Compile(calico, new Dictionary<string, PolicyTier>(), problems, out _);
                break;
            case CalicoObject.Tier:
                CompileTier(calico, problems);
                break;
        }
    }

    /// <summary>A Tier object: its order (absent: after every ordered tier) and default action (anything but Pass denies).</summary>
    public static PolicyTier CompileTier(CalicoObject tier, List<string> problems)
    {
        string name = tier.Metadata?.Name ?? "";
        var spec = tier.Spec;
        double order = double.PositiveInfinity;
        var action = RuleAction.Deny;
        if (spec.ValueKind == JsonValueKind.Object)
        {
            if (spec.TryGetProperty("order", out var o) && o.ValueKind != JsonValueKind.Null)
            {
                if (!TryNumber(o, out order)) problems.Add($"spec.order: not a number ({o.GetRawText()})");
            }
            if (Text(spec, "defaultAction") is { } text)
            {
                if (text == "Pass") action = RuleAction.Pass;
                else if (text != "Deny") problems.Add($"spec.defaultAction: must be Deny or Pass (was {text})");
            }
        }
        // The built-in tiers keep their fixed order and action, whatever an object says.
        return name switch
        {
            "default" => PolicyTier.Default,
            "kube-admin" or "adminnetworkpolicy" => PolicyTier.Admin,
            "kube-baseline" or "baselineadminnetworkpolicy" => PolicyTier.Baseline,
            _ => new PolicyTier(name, name, order, action),
        };
    }

    /// <summary>
    /// A NetworkPolicy or GlobalNetworkPolicy as a tier policy, in the tier its <c>spec.tier</c> names (looked up in
    /// <paramref name="tiers"/>; a tier no object defines sorts last and denies, as Felix treats it). Null, with
    /// <paramref name="excluded"/> saying why, for a policy that does not apply to pods.
    /// </summary>
    public static TierPolicy? Compile(CalicoObject policy, IReadOnlyDictionary<string, PolicyTier> tiers, List<string> problems, out string? excluded)
    {
        excluded = null;
        bool global = policy.Kind == CalicoObject.GlobalNetworkPolicy;
        string? ns = global ? null : policy.Metadata?.NamespaceProperty ?? "default";
        var spec = policy.Spec.ValueKind == JsonValueKind.Object ? policy.Spec : default;
        bool hasSpec = spec.ValueKind == JsonValueKind.Object;

        string tierName = (hasSpec ? Text(spec, "tier") : null) is { Length: > 0 } t ? t : "default";
        var tier = tiers.TryGetValue(tierName, out var known) ? known
            : tierName == "default" ? PolicyTier.Default
            : new PolicyTier(tierName, tierName, double.PositiveInfinity, RuleAction.Deny);

        double order = double.PositiveInfinity;
        if (hasSpec && spec.TryGetProperty("order", out var o) && o.ValueKind != JsonValueKind.Null && !TryNumber(o, out order))
        {
            problems.Add($"spec.order: not a number ({o.GetRawText()})");
        }

        bool doNotTrack = hasSpec && Bool(spec, "doNotTrack");
        bool preDnat = hasSpec && Bool(spec, "preDNAT");
        if (!global && hasSpec)
        {
            foreach (string field in (string[])["namespaceSelector", "doNotTrack", "preDNAT", "applyOnForward"])
            {
                if (spec.TryGetProperty(field, out _)) problems.Add($"spec.{field}: a namespaced NetworkPolicy has no such field (GlobalNetworkPolicy has)");
            }
        }
        if (doNotTrack && preDnat) problems.Add("spec: doNotTrack and preDNAT cannot both be true");

        var selector = ParseSelector(spec, "selector", problems, allowGlobal: false) ?? CalicoSelector.All;
        var namespaceSelector = global ? ParseSelector(spec, "namespaceSelector", problems, allowGlobal: false) : null;
        var serviceAccountSelector = ParseSelector(spec, "serviceAccountSelector", problems, allowGlobal: false);

        var ingress = Rules(spec, "ingress", ns, global, problems);
        var egress = Rules(spec, "egress", ns, global, problems);

        // types: written, or inferred as the v3 API server does; a v1 CRD with none reaches Felix as both (semantics.md 1a, 2).
        bool declaresIngress, declaresEgress;
        if (hasSpec && spec.TryGetProperty("types", out var types) && types.ValueKind == JsonValueKind.Array && types.GetArrayLength() > 0)
        {
            declaresIngress = declaresEgress = false;
            foreach (var type in types.EnumerateArray())
            {
                switch (type.ValueKind == JsonValueKind.String ? type.GetString() : null)
                {
                    case "Ingress": declaresIngress = true; break;
                    case "Egress": declaresEgress = true; break;
                    default: problems.Add($"spec.types: must be Ingress or Egress (was {type.GetRawText()})"); break;
                }
            }
        }
        else if (policy.IsCrd)
        {
            declaresIngress = declaresEgress = true;
        }
        else
        {
            declaresEgress = egress.Length > 0;
            declaresIngress = ingress.Length > 0 || egress.Length == 0;
        }
        if (ingress.Length > 0 && !declaresIngress) problems.Add("spec.ingress: rules given but types does not include Ingress");
        if (egress.Length > 0 && !declaresEgress) problems.Add("spec.egress: rules given but types does not include Egress");
        if (preDnat && (egress.Length > 0 || declaresEgress)) problems.Add("spec: a preDNAT policy cannot have egress rules or the Egress type");

        if (doNotTrack || preDnat)
        {
            excluded = $"{policy.Key} is a {(doNotTrack ? "doNotTrack" : "preDNAT")} policy: Calico applies it to host endpoints only, never to pod traffic";
            return null;
        }

        var subject = new CalicoSubject(ns, selector, namespaceSelector, serviceAccountSelector);
        string orderText = double.IsPositiveInfinity(order) ? "no order" : $"order {order.ToString(CultureInfo.InvariantCulture)}";
        // Ingress rules apply only when ingress is declared (and egress likewise): Calico ignores the others.
        return new TierPolicy(policy.Key, tier, order, orderText, subject, declaresIngress ? ingress : [], declaresEgress ? egress : [])
        {
            DeclaresIngress = declaresIngress,
            DeclaresEgress = declaresEgress,
        };
    }

    private static TierRule[] Rules(JsonElement spec, string field, string? ns, bool global, List<string> problems)
    {
        if (spec.ValueKind != JsonValueKind.Object || !spec.TryGetProperty(field, out var list) || list.ValueKind == JsonValueKind.Null) return [];
        if (list.ValueKind != JsonValueKind.Array)
        {
            problems.Add($"spec.{field}: must be a list of rules");
            return [];
        }
        bool ingress = field == "ingress";
        var rules = new List<TierRule>();
        int index = 0;
        foreach (var rule in list.EnumerateArray())
        {
            string at = $"spec.{field}[{index}]";
            if (rule.ValueKind != JsonValueKind.Object)
            {
                problems.Add($"{at}: must be an object");
                index++;
                continue;
            }
            var action = Text(rule, "action") switch
            {
                "Allow" => RuleAction.Accept,
                "Deny" => RuleAction.Deny,
                "Pass" => RuleAction.Pass,
                "Log" => RuleAction.Log,
                var other => Problem(problems, $"{at}.action: must be Allow, Deny, Pass or Log (was {other ?? "missing"})", RuleAction.Deny),
            };
            var protocol = Protocol(rule, "protocol", at, problems);
            var notProtocol = Protocol(rule, "notProtocol", at, problems);
            // The peer is the other end: the source of an ingress rule, the destination of an egress one; ports are the destination's.
            var source = rule.TryGetProperty("source", out var s) && s.ValueKind == JsonValueKind.Object ? s : default;
            var destination = rule.TryGetProperty("destination", out var d) && d.ValueKind == JsonValueKind.Object ? d : default;
            var peerSide = ingress ? source : destination;
            var localSide = ingress ? destination : source;
            string peerAt = $"{at}.{(ingress ? "source" : "destination")}";
            var peer = Entity(peerSide, peerAt, ns, global, problems);
            var local = Entity(localSide, $"{at}.{(ingress ? "destination" : "source")}", ns, global, problems);
            var destinationPorts = Ports(destination, "ports", $"{at}.destination", protocol, problems);
            var destinationNotPorts = Ports(destination, "notPorts", $"{at}.destination", protocol, problems);
            bool sourcePorts = source.ValueKind == JsonValueKind.Object && (source.TryGetProperty("ports", out _) || source.TryGetProperty("notPorts", out _));
            var peers = new List<TierPeer> { TierPeer.ForCondition(0, peer, peer.AllNetworks) };
            if (sourcePorts || local.Constrains)
            {
                // A flow's key keeps neither the source port nor a test of the subject's own address; fail closed.
                peers = [TierPeer.ForUnrecognised(0, sourcePorts ? "source ports" : "a test of the policy's own endpoint")];
            }
            rules.Add(new TierRule(index, null, action, [.. peers], [])
            {
                PortCondition = new CalicoPorts(protocol, notProtocol, destinationPorts, destinationNotPorts),
            });
            index++;
        }
        return [.. rules];
    }

    private static CalicoEntity Entity(JsonElement entity, string at, string? ns, bool global, List<string> problems)
    {
        if (entity.ValueKind != JsonValueKind.Object) return new CalicoEntity(ns, global, null, null, null, null, [], []);
        var selector = ParseSelector(entity, "selector", problems, allowGlobal: false, at);
        var notSelector = ParseSelector(entity, "notSelector", problems, allowGlobal: false, at);
        var namespaceSelector = ParseSelector(entity, "namespaceSelector", problems, allowGlobal: true, at);
        CalicoSelector? serviceAccounts = null;
        if (entity.TryGetProperty("serviceAccounts", out var sa) && sa.ValueKind == JsonValueKind.Object)
        {
            serviceAccounts = ParseSelector(sa, "selector", problems, allowGlobal: false, at + ".serviceAccounts");
            if (sa.TryGetProperty("names", out var names) && names.ValueKind == JsonValueKind.Array)
            {
                string terms = string.Join(", ", names.EnumerateArray().Select(n => $"'{n.GetString()}'"));
                if (CalicoSelector.TryParse($"projectcalico.org/name in {{{terms}}}", out var byName, out _))
                {
                    serviceAccounts = serviceAccounts is null ? byName : Both(serviceAccounts, byName);
                }
            }
        }
        return new CalicoEntity(ns, global, selector, notSelector, namespaceSelector, serviceAccounts, Nets(entity, "nets", at, problems), Nets(entity, "notNets", at, problems));
    }

    private static CalicoSelector Both(CalicoSelector a, CalicoSelector b) =>
        CalicoSelector.TryParse($"({a}) && ({b})", out var both, out _) ? both : a;

    private static IpRange[] Nets(JsonElement entity, string field, string at, List<string> problems)
    {
        if (!entity.TryGetProperty(field, out var list) || list.ValueKind != JsonValueKind.Array) return [];
        var nets = new List<IpRange>();
        foreach (var item in list.EnumerateArray())
        {
            string? text = item.ValueKind == JsonValueKind.String ? item.GetString() : null;
            // A plain address is a /32 (or /128).
            if (text is not null && !text.Contains('/') && IPAddress.TryParse(text, out var ip)) text = $"{text}/{(ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128)}";
            if (IpRange.TryParse(text, out var range)) nets.Add(range);
            else problems.Add($"{at}.{field}: not a CIDR ({item.GetRawText()})");
        }
        return [.. nets];
    }

    private static CalicoPort[] Ports(JsonElement entity, string field, string at, ProtocolTest protocol, List<string> problems)
    {
        if (entity.ValueKind != JsonValueKind.Object || !entity.TryGetProperty(field, out var list) || list.ValueKind != JsonValueKind.Array) return [];
        var ports = new List<CalicoPort>();
        foreach (var item in list.EnumerateArray())
        {
            string text = item.ValueKind == JsonValueKind.String ? item.GetString()! : item.GetRawText();
            int colon = text.IndexOf(':');
            if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int single) && single is >= 0 and <= 65535)
            {
                ports.Add(new CalicoPort(single, single, null));
            }
            else if (colon > 0 && int.TryParse(text.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out int min)
                && int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int max) && min <= max && max <= 65535)
            {
                ports.Add(new CalicoPort(min, max, null));
            }
            else if (text.Length is > 0 and <= 128 && text.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-'))
            {
                ports.Add(new CalicoPort(0, 0, text));
                continue;
            }
            else
            {
                problems.Add($"{at}.{field}: not a port, a min:max range or a port name ({item.GetRawText()})");
                continue;
            }
            if (protocol.Known is not (PolicyProtocol.TCP or PolicyProtocol.UDP or PolicyProtocol.SCTP) || protocol.Number is not null && protocol.Number is not (6 or 17 or 132))
            {
                problems.Add($"{at}.{field}: numeric ports need protocol TCP, UDP or SCTP");
            }
        }
        return [.. ports];
    }

    private static ProtocolTest Protocol(JsonElement rule, string field, string at, List<string> problems)
    {
        if (!rule.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null) return default;
        string text = value.ValueKind == JsonValueKind.String ? value.GetString()! : value.GetRawText();
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int number))
        {
            if (number is < 1 or > 255) problems.Add($"{at}.{field}: must be from 1 to 255 (was {number})");
            return new ProtocolTest(number switch { 6 => PolicyProtocol.TCP, 17 => PolicyProtocol.UDP, 132 => PolicyProtocol.SCTP, 1 or 58 => PolicyProtocol.ICMP, _ => PolicyProtocol.Other }, number);
        }
        return text switch
        {
            "TCP" => new ProtocolTest(PolicyProtocol.TCP, 6),
            "UDP" => new ProtocolTest(PolicyProtocol.UDP, 17),
            "SCTP" => new ProtocolTest(PolicyProtocol.SCTP, 132),
            "ICMP" => new ProtocolTest(PolicyProtocol.ICMP, 1),
            "ICMPv6" => new ProtocolTest(PolicyProtocol.ICMP, 58),
            "UDPLite" => new ProtocolTest(PolicyProtocol.Other, 136),
            _ => Problem(problems, $"{at}.{field}: must be TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number (was {text})", default(ProtocolTest)),
        };
    }

    private static CalicoSelector? ParseSelector(JsonElement obj, string field, List<string> problems, bool allowGlobal, string at = "spec")
    {
        if (obj.ValueKind != JsonValueKind.Object || !obj.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.String)
        {
            problems.Add($"{at}.{field}: must be a selector string");
            return null;
        }
        if (!CalicoSelector.TryParse(value.GetString()!, out var selector, out var error))
        {
            problems.Add($"{at}.{field}: {error}");
            return null;
        }
        if (selector.UsesGlobal && !(allowGlobal && selector.ToString() == "global()"))
        {
            problems.Add($"{at}.{field}: global() may only be the whole of a rule's namespaceSelector");
        }
        return selector;
    }

    private static string? Text(JsonElement obj, string field) =>
        obj.TryGetProperty(field, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static bool Bool(JsonElement obj, string field) =>
        obj.TryGetProperty(field, out var value) && (value.ValueKind == JsonValueKind.True || (value.ValueKind == JsonValueKind.String && value.GetString() == "true"));

    private static bool TryNumber(JsonElement value, out double number)
    {
        if (value.ValueKind == JsonValueKind.Number) return value.TryGetDouble(out number);
        number = 0;
        return value.ValueKind == JsonValueKind.String && double.TryParse(value.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out number);
    }

    private static T Problem<T>(List<string> problems, string problem, T value)
    {
        problems.Add(problem);
        return value;
    }
}

/// <summary>A rule's protocol or notProtocol: the class the engine knows and, where written, the number.</summary>
internal readonly record struct ProtocolTest(PolicyProtocol? Known, int? Number)
{
    public bool IsSet => Known is not null;
}

internal sealed record CalicoPort(int Start, int End, string? Name);

/// <summary>
/// A rule's protocol, notProtocol, destination ports and notPorts. A named port matches the destination pod's port of
/// that name whose protocol is the rule's (any, with no protocol).
/// </summary>
internal sealed class CalicoPorts(ProtocolTest protocol, ProtocolTest notProtocol, CalicoPort[] ports, CalicoPort[] notPorts) : TierPortCondition
{
    public override bool HasNamedPorts { get; } = ports.Concat(notPorts).Any(p => p.Name is not null);

    public override bool Matches(PodInfo? destinationPod, int port, PolicyProtocol protocol)
    {
        // Protocols the engine lumps into Other are judged only by class: a rule for protocol 253 matches any Other.
        if (protocol1.IsSet && protocol1.Known != protocol) return false;
        if (notProtocol.IsSet && notProtocol.Known == protocol && protocol != PolicyProtocol.Other) return false;
        bool portful = protocol is PolicyProtocol.TCP or PolicyProtocol.UDP or PolicyProtocol.SCTP;
        if (ports.Length > 0 && (!portful || !ports.Any(p => Match(p, destinationPod, port, protocol)))) return false;
        if (notPorts.Length > 0 && portful && notPorts.Any(p => Match(p, destinationPod, port, protocol))) return false;
        return true;
    }

    private readonly ProtocolTest protocol1 = protocol;

    private bool Match(CalicoPort candidate, PodInfo? destinationPod, int port, PolicyProtocol protocol)
    {
        if (candidate.Name is null) return port >= candidate.Start && port <= candidate.End;
        if (destinationPod is null) return false;
        string protocolName = CompiledPort.ProtocolName(protocol);
        foreach (var declared in destinationPod.Ports)
        {
            if (declared.Port == port && string.Equals(declared.Name, candidate.Name, StringComparison.Ordinal) && string.Equals(declared.Protocol, protocolName, StringComparison.Ordinal)
                && (!protocol1.IsSet || protocol1.Known == protocol)) return true;
        }
        return false;
    }

    public override string ToString() => $"protocol {protocol1.Number?.ToString(CultureInfo.InvariantCulture) ?? "any"}, ports [{string.Join(",", ports.Select(p => p.Name ?? $"{p.Start}:{p.End}"))}]";
}

/// <summary>
/// The labels Calico's selectors see on a pod (semantics.md section 6): its own, then <c>projectcalico.org/namespace</c>,
/// <c>projectcalico.org/orchestrator</c>, and the namespace's labels prefixed <c>pcns.</c>. Interned per identity.
/// </summary>
internal static class CalicoLabels
{
    private static readonly ConcurrentDictionary<(LabelSet Pod, LabelSet Namespace, string? Account), LabelSet> Cache = new();

    public static LabelSet ForPod(LabelSet podLabels, LabelSet namespaceLabels, string? serviceAccount = null, LabelSet? accountLabels = null) =>
        Cache.GetOrAdd((podLabels, namespaceLabels, serviceAccount), static (key, accountLabels) =>
        {
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (k, v) in key.Namespace.Labels) labels[$"pcns.{k}"] = v;
            string ns = key.Namespace.TryGetValue(ClusterObjectConverter.NamespaceNameLabel, out var name) ? name! : "";
            labels["pcns.projectcalico.org/name"] = ns;
            if (key.Account is { } sa)
            {
                foreach (var (k, v) in (accountLabels ?? LabelSet.Empty).Labels) labels[$"pcsa.{k}"] = v;
                labels["pcsa.projectcalico.org/name"] = sa;
                if (sa.Length < 63) labels["projectcalico.org/serviceaccount"] = sa;
            }
            labels["projectcalico.org/namespace"] = ns;
            labels["projectcalico.org/orchestrator"] = "k8s";
            // Own labels win over inherited ones.
            foreach (var (k, v) in key.Pod.Labels) labels[k] = v;
            return LabelSet.Intern(labels);
        }, accountLabels);

    /// <summary>The labels with the prefix taken off, and only those that had it: what a pcns./pcsa. selector means.</summary>
    public static LabelSet Strip(LabelSet labels, string prefix)
    {
        var stripped = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in labels.Labels)
        {
            if (k.StartsWith(prefix, StringComparison.Ordinal)) stripped[k[prefix.Length..]] = v;
        }
        return LabelSet.Intern(stripped);
    }
}

/// <summary>
/// Whom a Calico policy applies to: <c>selector</c> within its own namespace (a NetworkPolicy), or AND-ed with
/// <c>namespaceSelector</c> over namespace labels (a GlobalNetworkPolicy), and <c>serviceAccountSelector</c> over the
/// ServiceAccount's labels.
/// </summary>
internal sealed class CalicoSubject(string? ns, CalicoSelector selector, CalicoSelector? namespaceSelector, CalicoSelector? serviceAccountSelector)
    : TierSubject(CompiledSelector.Everything, null)
{
    public CalicoSelector Selector { get; } = selector;
    public CalicoSelector? ServiceAccountSelector { get; } = serviceAccountSelector;

    public override bool Selects(LabelSet namespaceLabels, LabelSet podLabels) => Selects(namespaceLabels, podLabels, null, null);

    /// <summary>
    /// With the pod's service account and its labels. Without them (the engine selects by namespace and labels alone,
    /// not yet by service account) a policy with a serviceAccountSelector selects no pod.
    /// </summary>
    public bool Selects(LabelSet namespaceLabels, LabelSet podLabels, string? serviceAccount, LabelSet? accountLabels)
    {
        string? podNs = namespaceLabels.TryGetValue(ClusterObjectConverter.NamespaceNameLabel, out var name) ? name : null;
        if (ns is not null && !string.Equals(ns, podNs, StringComparison.Ordinal)) return false;
        if (namespaceSelector is not null && !namespaceSelector.Matches(namespaceLabels)) return false;
        if (ServiceAccountSelector is not null && (serviceAccount is null || !ServiceAccountSelector.Matches(WithName(accountLabels ?? LabelSet.Empty, serviceAccount)))) return false;
        return Selector.Matches(CalicoLabels.ForPod(podLabels, namespaceLabels, serviceAccount, accountLabels));
    }

    private static LabelSet WithName(LabelSet labels, string name)
    {
        var all = new Dictionary<string, string>(labels.Labels, StringComparer.Ordinal) { ["projectcalico.org/name"] = name };
        return LabelSet.Intern(all);
    }

    public override string ToString() =>
        $"endpoints {Selector}{(ns is null ? "" : $" in namespace {ns}")}{(namespaceSelector is null ? "" : $" in namespaces {namespaceSelector}")}{(ServiceAccountSelector is null ? "" : $" with service accounts {ServiceAccountSelector}")}";
}

/// <summary>
/// A rule's source or destination as the other end of the flow (semantics.md sections 4 and 5): <c>selector</c>,
/// <c>serviceAccounts</c> and <c>namespaceSelector</c> scoped as Calico scopes them, <c>notSelector</c> never scoped,
/// <c>nets</c>/<c>notNets</c>. Network sets are not matched yet.
/// </summary>
internal sealed class CalicoEntity(string? ns, bool global, CalicoSelector? selector, CalicoSelector? notSelector, CalicoSelector? namespaceSelector, CalicoSelector? serviceAccounts, IpRange[] nets, IpRange[] notNets)
    : TierPeerCondition
{
    public IpRange[] AllNetworks { get; } = [.. nets, .. notNets];

    /// <summary>Whether the entity tests anything (the subject's own side may only be left empty here).</summary>
    public bool Constrains => selector is not null || notSelector is not null || namespaceSelector is not null || serviceAccounts is not null || nets.Length > 0 || notNets.Length > 0;

    public override PeerMatch Match(in PeerView peer)
    {
        var ip = peer.Ip;
        if (nets.Length > 0 && !nets.Any(n => n.Contains(ip))) return PeerMatch.No;
        if (notNets.Any(n => n.Contains(ip))) return PeerMatch.No;
        LabelSet? labels = peer.Pod is { } pod && peer.NamespaceLabels is { } nsLabels ? CalicoLabels.ForPod(pod.Labels, nsLabels) : null;
        // Positive scope: present when any of selector, notSelector, serviceAccounts or namespaceSelector is, except in a
        // GlobalNetworkPolicy with no namespaceSelector (all endpoints, any namespace).
        bool scoped = namespaceSelector is not null || (!global && (selector is not null || notSelector is not null || serviceAccounts is not null));
        bool positive = selector is not null || serviceAccounts is not null || scoped;
        if (positive)
        {
            if (labels is null) return PeerMatch.No; // Network sets and host endpoints are not modelled yet.
            if (namespaceSelector is not null)
            {
                if (namespaceSelector.ToString() == "global()") return PeerMatch.No; // only non-namespaced endpoints and GlobalNetworkSets
                if (!namespaceSelector.Matches(CalicoLabels.Strip(labels, "pcns."))) return PeerMatch.No;
            }
            else if (!global && !string.Equals(peer.Pod!.Namespace, ns, StringComparison.Ordinal))
            {
                return PeerMatch.No;
            }
            if (serviceAccounts is not null) return PeerMatch.No; // the peer's service account is not in the view yet
            if (selector is not null && !selector.Matches(labels)) return PeerMatch.No;
        }
        if (notSelector is not null && labels is not null && notSelector.Matches(labels)) return PeerMatch.No;
        return PeerMatch.Yes;
    }

    public override string ToString()
    {
        var parts = new List<string>();
        if (selector is not null) parts.Add($"selector {selector}");
        if (notSelector is not null) parts.Add($"notSelector {notSelector}");
        if (namespaceSelector is not null) parts.Add($"namespaceSelector {namespaceSelector}");
        if (serviceAccounts is not null) parts.Add($"serviceAccounts {serviceAccounts}");
        if (nets.Length > 0) parts.Add($"nets {string.Join(",", nets.Select(n => n.Text))}");
        if (notNets.Length > 0) parts.Add($"notNets {string.Join(",", notNets.Select(n => n.Text))}");
        return parts.Count == 0 ? "anything" : string.Join(" and ", parts);
    }
}
