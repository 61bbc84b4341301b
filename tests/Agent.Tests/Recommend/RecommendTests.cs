using System.Net;
using System.Text;
using k8s;
using k8s.Models;
using Tripline.Cli;
using Tripline.Correlation.Manifests;
using Tripline.Recommend;
using Tripline.Tests.Deploy;
using Tripline.Tests.Support;
using Tripline.WhatIf;

namespace Tripline.Tests.Recommend;

/// <summary>
/// <c>tripline recommend</c> (issue 19): labels, CIDRs, ports and DNS as the policies name them; the documents load with
/// KubernetesClient's models and the project's loader; the same input gives the same bytes; and on the demo, for every
/// kind, the recommendation applied with <c>whatif --apply</c> breaks no flow.
/// </summary>
public sealed class RecommendTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-recommend-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Dictionary<string, string> Labels(params string[] pairs) => pairs.Select(p => p.Split('=')).ToDictionary(p => p[0], p => p[1]);

    [Fact]
    public void Choose_DropsPerPodLabels_AndPicksTheSmallestSetThatTellsTheWorkloadApart()
    {
        var web = new[] { Labels("app=web", "tier=front", "pod-template-hash=5f"), Labels("app=web", "tier=front", "pod-template-hash=6c") };
        var others = new[] { Labels("app=api", "tier=front", "pod-template-hash=77") };
        var choice = StableLabels.Choose(web, others, "shop/Deployment/web");
        Assert.Equal("app=web", choice.Text);
        Assert.Null(choice.Note);

        // Two labels needed: neither alone is unique.
        var both = StableLabels.Choose([Labels("app=web", "tier=front")], [Labels("app=web", "tier=back"), Labels("app=api", "tier=front")], "w");
        Assert.Equal("app=web,tier=front", both.Text);
    }

    [Fact]
    public void Choose_OnlyAPerPodLabelTellsThemApart_UsesItAndSaysSo()
    {
        var blue = new[] { Labels("app=web", "pod-template-hash=aaa") };
        var green = new[] { Labels("app=web", "pod-template-hash=bbb") };
        var choice = StableLabels.Choose(blue, green, "shop/Deployment/web-blue");
        Assert.Equal("pod-template-hash=aaa", choice.Text);
        Assert.Contains("no stable label tells shop/Deployment/web-blue", choice.Note, StringComparison.Ordinal);
        Assert.Contains("pod-template-hash", choice.Note, StringComparison.Ordinal);

        var same = StableLabels.Choose([Labels("app=web")], [Labels("app=web")], "w");
        Assert.Equal("app=web", same.Text);
        Assert.Contains("selects theirs too", same.Note, StringComparison.Ordinal);
    }

    [Fact]
    public void Merge_CoversExactlyTheObservedAddresses()
    {
        IPAddress[] Ips(params string[] ips) => [.. ips.Select(IPAddress.Parse)];
        Assert.Equal(["10.0.0.1/32", "fd00::1/128"], CidrMerge.Singles(Ips("fd00::1", "10.0.0.1", "10.0.0.1")));
        Assert.Equal(["10.0.0.4/30"], CidrMerge.Merge(Ips("10.0.0.7", "10.0.0.5", "10.0.0.4", "10.0.0.6")));
        // 10.0.0.1 and .2 are adjacent but not one block: merging them would cover .0 or .3, never observed.
        Assert.Equal(["10.0.0.1/32", "10.0.0.2/32"], CidrMerge.Merge(Ips("10.0.0.2", "10.0.0.1")));
        Assert.Equal(["10.0.0.0/31", "10.0.0.2/32", "fd00::/127"], CidrMerge.Merge(Ips("10.0.0.0", "10.0.0.1", "10.0.0.2", "fd00::", "fd00::1")));
    }

    [Fact]
    public void Merge_RandomAddresses_CoverEveryOneAndNothingElse()
    {
        var random = new Random(7);
        for (int round = 0; round < 50; round++)
        {
            var ips = Enumerable.Range(0, random.Next(1, 40)).Select(_ => new IPAddress([10, 0, (byte)random.Next(0, 2), (byte)random.Next(0, 64)])).Distinct().ToList();
            var blocks = CidrMerge.Merge(ips).Select(IPNetwork.Parse).ToList();
            for (int third = 0; third < 2; third++)
            {
                for (int last = 0; last < 64; last++)
                {
                    var ip = new IPAddress([10, 0, (byte)third, (byte)last]);
                    Assert.Equal(ips.Contains(ip), blocks.Count(b => b.Contains(ip)) == 1);
                }
            }
        }
    }

    /// <summary>The demo's capture replayed into a flow log against the demo's manifests.</summary>
    private string DemoLog(string name = "demo.log")
    {
        string log = Path.Combine(_dir, name);
        int code = ReplayCommand.Run(new ReplayCommand.ReplayOptions([DeployFiles.Path("deploy/demo/traffic.pcap")], [DeployFiles.Path("deploy/demo")], log, "demo-node-1", false, 65_536, 60),
            new StringWriter(), new StringWriter());
        Assert.Equal(0, code);
        return log;
    }

    private static string? AppOf(V1NetworkPolicyPeer peer) => peer.PodSelector?.MatchLabels is { } labels && labels.TryGetValue("app", out var app) ? app : null;

    private static (int Code, string Output, string Stderr) Recommend(RecommendCommand.RecommendOptions options)
    {
        using var stdout = new MemoryStream();
        var stderr = new StringWriter();
        int code = RecommendCommand.Run(options, stdout, stderr);
        return (code, Encoding.UTF8.GetString(stdout.ToArray()), stderr.ToString());
    }

    private static RecommendCommand.RecommendOptions Demo(string log) => new()
    {
        FlowLogs = [log],
        Manifests = [DeployFiles.Path("deploy/demo")],
        Namespaces = ["shop"],
    };

    [Fact]
    public void Recommend_Demo_OnePolicyPerShopWorkload_NamedPorts_KubeDns_AndTypedModelsLoadThem()
    {
        var (code, yaml, stderr) = Recommend(Demo(DemoLog()));
        Assert.True(code == 0, stderr);
        Assert.Contains("check: the recommended set applied to the same traffic newly denies no flow", stderr, StringComparison.Ordinal);
        Assert.Matches(@"tightness: \d+\.\d% of the unobserved pod pairs and ports of shop denied", stderr);
        Assert.Contains("left out: 6 flows the policies in force denied", stderr, StringComparison.Ordinal);

        // KubernetesClient's typed models, strict: every field is one the API knows.
        var policies = KubernetesYaml.LoadAllFromString(yaml, typeMap: null, strict: true).Cast<V1NetworkPolicy>().ToDictionary(p => p.Metadata.Name);
        Assert.Equal(["recommended-cart", "recommended-cart-redis", "recommended-frontend", "recommended-payments", "recommended-payments-db"], policies.Keys.Order());
        foreach (var policy in policies.Values)
        {
            Assert.Equal("shop", policy.Metadata.NamespaceProperty);
            Assert.Equal(["Ingress", "Egress"], policy.Spec.PolicyTypes);
            Assert.DoesNotContain("pod-template-hash", policy.Spec.PodSelector.MatchLabels.Keys);
            Assert.DoesNotContain("controller-revision-hash", policy.Spec.PodSelector.MatchLabels.Keys);
            // The DNS egress every pod needs, by number (DNS servers differ in what they name their ports).
            var dns = Assert.Single(policy.Spec.Egress, r => r.To.Any(p => p.NamespaceSelector?.MatchLabels["kubernetes.io/metadata.name"] == "kube-system"));
            Assert.Equal("kube-dns", Assert.Single(dns.To).PodSelector.MatchLabels["k8s-app"]);
            Assert.Equal(["53/TCP", "53/UDP"], dns.Ports.Select(p => $"{p.Port.Value}/{p.Protocol}"));
            Assert.True(long.Parse(policy.Metadata.Annotations["tripline.dev/flows"], System.Globalization.CultureInfo.InvariantCulture) > 0);
            Assert.Equal("demo-node-1", policy.Metadata.Annotations["tripline.dev/nodes"]);
            Assert.Matches(@"^2025-06-02T09:30:\S+Z/2025-06-02T09:30:\S+Z$", policy.Metadata.Annotations["tripline.dev/period"]);
        }

        // cart: reached by the frontends on its declared port "http" (through its Service's port 80), and by Prometheus
        // from another namespace; it reaches redis and payments by their backends' port names.
        var cart = policies["recommended-cart"];
        Assert.Equal("cart", cart.Spec.PodSelector.MatchLabels["app"]);
        var fromFrontend = Assert.Single(cart.Spec.Ingress, r => r.FromProperty.Any(p => AppOf(p) == "frontend"));
        Assert.Null(Assert.Single(fromFrontend.FromProperty).NamespaceSelector);
        Assert.Equal("http", Assert.Single(fromFrontend.Ports).Port.Value);
        var fromMonitoring = Assert.Single(cart.Spec.Ingress, r => r.FromProperty.Any(p => p.NamespaceSelector is not null));
        Assert.Equal("monitoring", Assert.Single(fromMonitoring.FromProperty).NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]);
        Assert.Equal("https", Assert.Single(cart.Spec.Egress, r => r.To.Any(p => AppOf(p) == "payments")).Ports.Single().Port.Value);

        // Outside addresses and the node by ipBlock, one address each; an address's port by number.
        var frontend = policies["recommended-frontend"];
        Assert.Equal(["192.168.49.2/32", "198.51.100.23/32", "203.0.113.77/32"], Assert.Single(frontend.Spec.Ingress).FromProperty.Select(p => p.IpBlock.Cidr));
        var stripe = Assert.Single(policies["recommended-payments"].Spec.Egress, r => r.To.Any(p => p.IpBlock is not null));
        Assert.Equal("54.187.216.72/32", Assert.Single(stripe.To).IpBlock.Cidr);
        Assert.Equal("443", Assert.Single(stripe.Ports).Port.Value);

        // The project's own loader reads them back, with no error.
        var loaded = ManifestLoader.LoadFromText(yaml);
        Assert.Empty(loaded.Errors);
        Assert.Equal(5, loaded.Snapshot.Policies.Count);
    }

    [Fact]
    public void Recommend_SameTraffic_SameBytes_WhateverTheOrderOfTheLog()
    {
        string log = DemoLog();
        string reversed = Path.Combine(_dir, "reversed.log");
        File.WriteAllLines(reversed, File.ReadAllLines(log).Reverse());
        var first = Recommend(Demo(log) with { DefaultDeny = true });
        var second = Recommend(Demo(reversed) with { DefaultDeny = true });
        Assert.Equal(0, first.Code);
        Assert.Equal(first.Output, second.Output);
        Assert.Equal(first.Output, Recommend(Demo(log) with { DefaultDeny = true }).Output);
        foreach (string kind in new[] { "calico", "clusternetworkpolicy" })
        {
            Assert.Equal(Recommend(Demo(log) with { Kind = kind }).Output, Recommend(Demo(reversed) with { Kind = kind }).Output);
        }
        var json = Recommend(Demo(log) with { Output = "json" });
        Assert.Equal(0, json.Code);
        Assert.Equal(json.Output, Recommend(Demo(reversed) with { Output = "json" }).Output);
        var list = ManifestLoader.LoadFromText(json.Output);
        Assert.Empty(list.Errors);
        Assert.Equal(5, list.Snapshot.Policies.Count);
    }

    /// <summary>
    /// The demo end to end through the command line: replay the capture into a flow log, recommend for shop into a
    /// directory, then whatif with the directory applied, as a gate: no flow newly denied.
    /// </summary>
    [Theory]
    [InlineData("networkpolicy", false)]
    [InlineData("networkpolicy", true)]
    [InlineData("calico", true)]
    [InlineData("clusternetworkpolicy", true)]
    public void Cli_DemoRecommendation_AppliedWithWhatIf_BreaksNothing(string kind, bool defaultDeny)
    {
        string log = Path.Combine(_dir, "demo.log");
        string manifests = DeployFiles.Path("deploy/demo");
        Assert.Equal(0, TriplineCommand.Invoke(["replay", "--pcap", DeployFiles.Path("deploy/demo/traffic.pcap"), "--manifests", manifests, "--flow-log", log, "--node", "demo-node-1"]));
        string outDir = Path.Combine(_dir, "recommended");
        string[] args = ["recommend", "--flow-log", log, "--manifests", manifests, "--namespace", "shop", "--kind", kind, "--out", outDir, .. defaultDeny ? ["--default-deny"] : Array.Empty<string>()];
        Assert.Equal(0, TriplineCommand.Invoke(args));
        var files = Directory.GetFiles(outDir).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(defaultDeny ? 6 : 5, files.Count);
        Assert.Contains("shop.recommended-frontend.yaml", files);

        using var stdout = new MemoryStream();
        var stderr = new StringWriter();
        int code = WhatIfCommand.Run(new WhatIfCommand.WhatIfOptions { FlowLogs = [log], Manifests = [manifests], Apply = [outDir], FailOnBreak = true, Output = "json" }, stdout, stderr);
        Assert.True(code == 0, stderr + Encoding.UTF8.GetString(stdout.ToArray()));
        Assert.Contains("(0 newly denied", stderr.ToString(), StringComparison.Ordinal);

        // A second run into the same directory rewrites the same files, byte for byte.
        var before = files.ToDictionary(f => f!, f => File.ReadAllBytes(Path.Combine(outDir, f!)));
        Assert.Equal(0, TriplineCommand.Invoke(args));
        foreach (var (file, bytes) in before) Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(outDir, file)));
    }

    [Fact]
    public void Recommend_CalicoAndClusterNetworkPolicy_LoadWithTheProjectsLoader()
    {
        string log = DemoLog();
        var calico = Recommend(Demo(log) with { Kind = "calico", DefaultDeny = true });
        Assert.Equal(0, calico.Code);
        var calicoLoaded = ManifestLoader.LoadFromText(calico.Output);
        Assert.Empty(calicoLoaded.Errors);
        Assert.Equal(6, calicoLoaded.Snapshot.CalicoObjects.Count);
        Assert.Contains("selector: \"app == 'cart'\"", calico.Output, StringComparison.Ordinal);
        Assert.Contains("namespaceSelector: \"projectcalico.org/name == 'monitoring'\"", calico.Output, StringComparison.Ordinal);

        var cnp = Recommend(Demo(log) with { Kind = "clusternetworkpolicy", DefaultDeny = true });
        Assert.Equal(0, cnp.Code);
        var cnpLoaded = ManifestLoader.LoadFromText(cnp.Output);
        Assert.Empty(cnpLoaded.Errors);
        Assert.Equal(6, cnpLoaded.Snapshot.AdminPolicies.Count);
        Assert.Contains("tier: Admin", cnp.Output, StringComparison.Ordinal);
        Assert.Contains("tier: Baseline", cnp.Output, StringComparison.Ordinal);
        // Ingress from outside cannot be named by a ClusterNetworkPolicy: said, not silently dropped.
        Assert.Contains("names no address as an ingress peer", cnp.Stderr, StringComparison.Ordinal);
    }

    private const string Cluster = """
        apiVersion: v1
        kind: Namespace
        metadata: { name: shop, labels: { kubernetes.io/metadata.name: shop } }
        ---
        apiVersion: v1
        kind: Pod
        metadata: { name: web-5f-a, namespace: shop, uid: w1, labels: { app: web, pod-template-hash: 5f }, ownerReferences: [ { apiVersion: apps/v1, kind: ReplicaSet, name: web-5f, uid: rs1, controller: true } ] }
        spec: { nodeName: n1, containers: [ { name: web, image: x, ports: [ { name: http, containerPort: 8080 } ] } ] }
        status: { phase: Running, podIPs: [ { ip: 10.1.0.20 } ] }
        ---
        apiVersion: v1
        kind: Pod
        metadata: { name: api-1, namespace: shop, uid: a1, labels: { app: api } }
        spec: { nodeName: n1, containers: [ { name: api, image: x, ports: [ { containerPort: 9000 } ] } ] }
        status: { phase: Running, podIPs: [ { ip: 10.1.0.30 } ] }
        ---
        apiVersion: v1
        kind: Pod
        metadata: { name: idle-1, namespace: shop, uid: i1, labels: { app: idle } }
        spec: { nodeName: n1, containers: [ { name: idle, image: x, ports: [ { containerPort: 7000 } ] } ] }
        status: { phase: Running, podIPs: [ { ip: 10.1.0.40 } ] }
        ---
        apiVersion: v1
        kind: Pod
        metadata: { name: idle-2, namespace: shop, uid: i2, labels: { app: idle } }
        spec: { nodeName: n1, containers: [ { name: idle, image: x, ports: [ { containerPort: 7000 } ] } ] }
        status: { phase: Running, podIPs: [ { ip: 10.1.0.41 } ] }
        """;

    private string Capture(params (string From, string To, ushort Port)[] connections)
    {
        string path = Path.Combine(_dir, "traffic.pcap");
        TestPcap.WriteConnections(path, connections);
        return path;
    }

    [Fact]
    public void Recommend_MergeCidrs_MergesOnlyWhatWasObserved_AndPortsWithoutANameStayNumbers()
    {
        string cluster = Path.Combine(_dir, "cluster.yaml");
        File.WriteAllText(cluster, Cluster);
        string pcap = Capture(("198.51.100.4", "10.1.0.20", 8080), ("198.51.100.5", "10.1.0.20", 8080), ("198.51.100.6", "10.1.0.20", 8080),
            ("198.51.100.7", "10.1.0.20", 8080), ("198.51.100.9", "10.1.0.20", 8080), ("10.1.0.20", "10.1.0.30", 9000));
        var options = new RecommendCommand.RecommendOptions { Pcaps = [pcap], Manifests = [cluster], Node = "n1" };
        var singles = Recommend(options);
        Assert.True(singles.Code == 0, singles.Stderr);
        Assert.Equal(5, singles.Output.Split("cidr: 198.51.100.").Length - 1);
        var merged = Recommend(options with { MergeCidrs = true });
        Assert.Equal(0, merged.Code);
        var web = KubernetesYaml.LoadAllFromString(merged.Output, typeMap: null, strict: true).Cast<V1NetworkPolicy>().Single(p => p.Metadata.Name == "recommended-web");
        Assert.Equal(["198.51.100.4/30", "198.51.100.9/32"], web.Spec.Ingress.Single(r => r.FromProperty.Any(p => p.IpBlock is not null)).FromProperty.Select(p => p.IpBlock.Cidr));
        Assert.Equal("http", web.Spec.Ingress.Single().Ports.Single().Port.Value);
        var api = KubernetesYaml.LoadAllFromString(merged.Output, typeMap: null, strict: true).Cast<V1NetworkPolicy>().Single(p => p.Metadata.Name == "recommended-api-1");
        Assert.Equal("9000", api.Spec.Ingress.Single().Ports.Single().Port.Value);
        Assert.Equal("web", api.Spec.Ingress.Single().FromProperty.Single().PodSelector.MatchLabels["app"]);

        // The idle pods were not observed: without a default deny, what they send each other is not denied, and
        // tightness says so (6 of 35: idle-1 and idle-2 both ways on the three declared ports).
        Assert.True(merged.Stderr.Contains("tightness: 82.9% of the unobserved pod pairs and ports of shop denied (29 of 35)", StringComparison.Ordinal), merged.Stderr);
        var withDeny = Recommend(options with { MergeCidrs = true, DefaultDeny = true });
        Assert.Contains("tightness: 100.0% of the unobserved pod pairs and ports of shop denied (35 of 35)", withDeny.Stderr, StringComparison.Ordinal);
        Assert.Contains("default deny alone: would newly deny 6 of 6 flows", withDeny.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Recommend_ServiceNotInTheClusterGiven_ListsItAndExits4()
    {
        string log = DemoLog();
        // The demo's cluster without the shop's Services: the flows to them cannot be allowed by their backends.
        string partial = Path.Combine(_dir, "partial");
        Directory.CreateDirectory(partial);
        foreach (string file in Directory.GetFiles(DeployFiles.Path("deploy/demo"), "*.yaml").Where(f => !f.EndsWith("21-shop-services.yaml", StringComparison.Ordinal)))
        {
            File.Copy(file, Path.Combine(partial, Path.GetFileName(file)));
        }
        var (code, _, stderr) = Recommend(Demo(log) with { Manifests = [partial] });
        Assert.Equal(ExitCodes.NotCovered, code);
        Assert.Contains("shop/Deployment/frontend -> service shop/cart 80/TCP: Service shop/cart is not in the cluster given", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Recommend_BadUsage_Exits2AndNamesEveryOption()
    {
        var (code, _, stderr) = Recommend(new RecommendCommand.RecommendOptions { Kind = "istio", Output = "xml", Since = "yesterday", Namespaces = ["Shop"] });
        Assert.Equal(ExitCodes.BadUsage, code);
        foreach (string option in new[] { "give the traffic", "--kind", "--output", "--since", "--namespace" }) Assert.Contains(option, stderr, StringComparison.Ordinal);
    }
}
