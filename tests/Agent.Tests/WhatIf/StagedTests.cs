using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Tripline.Correlation.Endpoints;
using Tripline.Correlation.Manifests;
using Tripline.Correlation.Policy;
using Tripline.Hosting;
using Tripline.Tests.Export;
using Tripline.Tests.Http;
using Tripline.Tests.Support;

namespace Tripline.Tests.WhatIf;

/// <summary>
/// Staged policies (<c>tripline run --staged</c>): every flow judged a second time with the staged documents applied,
/// records that differ carry <c>staged</c>, a metric counts what the change would deny, and the files are read again
/// when they change.
/// </summary>
public sealed class StagedTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-staged-").FullName;
    private readonly DemoTraffic _demo = new();

    public void Dispose()
    {
        _demo.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>The demo's policy that lets frontend reach backend, staged narrowed to a port frontend does not use.</summary>
    private const string DenyBackend = """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: { name: backend-from-frontend, namespace: shop }
        spec:
          podSelector: { matchLabels: { app: backend } }
          policyTypes: [ Ingress ]
          ingress: [ { from: [ { podSelector: { matchLabels: { app: frontend } } } ], ports: [ { port: 9999 } ] } ]
        """;

    [Fact]
    public async Task Run_Staged_RecordsThatDifferCarryStaged_AndTheMetricCountsWhatItWouldDeny()
    {
        string staged = Path.Combine(_dir, "staged.yaml");
        await File.WriteAllTextAsync(staged, DenyBackend);
        await using var agent = await AgentUnderTest.StartAsync(_demo, o => o with { Staged = [staged] });
        string body = await agent.GetAsync("/api/v1/flows?limit=100000");
        var records = body.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var withStaged = records.Where(r => r.TryGetProperty("staged", out _)).ToList();
        Assert.NotEmpty(withStaged);
        Assert.All(withStaged, r =>
        {
            Assert.Equal(DemoTraffic.BackendIp, r.GetProperty("dst").GetProperty("ip").GetString());
            Assert.Equal("allow", r.GetProperty("verdict").GetString());
            Assert.Equal("deny", r.GetProperty("staged").GetProperty("verdict").GetString());
            Assert.Contains("shop/backend-from-frontend", r.GetProperty("staged").GetProperty("ingress").GetRawText(), StringComparison.Ordinal);
        });
        // Every allowed flow to the backend differs; nothing else does.
        Assert.Equal(records.Count(r => r.GetProperty("verdict").GetString() == "allow" && r.GetProperty("dst").GetProperty("ip").GetString() == DemoTraffic.BackendIp), withStaged.Count);

        string metrics = await agent.GetAsync("/metrics");
        long starts = withStaged.Count(r => r.GetProperty("event").GetString() == "start");
        Assert.Contains($"tripline_staged_denied_flows_total{{direction=\"ingress\",namespace=\"shop\",workload=\"Deployment/backend\",policy=\"shop/backend-from-frontend,shop/default-deny\"}} {starts}", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public void StagedFiles_ReadAgainWhenTheyChange_AndABrokenOneKeepsThePreviousStaging()
    {
        string staged = Path.Combine(_dir, "staged.yaml");
        File.WriteAllText(staged, DenyBackend);
        using var cluster = new ClusterState(new ManifestClusterSource(ManifestLoader.Load([_demo.Manifests])));
        using var policies = new StagedPolicies([staged], cluster, NullLogger.Instance);
        var frontend = IpKey.From(IPAddress.Parse(DemoTraffic.FrontendIp));
        var backend = IpKey.From(IPAddress.Parse(DemoTraffic.BackendIp));
        Verdict? Staged() => cluster.Current.Judge(frontend, backend, 8080, PolicyProtocol.TCP, 0).Staged;

        Assert.True(cluster.Current.Judge(frontend, backend, 8080, PolicyProtocol.TCP, 0).Verdict.Allowed);
        Assert.False(Staged()!.Allowed);
        Assert.False(policies.Check());

        // Edited: the staged policy now admits frontend.
        File.WriteAllText(staged, DenyBackend.Replace("port: 9999", "port: 8080", StringComparison.Ordinal));
        File.SetLastWriteTimeUtc(staged, DateTime.UtcNow.AddSeconds(5));
        Assert.True(policies.Check());
        Assert.True(Staged()!.Allowed);

        // Broken: it does not parse, so the last good staging stays.
        File.WriteAllText(staged, "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: x, namespace: shop }\nspec: { podSelector: [ ] }\n");
        File.SetLastWriteTimeUtc(staged, DateTime.UtcNow.AddSeconds(10));
        Assert.False(policies.Check());
        Assert.True(Staged()!.Allowed);
    }
}
