using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Tripline.Cli;
using Tripline.Export;
using Tripline.Tests.Http;
using Tripline.Tests.Support;
using Tripline.Records;

namespace Tripline.Tests.Export;

/// <summary>
/// The record's <c>enforcement</c> from a capture (issue 15): each rule of <see cref="EnforcementJudge"/> by a flow
/// that shows it, including SYN retransmissions and ICMP unreachable answers, then the same flows through
/// <c>tripline flows --enforcement</c>, <c>explain --flow-id</c>, the replay summary and the metrics.
/// </summary>
public sealed partial class EnforcementReplayTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-enforcement-").FullName;

    private const string Manifests = """
        apiVersion: v1
        kind: Namespace
        metadata: { name: shop }
        ---
        apiVersion: v1
        kind: Pod
        metadata: { name: db, namespace: shop, uid: u1, labels: { app: db } }
        spec: { nodeName: node-1 }
        status: { phase: Running, podIPs: [ { ip: 10.1.0.10 } ] }
        ---
        apiVersion: v1
        kind: Pod
        metadata: { name: web, namespace: shop, uid: u2, labels: { app: web } }
        spec: { nodeName: node-1 }
        status: { phase: Running, podIPs: [ { ip: 10.1.0.20 } ] }
        ---
        apiVersion: v1
        kind: Pod
        metadata: { name: api, namespace: shop, uid: u3, labels: { app: api } }
        spec: { nodeName: node-1 }
        status: { phase: Running, podIPs: [ { ip: 10.1.0.30 } ] }
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: { name: db-closed, namespace: shop }
        spec: { podSelector: { matchLabels: { app: db } }, policyTypes: [ Ingress ] }
        """;

    private static readonly uint Db = TestPcap.Ip("10.1.0.10"), Web = TestPcap.Ip("10.1.0.20"), Api = TestPcap.Ip("10.1.0.30");
    private static readonly uint Router = TestPcap.Ip("10.1.0.1");
    private const long Second = 1_000_000;

    /// <summary>(source, destination port, what the record must say) for each flow of the capture.</summary>
    private static readonly (string Source, string Destination, int Port, string Protocol, string Expected)[] Expected =
    [
        ("192.0.2.1", "10.1.0.10", 5432, "TCP", "deny/not_enforced"),
        ("192.0.2.2", "10.1.0.10", 5432, "TCP", "deny/enforced"),
        ("192.0.2.3", "10.1.0.10", 53, "UDP", "deny/enforced"),
        ("10.1.0.20", "10.1.0.30", 8080, "TCP", "allow/dropped"),
        ("10.1.0.20", "10.1.0.30", 8081, "TCP", "allow/delivered"),
        ("10.1.0.20", "10.1.0.30", 53, "UDP", "allow/dropped"),
        ("10.1.0.20", "10.1.0.30", 54, "UDP", "allow/delivered"),
        ("10.1.0.20", "10.1.0.30", 514, "UDP", "allow/unknown"),
        ("10.1.0.20", "10.1.0.30", 9000, "TCP", "allow/unknown"),
        ("10.1.0.20", "10.1.0.30", 7000, "TCP", "allow/unknown"),
    ];

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string WriteCapture()
    {
        string path = Path.Combine(_dir, "enforcement.pcap");
        using var pcap = new TestPcap(File.Create(path));
        long t = 1_764_100_000_000_000;
        uint outsider1 = TestPcap.Ip("192.0.2.1"), outsider2 = TestPcap.Ip("192.0.2.2"), outsider3 = TestPcap.Ip("192.0.2.3");
        // Denied, answered: the CNI let it through.
        pcap.Write(t += 1000, TestPcap.Tcp(outsider1, 30001, Db, 5432, 0x02));
        pcap.Write(t += 1000, TestPcap.Tcp(Db, 5432, outsider1, 30001, 0x12));
        pcap.Write(t += 1000, TestPcap.Tcp(outsider1, 30001, Db, 5432, 0x10));
        // Denied, the SYN sent three times, never answered.
        long syn = t;
        foreach (long after in new[] { 0L, 1, 3 }) pcap.Write(syn + after * Second, TestPcap.Tcp(outsider2, 30002, Db, 5432, 0x02));
        // Denied UDP, refused by an ICMP administratively prohibited (a REJECT rule).
        var query = TestPcap.Udp(outsider3, 30003, Db, 53, 20);
        pcap.Write(t += 1000, query);
        pcap.Write(t += 1000, Unreachable(Db, query, code: 13));
        // Allowed, the SYN sent three times, never answered: dropped.
        foreach (long after in new[] { 0L, 1, 3 }) pcap.Write(syn + after * Second + 10, TestPcap.Tcp(Web, 40001, Api, 8080, 0x02));
        // Allowed and answered.
        pcap.Write(t += 1000, TestPcap.Tcp(Web, 40002, Api, 8081, 0x02));
        pcap.Write(t += 1000, TestPcap.Tcp(Api, 8081, Web, 40002, 0x12));
        // Allowed UDP: a router says the host is unreachable (dropped); the host itself says nothing listens (delivered).
        var lost = TestPcap.Udp(Web, 40003, Api, 53, 20);
        pcap.Write(t += 1000, lost);
        pcap.Write(t += 1000, Unreachable(Router, lost, code: 1));
        var closed = TestPcap.Udp(Web, 40004, Api, 54, 20);
        pcap.Write(t += 1000, closed);
        pcap.Write(t += 1000, Unreachable(Api, closed, code: 3));
        // One-way UDP (syslog): nobody answers, by design.
        pcap.Write(t += 1000, TestPcap.Udp(Web, 40005, Api, 514, 20));
        // Seen mid-stream, one way only; and a single SYN at the very end of the capture.
        pcap.Write(t += 1000, TestPcap.Tcp(Web, 40006, Api, 9000, 0x10, 100));
        pcap.Write(syn + 4 * Second, TestPcap.Tcp(Web, 40007, Api, 7000, 0x02));
        return path;
    }

    /// <summary>An ICMP destination unreachable from <paramref name="from"/> quoting the IP header and 8 bytes of a frame.</summary>
    private static byte[] Unreachable(uint from, byte[] quotedFrame, byte code)
    {
        var quoted = quotedFrame.AsSpan(14, 28);
        uint to = BinaryPrimitives.ReadUInt32BigEndian(quoted[12..]);
        var frame = new byte[14 + 20 + 8 + 28];
        frame.AsSpan(0, 12).Fill(0x02);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), 0x0800);
        var ip = frame.AsSpan(14);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], 20 + 8 + 28);
        ip[8] = 64;
        ip[9] = 1;
        BinaryPrimitives.WriteUInt32BigEndian(ip[12..], from);
        BinaryPrimitives.WriteUInt32BigEndian(ip[16..], to);
        ip[20] = 3;
        ip[21] = code;
        quoted.CopyTo(ip[28..]);
        return frame;
    }

    private (int Code, string Summary, List<JsonElement> Records, string FlowLog) Replay()
    {
        File.WriteAllText(Path.Combine(_dir, "cluster.yaml"), Manifests);
        string capture = WriteCapture();
        string flowLog = Path.Combine(_dir, "flows.jsonl");
        var stdout = new StringWriter();
        int code = ReplayCommand.Run(new ReplayCommand.ReplayOptions([capture], [Path.Combine(_dir, "cluster.yaml")], flowLog, "node-1", false, 65_536, 60), stdout, new StringWriter());
        var records = File.ReadAllLines(flowLog).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        return (code, stdout.ToString(), records, flowLog);
    }

    private static JsonElement EndOf(List<JsonElement> records, string source, string destination, int port, string protocol) =>
        Assert.Single(records, r => r.GetProperty("event").GetString() == "end" && r.GetProperty("protocol").GetString() == protocol
            && r.GetProperty("src").GetProperty("ip").GetString() == source && r.GetProperty("dst").GetProperty("ip").GetString() == destination
            && r.GetProperty("dst").GetProperty("port").GetInt32() == port);

    [Fact]
    public void Replay_EachRule_ByAFlowThatShowsIt()
    {
        var (code, summary, records, _) = Replay();
        Assert.Equal(0, code);
        string log = string.Join('\n', records.Select(r => r.GetRawText()));
        foreach (var (source, destination, port, protocol, expected) in Expected)
        {
            var end = EndOf(records, source, destination, port, protocol);
            Assert.True(expected == end.GetProperty("verdict").GetString() + "/" + end.GetProperty("enforcement").GetString(), $"{protocol} {source} -> {destination}:{port}: want {expected}\n{log}");
        }
        // The ICMP errors were evidence on their flows, not flows of their own.
        Assert.DoesNotContain(records, r => r.GetProperty("protocol").GetString() == "ICMP");
        Assert.Equal(Expected.Length * 2, records.Count);
        // Every record says something; the start of a flow answered by its first reply already knows.
        Assert.All(records, r => Assert.True(EnforcementJudge.TryParse(r.GetProperty("enforcement").GetString()!, out _)));

        Assert.Contains("enforcement 1 not_enforced (denied, went through), 2 enforced, 2 dropped (allowed, lost), 2 delivered, 3 unknown", summary, StringComparison.Ordinal);
        Assert.Contains("(192.0.2.1) -> shop/db (10.1.0.10) TCP/5432: ingress isolated by shop/db-closed [1 not_enforced]", summary, StringComparison.Ordinal);
        Assert.Contains("(192.0.2.2) -> shop/db (10.1.0.10) TCP/5432: ingress isolated by shop/db-closed [1 enforced]", summary, StringComparison.Ordinal);
    }

    [Fact]
    public void FlowsCommand_Enforcement_SelectsByWhatTheNetworkDid_AndRejectsAnUnknownValue()
    {
        var (_, _, _, flowLog) = Replay();
        foreach (string enforcement in new[] { "not_enforced", "enforced", "dropped" })
        {
            using var stdout = new MemoryStream();
            var stderr = new StringWriter();
            int code = FlowsCommand.Run(new FlowsCommand.FlowsOptions(flowLog, new FlowFilterOptions { Enforcement = enforcement }, "json", false), stdout, stderr, TimeProvider.System, CancellationToken.None);
            Assert.Equal(0, code);
            var lines = Encoding.UTF8.GetString(stdout.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            var want = Expected.Where(e => e.Expected.EndsWith("/" + enforcement, StringComparison.Ordinal)).Select(e => (e.Source, e.Port)).Order().ToList();
            var got = lines.Select(l => JsonDocument.Parse(l).RootElement)
                .Select(r => (r.GetProperty("src").GetProperty("ip").GetString()!, r.GetProperty("dst").GetProperty("port").GetInt32())).Distinct().Order().ToList();
            Assert.Equal(want, got);
            Assert.All(lines, l => Assert.Contains($"\"enforcement\":\"{enforcement}\"", l, StringComparison.Ordinal));
        }
        var bad = new StringWriter();
        Assert.Equal(ExitCodes.BadUsage, FlowsCommand.Run(new FlowsCommand.FlowsOptions(flowLog, new FlowFilterOptions { Enforcement = "blocked" }, "json", false), new MemoryStream(), bad, TimeProvider.System, CancellationToken.None));
        Assert.Contains("--enforcement: 'blocked'", bad.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Explain_RecordedFlow_SaysWhatTheNetworkDidAndWhy()
    {
        var (_, _, records, flowLog) = Replay();
        string id = EndOf(records, "192.0.2.2", "10.1.0.10", 5432, "TCP").GetProperty("flow_id").GetString()!;
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = ExplainCommand.Run(new ExplainCommand.ExplainOptions([Path.Combine(_dir, "cluster.yaml")], "", "", 0, "TCP", "text") { FlowId = id, FlowLog = flowLog }, stdout, stderr);
        Assert.True(code == 0, stderr.ToString());
        string text = stdout.ToString();
        Assert.StartsWith($"recorded flow {id}", text, StringComparison.Ordinal);
        Assert.Contains("verdict deny, enforcement enforced", text, StringComparison.Ordinal);
        Assert.Contains("packets sent 3, received 0", text, StringComparison.Ordinal);
        Assert.Contains("DENIED  TCP 192.0.2.2", text, StringComparison.Ordinal);
        Assert.Contains("isolated by shop/db-closed", text, StringComparison.Ordinal);

        stderr = new StringWriter();
        Assert.Equal(ExitCodes.BadUsage, ExplainCommand.Run(new ExplainCommand.ExplainOptions([Path.Combine(_dir, "cluster.yaml")], "", "", 0, "TCP", "text") { FlowId = "00000000deadbeef", FlowLog = flowLog }, new StringWriter(), stderr));
        Assert.Contains("no record of flow 00000000deadbeef", stderr.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metrics_CountEachFlowOnce_ByEnforcement_AndTheViolationsBySide()
    {
        File.WriteAllText(Path.Combine(_dir, "cluster.yaml"), Manifests);
        string capture = WriteCapture();
        using var demo = new DemoTraffic();
        await using var agent = await AgentUnderTest.StartAsync(demo, o => o with { Pcaps = [capture], Manifests = [Path.Combine(_dir, "cluster.yaml")], Node = "node-1" });
        // Flows end when the capture does; their end records are the last to be counted.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (agent.Host.Pipeline.Table.Stats.FlowsEnded < Expected.Length && DateTime.UtcNow < deadline) await Task.Delay(20);
        string metrics = await agent.GetAsync("/metrics");

        long Sum(string name, string filter) => SeriesLine().Matches(metrics).Where(m => m.Groups[1].Value == name && m.Groups[2].Value.Contains(filter, StringComparison.Ordinal))
            .Sum(m => long.Parse(m.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture));
        foreach (string enforcement in EnforcementJudge.Names)
        {
            long want = Expected.Count(e => e.Expected.EndsWith("/" + enforcement, StringComparison.Ordinal));
            Assert.True(want == Sum("tripline_enforcement_flows_total", $"enforcement=\"{enforcement}\""), $"{enforcement}: want {want}\n{metrics}");
        }
        Assert.Equal(Sum("tripline_flows_total", ""), Sum("tripline_enforcement_flows_total", ""));
        Assert.Equal(1, Sum("tripline_not_enforced_flows_total", "direction=\"ingress\",namespace=\"shop\""));
        Assert.Contains("policy=\"shop/db-closed\"", SeriesLine().Matches(metrics).Single(m => m.Groups[1].Value == "tripline_not_enforced_flows_total").Value, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"^(tripline_\w+)\{([^}]*)\} (\d+)$", RegexOptions.Multiline)]
    private static partial Regex SeriesLine();
}
