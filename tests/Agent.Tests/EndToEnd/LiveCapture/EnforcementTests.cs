using System.Text;
using System.Text.Json;

namespace Tripline.Tests.EndToEnd.LiveCapture;

/// <summary>
/// Whether each verdict was enforced, read from real traffic (issue 15): a bridge "node" whose nftables rules play an
/// enforcing CNI for some pods and a lagging one for an allowed flow, while nothing guards another denied pod. The
/// agent captures every pod's veth and must say enforced, not_enforced, dropped and delivered where each happened.
/// </summary>
[Collection(LiveCaptureCollection.Name)]
public sealed class EnforcementTests
{
    private const string Ns = "enf";

    [Fact]
    public void Run_CniThatEnforcesForSomePodsAndDropsAnAllowedFlow_EveryFlowSaysWhatTheNetworkDid()
    {
        var missing = TestNode.MissingPrerequisites().ToList();
        if (!File.Exists("/usr/sbin/nft")) missing.Add("nft (apt-get install -y nftables)");
        Assert.True(missing.Count == 0, "enforcement end-to-end tests need: " + string.Join("; ", missing));
        using var node = new TestNode();
        foreach (string pod in new[] { "a", "b", "c", "d", "e" }) node.AddPod(pod);
        string a = node.PodIp("a"), b = node.PodIp("b"), c = node.PodIp("c"), d = node.PodIp("d"), e = node.PodIp("e");
        // The "CNI": on the bridge, it drops what reaches b (which it enforces) and, lagging, d's allowed port.
        TestNode.Run("ip", $"netns exec {node.Namespace} nft -f -", $$"""
            table bridge tripline_cni {
              chain forward {
                type filter hook forward priority 0; policy accept;
                ip daddr {{b}} drop
                ip daddr {{d}} tcp dport 8080 drop
              }
            }
            """);
        using var agent = new AgentProcess(node, Manifests("a", "b", "c", "d", "e"), "--udp-idle-timeout 2s");
        agent.Process.WaitFor("capture ready on 5 interface(s)", TimeSpan.FromSeconds(30));
        foreach (string pod in new[] { "b", "c", "d", "e" }) node.StartInPod(pod, "tcp-server", "8080").WaitFor("ready", TimeSpan.FromSeconds(10));
        node.StartInPod("c", "udp-server", "5353").WaitFor("ready", TimeSpan.FromSeconds(10));

        // Denied and dropped by the CNI: the kernel sends the SYN three times within 4 s, then gives up.
        Assert.Contains("timeout", node.RunInPod("a", "try-connect", $"{b} 8080 4"), StringComparison.Ordinal);
        // Denied, but nothing enforces c's policy: the connection is made.
        Assert.Contains("connected", node.RunInPod("a", "try-connect", $"{c} 8080 4"), StringComparison.Ordinal);
        // Allowed, but the lagging CNI drops it.
        Assert.Contains("timeout", node.RunInPod("a", "try-connect", $"{d} 8080 4"), StringComparison.Ordinal);
        // Allowed and answered.
        Assert.Contains("connected", node.RunInPod("a", "try-connect", $"{e} 8080 4"), StringComparison.Ordinal);
        // UDP that expects no answer: denied to b (dropped on the bridge) and to c (nothing stops it, c answers).
        node.RunInPod("a", "udp-send", $"{b} 5353 2 41000");
        node.RunInPod("a", "udp-send", $"{c} 5353 2 41001");
        agent.WaitForRecords(r => r.Count(x => x.GetProperty("protocol").GetString() == "UDP" && x.GetProperty("event").GetString() == "end") >= 2,
            TimeSpan.FromSeconds(20), "idle ends of the UDP flows");

        Assert.Equal(0, agent.Stop());
        var records = agent.Records();
        string log = string.Join('\n', records.Select(r => r.GetRawText()));
        string Enforcement(string protocol, string dst, int port)
        {
            var end = records.Where(r => r.GetProperty("event").GetString() == "end" && r.GetProperty("protocol").GetString() == protocol
                && r.GetProperty("src").GetProperty("ip").GetString() == a && r.GetProperty("dst").GetProperty("ip").GetString() == dst
                && r.GetProperty("dst").GetProperty("port").GetInt32() == port).ToList();
            Assert.True(end.Count == 1, $"{protocol} {a} -> {dst}:{port}: {end.Count} end records\n{log}");
            return end[0].GetProperty("verdict").GetString() + "/" + end[0].GetProperty("enforcement").GetString();
        }

        Assert.Equal("deny/enforced", Enforcement("TCP", b, 8080));
        Assert.Equal("deny/not_enforced", Enforcement("TCP", c, 8080));
        Assert.Equal("allow/dropped", Enforcement("TCP", d, 8080));
        Assert.Equal("allow/delivered", Enforcement("TCP", e, 8080));
        // One-way UDP: the same-node rule decides by whether the datagrams reached the destination's veth.
        Assert.Equal("deny/enforced", Enforcement("UDP", b, 5353));
        Assert.Equal("deny/not_enforced", Enforcement("UDP", c, 5353));

        // The blocked SYNs were retransmitted, and seen only on a's veth.
        var blocked = records.Single(r => r.GetProperty("event").GetString() == "end" && r.GetProperty("dst").GetProperty("ip").GetString() == b && r.GetProperty("protocol").GetString() == "TCP");
        Assert.True(blocked.GetProperty("packets").GetProperty("sent").GetInt64() >= 3, log);
        Assert.Equal(0, blocked.GetProperty("packets").GetProperty("received").GetInt64());
        Assert.False(blocked.TryGetProperty("interfaces", out _), "the dropped SYNs must not appear on b's veth:\n" + log);
    }

    /// <summary>Five pods on node test-node; b and c are isolated for ingress with no rule (deny all), d and e admit a.</summary>
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
        yaml.Append($"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: locked\n  namespace: {Ns}\n")
            .Append("spec:\n  podSelector:\n    matchExpressions:\n    - {key: app, operator: In, values: [b, c]}\n  policyTypes: [Ingress]\n");
        yaml.Append($"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: from-a\n  namespace: {Ns}\n")
            .Append("spec:\n  podSelector:\n    matchExpressions:\n    - {key: app, operator: In, values: [d, e]}\n  policyTypes: [Ingress]\n  ingress:\n  - from:\n    - podSelector:\n        matchLabels:\n          app: a\n");
        return yaml.ToString();
    }
}
