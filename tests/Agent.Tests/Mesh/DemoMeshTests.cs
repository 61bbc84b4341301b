using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Tripline.Cli;
using Tripline.Tests.Deploy;

namespace Tripline.Tests.Mesh;

/// <summary>
/// The demo's meshed namespace, as deploy/demo/README.md describes it: TLS between bank's meshed pods, exactly one
/// plaintext flow (the statement export into ledger's excluded admin port, STRICT), its PeerAuthentications read by
/// the manifest loader, and the shop's traffic outside the mesh.
/// </summary>
public sealed partial class DemoMeshTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-demo-mesh-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private List<JsonElement> DemoEnds()
    {
        string log = Path.Combine(_dir, "demo.log");
        var stderr = new StringWriter();
        int code = ReplayCommand.Run(new ReplayCommand.ReplayOptions([DeployFiles.Path("deploy/demo/traffic.pcap")], [DeployFiles.Path("deploy/demo")], log, "demo-node-1", false, 65_536, 60),
            new StringWriter(), stderr);
        Assert.True(code == 0, stderr.ToString());
        return [.. File.ReadLines(log).Select(l => JsonDocument.Parse(l).RootElement.Clone()).Where(r => r.GetProperty("event").GetString() == "end")];
    }

    private static string? Namespace(JsonElement end, string side) => end.GetProperty(side).TryGetProperty("namespace", out var ns) ? ns.GetString() : null;

    [Fact]
    public void Replay_Demo_BankTalksTlsButOnePlaintextFlowIntoStrictLedger()
    {
        var ends = DemoEnds();
        var meshed = ends.Where(r => r.TryGetProperty("mesh", out _)).ToList();
        Assert.All(meshed, r => Assert.True(Namespace(r, "dst") == "bank" || Namespace(r, "src") == "bank", r.GetRawText()));

        var plaintext = Assert.Single(meshed, r => r.TryGetProperty("tls", out var tls) && !tls.GetBoolean());
        Assert.Equal("statement-export-29157120-x7k2p", plaintext.GetProperty("src").GetProperty("pod").GetString());
        Assert.Equal("ledger-7b9c6d8f4-t4k8n", plaintext.GetProperty("dst").GetProperty("pod").GetString());
        Assert.Equal(8081, plaintext.GetProperty("dst").GetProperty("port").GetInt32());
        var mesh = plaintext.GetProperty("mesh");
        Assert.False(mesh.GetProperty("src").GetBoolean());
        Assert.True(mesh.GetProperty("dst").GetBoolean());
        Assert.Equal("STRICT", mesh.GetProperty("peer_authentication").GetString());

        // teller to ledger (a sidecar container) and ledger to accounts (a native sidecar): TLS, both ends meshed.
        var tls = meshed.Where(r => r.TryGetProperty("tls", out var t) && t.GetBoolean()).ToList();
        Assert.Equal(4, tls.Count(r => r.GetProperty("dst").GetProperty("pod").GetString() == "ledger-7b9c6d8f4-t4k8n"));
        Assert.Equal(3, tls.Count(r => r.GetProperty("dst").GetProperty("pod").GetString() == "accounts-0"));
        Assert.All(tls, r =>
        {
            Assert.Equal("1.2", r.GetProperty("tls_version").GetString());
            Assert.True(r.GetProperty("mesh").GetProperty("src").GetBoolean() && r.GetProperty("mesh").GetProperty("dst").GetBoolean(), r.GetRawText());
            Assert.Equal("STRICT", r.GetProperty("mesh").GetProperty("peer_authentication").GetString());
        });
        Assert.Equal(8, meshed.Count);

        // The shop is outside the mesh: plaintext there is no finding. Its denied flows are still the demo's six.
        Assert.Equal(6, ends.Count(r => r.GetProperty("verdict").GetString() == "deny"));
        Assert.All(ends.Where(r => Namespace(r, "src") == "shop" || Namespace(r, "dst") == "shop"), r => Assert.False(r.TryGetProperty("mesh", out _), r.GetRawText()));
    }

    [Fact]
    public async Task RunPcap_Demo_CountsTheOnePlaintextFlowUnderStrict()
    {
        using var agent = TriplineProcess.Start(["run", "--pcap", DeployFiles.Path("deploy/demo/traffic.pcap"), "--manifests", DeployFiles.Path("deploy/demo"),
            "--flow-log", Path.Combine(_dir, "run.log"), "--node", "demo-node-1", "--listen", "127.0.0.1:0"]);
        string metrics = "";
        try
        {
            int port = await agent.ListeningPortAsync(TimeSpan.FromSeconds(60));
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };
            // The plaintext flow is counted at its end record, written when the capture has been read.
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!PlaintextSeries().IsMatch(metrics = await http.GetStringAsync("/metrics")))
            {
                Assert.True(DateTime.UtcNow < deadline, "no tripline_plaintext_flows_total series in 60 s:\n" + metrics);
                await Task.Delay(200);
            }
            // Reading the rest of the capture counts nothing more: take the last scrape once every flow has ended.
            while (TriplineProcess.EndRecords(Path.Combine(_dir, "run.log")) < 93)
            {
                Assert.True(DateTime.UtcNow < deadline, "the demo's 93 flows did not all end in 60 s");
                await Task.Delay(200);
            }
            metrics = await http.GetStringAsync("/metrics");
        }
        finally
        {
            Assert.Equal(0, await agent.StopAsync(TimeSpan.FromSeconds(30)));
        }
        var series = PlaintextSeries().Matches(metrics).Select(m => (Labels: m.Groups[1].Value, Value: double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture))).ToList();
        var counted = Assert.Single(series);
        Assert.Equal(1, counted.Value);
        Assert.Equal("src_namespace=\"bank\",dst_namespace=\"bank\",dst_workload=\"Deployment/ledger\"", counted.Labels);
        // Into STRICT: counted in the STRICT part as well, with the same labels.
        Assert.Contains("tripline_plaintext_strict_flows_total{src_namespace=\"bank\",dst_namespace=\"bank\",dst_workload=\"Deployment/ledger\"} 1", metrics, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"^tripline_plaintext_flows_total\{([^}]*)\} (\S+)$", RegexOptions.Multiline)]
    private static partial Regex PlaintextSeries();
}
