using System.Net;
using System.Text;
using System.Text.Json;
using Tripline.Export;
using Tripline.Tests.Export;

namespace Tripline.Tests.Http;

public sealed class AgentEndpointsTests : IDisposable
{
    private readonly DemoTraffic _demo = new();

    public void Dispose() => _demo.Dispose();

    [Fact]
    public async Task Metrics_DemoReplayed_CountsFlowsDenialsAndUnprotectedPods()
    {
        await using var agent = await AgentUnderTest.StartAsync(_demo);
        string text = await agent.GetAsync("/metrics");

        Assert.Contains("tripline_flows_total{verdict=\"allow\",src_namespace=\"shop\",dst_namespace=\"shop\",protocol=\"TCP\"} 3", text);
        Assert.Contains("tripline_flows_total{verdict=\"deny\",src_namespace=\"tools\",dst_namespace=\"shop\",protocol=\"TCP\"} 2", text);
        Assert.Contains("tripline_flows_total{verdict=\"allow\",src_namespace=\"legacy\",dst_namespace=\"(external)\",protocol=\"UDP\"} 1", text);
        Assert.Contains("tripline_denied_flows_total{direction=\"ingress\",namespace=\"shop\",workload=\"Deployment/backend\",policy=\"shop/backend-from-frontend,shop/default-deny\"} 2", text);
        Assert.DoesNotContain("direction=\"egress\",namespace=\"tools\"", text);
        Assert.Contains("tripline_unprotected_pods{namespace=\"shop\",direction=\"ingress\"} 0", text);
        Assert.Contains("tripline_unprotected_pods{namespace=\"shop\",direction=\"egress\"} 2", text);
        Assert.Contains("tripline_unprotected_pods{namespace=\"legacy\",direction=\"ingress\"} 1", text);
        Assert.Contains("tripline_policies 2", text);
        Assert.Contains("tripline_packets_total{interface=\"pcap\"} 21", text);
        Assert.Contains("tripline_lost_packets_total{stage=\"queue\"} 0", text);
        Assert.Contains("tripline_flow_table_flows 0", text);
        Assert.Contains("tripline_build_info{version=", text);
        Assert.Matches("tripline_cluster_synced\\{resource=\"[a-z]+\"\\} 1", text);
    }

    [Fact]
    public async Task Health_Ready_ReportsReady()
    {
        await using var agent = await AgentUnderTest.StartAsync(_demo);
        Assert.Equal("ok\n", await agent.GetAsync("/healthz"));
        var ready = await agent.Client.GetAsync(new Uri(agent.BaseAddress, "/readyz"));
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("ready\n", await ready.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Ready_NodeNeitherInTheClusterNorOfAnyPod_WarnsNamingTheNodeAndTheFlag()
    {
        await using var agent = await AgentUnderTest.StartAsync(_demo, o => o with { Node = "laptop" });
        var ready = await agent.Client.GetAsync(new Uri(agent.BaseAddress, "/readyz"));
        string body = await ready.Content.ReadAsStringAsync();
        // Still ready: the agent works, it only counts nothing as its own node's.
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.StartsWith("ready\n  warning: node 'laptop' is neither a Node of the cluster nor the node of any pod", body, StringComparison.Ordinal);
        Assert.Contains("--node", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FlowsApi_VerdictDeny_ReturnsOnlyDeniedRecordsAsJsonLines()
    {
        await using var agent = await AgentUnderTest.StartAsync(_demo);
        string body = await agent.GetAsync("/api/v1/flows?verdict=deny&namespace=tools");
        var lines = body.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length); // two connections: a start and an end each
        foreach (string line in lines)
        {
            using var record = JsonDocument.Parse(line);
            Assert.Equal("deny", record.RootElement.GetProperty("verdict").GetString());
            Assert.Equal("tools", record.RootElement.GetProperty("src").GetProperty("namespace").GetString());
        }
        string limited = await agent.GetAsync("/api/v1/flows?limit=1");
        Assert.Single(limited.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task FlowsApi_BadFilter_Returns400NamingTheParameter()
    {
        await using var agent = await AgentUnderTest.StartAsync(_demo);
        var response = await agent.Client.GetAsync(new Uri(agent.BaseAddress, "/api/v1/flows?ip=not-an-ip&verdict=maybe"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        string text = await response.Content.ReadAsStringAsync();
        Assert.Contains("ip:", text);
        Assert.Contains("verdict:", text);
    }

    [Fact]
    public async Task FlowsApi_Follow_StreamsNewMatchingRecords()
    {
        await using var agent = await AgentUnderTest.StartAsync(_demo);
        var ring = agent.Host.Parts.Exporters.OfType<RecentFlows>().Single();
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(agent.BaseAddress, "/api/v1/flows?follow=true&namespace=late&limit=5"));
        using var response = await agent.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        await using var stream = await response.Content.ReadAsStreamAsync();
        using var reader = new StreamReader(stream);

        ring.Append(Encoding.UTF8.GetBytes("""{"time":"2026-11-26T02:05:00.000000Z","event":"start","src":{"ip":"10.0.0.1","namespace":"other"},"dst":{"ip":"10.0.0.2"},"verdict":"allow"}"""));
        ring.Append(Encoding.UTF8.GetBytes("""{"time":"2026-11-26T02:05:01.000000Z","event":"start","src":{"ip":"10.0.0.1","namespace":"late"},"dst":{"ip":"10.0.0.2"},"verdict":"deny"}"""));
        var line = await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.NotNull(line);
        Assert.Contains("\"namespace\":\"late\"", line);
    }
}
