using System.Text;
using System.Text.Json;
using YamlDotNet.RepresentationModel;

namespace Tripline.Tests.Correlation.Policy;

/// <summary>
/// Issue 18: Calico's policies judged through <c>tripline replay</c>. Each case of Fixtures/calico (from Calico's
/// documentation and Felix's tests, cited per case) becomes a manifest directory and a capture with one connection
/// per probe; the flow log's verdict of each probe must be the one Calico gives, the staged verdict (the record's
/// <c>staged.verdict</c>, or the enforced one where the record has none) the one Calico's pending view gives, and a
/// denial must name only policies of the case, as records name them (<c>GlobalNetworkPolicy/name</c>,
/// <c>NetworkPolicy(calico)/ns/name</c>, <c>ns/name</c> for a Kubernetes NetworkPolicy).
/// </summary>
public sealed class CalicoConformanceTests
{
    private static AdminTierSuite Suite => AdminTierSuite.Calico;

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var c in Suite.Cases) data.Add(c.Name);
        return data;
    }

    private static readonly string[] PolicyKinds =
        ["NetworkPolicy", "GlobalNetworkPolicy", "StagedNetworkPolicy", "StagedGlobalNetworkPolicy", "StagedKubernetesNetworkPolicy"];

    [Fact]
    public void Fixtures_CalicoCases_HaveEveryCaseAndProbe()
    {
        Assert.Equal(50, Suite.Cases.Count);
        Assert.Equal(212, Suite.Cases.Sum(c => c.Probes.Count));
        Assert.Equal(10, Suite.Cases.Sum(c => c.Probes.Count(p => p.IsIcmp)));
        Assert.Equal(20, Suite.Cases.Sum(c => c.Probes.Count(p => p.Staged is not null)));
        Assert.Equal(Suite.Cases.Count, Suite.Cases.Select(c => c.Name).Distinct(StringComparer.Ordinal).Count());
        Assert.Equal(10, Suite.Topology.ServiceAccounts.Count);
        Assert.All(Suite.Topology.Pods, p => Assert.Contains(Suite.Topology.ServiceAccounts, a => a.Namespace == p.Namespace && a.Name == p.ServiceAccount));
        foreach (var c in Suite.Cases)
        {
            Assert.True(c.Source.Length > 0, $"case '{c.Name}' cites no source");
            Assert.True(c.Probes.Count > 0, $"case '{c.Name}' has no probe");
            var policies = Policies(c);
            Assert.True(policies.Count > 0, $"case '{c.Name}' has no policy");
            // A staged expectation where, and only where, the case stages something.
            bool staged = policies.Any(p => p.Kind.StartsWith("Staged", StringComparison.Ordinal));
            foreach (var probe in c.Probes)
            {
                Assert.True(probe.Expect is "allow" or "deny", $"case '{c.Name}', {probe}: expect '{probe.Expect}'");
                Assert.True(staged ? probe.Staged is "allow" or "deny" : probe.Staged is null, $"case '{c.Name}', {probe}: staged '{probe.Staged}'");
                if (probe.IsIcmp)
                {
                    Assert.True(probe.Port == 0 && probe.IcmpType is >= 0 and <= 255 && probe.IcmpCode is >= 0 and <= 255, $"case '{c.Name}', {probe}: an ICMP probe has a type and code, and no port");
                }
                else
                {
                    Assert.True(probe.Protocol is "TCP" or "UDP" or "SCTP", $"case '{c.Name}', {probe}: protocol '{probe.Protocol}'");
                    Assert.True(probe.Port is > 0 and < 65536 && probe.IcmpType is null && probe.IcmpCode is null, $"case '{c.Name}', {probe}: port {probe.Port}");
                }
                _ = Suite.AddressOf(probe.From);
                _ = Suite.AddressOf(probe.To);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Replay_CalicoCase_JudgesEveryProbeAsCalico(string name)
    {
        var testCase = Suite.Case(name);
        using var replay = new AdminTierReplay(Suite, testCase);
        var (exit, output, errors) = replay.RunInProcess();
        var failures = new StringBuilder();
        Check(testCase, replay, exit, output + errors, failures);
        Assert.True(failures.Length == 0, failures.ToString());
    }

    /// <summary>The in-process runs above call the command the command line names; this runs the agent itself for one case.</summary>
    [Fact]
    public async Task Replay_TheExecutable_JudgesACalicoCaseAsCalico()
    {
        // The case with the most probes that expects both verdicts, enforced and staged.
        var testCase = Suite.Cases
            .Where(c => c.Probes.Any(p => p.Expect == "allow") && c.Probes.Any(p => p.Expect == "deny") && c.Probes.Any(p => p.Staged is not null && p.Staged != p.Expect))
            .MaxBy(c => c.Probes.Count)!;
        using var replay = new AdminTierReplay(Suite, testCase);
        var (exit, output) = await AdminTierConformanceTests.RunExecutableAsync(replay.Arguments);
        var failures = new StringBuilder();
        Check(testCase, replay, exit, output, failures);
        Assert.True(failures.Length == 0, failures.ToString());
    }

    /// <summary>Appends every way the replay of <paramref name="testCase"/> differs from what is expected, all at once.</summary>
    private static void Check(AdminTierCase testCase, AdminTierReplay replay, int exit, string output, StringBuilder failures)
    {
        var problems = new List<string>();
        if (exit != 0) problems.Add($"replay exited {exit}");
        // Complaints start "tripline"; the summary starts "Tripline replay:".
        foreach (string line in output.Split('\n').Where(l => l.StartsWith("tripline", StringComparison.Ordinal))) problems.Add("replay said: " + line.TrimEnd());

        var known = Policies(testCase).SelectMany(p => p.RecordNames).ToHashSet(StringComparer.Ordinal);
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
            var staged = outcome.Last is { } last && last.TryGetProperty("staged", out var s) && s.ValueKind == JsonValueKind.Object ? s : (JsonElement?)null;
            string? stagedVerdict = staged is { } st && st.TryGetProperty("verdict", out var sv) ? sv.GetString() : outcome.Verdict;
            if (outcome.Probe.Staged is { } expectStaged && stagedVerdict != expectStaged)
            {
                problems.Add(outcome.Describe() + $" (staged: expected {expectStaged}, observed {stagedVerdict}{(staged is { } written ? ": " + written.GetRawText() : ", no staged field")})");
                continue;
            }
            if (outcome.Probe.Staged is null && staged is not null) problems.Add(outcome.Describe() + " (a staged verdict, and the case stages nothing)");

            if (outcome.Verdict == "deny") CheckDenial(outcome.Describe(), outcome.Side("egress"), outcome.Side("ingress"), known, problems);
            if (staged is { } stagedSides && stagedVerdict == "deny")
            {
                CheckDenial(outcome.Describe() + " (staged)", Side(stagedSides, "egress"), Side(stagedSides, "ingress"), known, problems);
            }
        }
        if (problems.Count == 0) return;
        failures.AppendLine($"case '{testCase.Name}' ({testCase.Source}): {problems.Count} problem(s)");
        foreach (string problem in problems) failures.Append("  ").AppendLine(problem);

        static JsonElement? Side(JsonElement record, string name) => record.TryGetProperty(name, out var side) && side.ValueKind == JsonValueKind.Object ? side : null;
    }

    /// <summary>A denial names what decided it on the side that denied, and only policies of the case.</summary>
    private static void CheckDenial(string probe, JsonElement? egress, JsonElement? ingress, HashSet<string> known, List<string> problems)
    {
        var denying = new[] { egress, ingress }.OfType<JsonElement>().Where(s => !ProbeOutcome.AllowedBy(s)).ToList();
        if (denying.Count == 0)
        {
            problems.Add(probe + " (denied, yet neither side says denied)");
            return;
        }
        var listed = denying.SelectMany(ProbeOutcome.PoliciesOf).ToList();
        var strangers = listed.Where(p => !known.Contains(p)).ToList();
        if (listed.Count == 0) problems.Add(probe + " (the denying side names no policy)");
        else if (strangers.Count > 0) problems.Add(probe + $" (names {string.Join(", ", strangers)}, not a policy of this case; the case has {string.Join(", ", known.Order(StringComparer.Ordinal))})");
    }

    /// <summary>
    /// Each policy document of the case: its kind and the names a record may give it. A Calico policy is
    /// <c>GlobalNetworkPolicy/name</c> or <c>NetworkPolicy(calico)/ns/name</c> (a crd.projectcalico.org/v1 default-tier
    /// one without its <c>default.</c> prefix), a staged one by its own kind (<c>StagedGlobalNetworkPolicy/name</c>,
    /// <c>StagedNetworkPolicy/ns/name</c>, <c>StagedKubernetesNetworkPolicy/ns/name</c>); a Kubernetes NetworkPolicy <c>ns/name</c>.
    /// </summary>
    private static List<(string Kind, string[] RecordNames)> Policies(AdminTierCase testCase)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(testCase.Policies));
        var names = new List<(string, string[])>();
        foreach (var document in stream.Documents)
        {
            if (document.RootNode is not YamlMappingNode root) continue;
            string kind = Scalar(root, "kind"), apiVersion = Scalar(root, "apiVersion");
            if (!PolicyKinds.Contains(kind)) continue;
            var metadata = (YamlMappingNode)root.Children[new YamlScalarNode("metadata")];
            string name = Scalar(metadata, "name"), ns = Scalar(metadata, "namespace");
            if (apiVersion == "crd.projectcalico.org/v1" && name.StartsWith("default.", StringComparison.Ordinal)) name = name["default.".Length..];
            string[] recordNames = kind switch
            {
                "NetworkPolicy" when apiVersion == "networking.k8s.io/v1" => [$"{ns}/{name}"],
                "StagedKubernetesNetworkPolicy" or "StagedNetworkPolicy" => [$"{kind}/{ns}/{name}"],
                "StagedGlobalNetworkPolicy" => [$"{kind}/{name}"],
                "NetworkPolicy" => [$"NetworkPolicy(calico)/{ns}/{name}"],
                _ => [$"GlobalNetworkPolicy/{name}"],
            };
            names.Add((kind, recordNames));
        }
        return names;

        static string Scalar(YamlMappingNode node, string key) =>
            node.Children.TryGetValue(new YamlScalarNode(key), out var value) && value is YamlScalarNode { Value: { } text } ? text : "";
    }
}
