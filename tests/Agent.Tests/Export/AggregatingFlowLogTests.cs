using System.Text.Json;
using Tripline.Export;
using Tripline.Tests.Http;
using Tripline.Records;

namespace Tripline.Tests.Export;

public sealed class AggregatingFlowLogTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-agg-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Export_ShortFlows_WrittenAsOneAggregatePerPeerPair()
    {
        using var demo = new DemoTraffic();
        await using (await AgentUnderTest.StartAsync(demo, o => o with { FlowLog = _dir, FlowLogOptions = new FlowLogOptions { Aggregate = TimeSpan.FromSeconds(10) } })) { }

        var records = File.ReadAllLines(Path.Combine(_dir, RotatingFileOutput.DefaultFileName)).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.All(records, r => Assert.Equal("aggregate", r.GetProperty("event").GetString()));
        var byPair = records.ToDictionary(
            r => $"{r.GetProperty("src").GetProperty("namespace").GetString()}->{(r.GetProperty("dst").TryGetProperty("namespace", out var ns) ? ns.GetString() : r.GetProperty("dst").GetProperty("ip").GetString())}",
            r => r);
        Assert.Equal(3, byPair["shop->shop"].GetProperty("flows").GetInt64());
        Assert.Equal(6, byPair["shop->shop"].GetProperty("packets").GetProperty("sent").GetInt64());
        Assert.Equal("Deployment/backend", byPair["shop->shop"].GetProperty("dst").GetProperty("workload").GetString());
        Assert.Equal(8080, byPair["shop->shop"].GetProperty("dst").GetProperty("port").GetInt32());
        Assert.Equal("deny", byPair["tools->shop"].GetProperty("verdict").GetString());
        Assert.Equal(2, byPair["tools->shop"].GetProperty("flows").GetInt64());
        Assert.Equal(1, byPair["legacy->1.1.1.1"].GetProperty("flows").GetInt64());
        Assert.Equal(3, records.Count);

        // The query command reads aggregates with the same filters.
        Assert.True(FlowFilter.TryCreate(new FlowFilterOptions { Workload = "backend", Verdict = "deny", Port = "8080" }, DateTimeOffset.UtcNow, out var filter, out _));
        Assert.Single(File.ReadAllLines(Path.Combine(_dir, RotatingFileOutput.DefaultFileName)), l => filter.Matches(System.Text.Encoding.UTF8.GetBytes(l)));
    }
}
