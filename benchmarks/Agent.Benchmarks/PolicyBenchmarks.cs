using System.Net;
using BenchmarkDotNet.Attributes;
using k8s.Models;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;
using Tripline.Correlation.Policy;

namespace Tripline.Benchmarks;

/// <summary>
/// What every policy-engine benchmark measures on its cluster: 1,024 flows between random pods, judged from the
/// verdict cache (one flow, and all of them) and without it. Derived classes build the engine and add their recompile.
/// </summary>
[MemoryDiagnoser]
public abstract class VerdictBenchmarks
{
    protected const int Flows = 1024;

    private ResolvedEndpoint[] _sources = null!;
    private ResolvedEndpoint[] _destinations = null!;
    private IpKey[] _sourceIps = null!;
    private IpKey[] _destinationIps = null!;
    private int[] _ports = null!;

    protected PolicyEngine Engine { get; private set; } = null!;

    /// <summary>
    /// Compiles <paramref name="snapshot"/> and draws the flows (seed 7). The cached and cold verdicts must agree, and
    /// <paramref name="decides"/> must hold for some flows but not all, before the speed means anything.
    /// </summary>
    protected void Prepare(ClusterSnapshot snapshot, int[] ports, Func<Verdict, bool> decides, string what)
    {
        Engine = PolicyEngine.Compile(snapshot);
        var random = new Random(7);
        var pods = snapshot.Pods;
        _sources = new ResolvedEndpoint[Flows];
        _destinations = new ResolvedEndpoint[Flows];
        _sourceIps = new IpKey[Flows];
        _destinationIps = new IpKey[Flows];
        _ports = new int[Flows];
        for (int i = 0; i < Flows; i++)
        {
            var from = pods[random.Next(pods.Count)];
            var to = pods[random.Next(pods.Count)];
            _sources[i] = new ResolvedEndpoint(EndpointKind.Pod, pod: from);
            _destinations[i] = new ResolvedEndpoint(EndpointKind.Pod, pod: to);
            _sourceIps[i] = IpKey.From(from.Ips[0]);
            _destinationIps[i] = IpKey.From(to.Ips[0]);
            _ports[i] = ports[random.Next(ports.Length)];
        }
        int decided = 0;
        for (int i = 0; i < Flows; i++)
        {
            var cached = Engine.Evaluate(in _sources[i], _sourceIps[i], in _destinations[i], _destinationIps[i], _ports[i], PolicyProtocol.TCP);
            var cold = Engine.EvaluateUncached(in _sources[i], _sourceIps[i], in _destinations[i], _destinationIps[i], _ports[i], PolicyProtocol.TCP);
            if (cached.Allowed != cold.Allowed) throw new InvalidOperationException($"cached and uncached verdicts disagree on flow {i}");
            if (decides(cached)) decided++;
        }
        if (decided == 0 || decided == Flows) throw new InvalidOperationException($"the synthetic cluster is degenerate: {decided} of {Flows} flows {what}");
    }

    /// <summary>One flow whose verdict is cached: the per-flow cost on the packet path.</summary>
    [Benchmark(Baseline = true)]
    public bool CachedVerdict() => Engine.Evaluate(in _sources[0], _sourceIps[0], in _destinations[0], _destinationIps[0], _ports[0], PolicyProtocol.TCP).Allowed;

    /// <summary>1,024 different flows, all cached: hash spread and memory traffic included.</summary>
    [Benchmark(OperationsPerInvoke = Flows)]
    public int CachedVerdictMixedFlows()
    {
        int allowed = 0;
        for (int i = 0; i < Flows; i++)
        {
            if (Engine.Evaluate(in _sources[i], _sourceIps[i], in _destinations[i], _destinationIps[i], _ports[i], PolicyProtocol.TCP).Allowed) allowed++;
        }
        return allowed;
    }

    /// <summary>1,024 different flows judged from the compiled policies without the cache.</summary>
    [Benchmark(OperationsPerInvoke = Flows)]
    public int ColdVerdict()
    {
        int allowed = 0;
        for (int i = 0; i < Flows; i++)
        {
            if (Engine.EvaluateUncached(in _sources[i], _sourceIps[i], in _destinations[i], _destinationIps[i], _ports[i], PolicyProtocol.TCP).Allowed) allowed++;
        }
        return allowed;
    }
}

/// <summary>
/// The policy engine on a synthetic cluster of 10,000 pods in 200 namespaces with 2,000 policies (fixed seed):
/// a cached verdict, a cold one, and the recompile that one policy change costs.
/// </summary>
public class PolicyBenchmarks : VerdictBenchmarks
{
    private ClusterSnapshot _changed = null!;

    [GlobalSetup]
    public void Setup()
    {
        var (snapshot, changed) = SyntheticCluster.Build(seed: 20240611);
        _changed = changed;
        Prepare(snapshot, [80, 443, 8080], verdict => !verdict.Allowed, "denied");
    }

    /// <summary>A new snapshot with one policy changed, compiled against the running engine (its cache carried over).</summary>
    [Benchmark]
    public int RecompileAfterOnePolicyChange() => PolicyEngine.Compile(_changed, Engine).PolicyCount;
}

/// <summary>A seeded cluster shaped like a real one: deployments with shared labels, default-deny plus allow rules.</summary>
internal static class SyntheticCluster
{
    public const int NamespaceCount = 200;
    public const int PodsPerNamespace = 50;
    public const int PoliciesPerNamespace = 10;

    private static readonly string[] Apps = ["web", "api", "worker", "db", "cache", "queue", "auth", "search", "billing", "ingest"];

    public static (ClusterSnapshot Snapshot, ClusterSnapshot OnePolicyChanged) Build(int seed)
    {
        var random = new Random(seed);
        var namespaces = new List<NamespaceInfo>();
        var pods = new List<PodInfo>();
        var policies = new List<V1NetworkPolicy>();
        for (int n = 0; n < NamespaceCount; n++)
        {
            string ns = $"team-{n:D3}";
            namespaces.Add(ClusterObjectConverter.ToNamespace(new V1Namespace
            {
                Metadata = new V1ObjectMeta { Name = ns, Labels = new Dictionary<string, string> { ["team"] = $"t{n % 20}", ["env"] = n % 3 == 0 ? "prod" : "dev" } },
            }));
            for (int p = 0; p < PodsPerNamespace; p++)
            {
                string app = Apps[p % Apps.Length];
                pods.Add(new PodInfo
                {
                    Namespace = ns,
                    Name = $"{app}-{p:D2}",
                    Labels = LabelSet.Intern(new Dictionary<string, string> { ["app"] = app, ["tier"] = p % 2 == 0 ? "front" : "back", ["version"] = $"v{p % 3}" }),
                    Ips = [new IPAddress([10, (byte)(n >> 2), (byte)((n & 3) * 64 + p / 4), (byte)(p % 4 * 60 + 2)])],
                    NodeName = $"node-{(n * PodsPerNamespace + p) % 50}",
                    Ports = [new ContainerPortInfo("http", 8080, "TCP"), new ContainerPortInfo("metrics", 9090, "TCP")],
                });
            }
            for (int k = 0; k < PoliciesPerNamespace; k++) policies.Add(Policy(ns, k, random));
        }
        var snapshot = new ClusterSnapshot(1, namespaces, pods, [], [], [], policies);
        var changed = policies.ToList();
        changed[policies.Count / 2] = Policy(changed[policies.Count / 2].Metadata.NamespaceProperty, 1, new Random(seed + 1), name: changed[policies.Count / 2].Metadata.Name);
        return (snapshot, new ClusterSnapshot(2, namespaces, pods, [], [], [], changed));
    }

    private static V1NetworkPolicy Policy(string ns, int k, Random random, string? name = null)
    {
        string app = Apps[random.Next(Apps.Length)];
        var spec = k switch
        {
            0 => new V1NetworkPolicySpec { PodSelector = new V1LabelSelector(), PolicyTypes = ["Ingress"] },
            1 => new V1NetworkPolicySpec
            {
                PodSelector = Labels("app", app),
                Ingress = [new V1NetworkPolicyIngressRule
                {
                    FromProperty = [new V1NetworkPolicyPeer { PodSelector = Labels("app", Apps[random.Next(Apps.Length)]) }],
                    Ports = [new V1NetworkPolicyPort { Port = (IntOrString)("80"), Protocol = "TCP" }, new V1NetworkPolicyPort { Port = (IntOrString)("http") }],
                }],
            },
            2 => new V1NetworkPolicySpec
            {
                PodSelector = Labels("app", app),
                Ingress = [new V1NetworkPolicyIngressRule
                {
                    FromProperty = [new V1NetworkPolicyPeer { NamespaceSelector = Labels("team", $"t{random.Next(20)}"), PodSelector = Labels("tier", "front") }],
                }],
            },
            3 => new V1NetworkPolicySpec
            {
                PodSelector = new V1LabelSelector { MatchExpressions = [new V1LabelSelectorRequirement { Key = "app", OperatorProperty = "In", Values = [app, Apps[random.Next(Apps.Length)]] }] },
                PolicyTypes = ["Egress"],
                Egress = [
                    new V1NetworkPolicyEgressRule { To = [new V1NetworkPolicyPeer { NamespaceSelector = Labels("env", "prod") }] },
                    new V1NetworkPolicyEgressRule { To = [new V1NetworkPolicyPeer { IpBlock = new V1IPBlock { Cidr = $"10.{random.Next(50)}.0.0/16", Except = [$"10.{random.Next(50)}.0.0/24"] } }] },
                ],
            },
            4 => new V1NetworkPolicySpec
            {
                PodSelector = Labels("tier", "back"),
                Ingress = [new V1NetworkPolicyIngressRule
                {
                    FromProperty = [new V1NetworkPolicyPeer { NamespaceSelector = new V1LabelSelector(), PodSelector = Labels("app", "web") }],
                    Ports = [new V1NetworkPolicyPort { Port = (IntOrString)("8000"), EndPort = 8100 }],
                }],
            },
            _ => new V1NetworkPolicySpec
            {
                PodSelector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["app"] = app, ["version"] = $"v{random.Next(3)}" } },
                Ingress = [new V1NetworkPolicyIngressRule
                {
                    FromProperty = [
                        new V1NetworkPolicyPeer { PodSelector = new V1LabelSelector { MatchExpressions = [new V1LabelSelectorRequirement { Key = "app", OperatorProperty = "NotIn", Values = ["db"] }] } },
                        new V1NetworkPolicyPeer { IpBlock = new V1IPBlock { Cidr = $"10.{random.Next(50)}.{random.Next(256)}.0/24" } },
                    ],
                    Ports = [new V1NetworkPolicyPort { Port = (IntOrString)(random.Next(2) == 0 ? "443" : "8080"), Protocol = "TCP" }],
                }],
            },
        };
        return new V1NetworkPolicy
        {
            ApiVersion = "networking.k8s.io/v1",
            Kind = "NetworkPolicy",
            Metadata = new V1ObjectMeta { Name = name ?? $"policy-{k}", NamespaceProperty = ns },
            Spec = spec,
        };
    }

    private static V1LabelSelector Labels(string key, string value) => new() { MatchLabels = new Dictionary<string, string> { [key] = value } };
}
