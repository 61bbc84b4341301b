using System.Text;
using CsCheck;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Policy;
using static Tripline.Tests.Correlation.Policy.PolicyBuilders;

namespace Tripline.Tests.Correlation.Policy;

/// <summary>On random clusters the cache never changes an answer, and a carried-over cache equals a fresh compile.</summary>
public sealed class PolicyEnginePropertyTests
{
    private static readonly string[] Namespaces = ["a", "b", "c"];
    private static readonly string[] Apps = ["web", "api", "db"];

    private static readonly Gen<string> Selector = Gen.OneOf(
        Gen.Const("{}"),
        Gen.OneOfConst(Apps).Select(app => $"{{matchLabels: {{app: {app}}}}}"),
        Gen.OneOfConst(Apps).Select(app => $"{{matchExpressions: [{{key: app, operator: NotIn, values: [{app}]}}]}}"),
        Gen.Const("{matchExpressions: [{key: tier, operator: Exists}]}"));

    private static readonly Gen<string> Peer = Gen.OneOf(
        Selector.Select(s => $"{{podSelector: {s}}}"),
        Gen.OneOfConst(Namespaces).Select(ns => $"{{namespaceSelector: {{matchLabels: {{team: {ns}}}}}}}"),
        Gen.Select(Selector, Gen.OneOfConst(Namespaces), (s, ns) => $"{{podSelector: {s}, namespaceSelector: {{matchLabels: {{team: {ns}}}}}}}"),
        Gen.Int[0, 3].Select(n => $"{{ipBlock: {{cidr: 10.{n}.0.0/16, except: [10.{n}.0.0/30]}}}}"));

    private static readonly Gen<string> Port = Gen.OneOf(
        Gen.OneOfConst("80", "81", "http").Select(p => $"{{port: {p}}}"),
        Gen.Const("{port: 80, endPort: 90}"),
        Gen.Const("{protocol: UDP}"));

    private static readonly Gen<string> Rule = Gen.Select(Peer.Array[0, 2], Port.Array[0, 2], (peers, ports) =>
        $"{{{(peers.Length == 0 ? "" : $"from: [{string.Join(", ", peers)}], ")}{(ports.Length == 0 ? "" : $"ports: [{string.Join(", ", ports)}]")}}}".Replace(", }", "}"));

    private static readonly Gen<string> Policy = Gen.Select(Gen.OneOfConst(Namespaces), Selector, Rule.Array[0, 2], Rule.Array[0, 2], Gen.Int[0, 3])
        .Select((ns, selector, ingress, egress, types) =>
        {
            string policyTypes = types switch { 0 => "", 1 => "policyTypes: [Ingress], ", 2 => "policyTypes: [Egress], ", _ => "policyTypes: [Ingress, Egress], " };
            string egressRules = egress.Length == 0 ? "" : $", egress: [{string.Join(", ", egress).Replace("from:", "to:")}]";
            return $"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: p{Guid.NewGuid():N}, namespace: {ns}}}\nspec: {{{policyTypes}podSelector: {selector}, ingress: [{string.Join(", ", ingress)}]{egressRules}}}\n";
        });

    private static readonly Gen<PodInfo[]> Pods = Gen.Select(Gen.OneOfConst(Namespaces), Gen.OneOfConst(Apps), Gen.Bool, Gen.Int[8000, 8002])
        .Array[4, 10]
        .Select(specs => specs.Select((s, i) =>
        {
            var labels = new Dictionary<string, string> { ["app"] = s.Item2 };
            if (s.Item3) labels["tier"] = "x";
            return Pod(s.Item1, $"p{i}", $"10.{i % 4}.0.{i + 1}", labels, new ContainerPortInfo("http", s.Item4, "TCP"));
        }).ToArray());

    [Fact]
    public void Evaluate_CachedAndUncached_AgreeOnRandomClusters()
    {
        Gen.Select(Pods, Policy.Array[1, 6]).Sample((pods, policies) =>
        {
            var engine = PolicyEngine.Compile(Cluster(pods, policies, 1));
            foreach (var (from, to, port, protocol) in Flows(pods))
            {
                var cached = engine.Evaluate(from, to, port, protocol);
                var again = engine.Evaluate(from, to, port, protocol);
                var uncached = engine.EvaluateUncached(from.AsEndpoint(), IpOf(from), to.AsEndpoint(), IpOf(to), port, protocol);
                if (cached.Allowed != uncached.Allowed || !ReferenceEquals(cached, again)
                    || !Same(cached.Egress, uncached.Egress) || !Same(cached.Ingress, uncached.Ingress))
                {
                    return false;
                }
            }
            return true;
        }, iter: 150);
    }

    [Fact]
    public void Compile_WithPreviousEngine_AgreesWithAFreshCompile()
    {
        Gen.Select(Pods, Policy.Array[1, 5], Policy.Array[1, 5], Gen.Int[0, 2]).Sample((pods, before, after, relabel) =>
        {
            var v1 = PolicyEngine.Compile(Cluster(pods, before, 1));
            foreach (var (from, to, port, protocol) in Flows(pods)) v1.Evaluate(from, to, port, protocol);
            // Change policies, relabel a namespace, and relabel a pod, all at once.
            var relabelled = pods.Select((p, i) => i == 0 ? p with { Labels = LabelSet.Intern(new Dictionary<string, string> { ["app"] = "db" }) } : p).ToArray();
            var snapshot = Cluster(relabelled, before.Take(1).Concat(after).ToArray(), 2, Namespaces[relabel]);
            var carried = PolicyEngine.Compile(snapshot, v1);
            var fresh = PolicyEngine.Compile(snapshot);
            var podsNow = snapshot.Pods.ToArray();
            foreach (var (from, to, port, protocol) in Flows(podsNow))
            {
                if (carried.Evaluate(from, to, port, protocol).Allowed != fresh.Evaluate(from, to, port, protocol).Allowed) return false;
            }
            return true;
        }, iter: 100);
    }

    private static IEnumerable<(PodInfo, PodInfo, int, PolicyProtocol)> Flows(PodInfo[] pods)
    {
        foreach (var from in pods)
        {
            foreach (var to in pods)
            {
                foreach (int port in new[] { 80, 85, 8001 }) yield return (from, to, port, PolicyProtocol.TCP);
                yield return (from, to, 53, PolicyProtocol.UDP);
                yield return (from, to, 0, PolicyProtocol.ICMP);
            }
        }
    }

    private static ClusterSnapshot Cluster(PodInfo[] pods, string[] policies, long version, string? relabelledNamespace = null)
    {
        var namespaces = Namespaces.Select(ns => Namespace(ns, new() { ["team"] = ns == relabelledNamespace ? "other" : ns }));
        var yaml = new StringBuilder();
        foreach (string policy in policies) yaml.Append(policy).Append("---\n");
        return Snapshot(pods, yaml.ToString(), namespaces, version: version);
    }

    private static bool Same(SideVerdict? a, SideVerdict? b) =>
        (a is null && b is null) || (a is not null && b is not null && a.Isolated == b.Isolated && a.Allowed == b.Allowed && a.Policies.SequenceEqual(b.Policies));

}
