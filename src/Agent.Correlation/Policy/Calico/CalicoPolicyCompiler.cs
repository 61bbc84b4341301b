using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;
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
            case CalicoObject.NetworkSet or CalicoObject.GlobalNetworkSet:
                if (calico.Spec.ValueKind == JsonValueKind.Object) Nets(calico.Spec, "nets", "spec", problems);
                break;
            case CalicoObject.StagedNetworkPolicy or CalicoObject.StagedGlobalNetworkPolicy or CalicoObject.StagedKubernetesNetworkPolicy:
                string action = CalicoStaging.StagedAction(calico);
                if (action is not ("Set" or "Delete" or "Learn" or "Ignore")) problems.Add($"spec.stagedAction: must be Set, Delete, Learn or Ignore (was {action})");
                else if (action == "Set" && calico.Kind == CalicoObject.StagedKubernetesNetworkPolicy)
                {
                    try
                    {
                        problems.AddRange(PolicyValidator.Validate(CalicoStaging.AsKubernetes(calico)));
                    }
                    catch (JsonException e)
                    {
                        problems.Add($"spec: not a NetworkPolicy spec ({e.Message})");
                    }
                }
                else if (action == "Set")
                {
                    Compile(CalicoStaging.AsEnforced(calico), new Dictionary<string, PolicyTier>(), problems, out _);
                }
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

    /// <summary>The most distinct tests of the policy's own endpoint one policy may make before its rules making them fail closed (2^n copies).</summary>
    private const int MaxEndpointTests = 6;

    /// <summary>
    /// A NetworkPolicy or GlobalNetworkPolicy as tier policies, in the tier its <c>spec.tier</c> names (looked up in
    /// <paramref name="tiers"/>, then among the built-in tiers; a tier nothing defines sorts last and denies, as Felix
    /// treats it). Empty, with <paramref name="excluded"/> saying why, for a policy that does not apply to pods.
    /// One policy, unless rules test the policy's own endpoint (the destination of an ingress rule, the source of an
    /// egress one) by labels: then one copy per answer to those tests, each for the endpoints that answer so and with
    /// the rules those endpoints see, all of the same name, order and tier. The engine then needs no view of its own
    /// endpoint in a rule (a flow's key judges the peer), and the copies' subjects never overlap.
    /// </summary>
    /// <param name="key">The name verdicts give it, when not its own (a staged policy judged as if enforced keeps its staged name).</param>
    /// <param name="services">The addresses of each Service's endpoints (<c>ns/name</c>), for rules' <c>services</c>; null when validating only.</param>
    public static TierPolicy[] Compile(CalicoObject policy, IReadOnlyDictionary<string, PolicyTier> tiers, List<string> problems, out string? excluded, string? key = null, IReadOnlyDictionary<string, IpRange[]>? services = null)
    {
        key ??= policy.Key;
        excluded = null;
        bool global = policy.Kind == CalicoObject.GlobalNetworkPolicy;
        string? ns = global ? null : policy.Metadata?.NamespaceProperty ?? "default";
        var spec = policy.Spec.ValueKind == JsonValueKind.Object ? policy.Spec : default;
        bool hasSpec = spec.ValueKind == JsonValueKind.Object;

        string tierName = (hasSpec ? Text(spec, "tier") : null) is { Length: > 0 } t ? t : "default";
        // The built-in tiers exist without a Tier object (semantics.md section 2).
        var tier = tiers.TryGetValue(tierName, out var known) ? known
            : tierName switch
            {
                "default" => PolicyTier.Default,
                "kube-admin" or "adminnetworkpolicy" => PolicyTier.Admin,
                "kube-baseline" or "baselineadminnetworkpolicy" => PolicyTier.Baseline,
                _ => new PolicyTier(tierName, tierName, double.PositiveInfinity, RuleAction.Deny),
            };

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

        var locals = new Dictionary<TierRule, CalicoEntity>();
        var ingress = Rules(spec, "ingress", ns, global, problems, locals, services);
        var egress = Rules(spec, "egress", ns, global, problems, locals, services);

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
        // Rules for a direction types leaves out are valid, and unused (Felix's policy sorter; no validator refuses them).
        if (preDnat && (egress.Length > 0 || declaresEgress)) problems.Add("spec: a preDNAT policy cannot have egress rules or the Egress type");

        if (doNotTrack || preDnat)
        {
            excluded = $"{key} is a {(doNotTrack ? "doNotTrack" : "preDNAT")} policy: Calico applies it to host endpoints only, never to pod traffic";
            return [];
        }

        string orderText = double.IsPositiveInfinity(order) ? "no order" : $"order {order.ToString(CultureInfo.InvariantCulture)}";
        // Ingress rules apply only when ingress is declared (and egress likewise): Calico ignores the others.
        if (!declaresIngress) ingress = [];
        if (!declaresEgress) egress = [];

        // The distinct tests of the policy's own endpoint its rules make (the same text tests the same thing).
        var tests = ingress.Concat(egress).Where(locals.ContainsKey).Select(r => locals[r])
            .GroupBy(t => t.ToString(), StringComparer.Ordinal).Select(g => g.First()).ToList();
        if (tests.Count > MaxEndpointTests)
        {
            // Too many to copy for: those rules fail closed, as a peer this reader cannot judge.
            ingress = [.. ingress.Select(r => locals.ContainsKey(r) ? FailClosed(r, "a test of the policy's own endpoint") : r)];
            egress = [.. egress.Select(r => locals.ContainsKey(r) ? FailClosed(r, "a test of the policy's own endpoint") : r)];
            tests = [];
        }
        var copies = new TierPolicy[1 << tests.Count];
        for (int answers = 0; answers < copies.Length; answers++)
        {
            var conditions = tests.Select((test, i) => (test, (answers & (1 << i)) != 0)).ToArray();
            bool Sees(TierRule rule) => !locals.TryGetValue(rule, out var test) || conditions.Single(c => c.test.ToString() == test.ToString()).Item2;
            var subject = new CalicoSubject(ns, selector, namespaceSelector, serviceAccountSelector) { EndpointTests = conditions };
            copies[answers] = new TierPolicy(key, tier, order, orderText, subject, [.. ingress.Where(Sees)], [.. egress.Where(Sees)])
            {
                DeclaresIngress = declaresIngress,
                DeclaresEgress = declaresEgress,
                // Equal orders: by name, then namespace, then kind, as Calico 3.32 breaks ties (semantics.md section 3).
                SortName = $"{policy.Metadata?.Name}/{ns}/{policy.Kind}",
            };
        }
        return copies;
    }

    private static TierRule FailClosed(TierRule rule, string why) =>
        new(rule.Index, rule.Name, rule.Action, [TierPeer.ForUnrecognised(0, why)], rule.Ports) { PortCondition = rule.PortCondition };

    /// <param name="locals">Receives each rule that tests the policy's own endpoint by labels, with that test.</param>
    private static TierRule[] Rules(JsonElement spec, string field, string? ns, bool global, List<string> problems, Dictionary<TierRule, CalicoEntity> locals, IReadOnlyDictionary<string, IpRange[]>? services)
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
            var peer = Entity(peerSide, peerAt, ns, global, problems, services);
            var local = Entity(localSide, $"{at}.{(ingress ? "destination" : "source")}", ns, global, problems, services);
            var destinationPorts = Ports(destination, "ports", $"{at}.destination", protocol, problems);
            var destinationNotPorts = Ports(destination, "notPorts", $"{at}.destination", protocol, problems);
            bool sourcePorts = source.ValueKind == JsonValueKind.Object && (source.TryGetProperty("ports", out _) || source.TryGetProperty("notPorts", out _));
            var peers = new List<TierPeer> { TierPeer.ForCondition(0, peer, peer.AllNetworks) };
            if (sourcePorts || local.TestsAddress)
            {
                // A flow's key keeps neither the source port nor a test of the subject's own address; fail closed.
                peers = [TierPeer.ForUnrecognised(0, sourcePorts ? "source ports" : "a test of the policy's own endpoint's address")];
            }
            var compiled = new TierRule(index, null, action, [.. peers], [])
            {
                PortCondition = new CalicoPorts(protocol, notProtocol, destinationPorts, destinationNotPorts)
                {
                    Icmp = Icmp(rule, "icmp", at, protocol, problems),
                    NotIcmp = Icmp(rule, "notICMP", at, protocol, problems),
                },
            };
            // Labels of the policy's own endpoint: the policy is copied per answer (Compile).
            if (!sourcePorts && !local.TestsAddress && local.Constrains) locals[compiled] = local;
            rules.Add(compiled);
            index++;
        }
        return [.. rules];
    }

    /// <summary>A rule's <c>icmp</c> or <c>notICMP</c>: a type, and optionally a code, for protocol ICMP or ICMPv6 only.</summary>
    private static IcmpTest? Icmp(JsonElement rule, string field, string at, ProtocolTest protocol, List<string> problems)
    {
        if (!rule.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.Object)
        {
            problems.Add($"{at}.{field}: must be an object with type and code");
            return null;
        }
        int? type = null, code = null;
        if (value.TryGetProperty("type", out var t) && t.ValueKind != JsonValueKind.Null)
        {
            if (t.TryGetInt32(out int number) && number is >= 0 and <= 254) type = number;
            else problems.Add($"{at}.{field}.type: must be from 0 to 254 (was {t.GetRawText()})");
        }
        if (value.TryGetProperty("code", out var c) && c.ValueKind != JsonValueKind.Null)
        {
            if (c.TryGetInt32(out int number) && number is >= 0 and <= 255) code = number;
            else problems.Add($"{at}.{field}.code: must be from 0 to 255 (was {c.GetRawText()})");
            if (type is null) problems.Add($"{at}.{field}.code: needs a type");
        }
        if (protocol.Known != PolicyProtocol.ICMP) problems.Add($"{at}.{field}: needs protocol ICMP or ICMPv6");
        return new IcmpTest(type, code);
    }

    private static CalicoEntity Entity(JsonElement entity, string at, string? ns, bool global, List<string> problems, IReadOnlyDictionary<string, IpRange[]>? services)
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
        return new CalicoEntity(ns, global, selector, notSelector, namespaceSelector, serviceAccounts, Nets(entity, "nets", at, problems), Nets(entity, "notNets", at, problems))
        {
            Service = Service(entity, at, ns, problems, services),
        };
    }

    /// <summary>
    /// A rule's <c>services</c> (<c>name</c>, <c>namespace</c>, the policy's by default): the addresses of the Service's
    /// endpoints, as Felix resolves it from EndpointSlices (destination ports are the rule's own <c>ports</c>).
    /// A Service the cluster does not hold has no addresses: the rule matches nothing.
    /// </summary>
    private static CalicoService? Service(JsonElement entity, string at, string? ns, List<string> problems, IReadOnlyDictionary<string, IpRange[]>? services)
    {
        if (!entity.TryGetProperty("services", out var value) || value.ValueKind == JsonValueKind.Null) return null;
        string? name = value.ValueKind == JsonValueKind.Object ? Text(value, "name") : null;
        string? serviceNs = value.ValueKind == JsonValueKind.Object ? Text(value, "namespace") ?? ns : null;
        if (string.IsNullOrEmpty(name) || string.IsNullOrEmpty(serviceNs))
        {
            problems.Add($"{at}.services: needs a name{(ns is null ? " and a namespace (a GlobalNetworkPolicy has none of its own)" : "")}");
            return null;
        }
        string key = $"{serviceNs}/{name}";
        return new CalicoService(key, services?.GetValueOrDefault(key) ?? []);
    }

    private static CalicoSelector Both(CalicoSelector a, CalicoSelector b) =>
        CalicoSelector.TryParse($"({a}) && ({b})", out var both, out _) ? both : a;

    internal static IpRange[] Nets(JsonElement entity, string field, string at, List<string> problems)
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

/// <summary>A Service a rule names, with its endpoints' addresses (none when the cluster does not hold it).</summary>
internal sealed record CalicoService(string Key, IpRange[] Addresses);

/// <summary>An ICMP type and, optionally, code; no type matches every ICMP message.</summary>
internal sealed record IcmpTest(int? Type, int? Code)
{
    public bool Matches(int type, int code) => (Type is null || Type == type) && (Code is null || Code == code);

    public override string ToString() => Type is null ? "any" : Code is null ? $"type {Type}" : $"type {Type} code {Code}";
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

    public IcmpTest? Icmp { get; init; }
    public IcmpTest? NotIcmp { get; init; }

    public override bool TestsIcmp => Icmp is not null || NotIcmp is not null;

    public override bool Matches(PodInfo? destinationPod, int port, PolicyProtocol protocol)
    {
        if (TestsIcmp)
        {
            if (protocol != PolicyProtocol.ICMP) return false;
            var (type, code) = PolicyEngine.IcmpTypeOf(port);
            if (Icmp is { } icmp && !icmp.Matches(type, code)) return false;
            if (NotIcmp is { } not && not.Matches(type, code)) return false;
        }
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

    public override string ToString()
    {
        var parts = new List<string> { protocol1.IsSet ? $"protocol {Name(protocol1)}" : "any protocol" };
        if (notProtocol.IsSet) parts.Add($"notProtocol {Name(notProtocol)}");
        if (ports.Length > 0) parts.Add($"ports [{string.Join(", ", ports.Select(Text))}]");
        if (notPorts.Length > 0) parts.Add($"notPorts [{string.Join(", ", notPorts.Select(Text))}]");
        if (Icmp is not null) parts.Add($"icmp {Icmp}");
        if (NotIcmp is not null) parts.Add($"notICMP {NotIcmp}");
        return string.Join(", ", parts);

        static string Name(ProtocolTest test) => test.Number switch { 6 => "TCP", 17 => "UDP", 132 => "SCTP", 1 => "ICMP", 58 => "ICMPv6", var n => n?.ToString(CultureInfo.InvariantCulture) ?? "any" };
        static string Text(CalicoPort p) => p.Name ?? (p.Start == p.End ? p.Start.ToString(CultureInfo.InvariantCulture) : $"{p.Start}:{p.End}");
    }
}

/// <summary>
/// The labels Calico's selectors see (semantics.md section 6). A pod: its own, then <c>projectcalico.org/namespace</c>,
/// <c>projectcalico.org/orchestrator</c>, <c>projectcalico.org/serviceaccount</c>, its namespace's labels prefixed
/// <c>pcns.</c> and its ServiceAccount's prefixed <c>pcsa.</c> (own labels win). A NetworkSet: its labels, its
/// namespace and the namespace's <c>pcns.</c> labels; a GlobalNetworkSet: its labels alone. Interned.
/// </summary>
internal static class CalicoLabels
{
    public const string NamespaceLabel = "projectcalico.org/namespace";
    public const string NameLabel = "projectcalico.org/name";
    private const string AccountNameLabel = "pcsa." + NameLabel;

    private static readonly ConcurrentDictionary<(LabelSet Pod, LabelSet Namespace, string? Account, LabelSet? AccountLabels), LabelSet> Pods = new();
    private static readonly ConcurrentDictionary<(LabelSet Labels, string Prefix), LabelSet> Stripped = new();

    public static LabelSet ForPod(LabelSet podLabels, LabelSet namespaceLabels, string? serviceAccount, LabelSet? accountLabels) =>
        Pods.GetOrAdd((podLabels, namespaceLabels, serviceAccount, accountLabels), static key =>
        {
            var labels = Inherited(key.Namespace);
            if (key.Account is { } sa)
            {
                foreach (var (k, v) in (key.AccountLabels ?? LabelSet.Empty).Labels) labels[$"pcsa.{k}"] = v;
                labels[AccountNameLabel] = sa;
                if (sa.Length < 63) labels["projectcalico.org/serviceaccount"] = sa;
            }
            labels["projectcalico.org/orchestrator"] = "k8s";
            foreach (var (k, v) in key.Pod.Labels) labels[k] = v;
            return LabelSet.Intern(labels);
        });

    public static LabelSet ForNetworkSet(LabelSet own, LabelSet? namespaceLabels)
    {
        if (namespaceLabels is null) return own;
        var labels = Inherited(namespaceLabels);
        foreach (var (k, v) in own.Labels) labels[k] = v;
        return LabelSet.Intern(labels);
    }

    /// <summary>A namespace's name and labels as its endpoints inherit them.</summary>
    private static Dictionary<string, string> Inherited(LabelSet namespaceLabels)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in namespaceLabels.Labels) labels[$"pcns.{k}"] = v;
        string ns = namespaceLabels.TryGetValue(ClusterObjectConverter.NamespaceNameLabel, out var name) ? name! : "";
        labels["pcns." + NameLabel] = ns;
        labels[NamespaceLabel] = ns;
        return labels;
    }

    /// <summary>The labels with the prefix taken off, and only those that had it: what a <c>pcns.</c>/<c>pcsa.</c> selector sees.</summary>
    public static LabelSet Strip(LabelSet labels, string prefix) =>
        Stripped.GetOrAdd((labels, prefix), static key =>
        {
            var stripped = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (k, v) in key.Labels.Labels)
            {
                if (k.StartsWith(key.Prefix, StringComparison.Ordinal)) stripped[k[key.Prefix.Length..]] = v;
            }
            return LabelSet.Intern(stripped);
        });

    public static string? NamespaceOf(LabelSet labels) => labels.TryGetValue(NamespaceLabel, out var ns) ? ns : null;

    /// <summary>Whether <paramref name="selector"/> takes the ServiceAccount whose labels <paramref name="labels"/> inherit.</summary>
    public static bool AccountMatches(CalicoSelector selector, LabelSet labels) =>
        labels.TryGetValue(AccountNameLabel, out _) && selector.Matches(Strip(labels, "pcsa."));
}

/// <summary>
/// Whom a Calico policy applies to: <c>selector</c> within its own namespace (a NetworkPolicy), or AND-ed with
/// <c>namespaceSelector</c> over namespace labels (a GlobalNetworkPolicy), and <c>serviceAccountSelector</c> over the
/// ServiceAccount's labels.
/// </summary>
internal sealed class CalicoSubject(string? ns, CalicoSelector selector, CalicoSelector? namespaceSelector, CalicoSelector? serviceAccountSelector)
    : TierSubject(CompiledSelector.Everything, null)
{
    /// <summary>For a copy of a policy whose rules test its own endpoint: the answers its endpoints give to those tests.</summary>
    public (CalicoEntity Test, bool Answer)[] EndpointTests { get; init; } = [];

    public override bool Selects(LabelSet namespaceLabels, LabelSet podLabels, LabelSet identity)
    {
        if (ns is not null && !string.Equals(ns, CalicoLabels.NamespaceOf(identity), StringComparison.Ordinal)) return false;
        if (namespaceSelector is not null && !namespaceSelector.Matches(CalicoLabels.Strip(identity, "pcns."))) return false;
        if (serviceAccountSelector is not null && !CalicoLabels.AccountMatches(serviceAccountSelector, identity)) return false;
        if (!selector.Matches(identity)) return false;
        foreach (var (test, answer) in EndpointTests)
        {
            if (test.SelectsEndpoint(identity) != answer) return false;
        }
        return true;
    }

    public override string ToString() =>
        $"endpoints {selector}{(ns is null ? "" : $" in namespace {ns}")}{(namespaceSelector is null ? "" : $" in namespaces {namespaceSelector}")}{(serviceAccountSelector is null ? "" : $" with service accounts {serviceAccountSelector}")}"
        + string.Concat(EndpointTests.Select(t => $"{(t.Answer ? " matching" : " not matching")} ({t.Test})"));
}

/// <summary>
/// A rule's source or destination as the other end of the flow (semantics.md sections 4 and 5). <c>selector</c>,
/// <c>serviceAccounts</c> and <c>namespaceSelector</c> select pods and network sets, scoped as Calico scopes them, and
/// take an address that is a selected pod's or lies in a selected network set; <c>notSelector</c> (never scoped) and
/// <c>notNets</c> exclude; <c>nets</c> must hold the address.
/// </summary>
internal sealed class CalicoEntity(string? ns, bool global, CalicoSelector? selector, CalicoSelector? notSelector, CalicoSelector? namespaceSelector, CalicoSelector? serviceAccounts, IpRange[] nets, IpRange[] notNets)
    : TierPeerCondition
{
    private readonly bool _globalOnly = namespaceSelector?.ToString() == "global()";

    // Scoped to namespaces: by namespaceSelector, or, in a NetworkPolicy, to its own when any selector is given.
    private readonly bool _scoped = namespaceSelector is not null || (!global && (selector is not null || notSelector is not null || serviceAccounts is not null));

    /// <summary>A rule's <c>services</c>: the peer must be one of the Service's endpoints.</summary>
    public CalicoService? Service { get; init; }

    public IpRange[] AllNetworks => [.. nets, .. notNets, .. Service?.Addresses ?? []];

    /// <summary>Whether the entity tests anything.</summary>
    public bool Constrains => selector is not null || notSelector is not null || namespaceSelector is not null || serviceAccounts is not null || nets.Length > 0 || notNets.Length > 0 || Service is not null;

    /// <summary>Whether it tests addresses (nets, notNets), which the policy's own endpoint is not judged by.</summary>
    public bool TestsAddress => nets.Length > 0 || notNets.Length > 0 || Service is not null;

    /// <summary>
    /// The entity as a test of the policy's own endpoint, by its labels (the destination of an ingress rule, the source
    /// of an egress one). Calico tests that endpoint's address against IP sets; a network set holding a pod's address
    /// is not looked at here.
    /// </summary>
    public bool SelectsEndpoint(LabelSet identity) =>
        (!Positive || Selects(identity)) && (notSelector is null || !notSelector.Matches(identity));

    private bool Positive => selector is not null || serviceAccounts is not null || _scoped;

    public override PeerMatch Match(in PeerView peer)
    {
        var ip = peer.Ip;
        if (nets.Length > 0 && !Any(nets, ip)) return PeerMatch.No;
        if (Service is { } service && !Any(service.Addresses, ip)) return PeerMatch.No;
        if (Any(notNets, ip)) return PeerMatch.No;
        if (Positive && !(peer.Identity is { } own && Selects(own) || AnySet(in peer, Selects))) return PeerMatch.No;
        if (notSelector is not null && (peer.Identity is { } mine && notSelector.Matches(mine) || AnySet(in peer, notSelector.Matches))) return PeerMatch.No;
        return PeerMatch.Yes;
    }

    /// <summary>Whether a pod or network set with these labels is selected by the positive terms.</summary>
    private bool Selects(LabelSet labels)
    {
        string? objectNs = CalicoLabels.NamespaceOf(labels);
        if (_globalOnly)
        {
            if (objectNs is not null) return false;
        }
        else if (namespaceSelector is not null)
        {
            if (objectNs is null || !namespaceSelector.Matches(CalicoLabels.Strip(labels, "pcns."))) return false;
        }
        else if (_scoped && !string.Equals(objectNs, ns, StringComparison.Ordinal))
        {
            return false;
        }
        if (serviceAccounts is not null && !CalicoLabels.AccountMatches(serviceAccounts, labels)) return false;
        return selector is null || selector.Matches(labels);
    }

    private static bool AnySet(in PeerView peer, Func<LabelSet, bool> test)
    {
        foreach (var set in peer.Networks)
        {
            if (test(set.Labels)) return true;
        }
        return false;
    }

    private static bool Any(IpRange[] ranges, IpKey ip)
    {
        foreach (var range in ranges)
        {
            if (range.Contains(ip)) return true;
        }
        return false;
    }

    public override string ToString()
    {
        var parts = new List<string>();
        if (selector is not null) parts.Add($"selector {selector}");
        if (notSelector is not null) parts.Add($"notSelector {notSelector}");
        if (namespaceSelector is not null) parts.Add($"namespaceSelector {namespaceSelector}");
        else if (_scoped) parts.Add($"in namespace {ns}");
        if (serviceAccounts is not null) parts.Add($"serviceAccounts {serviceAccounts}");
        if (nets.Length > 0) parts.Add($"nets {string.Join(",", nets.Select(n => n.Text))}");
        if (notNets.Length > 0) parts.Add($"notNets {string.Join(",", notNets.Select(n => n.Text))}");
        if (Service is { } service) parts.Add($"services {service.Key} ({service.Addresses.Length} endpoint address(es))");
        return parts.Count == 0 ? "anything" : string.Join(" and ", parts);
    }
}
