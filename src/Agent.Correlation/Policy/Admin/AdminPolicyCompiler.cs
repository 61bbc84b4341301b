using System.Globalization;
using System.Text.Json;
using k8s.Models;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Policy.Tiers;

namespace Tripline.Correlation.Policy.Admin;

/// <summary>
/// Compiles SIG Network's administrator policies into tier policies: <c>ClusterNetworkPolicy</c> (v1beta1 and v1alpha2,
/// <c>spec.tier</c> Admin or Baseline, actions Accept/Deny/Pass, <c>protocols</c>), and the older v1alpha1
/// <c>AdminNetworkPolicy</c> (the Admin tier; <c>Allow</c> is Accept, <c>ports</c>) and <c>BaselineAdminNetworkPolicy</c>
/// (the Baseline tier, the singleton <c>default</c>). What the API server's schema and CEL rules would refuse is a
/// problem, named by field, so that a manifest the cluster would reject is not judged as if it were in force.
/// </summary>
internal static class AdminPolicyCompiler
{
    private const int MaxPriority = 1000;

    public static TierPolicy Compile(AdminPolicyObject policy, List<string> problems)
    {
        string kind = policy.Kind;
        bool v1alpha1 = kind != AdminPolicyObject.ClusterNetworkPolicy;
        var spec = policy.Spec;
        if (spec.ValueKind != JsonValueKind.Object)
        {
            problems.Add("spec is missing");
            return new TierPolicy(policy.Key, PolicyTier.Admin, MaxPriority, $"priority {MaxPriority}", new TierSubject(CompiledSelector.Everything, null), [], []);
        }

        PolicyTier tier;
        if (kind == AdminPolicyObject.ClusterNetworkPolicy)
        {
            string? text = Text(spec, "tier");
            tier = text switch
            {
                "Admin" => PolicyTier.Admin,
                "Baseline" => PolicyTier.Baseline,
                _ => Problem(problems, $"spec.tier: must be Admin or Baseline (was {text ?? "missing"})", PolicyTier.Admin),
            };
        }
        else
        {
            tier = kind == AdminPolicyObject.AdminNetworkPolicy ? PolicyTier.Admin : PolicyTier.Baseline;
        }

        int priority = 0;
        if (kind == AdminPolicyObject.BaselineAdminNetworkPolicy)
        {
            if (policy.Metadata?.Name != "default") problems.Add($"metadata.name: a BaselineAdminNetworkPolicy must be named default (was {policy.Metadata?.Name})");
        }
        else if (Number(spec, "priority") is not { } value || value < 0 || value > MaxPriority)
        {
            problems.Add($"spec.priority: must be a number from 0 to {MaxPriority} (was {Raw(spec, "priority")})");
        }
        else
        {
            priority = value;
        }

        var subject = CompileSubject(spec, problems);
        var ingress = CompileRules(spec, "ingress", "from", PolicyDirection.Ingress, v1alpha1, kind, problems);
        var egress = CompileRules(spec, "egress", "to", PolicyDirection.Egress, v1alpha1, kind, problems);
        return new TierPolicy(policy.Key, tier, priority, $"priority {priority}", subject, ingress, egress);
    }

    private static TierSubject CompileSubject(JsonElement spec, List<string> problems)
    {
        if (!spec.TryGetProperty("subject", out var subject) || subject.ValueKind != JsonValueKind.Object)
        {
            problems.Add("spec.subject is required: namespaces or pods");
            return new TierSubject(CompiledSelector.Everything, CompiledSelector.Nothing);
        }
        var fields = Fields(subject);
        if (fields.Count != 1) problems.Add($"spec.subject: exactly one of namespaces or pods (had {(fields.Count == 0 ? "none" : string.Join(", ", fields))})");
        if (subject.TryGetProperty("namespaces", out var namespaces)) return new TierSubject(Selector(namespaces, "spec.subject.namespaces", problems), null);
        if (subject.TryGetProperty("pods", out var pods))
        {
            var (ns, pod) = PodsPeer(pods, "spec.subject.pods", problems);
            return new TierSubject(ns, pod);
        }
        return new TierSubject(CompiledSelector.Everything, CompiledSelector.Nothing);
    }

    private static TierRule[] CompileRules(JsonElement spec, string field, string peersField, PolicyDirection direction, bool v1alpha1, string kind, List<string> problems)
    {
        if (!spec.TryGetProperty(field, out var rules) || rules.ValueKind == JsonValueKind.Null) return [];
        if (rules.ValueKind != JsonValueKind.Array)
        {
            problems.Add($"spec.{field}: must be a list of rules");
            return [];
        }
        var compiled = new List<TierRule>();
        int index = 0;
        foreach (var rule in rules.EnumerateArray())
        {
            string path = $"spec.{field}[{index}]";
            string? name = Text(rule, "name");
            string? actionText = Text(rule, "action");
            RuleAction action = (actionText, v1alpha1) switch
            {
                ("Accept", false) or ("Allow", true) => RuleAction.Accept,
                ("Deny", _) => RuleAction.Deny,
                ("Pass", _) when kind != AdminPolicyObject.BaselineAdminNetworkPolicy => RuleAction.Pass,
                _ => Problem(problems, $"{path}.action: must be {(v1alpha1 ? kind == AdminPolicyObject.BaselineAdminNetworkPolicy ? "Allow or Deny" : "Allow, Deny or Pass" : "Accept, Deny or Pass")} (was {actionText ?? "missing"})", RuleAction.Deny),
            };
            var peers = CompilePeers(rule, peersField, path, direction, action, kind, problems);
            var ports = CompilePorts(rule, path, v1alpha1, problems);
            if (ports.Any(p => p.Name is not null) && peers.Any(p => p.Kind is TierPeerKind.Networks or TierPeerKind.Nodes or TierPeerKind.DomainNames))
            {
                problems.Add($"{path}: a named port cannot be used with networks, nodes or domainNames peers");
            }
            compiled.Add(new TierRule(index, name, action, peers, ports));
            index++;
        }
        return [.. compiled];
    }

    private static TierPeer[] CompilePeers(JsonElement rule, string field, string path, PolicyDirection direction, RuleAction action, string kind, List<string> problems)
    {
        if (!rule.TryGetProperty(field, out var peers) || peers.ValueKind != JsonValueKind.Array || peers.GetArrayLength() == 0)
        {
            problems.Add($"{path}.{field}: at least one peer is required");
            return [];
        }
        var compiled = new List<TierPeer>();
        int index = 0;
        foreach (var peer in peers.EnumerateArray())
        {
            string peerPath = $"{path}.{field}[{index}]";
            var fields = peer.ValueKind == JsonValueKind.Object ? Fields(peer) : [];
            if (fields.Count != 1) problems.Add($"{peerPath}: exactly one of namespaces, pods{(direction == PolicyDirection.Egress ? ", nodes, networks or domainNames" : "")} (had {(fields.Count == 0 ? "none" : string.Join(", ", fields))})");
            compiled.Add(CompilePeer(peer, fields, index, peerPath, direction, kind, problems));
            index++;
        }
        return [.. compiled];
    }

    private static TierPeer CompilePeer(JsonElement peer, List<string> fields, int index, string path, PolicyDirection direction, string kind, List<string> problems)
    {
        if (peer.ValueKind != JsonValueKind.Object) return TierPeer.ForUnrecognised(index, "not an object");
        if (peer.TryGetProperty("namespaces", out var namespaces))
        {
            // v1alpha1 before v0.1.5 wrapped the selector: {namespaceSelector, sameLabels, notSameLabels}.
            if (namespaces.ValueKind == JsonValueKind.Object && (namespaces.TryGetProperty("namespaceSelector", out _) || namespaces.TryGetProperty("sameLabels", out _) || namespaces.TryGetProperty("notSameLabels", out _)))
            {
                return NamespacesPeer(index, namespaces, $"{path}.namespaces", problems);
            }
            return TierPeer.ForNamespaces(index, Selector(namespaces, $"{path}.namespaces", problems));
        }
        if (peer.TryGetProperty("pods", out var pods))
        {
            // The same older shape: pods: {namespaces: {namespaceSelector|sameLabels|notSameLabels}, podSelector}.
            if (pods.ValueKind == JsonValueKind.Object && pods.TryGetProperty("namespaces", out var older))
            {
                var podSelector = pods.TryGetProperty("podSelector", out var ps) ? Selector(ps, $"{path}.pods.podSelector", problems) : CompiledSelector.Everything;
                var nsPeer = NamespacesPeer(index, older, $"{path}.pods.namespaces", problems);
                return TierPeer.ForPods(index, nsPeer.NamespaceSelector!, podSelector, nsPeer.SameLabels, nsPeer.NotSameLabels);
            }
            var (ns, pod) = PodsPeer(pods, $"{path}.pods", problems);
            return TierPeer.ForPods(index, ns, pod);
        }
        if (direction == PolicyDirection.Egress)
        {
            if (peer.TryGetProperty("nodes", out var nodes)) return TierPeer.ForNodes(index, Selector(nodes, $"{path}.nodes", problems));
            if (peer.TryGetProperty("networks", out var networks))
            {
                var ranges = new List<IpRange>();
                if (networks.ValueKind != JsonValueKind.Array || networks.GetArrayLength() == 0) problems.Add($"{path}.networks: at least one CIDR is required");
                else
                {
                    foreach (var cidr in networks.EnumerateArray())
                    {
                        string? text = cidr.ValueKind == JsonValueKind.String ? cidr.GetString() : null;
                        if (IpRange.TryParse(text, out var range)) ranges.Add(range);
                        else problems.Add($"{path}.networks: '{text}' is not a CIDR");
                    }
                }
                return TierPeer.ForNetworks(index, [.. ranges]);
            }
            if (peer.TryGetProperty("domainNames", out var domains))
            {
                if (kind == AdminPolicyObject.BaselineAdminNetworkPolicy) problems.Add($"{path}.domainNames: not a peer of a BaselineAdminNetworkPolicy");
                var names = domains.ValueKind == JsonValueKind.Array ? domains.EnumerateArray().Select(d => d.ValueKind == JsonValueKind.String ? d.GetString() ?? "" : "").ToArray() : [];
                if (names.Length == 0) problems.Add($"{path}.domainNames: at least one name is required");
                return TierPeer.ForDomainNames(index, names);
            }
        }
        // The API server refuses fields its schema lacks; from the API itself such a peer is a newer version's: it fails closed.
        if (fields.Count == 1) problems.Add($"{path}: {fields[0]} is not a{(direction == PolicyDirection.Ingress ? "n ingress" : "n egress")} peer this version knows");
        return TierPeer.ForUnrecognised(index, fields.Count == 0 ? "no field" : string.Join(", ", fields));
    }

    private static TierPeer NamespacesPeer(int index, JsonElement namespaces, string path, List<string> problems)
    {
        var selector = namespaces.TryGetProperty("namespaceSelector", out var s) ? Selector(s, $"{path}.namespaceSelector", problems) : CompiledSelector.Everything;
        return TierPeer.ForNamespaces(index, selector, Strings(namespaces, "sameLabels"), Strings(namespaces, "notSameLabels"));
    }

    private static (CompiledSelector Namespaces, CompiledSelector Pods) PodsPeer(JsonElement pods, string path, List<string> problems)
    {
        if (pods.ValueKind != JsonValueKind.Object)
        {
            problems.Add($"{path}: must be {{namespaceSelector, podSelector}}");
            return (CompiledSelector.Everything, CompiledSelector.Nothing);
        }
        var ns = pods.TryGetProperty("namespaceSelector", out var n) ? Selector(n, $"{path}.namespaceSelector", problems) : Problem(problems, $"{path}.namespaceSelector is required", CompiledSelector.Nothing);
        var pod = pods.TryGetProperty("podSelector", out var p) ? Selector(p, $"{path}.podSelector", problems) : Problem(problems, $"{path}.podSelector is required", CompiledSelector.Nothing);
        return (ns, pod);
    }

    private static TierPort[] CompilePorts(JsonElement rule, string path, bool v1alpha1, List<string> problems)
    {
        // v1alpha2 spells them protocols; v1alpha1, and v1alpha2 before its release, ports.
        if (rule.TryGetProperty("protocols", out var protocols) && protocols.ValueKind == JsonValueKind.Array) return Protocols(protocols, $"{path}.protocols", problems);
        if (rule.TryGetProperty("ports", out var ports) && ports.ValueKind == JsonValueKind.Array) return Ports(ports, $"{path}.ports", problems);
        _ = v1alpha1;
        return [];
    }

    private static TierPort[] Protocols(JsonElement protocols, string path, List<string> problems)
    {
        var result = new List<TierPort>();
        int index = 0;
        foreach (var entry in protocols.EnumerateArray())
        {
            string entryPath = $"{path}[{index++}]";
            var fields = entry.ValueKind == JsonValueKind.Object ? Fields(entry) : [];
            if (fields.Count != 1)
            {
                problems.Add($"{entryPath}: exactly one of tcp, udp, sctp or destinationNamedPort");
                continue;
            }
            if (entry.TryGetProperty("destinationNamedPort", out var named))
            {
                result.Add(new TierPort(PolicyProtocol.TCP, 0, 0, NamedPort(named, $"{entryPath}.destinationNamedPort", problems)));
                continue;
            }
            var protocol = fields[0] switch
            {
                "tcp" => PolicyProtocol.TCP,
                "udp" => PolicyProtocol.UDP,
                "sctp" => PolicyProtocol.SCTP,
                _ => Problem(problems, $"{entryPath}: unknown protocol {fields[0]}", PolicyProtocol.Other),
            };
            var body = entry.GetProperty(fields[0]);
            if (body.ValueKind != JsonValueKind.Object || !body.TryGetProperty("destinationPort", out var port) || port.ValueKind != JsonValueKind.Object)
            {
                problems.Add($"{entryPath}.{fields[0]}.destinationPort is required (all ports: a range from 1 to 65535)");
                continue;
            }
            if (port.TryGetProperty("range", out var range))
            {
                result.Add(Range(protocol, Number(range, "start"), Number(range, "end"), $"{entryPath}.{fields[0]}.destinationPort.range", strict: true, problems));
            }
            else if (Number(port, "number") is { } number && number is >= 1 and <= 65535)
            {
                result.Add(new TierPort(protocol, number, number, null));
            }
            else
            {
                problems.Add($"{entryPath}.{fields[0]}.destinationPort: number from 1 to 65535, or range (was {port.GetRawText()})");
            }
        }
        return [.. result];
    }

    private static TierPort[] Ports(JsonElement ports, string path, List<string> problems)
    {
        var result = new List<TierPort>();
        int index = 0;
        foreach (var entry in ports.EnumerateArray())
        {
            string entryPath = $"{path}[{index++}]";
            if (entry.ValueKind == JsonValueKind.Object && entry.TryGetProperty("portNumber", out var number))
            {
                var protocol = Protocol(number, $"{entryPath}.portNumber", problems);
                if (Number(number, "port") is { } port && port is >= 1 and <= 65535) result.Add(new TierPort(protocol, port, port, null));
                else problems.Add($"{entryPath}.portNumber.port: must be from 1 to 65535");
            }
            else if (entry.ValueKind == JsonValueKind.Object && entry.TryGetProperty("portRange", out var range))
            {
                result.Add(Range(Protocol(range, $"{entryPath}.portRange", problems), Number(range, "start"), Number(range, "end"), $"{entryPath}.portRange", strict: false, problems));
            }
            else if (entry.ValueKind == JsonValueKind.Object && entry.TryGetProperty("namedPort", out var named))
            {
                result.Add(new TierPort(PolicyProtocol.TCP, 0, 0, NamedPort(named, $"{entryPath}.namedPort", problems)));
            }
            else
            {
                problems.Add($"{entryPath}: exactly one of portNumber, portRange or namedPort");
            }
        }
        return [.. result];
    }

    private static TierPort Range(PolicyProtocol protocol, int? start, int? end, string path, bool strict, List<string> problems)
    {
        // v1alpha2's schema says start < end; v1alpha1's only that both are ports (and calls the range inclusive).
        if (start is not { } s || end is not { } e || s < 1 || e > 65535 || (strict ? s >= e : s > e))
        {
            problems.Add($"{path}: start and end from 1 to 65535, start {(strict ? "below" : "at most")} end (was {start?.ToString(CultureInfo.InvariantCulture) ?? "missing"}-{end?.ToString(CultureInfo.InvariantCulture) ?? "missing"})");
            return new TierPort(protocol, 1, 0, null);
        }
        return new TierPort(protocol, s, e, null);
    }

    private static PolicyProtocol Protocol(JsonElement entry, string path, List<string> problems) => Text(entry, "protocol") switch
    {
        null or "TCP" => PolicyProtocol.TCP,
        "UDP" => PolicyProtocol.UDP,
        "SCTP" => PolicyProtocol.SCTP,
        var other => Problem(problems, $"{path}.protocol: TCP, UDP or SCTP (was {other})", PolicyProtocol.Other),
    };

    private static string NamedPort(JsonElement named, string path, List<string> problems)
    {
        string? name = named.ValueKind == JsonValueKind.String ? named.GetString() : null;
        if (string.IsNullOrEmpty(name)) problems.Add($"{path}: a container port name is required");
        return name ?? "";
    }

    private static CompiledSelector Selector(JsonElement selector, string path, List<string> problems)
    {
        if (selector.ValueKind == JsonValueKind.Null) return CompiledSelector.Everything;
        if (selector.ValueKind != JsonValueKind.Object)
        {
            problems.Add($"{path}: must be a label selector");
            return CompiledSelector.Nothing;
        }
        var model = new V1LabelSelector();
        if (selector.TryGetProperty("matchLabels", out var labels) && labels.ValueKind == JsonValueKind.Object)
        {
            model.MatchLabels = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var label in labels.EnumerateObject()) model.MatchLabels[label.Name] = ScalarText(label.Value);
        }
        if (selector.TryGetProperty("matchExpressions", out var expressions) && expressions.ValueKind == JsonValueKind.Array)
        {
            model.MatchExpressions = [];
            int index = 0;
            foreach (var expression in expressions.EnumerateArray())
            {
                string? op = Text(expression, "operator");
                string[] values = Strings(expression, "values");
                if (op is not ("In" or "NotIn" or "Exists" or "DoesNotExist")) problems.Add($"{path}.matchExpressions[{index}].operator: In, NotIn, Exists or DoesNotExist (was {op ?? "missing"})");
                else if ((op is "In" or "NotIn") != (values.Length > 0)) problems.Add($"{path}.matchExpressions[{index}].values: {(op is "In" or "NotIn" ? "required" : "must be empty")} for {op}");
                model.MatchExpressions.Add(new V1LabelSelectorRequirement { Key = Text(expression, "key") ?? "", OperatorProperty = op ?? "", Values = values });
                index++;
            }
        }
        return CompiledSelector.Compile(model);
    }

    private static List<string> Fields(JsonElement element)
    {
        var fields = new List<string>();
        foreach (var property in element.EnumerateObject())
        {
            if (property.Value.ValueKind != JsonValueKind.Null) fields.Add(property.Name);
        }
        return fields;
    }

    private static string? Text(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind is JsonValueKind.String or JsonValueKind.Number
            ? ScalarText(value)
            : null;

    private static string ScalarText(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString() ?? "",
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        _ => value.GetRawText(),
    };

    private static string[] Strings(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var values) && values.ValueKind == JsonValueKind.Array
            ? [.. values.EnumerateArray().Select(ScalarText)]
            : [];

    /// <summary>A number written as a number or, as a YAML reader may hand it over, as its text.</summary>
    private static int? Number(JsonElement element, string name)
    {
        if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(name, out var value)) return null;
        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int number)) return number;
        if (value.ValueKind == JsonValueKind.String && int.TryParse(value.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out number)) return number;
        return null;
    }

    private static string Raw(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) ? value.GetRawText() : "missing";

    private static T Problem<T>(List<string> problems, string problem, T fallback)
    {
        problems.Add(problem);
        return fallback;
    }
}
