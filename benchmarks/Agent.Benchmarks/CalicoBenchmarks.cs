using System.Globalization;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using k8s.Models;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Policy;

namespace Tripline.Benchmarks;

/// <summary>
/// The policy engine with Calico's policies: the synthetic cluster of <see cref="PolicyBenchmarks"/> (10,000 pods,
/// 2,000 NetworkPolicies) plus two tiers of 200 Calico policies (GlobalNetworkPolicies with namespace selectors in the
/// security tier, namespaced NetworkPolicies in the platform tier; Calico selectors with <c>in</c>, <c>has</c> and
/// <c>!</c>, Deny, Pass and Allow rules, ports, ranges, nets) and 20 network sets. Every pod then has Calico's identity
/// (its labels with its namespace's and service account's). A cached verdict, a cold one, and the recompile that one
/// Calico policy change costs (cluster-wide, so every cached verdict is dropped).
/// </summary>
public class CalicoBenchmarks : VerdictBenchmarks
{
    public const int CalicoPolicies = 200;

    private ClusterSnapshot _changed = null!;

    [GlobalSetup]
    public void Setup()
    {
        var (plain, _) = SyntheticCluster.Build(seed: 20261207);
        var objects = Objects(variant: 0);
        var snapshot = With(plain, 1, objects);
        var changed = Objects(variant: 0);
        changed[CalicoPolicies / 2] = Policy(CalicoPolicies / 2, variant: 1);
        _changed = With(plain, 2, changed);
        Prepare(snapshot, [80, 443, 22, 8080], verdict => verdict.Ingress?.Policies.Any(p => p.StartsWith("GlobalNetworkPolicy/", StringComparison.Ordinal) || p.StartsWith("NetworkPolicy(calico)/", StringComparison.Ordinal)) == true, "decided by Calico's tiers");
        if (Engine.TierPolicyCount < CalicoPolicies) throw new InvalidOperationException($"{Engine.TierPolicyCount} tier policies compiled, not {CalicoPolicies} or more");
    }

    /// <summary>A new snapshot with one Calico policy changed, compiled against the running engine (off the packet path).</summary>
    [Benchmark]
    public int RecompileAfterOneCalicoPolicyChange() => PolicyEngine.Compile(_changed, Engine).TierPolicyCount;

    private static ClusterSnapshot With(ClusterSnapshot plain, long version, IEnumerable<CalicoObject> objects) =>
        new(version, plain.Namespaces.Values, plain.Pods, [], [], [], plain.Policies, null, objects);

    private static List<CalicoObject> Objects(int variant)
    {
        var objects = Enumerable.Range(0, CalicoPolicies).Select(i => Policy(i, variant)).ToList();
        objects.Add(Object("Tier", "security", null, """{"order": 100}"""));
        objects.Add(Object("Tier", "platform", null, """{"order": 200, "defaultAction": "Pass"}"""));
        for (int i = 0; i < 20; i++)
        {
            objects.Add(Object("GlobalNetworkSet", $"partners-{i:D2}", null, $$"""{"nets": ["198.{{i}}.0.0/16"]}""", new() { ["trust"] = i % 2 == 0 ? "partner" : "vendor" }));
        }
        return objects;
    }

    /// <summary>A seeded Calico policy: security guard rails cluster-wide, a platform policy per team namespace.</summary>
    internal static CalicoObject Policy(int i, int variant)
    {
        bool security = i % 2 == 0;
        string app = new[] { "web", "api", "worker", "db", "cache" }[i % 5];
        string spec = """
            {
              "tier": "@TIER@",
              "order": @ORDER@,
              "selector": "app in {'@APP@', 'cache'} && !has(canary)",
              @SCOPE@
              "ingress": [
                {"action": "@ACTION@", "protocol": "TCP", "source": {"namespaceSelector": "env == 'dev'"}, "destination": {"ports": [22, "9000:9100"]}},
                {"action": "Allow", "protocol": "TCP", "source": {"selector": "app == 'worker'", "namespaceSelector": "team == '@NEXT@'"}, "destination": {"ports": [443]}},
                {"action": "Pass", "source": {"namespaceSelector": "team == '@TEAM@'"}}
              ],
              "egress": [
                {"action": "Deny", "destination": {"nets": ["169.254.169.254/32"]}},
                {"action": "Allow", "destination": {"selector": "trust == 'partner'"}},
                {"action": "Pass", "destination": {"nets": ["10.0.0.0/8"]}}
              ]
            }
            """
            .Replace("@TIER@", security ? "security" : "platform", StringComparison.Ordinal)
            .Replace("@ORDER@", (i % 100).ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("@SCOPE@", security ? "\"namespaceSelector\": \"env == 'prod'\"," : "", StringComparison.Ordinal)
            .Replace("@ACTION@", variant == 0 ? "Deny" : "Pass", StringComparison.Ordinal)
            .Replace("@TEAM@", $"t{i % 20}", StringComparison.Ordinal)
            .Replace("@NEXT@", $"t{(i + 1) % 20}", StringComparison.Ordinal)
            .Replace("@APP@", app, StringComparison.Ordinal);
        return security
            ? Object("GlobalNetworkPolicy", $"security.guard-{i:D3}", null, spec)
            : Object("NetworkPolicy", $"platform.team-{i:D3}", $"team-{i % SyntheticCluster.NamespaceCount:D3}", spec);
    }

    private static CalicoObject Object(string kind, string name, string? ns, string spec, Dictionary<string, string>? labels = null) => new()
    {
        ApiVersion = "projectcalico.org/v3",
        Kind = kind,
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns, Labels = labels },
        Spec = JsonDocument.Parse(spec).RootElement,
    };
}
