using System.IO.Compression;
using System.Text;
using System.Text.Json;
using CsCheck;
using Tripline.Cli;
using Tripline.Tests.Support;
using Tripline.WhatIf;

namespace Tripline.Tests.WhatIf;

/// <summary>
/// <c>tripline whatif</c> (issue 16): every change kind (add, replace, delete, namespace relabel) on a flow log the
/// agent wrote, and on the capture itself; records of pods deleted since; named ports; rotated and gzipped logs; the
/// exit codes; and that no change reports nothing.
/// </summary>
public sealed class WhatIfTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-whatif-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private const string Cluster = """
        apiVersion: v1
        kind: Namespace
        metadata: { name: shop, labels: { team: a } }
        ---
        apiVersion: v1
        kind: Namespace
        metadata: { name: tools, labels: { team: b } }
        ---
        apiVersion: v1
        kind: Pod
        metadata: { name: web-1, namespace: shop, uid: w1, labels: { app: web, pod-template-hash: 5f }, ownerReferences: [ { apiVersion: apps/v1, kind: ReplicaSet, name: web-5f, uid: rs1, controller: true } ] }
        spec: { nodeName: n1, containers: [ { name: web, image: x, ports: [ { name: http, containerPort: 8080 } ] } ] }
        status: { phase: Running, podIPs: [ { ip: 10.1.0.20 } ] }
        ---
        apiVersion: v1
        kind: Pod
        metadata: { name: db-0, namespace: shop, uid: d0, labels: { app: db }, ownerReferences: [ { apiVersion: apps/v1, kind: StatefulSet, name: db, uid: ss1, controller: true } ] }
        spec: { nodeName: n1, containers: [ { name: db, image: x, ports: [ { name: pg, containerPort: 5432 } ] } ] }
        status: { phase: Running, podIPs: [ { ip: 10.1.0.10 } ] }
        ---
        apiVersion: v1
        kind: Pod
        metadata: { name: api-1, namespace: shop, uid: a1, labels: { app: api } }
        spec: { nodeName: n1, containers: [ { name: api, image: x, ports: [ { name: http, containerPort: 8080 } ] } ] }
        status: { phase: Running, podIPs: [ { ip: 10.1.0.30 } ] }
        ---
        apiVersion: v1
        kind: Pod
        metadata: { name: scanner, namespace: tools, uid: s1, labels: { app: scanner } }
        spec: { nodeName: n1 }
        status: { phase: Running, podIPs: [ { ip: 10.2.0.5 } ] }
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: { name: db-from-web, namespace: shop }
        spec:
          podSelector: { matchLabels: { app: db } }
          policyTypes: [ Ingress ]
          ingress:
          - from: [ { podSelector: { matchLabels: { app: web } } } ]
            ports: [ { port: pg } ]
        """;

    /// <summary>The change most tests make: api isolated for ingress with no rule, so every flow to it is denied.</summary>
    private const string ApiClosed = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: api-closed, namespace: shop }\n"
        + "spec: { podSelector: { matchLabels: { app: api } }, policyTypes: [ Ingress ] }\n";

    private const string Web = "10.1.0.20", Db = "10.1.0.10", Api = "10.1.0.30", Scanner = "10.2.0.5";

    /// <summary>web->db (allowed), api->db and scanner->db (denied), web->api and scanner->api (allowed), each several times.</summary>
    private static readonly (string From, string To, ushort Port, int Times)[] Traffic =
        [(Web, Db, 5432, 3), (Api, Db, 5432, 2), (Scanner, Db, 5432, 1), (Web, Api, 8080, 4), (Scanner, Api, 8080, 2)];

    private string Write(string name, string text)
    {
        string path = Path.Combine(_dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    private string Capture((string From, string To, ushort Port, int Times)[] traffic, string name = "traffic.pcap")
    {
        string path = Path.Combine(_dir, name);
        using var pcap = new TestPcap(File.Create(path));
        long t = 1_764_100_000_000_000;
        ushort clientPort = 30000;
        foreach (var (from, to, port, times) in traffic)
        {
            for (int i = 0; i < times; i++, clientPort++)
            {
                uint c = TestPcap.Ip(from), s = TestPcap.Ip(to);
                pcap.Write(t += 1000, TestPcap.Tcp(c, clientPort, s, port, 0x02));
                pcap.Write(t += 1000, TestPcap.Tcp(s, port, c, clientPort, 0x12));
                pcap.Write(t += 1000, TestPcap.Tcp(c, clientPort, s, port, 0x11));
                pcap.Write(t += 1000, TestPcap.Tcp(s, port, c, clientPort, 0x11));
            }
        }
        return path;
    }

    /// <summary>The flow log the agent writes for the traffic under the cluster's manifests.</summary>
    private string FlowLog(string cluster, string capture, string name = "flows.log")
    {
        string log = Path.Combine(_dir, name);
        int code = ReplayCommand.Run(new ReplayCommand.ReplayOptions([capture], [cluster], log, "n1", false, 65_536, 60), new StringWriter(), new StringWriter());
        Assert.Equal(0, code);
        return log;
    }

    private static (int Code, List<JsonElement> Lines, string Table, string Stderr) WhatIf(WhatIfCommand.WhatIfOptions options)
    {
        using var stdout = new MemoryStream();
        var stderr = new StringWriter();
        int code = WhatIfCommand.Run(options, stdout, stderr);
        string text = Encoding.UTF8.GetString(stdout.ToArray());
        var lines = options.Output == "json" ? text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList() : [];
        return (code, lines, text, stderr.ToString());
    }

    private static HashSet<(string From, string To, string Change)> Changes(List<JsonElement> lines) =>
        [.. lines.Select(l => (l.GetProperty("src").GetProperty("ip").GetString()!, l.GetProperty("dst").GetProperty("ip").GetString()!, l.GetProperty("change").GetString()!))];

    [Fact]
    public void Add_DefaultDenyForApi_ListsExactlyTheFlowsToApi_NewlyDenied_AndFailOnBreakExits3()
    {
        string cluster = Write("cluster.yaml", Cluster);
        string log = FlowLog(cluster, Capture(Traffic));
        string change = Write("change/api-deny.yaml", ApiClosed);
        var (code, lines, _, stderr) = WhatIf(new WhatIfCommand.WhatIfOptions { FlowLogs = [log], Manifests = [cluster], Apply = [change], Output = "json", FailOnBreak = true });
        Assert.Equal(ExitCodes.DeniedFlows, code);
        Assert.Equal(6, lines.Count);
        Assert.Equal([(Web, Api, "newly_denied"), (Scanner, Api, "newly_denied")], Changes(lines));
        var line = lines[0];
        Assert.Equal("allow", line.GetProperty("before").GetProperty("verdict").GetString());
        Assert.Equal("deny", line.GetProperty("after").GetProperty("verdict").GetString());
        Assert.Equal("shop/api-closed", line.GetProperty("after").GetProperty("ingress").GetProperty("policies")[0].GetString());
        Assert.Equal("allow", line.GetProperty("recorded_verdict").GetString());
        Assert.Equal(16, line.GetProperty("flow_id").GetString()!.Length);
        Assert.Contains("12 flows judged, 6 change verdict (6 newly denied, 0 newly allowed), 0 not judgeable", stderr, StringComparison.Ordinal);

        // The table groups by workload pair and port, newly denied first, with the policy that decides.
        var (tableCode, _, table, _) = WhatIf(new WhatIfCommand.WhatIfOptions { FlowLogs = [log], Manifests = [cluster], Apply = [change] });
        Assert.Equal(0, tableCode);
        string[] rows = table.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, rows.Length);
        Assert.Matches(@"^DENIED\s+4\s+shop/Deployment/web\s+shop/api-1\s+8080/TCP .* ingress:!shop/api-closed$", rows[1]);
        Assert.Matches(@"^DENIED\s+2\s+tools/scanner\s+shop/api-1\s+8080/TCP", rows[2]);
    }

    [Fact]
    public void Replace_Delete_AndNamespaceRelabel_EachFlipsWhatItShould()
    {
        string cluster = Write("cluster.yaml", Cluster);
        string log = FlowLog(cluster, Capture(Traffic));

        // Replace: db admits api instead of web.
        string replace = Write("replace.yaml", """
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: { name: db-from-web, namespace: shop }
            spec:
              podSelector: { matchLabels: { app: db } }
              policyTypes: [ Ingress ]
              ingress: [ { from: [ { podSelector: { matchLabels: { app: api } } } ] } ]
            """);
        var replaced = WhatIf(new WhatIfCommand.WhatIfOptions { FlowLogs = [log], Manifests = [cluster], Apply = [replace], Output = "json" });
        Assert.Equal([(Web, Db, "newly_denied"), (Api, Db, "newly_allowed")], Changes(replaced.Lines));
        Assert.Equal(5, replaced.Lines.Count);

        // Delete: db is no longer isolated, so everything denied before is allowed.
        var deleted = WhatIf(new WhatIfCommand.WhatIfOptions { FlowLogs = [log], Manifests = [cluster], Delete = ["NetworkPolicy/shop/db-from-web"], Output = "json", FailOnBreak = true });
        Assert.Equal(0, deleted.Code);
        Assert.Equal([(Api, Db, "newly_allowed"), (Scanner, Db, "newly_allowed")], Changes(deleted.Lines));

        // Namespace relabel: with a policy admitting team=b namespaces to db, relabelling tools to team=c takes it away.
        string byTeam = Write("by-team.yaml", Cluster + """

            ---
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: { name: db-from-team-b, namespace: shop }
            spec:
              podSelector: { matchLabels: { app: db } }
              policyTypes: [ Ingress ]
              ingress: [ { from: [ { namespaceSelector: { matchLabels: { team: b } } } ] } ]
            """);
        string byTeamLog = FlowLog(byTeam, Capture(Traffic), "by-team.log");
        string relabel = Write("relabel.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: { name: tools, labels: { team: c } }\n");
        var relabelled = WhatIf(new WhatIfCommand.WhatIfOptions { FlowLogs = [byTeamLog], Manifests = [byTeam], Apply = [relabel], Output = "json" });
        Assert.Equal([(Scanner, Db, "newly_denied")], Changes(relabelled.Lines));

        // A deletion of a policy that does not exist is a typo, not a change.
        var typo = WhatIf(new WhatIfCommand.WhatIfOptions { FlowLogs = [log], Manifests = [cluster], Delete = ["NetworkPolicy/shop/db-form-web"] });
        Assert.Equal(ExitCodes.BadUsage, typo.Code);
        Assert.Contains("--delete NetworkPolicy/shop/db-form-web: no such policy", typo.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void AdminTierPolicies_ApplyAndDelete_AreJudgedLikeAnyOther_AndNamedByKind()
    {
        const string denyTools = """
            apiVersion: policy.networking.k8s.io/v1alpha2
            kind: ClusterNetworkPolicy
            metadata: { name: no-tools-to-shop }
            spec:
              tier: Admin
              priority: 10
              subject: { namespaces: { matchLabels: { kubernetes.io/metadata.name: shop } } }
              ingress:
              - { name: deny-tools, action: Deny, from: [ { namespaces: { matchLabels: { team: b } } } ] }
            """;
        string cluster = Write("cluster.yaml", Cluster);
        string log = FlowLog(cluster, Capture(Traffic));
        string change = Write("change/cnp.yaml", denyTools);
        var applied = WhatIf(new WhatIfCommand.WhatIfOptions { FlowLogs = [log], Manifests = [cluster], Apply = [change], Output = "json", FailOnBreak = true });
        Assert.Equal(ExitCodes.DeniedFlows, applied.Code);
        Assert.Equal([(Scanner, Api, "newly_denied")], Changes(applied.Lines));
        Assert.Equal("ClusterNetworkPolicy/no-tools-to-shop", applied.Lines[0].GetProperty("after").GetProperty("ingress").GetProperty("policies")[0].GetString());

        // The cluster holding it: the flow log names it, and deleting it (cluster-scoped: KIND/NAME) allows the flows again.
        string withCnp = Write("with-cnp.yaml", Cluster + "\n---\n" + denyTools);
        string cnpLog = FlowLog(withCnp, Capture(Traffic), "cnp.log");
        Assert.Contains("\"ClusterNetworkPolicy/no-tools-to-shop\"", File.ReadAllText(cnpLog), StringComparison.Ordinal);
        var deleted = WhatIf(new WhatIfCommand.WhatIfOptions { FlowLogs = [cnpLog], Manifests = [withCnp], Delete = ["ClusterNetworkPolicy/no-tools-to-shop"], Output = "json" });
        Assert.Equal(0, deleted.Code);
        Assert.Equal([(Scanner, Api, "newly_allowed")], Changes(deleted.Lines));
        var typo = WhatIf(new WhatIfCommand.WhatIfOptions { FlowLogs = [cnpLog], Manifests = [withCnp], Delete = ["cnp/no-tools"] });
        Assert.Equal(ExitCodes.BadUsage, typo.Code);
        Assert.Contains("--delete ClusterNetworkPolicy/no-tools: no such policy", typo.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void RecordsOfDeletedPods_AreJudgedAsRecorded_AndNamedPortsNeedTheirWorkload()
    {
        string cluster = Write("cluster.yaml", Cluster);
        string log = FlowLog(cluster, Capture(Traffic));
        // The cluster now: web-1 and api-1 are gone (web's Deployment has a new pod); db-0 is gone with no pod of db left.
        string now = Write("now.yaml", string.Join("\n---\n", Cluster.Split("---\n").Where(d => !d.Contains("name: web-1", StringComparison.Ordinal) && !d.Contains("name: api-1", StringComparison.Ordinal) && !d.Contains("name: db-0", StringComparison.Ordinal)))
            + "\n---\n" + """
            apiVersion: v1
            kind: Pod
            metadata: { name: web-2, namespace: shop, uid: w2, labels: { app: web, pod-template-hash: 5f }, ownerReferences: [ { apiVersion: apps/v1, kind: ReplicaSet, name: web-5f, uid: rs1, controller: true } ] }
            spec: { nodeName: n1, containers: [ { name: web, image: x, ports: [ { name: http, containerPort: 8080 } ] } ] }
            status: { phase: Running, podIPs: [ { ip: 10.1.0.21 } ] }
            """);
        // The change names web's port by name: web-1's flows are judged with its workload's ports; db-0's cannot be.
        string change = Write("api-http.yaml", """
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: { name: api-named, namespace: shop }
            spec:
              podSelector: { matchLabels: { app: api } }
              policyTypes: [ Ingress ]
              ingress: [ { from: [ { podSelector: { matchLabels: { app: web } } } ], ports: [ { port: http } ] } ]
            """);
        var (code, lines, _, stderr) = WhatIf(new WhatIfCommand.WhatIfOptions { FlowLogs = [log], Manifests = [now], Apply = [change], Output = "json" });
        Assert.Equal(0, code);
        // api-1 is gone with no workload: every flow to it needs its named port, so none is judged; nor db-0's.
        Assert.Contains("not judgeable", stderr, StringComparison.Ordinal);
        Assert.Contains("pod shop/api-1 and its workload are gone", stderr, StringComparison.Ordinal);
        Assert.Empty(lines);

        // With api's pod still there, only scanner's flows to api change; web-1 (deleted) is still judged as web.
        string withApi = Write("with-api.yaml", File.ReadAllText(now) + "\n---\n" + Cluster.Split("---\n").Single(d => d.Contains("name: api-1", StringComparison.Ordinal)));
        var judged = WhatIf(new WhatIfCommand.WhatIfOptions { FlowLogs = [log], Manifests = [withApi], Apply = [change], Output = "json" });
        Assert.Equal([(Scanner, Api, "newly_denied")], Changes(judged.Lines));
    }

    [Fact]
    public void RotatedAndGzippedLogs_FromTwoNodes_AndTheCapture_GiveTheSameAnswer()
    {
        string cluster = Write("cluster.yaml", Cluster);
        string capture = Capture(Traffic);
        string log = FlowLog(cluster, capture);
        string change = Write("api-deny.yaml", ApiClosed);
        var plain = WhatIf(new WhatIfCommand.WhatIfOptions { FlowLogs = [log], Manifests = [cluster], Apply = [change], Output = "json" });

        // Node n1's log rotated: the first half gzipped, the rest live; node n2's directory holds the same records.
        string[] records = File.ReadAllLines(log);
        foreach (string node in new[] { "n1", "n2" })
        {
            string dir = Directory.CreateDirectory(Path.Combine(_dir, "logs", node)).FullName;
            using (var gz = new GZipStream(File.Create(Path.Combine(dir, "tripline-flows-20261126T020000Z.log.gz")), CompressionLevel.Fastest))
            using (var writer = new StreamWriter(gz))
            {
                foreach (string line in records[..(records.Length / 2)]) writer.WriteLine(line);
            }
            File.WriteAllLines(Path.Combine(dir, "tripline-flows.log"), records[(records.Length / 2)..]);
        }
        var rotated = WhatIf(new WhatIfCommand.WhatIfOptions { FlowLogs = [Path.Combine(_dir, "logs", "n1"), Path.Combine(_dir, "logs", "n2")], Manifests = [cluster], Apply = [change], Output = "json" });
        Assert.Equal(plain.Lines.Count * 2, rotated.Lines.Count);
        Assert.Equal(Changes(plain.Lines), Changes(rotated.Lines));

        var fromCapture = WhatIf(new WhatIfCommand.WhatIfOptions { Pcaps = [capture], Manifests = [cluster], Apply = [change], Output = "json", Node = "n1" });
        Assert.Equal(plain.Lines.Select(l => l.GetProperty("flow_id").GetString()).Order(), fromCapture.Lines.Select(l => l.GetProperty("flow_id").GetString()).Order());
    }

    [Fact]
    public void ADocumentThatDoesNotParse_NamesFileLineAndObject_AndNothingIsJudged()
    {
        string cluster = Write("cluster.yaml", Cluster);
        string log = FlowLog(cluster, Capture(Traffic));
        string broken = Write("broken.yaml", """
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: { name: oops, namespace: shop }
            spec:
              podSelector: { matchLabels: { app: api } }
              policyTypes: [ Ingress ]
              ingress: [ { from: [ { podSelector: { matchLabels: [ app, web ] } } ] } ]
            """);
        var (code, _, table, stderr) = WhatIf(new WhatIfCommand.WhatIfOptions { FlowLogs = [log], Manifests = [cluster], Apply = [broken], FailOnBreak = true });
        Assert.Equal(ExitCodes.BadUsage, code);
        Assert.Contains("broken.yaml:", stderr, StringComparison.Ordinal);
        Assert.Contains("oops", stderr, StringComparison.Ordinal);
        Assert.Equal("", table);

        // A kind whatif does not judge would pass any gate: it is refused, not ignored.
        string unknown = Write("unknown.yaml", "apiVersion: example.com/v1\nkind: FirewallRule\nmetadata: { name: x, namespace: shop }\n");
        var refused = WhatIf(new WhatIfCommand.WhatIfOptions { FlowLogs = [log], Manifests = [cluster], Apply = [unknown], FailOnBreak = true });
        Assert.Equal(ExitCodes.BadUsage, refused.Code);
        Assert.Contains("FirewallRule, which the engine does not judge", refused.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ClusterFromTheApiServer_IsTheClusterAsItIs()
    {
        string cluster = Write("cluster.yaml", Cluster);
        string log = FlowLog(cluster, Capture(Traffic));
        await using var server = await Tripline.Tests.Correlation.Kubernetes.TestApiServer.StartAsync();
        foreach (var document in k8s.KubernetesYaml.LoadAllFromString(Cluster))
        {
            switch (document)
            {
                case k8s.Models.V1Namespace o: server.Store.Apply(o); break;
                case k8s.Models.V1Pod o: server.Store.Apply(o); break;
                case k8s.Models.V1NetworkPolicy o: server.Store.Apply(o); break;
            }
        }
        string change = Write("api-deny.yaml", ApiClosed);
        var fromApi = WhatIf(new WhatIfCommand.WhatIfOptions { FlowLogs = [log], Kubeconfig = server.WriteKubeconfig(), Apply = [change], Output = "json" });
        var fromFiles = WhatIf(new WhatIfCommand.WhatIfOptions { FlowLogs = [log], Manifests = [cluster], Apply = [change], Output = "json" });
        Assert.True(fromApi.Code == 0, fromApi.Stderr);
        Assert.Equal(6, fromApi.Lines.Count);
        Assert.Equal(Changes(fromFiles.Lines), Changes(fromApi.Lines));
        // The policy the API holds is the one deleted.
        var deleted = WhatIf(new WhatIfCommand.WhatIfOptions { FlowLogs = [log], Kubeconfig = server.WriteKubeconfig(), Delete = ["NetworkPolicy/shop/db-from-web"], Output = "json" });
        Assert.Equal([(Api, Db, "newly_allowed"), (Scanner, Db, "newly_allowed")], Changes(deleted.Lines));
    }

    [Fact]
    public void NoChange_OnAnyLogTheAgentWrote_ReportsNothing()
    {
        string cluster = Write("cluster.yaml", Cluster);
        // Re-applying every policy as it is changes nothing, whatever the traffic.
        string same = Write("same.yaml", string.Join("\n---\n", Cluster.Split("---\n").Where(d => d.Contains("kind: NetworkPolicy", StringComparison.Ordinal))));
        string[] ips = [Web, Db, Api, Scanner, "192.0.2.7"];
        ushort[] ports = [5432, 8080, 53, 443];
        var flows = Gen.Select(Gen.Int[0, ips.Length - 1], Gen.Int[0, ips.Length - 1], Gen.Int[0, ports.Length - 1], Gen.Int[1, 3])
            .Where((a, b, _, _) => a != b)
            .Select((a, b, p, n) => (ips[a], ips[b], ports[p], n)).Array[1, 12];
        int run = 0;
        flows.Sample(traffic =>
        {
            string name = $"random-{run++}";
            string log = FlowLog(cluster, Capture(traffic, name + ".pcap"), name + ".log");
            var (code, lines, _, stderr) = WhatIf(new WhatIfCommand.WhatIfOptions { FlowLogs = [log], Manifests = [cluster], Apply = [same], Output = "json", FailOnBreak = true });
            Assert.True(code == 0 && lines.Count == 0, stderr);
            Assert.Contains(", 0 change verdict", stderr, StringComparison.Ordinal);
            // And with no change given at all.
            var none = WhatIf(new WhatIfCommand.WhatIfOptions { FlowLogs = [log], Manifests = [cluster], Output = "json", FailOnBreak = true });
            Assert.True(none.Code == 0 && none.Lines.Count == 0, none.Stderr);
        }, iter: 25);
    }

    [Fact]
    public void Explain_UnderTheChange_SaysWhatWouldDecide()
    {
        string cluster = Write("cluster.yaml", Cluster);
        string change = Write("api-deny.yaml", ApiClosed);
        var stdout = new StringWriter();
        Assert.Equal(0, ExplainCommand.Run(new ExplainCommand.ExplainOptions([cluster], "shop/web-1", "shop/api-1", 8080, "TCP", "text"), stdout, new StringWriter()));
        Assert.StartsWith("ALLOWED", stdout.ToString(), StringComparison.Ordinal);
        stdout = new StringWriter();
        Assert.Equal(0, ExplainCommand.Run(new ExplainCommand.ExplainOptions([cluster], "shop/web-1", "shop/api-1", 8080, "TCP", "text") { Apply = [change] }, stdout, new StringWriter()));
        Assert.StartsWith("DENIED", stdout.ToString(), StringComparison.Ordinal);
        Assert.Contains("shop/api-closed", stdout.ToString(), StringComparison.Ordinal);
        stdout = new StringWriter();
        Assert.Equal(0, ExplainCommand.Run(new ExplainCommand.ExplainOptions([cluster], "shop/api-1", "shop/db-0", 5432, "TCP", "text") { Delete = ["NetworkPolicy/shop/db-from-web"] }, stdout, new StringWriter()));
        Assert.StartsWith("ALLOWED", stdout.ToString(), StringComparison.Ordinal);
    }
}
