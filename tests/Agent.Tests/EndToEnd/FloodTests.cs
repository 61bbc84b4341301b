using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Tripline.Tests.Support;

namespace Tripline.Tests.EndToEnd;

/// <summary>
/// Issue 14: a flood must not wipe the evidence. One pod opens a million connections (SYNs to a million distinct
/// addresses, on 1,024 ports) in five seconds of packet time, while another pod is denied 200 times and a third makes
/// 200 ordinary allowed connections. <c>tripline replay</c>, the executable beside the tests, writes the log under the
/// default budget (500 records/s, burst 2,000) with the flow table at the agent's size (262,144 flows).
/// <para>
/// The log stays within the budget, every denied flow is written whole, every other flow is written or counted in an
/// aggregate (nothing is silently lost), and the process's peak resident memory stays under the bound that
/// docs/operations.md states, which is under the DaemonSet's 512 MiB limit. Deterministic: the budget runs on packet
/// time, so the same capture folds the same way on any machine.
/// </para>
/// </summary>
[Collection(nameof(AllocationMeasurements))]
public sealed partial class FloodTests : IDisposable
{
    private const int FloodFlows = 1_000_000;
    private const int DeniedFlows = 200;
    private const int OrdinaryFlows = 200;
    private const int Ports = 1024;
    private const long StartMicros = 1_764_100_000_000_000;
    /// <summary>The bound docs/operations.md states for a flood of a million new flows (the DaemonSet's limit is 512 MiB).</summary>
    private const long PeakBoundMiB = 400;
    private const int Rate = 500;
    private const int Burst = 2000;

    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-flood-").FullName;

    private const string Manifests = """
        apiVersion: v1
        kind: Namespace
        metadata: { name: shop, labels: { kubernetes.io/metadata.name: shop } }
        ---
        apiVersion: v1
        kind: Namespace
        metadata: { name: tools, labels: { kubernetes.io/metadata.name: tools } }
        ---
        apiVersion: v1
        kind: Namespace
        metadata: { name: legacy, labels: { kubernetes.io/metadata.name: legacy } }
        ---
        apiVersion: v1
        kind: Pod
        metadata: { name: frontend-7d9f-abcde, namespace: shop, uid: u1, labels: { app: frontend } }
        spec: { nodeName: node-a, containers: [ { name: web } ] }
        status: { phase: Running, podIP: 10.244.0.10 }
        ---
        apiVersion: v1
        kind: Pod
        metadata: { name: backend-5c6b-fghij, namespace: shop, uid: u2, labels: { app: backend } }
        spec: { nodeName: node-a, containers: [ { name: api, ports: [ { containerPort: 8080 } ] } ] }
        status: { phase: Running, podIP: 10.244.0.20 }
        ---
        apiVersion: v1
        kind: Pod
        metadata: { name: scanner, namespace: tools, uid: u3, labels: { app: scanner } }
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
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: { name: backend-from-frontend, namespace: shop }
        spec:
          podSelector: { matchLabels: { app: backend } }
          policyTypes: [ Ingress ]
          ingress: [ { from: [ { podSelector: { matchLabels: { app: frontend } } } ], ports: [ { port: 8080, protocol: TCP } ] } ]
        """;

    /// <summary>
    /// legacy-0 sends one SYN to each of a million external addresses (10.128.0.0 upward), 5 µs apart; every 5,000th
    /// packet slot, tools/scanner is refused by backend (SYN, RST) and frontend reaches backend (SYN, SYN-ACK, RST).
    /// </summary>
    private string WriteCapture()
    {
        string path = Path.Combine(_dir, "flood.pcap");
        using var pcap = new TestPcap(new BufferedStream(File.Create(path), 1 << 20));
        uint legacy = TestPcap.Ip("10.244.0.40"), scanner = TestPcap.Ip("10.244.0.30"), frontend = TestPcap.Ip("10.244.0.10"), backend = TestPcap.Ip("10.244.0.20");
        uint targets = TestPcap.Ip("10.128.0.0");
        long t = StartMicros;
        int every = FloodFlows / DeniedFlows;
        for (int i = 0; i < FloodFlows; i++)
        {
            pcap.Write(t, TestPcap.Tcp(legacy, (ushort)(20000 + i % 40000), targets + (uint)i, (ushort)(1 + i % Ports), 0x02));
            t += 5;
            if (i % every == every / 2)
            {
                ushort port = (ushort)(50000 + i / every);
                pcap.Write(t++, TestPcap.Tcp(scanner, port, backend, 8080, 0x02));
                pcap.Write(t++, TestPcap.Tcp(backend, 8080, scanner, port, 0x14));
                pcap.Write(t++, TestPcap.Tcp(frontend, port, backend, 8080, 0x02));
                pcap.Write(t++, TestPcap.Tcp(backend, 8080, frontend, port, 0x12));
                pcap.Write(t++, TestPcap.Tcp(frontend, port, backend, 8080, 0x04));
            }
        }
        return path;
    }

    [Fact]
    public async Task Replay_MillionNewFlowsFromOnePod_StaysInBudgetKeepsEveryDenialAndCountsEveryFlow()
    {
        File.WriteAllText(Path.Combine(_dir, "cluster.yaml"), Manifests);
        string pcap = WriteCapture();
        string log = Path.Combine(_dir, "flows.jsonl");

        var (exit, output) = await RunReplayAsync("replay", "--pcap", pcap, "--manifests", Path.Combine(_dir, "cluster.yaml"), "--flow-log", log,
            "--node", "node-a", "--flow-log-rate-limit", Rate.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(exit == 0, $"replay exited {exit}:\n{output}");

        var match = PeakLine().Match(output);
        Assert.True(match.Success, "the summary names the peak resident memory:\n" + output);
        long peakMiB = long.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);

        var starts = new Dictionary<string, JsonElement>();
        var ends = new Dictionary<string, JsonElement>();
        var aggregates = new List<JsonElement>();
        int records = 0;
        foreach (string line in File.ReadLines(log))
        {
            records++;
            var record = JsonDocument.Parse(line).RootElement.Clone();
            switch (record.GetProperty("event").GetString())
            {
                case "start": starts.Add(record.GetProperty("flow_id").GetString()!, record); break;
                case "end": ends.Add(record.GetProperty("flow_id").GetString()!, record); break;
                case "aggregate": aggregates.Add(record); break;
                default: Assert.Fail("unexpected record: " + line); break;
            }
        }

        // Every written flow is whole: a start and an end, never one without the other.
        Assert.Equal(starts.Keys.Order(), ends.Keys.Order());

        // Every denial is written, start and end, whatever the flood around it.
        var denied = ends.Values.Where(r => r.GetProperty("verdict").GetString() == "deny").ToList();
        Assert.Equal(DeniedFlows, denied.Count);
        Assert.All(denied, r => Assert.Equal("scanner", r.GetProperty("src").GetProperty("pod").GetString()));
        Assert.DoesNotContain(aggregates, a => a.GetProperty("verdict").GetString() == "deny");

        // Nothing silently lost: flows written plus flows folded into aggregates are all the flows of the capture.
        long folded = aggregates.Sum(a => a.GetProperty("flows").GetInt64());
        Assert.Equal(FloodFlows + DeniedFlows + OrdinaryFlows, ends.Count + folded);

        // The flood is one source's aggregates, with what it reached counted.
        var flood = aggregates.Where(a => a.GetProperty("src").GetProperty("namespace").GetString() == "legacy").ToList();
        Assert.All(flood, a => Assert.Equal("rate_limit", a.GetProperty("reason").GetString()));
        long floodFolded = flood.Sum(a => a.GetProperty("flows").GetInt64());
        Assert.True(floodFolded > FloodFlows * 99L / 100, $"{floodFolded:N0} flood flows folded");
        var biggest = flood.MaxBy(a => a.GetProperty("flows").GetInt64());
        long flows = biggest.GetProperty("flows").GetInt64();
        long destinations = biggest.GetProperty("distinct_destinations").GetInt64();
        Assert.InRange(destinations, flows * 95 / 100, flows * 105 / 100);
        Assert.Equal(Ports, biggest.GetProperty("distinct_ports").GetInt64());
        Assert.True(biggest.GetProperty("distinct_estimated").GetBoolean());
        Assert.False(biggest.TryGetProperty("dst", out _), "an aggregate of a million destinations names none of them");

        // The budget: the burst plus the rate over the capture's five seconds of packet time, plus the aggregates.
        double seconds = (ends.Values.Max(r => Time(r)) - StartMicros) / 1e6 + 1;
        Assert.True(records <= Burst + Rate * seconds + aggregates.Count, $"{records:N0} records in {seconds:F1} s of packet time");
        Assert.True(peakMiB < PeakBoundMiB, $"peak resident {peakMiB} MiB, bound {PeakBoundMiB} MiB\n{output}");
        Console.WriteLine($"flood: {records:N0} records ({ends.Count:N0} flows written, {aggregates.Count} aggregates of {folded:N0} flows), peak resident {peakMiB} MiB");
    }

    private static long Time(JsonElement record) =>
        (DateTimeOffset.Parse(record.GetProperty("time").GetString()!, System.Globalization.CultureInfo.InvariantCulture) - DateTimeOffset.UnixEpoch).Ticks / 10;

    private static async Task<(int Exit, string Output)> RunReplayAsync(params string[] arguments)
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
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(5));
        return (process.ExitCode, await stdout + await stderr);
    }

    [GeneratedRegex(@"peak resident (\d+) MiB")]
    private static partial Regex PeakLine();

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
