using System.Text;
using System.Text.Json;

namespace Tripline.Tests.EndToEnd.LiveCapture;

/// <summary>
/// <c>tripline run</c> capturing live on the host-side veths of pods in network namespaces, with real sockets in
/// the pods. The expected packet and byte counts come from the pods' own kernel counters (/proc/net/snmp and
/// /proc/net/netstat of each namespace), not from the agent. Needs root, iproute2, python3 and libpcap: a machine
/// without them fails these tests with what to install, it never skips them.
/// </summary>
[Collection(LiveCaptureCollection.Name)]
public sealed class LiveCaptureEndToEndTests
{
    private const string Ns = "e2e";

    private static void RequirePrerequisites()
    {
        var missing = TestNode.MissingPrerequisites();
        Assert.True(missing.Count == 0, "live-capture end-to-end tests need: " + string.Join("; ", missing));
    }

    [Fact]
    public void Run_PodTrafficOnVeths_EveryConnectionOnceWithKernelCountsOrientationAndVerdict()
    {
        RequirePrerequisites();
        using var node = new TestNode();
        node.AddPod("a");
        node.AddPod("b");
        node.AddPod("c");
        using var agent = new AgentProcess(node, Manifests("a", "b", "c"), "--udp-idle-timeout 2s");
        agent.Process.WaitFor("capture ready on 3 interface(s)", TimeSpan.FromSeconds(30));
        string a = node.PodIp("a"), b = node.PodIp("b"), c = node.PodIp("c");

        node.StartInPod("b", "tcp-server", "8080").WaitFor("ready", TimeSpan.FromSeconds(10));
        node.StartInPod("c", "udp-server", "5353").WaitFor("ready", TimeSpan.FromSeconds(10));

        // TCP, allowed: three request/response rounds, closed with FIN.
        var a0 = node.SettledCounters("a"); var b0 = node.SettledCounters("b");
        node.RunInPod("a", "tcp-client", $"{b} 8080 3");
        var a1 = node.SettledCounters("a"); var b1 = node.SettledCounters("b");
        var tcpSent = a1 - a0; var tcpReceived = b1 - b0;

        // A refused connection: SYN answered by RST.
        node.RunInPod("a", "refused", $"{b} 9999");
        var a2 = node.SettledCounters("a"); var b2 = node.SettledCounters("b");
        var refusedSent = a2 - a1; var refusedReceived = b2 - b1;

        // UDP exchange: three datagrams each way.
        var c2 = node.SettledCounters("c");
        node.RunInPod("a", "udp-client", $"{c} 5353 3 40000");
        var a3 = node.SettledCounters("a"); var c3 = node.SettledCounters("c");
        var udpSent = a3 - a2; var udpReceived = c3 - c2;

        // TCP from c to b: the policy on b admits only a, so this connection is judged a denial.
        node.RunInPod("c", "tcp-client", $"{b} 8080 1");
        var c4 = node.SettledCounters("c"); var b4 = node.SettledCounters("b");
        var deniedSent = c4 - c3;

        // A UDP conversation that falls silent past its idle timeout, then resumes on the same ports: two flows.
        node.RunInPod("a", "udp-client", $"{c} 5353 2 40001");
        agent.WaitForRecords(r => Flows(r, "UDP", a, c, 5353, 40001).Any(f => f.End is not null), TimeSpan.FromSeconds(20), "idle end of the first UDP conversation");
        node.RunInPod("a", "udp-client", $"{c} 5353 2 40001");

        // A connection still open when the agent stops ends with end_reason shutdown.
        var hold = node.StartInPod("a", "tcp-hold", $"{b} 8080 1");
        hold.WaitFor("holding", TimeSpan.FromSeconds(10));
        agent.WaitForRecords(r => Flows(r, "TCP", a, b, 8080, null).Count == 2, TimeSpan.FromSeconds(20), "start of the held connection");

        Assert.Equal(0, agent.Stop());
        var records = agent.Records();
        string log = string.Join('\n', records.Select(r => r.GetRawText()));

        var tcp = Assert.Single(Flows(records, "TCP", a, b, 8080, null), f => f.End?.GetProperty("end_reason").GetString() == "fin");
        AssertFlow(tcp, "fin", "allow", (tcpSent.TcpOutSegs, tcpReceived.TcpOutSegs), (tcpSent.IpOutOctets, tcpReceived.IpOutOctets), log);
        Assert.Equal("observed", tcp.Start.GetProperty("initiator").GetString());

        var held = Assert.Single(Flows(records, "TCP", a, b, 8080, null), f => f.End?.GetProperty("end_reason").GetString() == "shutdown");
        Assert.Equal("allow", held.End!.Value.GetProperty("verdict").GetString());

        var refused = Assert.Single(Flows(records, "TCP", a, b, 9999, null));
        AssertFlow(refused, "rst", "allow", (refusedSent.TcpOutSegs, refusedReceived.TcpOutSegs), (refusedSent.IpOutOctets, refusedReceived.IpOutOctets), log);
        Assert.Equal((1L, 1L), (refusedSent.TcpOutSegs, refusedReceived.TcpOutSegs));

        var udp = Assert.Single(Flows(records, "UDP", a, c, 5353, 40000));
        AssertFlow(udp, "idle", "allow", (udpSent.UdpOutDatagrams, udpReceived.UdpOutDatagrams), (udpSent.IpOutOctets, udpReceived.IpOutOctets), log);
        Assert.Equal((3L, 3L), (udpSent.UdpOutDatagrams, udpReceived.UdpOutDatagrams));
        Assert.Equal((3L * (20 + 8 + 60), 3L * (20 + 8 + 150)), (udpSent.IpOutOctets, udpReceived.IpOutOctets));

        var denied = Assert.Single(Flows(records, "TCP", c, b, 8080, null));
        Assert.Equal("deny", denied.End!.Value.GetProperty("verdict").GetString());
        Assert.Equal(deniedSent.TcpOutSegs, denied.End.Value.GetProperty("packets").GetProperty("sent").GetInt64());
        Assert.Contains($"{Ns}/b-from-a", denied.End.Value.GetProperty("ingress").GetRawText(), StringComparison.Ordinal);

        var resumed = Flows(records, "UDP", a, c, 5353, 40001);
        Assert.Equal(2, resumed.Count);
        Assert.NotEqual(resumed[0].Id, resumed[1].Id);
        Assert.All(resumed, f => Assert.Equal((2L, 2L), Packets(f.End!.Value)));
        Assert.Equal("idle", resumed[0].End!.Value.GetProperty("end_reason").GetString());

        // Nothing else: every connection above once, and no flow the pods did not make.
        Assert.True(Flows(records).Count == 7, "expected 7 flows:\n" + log);
        // Both veths saw the pod-to-pod packets; the record names both and counted them once.
        var interfaces = InterfacesOf(tcp.End!.Value);
        Assert.Contains(node.HostInterface("a"), interfaces);
        Assert.Contains(node.HostInterface("b"), interfaces);
    }

    [Fact]
    public void Run_PodsComeAndGo_NewVethCapturedWithinSecondsAndVanishedOneReleased()
    {
        RequirePrerequisites();
        using var node = new TestNode();
        using var agent = new AgentProcess(node, Manifests("a", "b", "d"), "--udp-idle-timeout 30s");

        // No pod yet: the agent serves health and says what it waits for.
        agent.Process.WaitFor("no interface matches cali*", TimeSpan.FromSeconds(30));
        Assert.Equal(200, agent.Get("/healthz").Status);
        var (status, body) = agent.Get("/readyz");
        Assert.Equal(503, status);
        Assert.Contains("no interface matches cali*", body, StringComparison.Ordinal);

        var t0 = DateTime.UtcNow;
        node.AddPod("a");
        node.AddPod("b");
        var seenA = agent.Process.WaitFor("capturing on " + node.HostInterface("a"), TimeSpan.FromSeconds(10));
        var seenB = agent.Process.WaitFor("capturing on " + node.HostInterface("b"), TimeSpan.FromSeconds(10));
        Assert.True((seenA - t0).TotalSeconds < 3 && (seenB - t0).TotalSeconds < 3, $"new veths captured after {(seenA - t0).TotalSeconds:F1} s and {(seenB - t0).TotalSeconds:F1} s");
        Assert.Equal(200, agent.Get("/readyz").Status);
        string a = node.PodIp("a"), b = node.PodIp("b");

        node.StartInPod("a", "udp-server", "5353").WaitFor("ready", TimeSpan.FromSeconds(10));
        var b0 = node.SettledCounters("b");
        var stream = node.StartInPod("b", "udp-stream", $"{a} 5353 41000");
        stream.WaitFor("streaming", TimeSpan.FromSeconds(10));

        // A pod added while traffic flows.
        var t1 = DateTime.UtcNow;
        node.AddPod("d");
        var seenD = agent.Process.WaitFor("capturing on " + node.HostInterface("d"), TimeSpan.FromSeconds(10));
        Assert.True((seenD - t1).TotalSeconds < 3, $"new veth captured after {(seenD - t1).TotalSeconds:F1} s");
        string d = node.PodIp("d");
        node.RunInPod("d", "udp-client", $"{a} 5353 3 42000");

        // A pod deleted mid-flow: its veth vanishes under the capture, the other interfaces go on.
        agent.WaitForRecords(r => Flows(r, "UDP", b, a, 5353, 41000).Count == 1, TimeSpan.FromSeconds(20), "start of the streaming flow");
        node.DeletePodLink("b");
        // Released as vanished, or as failed when the read error comes before sysfs forgets the name.
        agent.Process.WaitFor($"released {node.HostInterface("b")}: ", TimeSpan.FromSeconds(5));
        stream.Process.Kill();
        stream.Process.WaitForExit();
        var streamSent = node.SettledCounters("b") - b0;
        node.RunInPod("d", "udp-client", $"{a} 5353 2 42001");
        agent.WaitForRecords(r => Flows(r, "UDP", d, a, 5353, 42001).Count == 1, TimeSpan.FromSeconds(20), "flow after the deletion");

        Assert.Equal(0, agent.Stop());
        Assert.Single(agent.Process.Lines, l => l.Line.Contains("capturing on " + node.HostInterface("b"), StringComparison.Ordinal));
        var records = agent.Records();
        string log = string.Join('\n', records.Select(r => r.GetRawText()));

        var added = Assert.Single(Flows(records, "UDP", d, a, 5353, 42000));
        Assert.Equal((3L, 3L), Packets(added.End!.Value));
        var names = InterfacesOf(added.End.Value);
        Assert.Contains(node.HostInterface("d"), names);
        Assert.Contains(node.HostInterface("a"), names);

        var after = Assert.Single(Flows(records, "UDP", d, a, 5353, 42001));
        Assert.Equal((2L, 2L), Packets(after.End!.Value));

        var streamed = Assert.Single(Flows(records, "UDP", b, a, 5353, 41000));
        long counted = streamed.End!.Value.GetProperty("packets").GetProperty("sent").GetInt64();
        // Packets still in the vanished veth's last, unfinished kernel block can be lost with it (20 ms apart, a
        // 100 ms block timeout: at most a handful); none may be counted twice.
        Assert.True(counted <= streamSent.UdpOutDatagrams && counted >= streamSent.UdpOutDatagrams - 10,
            $"streamed flow counted {counted} of {streamSent.UdpOutDatagrams} datagrams sent:\n{log}");
        Assert.Equal("shutdown", streamed.End.Value.GetProperty("end_reason").GetString());
    }

    internal sealed record Flow(string Id, JsonElement Start, JsonElement? End, int Records);

    private static List<Flow> Flows(List<JsonElement> records, string? protocol = null, string? src = null, string? dst = null, int? dport = null, int? sport = null)
    {
        var result = new List<Flow>();
        foreach (var group in records.GroupBy(r => r.GetProperty("flow_id").GetString()!))
        {
            var first = group.First();
            if (protocol is not null && first.GetProperty("protocol").GetString() != protocol) continue;
            if (src is not null && first.GetProperty("src").GetProperty("ip").GetString() != src) continue;
            if (dst is not null && first.GetProperty("dst").GetProperty("ip").GetString() != dst) continue;
            if (dport is not null && first.GetProperty("dst").GetProperty("port").GetInt32() != dport) continue;
            if (sport is not null && first.GetProperty("src").GetProperty("port").GetInt32() != sport) continue;
            var starts = group.Where(r => r.GetProperty("event").GetString() == "start").ToList();
            var ends = group.Where(r => r.GetProperty("event").GetString() == "end").ToList();
            Assert.True(starts.Count == 1 && ends.Count <= 1, $"flow {group.Key}: {starts.Count} start and {ends.Count} end records");
            result.Add(new Flow(group.Key, starts[0], ends.Count == 1 ? ends[0] : null, group.Count()));
        }
        return [.. result.OrderBy(f => f.Start.GetProperty("time").GetString(), StringComparer.Ordinal)];
    }

    private static (long Sent, long Received) Packets(JsonElement record)
    {
        var p = record.GetProperty("packets");
        return (p.GetProperty("sent").GetInt64(), p.GetProperty("received").GetInt64());
    }

    private static List<string> InterfacesOf(JsonElement record)
    {
        var names = new List<string> { record.GetProperty("interface").GetString()! };
        if (record.TryGetProperty("interfaces", out var list)) names.AddRange(list.EnumerateArray().Select(e => e.GetString()!));
        return names;
    }

    private static void AssertFlow(Flow flow, string endReason, string verdict, (long Sent, long Received) packets, (long Sent, long Received) bytes, string log)
    {
        Assert.True(flow.End is not null, $"flow {flow.Id} has no end record:\n{log}");
        var end = flow.End!.Value;
        Assert.Equal(endReason, end.GetProperty("end_reason").GetString());
        Assert.Equal(verdict, end.GetProperty("verdict").GetString());
        Assert.True(packets == Packets(end), $"flow {flow.Id}: packets {Packets(end)}, the pods' kernels counted {packets}:\n{log}");
        var b = end.GetProperty("bytes");
        Assert.Equal(bytes, (b.GetProperty("sent").GetInt64(), b.GetProperty("received").GetInt64()));
        Assert.Equal("pod", end.GetProperty("src").GetProperty("kind").GetString());
        Assert.Equal("pod", end.GetProperty("dst").GetProperty("kind").GetString());
    }

    /// <summary>Pods <paramref name="pods"/> in namespace e2e, labelled app=&lt;name&gt;; b admits ingress only from a.</summary>
    private static string Manifests(params string[] pods)
    {
        var yaml = new StringBuilder();
        yaml.Append("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ").Append(Ns).Append("\n  labels:\n    kubernetes.io/metadata.name: ").Append(Ns).Append('\n');
        foreach (string pod in pods)
        {
            yaml.Append($"---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {pod}\n  namespace: {Ns}\n  uid: 00000000-0000-0000-0000-0000000000{TestNode.HostNumber(pod)}\n")
                .Append($"  creationTimestamp: \"2020-01-01T00:00:00Z\"\n  labels:\n    app: {pod}\nspec:\n  nodeName: test-node\n  containers:\n  - name: main\n    image: test\n")
                .Append($"status:\n  phase: Running\n  podIP: {TestNode.Subnet}.{TestNode.HostNumber(pod)}\n");
        }
        yaml.Append($"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: b-from-a\n  namespace: {Ns}\n")
            .Append("spec:\n  podSelector:\n    matchLabels:\n      app: b\n  policyTypes: [Ingress]\n  ingress:\n  - from:\n    - podSelector:\n        matchLabels:\n          app: a\n");
        return yaml.ToString();
    }
}

/// <summary>The live tests share the machine's namespaces and CPU: they run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class LiveCaptureCollection
{
    public const string Name = "live capture";
}
