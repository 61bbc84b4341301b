using System.Text.Json;
using Microsoft.Extensions.Logging;
using Tripline.Cli;
using Tripline.Hosting;
using Tripline.Tests.Correlation.Kubernetes;
using Tripline.Tests.Support;

namespace Tripline.Tests.EndToEnd;

/// <summary>
/// <c>tripline run --kubeconfig</c> against the in-process API server, packets from a capture: the production path
/// from the kubeconfig through list/watch to judged records, including a late first list.
/// </summary>
public sealed class RunWithApiServerTests : IAsyncDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-run-api-").FullName;
    private TestApiServer? _server;

    [Fact]
    public async Task Run_PoliciesListedLate_FlowsWaitForTheWholeStateAndAreJudgedByIt()
    {
        _server = await TestApiServer.StartAsync();
        var store = _server.Store;
        store.Apply(K8sObjects.Namespace("shop", new Dictionary<string, string> { ["team"] = "shop" }));
        store.Apply(K8sObjects.Node("node-a", "192.168.1.10"));
        store.Apply(K8sObjects.Pod("shop", "client", "10.244.0.3", new Dictionary<string, string> { ["app"] = "client" }));
        store.Apply(K8sObjects.Pod("shop", "web", "10.244.0.2", new Dictionary<string, string> { ["app"] = "web" }));
        store.Apply(K8sObjects.DenyAll("shop"));
        // Policies are listed last: until then an empty policy set would allow everything, which must not be written.
        _server.HoldLists(ApiResource.NetworkPolicies);

        string pcap = Path.Combine(_dir, "traffic.pcap");
        TestPcap.WriteConnection(pcap, "10.244.0.3", 40000, "10.244.0.2", 8080);
        string flowLog = Path.Combine(_dir, "flows.log");
        var options = new AgentOptions
        {
            Kubeconfig = _server.WriteKubeconfig(),
            Pcaps = [pcap],
            FlowLog = flowLog,
            Listen = "127.0.0.1:0",
            Node = "node-a",
            FlushInterval = TimeSpan.FromMilliseconds(200),
        };
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var run = RunCommand.RunAsync(options, LogLevel.Warning, stop.Token);

        // The capture is read at once; its flow is held while the policies are not listed.
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.False(run.IsCompleted, "the agent stopped before it was asked to");
        Assert.Empty(ReadRecords(flowLog));
        _server.ReleaseLists(ApiResource.NetworkPolicies);

        List<JsonElement> records = [];
        for (var waited = TimeSpan.Zero; waited < TimeSpan.FromSeconds(30) && records.Count < 2; waited += TimeSpan.FromMilliseconds(100))
        {
            await Task.Delay(100);
            records = ReadRecords(flowLog);
        }
        await stop.CancelAsync();
        Assert.Equal(ExitCodes.Success, await run);

        Assert.Equal(["start", "end"], records.Select(r => r.GetProperty("event").GetString()!).ToArray());
        foreach (var record in records)
        {
            Assert.Equal("deny", record.GetProperty("verdict").GetString());
            Assert.False(record.TryGetProperty("cluster_synced", out _), "a record was written before the state was whole");
            Assert.Equal("client", record.GetProperty("src").GetProperty("pod").GetString());
            Assert.Equal("web", record.GetProperty("dst").GetProperty("pod").GetString());
            Assert.Equal("observed", record.GetProperty("initiator").GetString());
            Assert.Contains("shop/deny-all", record.GetProperty("ingress").GetProperty("policies").EnumerateArray().Select(p => p.GetString()));
            Assert.Contains("shop/deny-all", record.GetProperty("egress").GetProperty("policies").EnumerateArray().Select(p => p.GetString()));
        }
        // Both FINs were seen: the flow ended by its close, even though the capture ended before the linger ran out.
        Assert.Equal("fin", records[1].GetProperty("end_reason").GetString());
    }

    private static List<JsonElement> ReadRecords(string path)
    {
        if (!File.Exists(path)) return [];
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        var records = new List<JsonElement>();
        while (reader.ReadLine() is { } line)
        {
            if (line.Length > 0 && line.EndsWith('}')) records.Add(JsonDocument.Parse(line).RootElement.Clone());
        }
        return records;
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }
}
