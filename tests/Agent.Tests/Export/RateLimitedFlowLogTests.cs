using System.Text.Json;
using Tripline.Cli;
using Tripline.Export;
using Tripline.Tests.Http;
using Tripline.Tests.Support;

namespace Tripline.Tests.Export;

/// <summary>
/// The records-per-second budget, replayed in-process on small captures: time is the packets', so every count below
/// is exact and the same on any machine.
/// </summary>
public sealed class RateLimitedFlowLogTests : IDisposable
{
    private const long StartMicros = 1_764_100_000_000_000;
    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-rate-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private const string Manifests = """
        apiVersion: v1
        kind: Namespace
        metadata: { name: shop, labels: { kubernetes.io/metadata.name: shop } }
        ---
        apiVersion: v1
        kind: Namespace
        metadata: { name: legacy, labels: { kubernetes.io/metadata.name: legacy } }
        ---
        apiVersion: v1
        kind: Pod
        metadata: { name: backend-5c6b-fghij, namespace: shop, uid: u2, labels: { app: backend, pod-template-hash: 5c6b }, ownerReferences: [ { apiVersion: apps/v1, kind: ReplicaSet, name: backend-5c6b, uid: rs2, controller: true } ] }
        spec: { nodeName: node-a, containers: [ { name: api } ] }
        status: { phase: Running, podIP: 10.244.0.20 }
        ---
        apiVersion: v1
        kind: Pod
        metadata: { name: scanner, namespace: legacy, uid: u3, labels: { app: scanner } }
        spec: { nodeName: node-a, containers: [ { name: scan } ] }
        status: { phase: Running, podIP: 10.244.0.30 }
        ---
        apiVersion: v1
        kind: Pod
        metadata: { name: legacy-0, namespace: legacy, uid: u4, labels: { app: legacy } }
        spec: { nodeName: node-a, containers: [ { name: old } ] }
        status: { phase: Running, podIP: 10.244.0.40 }
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: { name: default-deny, namespace: shop }
        spec: { podSelector: {}, policyTypes: [ Ingress ] }
        """;

    /// <summary>
    /// legacy-0 connects to <paramref name="flood"/> external addresses on 10 ports, one every 10 ms (SYN, SYN-ACK,
    /// RST); after every tenth, legacy/scanner is refused by shop/backend.
    /// </summary>
    private string Capture(int flood, int denialsEvery = 10)
    {
        string path = Path.Combine(_dir, "capture.pcap");
        using var pcap = new TestPcap(File.Create(path));
        uint legacy = TestPcap.Ip("10.244.0.40"), scanner = TestPcap.Ip("10.244.0.30"), backend = TestPcap.Ip("10.244.0.20"), targets = TestPcap.Ip("192.0.2.0");
        long t = StartMicros;
        for (int i = 0; i < flood; i++)
        {
            t = StartMicros + i * 10_000L;
            ushort port = (ushort)(30000 + i);
            uint target = targets + (uint)i;
            ushort service = (ushort)(80 + i % 10);
            pcap.Write(t++, TestPcap.Tcp(legacy, port, target, service, 0x02));
            pcap.Write(t++, TestPcap.Tcp(target, service, legacy, port, 0x12));
            pcap.Write(t++, TestPcap.Tcp(legacy, port, target, service, 0x04));
            if (i % denialsEvery == denialsEvery - 1)
            {
                pcap.Write(t++, TestPcap.Tcp(scanner, port, backend, 8080, 0x02));
                pcap.Write(t++, TestPcap.Tcp(backend, 8080, scanner, port, 0x14));
            }
        }
        return path;
    }

    private List<JsonElement> Replay(string pcap, FlowLogOptions? options, out string summary)
    {
        File.WriteAllText(Path.Combine(_dir, "cluster.yaml"), Manifests);
        string log = Path.Combine(_dir, "flows.jsonl");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = ReplayCommand.Run(new ReplayCommand.ReplayOptions([pcap], [Path.Combine(_dir, "cluster.yaml")], log, "node-a", FailOnDeny: false, MaxFlows: 65_536, UpdateIntervalSeconds: 60, options), stdout, stderr);
        Assert.True(exit == 0, $"replay exited {exit}: {stderr}");
        summary = stdout.ToString();
        return [.. File.ReadAllLines(log).Select(l => JsonDocument.Parse(l).RootElement.Clone())];
    }

    private const int WrittenFlood = 15;

    private static string Event(JsonElement r) => r.GetProperty("event").GetString()!;

    [Fact]
    public void Replay_FloodPastTheBudget_WritesEveryDenialAndFoldsTheRestIntoTheSourcesAggregate()
    {
        var records = Replay(Capture(flood: 200), new FlowLogOptions { RateLimit = 20, RateBurst = 40 }, out string summary);

        var ends = records.Where(r => Event(r) == "end").ToList();
        var aggregates = records.Where(r => Event(r) == "aggregate").ToList();
        // 20 denials, each written whole although the flood spent the budget long before most of them.
        Assert.Equal(20, ends.Count(r => r.GetProperty("verdict").GetString() == "deny"));
        Assert.Equal(ends.Select(r => r.GetProperty("flow_id").GetString()).Order(), records.Where(r => Event(r) == "start").Select(r => r.GetProperty("flow_id").GetString()).Order());
        // Written flows and folded flows are all 220.
        Assert.Equal(220, ends.Count + aggregates.Sum(a => a.GetProperty("flows").GetInt64()));

        // The flood: legacy-0's first flows while the burst lasted (down to its reserve), then one aggregate.
        var flood = Assert.Single(aggregates);
        Assert.Equal("rate_limit", flood.GetProperty("reason").GetString());
        Assert.Equal("legacy", flood.GetProperty("src").GetProperty("namespace").GetString());
        Assert.Equal("legacy-0", flood.GetProperty("src").GetProperty("pod").GetString());
        Assert.Equal("allow", flood.GetProperty("verdict").GetString());
        long folded = flood.GetProperty("flows").GetInt64();
        long writtenFlood = ends.Count(r => r.GetProperty("src").GetProperty("pod").GetString() == "legacy-0");
        Assert.Equal(200, writtenFlood + folded);
        // Each flood flow went to its own address; ten ports between them all.
        Assert.Equal(folded, flood.GetProperty("distinct_destinations").GetInt64());
        Assert.Equal(10, flood.GetProperty("distinct_ports").GetInt64());
        Assert.Equal(1, flood.GetProperty("distinct_sources").GetInt64());
        Assert.Equal(folded * 2, flood.GetProperty("packets").GetProperty("sent").GetInt64());
        Assert.Equal(folded, flood.GetProperty("packets").GetProperty("received").GetInt64());
        Assert.False(flood.TryGetProperty("dst", out _));
        Assert.False(flood.TryGetProperty("distinct_estimated", out _));
        // The burst of 40 records is 20 flows: new pairs may spend it down to a quarter (15 flows, less the denials'
        // share); then legacy-0 is folding and ordinary, and the 2 records/100 ms of refill go to the denials.
        Assert.Equal(WrittenFlood, writtenFlood);
        Assert.Contains($"{folded:N0} flows folded into 1 aggregate records", summary, StringComparison.Ordinal);
    }

    [Fact]
    public void Replay_NoRateLimit_WritesEveryFlow()
    {
        var records = Replay(Capture(flood: 300), new FlowLogOptions { RateLimit = 0 }, out _);
        Assert.Equal(660, records.Count);
        Assert.DoesNotContain(records, r => Event(r) == "aggregate");
    }

    [Fact]
    public void Replay_DeniedFlood_IsFoldedToo_ButTheFirstDenialsAreWritten()
    {
        // Every flow of the capture denied: the preference of denials cannot make the log unbounded.
        string path = Path.Combine(_dir, "denied.pcap");
        using (var pcap = new TestPcap(File.Create(path)))
        {
            uint scanner = TestPcap.Ip("10.244.0.30"), backend = TestPcap.Ip("10.244.0.20");
            for (int i = 0; i < 500; i++)
            {
                pcap.Write(StartMicros + 2 * i, TestPcap.Tcp(scanner, (ushort)(10000 + i), backend, (ushort)(1 + i), 0x02));
                pcap.Write(StartMicros + 2 * i + 1, TestPcap.Tcp(backend, (ushort)(1 + i), scanner, (ushort)(10000 + i), 0x14));
            }
        }
        var records = Replay(path, new FlowLogOptions { RateLimit = 10, RateBurst = 40 }, out _);
        var ends = records.Where(r => Event(r) == "end").ToList();
        var aggregate = Assert.Single(records, r => Event(r) == "aggregate");
        Assert.Equal(20, ends.Count);
        Assert.Equal(480, aggregate.GetProperty("flows").GetInt64());
        Assert.Equal("deny", aggregate.GetProperty("verdict").GetString());
        Assert.Equal(480, aggregate.GetProperty("distinct_ports").GetInt64());
        // One destination for every folded flow: it is named, without a port, since the ports differ.
        Assert.Equal("Deployment/backend", aggregate.GetProperty("dst").GetProperty("workload").GetString());
        Assert.False(aggregate.GetProperty("dst").TryGetProperty("port", out _));
    }

    /// <summary>The metrics count what was folded by reason, the same numbers as the log shows.</summary>
    [Fact]
    public async Task Metrics_RateLimitedAgent_CountFoldedRecordsByReason()
    {
        using var demo = new DemoTraffic();
        string dir = Path.Combine(_dir, "log");
        Directory.CreateDirectory(dir);
        AgentMetrics metrics;
        await using (var agent = await AgentUnderTest.StartAsync(demo, o => o with { FlowLog = dir, FlowLogOptions = new FlowLogOptions { RateLimit = 1, RateBurst = 4 } }))
        {
            Assert.Contains("tripline_flow_log_folded_records_total{reason=\"rate_limit\"}", await agent.GetAsync("/metrics"), StringComparison.Ordinal);
            metrics = agent.Host.Parts.Exporters.OfType<AgentMetrics>().Single();
        }
        // Collected once more after the stop, when every flow has ended and every record is written.
        using var text = new MemoryStream();
        await metrics.Registry.CollectAndExportAsTextAsync(text);
        string scrape = System.Text.Encoding.UTF8.GetString(text.ToArray());
        var records = File.ReadAllLines(Path.Combine(dir, RotatingFileOutput.DefaultFileName)).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        long foldedFlows = records.Where(r => Event(r) == "aggregate").Sum(r => r.GetProperty("flows").GetInt64());
        long writtenFlows = records.Count(r => Event(r) == "end");
        Assert.Equal(6, writtenFlows + foldedFlows);
        Assert.True(foldedFlows > 0);

        // A folded flow is two records not written: its start and its end.
        Assert.Contains($"tripline_flow_log_folded_records_total{{reason=\"rate_limit\"}} {foldedFlows * 2}", scrape, StringComparison.Ordinal);
        Assert.Contains("tripline_flow_log_folded_records_total{reason=\"short\"} 0", scrape, StringComparison.Ordinal);
        Assert.Contains("tripline_flow_log_lost_records_total{reason=\"write_failed\"} 0", scrape, StringComparison.Ordinal);
        Assert.Contains("tripline_flow_log_lost_records_total{reason=\"stop_deadline\"} 0", scrape, StringComparison.Ordinal);
    }
}
