using Tripline.Cli;
using Tripline.Tests.Support;

namespace Tripline.Tests.EndToEnd;

[CollectionDefinition(nameof(AllocationMeasurements), DisableParallelization = true)]
public sealed class AllocationMeasurements;

/// <summary>
/// The packet path allocates nothing: the same flows replayed with ten times as many packets per flow allocate
/// the same bytes, up to a small constant. Per-flow work (lookup, verdict, record) is the same in both runs.
/// </summary>
[Collection(nameof(AllocationMeasurements))]
public sealed class ReplayAllocationTests : IDisposable
{
    private const int Flows = 1000;
    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-alloc-").FullName;

    private const string Manifests = """
        apiVersion: v1
        kind: Namespace
        metadata: { name: shop, labels: { team: shop } }
        ---
        apiVersion: v1
        kind: Pod
        metadata: { name: web, namespace: shop, uid: u1, labels: { app: web } }
        spec: { containers: [ { name: web, ports: [ { containerPort: 8080, name: http } ] } ] }
        status: { phase: Running, podIPs: [ { ip: 10.1.0.10 } ] }
        ---
        apiVersion: v1
        kind: Pod
        metadata: { name: client, namespace: shop, uid: u2, labels: { app: client } }
        status: { phase: Running, podIPs: [ { ip: 10.1.0.20 } ] }
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: { name: web-ingress, namespace: shop }
        spec:
          podSelector: { matchLabels: { app: web } }
          ingress: [ { from: [ { podSelector: { matchLabels: { app: client } } } ], ports: [ { port: http } ] } ]
        """;

    private string WriteCapture(string name, int dataPacketsPerFlow)
    {
        string path = Path.Combine(_dir, name);
        using var pcap = new TestPcap(File.Create(path));
        long t = 1_764_100_000_000_000;
        uint web = TestPcap.Ip("10.1.0.10"), client = TestPcap.Ip("10.1.0.20"), outsider = TestPcap.Ip("10.9.0.1");
        for (int f = 0; f < Flows; f++)
        {
            uint source = f % 4 == 0 ? outsider : client;
            ushort port = (ushort)(20000 + f);
            pcap.Write(t++, TestPcap.Tcp(source, port, web, 8080, 0x02));
            pcap.Write(t++, TestPcap.Tcp(web, 8080, source, port, 0x12));
            for (int i = 0; i < dataPacketsPerFlow; i++)
            {
                pcap.Write(t++, (i & 1) == 0 ? TestPcap.Tcp(source, port, web, 8080, 0x18, 100) : TestPcap.Tcp(web, 8080, source, port, 0x10));
            }
            pcap.Write(t++, TestPcap.Tcp(source, port, web, 8080, 0x11));
            pcap.Write(t++, TestPcap.Tcp(web, 8080, source, port, 0x11));
            pcap.Write(t++, TestPcap.Tcp(source, port, web, 8080, 0x10));
        }
        return path;
    }

    private (long Bytes, int Gen0) Replay(string pcap)
    {
        string manifests = Path.Combine(_dir, "cluster.yaml");
        var options = new ReplayCommand.ReplayOptions([pcap], [manifests], Path.Combine(_dir, "flows.jsonl"), "node-a", FailOnDeny: false, MaxFlows: 65_536, UpdateIntervalSeconds: 60);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        int gen0 = GC.CollectionCount(0);
        long before = GC.GetTotalAllocatedBytes(precise: true);
        int exit = ReplayCommand.Run(options, stdout, stderr);
        long after = GC.GetTotalAllocatedBytes(precise: true);
        Assert.True(exit == 0, $"replay failed ({exit}): {stderr}");
        return (after - before, GC.CollectionCount(0) - gen0);
    }

    [Fact]
    public void Replay_TenTimesThePacketsPerFlow_AllocatesTheSameBytes()
    {
        File.WriteAllText(Path.Combine(_dir, "cluster.yaml"), Manifests);
        string few = WriteCapture("few.pcap", dataPacketsPerFlow: 10);
        string many = WriteCapture("many.pcap", dataPacketsPerFlow: 100);

        // Warm up: JIT, static tables, the verdict cache and the file system caches.
        Replay(few);
        Replay(many);

        var (fewBytes, fewGen0) = Replay(few);
        var (manyBytes, manyGen0) = Replay(many);
        const int extraPackets = Flows * 90;

        // A single byte per packet would show as 90 KB; allow a small constant for timers and thread start-up.
        Assert.True(Math.Abs(manyBytes - fewBytes) < 48 * 1024,
            $"allocated {fewBytes:N0} bytes for {Flows} flows with 15 packets each, {manyBytes:N0} with 105: {(manyBytes - fewBytes) / (double)extraPackets:F2} bytes per extra packet");
        Assert.True(manyGen0 <= fewGen0 + 1, $"gen0 collections: {fewGen0} with few packets, {manyGen0} with many");
        string log = File.ReadAllText(Path.Combine(_dir, "flows.jsonl"));
        Assert.Equal(2 * Flows, log.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
