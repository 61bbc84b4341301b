using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Tripline.Tests.Export;
using Tripline.Tests.Http;

namespace Tripline.Tests.EndToEnd;

/// <summary>
/// The metrics and the alert rules against a real Prometheus (Debian's <c>prometheus</c> package, which
/// <c>.ci/run</c> installs): <c>promtool check metrics</c> on a scrape, <c>promtool check rules</c> and
/// <c>promtool test rules</c> on deploy/prometheus-rules.yaml, and a Prometheus server on loopback scraping an agent.
/// Without promtool these tests fail: they never pass by skipping.
/// </summary>
public sealed class PrometheusTests : IDisposable
{
    private readonly DemoTraffic _demo = new();
    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-prom-").FullName;

    public void Dispose()
    {
        _demo.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private static string Tool(string name)
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin").Split(':').Append("/usr/bin"))
        {
            string path = Path.Combine(dir, name);
            if (File.Exists(path)) return path;
        }
        string ci = Environment.GetEnvironmentVariable("CI") == "true" ? " (CI=true: .ci/run must install it)" : "";
        Assert.Fail($"{name} not found on PATH{ci}: install Debian's 'prometheus' package (apt-get install prometheus)");
        return "";
    }

    private static string RepositoryFile(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, relative);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException(relative);
    }

    /// <summary>The PrometheusRule's <c>spec</c> is a plain Prometheus rule file: its lines, two spaces less indented.</summary>
    private string WriteRuleGroups()
    {
        var lines = File.ReadAllLines(RepositoryFile("deploy/prometheus-rules.yaml"));
        int spec = Array.IndexOf(lines, "spec:");
        Assert.True(spec >= 0, "deploy/prometheus-rules.yaml has no top-level spec:");
        string path = Path.Combine(_dir, "rules.yaml");
        File.WriteAllLines(path, lines.Skip(spec + 1).Select(l => l.Length >= 2 && l.StartsWith("  ", StringComparison.Ordinal) ? l[2..] : l));
        return path;
    }

    private static async Task<(int Code, string Output)> RunAsync(string tool, string arguments, string workingDirectory, string? stdin = null)
    {
        var start = new ProcessStartInfo(tool, arguments)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        using var process = Process.Start(start)!;
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
            process.StandardInput.Close();
        }
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return (process.ExitCode, await stdout + await stderr);
    }

    [Fact]
    public async Task PromtoolCheckMetrics_ScrapeOfRunningAgent_HasNoProblems()
    {
        string promtool = Tool("promtool");
        await using var agent = await AgentUnderTest.StartAsync(_demo);
        string scrape = await agent.GetAsync("/metrics");
        var (code, output) = await RunAsync(promtool, "check metrics", _dir, scrape);
        Assert.True(code == 0, $"promtool check metrics exited {code}:\n{output}");
        Assert.Equal("", output.Trim());
    }

    [Fact]
    public async Task PromtoolCheckRules_DeployedRules_AreValid()
    {
        string promtool = Tool("promtool");
        string rules = WriteRuleGroups();
        var (code, output) = await RunAsync(promtool, $"check rules {rules}", _dir);
        Assert.True(code == 0, $"promtool check rules exited {code}:\n{output}");
        Assert.Contains("SUCCESS: 13 rules found", output);
    }

    [Fact]
    public async Task PromtoolTestRules_EachAlert_FiresAndDoesNotFire()
    {
        string promtool = Tool("promtool");
        WriteRuleGroups();
        File.Copy(RepositoryFile("tests/Agent.Tests/EndToEnd/PrometheusRules.test.yaml"), Path.Combine(_dir, "rules.test.yaml"));
        var (code, output) = await RunAsync(promtool, "test rules rules.test.yaml", _dir);
        Assert.True(code == 0, $"promtool test rules exited {code}:\n{output}");
        Assert.Contains("SUCCESS", output);
    }

    /// <summary>A Prometheus server on loopback scrapes the agent replaying the demo and evaluates the alert rules.</summary>
    [Fact]
    public async Task PrometheusServer_ScrapesAgent_SeesDeniedSeriesAndFiringAlert()
    {
        string prometheus = Tool("prometheus");
        WriteRuleGroups();
        await using var agent = await AgentUnderTest.StartAsync(_demo);
        int port = FreePort();
        File.WriteAllText(Path.Combine(_dir, "prometheus.yml"), $"""
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            rule_files: [rules.yaml]
            scrape_configs:
              - job_name: tripline
                static_configs:
                  - targets: ['{agent.BaseAddress.Authority}']
            """);
        var (server, log) = StartPrometheus(prometheus, port);
        using var running = server;
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(5) };
            string query = Uri.EscapeDataString("tripline_denied_flows_total{namespace=\"shop\",direction=\"ingress\"}");
            var series = await PollAsync(http, $"/api/v1/query?query={query}", root =>
            {
                var result = root.GetProperty("data").GetProperty("result");
                return result.GetArrayLength() == 1 && result[0].GetProperty("value")[1].GetString() == "2" ? result[0] : (JsonElement?)null;
            }, server, log);
            Assert.Equal("Deployment/backend", series.GetProperty("metric").GetProperty("workload").GetString());
            Assert.Equal("shop/backend-from-frontend,shop/default-deny", series.GetProperty("metric").GetProperty("policy").GetString());

            var alert = await PollAsync(http, "/api/v1/alerts", root =>
            {
                foreach (var a in root.GetProperty("data").GetProperty("alerts").EnumerateArray())
                {
                    if (a.GetProperty("labels").GetProperty("alertname").GetString() == "TriplineDeniedFlows" && a.GetProperty("state").GetString() == "firing") return a;
                }
                return (JsonElement?)null;
            }, server, log);
            Assert.Equal("shop", alert.GetProperty("labels").GetProperty("namespace").GetString());

            // The rules with a `for:` are loaded and evaluated too: NewUnprotectedPods is pending for the unprotected pods of legacy and tools.
            var pending = await PollAsync(http, "/api/v1/alerts", root =>
            {
                foreach (var a in root.GetProperty("data").GetProperty("alerts").EnumerateArray())
                {
                    if (a.GetProperty("labels").GetProperty("alertname").GetString() == "TriplineNewUnprotectedPods") return a;
                }
                return (JsonElement?)null;
            }, server, log);
            Assert.Equal("pending", pending.GetProperty("state").GetString());
            Assert.Contains(pending.GetProperty("labels").GetProperty("namespace").GetString(), new[] { "legacy", "tools" });

            // Every query of the Grafana dashboard is valid PromQL and finds data (manifests have no event age; the demo no evictions).
            await PollAsync(http, "/api/v1/query?query=" + Uri.EscapeDataString("count_over_time(up{job=\"tripline\"}[1m]) >= 3"), root =>
                root.GetProperty("data").GetProperty("result").GetArrayLength() == 1 ? root : (JsonElement?)null, server, log);
            foreach (string expr in DashboardQueries())
            {
                string q = expr.Replace("$__rate_interval", "1m", StringComparison.Ordinal).Replace("$__range", "1h", StringComparison.Ordinal)
                    .Replace("$job", ".*", StringComparison.Ordinal).Replace("$instance", ".*", StringComparison.Ordinal);
                string answer = await http.GetStringAsync("/api/v1/query?query=" + Uri.EscapeDataString(q));
                using var document = JsonDocument.Parse(answer);
                Assert.Equal("success", document.RootElement.GetProperty("status").GetString());
                Assert.True(document.RootElement.GetProperty("data").GetProperty("result").GetArrayLength() > 0 || q.Contains("deny", StringComparison.Ordinal) || q.Contains("not_enforced", StringComparison.Ordinal) || q.Contains("staged", StringComparison.Ordinal) || q.Contains("\"dropped\"", StringComparison.Ordinal) || q.Contains("evictions", StringComparison.Ordinal) || q.Contains("last_event_age", StringComparison.Ordinal) || q.Contains("plaintext", StringComparison.Ordinal),
                    $"dashboard query found nothing: {q}");
            }
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
    }

    /// <summary>
    /// Prometheus scrapes an agent whose doors are locked as in a cluster: HTTPS with a certificate from a CA it is
    /// given, and a bearer token the API server reviews. A scraper with an unknown token gets nothing.
    /// </summary>
    [Fact]
    public async Task PrometheusServer_ScrapesOverTlsWithAReviewedToken_AndAStrangerIsRefused()
    {
        string prometheus = Tool("prometheus");
        var (ca, cert, key) = Support.OpenSsl.IssueServingCertificate(_dir, "agent");
        await using var api = await Correlation.Kubernetes.TestApiServer.StartAsync();
        const string Scraper = "system:serviceaccount:monitoring:prometheus-k8s";
        api.Reviews.AddToken("prometheus-token", Scraper, "system:serviceaccounts");
        api.Reviews.Grant(Scraper, "/metrics");
        File.WriteAllText(Path.Combine(_dir, "token"), "prometheus-token\n");
        await using var agent = await AgentUnderTest.StartAsync(_demo, o => o with
        {
            Manifests = [],
            Kubeconfig = api.WriteKubeconfig(),
            Http = new Tripline.Http.Auth.HttpAuthOptions { TlsCertFile = cert, TlsPrivateKeyFile = key },
        });
        Assert.Equal("https", agent.BaseAddress.Scheme);
        int port = FreePort();
        File.WriteAllText(Path.Combine(_dir, "prometheus.yml"), $"""
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: tripline
                scheme: https
                authorization:
                  credentials_file: token
                tls_config:
                  ca_file: {ca}
                static_configs:
                  - targets: ['{agent.BaseAddress.Authority}']
              - job_name: stranger
                scheme: https
                authorization:
                  credentials: made-up-token
                tls_config:
                  ca_file: {ca}
                static_configs:
                  - targets: ['{agent.BaseAddress.Authority}']
            """);
        var (server, log) = StartPrometheus(prometheus, port);
        using var running = server;
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(5) };
            // Three good scrapes, each with the agent's metrics in it.
            await PollAsync(http, "/api/v1/query?query=" + Uri.EscapeDataString("sum_over_time(up{job=\"tripline\"}[1m]) >= 3"), root =>
                root.GetProperty("data").GetProperty("result").GetArrayLength() == 1 ? root : (JsonElement?)null, server, log);
            await PollAsync(http, "/api/v1/query?query=" + Uri.EscapeDataString("tripline_flows_total{job=\"tripline\"}"), root =>
                root.GetProperty("data").GetProperty("result").GetArrayLength() > 0 ? root : (JsonElement?)null, server, log);
            // The stranger's scrapes failed (401), and none of them brought a series.
            await PollAsync(http, "/api/v1/query?query=" + Uri.EscapeDataString("count_over_time(up{job=\"stranger\"}[1m]) >= 3 and max_over_time(up{job=\"stranger\"}[1m]) == 0"), root =>
                root.GetProperty("data").GetProperty("result").GetArrayLength() == 1 ? root : (JsonElement?)null, server, log);
            string stranger = await http.GetStringAsync("/api/v1/query?query=" + Uri.EscapeDataString("count({job=\"stranger\",__name__=~\"tripline_.*\"})"));
            using (var document = JsonDocument.Parse(stranger)) Assert.Equal(0, document.RootElement.GetProperty("data").GetProperty("result").GetArrayLength());
            // Scrapes every second cost the API server one review of the scraper's access: the answer is cached.
            Assert.Equal(1, api.Reviews.AccessReviewsAsked.Count(r => r.User == Scraper));
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
    }

    /// <summary>Debian's Prometheus on loopback with prometheus.yml of the test's directory; its output kept for failures.</summary>
    private (Process Server, System.Text.StringBuilder Log) StartPrometheus(string prometheus, int port)
    {
        var start = new ProcessStartInfo(prometheus,
            $"--config.file=prometheus.yml --storage.tsdb.path={Path.Combine(_dir, "data")} --web.listen-address=127.0.0.1:{port} --log.level=warn")
        {
            WorkingDirectory = _dir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var server = Process.Start(start)!;
        var log = new System.Text.StringBuilder();
        server.OutputDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        server.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        return (server, log);
    }

    private static async Task<JsonElement> PollAsync(HttpClient http, string path, Func<JsonElement, JsonElement?> found, Process server, System.Text.StringBuilder log)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        string last = "";
        while (DateTime.UtcNow < deadline)
        {
            if (server.HasExited) Assert.Fail($"prometheus exited with {server.ExitCode}:\n{log}");
            try
            {
                last = await http.GetStringAsync(path);
                using var document = JsonDocument.Parse(last);
                if (found(document.RootElement) is { } element) return element.Clone();
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            await Task.Delay(250);
        }
        Assert.Fail($"Prometheus never answered {path} as expected; last answer: {last}\nlog:\n{log}");
        return default;
    }

    private static List<string> DashboardQueries()
    {
        using var dashboard = JsonDocument.Parse(File.ReadAllText(RepositoryFile("deploy/grafana-dashboard.json")));
        var queries = new List<string>();
        foreach (var panel in dashboard.RootElement.GetProperty("panels").EnumerateArray())
        {
            foreach (var target in panel.GetProperty("targets").EnumerateArray()) queries.Add(target.GetProperty("expr").GetString()!);
        }
        Assert.True(queries.Count >= 10);
        return queries;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
