using System.Globalization;
using System.Text.Json;
using Tripline.Tests.Deploy;

namespace Tripline.Tests.EndToEnd.LiveCapture;

/// <summary>
/// The published executable as the DaemonSet runs it: a non-root user whose only capability is CAP_NET_RAW (every
/// other one dropped from the bounding set, nothing to regain), capturing pod traffic on veths in a network
/// namespace. Needs root (to set that up), iproute2, python3, setpriv (util-linux) and libpcap: without them the test
/// fails, saying what to install.
/// </summary>
[Collection(PublishedAgentCollection.Name)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class CapabilityTests(PublishedAgent published) : IDisposable
{
    private const string Ns = "caps";
    private const int Nobody = 65534;
    private const ulong NetRaw = 1UL << 13;
    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-caps-").FullName;

    [Fact]
    public void Run_AsNonRootWithNetRawOnly_CapturesPodTrafficAndStopsCleanly()
    {
        var missing = TestNode.MissingPrerequisites().ToList();
        if (!File.Exists("/usr/bin/setpriv")) missing.Add("setpriv (apt-get install util-linux)");
        Assert.True(missing.Count == 0, "this test needs: " + string.Join("; ", missing));

        // The unprivileged user must reach the executable and write its flow log.
        for (var dir = new DirectoryInfo(published.Output); dir is not null && dir.FullName != Path.GetTempPath().TrimEnd('/'); dir = dir.Parent)
        {
            File.SetUnixFileMode(dir.FullName, File.GetUnixFileMode(dir.FullName) | UnixFileMode.OtherExecute | UnixFileMode.OtherRead);
        }
        File.SetUnixFileMode(_dir, (UnixFileMode)0b111_111_111);
        File.WriteAllText(Path.Combine(_dir, "cluster.yaml"), Manifests());
        string flowLog = Path.Combine(_dir, "flows.jsonl");

        using var node = new TestNode();
        node.AddPod("a");
        node.AddPod("b");
        var agent = node.Start(node.Namespace, "/usr/bin/setpriv",
            $"--reuid={Nobody} --regid={Nobody} --clear-groups --inh-caps=-all,+net_raw --ambient-caps=-all,+net_raw --bounding-set=-all,+net_raw " +
            $"-- {published.Executable} run --manifests {_dir}/cluster.yaml --flow-log {flowLog} --listen 127.0.0.1:0 --node test-node --interfaces cali*");
        agent.WaitFor("capture ready on 2 interface(s)", TimeSpan.FromSeconds(30));

        // ip netns exec and setpriv both exec: the process started is the agent itself.
        var status = File.ReadAllLines($"/proc/{agent.Process.Id}/status").ToDictionary(l => l[..l.IndexOf(':', StringComparison.Ordinal)], l => l[(l.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim());
        Assert.Equal(Nobody.ToString(CultureInfo.InvariantCulture), status["Uid"].Split('\t')[1]);
        Assert.Equal(NetRaw, ulong.Parse(status["CapEff"], NumberStyles.HexNumber, CultureInfo.InvariantCulture));
        Assert.Equal(NetRaw, ulong.Parse(status["CapBnd"], NumberStyles.HexNumber, CultureInfo.InvariantCulture));

        node.StartInPod("b", "tcp-server", "8080").WaitFor("ready", TimeSpan.FromSeconds(10));
        node.StartInPod("b", "udp-server", "5353").WaitFor("ready", TimeSpan.FromSeconds(10));
        node.RunInPod("a", "tcp-client", $"{node.PodIp("b")} 8080 2");
        node.RunInPod("a", "udp-client", $"{node.PodIp("b")} 5353 1 40000");

        agent.Signal(TestSignals.Term);
        Assert.True(agent.Process.WaitForExit(30_000), "agent still running 30 s after SIGTERM:\n" + agent.Output);
        agent.Process.WaitForExit();
        Assert.True(agent.Process.ExitCode == 0, $"exit {agent.Process.ExitCode}:\n{agent.Output}");
        Assert.DoesNotContain("capture needs", agent.Output, StringComparison.Ordinal);

        var records = File.ReadAllLines(flowLog).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        string log = string.Join('\n', records.Select(r => r.GetRawText()));
        var tcpEnd = records.SingleOrDefault(r => r.GetProperty("event").GetString() == "end" && r.GetProperty("protocol").GetString() == "TCP"
            && r.GetProperty("src").GetProperty("ip").GetString() == node.PodIp("a") && r.GetProperty("dst").GetProperty("port").GetInt32() == 8080);
        Assert.True(tcpEnd.ValueKind == JsonValueKind.Object, "no end record of a's connection to b:8080 in:\n" + log);
        Assert.Equal("fin", tcpEnd.GetProperty("end_reason").GetString());
        Assert.Equal("b", tcpEnd.GetProperty("dst").GetProperty("pod").GetString());
        Assert.True(tcpEnd.GetProperty("packets").GetProperty("sent").GetInt64() >= 5 && tcpEnd.GetProperty("packets").GetProperty("received").GetInt64() >= 4, tcpEnd.GetRawText());
        Assert.Contains(records, r => r.GetProperty("protocol").GetString() == "UDP" && r.GetProperty("src").GetProperty("ip").GetString() == node.PodIp("a")
            && r.GetProperty("dst").GetProperty("port").GetInt32() == 5353);
    }

    private static string Manifests()
    {
        string yaml = $"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {Ns}\n";
        foreach (string pod in new[] { "a", "b" })
        {
            yaml += $"---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {pod}\n  namespace: {Ns}\n  labels:\n    app: {pod}\n"
                + $"spec:\n  nodeName: test-node\n  containers:\n  - name: main\n    image: test\nstatus:\n  phase: Running\n  podIP: {TestNode.Subnet}.{TestNode.HostNumber(pod)}\n";
        }
        return yaml;
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
