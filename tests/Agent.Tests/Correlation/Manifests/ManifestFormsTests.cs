using System.Net;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;
using Tripline.Correlation.Manifests;
using Tripline.Correlation.Policy;
using Tripline.Tests.Correlation.Kubernetes;
using Tripline.Tests.Support;

namespace Tripline.Tests.Correlation.Manifests;

/// <summary>
/// One generated cluster of a few thousand pods and hundreds of policies, loaded from every form a user hands the
/// agent (one document per object, one List as kubectl writes it, JSON, gzipped) and from the API server's list and
/// watch: every form must give the same cluster and the same verdicts.
/// </summary>
public sealed class ManifestFormsTests : IDisposable
{
    private static readonly GeneratedCluster Cluster = new(pods: 3000, policies: 400, namespaces: 60, nodes: 12);
    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-forms-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Load_EveryFormAndTheApi_SameClusterAndSameVerdicts()
    {
        var models = new Dictionary<string, ClusterModel>();
        foreach (string form in new[] { "documents", "list", "json", "list.gz", "json.gz" })
        {
            var loaded = ManifestLoader.Load([Cluster.Write(_dir, form)]);
            Assert.True(loaded.Errors.Count == 0, $"{form}: {string.Join("\n", loaded.Errors.Take(5))}");
            models[form] = ClusterModel.Build(loaded.Snapshot);
        }
        await using (var harness = await KubernetesSourceHarness.StartAsync(seed: store =>
        {
            foreach (var o in Cluster.NamespaceObjects()) store.Apply(o);
            foreach (var o in Cluster.NodeObjects()) store.Apply(o);
            foreach (var o in Cluster.PodObjects()) store.Apply(o);
            foreach (var o in Cluster.PolicyObjects()) store.Apply(o);
        }))
        {
            await harness.Source.WaitForSyncAsync(CancellationToken.None).WaitAsync(KubernetesSourceHarness.WaitLimit);
            models["api"] = ClusterModel.Build(harness.Source.Current);
        }

        var reference = models["documents"].Snapshot;
        Assert.Equal(Cluster.Pods, reference.Pods.Count);
        Assert.Equal(Cluster.Policies, reference.Policies.Count);
        Assert.Equal(Cluster.Namespaces, reference.Namespaces.Count);
        foreach (var (form, model) in models)
        {
            var s = model.Snapshot;
            Assert.True(s.Pods.Count == reference.Pods.Count && s.Policies.Count == reference.Policies.Count && s.Namespaces.Count == reference.Namespaces.Count && s.Nodes.Count == reference.Nodes.Count,
                $"{form}: {s.Pods.Count} pods, {s.Policies.Count} policies, {s.Namespaces.Count} namespaces, {s.Nodes.Count} nodes");
        }

        // Verdicts for pairs drawn across the cluster, on declared, named and other ports, TCP and UDP.
        var random = new Random(26);
        var differences = new List<string>();
        int denied = 0;
        for (int n = 0; n < 3000; n++)
        {
            int a = random.Next(Cluster.Pods), b = random.Next(Cluster.Pods);
            int port = random.Next(4) switch { 0 => 8080, 1 => 8081, 2 => 53, _ => 9090 };
            var protocol = port == 53 ? PolicyProtocol.UDP : PolicyProtocol.TCP;
            var source = IpKey.From(IPAddress.Parse(GeneratedCluster.PodIp(a)));
            var destination = IpKey.From(IPAddress.Parse(GeneratedCluster.PodIp(b)));
            var expected = Describe(models["documents"].Judge(source, destination, port, protocol, 0));
            if (expected.StartsWith("deny", StringComparison.Ordinal)) denied++;
            foreach (var (form, model) in models)
            {
                string actual = Describe(model.Judge(source, destination, port, protocol, 0));
                if (actual != expected) differences.Add($"{form}: pod {a} -> pod {b} {port}/{protocol}: {actual}, documents say {expected}");
            }
        }
        Assert.True(differences.Count == 0, string.Join("\n", differences.Take(10)));
        Assert.True(denied > 300, $"only {denied} of 3000 probes denied: the cluster does not exercise the policies");
    }

    private static string Describe(FlowJudgement j) =>
        $"{(j.Verdict.Allowed ? "allow" : "deny")} {j.Source.Pod?.Key} {j.Destination.Pod?.Key} egress=[{Side(j.Verdict.Egress)}] ingress=[{Side(j.Verdict.Ingress)}]";

    private static string Side(SideVerdict? side) => side is null ? "-" : $"{side.Isolated},{side.Allowed},{string.Join(",", side.Policies)}";
}

public sealed class YamlJsonNumberTests
{
    /// <summary>The hand check agrees with JSON's number grammar, as a regular expression states it.</summary>
    [Theory]
    [InlineData("0")] [InlineData("-0")] [InlineData("12")] [InlineData("1.5")] [InlineData("-3.25e10")] [InlineData("2E-3")] [InlineData("1e+9")]
    [InlineData("007")] [InlineData("+5")] [InlineData("1.")] [InlineData(".5")] [InlineData("1e")] [InlineData("-")] [InlineData("")] [InlineData("0x1F")]
    [InlineData("1_000")] [InlineData("1.10")] [InlineData("12a")] [InlineData("--1")] [InlineData("1e5.5")]
    public void IsJsonNumber_AgreesWithTheGrammar(string text)
    {
        bool grammar = System.Text.RegularExpressions.Regex.IsMatch(text, @"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$");
        Assert.Equal(grammar, Tripline.Correlation.Manifests.YamlJson.IsJsonNumber(text));
    }
}
