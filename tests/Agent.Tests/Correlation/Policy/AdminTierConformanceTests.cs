using System.Diagnostics;
using System.Text;
using System.Text.Json;
using YamlDotNet.RepresentationModel;

namespace Tripline.Tests.Correlation.Policy;

/// <summary>
/// Issue 17: SIG Network's admin tiers judged through <c>tripline replay</c>. Each case of network-policy-api's
/// conformance suites (v1alpha2 ClusterNetworkPolicy; v1alpha1 AdminNetworkPolicy and BaselineAdminNetworkPolicy) and
/// of this project's tier-interplay cases becomes a manifest directory and a capture with one connection per probe;
/// the flow log's verdict of each probe must be the one upstream expects, and a denial must name the policies that
/// decided it as the records name them (<c>ClusterNetworkPolicy/name</c>, <c>ns/name</c> for a NetworkPolicy).
/// </summary>
public sealed class AdminTierConformanceTests
{
    public static TheoryData<string> ClusterNetworkPolicyCases() => Names(AdminTierSuite.ClusterNetworkPolicy);
    public static TheoryData<string> AdminNetworkPolicyCases() => Names(AdminTierSuite.AdminNetworkPolicy);
    public static TheoryData<string> TierInterplayCases() => Names(AdminTierSuite.TierInterplay);

    private static TheoryData<string> Names(AdminTierSuite suite)
    {
        var data = new TheoryData<string>();
        foreach (var c in suite.Cases) data.Add(c.Name);
        return data;
    }

    [Fact]
    public void Fixtures_TranscribeTheSuites_HaveEveryCaseAndProbe()
    {
        // Upstream's 24 tests with 92 subtests each way; the v1alpha2 suite adds namespace-relabel steps (4 cases, 12 probes).
        AssertShape(AdminTierSuite.ClusterNetworkPolicy, cases: 96, probes: 301);
        AssertShape(AdminTierSuite.AdminNetworkPolicy, cases: 92, probes: 289);
        AssertShape(AdminTierSuite.TierInterplay, cases: 25, probes: 72);

        // Case names are test names: one per row across all three files.
        var names = new[] { AdminTierSuite.ClusterNetworkPolicy, AdminTierSuite.AdminNetworkPolicy, AdminTierSuite.TierInterplay }.SelectMany(s => s.Cases).Select(c => c.Name).ToList();
        Assert.Equal(names.Count, names.Distinct(StringComparer.Ordinal).Count());
    }

    private static void AssertShape(AdminTierSuite suite, int cases, int probes)
    {
        Assert.Equal(cases, suite.Cases.Count);
        Assert.Equal(probes, suite.Cases.Sum(c => c.Probes.Count));
        foreach (var c in suite.Cases)
        {
            Assert.True(c.Probes.Count > 0, $"case '{c.Name}' has no probe");
            Assert.True(PolicyNames(c).Count > 0, $"case '{c.Name}' has no policy");
            foreach (var probe in c.Probes)
            {
                Assert.True(probe.Expect is "allow" or "deny", $"case '{c.Name}', {probe}: expect '{probe.Expect}'");
                Assert.True(probe.Protocol is "TCP" or "UDP" or "SCTP", $"case '{c.Name}', {probe}: protocol '{probe.Protocol}'");
                Assert.True(probe.Port is > 0 and < 65536, $"case '{c.Name}', {probe}: port {probe.Port}");
                Assert.Contains(suite.Topology.Pods, p => $"{p.Namespace}/{p.Name}" == probe.From);
                _ = suite.AddressOf(probe.To);
            }
        }
    }

    [Theory]
    [MemberData(nameof(ClusterNetworkPolicyCases))]
    public void Replay_ClusterNetworkPolicyConformanceCase_JudgesEveryProbeAsUpstream(string name) => Judge(AdminTierSuite.ClusterNetworkPolicy, name);

    [Theory]
    [MemberData(nameof(AdminNetworkPolicyCases))]
    public void Replay_AdminNetworkPolicyConformanceCase_JudgesEveryProbeAsUpstream(string name) => Judge(AdminTierSuite.AdminNetworkPolicy, name);

    [Theory]
    [MemberData(nameof(TierInterplayCases))]
    public void Replay_TierInterplayCase_JudgesEveryProbeAsDocumented(string name) => Judge(AdminTierSuite.TierInterplay, name);

    /// <summary>
    /// The in-process runs above parse the same command line and call the command it names; this runs the agent
    /// itself for one case of each file, so the executable's own path is covered too.
    /// </summary>
    [Fact]
    public async Task Replay_TheExecutable_JudgesAsTheCases()
    {
        var failures = new StringBuilder();
        foreach (var suite in new[] { AdminTierSuite.ClusterNetworkPolicy, AdminTierSuite.AdminNetworkPolicy, AdminTierSuite.TierInterplay })
        {
            // The case with the most probes that expects both verdicts.
            var testCase = suite.Cases.Where(c => c.Probes.Any(p => p.Expect == "allow") && c.Probes.Any(p => p.Expect == "deny")).MaxBy(c => c.Probes.Count)!;
            using var replay = new AdminTierReplay(suite, testCase);
            var (exit, output) = await RunExecutableAsync(replay.Arguments);
            Check(testCase, replay, exit, output, failures);
        }
        Assert.True(failures.Length == 0, failures.ToString());
    }

    /// <summary>
    /// v1beta1 is read as v1alpha2 (design.md section 9; upstream defines no v1beta1 yet): every case of the v1alpha2
    /// suite, its policies relabelled v1beta1, gets the verdicts its v1alpha2 policies get, probe by probe.
    /// </summary>
    [Fact]
    public void Replay_ClusterNetworkPolicyAsV1beta1_JudgesAsV1alpha2()
    {
        var suite = AdminTierSuite.ClusterNetworkPolicy;
        var failures = new StringBuilder();
        foreach (var testCase in suite.Cases)
        {
            var alpha = Outcomes(suite, testCase, policies: null, out _);
            string beta = testCase.Policies.Replace("policy.networking.k8s.io/v1alpha2", "policy.networking.k8s.io/v1beta1", StringComparison.Ordinal);
            var betaOutcomes = Outcomes(suite, testCase, beta, out string output);
            var differing = alpha.Zip(betaOutcomes).Where(pair => pair.First.Verdict != pair.Second.Verdict).ToList();
            var complaints = output.Split('\n').Where(l => l.StartsWith("tripline", StringComparison.Ordinal)).ToList();
            if (differing.Count == 0 && complaints.Count == 0) continue;
            failures.AppendLine($"case '{testCase.Name}' as v1beta1:");
            foreach (string line in complaints) failures.Append("  replay said: ").AppendLine(line.TrimEnd());
            foreach (var (first, second) in differing) failures.Append("  ").Append(second.Describe()).Append(" (as v1alpha2: ").Append(first.Verdict).AppendLine(")");
        }
        Assert.True(failures.Length == 0, failures.ToString());
    }

    /// <summary>
    /// A domainNames peer names hosts, and a capture holds only addresses: a connection such a rule could decide is
    /// reported as not judgeable in its verdict_note, never guessed (design.md section 9). A connection the rule
    /// cannot decide (another port) is judged as usual by the rules after it.
    /// </summary>
    [Fact]
    public void Replay_DomainNamesPeer_IsReportedAsNotJudgeable()
    {
        var suite = AdminTierSuite.TierInterplay;
        var testCase = new AdminTierCase
        {
            Name = "domainNames accept before a networks deny",
            Source = "design.md section 9",
            Policies = """
                apiVersion: policy.networking.k8s.io/v1alpha2
                kind: ClusterNetworkPolicy
                metadata:
                  name: egress-by-domain
                spec:
                  tier: Admin
                  priority: 5
                  subject:
                    namespaces:
                      matchLabels:
                        conformance-house: gryffindor
                  egress:
                  - name: accept-example-https
                    action: Accept
                    to:
                    - domainNames: ["example.com", "*.example.org"]
                    protocols:
                    - tcp:
                        destinationPort:
                          number: 443
                  - name: deny-everything-else
                    action: Deny
                    to:
                    - networks: ["0.0.0.0/0"]
                """,
            Probes =
            [
                new() { From = "network-policy-conformance-gryffindor/harry-potter-0", To = "192.0.2.10", Port = 443, Protocol = "TCP", Expect = "a verdict_note" },
                new() { From = "network-policy-conformance-gryffindor/harry-potter-0", To = "192.0.2.10", Port = 80, Protocol = "TCP", Expect = "deny" },
            ],
        };
        var outcomes = Outcomes(suite, testCase, policies: null, out string output);
        var problems = output.Split('\n').Where(l => l.StartsWith("tripline", StringComparison.Ordinal)).Select(l => "replay said: " + l.TrimEnd()).ToList();
        if (string.IsNullOrWhiteSpace(outcomes[0].Note)) problems.Add(outcomes[0].Describe() + " (a connection a domainNames rule could decide has no verdict_note)");
        if (outcomes[1].Verdict != "deny") problems.Add(outcomes[1].Describe());
        else if (!(outcomes[1].Side("egress") is { } egress && ProbeOutcome.PoliciesOf(egress).Contains("ClusterNetworkPolicy/egress-by-domain")))
        {
            problems.Add(outcomes[1].Describe() + " (the denying egress side does not name ClusterNetworkPolicy/egress-by-domain)");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    private static IReadOnlyList<ProbeOutcome> Outcomes(AdminTierSuite suite, AdminTierCase testCase, string? policies, out string output)
    {
        using var replay = new AdminTierReplay(suite, testCase, policies);
        var (exit, stdout, stderr) = replay.RunInProcess();
        Assert.True(exit == 0, $"case '{testCase.Name}': replay exited {exit}\n{stdout}{stderr}");
        output = stdout + stderr;
        return replay.Outcomes();
    }

    private static void Judge(AdminTierSuite suite, string name)
    {
        var testCase = suite.Case(name);
        using var replay = new AdminTierReplay(suite, testCase);
        var (exit, output, errors) = replay.RunInProcess();
        var failures = new StringBuilder();
        Check(testCase, replay, exit, output + errors, failures);
        Assert.True(failures.Length == 0, failures.ToString());
    }

    /// <summary>Appends every way the replay of <paramref name="testCase"/> differs from what is expected, all at once.</summary>
    private static void Check(AdminTierCase testCase, AdminTierReplay replay, int exit, string output, StringBuilder failures)
    {
        var problems = new List<string>();
        if (exit != 0) problems.Add($"replay exited {exit}");
        // Every policy of the suites is valid against the upstream CRDs: a manifest error means one was not read.
        // Complaints start "tripline"; the summary starts "Tripline replay:".
        foreach (string line in output.Split('\n').Where(l => l.StartsWith("tripline", StringComparison.Ordinal))) problems.Add("replay said: " + line.TrimEnd());

        var named = PolicyNames(testCase);
        bool hasNetworkPolicies = named.Any(n => n.Kind == "NetworkPolicy");
        var known = named.Select(n => n.RecordName).ToHashSet(StringComparer.Ordinal);
        foreach (var outcome in replay.Outcomes())
        {
            if (outcome.Records.Count == 0)
            {
                problems.Add(outcome.Describe() + " (the flow was not written)");
                continue;
            }
            if (outcome.Verdict != outcome.Probe.Expect)
            {
                problems.Add(outcome.Describe());
                continue;
            }
            if (outcome.Verdict != "deny") continue;

            // A denial names what decided it on the side that denied, spelled as records spell it (design.md section 3).
            var denyingSides = new[] { "egress", "ingress" }.Select(outcome.Side).OfType<JsonElement>().Where(s => !ProbeOutcome.AllowedBy(s)).ToList();
            if (denyingSides.Count == 0)
            {
                problems.Add(outcome.Describe() + " (denied, yet neither side says denied)");
                continue;
            }
            var listed = denyingSides.SelectMany(ProbeOutcome.PoliciesOf).ToList();
            var strangers = listed.Where(p => !known.Contains(p)).ToList();
            if (listed.Count == 0) problems.Add(outcome.Describe() + " (the denying side names no policy)");
            else if (strangers.Count > 0) problems.Add(outcome.Describe() + $" (names {string.Join(", ", strangers)}, not a policy of this case as Kind/name or ns/name; the case has {string.Join(", ", known)})");
            // Without NetworkPolicies only an admin-tier policy can deny, and it must be the one named.
            else if (!hasNetworkPolicies && !listed.Any(p => named.Any(n => n.Kind != "NetworkPolicy" && n.RecordName == p)))
            {
                problems.Add(outcome.Describe() + " (denied by the admin tiers, yet no admin-tier policy is named)");
            }
        }
        if (problems.Count == 0) return;
        failures.AppendLine($"case '{testCase.Name}' ({testCase.Source}): {problems.Count} problem(s)");
        foreach (string problem in problems) failures.Append("  ").AppendLine(problem);
    }

    /// <summary>Each policy document of the case: its kind and the name records give it.</summary>
    private static List<(string Kind, string RecordName)> PolicyNames(AdminTierCase testCase)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(testCase.Policies));
        var names = new List<(string, string)>();
        foreach (var document in stream.Documents)
        {
            if (document.RootNode is not YamlMappingNode root) continue;
            string kind = Scalar(root, "kind");
            var metadata = (YamlMappingNode)root.Children[new YamlScalarNode("metadata")];
            string name = Scalar(metadata, "name");
            names.Add(kind == "NetworkPolicy" ? (kind, $"{Scalar(metadata, "namespace")}/{name}") : (kind, $"{kind}/{name}"));
        }
        return names;

        static string Scalar(YamlMappingNode node, string key) =>
            node.Children.TryGetValue(new YamlScalarNode(key), out var value) && value is YamlScalarNode { Value: { } text } ? text : "";
    }

    internal static async Task<(int Exit, string Output)> RunExecutableAsync(string[] arguments)
    {
        string tripline = Path.Combine(AppContext.BaseDirectory, "tripline.dll");
        if (!File.Exists(tripline)) throw new FileNotFoundException("the agent is not beside the tests", tripline);
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        var start = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(tripline);
        foreach (string argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        return (process.ExitCode, await stdout + await stderr);
    }
}
