using System.Text.Json;
using Tripline.Cli;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Manifests;
using Tripline.Correlation.Mesh;
using Tripline.Tests.Capture;
using Tripline.Tests.Export;
using Tripline.Tests.Http;
using Tripline.Tests.Support;

namespace Tripline.Tests.Mesh;

/// <summary>
/// The mesh audit's cluster facts (who is meshed, what PeerAuthentication declares, design.md section 10) and their
/// join with the packet fact in records, metrics and <c>tripline flows --tls</c>.
/// </summary>
public sealed class MeshAuditTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-mesh-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static ClusterSnapshot Load(string yaml)
    {
        var loaded = ManifestLoader.LoadFromText(yaml);
        Assert.Empty(loaded.Errors);
        return loaded.Snapshot;
    }

    private static string Pod(string ns, string name, string ip, string labels = "{ app: x }", string containers = "[ { name: app } ]", string annotations = "{}", string extra = "") => $$"""
        apiVersion: v1
        kind: Pod
        metadata: { name: {{name}}, namespace: {{ns}}, labels: {{labels}}, annotations: {{annotations}} }
        spec: { nodeName: node-a, containers: {{containers}} {{extra}} }
        status: { phase: Running, podIPs: [ { ip: {{ip}} } ] }
        ---

        """;

    private static string Namespace(string name, string labels = "{}") => $$"""
        apiVersion: v1
        kind: Namespace
        metadata: { name: {{name}}, labels: {{labels}} }
        ---

        """;

    private static string PeerAuthentication(string ns, string name, string spec, string version = "v1", string created = "2026-01-01T00:00:00Z") => $$"""
        apiVersion: security.istio.io/{{version}}
        kind: PeerAuthentication
        metadata: { name: {{name}}, namespace: {{ns}}, creationTimestamp: "{{created}}" }
        spec: {{spec}}
        ---

        """;

    private static PodInfo PodOf(ClusterSnapshot snapshot, string key) => snapshot.Pods.Single(p => p.Key == key);

    [Fact]
    public void Membership_SidecarAmbientAndOptOut_AsIstioDecidesThem()
    {
        var snapshot = Load(
            Namespace("amb", "{ istio.io/dataplane-mode: ambient }") + Namespace("plain") +
            Pod("plain", "sidecar", "10.0.0.1", containers: "[ { name: app }, { name: istio-proxy } ]") +
            Pod("plain", "native", "10.0.0.2", containers: "[ { name: app } ], initContainers: [ { name: istio-proxy, restartPolicy: Always } ]") +
            Pod("plain", "init-only", "10.0.0.3", containers: "[ { name: app } ], initContainers: [ { name: istio-proxy } ]") +
            Pod("plain", "annotated", "10.0.0.4", annotations: "{ sidecar.istio.io/status: '{\"containers\":[\"istio-proxy\"]}' }") +
            Pod("plain", "none", "10.0.0.5") +
            Pod("amb", "enrolled", "10.0.0.6") +
            Pod("amb", "opted-out", "10.0.0.7", labels: "{ istio.io/dataplane-mode: none }") +
            Pod("plain", "own-label", "10.0.0.8", labels: "{ istio.io/dataplane-mode: ambient }") +
            Pod("amb", "host", "10.0.0.9", extra: ", hostNetwork: true"));
        var mesh = MeshView.Build(snapshot);

        Assert.Equal(MeshDataplane.Sidecar, mesh.DataplaneOf(PodOf(snapshot, "plain/sidecar")));
        Assert.Equal(MeshDataplane.Sidecar, mesh.DataplaneOf(PodOf(snapshot, "plain/native")));
        Assert.Equal(MeshDataplane.None, mesh.DataplaneOf(PodOf(snapshot, "plain/init-only")));
        Assert.Equal(MeshDataplane.Sidecar, mesh.DataplaneOf(PodOf(snapshot, "plain/annotated")));
        Assert.Equal(MeshDataplane.None, mesh.DataplaneOf(PodOf(snapshot, "plain/none")));
        Assert.Equal(MeshDataplane.Ambient, mesh.DataplaneOf(PodOf(snapshot, "amb/enrolled")));
        Assert.Equal(MeshDataplane.None, mesh.DataplaneOf(PodOf(snapshot, "amb/opted-out")));
        Assert.Equal(MeshDataplane.Ambient, mesh.DataplaneOf(PodOf(snapshot, "plain/own-label")));
        Assert.Equal(MeshDataplane.None, mesh.DataplaneOf(PodOf(snapshot, "amb/host")));
    }

    [Fact]
    public void Modes_WorkloadOverNamespaceOverMeshWide_PortLevelFirst_UnsetInherits()
    {
        var snapshot = Load(
            Namespace("istio-system") + Namespace("a") + Namespace("b") + Namespace("c") +
            PeerAuthentication("istio-system", "default", "{ mtls: { mode: STRICT } }") +
            PeerAuthentication("a", "ns", "{ mtls: { mode: PERMISSIVE } }") +
            PeerAuthentication("a", "db", "{ selector: { matchLabels: { app: db } }, mtls: { mode: STRICT }, portLevelMtls: { 9187: { mode: DISABLE }, 5432: { mode: UNSET } } }") +
            PeerAuthentication("a", "cache", "{ selector: { matchLabels: { app: cache } }, mtls: { mode: UNSET }, portLevelMtls: { 9121: { mode: PERMISSIVE } } }", version: "v1beta1") +
            PeerAuthentication("c", "ns", "{ mtls: { mode: UNSET } }") +
            Pod("a", "web", "10.0.1.1", labels: "{ app: web }") +
            Pod("a", "db", "10.0.1.2", labels: "{ app: db }") +
            Pod("a", "cache", "10.0.1.3", labels: "{ app: cache }") +
            Pod("b", "web", "10.0.1.4", labels: "{ app: db }") +
            Pod("c", "web", "10.0.1.5", labels: "{ app: web }"));
        var mesh = MeshView.Build(snapshot);

        Assert.Equal(PeerAuthenticationMode.Permissive, mesh.ModeOf(PodOf(snapshot, "a/web"), 8080));           // the namespace's
        Assert.Equal(PeerAuthenticationMode.Strict, mesh.ModeOf(PodOf(snapshot, "a/db"), 5432));                // port UNSET: the workload's
        Assert.Equal(PeerAuthenticationMode.Disable, mesh.ModeOf(PodOf(snapshot, "a/db"), 9187));               // the port's
        Assert.Equal(PeerAuthenticationMode.Permissive, mesh.ModeOf(PodOf(snapshot, "a/cache"), 6379));         // workload UNSET: the namespace's
        Assert.Equal(PeerAuthenticationMode.Permissive, mesh.ModeOf(PodOf(snapshot, "a/cache"), 9121));
        Assert.Equal(PeerAuthenticationMode.Strict, mesh.ModeOf(PodOf(snapshot, "b/web"), 80));                 // only the mesh-wide one; a's selector is a's
        Assert.Equal(PeerAuthenticationMode.Strict, mesh.ModeOf(PodOf(snapshot, "c/web"), 80));                 // namespace UNSET: the mesh's
    }

    [Fact]
    public void Modes_NothingDeclared_IsNone_AndTheOldestOfAScopeWins()
    {
        var snapshot = Load(
            Namespace("a") + Namespace("b") +
            PeerAuthentication("a", "newer", "{ mtls: { mode: DISABLE } }", created: "2026-03-01T00:00:00Z") +
            PeerAuthentication("a", "older", "{ mtls: { mode: STRICT } }", created: "2026-02-01T00:00:00Z") +
            Pod("a", "web", "10.0.1.1") + Pod("b", "web", "10.0.1.2", containers: "[ { name: app }, { name: istio-proxy } ]"));
        var mesh = MeshView.Build(snapshot);
        Assert.Equal(PeerAuthenticationMode.Strict, mesh.ModeOf(PodOf(snapshot, "a/web"), 80));
        Assert.Equal(PeerAuthenticationMode.None, mesh.ModeOf(PodOf(snapshot, "b/web"), 80));
    }

    [Fact]
    public void Manifests_InvalidPeerAuthentication_NamesFileObjectAndField()
    {
        var loaded = ManifestLoader.LoadFromText(
            PeerAuthentication("a", "bad-mode", "{ mtls: { mode: STRICTEST } }") +
            PeerAuthentication("a", "ports-without-selector", "{ portLevelMtls: { 8080: { mode: STRICT } } }") +
            PeerAuthentication("a", "bad-port", "{ selector: { matchLabels: { app: x } }, portLevelMtls: { http: { mode: STRICT } } }"));
        Assert.Empty(loaded.Snapshot.PeerAuthentications);
        Assert.Contains(loaded.Errors, e => e.Object == "PeerAuthentication a/bad-mode" && e.Message.Contains("spec.mtls.mode: 'STRICTEST'", StringComparison.Ordinal));
        Assert.Contains(loaded.Errors, e => e.Object == "PeerAuthentication a/ports-without-selector" && e.Message.Contains("spec.portLevelMtls", StringComparison.Ordinal));
        Assert.Contains(loaded.Errors, e => e.Object == "PeerAuthentication a/bad-port" && e.Message.Contains("'http' is not a port number", StringComparison.Ordinal));
    }

    /// <summary>
    /// The shop of this test: <c>bank</c> meshed with sidecars and STRICT, but its metrics port 9090 PERMISSIVE; a
    /// client outside the mesh in <c>legacy</c>.
    /// </summary>
    private string WriteCluster()
    {
        string manifests = Path.Combine(_dir, "cluster.yaml");
        File.WriteAllText(manifests,
            Namespace("bank", "{ istio-injection: enabled }") + Namespace("legacy") + Namespace("istio-system") +
            PeerAuthentication("istio-system", "default", "{ mtls: { mode: PERMISSIVE } }") +
            PeerAuthentication("bank", "strict", "{ mtls: { mode: STRICT } }") +
            PeerAuthentication("bank", "ledger-metrics", "{ selector: { matchLabels: { app: ledger } }, portLevelMtls: { 9090: { mode: PERMISSIVE } } }") +
            Pod("bank", "teller", "10.1.0.10", labels: "{ app: teller }", containers: "[ { name: app }, { name: istio-proxy } ]") +
            Pod("bank", "ledger", "10.1.0.20", labels: "{ app: ledger }", containers: "[ { name: app, ports: [ { containerPort: 8443 } ] }, { name: istio-proxy } ]") +
            Pod("legacy", "batch", "10.1.0.30", labels: "{ app: batch }") +
            Pod("legacy", "store", "10.1.0.40", labels: "{ app: store }"));
        return manifests;
    }

    /// <summary>The connections: each a handshake, the first payloads (null: none), and the close.</summary>
    private string WriteTraffic(params (string Client, string Server, ushort Port, byte[]? Request, byte[]? Response)[] connections)
    {
        string pcap = Path.Combine(_dir, "traffic.pcap");
        using var writer = new TestPcap(File.Create(pcap));
        long t = 1_764_100_000_000_000;
        ushort clientPort = 41000;
        foreach (var (client, server, port, request, response) in connections)
        {
            uint c = TestPcap.Ip(client), s = TestPcap.Ip(server);
            ushort cp = clientPort++;
            writer.Write(t++, Segment(c, cp, s, port, 0x02, []));
            writer.Write(t++, Segment(s, port, c, cp, 0x12, []));
            writer.Write(t++, Segment(c, cp, s, port, 0x10, []));
            if (request is not null) writer.Write(t++, Segment(c, cp, s, port, 0x18, request));
            if (response is not null) writer.Write(t++, Segment(s, port, c, cp, 0x18, response));
            writer.Write(t++, Segment(c, cp, s, port, 0x11, []));
            writer.Write(t++, Segment(s, port, c, cp, 0x11, []));
            writer.Write(t++, Segment(c, cp, s, port, 0x10, []));
        }
        return pcap;
    }

    /// <summary>An Ethernet + IPv4 + TCP frame carrying <paramref name="payload"/>.</summary>
    internal static byte[] Segment(uint source, ushort sourcePort, uint destination, ushort destinationPort, byte flags, byte[] payload)
    {
        byte[] headers = TestPcap.Tcp(source, sourcePort, destination, destinationPort, flags, payload.Length);
        return [.. headers, .. payload];
    }

    private List<JsonElement> Replay(string manifests, string pcap)
    {
        string log = Path.Combine(_dir, "flows.jsonl");
        int code = ReplayCommand.Run(new ReplayCommand.ReplayOptions([pcap], [manifests], log, "node-a", false, 65_536, 60), TextWriter.Null, TextWriter.Null);
        Assert.Equal(0, code);
        return [.. File.ReadAllLines(log).Select(l => JsonDocument.Parse(l).RootElement.Clone())];
    }

    private static JsonElement End(List<JsonElement> records, string src, string dst, int port) =>
        records.Single(r => r.GetProperty("event").GetString() == "end" && r.GetProperty("src").GetProperty("ip").GetString() == src
            && r.GetProperty("dst").GetProperty("ip").GetString() == dst && r.GetProperty("dst").GetProperty("port").GetInt32() == port);

    [Fact]
    public void Replay_RecordsCarryTlsAndTheMeshFacts()
    {
        string manifests = WriteCluster();
        string pcap = WriteTraffic(
            ("10.1.0.10", "10.1.0.20", 8443, PayloadClassTests.ClientHello, PayloadClassTests.ServerHello),  // mutual TLS between sidecars
            ("10.1.0.30", "10.1.0.20", 8443, PayloadClassTests.Http, PayloadClassTests.Http),                // plaintext into STRICT
            ("10.1.0.10", "10.1.0.20", 9090, PayloadClassTests.Http, PayloadClassTests.Http),                // plaintext between meshed pods, PERMISSIVE port
            ("10.1.0.30", "10.1.0.40", 80, PayloadClassTests.Http, PayloadClassTests.Http),                  // outside the mesh
            ("10.1.0.10", "10.1.0.20", 8080, null, null));                                                   // no payload: not known
        var records = Replay(manifests, pcap);

        var tls = End(records, "10.1.0.10", "10.1.0.20", 8443);
        Assert.True(tls.GetProperty("tls").GetBoolean());
        Assert.Equal("1.2", tls.GetProperty("tls_version").GetString());
        Assert.Equal("""{"src":true,"dst":true,"peer_authentication":"STRICT"}""", tls.GetProperty("mesh").GetRawText());

        var intoStrict = End(records, "10.1.0.30", "10.1.0.20", 8443);
        Assert.False(intoStrict.GetProperty("tls").GetBoolean());
        Assert.False(intoStrict.TryGetProperty("tls_version", out _));
        Assert.Equal("""{"src":false,"dst":true,"peer_authentication":"STRICT"}""", intoStrict.GetProperty("mesh").GetRawText());

        var metricsPort = End(records, "10.1.0.10", "10.1.0.20", 9090);
        Assert.False(metricsPort.GetProperty("tls").GetBoolean());
        Assert.Equal("PERMISSIVE", metricsPort.GetProperty("mesh").GetProperty("peer_authentication").GetString());

        var outside = End(records, "10.1.0.30", "10.1.0.40", 80);
        Assert.False(outside.GetProperty("tls").GetBoolean());
        // The mesh-wide PERMISSIVE policy applies to every pod, meshed or not: what it should be is still said.
        Assert.Equal("""{"src":false,"dst":false,"peer_authentication":"PERMISSIVE"}""", outside.GetProperty("mesh").GetRawText());

        var silent = End(records, "10.1.0.10", "10.1.0.20", 8080);
        Assert.False(silent.TryGetProperty("tls", out _));
        Assert.True(silent.GetProperty("mesh").GetProperty("dst").GetBoolean());

        // Every record of the plaintext flow that knows it says so; the start (a SYN) does not know yet.
        var flowId = intoStrict.GetProperty("flow_id").GetString();
        var start = records.Single(r => r.GetProperty("flow_id").GetString() == flowId && r.GetProperty("event").GetString() == "start");
        Assert.False(start.TryGetProperty("tls", out _));
    }

    [Fact]
    public void Replay_NoMeshInTheCluster_RecordsCarryTlsButNoMesh()
    {
        string manifests = Path.Combine(_dir, "plain.yaml");
        File.WriteAllText(manifests, Namespace("legacy") + Pod("legacy", "batch", "10.1.0.30") + Pod("legacy", "store", "10.1.0.40"));
        string pcap = WriteTraffic(("10.1.0.30", "10.1.0.40", 443, PayloadClassTests.ClientHello, PayloadClassTests.ServerHello));
        var record = End(Replay(manifests, pcap), "10.1.0.30", "10.1.0.40", 443);
        Assert.True(record.GetProperty("tls").GetBoolean());
        Assert.False(record.TryGetProperty("mesh", out _));
    }

    [Fact]
    public void Replay_Ambient_HboneIsMutualTlsAndPlaintextToTheAppPortIsNot()
    {
        string manifests = Path.Combine(_dir, "ambient.yaml");
        File.WriteAllText(manifests,
            Namespace("shop", "{ istio.io/dataplane-mode: ambient }") +
            Pod("shop", "web", "10.2.0.10") + Pod("shop", "api", "10.2.0.20"));
        string pcap = WriteTraffic(
            ("10.2.0.10", "10.2.0.20", 15008, PayloadClassTests.ClientHello, PayloadClassTests.ServerHello),
            ("10.2.0.10", "10.2.0.20", 8080, PayloadClassTests.Http, PayloadClassTests.Http));
        var records = Replay(manifests, pcap);
        var hbone = End(records, "10.2.0.10", "10.2.0.20", 15008);
        Assert.True(hbone.GetProperty("tls").GetBoolean());
        Assert.Equal("""{"src":true,"dst":true,"peer_authentication":"none","hbone":true}""", hbone.GetProperty("mesh").GetRawText());
        var bypass = End(records, "10.2.0.10", "10.2.0.20", 8080);
        Assert.False(bypass.GetProperty("tls").GetBoolean());
        Assert.Equal("""{"src":true,"dst":true,"peer_authentication":"none"}""", bypass.GetProperty("mesh").GetRawText());
    }

    [Fact]
    public async Task Metrics_PlaintextCountedOncePerFlowByReason()
    {
        string manifests = WriteCluster();
        string pcap = WriteTraffic(
            ("10.1.0.10", "10.1.0.20", 8443, PayloadClassTests.ClientHello, PayloadClassTests.ServerHello),
            ("10.1.0.30", "10.1.0.20", 8443, PayloadClassTests.Http, PayloadClassTests.Http),
            ("10.1.0.30", "10.1.0.20", 8443, PayloadClassTests.Http, null),
            ("10.1.0.10", "10.1.0.20", 9090, PayloadClassTests.Http, PayloadClassTests.Http),
            ("10.1.0.30", "10.1.0.40", 80, PayloadClassTests.Http, PayloadClassTests.Http));
        using var demo = new DemoTraffic();
        await using var agent = await AgentUnderTest.StartAsync(demo, o => o with { Manifests = [manifests], Pcaps = [pcap], Node = "node-a" });
        string metrics = await agent.GetAsync("/metrics");
        var lines = metrics.Split('\n').Where(l => l.StartsWith("tripline_plaintext_flows_total{", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(
            """
            tripline_plaintext_flows_total{reason="meshed",src_namespace="bank",dst_namespace="bank",dst_workload="(none)"} 1
            tripline_plaintext_flows_total{reason="strict",src_namespace="legacy",dst_namespace="bank",dst_workload="(none)"} 2
            """,
            string.Join("\n", lines));
    }

    [Fact]
    public void Flows_TlsFilter_SelectsByTheField()
    {
        string manifests = WriteCluster();
        string pcap = WriteTraffic(
            ("10.1.0.10", "10.1.0.20", 8443, PayloadClassTests.ClientHello, PayloadClassTests.ServerHello),
            ("10.1.0.30", "10.1.0.20", 8443, PayloadClassTests.Http, PayloadClassTests.Http),
            ("10.1.0.10", "10.1.0.20", 8080, null, null));
        var records = Replay(manifests, pcap);
        string log = Path.Combine(_dir, "flows.jsonl");

        List<JsonElement> Query(string tls)
        {
            using var output = new MemoryStream();
            int code = FlowsCommand.Run(new FlowsCommand.FlowsOptions(log, new Records.FlowFilterOptions { Tls = tls }, "json", false), output, TextWriter.Null, TimeProvider.System, CancellationToken.None);
            Assert.Equal(0, code);
            return [.. System.Text.Encoding.UTF8.GetString(output.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone())];
        }

        var plaintext = Query("false");
        Assert.NotEmpty(plaintext);
        Assert.All(plaintext, r => Assert.False(r.GetProperty("tls").GetBoolean()));
        Assert.Equal(records.Count(r => r.TryGetProperty("tls", out var v) && !v.GetBoolean()), plaintext.Count);
        var encrypted = Query("true");
        Assert.Equal(records.Count(r => r.TryGetProperty("tls", out var v) && v.GetBoolean()), encrypted.Count);
        Assert.All(encrypted, r => Assert.Equal("10.1.0.10", r.GetProperty("src").GetProperty("ip").GetString()));

        var error = new StringWriter();
        Assert.Equal(2, FlowsCommand.Run(new FlowsCommand.FlowsOptions(log, new Records.FlowFilterOptions { Tls = "maybe" }, "json", false), Stream.Null, error, TimeProvider.System, CancellationToken.None));
        Assert.Contains("--tls: 'maybe' is not true or false", error.ToString(), StringComparison.Ordinal);
    }
}
