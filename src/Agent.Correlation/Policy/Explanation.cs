using System.Buffers;
using System.Text;
using System.Text.Json;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;
using Tripline.Correlation.Policy.Tiers;

namespace Tripline.Correlation.Policy;

/// <summary>One end of an explained flow, as a person names it.</summary>
public sealed record EndpointSummary(string Kind, string Name, string Ip, string? Namespace, string? Labels, string? Node);

/// <summary>How one rule of a policy fared against the flow: its peers and its ports, each with the reason.</summary>
public sealed record RuleExplanation(string Rule, bool Matched, bool PeerMatched, string Peers, bool PortMatched, string Ports);

/// <summary>One policy that selects the pod for the side's direction, and what each of its rules made of the flow.</summary>
/// <param name="Tier">Admin or Baseline for the administrator's tiers (rules walked in order until one decides); null for a NetworkPolicy.</param>
/// <param name="Action">The action of the rule that decided in this policy (Accept, Deny, Pass); null when none matched.</param>
public sealed record PolicyExplanation(string Name, string PodSelector, string PolicyTypes, bool Allowed, IReadOnlyList<RuleExplanation> Rules, string? Tier = null, string? Action = null);

/// <summary>The egress side (source pod) or the ingress side (destination pod) of an explained flow.</summary>
public sealed record SideExplanation(PolicyDirection Direction, string Pod, bool Isolated, bool Allowed, IReadOnlyList<PolicyExplanation> Policies, string Summary);

/// <summary>A verdict with its reasons, for <c>tripline explain</c>: which policies select each pod and which rule matched or why none did.</summary>
public sealed record Explanation(
    Verdict Verdict,
    EndpointSummary Source,
    EndpointSummary Destination,
    int Port,
    PolicyProtocol Protocol,
    SideExplanation? Egress,
    SideExplanation? Ingress,
    IReadOnlyList<string> Notes)
{
    /// <summary>Reads in ten seconds: the verdict first, then each side, then only the rules that decided it.</summary>
    public string ToText()
    {
        var text = new StringBuilder();
        string portText = Protocol <= PolicyProtocol.SCTP ? $":{Port}" : "";
        text.Append(Verdict.Allowed ? "ALLOWED" : "DENIED").Append("  ").Append(CompiledPort.ProtocolName(Protocol)).Append(' ')
            .Append(Describe(Source)).Append(" -> ").Append(Describe(Destination)).Append(portText).AppendLine();
        AppendSide(text, Egress, "egress", Source);
        AppendSide(text, Ingress, "ingress", Destination);
        foreach (string note in Notes) text.Append("note: ").AppendLine(note);
        return text.ToString();
    }

    private static string Describe(EndpointSummary endpoint) => endpoint.Kind == "pod" || endpoint.Kind == "node"
        ? $"{endpoint.Name} ({endpoint.Ip})"
        : $"{endpoint.Ip} ({endpoint.Kind})";

    private static void AppendSide(StringBuilder text, SideExplanation? side, string direction, EndpointSummary endpoint)
    {
        text.AppendLine();
        if (side is null)
        {
            text.Append(direction).Append(": not judged (").Append(endpoint.Kind == "pod" ? "host-network pod" : endpoint.Kind).AppendLine(" - NetworkPolicy only selects pods)");
            return;
        }
        text.Append(direction).Append(" of ").Append(side.Pod).Append(": ").Append(side.Allowed ? "allowed" : "DENIED").Append(" - ").AppendLine(side.Summary);
        foreach (var policy in side.Policies)
        {
            if (policy.Tier is not null)
            {
                text.Append("  [").Append(policy.Tier).Append("] ").Append(policy.Action switch { "Accept" => "+ ", "Deny" => "- ", "Pass" => "> ", _ => "  " }).Append(policy.Name)
                    .Append("  (subject ").Append(policy.PodSelector).Append("; ").Append(policy.PolicyTypes).Append(')')
                    .AppendLine(policy.Action is null ? ": no rule matches" : $": {policy.Action}");
                foreach (var rule in policy.Rules)
                {
                    text.Append("      ").Append(rule.Rule).Append(rule.Matched ? " matches: " : " no match: ");
                    if (rule.Matched) text.Append(rule.Peers).Append("; ").AppendLine(rule.Ports);
                    else text.AppendLine(rule.PeerMatched ? rule.Ports : rule.Peers);
                }
                continue;
            }
            text.Append("  ").Append(policy.Allowed ? "+ " : "- ").Append(policy.Name)
                .Append("  (podSelector ").Append(policy.PodSelector).Append("; ").Append(policy.PolicyTypes).AppendLine(")");
            if (policy.Rules.Count == 0)
            {
                text.Append("      no ").Append(direction).AppendLine(" rules: this policy admits nothing, it only isolates");
                continue;
            }
            foreach (var rule in policy.Rules)
            {
                text.Append("      ").Append(rule.Rule).Append(rule.Matched ? " matches: " : " no match: ");
                if (rule.Matched) text.Append(rule.Peers).Append("; ").AppendLine(rule.Ports);
                else if (!rule.PeerMatched && !rule.PortMatched) text.Append(rule.Peers).Append("; and ").AppendLine(rule.Ports);
                else text.AppendLine(rule.PeerMatched ? rule.Ports : rule.Peers);
            }
        }
    }

    /// <summary>The same content as JSON, field names as in the flow log.</summary>
    public string ToJson(bool indented = true)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = indented }))
        {
            WriteJson(writer);
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    public void WriteJson(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteString("verdict", Verdict.Allowed ? "allow" : "deny");
        writer.WriteString("protocol", CompiledPort.ProtocolName(Protocol));
        if (Protocol <= PolicyProtocol.SCTP) writer.WriteNumber("port", Port);
        WriteEndpoint(writer, "src", Source);
        WriteEndpoint(writer, "dst", Destination);
        WriteSide(writer, "egress", Egress);
        WriteSide(writer, "ingress", Ingress);
        writer.WriteStartArray("notes");
        foreach (string note in Notes) writer.WriteStringValue(note);
        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    private static void WriteEndpoint(Utf8JsonWriter writer, string name, EndpointSummary endpoint)
    {
        writer.WriteStartObject(name);
        writer.WriteString("kind", endpoint.Kind);
        writer.WriteString("ip", endpoint.Ip);
        if (endpoint.Kind == "pod")
        {
            writer.WriteString("namespace", endpoint.Namespace);
            writer.WriteString("pod", endpoint.Name[(endpoint.Name.IndexOf('/') + 1)..]);
            writer.WriteString("labels", endpoint.Labels);
        }
        if (endpoint.Node is not null) writer.WriteString("node", endpoint.Node);
        writer.WriteEndObject();
    }

    private static void WriteSide(Utf8JsonWriter writer, string name, SideExplanation? side)
    {
        if (side is null)
        {
            writer.WriteNull(name);
            return;
        }
        writer.WriteStartObject(name);
        writer.WriteString("pod", side.Pod);
        writer.WriteBoolean("isolated", side.Isolated);
        writer.WriteBoolean("allowed", side.Allowed);
        writer.WriteString("summary", side.Summary);
        writer.WriteStartArray("policies");
        foreach (var policy in side.Policies)
        {
            writer.WriteStartObject();
            writer.WriteString("name", policy.Name);
            writer.WriteString("pod_selector", policy.PodSelector);
            writer.WriteString("policy_types", policy.PolicyTypes);
            writer.WriteBoolean("allowed", policy.Allowed);
            if (policy.Tier is not null) writer.WriteString("tier", policy.Tier);
            if (policy.Action is not null) writer.WriteString("action", policy.Action);
            writer.WriteStartArray("rules");
            foreach (var rule in policy.Rules)
            {
                writer.WriteStartObject();
                writer.WriteString("rule", rule.Rule);
                writer.WriteBoolean("matched", rule.Matched);
                writer.WriteBoolean("peer_matched", rule.PeerMatched);
                writer.WriteString("peers", rule.Peers);
                writer.WriteBoolean("port_matched", rule.PortMatched);
                writer.WriteString("ports", rule.Ports);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WriteEndObject();
    }
}

public sealed partial class PolicyEngine
{
    /// <summary>The verdict of <see cref="Evaluate"/> with the reasoning behind each side.</summary>
    public Explanation Explain(in ResolvedEndpoint source, IpKey sourceIp, in ResolvedEndpoint destination, IpKey destinationIp, int port, PolicyProtocol protocol)
    {
        var verdict = EvaluateUncached(in source, sourceIp, in destination, destinationIp, port, protocol);
        if (protocol > PolicyProtocol.SCTP && !(protocol == PolicyProtocol.ICMP && _testsIcmp)) port = 0;
        var sourceSummary = Summarize(in source, sourceIp);
        var destinationSummary = Summarize(in destination, destinationIp);
        int sourceKind = KindOf(in source, out var sourceProfile);
        KindOf(in destination, out var destinationProfile);
        bool self = sourceProfile is not null && ReferenceEquals(sourceProfile.Pod, destinationProfile?.Pod);
        bool resident = destinationProfile is not null && sourceKind is KindNode or KindHostNetworkPod && IsResidentNode(in source, destinationProfile.Pod);
        var destinationPod = destinationProfile?.Pod;

        SideExplanation? egress = null, ingress = null;
        if (sourceProfile is not null && verdict.Egress is { } egressVerdict)
        {
            var peer = PeerOf(destinationProfile, destinationIp, sourceProfile);
            egress = ExplainSide(PolicyDirection.Egress, sourceProfile, egressVerdict, in peer, destinationSummary.Name, destinationPod, port, protocol, self);
        }
        if (destinationProfile is not null && verdict.Ingress is { } ingressVerdict)
        {
            var peer = PeerOf(sourceProfile, sourceIp, destinationProfile);
            ingress = ExplainSide(PolicyDirection.Ingress, destinationProfile, ingressVerdict, in peer, sourceSummary.Name, destinationPod, port, protocol, self || resident);
        }
        // Objects that judge nothing (host endpoints only, invalid) are said, so that their absence is not a mystery.
        string[] notes = [.. verdict.Note is null ? [] : verdict.Note.Split("; "), .. PolicyNotes];
        return new Explanation(verdict, sourceSummary, destinationSummary, port, protocol, egress, ingress, notes);
    }

    private SideExplanation ExplainSide(PolicyDirection direction, PodProfile subject, SideVerdict verdict, in PeerView peer, string peerName, PodInfo? destinationPod, int port, PolicyProtocol protocol, bool self = false)
    {
        string pod = subject.Pod.Key;
        if (!subject.Selectable) return new SideExplanation(direction, pod, false, true, [], $"{pod} has terminated; policies no longer select it");
        var tiers = subject.Selection.Tiers;
        if (_tierPolicies.Length == 0 || self || !tiers.Any(direction)) return ExplainNetworkPolicies(direction, subject, verdict, in peer, peerName, destinationPod, port, protocol);

        // Tier by tier, as the verdict was reached: each applying tier's policies in order until a rule decides.
        var explained = new List<PolicyExplanation>();
        var steps = new List<string>();
        string overlaps = "";
        for (int t = 0; t < _tiers.Length; t++)
        {
            var tier = _tiers[t];
            var policies = tiers.For(t, direction);
            var networkPolicies = tier.HoldsNetworkPolicies ? (direction == PolicyDirection.Ingress ? subject.Selection.Ingress : subject.Selection.Egress) : [];
            if (policies.Length == 0 && networkPolicies.Length == 0) continue;
            string label = tier.Label == "default" ? (policies.Length == 0 ? "NetworkPolicy" : "default") : tier.Label;
            var decision = ExplainTier(tier, label, policies, networkPolicies, direction, subject, verdict, in peer, peerName, destinationPod, port, protocol, explained, out string overlap);
            overlaps += overlap;
            switch (decision)
            {
                case { Policy: { } policy, Rule: { Action: RuleAction.Accept or RuleAction.Deny } rule }:
                    steps.Add($"decided in the {label} tier by {policy.Key} {rule.Describe(direction)} ({rule.Action})");
                    return Done();
                case { Policy: { } policy, Rule: { } rule }:
                    steps.Add($"the {label} tier passed it on ({policy.Key} {rule.Describe(direction)}: Pass)");
                    continue;
                case { NetworkPolicies: { } names }:
                    steps.Add($"allowed in the {label} tier by {names}");
                    return Done();
            }
            if (tier.EndAction == RuleAction.Deny)
            {
                string isolating = string.Join(", ", networkPolicies.Select(i => _policies[i].Key).Concat(policies.Select(i => _tierPolicies[i].Key)));
                steps.Add(label == "NetworkPolicy"
                    ? $"isolated by {isolating}, and no {Dir(direction)} rule of them admits {peerName} on {PortText(port, protocol)}"
                    : $"the {label} tier applies ({isolating}) and none of its rules matched: its end denies");
                return Done();
            }
            steps.Add($"no {label} rule matched, and the tier passes it on");
        }
        steps.Add("so allowed");
        return Done();

        SideExplanation Done() => new(direction, subject.Pod.Key, verdict.Isolated, verdict.Allowed, explained,
            string.Join("; ", steps) + (steps.Count > 0 && steps[^1].StartsWith("decided", StringComparison.Ordinal) ? "; later tiers are not consulted" : "") + overlaps);
    }

    private static string Dir(PolicyDirection direction) => direction == PolicyDirection.Ingress ? "ingress" : "egress";

    private readonly record struct TierDecision(TierPolicy? Policy, TierRule? Rule, string? NetworkPolicies);

    /// <summary>
    /// Explains one tier's policies in walking order up to the deciding rule (the default tier's NetworkPolicies as one
    /// group at their order); says when policies of the same order would decide differently.
    /// </summary>
    private TierDecision ExplainTier(PolicyTier tier, string label, int[] policies, int[] networkPolicies, PolicyDirection direction, PodProfile subject, SideVerdict verdict, in PeerView peer, string peerName, PodInfo? destinationPod, int port, PolicyProtocol protocol, List<PolicyExplanation> explained, out string overlap)
    {
        overlap = "";
        TierDecision decision = default;
        bool groupDone = networkPolicies.Length == 0;
        foreach (int index in policies)
        {
            var policy = _tierPolicies[index];
            if (decision.Policy is { } decided)
            {
                // Same order, both matching, different outcome: the API lets an implementation apply either.
                // Kinds that break ties themselves (Calico, by name) have no such ambiguity.
                if (policy.Order != decided.Order || policy.SortName is not null) break;
                var other = FirstMatch(policy, direction, in peer, destinationPod, port, protocol);
                if (other is not null && other.Action != decision.Rule!.Action)
                {
                    overlap += $"; note: {policy.Key} has the same {policy.OrderText} and its {other.Describe(direction)} would {other.Action} this flow: the API leaves the order of equal priorities to the implementation, so the cluster may apply either";
                }
                continue;
            }
            if (decision.NetworkPolicies is not null) break;
            if (!groupDone && policy.Order > PolicyTier.NetworkPolicyOrder)
            {
                groupDone = true;
                if (ExplainGroup(direction, subject, verdict, peer, peerName, destinationPod, port, protocol, explained) is { } names) { decision = new TierDecision(null, null, names); break; }
            }
            var rules = new List<RuleExplanation>();
            TierRule? matched = null;
            foreach (var rule in policy.Rules(direction))
            {
                var explanation = ExplainTierRule(direction, rule, in peer, peerName, destinationPod, port, protocol);
                rules.Add(explanation);
                if (explanation.Matched && rule.Action != RuleAction.Log) { matched = rule; break; }
            }
            explained.Add(new PolicyExplanation(policy.Key, policy.Subject.ToString(), $"tier {label}, {policy.OrderText}", matched?.Action == RuleAction.Accept, rules, label, matched?.Action.ToString()));
            if (matched is not null) decision = new TierDecision(policy, matched, null);
        }
        if (!groupDone && decision.Policy is null && decision.NetworkPolicies is null && ExplainGroup(direction, subject, verdict, peer, peerName, destinationPod, port, protocol, explained) is { } last) decision = new TierDecision(null, null, last);
        return decision;
    }

    /// <summary>The default tier's NetworkPolicies explained as one group; the names of those that allow, or null.</summary>
    private string? ExplainGroup(PolicyDirection direction, PodProfile subject, SideVerdict verdict, PeerView peer, string peerName, PodInfo? destinationPod, int port, PolicyProtocol protocol, List<PolicyExplanation> explained)
    {
        var group = ExplainNetworkPolicies(direction, subject, verdict, in peer, peerName, destinationPod, port, protocol);
        explained.AddRange(group.Policies);
        var allowing = group.Policies.Where(p => p.Allowed).Select(p => p.Name).ToList();
        return allowing.Count == 0 ? null : string.Join(", ", allowing);
    }

    private static TierRule? FirstMatch(TierPolicy policy, PolicyDirection direction, in PeerView peer, PodInfo? destinationPod, int port, PolicyProtocol protocol)
    {
        foreach (var rule in policy.Rules(direction))
        {
            if (rule.MatchesPort(destinationPod, port, protocol) && rule.MatchPeer(in peer) == PeerMatch.Yes) return rule;
        }
        return null;
    }

    private static RuleExplanation ExplainTierRule(PolicyDirection direction, TierRule rule, in PeerView peer, string peerName, PodInfo? destinationPod, int port, PolicyProtocol protocol)
    {
        var match = rule.MatchPeer(in peer);
        bool peerMatched = match == PeerMatch.Yes;
        var reasons = new List<string>(rule.Peers.Length);
        foreach (var candidate in rule.Peers)
        {
            bool matches = candidate.Match(in peer, rule.Action) == PeerMatch.Yes;
            if (peerMatched && !matches) continue;
            reasons.Add(candidate.Describe(in peer, peerName, rule.Action));
            if (peerMatched) break;
        }
        string peers = string.Join("; ", reasons);
        bool portMatched = rule.MatchesPort(destinationPod, port, protocol);
        string ports = rule.PortCondition is { } condition
            ? $"{PortText(port, protocol)} {(portMatched ? "matches" : "does not match")} {condition}"
            : rule.Ports.Length == 0
            ? "no protocols: all traffic"
            : $"{PortText(port, protocol)} {(portMatched ? "is" : "is not")} in [{string.Join(", ", rule.Ports.Select(p => p.ToString()))}]";
        string action = rule.Action == RuleAction.Log ? "Log (logged, decides nothing: the walk goes on)" : rule.Action.ToString();
        return new RuleExplanation($"{rule.Describe(direction)} {action}", peerMatched && portMatched, peerMatched, peers, portMatched, ports);
    }

    private SideExplanation ExplainNetworkPolicies(PolicyDirection direction, PodProfile subject, SideVerdict verdict, in PeerView peer, string peerName, PodInfo? destinationPod, int port, PolicyProtocol protocol)
    {
        string dir = Dir(direction);
        string pod = subject.Pod.Key;
        var selecting = direction == PolicyDirection.Ingress ? subject.Selection.Ingress : subject.Selection.Egress;
        if (selecting.Length == 0)
        {
            return new SideExplanation(direction, pod, false, true, [], $"not isolated: no policy in {subject.Pod.Namespace} selects {pod} for {dir}, so all {dir} is allowed");
        }
        if (verdict.Allowed && verdict.Policies.Count == 0)
        {
            return new SideExplanation(direction, pod, true, true, [], $"isolated, but its own node may always reach it");
        }
        var policies = new List<PolicyExplanation>(selecting.Length);
        foreach (int index in selecting)
        {
            var policy = _policies[index];
            var rules = new List<RuleExplanation>();
            foreach (var rule in policy.Rules(direction))
            {
                rules.Add(ExplainRule(direction, rule, in peer, peerName, destinationPod, port, protocol));
            }
            string types = (policy.AffectsIngress, policy.AffectsEgress) switch
            {
                (true, true) => "policyTypes Ingress, Egress",
                (true, false) => "policyTypes Ingress",
                _ => "policyTypes Egress",
            };
            policies.Add(new PolicyExplanation(policy.Key, policy.PodSelector.ToString(), policy.TypesInferred ? types + " (inferred)" : types, rules.Any(r => r.Matched), rules));
        }
        string names = string.Join(", ", policies.Select(p => p.Name));
        string summary = verdict.Allowed
            ? $"isolated by {names}; allowed by {string.Join(", ", policies.Where(p => p.Allowed).Select(p => p.Name))}"
            : $"isolated by {names}, and no {dir} rule of them admits {peerName} on {PortText(port, protocol)}";
        return new SideExplanation(direction, pod, true, verdict.Allowed, policies, summary);
    }

    private static RuleExplanation ExplainRule(PolicyDirection direction, CompiledRule rule, in PeerView peer, string peerName, PodInfo? destinationPod, int port, PolicyProtocol protocol)
    {
        string field = direction == PolicyDirection.Ingress ? "from" : "to";
        string name = $"{(direction == PolicyDirection.Ingress ? "ingress" : "egress")}[{rule.Index}]";
        bool peerMatched = rule.MatchesPeer(in peer);
        string peers;
        if (rule.Peers.Length == 0) peers = $"no {field}: every {(direction == PolicyDirection.Ingress ? "source" : "destination")}";
        else if (peerMatched)
        {
            peers = "";
            foreach (var candidate in rule.Peers)
            {
                if (!candidate.Matches(in peer)) continue;
                peers = $"{field}[{candidate.Index}] {candidate.Describe(in peer, peerName)}";
                break;
            }
        }
        else
        {
            var reasons = new List<string>(rule.Peers.Length);
            foreach (var candidate in rule.Peers) reasons.Add($"{field}[{candidate.Index}] {candidate.Describe(in peer, peerName)}");
            peers = string.Join("; ", reasons);
        }
        bool portMatched = rule.MatchesPort(destinationPod, port, protocol);
        string ports;
        if (rule.Ports.Length == 0) ports = "no ports: every port and protocol";
        else
        {
            string declared = string.Join(", ", rule.Ports.Select(p => p.DescribeResolution(destinationPod)));
            ports = portMatched ? $"{PortText(port, protocol)} is in ports [{declared}]" : $"{PortText(port, protocol)} is not in ports [{declared}]";
        }
        return new RuleExplanation(name, peerMatched && portMatched, peerMatched, peers, portMatched, ports);
    }

    private static string PortText(int port, PolicyProtocol protocol) =>
        protocol <= PolicyProtocol.SCTP ? $"{port}/{CompiledPort.ProtocolName(protocol)}" : CompiledPort.ProtocolName(protocol);

    private static EndpointSummary Summarize(in ResolvedEndpoint endpoint, IpKey ip)
    {
        string address = ip.ToIPAddress().ToString();
        return endpoint.Kind switch
        {
            EndpointKind.Pod when endpoint.Pod is { } pod => new EndpointSummary("pod", pod.Key, address, pod.Namespace, pod.Labels.Count == 0 ? "" : pod.Labels.ToString(), pod.NodeName),
            EndpointKind.Node when endpoint.Node is { } node => new EndpointSummary("node", node.Name, address, null, null, node.Name),
            EndpointKind.Service when endpoint.Service is { } service => new EndpointSummary("service", service.Key, address, service.Namespace, null, null),
            _ => new EndpointSummary("external", address, address, null, null, null),
        };
    }
}

/// <summary>One rule of a compiled policy, named as <see cref="PolicyEngine.Explain"/> names it in <see cref="RuleExplanation.Rule"/>.</summary>
public sealed record PolicyRuleName(string Policy, PolicyDirection Direction, string Rule);

public sealed partial class PolicyEngine
{
    /// <summary>The names of every policy compiled, of every kind (NetworkPolicy <c>ns/name</c>, others <c>Kind/…</c>), sorted.</summary>
    public IReadOnlyList<string> PolicyKeys() =>
        [.. _policies.Select(p => p.Key).Concat(_tierPolicies.Select(p => p.Key)).Distinct().Order(StringComparer.Ordinal)];

    /// <summary>
    /// Every rule that can decide a flow, named exactly as <see cref="Explain"/> names it, so that an audit can tell which
    /// rules never matched: a NetworkPolicy's <c>ingress[i]</c>/<c>egress[i]</c>, a tier policy's rule with its action
    /// (Log rules decide nothing and are left out).
    /// </summary>
    public IReadOnlyList<PolicyRuleName> RuleNames()
    {
        var names = new List<PolicyRuleName>();
        foreach (var policy in _policies)
        {
            foreach (var direction in (ReadOnlySpan<PolicyDirection>)[PolicyDirection.Ingress, PolicyDirection.Egress])
            {
                foreach (var rule in policy.Rules(direction)) names.Add(new PolicyRuleName(policy.Key, direction, $"{Dir(direction)}[{rule.Index}]"));
            }
        }
        foreach (var policy in _tierPolicies)
        {
            foreach (var direction in (ReadOnlySpan<PolicyDirection>)[PolicyDirection.Ingress, PolicyDirection.Egress])
            {
                foreach (var rule in policy.Rules(direction))
                {
                    if (rule.Action != RuleAction.Log) names.Add(new PolicyRuleName(policy.Key, direction, $"{rule.Describe(direction)} {rule.Action}"));
                }
            }
        }
        return names;
    }
}
