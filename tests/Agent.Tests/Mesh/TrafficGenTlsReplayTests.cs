using System.Text;
using System.Text.Json;
using Tripline.Cli;
using Tripline.Records;
using Tripline.TrafficGen;

namespace Tripline.Tests.Mesh;

/// <summary>
/// A capture written by tools/TrafficGen with <c>payload: tls|plain</c>, replayed: the records say <c>tls</c> true or
/// false from the first payload bytes, and leave it out (unknown) when the capture missed the connection's start or
/// when TCP options push the payload past the snap length, whatever that payload was.
/// </summary>
public sealed class TrafficGenTlsReplayTests : IDisposable
{
    private const string Ns = "pay";
    private const string ClientIp = "10.20.0.10";
    private const string ServerIp = "10.20.0.20";
    // 14 + 20 + 32 (timestamps): 14 payload bytes are captured, enough for a record header and a hello's version;
    // with 40 bytes of options the payload starts at 94, past the snap length.
    private const int SnapLength = 80;

    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-mesh-trafficgen-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>One connection of the plan per server port, so each record says which case it is.</summary>
    private static readonly (int Port, string Payload, string? Extra, int Count)[] Cases =
    [
        (8443, "tls", null, 2),
        (8080, "plain", null, 2),
        (9443, "tls", "start: missed", 1),
        (9080, "plain", "start: missed", 1),
        (7443, "tls", "tcp-options: long", 1),
        (7080, "plain", "tcp-options: long", 1),
    ];

    private string WriteManifests()
    {
        string path = Path.Combine(_dir, "cluster.yaml");
        int[] ports = [.. Cases.Select(c => c.Port)];
        File.WriteAllText(path, MeshManifests.Namespace(Ns)
            + MeshManifests.Pod(Ns, "client", ClientIp, sidecar: true, "node-a")
            + MeshManifests.Pod(Ns, "server", ServerIp, sidecar: true, "node-a", ports)
            + MeshManifests.PeerAuthentication(Ns, "default", "STRICT"));
        return path;
    }

    private string WritePlan()
    {
        var plan = new StringBuilder("connections:\n");
        foreach (var (port, payload, extra, count) in Cases)
        {
            plan.Append($"  - from: {Ns}/client-5d8f7c6b9-x0010\n    to: {Ns}/server-5d8f7c6b9-x0020\n    port: {port}\n    payload: {payload}\n    count: {count}\n    packets: 12\n");
            if (extra is not null) plan.Append("    ").Append(extra).Append('\n');
        }
        string path = Path.Combine(_dir, "plan.yaml");
        File.WriteAllText(path, plan.ToString());
        return path;
    }

    private string Generate(string manifests, string plan, ulong seed)
    {
        string pcap = Path.Combine(_dir, $"traffic-{seed}.pcap");
        var log = new StringWriter();
        int code = GeneratorCommand.Run(new GeneratorOptions
        {
            Manifests = [manifests],
            Output = pcap,
            PlanPath = plan,
            Seed = seed,
            SnapLength = SnapLength,
            Noise = 0,
            StartNs = 1_764_100_000L * 1_000_000_000,
        }, log);
        Assert.True(code == 0, log.ToString());
        return pcap;
    }

    private List<JsonElement> Replay(string pcap, string manifests, string name)
    {
        string log = Path.Combine(_dir, name);
        var stderr = new StringWriter();
        int code = ReplayCommand.Run(new ReplayCommand.ReplayOptions([pcap], [manifests], log, "node-a", false, 65_536, 60), new StringWriter(), stderr);
        Assert.True(code == 0, stderr.ToString());
        return [.. File.ReadLines(log).Select(l => JsonDocument.Parse(l).RootElement.Clone())];
    }

    [Theory]
    [InlineData(1UL)]
    [InlineData(7UL)]
    [InlineData(20261208UL)]
    public void Replay_TrafficGenTlsAndPlain_TlsKnownOnlyWhenTheStartAndThePayloadWereSeen(ulong seed)
    {
        string manifests = WriteManifests();
        var records = Replay(Generate(manifests, WritePlan(), seed), manifests, "flows.log");
        string all = string.Join('\n', records.Select(r => r.GetRawText()));
        var ends = records.Where(r => r.GetProperty("event").GetString() == "end").ToList();
        Assert.True(ends.Count == Cases.Sum(c => c.Count), $"expected {Cases.Sum(c => c.Count)} flows:\n{all}");

        foreach (var (port, payload, extra, count) in Cases)
        {
            var flows = ends.Where(r => r.GetProperty("dst").GetProperty("port").GetInt32() == port).ToList();
            Assert.True(flows.Count == count, $"port {port}: {flows.Count} flows, expected {count}:\n{all}");
            foreach (var end in flows)
            {
                Assert.Equal(ClientIp, end.GetProperty("src").GetProperty("ip").GetString());
                // Both pods are meshed, the namespace is STRICT, whatever the wire showed.
                var mesh = end.GetProperty("mesh");
                Assert.True(mesh.GetProperty("src").GetBoolean() && mesh.GetProperty("dst").GetBoolean(), end.GetRawText());
                Assert.Equal("STRICT", mesh.GetProperty("peer_authentication").GetString());
                bool known = end.TryGetProperty("tls", out var tls);
                if (extra is null)
                {
                    Assert.True(known, $"port {port} ({payload}): no tls in {end.GetRawText()}");
                    Assert.Equal(payload == "tls", tls.GetBoolean());
                    if (payload == "tls") Assert.Equal("1.2", end.GetProperty("tls_version").GetString());
                    else Assert.False(end.TryGetProperty("tls_version", out _), end.GetRawText());
                }
                else
                {
                    // The start missed, or the payload cut off: unknown, never false (and never a guess of true).
                    Assert.False(known, $"port {port} ({payload}, {extra}): tls must be unknown, was {end.GetRawText()}");
                    Assert.False(end.TryGetProperty("tls_version", out _), end.GetRawText());
                }
            }
        }
        // A start record knows no payload yet: tls is absent there even for the flows whose end knows it.
        Assert.All(records.Where(r => r.GetProperty("event").GetString() == "start"), r => Assert.False(r.TryGetProperty("tls", out _), r.GetRawText()));
    }

    [Fact]
    public void FlowsTls_OnTheReplayedLog_FalseFindsThePlainFlowsAndTrueTheTlsOnes_UnknownNeither()
    {
        string manifests = WriteManifests();
        var records = Replay(Generate(manifests, WritePlan(), 3), manifests, "flows.log");
        string log = Path.Combine(_dir, "flows.log");
        Assert.NotEmpty(records);

        var plain = Query(log, "false");
        var tls = Query(log, "true");
        Assert.Equal([8080, 8080], plain.Select(Port));
        Assert.Equal([8443, 8443], tls.Select(Port));
        Assert.All(plain, r => Assert.False(r.GetProperty("tls").GetBoolean()));
        Assert.All(tls, r => Assert.True(r.GetProperty("tls").GetBoolean()));
        // Every record of the unknown flows matches neither.
        Assert.DoesNotContain(plain.Concat(tls), r => Port(r) is 9443 or 9080 or 7443 or 7080);
    }

    [Fact]
    public void TrafficGen_SamePlanAndSeed_WritesTheSameBytes_AndTheHelloIsWhereTheContractSays()
    {
        string manifests = WriteManifests(), plan = WritePlan();
        string first = Generate(manifests, plan, 11);
        byte[] bytes = File.ReadAllBytes(first);
        string second = Path.Combine(_dir, "again.pcap");
        File.Move(first, second);
        Assert.Equal(bytes, File.ReadAllBytes(Generate(manifests, plan, 11)));

        // The first client payload to 8443: a ClientHello record (22, 3.1), handshake type 1, client_version 3.3.
        var hello = FirstPayloads(bytes).First(p => p.DestinationPort == 8443);
        Assert.Equal(new byte[] { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03 }, hello.Payload[..11]);
        var serverHello = FirstPayloads(bytes).First(p => p.SourcePort == 8443);
        Assert.Equal(new byte[] { 0x16, 0x03, 0x03, 0x00, 0x7a, 0x02 }, serverHello.Payload[..6]);
        var plainRequest = FirstPayloads(bytes).First(p => p.DestinationPort == 8080);
        Assert.Equal("GET /api/v1", Encoding.ASCII.GetString(plainRequest.Payload[..11]));
    }

    /// <summary>
    /// Ambient: the namespace's label puts pods in the mesh without sidecars; ztunnels speak HBONE (TLS on 15008). A
    /// pod labelled <c>istio.io/dataplane-mode: none</c> is out. No PeerAuthentication: the mode is "none".
    /// </summary>
    [Fact]
    public void Replay_AmbientNamespace_HboneIsTlsAndPlaintextBetweenAmbientPodsIsSeen()
    {
        string manifests = Path.Combine(_dir, "ambient.yaml");
        File.WriteAllText(manifests, MeshManifests.Namespace("amb", "istio.io/dataplane-mode: ambient")
            + MeshManifests.Pod("amb", "x", "10.21.0.10", sidecar: false, "node-a", "istio.io/dataplane-mode: ambient")
            + MeshManifests.Pod("amb", "y", "10.21.0.20", sidecar: false, "node-a", "app.kubernetes.io/part-of: amb", 15008, 8080)
            + MeshManifests.Pod("amb", "z", "10.21.0.30", sidecar: false, "node-a", "istio.io/dataplane-mode: none"));
        string plan = Path.Combine(_dir, "ambient-plan.yaml");
        File.WriteAllText(plan, """
            connections:
              - {from: amb/x-5d8f7c6b9-x1010, to: amb/y-5d8f7c6b9-x1020, port: 15008, payload: tls, count: 2, packets: 12}
              - {from: amb/x-5d8f7c6b9-x1010, to: amb/y-5d8f7c6b9-x1020, port: 8080, payload: plain, count: 1, packets: 12}
              - {from: amb/z-5d8f7c6b9-x1030, to: amb/y-5d8f7c6b9-x1020, port: 8080, payload: plain, count: 1, packets: 12}
            """);
        var ends = Replay(Generate(manifests, plan, 5), manifests, "ambient.log").Where(r => r.GetProperty("event").GetString() == "end").ToList();
        string all = string.Join('\n', ends.Select(r => r.GetRawText()));
        Assert.True(ends.Count == 4, all);

        var hbone = ends.Where(r => Port(r) == 15008).ToList();
        Assert.Equal(2, hbone.Count);
        Assert.All(hbone, r =>
        {
            Assert.True(r.GetProperty("tls").GetBoolean(), r.GetRawText());
            var mesh = r.GetProperty("mesh");
            Assert.True(mesh.GetProperty("src").GetBoolean() && mesh.GetProperty("dst").GetBoolean(), r.GetRawText());
            Assert.Equal("none", mesh.GetProperty("peer_authentication").GetString());
            Assert.True(mesh.TryGetProperty("hbone", out var h) && h.GetBoolean(), "HBONE on 15008 not said: " + r.GetRawText());
        });
        var inside = Assert.Single(ends, r => Port(r) == 8080 && r.GetProperty("src").GetProperty("ip").GetString() == "10.21.0.10");
        Assert.False(inside.GetProperty("tls").GetBoolean());
        Assert.True(inside.GetProperty("mesh").GetProperty("src").GetBoolean() && inside.GetProperty("mesh").GetProperty("dst").GetBoolean(), inside.GetRawText());
        Assert.False(inside.GetProperty("mesh").TryGetProperty("hbone", out _));
        var optedOut = Assert.Single(ends, r => Port(r) == 8080 && r.GetProperty("src").GetProperty("ip").GetString() == "10.21.0.30");
        Assert.False(optedOut.GetProperty("tls").GetBoolean());
        Assert.False(optedOut.GetProperty("mesh").GetProperty("src").GetBoolean(), optedOut.GetRawText());
        Assert.True(optedOut.GetProperty("mesh").GetProperty("dst").GetBoolean(), optedOut.GetRawText());
    }

    private static int Port(JsonElement r) => r.GetProperty("dst").GetProperty("port").GetInt32();

    private static List<JsonElement> Query(string log, string tls)
    {
        using var output = new MemoryStream();
        int code = FlowsCommand.Run(new FlowsCommand.FlowsOptions(log, new FlowFilterOptions { Tls = tls }, "json", false), output, new StringWriter(), TimeProvider.System, CancellationToken.None);
        Assert.Equal(0, code);
        return [.. Encoding.UTF8.GetString(output.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone())];
    }

    /// <summary>Each TCP segment with captured payload in a classic pcap of Ethernet/IPv4 frames, in order.</summary>
    private static List<(int SourcePort, int DestinationPort, byte[] Payload)> FirstPayloads(byte[] pcap)
    {
        var result = new List<(int, int, byte[])>();
        int offset = 24;
        while (offset + 16 <= pcap.Length)
        {
            int captured = BitConverter.ToInt32(pcap, offset + 8);
            var frame = pcap.AsSpan(offset + 16, captured);
            offset += 16 + captured;
            if (frame.Length < 34 || frame[12] != 0x08 || frame[13] != 0x00 || frame[23] != 6) continue;
            int ipHeader = (frame[14] & 0x0F) * 4;
            var tcp = frame[(14 + ipHeader)..];
            int dataOffset = (tcp[12] >> 4) * 4;
            if (tcp.Length <= dataOffset) continue;
            result.Add(((tcp[0] << 8) | tcp[1], (tcp[2] << 8) | tcp[3], tcp[dataOffset..].ToArray()));
        }
        return result;
    }
}
