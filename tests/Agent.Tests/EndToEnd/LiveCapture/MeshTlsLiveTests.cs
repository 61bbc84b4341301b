using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Tripline.Tests.Mesh;
using Tripline.Tests.Support;

namespace Tripline.Tests.EndToEnd.LiveCapture;

/// <summary>
/// The mesh audit on the wire: two pods of one meshed namespace (sidecars declared, PeerAuthentication STRICT) in
/// network namespaces across veths, the agent capturing live; a real TLS exchange (<c>openssl s_server</c> and
/// <c>s_client</c>, TLS 1.2) and a plaintext HTTP exchange (python's http.server). The flow log says which is which,
/// and <c>tripline_plaintext_flows_total</c> counts the plaintext one only. Needs root, iproute2, python3, libpcap and
/// openssl: a machine without them fails with what to install, it never skips.
/// </summary>
[Collection(LiveCaptureCollection.Name)]
public sealed partial class MeshTlsLiveTests : IDisposable
{
    private const string Ns = "mesh";
    private const int TlsPort = 8443;
    private const int HttpPort = 8080;

    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-mesh-live-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static void RequirePrerequisites()
    {
        var missing = TestNode.MissingPrerequisites().ToList();
        if (!File.Exists("/usr/bin/openssl")) missing.Add("openssl (apt-get install -y openssl)");
        string ci = Environment.GetEnvironmentVariable("CI") == "true" ? " (CI=true: .ci/run must provide them)" : "";
        Assert.True(missing.Count == 0, "live mesh tests need: " + string.Join("; ", missing) + ci);
    }

    [Fact]
    public void Run_TlsAndPlaintextBetweenMeshedPods_TlsTrueAndFalseAndOnlyThePlaintextCounted()
    {
        RequirePrerequisites();
        var (_, cert, key) = OpenSsl.IssueServingCertificate(_dir, "b");
        using var node = new TestNode();
        node.AddPod("a");
        node.AddPod("b");
        string a = node.PodIp("a"), b = node.PodIp("b");
        string manifests = MeshManifests.Namespace(Ns)
            + MeshManifests.Pod(Ns, "a", a, sidecar: true, "test-node")
            + MeshManifests.Pod(Ns, "b", b, sidecar: true, "test-node", TlsPort, HttpPort)
            + MeshManifests.PeerAuthentication(Ns, "default", "STRICT");
        using var agent = new AgentProcess(node, manifests, "");
        agent.Process.WaitFor("capture ready on 2 interface(s)", TimeSpan.FromSeconds(30));

        // TLS: one connection, one request, the server closes after its answer.
        var tlsServer = node.Start(node.PodNamespace("b"), "/usr/bin/openssl", $"s_server -accept {TlsPort} -cert {cert} -key {key} -tls1_2 -www -naccept 1");
        tlsServer.WaitFor("ACCEPT", TimeSpan.FromSeconds(10));
        string answer = TestNode.Run("ip", $"netns exec {node.PodNamespace("a")} /usr/bin/openssl s_client -connect {b}:{TlsPort} -tls1_2 -quiet", "GET / HTTP/1.0\r\n\r\n");
        Assert.Contains("HTTP/1.0 200 ok", answer, StringComparison.Ordinal);

        // Plaintext HTTP.
        string root = Directory.CreateDirectory(Path.Combine(_dir, "www")).FullName;
        File.WriteAllText(Path.Combine(root, "index.html"), "hello\n");
        node.Start(node.PodNamespace("b"), "python3", $"-u -m http.server {HttpPort} --bind 0.0.0.0 --directory {root}").WaitFor("Serving HTTP", TimeSpan.FromSeconds(10));
        Assert.Contains("status 200", node.RunInPod("a", "http-get", $"{b} {HttpPort} /index.html"), StringComparison.Ordinal);

        // Both ended (FIN, then the agent's linger), so both were judged and counted before the scrape.
        agent.WaitForRecords(r => End(r, b, TlsPort) is not null && End(r, b, HttpPort) is not null, TimeSpan.FromSeconds(30), "end records of both connections");
        var (status, metrics) = agent.Get("/metrics");
        Assert.Equal(200, status);
        Assert.Equal(0, agent.Stop());

        var records = agent.Records();
        string log = string.Join('\n', records.Select(r => r.GetRawText()));
        var tls = End(records, b, TlsPort)!.Value;
        var plain = End(records, b, HttpPort)!.Value;
        foreach (var end in new[] { tls, plain })
        {
            Assert.Equal(a, end.GetProperty("src").GetProperty("ip").GetString());
            Assert.Equal("fin", end.GetProperty("end_reason").GetString());
            Assert.True(end.TryGetProperty("mesh", out var mesh), "no mesh object:\n" + log);
            Assert.True(mesh.GetProperty("src").GetBoolean(), log);
            Assert.True(mesh.GetProperty("dst").GetBoolean(), log);
            Assert.Equal("STRICT", mesh.GetProperty("peer_authentication").GetString());
        }
        Assert.True(tls.TryGetProperty("tls", out var tlsSeen) && tlsSeen.GetBoolean(), "the TLS connection is not tls true:\n" + log);
        Assert.Equal("1.2", tls.GetProperty("tls_version").GetString());
        Assert.True(plain.TryGetProperty("tls", out var plainSeen) && !plainSeen.GetBoolean(), "the HTTP connection is not tls false:\n" + log);
        Assert.False(plain.TryGetProperty("tls_version", out _), log);

        // One series, one flow: the plaintext into STRICT b; the TLS connection is not counted.
        var series = PlaintextSeries().Matches(metrics).Select(m => (Labels: m.Groups[1].Value, Value: double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture))).ToList();
        var counted = Assert.Single(series);
        Assert.Equal(1, counted.Value);
        Assert.Contains($"tripline_plaintext_strict_flows_total{{{counted.Labels}}} 1", metrics, StringComparison.Ordinal);
        Assert.Contains($"src_namespace=\"{Ns}\"", counted.Labels, StringComparison.Ordinal);
        Assert.Contains($"dst_namespace=\"{Ns}\"", counted.Labels, StringComparison.Ordinal);
        Assert.Contains("dst_workload=\"Deployment/b\"", counted.Labels, StringComparison.Ordinal);
    }

    /// <summary>The end record of the connection from a pod to <paramref name="server"/>:<paramref name="port"/>, if written.</summary>
    private static JsonElement? End(List<JsonElement> records, string server, int port)
    {
        var ends = records.Where(r => r.GetProperty("event").GetString() == "end" && r.GetProperty("protocol").GetString() == "TCP"
            && r.GetProperty("dst").GetProperty("ip").GetString() == server && r.GetProperty("dst").GetProperty("port").GetInt32() == port).ToList();
        Assert.True(ends.Count <= 1, $"{ends.Count} connections to {server}:{port}, one was made");
        return ends.Count == 1 ? ends[0] : null;
    }

    [GeneratedRegex(@"^tripline_plaintext_flows_total\{([^}]*)\} (\S+)$", RegexOptions.Multiline)]
    private static partial Regex PlaintextSeries();
}
