using System.Globalization;
using System.Text.RegularExpressions;
using Tripline.Cli;
using Tripline.Tests.Support;

namespace Tripline.Tests.Export;

/// <summary>
/// The replay summary a person reads: denied connections listed once each with the number of flows that repeated
/// them, most first, so that one noisy client does not hide the others.
/// </summary>
public sealed partial class ReplaySummaryTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-summary-").FullName;

    private const string Manifests = """
        apiVersion: v1
        kind: Namespace
        metadata: { name: shop }
        ---
        apiVersion: v1
        kind: Pod
        metadata: { name: db, namespace: shop, uid: u1, labels: { app: db } }
        status: { phase: Running, podIPs: [ { ip: 10.1.0.10 } ] }
        ---
        apiVersion: v1
        kind: Pod
        metadata: { name: web, namespace: shop, uid: u2, labels: { app: web } }
        status: { phase: Running, podIPs: [ { ip: 10.1.0.20 } ] }
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: { name: db-closed, namespace: shop }
        spec: { podSelector: { matchLabels: { app: db } }, policyTypes: [ Ingress ] }
        """;

    [Fact]
    public void Replay_OneConnectionRepeatedByManyFlows_ListedOnceWithItsCount()
    {
        File.WriteAllText(Path.Combine(_dir, "cluster.yaml"), Manifests);
        string capture = Path.Combine(_dir, "denied.pcap");
        uint db = TestPcap.Ip("10.1.0.10"), web = TestPcap.Ip("10.1.0.20");
        // web retries the database 30 times on 5432 and tries 6379 twice; 12 distinct external clients try 5432 once.
        var connections = new List<(uint Source, ushort Port)>();
        for (int i = 0; i < 30; i++) connections.Add((web, 5432));
        for (int i = 0; i < 2; i++) connections.Add((web, 6379));
        for (int i = 0; i < 12; i++) connections.Add((TestPcap.Ip($"192.0.2.{i + 1}"), 5432));
        using (var pcap = new TestPcap(File.Create(capture)))
        {
            long t = 1_764_100_000_000_000;
            ushort sourcePort = 30000;
            foreach (var (source, port) in connections)
            {
                pcap.Write(t += 1000, TestPcap.Tcp(source, sourcePort, db, port, 0x02));
                pcap.Write(t += 1000, TestPcap.Tcp(db, port, source, sourcePort++, 0x14));
            }
        }

        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = ReplayCommand.Run(new ReplayCommand.ReplayOptions([capture], [_dir], null, "node-1", false, 65_536, 60), stdout, stderr);

        string summary = stdout.ToString();
        Assert.True(code == 0, $"exit {code}\n{stderr}\n{summary}");
        Assert.Contains("44 denied", summary, StringComparison.Ordinal);
        Assert.Contains("denied connections (14 distinct; flows, most first):", summary, StringComparison.Ordinal);
        var lines = summary.Split('\n').SkipWhile(l => !l.Contains("denied connections", StringComparison.Ordinal)).Skip(1)
            .TakeWhile(l => l.StartsWith("    ", StringComparison.Ordinal)).ToList();
        var rows = lines.Select(l => CountedLine().Match(l)).Where(m => m.Success)
            .Select(m => (Flows: long.Parse(m.Groups[1].Value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture), Text: m.Groups[2].Value)).ToList();
        Assert.Equal(10, rows.Count);
        Assert.Equal(rows.Count, rows.Select(r => r.Text).Distinct(StringComparer.Ordinal).Count());
        Assert.Equal(30, rows[0].Flows);
        Assert.Contains("shop/web (10.1.0.20) -> shop/db (10.1.0.10) TCP/5432: ingress isolated by shop/db-closed", rows[0].Text, StringComparison.Ordinal);
        Assert.Equal(2, rows[1].Flows);
        Assert.Contains("TCP/6379", rows[1].Text, StringComparison.Ordinal);
        Assert.All(rows.Skip(2), r => Assert.Equal(1, r.Flows));
        // Ties in a stable order (by text); the rest summed up.
        Assert.Contains("(192.0.2.1) ->", rows[2].Text, StringComparison.Ordinal);
        Assert.Contains(lines, l => l.Contains("... and 4 more", StringComparison.Ordinal));
    }

    [GeneratedRegex(@"^\s+([\d,]+)  (.+)$")]
    private static partial Regex CountedLine();

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
