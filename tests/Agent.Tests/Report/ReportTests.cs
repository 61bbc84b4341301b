using System.Text;
using System.Text.Json;
using Tripline.Cli;
using Tripline.Report;
using Tripline.Tests.Deploy;

namespace Tripline.Tests.Report;

/// <summary>
/// <c>tripline report</c> (issue 21): the JSON's facts checked against the flow log they came from (counts, first and
/// last seen computed here from the lines), posture and exposure from the engine, mesh findings from hand-written
/// records, escaping, summarising of a large log, and the same input giving the same bytes.
/// </summary>
public sealed class ReportTests : IDisposable
{
    private readonly ReportInputs _inputs = new();

    public void Dispose() => _inputs.Dispose();

    internal static (int Code, string Stderr) Report(ReportCommand.ReportOptions options)
    {
        var stderr = new StringWriter();
        int code = ReportCommand.Run(options, stderr);
        return (code, stderr.ToString());
    }

    private (JsonElement Json, string Html) Run(string log, IReadOnlyList<string> manifests, string name = "report", string top = "50", string mapEdges = "120")
    {
        string html = Path.Combine(_inputs.Directory, name + ".html"), json = Path.Combine(_inputs.Directory, name + ".json");
        var (code, stderr) = Report(new ReportCommand.ReportOptions { FlowLogs = [log], Manifests = manifests, Out = html, Json = json, Top = top, MapEdges = mapEdges });
        Assert.True(code == 0, stderr);
        return (JsonDocument.Parse(File.ReadAllBytes(json)).RootElement.Clone(), File.ReadAllText(html));
    }

    private static string Port(JsonElement end) => end.TryGetProperty("port", out var port) ? port.GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture) : "";

    [Fact]
    public void Report_HandWrittenLog_CoverageAndViolationsMatchTheLinesCountedHere()
    {
        string log = _inputs.WriteLog();
        var (json, _) = Run(log, [_inputs.Manifests]);
        var ends = ReportInputs.EndRecords(log);

        var coverage = json.GetProperty("coverage");
        Assert.Equal(File.ReadLines(log).Count(), coverage.GetProperty("records").GetInt64());
        Assert.Equal(ends.Count, coverage.GetProperty("flows").GetInt64());
        Assert.Equal(ends.Count(e => e.GetProperty("verdict").GetString() == "deny"), coverage.GetProperty("denied_flows").GetInt64());
        Assert.Equal(ends.Count(e => e.GetProperty("verdict").GetString() == "allow"), coverage.GetProperty("allowed_flows").GetInt64());
        Assert.Equal(1, coverage.GetProperty("unreadable_records").GetInt64());
        Assert.Equal(7, coverage.GetProperty("aggregated_flows").GetInt64());
        Assert.Equal(["node-1", "node-2"], coverage.GetProperty("nodes").EnumerateArray().Select(n => n.GetString()!));
        Assert.Equal(ends.Min(e => e.GetProperty("first_seen").GetString()), coverage.GetProperty("first_seen").GetString());
        Assert.Equal(ends.Max(e => e.GetProperty("time").GetString()), coverage.GetProperty("last_seen").GetString());
        // No period asked: since and until are present, and null.
        Assert.Equal(JsonValueKind.Null, coverage.GetProperty("since").ValueKind);
        Assert.Equal(JsonValueKind.Null, coverage.GetProperty("until").ValueKind);

        // Denied end records grouped by the test: workload pair, port, protocol; flows, first and last seen, enforcement.
        var expected = ends.Where(e => e.GetProperty("verdict").GetString() == "deny")
            .GroupBy(e => $"{ReportInputs.Group(e.GetProperty("src"))}|{ReportInputs.Group(e.GetProperty("dst"))}|{Port(e.GetProperty("dst"))}|{e.GetProperty("protocol").GetString()}")
            .ToDictionary(g => g.Key, g => (Flows: g.Count(), First: g.Min(e => e.GetProperty("first_seen").GetString()), Last: g.Max(e => e.GetProperty("time").GetString()),
                NotEnforced: g.Count(e => e.GetProperty("enforcement").GetString() == "not_enforced")));
        var violations = json.GetProperty("violations");
        Assert.Equal(expected.Count, violations.GetProperty("total").GetInt32());
        Assert.Equal(0, violations.GetProperty("omitted").GetInt32());
        foreach (var item in violations.GetProperty("items").EnumerateArray())
        {
            string key = $"{item.GetProperty("src").GetString()}|{item.GetProperty("dst").GetString()}|{item.GetProperty("port").GetInt32()}|{item.GetProperty("protocol").GetString()}";
            Assert.True(expected.TryGetValue(key, out var want), key);
            Assert.Equal(want.Flows, item.GetProperty("flows").GetInt32());
            Assert.Equal(want.First, item.GetProperty("first_seen").GetString());
            Assert.Equal(want.Last, item.GetProperty("last_seen").GetString());
            Assert.Equal(want.NotEnforced, item.GetProperty("enforcement").TryGetProperty("not_enforced", out var n) ? n.GetInt32() : 0);
            Assert.Equal("ingress", item.GetProperty("denied_by").GetString());
        }
        var db = violations.GetProperty("items").EnumerateArray().Single(v => v.GetProperty("dst").GetString() == "a/StatefulSet/db");
        Assert.Equal(["a/db-access", "a/default-deny-ingress"], db.GetProperty("policies").EnumerateArray().Select(p => p.GetString()!));
        Assert.Equal(1, db.GetProperty("enforcement").GetProperty("enforced").GetInt32());
    }

    [Fact]
    public void Report_HandWrittenLog_MapHasOneEdgePerObservedPairColouredByVerdict()
    {
        string log = _inputs.WriteLog();
        var (json, html) = Run(log, [_inputs.Manifests]);
        var expected = ReportInputs.EndRecords(log)
            .GroupBy(e => (ReportInputs.MapId(e.GetProperty("src")), ReportInputs.MapId(e.GetProperty("dst"))))
            .ToDictionary(g => g.Key, g => (Allowed: g.Count(e => e.GetProperty("verdict").GetString() == "allow"), Denied: g.Count(e => e.GetProperty("verdict").GetString() == "deny")));
        var map = json.GetProperty("map");
        var edges = map.GetProperty("edges").EnumerateArray().ToList();
        Assert.Equal(expected.Count, edges.Count);
        foreach (var edge in edges)
        {
            var want = expected[(edge.GetProperty("src").GetString()!, edge.GetProperty("dst").GetString()!)];
            Assert.Equal(want.Allowed, edge.GetProperty("allowed_flows").GetInt32());
            Assert.Equal(want.Denied, edge.GetProperty("denied_flows").GetInt32());
            Assert.Equal(want.Denied == 0 ? "allowed" : want.Allowed == 0 ? "denied" : "both", edge.GetProperty("verdict").GetString());
        }
        var nodes = expected.Keys.SelectMany(k => new[] { k.Item1, k.Item2 }).Distinct().Order(StringComparer.Ordinal).ToList();
        Assert.Equal(nodes, map.GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("id").GetString()!).Order(StringComparer.Ordinal));
        Assert.Equal(expected.Count, CountOf(html, "class=\"map-edge "));
        Assert.Equal(nodes.Count, CountOf(html, "class=\"map-node\""));
    }

    internal static int CountOf(string text, string part)
    {
        int count = 0;
        for (int at = text.IndexOf(part, StringComparison.Ordinal); at >= 0; at = text.IndexOf(part, at + part.Length, StringComparison.Ordinal)) count++;
        return count;
    }

    [Fact]
    public void Report_HandWrittenCluster_PostureComesFromTheEngine()
    {
        var (json, _) = Run(_inputs.WriteLog(), [_inputs.Manifests]);
        var posture = json.GetProperty("posture");
        Assert.Equal(3, posture.GetProperty("pods").GetInt32());
        Assert.Equal(1, posture.GetProperty("pods_without_ingress_policy").GetInt32());
        Assert.Equal(3, posture.GetProperty("pods_without_egress_policy").GetInt32());
        var client = posture.GetProperty("unprotected_workloads").GetProperty("items").EnumerateArray().First();
        Assert.Equal("b", client.GetProperty("namespace").GetString());
        Assert.Equal(1, client.GetProperty("pods_without_ingress_policy").GetInt32());

        var namespaces = posture.GetProperty("namespaces").EnumerateArray().ToDictionary(n => n.GetProperty("namespace").GetString()!);
        Assert.True(namespaces["a"].GetProperty("default_deny_ingress").GetBoolean());
        Assert.False(namespaces["a"].GetProperty("default_deny_egress").GetBoolean());
        Assert.False(namespaces["b"].GetProperty("default_deny_ingress").GetBoolean());
        Assert.Equal(["a/default-deny-ingress"], namespaces["a"].GetProperty("ingress_policies").EnumerateArray().Select(p => p.GetString()!));

        Assert.Equal(["a/orphan"], posture.GetProperty("policies_selecting_no_pod").EnumerateArray().Select(p => p.GetString()!));
        Assert.Equal(2, posture.GetProperty("rules").GetInt32());
        var unmatched = posture.GetProperty("rules_without_flows").GetProperty("items").EnumerateArray()
            .Select(r => $"{r.GetProperty("policy").GetString()} {r.GetProperty("direction").GetString()} {r.GetProperty("rule").GetString()}").ToList();
        Assert.Equal(["a/db-access ingress ingress[1]"], unmatched);
    }

    [Fact]
    public void Report_HandWrittenCluster_ExposureIsWhoMayReachAndWhoDid()
    {
        var (json, _) = Run(_inputs.WriteLog(), [_inputs.Manifests]);
        var exposure = json.GetProperty("exposure").GetProperty("items").EnumerateArray()
            .ToDictionary(e => $"{e.GetProperty("namespace").GetString()}/{e.GetProperty("workload").GetString()}");
        var db = exposure["a/StatefulSet/db"].GetProperty("ports").EnumerateArray().Single(p => p.GetProperty("port").GetInt32() == 5432);
        Assert.Equal(1, db.GetProperty("same_namespace").GetProperty("allowed_workloads").GetInt32());
        Assert.Equal(1, db.GetProperty("same_namespace").GetProperty("workloads").GetInt32());
        Assert.Equal(1, db.GetProperty("same_namespace").GetProperty("used_by_workloads").GetInt32());
        Assert.Equal(0, db.GetProperty("other_namespaces").GetProperty("allowed_workloads").GetInt32());
        Assert.False(db.GetProperty("outside").GetProperty("allowed").GetBoolean());
        // The rule on 22 admits a workload that does not exist: no peer may use it.
        var ssh = exposure["a/StatefulSet/db"].GetProperty("ports").EnumerateArray().Single(p => p.GetProperty("port").GetInt32() == 22);
        Assert.Equal(0, ssh.GetProperty("same_namespace").GetProperty("allowed_workloads").GetInt32());

        // client is selected by nothing: everyone may reach what it was reached on, and the outside too.
        var client = exposure["b/StatefulSet/client"].GetProperty("ports").EnumerateArray().Single();
        Assert.Equal(9000, client.GetProperty("port").GetInt32());
        Assert.Equal(2, client.GetProperty("other_namespaces").GetProperty("allowed_workloads").GetInt32());
        Assert.Equal(1, client.GetProperty("other_namespaces").GetProperty("used_by_workloads").GetInt32());
        Assert.True(client.GetProperty("outside").GetProperty("allowed").GetBoolean());
        Assert.Equal("b/StatefulSet/client", json.GetProperty("exposure").GetProperty("items")[0].GetProperty("namespace").GetString() + "/" + json.GetProperty("exposure").GetProperty("items")[0].GetProperty("workload").GetString());
    }

    [Fact]
    public void Report_RecordsWithMeshFacts_ListsPlaintextBetweenMeshedPodsAndIntoStrict()
    {
        var (json, html) = Run(_inputs.WriteLog(), [_inputs.Manifests]);
        var mesh = json.GetProperty("mesh");
        Assert.Equal(6, mesh.GetProperty("records_with_mesh_data").GetInt64());
        var findings = mesh.GetProperty("plaintext").GetProperty("items").EnumerateArray()
            .Select(f => $"{f.GetProperty("src").GetString()} -> {f.GetProperty("dst").GetString()}:{f.GetProperty("port").GetInt32()} {f.GetProperty("reason").GetString()} ({f.GetProperty("peer_authentication").GetString()}) x{f.GetProperty("flows").GetInt32()}")
            .Order(StringComparer.Ordinal).ToList();
        Assert.Equal([
            "a/StatefulSet/web -> a/StatefulSet/db:5432 between meshed pods (PERMISSIVE) x1",
            "b/StatefulSet/client -> a/StatefulSet/web:8080 into a STRICT destination (STRICT) x1",
        ], findings);
        Assert.Contains("plaintext between meshed pods", html, StringComparison.Ordinal);
    }

    [Fact]
    public void Report_LogWithoutMeshFacts_SaysThereIsNoMeshData()
    {
        string log = Path.Combine(_inputs.Directory, "plain.log");
        File.WriteAllText(log, ReportInputs.Record("end", ReportInputs.Start, ReportInputs.Start.AddSeconds(1), "node-1", ReportInputs.Web(), ReportInputs.Db(), "allow",
            ReportInputs.Side(false, true), ReportInputs.Side(true, true, "a/db-access")) + "\n");
        var (json, html) = Run(log, [_inputs.Manifests]);
        Assert.Equal(0, json.GetProperty("mesh").GetProperty("records_with_mesh_data").GetInt64());
        Assert.Contains("There is no mesh data", html, StringComparison.Ordinal);
        Assert.Contains("No denied flow in the period", html, StringComparison.Ordinal);
    }

    [Fact]
    public void Report_PodsOfAWorkloadWithTheSameLabels_FoldIntoOnePair_OtherLabelsDoNot()
    {
        string log = Path.Combine(_inputs.Directory, "fold.log");
        var lines = new List<string>();
        for (int i = 0; i < 6; i++)
        {
            // Six pods of one workload on three nodes: the pod, uid, address, node and source port differ, the labels do not.
            var web = ReportInputs.Pod("a", $"web-{i}", "StatefulSet/web", $"10.0.0.{100 + i}", 40000 + i, $"node-{i % 3}", ("app", "web"));
            lines.Add(ReportInputs.Record("end", ReportInputs.Start.AddSeconds(i), ReportInputs.Start.AddSeconds(i + 1), $"node-{i % 3}", web, ReportInputs.Db(), "allow",
                ReportInputs.Side(false, true), ReportInputs.Side(true, true, "a/db-access")));
        }
        var canary = ReportInputs.Pod("a", "web-canary", "StatefulSet/web", "10.0.0.120", 41000, "node-1", ("app", "web"), ("track", "canary"));
        lines.Add(ReportInputs.Record("end", ReportInputs.Start.AddSeconds(9), ReportInputs.Start.AddSeconds(10), "node-1", canary, ReportInputs.Db(), "allow",
            ReportInputs.Side(false, true), ReportInputs.Side(true, true, "a/db-access")));
        File.WriteAllText(log, string.Join('\n', lines) + "\n");
        var (json, _) = Run(log, [_inputs.Manifests]);
        Assert.Equal(7, json.GetProperty("coverage").GetProperty("flows").GetInt64());
        Assert.Equal(2, json.GetProperty("coverage").GetProperty("endpoint_pairs").GetInt32());
        var edge = json.GetProperty("map").GetProperty("edges").EnumerateArray().Single();
        Assert.Equal(7, edge.GetProperty("allowed_flows").GetInt32());
    }

    [Fact]
    public void Report_NamesFromTheInput_AreHtmlEncodedEverywhere()
    {
        string log = Path.Combine(_inputs.Directory, "evil.log");
        var evil = ReportInputs.Pod("a", "<script>alert(1)</script>", "StatefulSet/<script>alert(2)</script>", "10.0.0.99", 40000, "<b>node</b>", ("app", "<img src=x onerror=alert(3)>"));
        File.WriteAllText(log, ReportInputs.Record("end", ReportInputs.Start, ReportInputs.Start.AddSeconds(1), "<i>n</i>", evil, ReportInputs.Db(), "deny",
            ReportInputs.Side(false, true), ReportInputs.Side(true, false, "a/<script>x</script>")) + "\n");
        var (_, html) = Run(log, [_inputs.Manifests]);
        Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<img", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<i>n</i>", html, StringComparison.Ordinal);
        Assert.Contains("a/StatefulSet/&lt;script&gt;alert(2)&lt;/script&gt;", html, StringComparison.Ordinal);
        Assert.Contains("a/&lt;script&gt;x&lt;/script&gt;", html, StringComparison.Ordinal);
    }

    [Fact]
    public void Report_SameInputTwice_SameBytes()
    {
        string log = _inputs.WriteLog();
        Run(log, [_inputs.Manifests], "one");
        Run(log, [_inputs.Manifests], "two");
        Assert.Equal(File.ReadAllBytes(Path.Combine(_inputs.Directory, "one.html")), File.ReadAllBytes(Path.Combine(_inputs.Directory, "two.html")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(_inputs.Directory, "one.json")), File.ReadAllBytes(Path.Combine(_inputs.Directory, "two.json")));
    }

    [Fact]
    public void Report_SinceAndUntil_KeepTheFlowsThatEndedInThePeriod()
    {
        string log = _inputs.WriteLog();
        var ends = ReportInputs.EndRecords(log);
        string since = ends[3].GetProperty("time").GetString()!, until = ends[6].GetProperty("time").GetString()!;
        string html = Path.Combine(_inputs.Directory, "period.html"), json = Path.Combine(_inputs.Directory, "period.json");
        var (code, stderr) = Report(new ReportCommand.ReportOptions { FlowLogs = [log], Manifests = [_inputs.Manifests], Out = html, Json = json, Since = since, Until = until });
        Assert.True(code == 0, stderr);
        var coverage = JsonDocument.Parse(File.ReadAllBytes(json)).RootElement.GetProperty("coverage");
        Assert.Equal(ends.Count(e => string.CompareOrdinal(e.GetProperty("time").GetString(), since) >= 0 && string.CompareOrdinal(e.GetProperty("time").GetString(), until) <= 0),
            coverage.GetProperty("flows").GetInt64());
        Assert.Equal(since, coverage.GetProperty("since").GetString());
    }

    [Theory]
    [InlineData(new[] { "report", "--flow-log", "LOG", "--manifests", "MANIFESTS" }, "--out")]
    [InlineData(new[] { "report", "--flow-log", "LOG", "--manifests", "MANIFESTS", "--out", "OUT", "--top", "many" }, "--top")]
    [InlineData(new[] { "report", "--manifests", "MANIFESTS", "--out", "OUT" }, "--flow-log or --pcap")]
    [InlineData(new[] { "report", "--flow-log", "LOG", "--manifests", "MANIFESTS", "--out", "OUT", "--since", "yesterday" }, "--since")]
    [InlineData(new[] { "report", "--flow-log", "LOG", "--manifests", "MANIFESTS", "--out", "OUT", "--bogus" }, "--bogus")]
    public void Report_BadUsage_ExitsTwoNamingTheOption(string[] args, string named)
    {
        string log = _inputs.WriteLog();
        string[] resolved = [.. args.Select(a => a switch { "LOG" => log, "MANIFESTS" => _inputs.Manifests, "OUT" => Path.Combine(_inputs.Directory, "x.html"), _ => a })];
        var stderr = new StringWriter();
        var saved = Console.Error;
        Console.SetError(stderr);
        int code;
        try
        {
            code = TriplineCommand.Invoke(resolved);
        }
        finally
        {
            Console.SetError(saved);
        }
        Assert.Equal(ExitCodes.BadUsage, code);
        Assert.Contains(named, stderr.ToString(), StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_inputs.Directory, "x.html")));
    }

    [Fact]
    public void Report_Demo_ViolationsMatchTheDeniedRecordsOfTheReplay()
    {
        string log = Path.Combine(_inputs.Directory, "demo.log");
        Assert.Equal(0, ReplayCommand.Run(new ReplayCommand.ReplayOptions([DeployFiles.Path("deploy/demo/traffic.pcap")], [DeployFiles.Path("deploy/demo")], log, "demo-node-1", false, 65_536, 60),
            new StringWriter(), new StringWriter()));
        var (json, html) = Run(log, [DeployFiles.Path("deploy/demo")]);
        var ends = ReportInputs.EndRecords(log);
        var denied = ends.Where(e => e.GetProperty("verdict").GetString() == "deny").ToList();
        Assert.NotEmpty(denied);
        Assert.Equal(denied.Count, json.GetProperty("violations").GetProperty("items").EnumerateArray().Sum(v => v.GetProperty("flows").GetInt32()));
        Assert.Equal(denied.Count(e => e.GetProperty("enforcement").GetString() == "not_enforced"),
            json.GetProperty("violations").GetProperty("items").EnumerateArray().Sum(v => v.GetProperty("enforcement").TryGetProperty("not_enforced", out var n) ? n.GetInt32() : 0));
        // Every flow is on the map once (the demo's Services each have one backend workload).
        Assert.Equal(ends.Count, json.GetProperty("map").GetProperty("edges").EnumerateArray().Sum(e => e.GetProperty("flows").GetInt32()));
        foreach (string id in new[] { "coverage", "posture", "exposure", "violations", "mesh", "map" }) Assert.Contains($"<section id=\"{id}\">", html, StringComparison.Ordinal);
    }

    /// <summary>
    /// A large synthetic log (a few hundred thousand records over hundreds of workloads) summarises: the page stays
    /// small, tables list the top entries and say how many more, and the totals still count everything.
    /// </summary>
    [Fact]
    public void Report_LargeLog_StaysSmallAndSaysHowManyMore()
    {
        string log = Path.Combine(_inputs.Directory, "large.log");
        var random = new Random(21);
        long denied = 0, flows = 0;
        var deniedGroups = new HashSet<string>(StringComparer.Ordinal);
        using (var writer = new StreamWriter(log, append: false, new UTF8Encoding(false)))
        {
            var t = ReportInputs.Start;
            for (int i = 0; i < 250_000; i++)
            {
                int from = random.Next(400), to = random.Next(400), port = 8000 + random.Next(40);
                var src = ReportInputs.Pod($"ns{from % 40}", $"w{from}-0", $"Deployment/w{from}", $"10.1.{from / 200}.{from % 200}", 30000 + random.Next(30000), $"node-{from % 50}", ("app", $"w{from}"));
                var dst = ReportInputs.Pod($"ns{to % 40}", $"w{to}-0", $"Deployment/w{to}", $"10.1.{to / 200}.{to % 200}", port, $"node-{to % 50}", ("app", $"w{to}"));
                bool deny = (from + to) % 7 == 0;
                string @event = i % 4 == 0 ? "start" : "end";
                t = t.AddMilliseconds(300);
                writer.Write(ReportInputs.Record(@event, t.AddSeconds(-1), t, $"node-{from % 50}", src, dst, deny ? "deny" : "allow",
                    ReportInputs.Side(false, true), ReportInputs.Side(true, !deny, $"ns{to % 40}/policy-{to % 3}"), deny ? "not_enforced" : "delivered"));
                writer.Write('\n');
                if (@event != "end") continue;
                flows++;
                if (!deny) continue;
                denied++;
                deniedGroups.Add($"{from}|{to}|{port}");
            }
        }
        var (json, html) = Run(log, [_inputs.Manifests], "large");
        long htmlBytes = new FileInfo(Path.Combine(_inputs.Directory, "large.html")).Length;
        long jsonBytes = new FileInfo(Path.Combine(_inputs.Directory, "large.json")).Length;
        Assert.True(htmlBytes < 3_000_000, $"HTML is {htmlBytes:N0} bytes");
        Assert.True(jsonBytes < 3_000_000, $"JSON is {jsonBytes:N0} bytes");
        Assert.Equal(flows, json.GetProperty("coverage").GetProperty("flows").GetInt64());
        Assert.Equal(denied, json.GetProperty("coverage").GetProperty("denied_flows").GetInt64());
        Assert.Equal(50, json.GetProperty("coverage").GetProperty("nodes").GetArrayLength());
        var violations = json.GetProperty("violations");
        Assert.Equal(deniedGroups.Count, violations.GetProperty("total").GetInt32());
        Assert.Equal(50, violations.GetProperty("items").GetArrayLength());
        Assert.Equal(deniedGroups.Count - 50, violations.GetProperty("omitted").GetInt32());
        Assert.Contains($"and {deniedGroups.Count - 50:N0} more groups of denied flows", html, StringComparison.Ordinal);
        var map = json.GetProperty("map");
        Assert.Equal(120, map.GetProperty("edges").GetArrayLength());
        Assert.True(map.GetProperty("total_edges").GetInt32() > 120);
        Assert.Equal(120, CountOf(html, "class=\"map-edge "));
        Assert.Contains("more edges", html, StringComparison.Ordinal);
        // The busiest edges are the ones drawn.
        var drawn = map.GetProperty("edges").EnumerateArray().Select(e => e.GetProperty("flows").GetInt64()).ToList();
        Assert.True(drawn.Min() >= 1);
    }
}
