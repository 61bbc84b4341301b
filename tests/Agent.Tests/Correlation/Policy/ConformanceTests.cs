using System.Text;
using System.Text.RegularExpressions;
using k8s.Models;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;
using Tripline.Correlation.Manifests;
using Tripline.Correlation.Policy;

namespace Tripline.Tests.Correlation.Policy;

/// <summary>
/// Runs every transcribed case of the upstream network-policy e2e suite through the engine and compares the whole
/// reachability matrix. A failure names the case, the step and the probe, and lists every cell that differs.
/// </summary>
public sealed partial class ConformanceTests
{
    private static readonly string[] Namespaces = ["x", "y", "z"];
    private static readonly string[] PodNames = ["a", "b", "c"];

    public static TheoryData<string> CaseNames()
    {
        var data = new TheoryData<string>();
        foreach (var c in ConformanceCase.Cases) data.Add(c.Name);
        return data;
    }

    [Fact]
    public void Fixture_TranscribesTheUpstreamSuite_HasEveryCase()
    {
        // 42 TCP tests plus 3 UDP and 3 SCTP: every test of network_policy.go that NetworkPolicy v1 can express.
        Assert.Equal(48, ConformanceCase.Cases.Count);
        Assert.Equal(ConformanceCase.Cases.Count, ConformanceCase.Cases.Select(c => c.Name).Distinct().Count());
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Evaluate_UpstreamCase_MatchesExpectedReachability(string name)
    {
        var testCase = ConformanceCase.Cases.Single(c => c.Name == name);
        var cluster = new NetpolCluster(suffix: "k3q9");
        var failures = new StringBuilder();
        PolicyEngine? engine = null;
        for (int s = 0; s < testCase.Steps.Count; s++)
        {
            var step = testCase.Steps[s];
            cluster.Apply(step);
            var snapshot = cluster.Snapshot();
            // The engine carried over from the previous step must agree with one compiled from nothing: that is
            // what makes invalidation precise rather than lucky.
            engine = PolicyEngine.Compile(snapshot, engine);
            var fresh = PolicyEngine.Compile(snapshot);
            foreach (var probe in step.Probes)
            {
                var expected = cluster.Expected(probe);
                var protocol = Enum.Parse<PolicyProtocol>(probe.Protocol);
                foreach (var (label, candidate) in new[] { ("carried-over engine", engine), ("fresh engine", fresh) })
                {
                    var diffs = new List<string>();
                    var observed = new Dictionary<(string, string), bool>();
                    foreach (var from in cluster.PodKeys)
                    {
                        foreach (var to in cluster.PodKeys)
                        {
                            if (from == to) continue; // upstream ignores loopback: CNIs disagree on it
                            var verdict = cluster.Evaluate(candidate, snapshot, from, to, probe.Port, protocol);
                            observed[(from, to)] = verdict.Allowed;
                            if (verdict.Allowed != expected[(from, to)])
                            {
                                diffs.Add($"    {from} -> {to}: expected {(expected[(from, to)] ? "allow" : "deny")}, observed {(verdict.Allowed ? "allow" : "deny")}"
                                    + $" (egress: {Side(verdict.Egress)}; ingress: {Side(verdict.Ingress)})");
                            }
                        }
                    }
                    if (diffs.Count > 0)
                    {
                        failures.AppendLine($"case '{name}', step {s + 1}, {probe.Port}/{probe.Protocol}, {label}: {diffs.Count} cell(s) differ");
                        foreach (string diff in diffs) failures.AppendLine(diff);
                        failures.AppendLine("  expected:").Append(cluster.Table(expected)).AppendLine("  observed:").Append(cluster.Table(observed));
                    }
                }
            }
        }
        Assert.True(failures.Length == 0, failures.ToString());
    }

    private static string Side(SideVerdict? side) => side is null ? "none" : $"{(side.Allowed ? "allowed" : "denied")} [{string.Join(",", side.Policies)}]";

    /// <summary>Upstream's topology: three namespaces with unique names and three pods each, serving 80 and 81 on every protocol.</summary>
    internal sealed partial class NetpolCluster
    {
        private readonly Dictionary<string, string> _namespaceNames = new(StringComparer.Ordinal);
        private readonly Dictionary<string, Dictionary<string, string>> _namespaceLabels = new(StringComparer.Ordinal);
        private readonly Dictionary<string, PodInfo> _pods = new(StringComparer.Ordinal);
        private readonly Dictionary<string, V1NetworkPolicy> _policies = new(StringComparer.Ordinal);
        private long _version;

        public NetpolCluster(string suffix)
        {
            for (int n = 0; n < Namespaces.Length; n++)
            {
                string shortName = Namespaces[n];
                string full = $"netpol-{suffix}-{shortName}";
                _namespaceNames[shortName] = full;
                _namespaceLabels[shortName] = new(StringComparer.Ordinal) { ["ns"] = shortName };
                for (int p = 0; p < PodNames.Length; p++)
                {
                    string pod = PodNames[p];
                    _pods[$"{shortName}/{pod}"] = PolicyBuilders.Pod(full, pod, $"10.0.{n + 1}.{p + 1}", new() { ["pod"] = pod }) with
                    {
                        Ports = [.. from port in new[] { 80, 81 } from proto in new[] { "TCP", "UDP", "SCTP" } select new ContainerPortInfo($"serve-{port}-{proto.ToLowerInvariant()}", port, proto)],
                    };
                }
            }
        }

        public IEnumerable<string> PodKeys => _pods.Keys;

        public void Apply(ConformanceStep step)
        {
            if (step.Policies is not null)
            {
                _policies.Clear();
                AddPolicies(step.Policies);
            }
            if (step.Add is not null) AddPolicies(step.Add);
            foreach (var (ns, labels) in step.NamespaceLabels ?? [])
            {
                foreach (var (key, value) in labels) _namespaceLabels[ns][key] = value;
            }
            foreach (var (pod, labels) in step.PodLabels ?? [])
            {
                var merged = new Dictionary<string, string>(_pods[pod].Labels.Labels, StringComparer.Ordinal);
                foreach (var (key, value) in labels) merged[key] = value;
                _pods[pod] = _pods[pod] with { Labels = LabelSet.Intern(merged) };
            }
        }

        private void AddPolicies(string yaml)
        {
            if (string.IsNullOrWhiteSpace(yaml)) return;
            var loaded = ManifestLoader.LoadFromText(Substitute(yaml));
            Assert.True(loaded.Errors.Count == 0, string.Join("\n", loaded.Errors));
            foreach (var policy in loaded.Snapshot.Policies) _policies[$"{policy.Metadata.NamespaceProperty}/{policy.Metadata.Name}"] = policy;
        }

        private string Substitute(string yaml)
        {
            yaml = Placeholder().Replace(yaml, m =>
            {
                var ip = _pods[m.Groups["pod"].Value].Ips[0];
                // Upstream's makeLargeCIDRForIP: a block far wider than the pod, here its /16.
                return m.Groups["fn"].Value == "ip" ? ip.ToString() : $"{ip.GetAddressBytes()[0]}.{ip.GetAddressBytes()[1]}.0.0/16";
            });
            foreach (var (shortName, full) in _namespaceNames) yaml = yaml.Replace("$" + shortName, full, StringComparison.Ordinal);
            return yaml;
        }

        [GeneratedRegex(@"\$(?<fn>ip|cidr4)\((?<pod>[xyz]/[abc])\)")]
        private static partial Regex Placeholder();

        public ClusterSnapshot Snapshot()
        {
            var namespaces = _namespaceNames.Select(kv => ClusterObjectConverter.ToNamespace(new V1Namespace
            {
                Metadata = new V1ObjectMeta { Name = kv.Value, Labels = new Dictionary<string, string>(_namespaceLabels[kv.Key]) },
            }));
            return new ClusterSnapshot(++_version, namespaces, _pods.Values, [], [], [], _policies.Values);
        }

        public Dictionary<(string, string), bool> Expected(ConformanceProbe probe)
        {
            var matrix = new Dictionary<(string, string), bool>();
            foreach (var from in PodKeys) foreach (var to in PodKeys) matrix[(from, to)] = true;
            foreach (var rule in probe.Expect)
            {
                Assert.Equal(3, rule.Count);
                bool allowed = bool.Parse(rule[2]);
                foreach (var from in PodKeys.Where(p => Matches(rule[0], p)))
                {
                    foreach (var to in PodKeys.Where(p => Matches(rule[1], p))) matrix[(from, to)] = allowed;
                }
            }
            return matrix;
        }

        private static bool Matches(string pattern, string pod) =>
            pattern == "*" || pattern == pod || (pattern.EndsWith("/*", StringComparison.Ordinal) && pod.StartsWith(pattern[..^1], StringComparison.Ordinal));

        /// <summary>Evaluates with the pod objects of <paramref name="snapshot"/>, as the endpoint index would resolve them.</summary>
        public Verdict Evaluate(PolicyEngine engine, ClusterSnapshot snapshot, string from, string to, int port, PolicyProtocol protocol)
        {
            var source = snapshot.Pods.Single(p => ReferenceEquals(p, _pods[from]));
            var destination = snapshot.Pods.Single(p => ReferenceEquals(p, _pods[to]));
            var cached = engine.Evaluate(new ResolvedEndpoint(EndpointKind.Pod, pod: source), IpKey.From(source.Ips[0]), new ResolvedEndpoint(EndpointKind.Pod, pod: destination), IpKey.From(destination.Ips[0]), port, protocol);
            var uncached = engine.EvaluateUncached(new ResolvedEndpoint(EndpointKind.Pod, pod: source), IpKey.From(source.Ips[0]), new ResolvedEndpoint(EndpointKind.Pod, pod: destination), IpKey.From(destination.Ips[0]), port, protocol);
            Assert.True(cached.Allowed == uncached.Allowed, $"{from} -> {to} {port}/{protocol}: cached {cached.Allowed}, uncached {uncached.Allowed}");
            return cached;
        }

        /// <summary>Upstream's truth-table layout: rows are sources, columns destinations, '.' allowed, 'X' denied.</summary>
        public string Table(Dictionary<(string, string), bool> matrix)
        {
            var text = new StringBuilder("  -\t" + string.Join("\t", PodKeys) + "\n");
            foreach (var from in PodKeys)
            {
                text.Append("  ").Append(from);
                foreach (var to in PodKeys) text.Append('\t').Append(from == to ? "-" : matrix.TryGetValue((from, to), out bool ok) && ok ? "." : "X");
                text.Append('\n');
            }
            return text.ToString();
        }
    }
}
