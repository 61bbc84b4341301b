using System.Text;
using Tripline.Export;
using Tripline.Records;

namespace Tripline.Tests.Export;

public sealed class FlowFilterTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 26, 3, 0, 0, TimeSpan.Zero);

    private const string Denied = """{"time":"2026-11-26T02:10:00.000000Z","event":"start","flow_id":"00000000000000aa","protocol":"TCP","src":{"ip":"10.244.0.30","port":50000,"kind":"pod","namespace":"tools","pod":"scanner","labels":{}},"dst":{"ip":"10.244.0.20","port":8080,"kind":"pod","namespace":"shop","pod":"backend-1","workload":"Deployment/backend","labels":{"app":"backend"}},"initiator":"observed","verdict":"deny","egress":{"isolated":false,"allowed":true,"policies":[]},"ingress":{"isolated":true,"allowed":false,"policies":["shop/default-deny"]}}""";
    private const string External = """{"time":"2026-11-26T02:50:00.000000Z","event":"end","protocol":"UDP","src":{"ip":"10.244.0.40","port":41000,"kind":"pod","namespace":"legacy","pod":"legacy-0","workload":"StatefulSet/legacy"},"dst":{"ip":"1.1.1.1","port":53,"kind":"external"},"verdict":"allow","egress":null,"ingress":null}""";

    private static FlowFilter Create(FlowFilterOptions options)
    {
        Assert.True(FlowFilter.TryCreate(options, Now, out var filter, out var problems), string.Join("; ", problems));
        return filter;
    }

    private static FilterResult Eval(FlowFilter filter, string line) => filter.Evaluate(Encoding.UTF8.GetBytes(line));

    [Theory]
    [InlineData("namespace", "shop", true, false)]
    [InlineData("namespace", "tools", true, false)]
    [InlineData("pod", "tools/scanner", true, false)]
    [InlineData("pod", "shop/scanner", false, false)]
    [InlineData("workload", "Deployment/backend", true, false)]
    [InlineData("workload", "legacy", false, true)]
    [InlineData("ip", "10.244.0.0/24", true, true)]
    [InlineData("ip", "1.1.1.1", false, true)]
    [InlineData("port", "8080", true, false)]
    [InlineData("port", "53", false, true)]
    [InlineData("protocol", "udp", false, true)]
    [InlineData("verdict", "deny", true, false)]
    [InlineData("policy", "shop/default-deny", true, false)]
    [InlineData("policy", "default-deny", true, false)]
    [InlineData("since", "30m", false, true)]
    [InlineData("since", "2026-11-26T02:10:00Z", true, true)]
    [InlineData("until", "2026-11-26T02:10:00Z", true, false)]
    [InlineData("until", "50m", true, false)]
    [InlineData("until", "1h", false, false)]
    public void Evaluate_OneFilter_MatchesEitherEnd(string option, string value, bool deniedMatches, bool externalMatches)
    {
        var options = option switch
        {
            "namespace" => new FlowFilterOptions { Namespace = value },
            "pod" => new FlowFilterOptions { Pod = value },
            "workload" => new FlowFilterOptions { Workload = value },
            "ip" => new FlowFilterOptions { Ip = value },
            "port" => new FlowFilterOptions { Port = value },
            "protocol" => new FlowFilterOptions { Protocol = value },
            "verdict" => new FlowFilterOptions { Verdict = value },
            "policy" => new FlowFilterOptions { Policy = value },
            "since" => new FlowFilterOptions { Since = value },
            _ => new FlowFilterOptions { Until = value },
        };
        var filter = Create(options);
        Assert.Equal(deniedMatches ? FilterResult.Match : FilterResult.NoMatch, Eval(filter, Denied));
        Assert.Equal(externalMatches ? FilterResult.Match : FilterResult.NoMatch, Eval(filter, External));
    }

    [Theory]
    [InlineData("ClusterNetworkPolicy/no-tools", true)]
    [InlineData("no-tools", true)]
    [InlineData("AdminNetworkPolicy/no-tools", false)]
    [InlineData("shop/no-tools", false)]
    public void Evaluate_PolicyOfAnotherKind_IsFoundByKindAndName(string policy, bool matches)
    {
        string line = Denied.Replace("\"shop/default-deny\"", "\"ClusterNetworkPolicy/no-tools\"", StringComparison.Ordinal);
        Assert.NotEqual(Denied, line);
        Assert.Equal(matches ? FilterResult.Match : FilterResult.NoMatch, Eval(Create(new FlowFilterOptions { Policy = policy }), line));
    }

    [Fact]
    public void TryCreate_BadValues_ReportsEveryProblemNamingItsOption()
    {
        Assert.False(FlowFilter.TryCreate(new FlowFilterOptions { Pod = "noslash", Ip = "10.0.0.300", Port = "70000", Protocol = "gre", Verdict = "maybe", Since = "yesterday", Until = "soon" },
            Now, out _, out var problems));
        foreach (string option in new[] { "--pod", "--ip", "--port", "--protocol", "--verdict", "--since", "--until" })
        {
            Assert.Contains(problems, p => p.StartsWith(option + ":", StringComparison.Ordinal));
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("{\"time\":\"2026-11-26T02:10:00.000000Z\",\"event\":\"st")]
    [InlineData("not json")]
    [InlineData("{\"event\":\"start\"}")]
    [InlineData("{\"time\":\"2026-11-26T02:10:00.000000Z\"} trailing")]
    public void Evaluate_DamagedLine_IsCorrupt(string line) => Assert.Equal(FilterResult.Corrupt, Eval(FlowFilter.All, line));

    [Fact]
    public void Evaluate_EveryPrefixOfARecord_IsCorruptNeverAMatch()
    {
        var filter = Create(new FlowFilterOptions { Namespace = "shop" });
        for (int i = 0; i < Denied.Length; i++) Assert.Equal(FilterResult.Corrupt, Eval(filter, Denied[..i]));
        Assert.Equal(FilterResult.Match, Eval(filter, Denied));
    }

    [Theory]
    [InlineData("90s", 90)]
    [InlineData("30m", 1800)]
    [InlineData("1h30m", 5400)]
    [InlineData("2d", 172800)]
    public void TryParseDuration_Units_Parse(string text, int seconds)
    {
        Assert.True(FlowFilter.TryParseDuration(text, out var duration));
        Assert.Equal(TimeSpan.FromSeconds(seconds), duration);
    }
}
