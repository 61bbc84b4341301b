using System.Text.Json;
using BenchmarkDotNet.Attributes;
using k8s.Models;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;
using Tripline.Correlation.Policy;

namespace Tripline.Benchmarks;

/// <summary>
/// The policy engine with the administrator's tiers: the synthetic cluster of <see cref="PolicyBenchmarks"/> (10,000
/// pods, 2,000 NetworkPolicies) plus 200 ClusterNetworkPolicies (180 Admin, 20 Baseline; subjects by namespace and
/// pod labels, namespace, pod and network peers, ports and ranges). A cached verdict, a cold one, and the recompile
/// that one ClusterNetworkPolicy change costs (cluster-wide, so every cached verdict is dropped).
/// </summary>
public class AdminTierBenchmarks : VerdictBenchmarks
{
    public const int AdminPolicies = 200;

    private ClusterSnapshot _changed = null!;

    [GlobalSetup]
    public void Setup()
    {
        var (plain, _) = SyntheticCluster.Build(seed: 20240611);
        var policies = Enumerable.Range(0, AdminPolicies).Select(i => Policy(i, variant: 0)).ToList();
        var snapshot = With(plain, 1, policies);
        policies[AdminPolicies / 2] = Policy(AdminPolicies / 2, variant: 1);
        _changed = With(plain, 2, policies);
        Prepare(snapshot, [80, 443, 22, 8080], verdict => verdict.Ingress?.Policies.Any(p => p.StartsWith("ClusterNetworkPolicy/", StringComparison.Ordinal)) == true, "decided by the tiers");
        if (Engine.TierPolicyCount != AdminPolicies) throw new InvalidOperationException($"{Engine.TierPolicyCount} tier policies compiled, not {AdminPolicies}");
    }

    /// <summary>A new snapshot with one ClusterNetworkPolicy changed, compiled against the running engine (off the packet path).</summary>
    [Benchmark]
    public int RecompileAfterOneClusterNetworkPolicyChange() => PolicyEngine.Compile(_changed, Engine).TierPolicyCount;

    private static ClusterSnapshot With(ClusterSnapshot plain, long version, IEnumerable<AdminPolicyObject> policies) =>
        new(version, plain.Namespaces.Values, plain.Pods, [], [], [], plain.Policies, policies);

    /// <summary>A seeded ClusterNetworkPolicy: most Admin guard rails on a team's namespaces, a few Baseline defaults.</summary>
    internal static AdminPolicyObject Policy(int i, int variant)
    {
        bool baseline = i % 10 == 9;
        string app = new[] { "web", "api", "worker", "db", "cache" }[i % 5];
        string subject = i % 2 == 0
            ? """{"namespaces": {"matchLabels": {"team": "@TEAM@"}}}"""
            : """{"pods": {"namespaceSelector": {"matchLabels": {"env": "@ENV@"}}, "podSelector": {"matchLabels": {"app": "@APP@"}}}}""";
        string spec = """
            {
              "tier": "@TIER@",
              "priority": @PRIORITY@,
              "subject": @SUBJECT@,
              "ingress": [
                {"name": "ssh", "action": "@ACTION@", "from": [{"namespaces": {}}], "protocols": [{"tcp": {"destinationPort": {"number": 22}}}]},
                {"name": "monitoring", "action": "Accept", "from": [{"pods": {"namespaceSelector": {"matchLabels": {"team": "@NEXT@"}}, "podSelector": {"matchLabels": {"app": "worker"}}}}], "protocols": [{"tcp": {"destinationPort": {"range": {"start": 9000, "end": 9100}}}}]},
                {"name": "pass-own-team", "action": "Pass", "from": [{"namespaces": {"matchLabels": {"team": "@TEAM@"}}}]},
                {"name": "dev-to-prod", "action": "Deny", "from": [{"namespaces": {"matchLabels": {"env": "dev"}}}], "protocols": [{"tcp": {"destinationPort": {"number": 443}}}]}
              ],
              "egress": [
                {"name": "metadata", "action": "Deny", "to": [{"networks": ["169.254.169.254/32"]}]},
                {"name": "internal", "action": "Pass", "to": [{"networks": ["10.0.0.0/8"]}]}
              ]
            }
            """
            .Replace("@SUBJECT@", subject, StringComparison.Ordinal)
            .Replace("@TIER@", baseline ? "Baseline" : "Admin", StringComparison.Ordinal)
            .Replace("@PRIORITY@", (i % 100).ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("@ACTION@", variant == 0 ? "Deny" : "Pass", StringComparison.Ordinal)
            .Replace("@TEAM@", $"t{i % 20}", StringComparison.Ordinal)
            .Replace("@NEXT@", $"t{(i + 1) % 20}", StringComparison.Ordinal)
            .Replace("@ENV@", i % 3 == 0 ? "prod" : "dev", StringComparison.Ordinal)
            .Replace("@APP@", app, StringComparison.Ordinal);
        return new AdminPolicyObject
        {
            ApiVersion = "policy.networking.k8s.io/v1alpha2",
            Kind = AdminPolicyObject.ClusterNetworkPolicy,
            Metadata = new V1ObjectMeta { Name = $"guard-{i:D3}" },
            Spec = JsonDocument.Parse(spec).RootElement,
        };
    }
}
