using System.Globalization;
using System.Text.RegularExpressions;
using Tripline.Tests.Correlation.Kubernetes;
using Tripline.Tests.EndToEnd.LiveCapture;

namespace Tripline.Tests.EndToEnd.Stop;

/// <summary>
/// One node (a bridge in a network namespace, pods a, b and c on veths named cali…), an API server the node reaches
/// over an uplink, and traffic that never stops: a connects to b's server again and again and prints each connection;
/// c holds one connection to b and talks on it. The published agent is started and stopped on it as often as a test
/// wants, each time with a flow-log directory of its own unless given one.
/// </summary>
internal sealed partial class StopScenario : IAsyncDisposable
{
    private readonly TestNode _node;
    private readonly TestApiServer _server;
    private readonly RunningProcess _client;
    private readonly string _executable;
    private readonly string _kubeconfig;
    private readonly string _scratch = Directory.CreateTempSubdirectory("tripline-stop-").FullName;

    private StopScenario(TestNode node, TestApiServer server, RunningProcess client, int chattyPort, string executable)
    {
        _node = node;
        _server = server;
        _client = client;
        ChattyPort = chattyPort;
        _executable = executable;
        _kubeconfig = server.WriteKubeconfig();
    }

    /// <summary>Source port of c's held connection to b.</summary>
    public int ChattyPort { get; }

    public static void RequirePrerequisites()
    {
        var missing = TestNode.MissingPrerequisites();
        Assert.True(missing.Count == 0, "stop tests run the agent on a node of network namespaces and need: " + string.Join("; ", missing));
    }

    public static async Task<StopScenario> StartAsync(string executable)
    {
        var node = new TestNode();
        try
        {
            node.AddPod("a");
            node.AddPod("b");
            node.AddPod("c");
            var uplink = node.AddUplink();
            var server = await TestApiServer.StartAsync(address: uplink);
            var store = server.Store;
            store.Apply(K8sObjects.Namespace("shop"));
            store.Apply(K8sObjects.Node("stop-node", "198.18.77.1"));
            foreach (string pod in new[] { "a", "b", "c" })
            {
                store.Apply(K8sObjects.Pod("shop", pod, node.PodIp(pod), new Dictionary<string, string> { ["app"] = pod }, node: "stop-node"));
            }
            // b admits only a: c's connection is a denial, a's are allowed.
            store.Apply(K8sObjects.DenyAll("shop"));
            store.Apply(new k8s.Models.V1NetworkPolicy
            {
                ApiVersion = "networking.k8s.io/v1",
                Kind = "NetworkPolicy",
                Metadata = new k8s.Models.V1ObjectMeta { Name = "a-to-b", NamespaceProperty = "shop", Uid = Guid.NewGuid().ToString() },
                Spec = new k8s.Models.V1NetworkPolicySpec
                {
                    PodSelector = new k8s.Models.V1LabelSelector(),
                    PolicyTypes = ["Ingress", "Egress"],
                    Ingress = [new k8s.Models.V1NetworkPolicyIngressRule { FromProperty = [new k8s.Models.V1NetworkPolicyPeer { PodSelector = new k8s.Models.V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["app"] = "a" } } }] }],
                    Egress = [new k8s.Models.V1NetworkPolicyEgressRule { To = [new k8s.Models.V1NetworkPolicyPeer { PodSelector = new k8s.Models.V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["app"] = "b" } } }] }],
                },
            });
            node.StartInPod("b", "tcp-server", "8080").WaitFor("ready", TimeSpan.FromSeconds(10));
            var chatty = node.StartInPod("c", "tcp-chatty", $"{node.PodIp("b")} 8080 200");
            chatty.WaitFor("chatting", TimeSpan.FromSeconds(10));
            int chattyPort = int.Parse(chatty.Lines.First(l => l.Line.StartsWith("chatting ", StringComparison.Ordinal)).Line["chatting ".Length..], CultureInfo.InvariantCulture);
            var client = node.StartInPod("a", "tcp-loop", $"{node.PodIp("b")} 8080 40");
            client.WaitFor("looping", TimeSpan.FromSeconds(10));
            return new StopScenario(node, server, client, chattyPort, executable);
        }
        catch
        {
            node.Dispose();
            throw;
        }
    }

    public string NewFlowLogDirectory() => Directory.CreateDirectory(Path.Combine(_scratch, "log-" + Guid.NewGuid().ToString("N")[..8])).FullName;

    /// <summary>Starts the agent, waits for <paramref name="moment"/> and then <paramref name="after"/>, signals it, and waits for its exit.</summary>
    public async Task<StopRun> RunOnceAsync(StopMoment moment, TimeSpan after, bool kill, string? flowLogDirectory = null)
    {
        string directory = flowLogDirectory ?? NewFlowLogDirectory();
        string size = moment == StopMoment.Rotating ? "4K" : "100M";
        if (moment == StopMoment.BeforeSync) _server.HoldLists(ApiResource.NetworkPolicies);
        var agent = _node.Start(_node.Namespace, _executable,
            $"run --kubeconfig {_kubeconfig} --interfaces cali* --flow-log {directory} --flow-log-max-size {size} --flow-log-max-files 100000 " +
            $"--flow-log-max-total 10G --listen 127.0.0.1:0 --node stop-node --log-level debug");
        var started = DateTime.UtcNow;
        DateTime ready = started;
        try
        {
            // During start-up: as soon as the agent says it runs, before it lists the cluster or captures.
            agent.WaitFor("starting (pid", TimeSpan.FromSeconds(30));
            if (moment != StopMoment.StartUp)
            {
                ready = agent.WaitFor("capture ready on", TimeSpan.FromSeconds(30));
                await Task.Delay(after);
            }
            var signalledAt = DateTime.UtcNow;
            agent.Signal(kill ? 9 : TestSignals.Term);
            bool exited = agent.Process.WaitForExit(30_000);
            double stopSeconds = (DateTime.UtcNow - signalledAt).TotalSeconds;
            if (!exited) agent.Process.Kill();
            agent.Process.WaitForExit();
            Assert.True(exited, $"the agent was still running 30 s after the signal:\n{agent.Output}");
            // Connections the client finished (or began) after the capture was ready and before the signal.
            var connections = Connections(_client).Where(c => c.Start > ready.AddMilliseconds(200)).ToList();
            long written = StoppedLine().Match(agent.Output) is { Success: true } m ? long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : -1;
            return new StopRun(
                agent.Process.ExitCode,
                agent.Output,
                directory,
                stopSeconds,
                signalledAt - ready,
                signalledAt,
                written,
                [.. connections.Where(c => c.End < signalledAt)],
                [.. connections.Where(c => c.Start < signalledAt)]);
        }
        finally
        {
            if (moment == StopMoment.BeforeSync) _server.ReleaseLists(ApiResource.NetworkPolicies);
            if (!agent.Process.HasExited) agent.Process.Kill();
        }
    }

    /// <summary>The client's "conn PORT START END" lines.</summary>
    private static IEnumerable<ClientConnection> Connections(RunningProcess client)
    {
        foreach (var (_, line) in client.Lines)
        {
            if (!line.StartsWith("conn ", StringComparison.Ordinal)) continue;
            string[] parts = line.Split(' ');
            yield return new ClientConnection(
                int.Parse(parts[1], CultureInfo.InvariantCulture),
                DateTime.UnixEpoch.AddSeconds(double.Parse(parts[2], CultureInfo.InvariantCulture)),
                DateTime.UnixEpoch.AddSeconds(double.Parse(parts[3], CultureInfo.InvariantCulture)));
        }
    }

    [GeneratedRegex(@"stopped \([A-Za-z]+\) in [0-9.]+ s; \d+ flows ended, (\d+) flow-log records written")]
    private static partial Regex StoppedLine();

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        _node.Dispose();
        try
        {
            Directory.Delete(_scratch, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
