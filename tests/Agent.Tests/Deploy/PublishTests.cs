using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Tripline.Tests.Correlation.Kubernetes;
using Tripline.Tests.Support;

namespace Tripline.Tests.Deploy;

/// <summary>
/// The image cannot be built here (no container engine), so this publishes the agent exactly as the Dockerfile's
/// build stage does, from a build context holding only what the Dockerfile copies, and runs the result as the image
/// and the DaemonSet would.
/// </summary>
[Collection(PublishedAgentCollection.Name)]
public sealed class PublishTests(PublishedAgent published)
{
    private static readonly TimeSpan ProcessTimeout = TimeSpan.FromSeconds(60);

    internal static readonly IReadOnlyDictionary<string, string> NoEnvironment = new Dictionary<string, string>();

    [Fact]
    public void Dockerfile_BuildStage_PublishesWithTheSharedScriptAndStartsTheNativeExecutable()
    {
        string dockerfile = File.ReadAllText(DeployFiles.Path("Dockerfile"));
        var runs = dockerfile.Split('\n').Where(l => l.StartsWith("RUN ", StringComparison.Ordinal) || l.StartsWith(" && ", StringComparison.Ordinal)).ToList();

        Assert.Contains(runs, l => l.TrimEnd().EndsWith("scripts/publish.sh restore", StringComparison.Ordinal));
        Assert.Contains(runs, l => l.TrimEnd().EndsWith("scripts/publish.sh /app", StringComparison.Ordinal));
        Assert.DoesNotContain("dotnet publish", dockerfile, StringComparison.Ordinal);
        Assert.Contains("ENTRYPOINT [\"/app/tripline\"]", dockerfile, StringComparison.Ordinal);
        Assert.DoesNotContain(dockerfile.Split('\n'), l => l.StartsWith("HEALTHCHECK", StringComparison.Ordinal));
        Assert.True(File.Exists(Path.Combine(published.Output, "tripline")), "the native executable the image's entry point and setcap name");
    }

    [Fact]
    public async Task Replay_PublishedAgentOnTheDemo_ExitsZeroWithASummary()
    {
        var result = await RunAsync(published.Executable, ["replay", "--pcap", DeployFiles.Path("deploy/demo/traffic.pcap"), "--manifests", DeployFiles.Path("deploy/demo")], env: NoEnvironment);

        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}\n{result.Output}");
        Assert.Contains("Tripline replay:", result.Output, StringComparison.Ordinal);
        Assert.Matches(@"flows\s+\d+ \(\d+ allowed, [1-9]\d* denied\)", result.Output);
    }

    /// <summary>
    /// <c>&gt; file 2&gt;&amp;1</c>, as a user saves a run: standard output and standard error share one open file, and
    /// neither may write over the other. Flow records on standard output, the summary and log lines on standard error,
    /// and then <c>flows</c>' table with its notice, each checked line by line against the same runs with the two
    /// streams apart.
    /// </summary>
    [Fact]
    public async Task Output_BothStreamsToOneFile_EveryLineOfEachIsKeptWhole()
    {
        string dir = Directory.CreateTempSubdirectory("tripline-published-streams-").FullName;
        try
        {
            string pcap = DeployFiles.Path("deploy/demo/traffic.pcap"), manifests = DeployFiles.Path("deploy/demo");
            string[] replay = ["replay", "--pcap", pcap, "--manifests", manifests, "--flow-log", "-"];

            var (apartOut, apartErr) = await RunApartAsync(published.Executable, replay);
            var together = await RunIntoOneFileAsync(published.Executable, replay, Path.Combine(dir, "replay.out"));

            var records = together.Where(l => l.StartsWith('{')).ToList();
            Assert.Equal(apartOut, records);
            foreach (string record in records) System.Text.Json.JsonDocument.Parse(record).Dispose();
            Assert.Equal(apartOut.Count + apartErr.Count, together.Count);
            Assert.Contains(together, l => l.StartsWith("Tripline replay:", StringComparison.Ordinal));
            // The summary's time and memory figures differ from run to run; its words and order may not.
            Assert.Equal(apartErr.Select(WithoutNumbers), together.Where(l => !l.StartsWith('{')).Select(WithoutNumbers));

            string log = Path.Combine(dir, "demo.log");
            File.WriteAllLines(log, apartOut.Append("{\"cut\": "));
            string[] flows = ["flows", "--flow-log", log, "--namespace", "shop"];
            var (tableOut, tableErr) = await RunApartAsync(published.Executable, flows);
            Assert.NotEmpty(tableErr);
            Assert.True(tableOut.Count > 2, string.Join('\n', tableOut));
            var table = await RunIntoOneFileAsync(published.Executable, flows, Path.Combine(dir, "flows.out"));
            Assert.Equal(tableOut.Concat(tableErr).Order(StringComparer.Ordinal), table.Order(StringComparer.Ordinal));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }

        static async Task<(List<string> Out, List<string> Err)> RunApartAsync(string executable, string[] args)
        {
            using var process = Start(executable, args, NoEnvironment);
            process.StandardInput.Close();
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync().WaitAsync(ProcessTimeout);
            Assert.True(process.ExitCode == 0, await stderr);
            return (Lines(await stdout), Lines(await stderr));
        }

        static async Task<List<string>> RunIntoOneFileAsync(string executable, string[] args, string file)
        {
            var result = await RunAsync("/bin/sh", ["-c", "out=$1; shift; exec \"$@\" > \"$out\" 2>&1", "sh", file, executable, .. args], NoEnvironment);
            Assert.True(result.ExitCode == 0, result.Output + File.ReadAllText(file));
            return Lines(File.ReadAllText(file));
        }

        static List<string> Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();

        static string WithoutNumbers(string line) => Regex.Replace(line, @"\d+(\.\d+)?", "#");
    }

    /// <summary>
    /// The README's demo of recommend with the Native AOT executable: the documents are written without reflection, and
    /// the whatif gate applies them to the demo's traffic without a break, for each kind.
    /// </summary>
    [Theory]
    [InlineData("networkpolicy")]
    [InlineData("calico")]
    [InlineData("clusternetworkpolicy")]
    public async Task Recommend_PublishedAgentOnTheDemo_WhatIfWithTheResultBreaksNothing(string kind)
    {
        string dir = Directory.CreateTempSubdirectory("tripline-published-recommend-").FullName;
        try
        {
            string log = Path.Combine(dir, "demo.log"), policies = Path.Combine(dir, "policies"), manifests = DeployFiles.Path("deploy/demo");
            var replay = await RunAsync(published.Executable, ["replay", "--pcap", DeployFiles.Path("deploy/demo/traffic.pcap"), "--manifests", manifests, "--flow-log", log], env: NoEnvironment);
            Assert.True(replay.ExitCode == 0, replay.Output);
            var recommend = await RunAsync(published.Executable, ["recommend", "--flow-log", log, "--manifests", manifests, "--namespace", "shop", "--kind", kind, "--default-deny", "--out", policies], env: NoEnvironment);
            Assert.True(recommend.ExitCode == 0, recommend.Output);
            Assert.Contains("newly denies no flow", recommend.Output, StringComparison.Ordinal);
            Assert.Equal(6, Directory.GetFiles(policies, "*.yaml").Length);
            var whatif = await RunAsync(published.Executable, ["whatif", "--flow-log", log, "--manifests", manifests, "--apply", policies, "--fail-on-break"], env: NoEnvironment);
            Assert.True(whatif.ExitCode == 0, whatif.Output);
            Assert.Contains("(0 newly denied", whatif.Output, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// The demo's audit report with the Native AOT executable, straight from the capture: the HTML has every section and
    /// the JSON, written without reflection, counts the demo's denied flows by the policies that decided.
    /// </summary>
    [Fact]
    public async Task Report_PublishedAgentOnTheDemoCapture_WritesTheHtmlAndTheJson()
    {
        string dir = Directory.CreateTempSubdirectory("tripline-published-report-").FullName;
        try
        {
            string html = Path.Combine(dir, "report.html"), json = Path.Combine(dir, "report.json");
            var report = await RunAsync(published.Executable, ["report", "--pcap", DeployFiles.Path("deploy/demo/traffic.pcap"), "--manifests", DeployFiles.Path("deploy/demo"),
                "--node", "demo-node-1", "--out", html, "--json", json], env: NoEnvironment);
            Assert.True(report.ExitCode == 0, report.Output);
            Assert.Contains("tripline report:", report.Output, StringComparison.Ordinal);
            string page = File.ReadAllText(html);
            foreach (string id in new[] { "coverage", "posture", "exposure", "violations", "mesh", "map" }) Assert.Contains($"<section id=\"{id}\">", page, StringComparison.Ordinal);
            using var facts = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(json));
            var coverage = facts.RootElement.GetProperty("coverage");
            Assert.Equal("pcap", coverage.GetProperty("input_kind").GetString());
            long denied = coverage.GetProperty("denied_flows").GetInt64();
            Assert.True(denied > 0);
            Assert.Equal(denied, facts.RootElement.GetProperty("violations").GetProperty("items").EnumerateArray().Sum(v => v.GetProperty("flows").GetInt64()));
            Assert.Contains(facts.RootElement.GetProperty("violations").GetProperty("items").EnumerateArray(),
                v => v.GetProperty("policies").EnumerateArray().Any(p => p.GetString() == "shop/default-deny-ingress"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Run_PublishedAgentWithTheDaemonSetsEnvironment_ServesProbesAndMetricsAndStopsOnSigterm()
    {
        // The DaemonSet's doors as shipped: HTTPS with a self-signed certificate, tokens reviewed by the API server.
        await using var server = await TestApiServer.StartAsync();
        server.Store.Apply(K8sObjects.Namespace("shop"));
        server.Reviews.AddToken("scraper-token", "system:serviceaccount:monitoring:prometheus-k8s", "system:serviceaccounts");
        server.Reviews.Grant("system:serviceaccount:monitoring:prometheus-k8s", "/metrics");
        var daemonSet = DeployFiles.DaemonSet();
        var container = daemonSet.Agent();
        string flowLog = Directory.CreateDirectory(Path.Combine(published.Scratch, "flow-log")).FullName;
        // The manifest's own variables, except where this machine differs from a node: a free loopback port, a
        // writable flow-log path, the node name the downward API would give, and the API server.
        var env = container.Env.Where(v => v.Value is not null).ToDictionary(v => v.Name, v => v.Value!);
        env["TRIPLINE_LISTEN"] = "127.0.0.1:0";
        env["TRIPLINE_FLOW_LOG"] = flowLog;
        env["NODE_NAME"] = "deploy-test-node";
        env["TRIPLINE_KUBECONFIG"] = server.WriteKubeconfig();
        string[] args = [.. container.Args, "--pcap", "-"];

        using var agent = RunningAgent.Start(published.Executable, args, env);
        var process = agent.Process;
        try
        {
            await using (var stdin = process.StandardInput.BaseStream)
            await using (var pcap = File.OpenRead(DeployFiles.Path("deploy/demo/traffic.pcap")))
            {
                await pcap.CopyToAsync(stdin);
            }
            var address = await agent.ListeningAsync(ProcessTimeout);
            Assert.Equal("https", address.Scheme);
            using var http = agent.Client(address);
            Assert.Equal(HttpStatusCode.OK, await WaitForStatusAsync(http, container.ReadinessProbe.HttpGet.Path, HttpStatusCode.OK));
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(container.LivenessProbe.HttpGet.Path)).StatusCode);
            string metricsPath = DeployFiles.PodMonitor().Spec.PodMetricsEndpoints[0].Path!;
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync(metricsPath)).StatusCode);
            using var scraper = agent.Client(address, "scraper-token");
            string metrics = await scraper.GetStringAsync(metricsPath);
            Assert.Contains("tripline_flows_total", metrics, StringComparison.Ordinal);
            // The scraper may read metrics, not flows.
            Assert.Equal(HttpStatusCode.Forbidden, (await scraper.GetAsync("/api/v1/flows")).StatusCode);

            Assert.Equal(0, await RunKillAsync(process.Id));
            await process.WaitForExitAsync().WaitAsync(ProcessTimeout);
            Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}\n{agent.Output}");
            string[] records = [.. Directory.GetFiles(flowLog).SelectMany(File.ReadLines)];
            Assert.NotEmpty(records);
            Assert.All(records, r => Assert.Contains("\"node\":\"deploy-test-node\"", r, StringComparison.Ordinal));
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task Run_PublishedAgentWithAKubeconfig_ListsAndWatchesTheApiServerAndJudgesByIt()
    {
        // The published executable is compiled ahead of time: this is where the JSON and YAML that KubernetesClient
        // reads (the kubeconfig, lists, watch events) must work without reflection emitting code.
        await using var server = await TestApiServer.StartAsync();
        server.Store.Apply(K8sObjects.Namespace("shop"));
        server.Store.Apply(K8sObjects.Node("node-a", "192.168.1.10"));
        server.Store.Apply(K8sObjects.Pod("shop", "client", "10.244.0.3", new Dictionary<string, string> { ["app"] = "client" }));
        server.Store.Apply(K8sObjects.Pod("shop", "web", "10.244.0.2", new Dictionary<string, string> { ["app"] = "web" }));
        server.Store.Apply(K8sObjects.DenyAll("shop"));
        // Custom resources too: a ClusterNetworkPolicy listed, one watched, and a CRD not installed.
        server.Store.Apply(K8sObjects.ClusterNetworkPolicy("listed"));
        server.UninstallCustomResource(ApiResource.AdminNetworkPolicies);
        // Calico from its CRDs alone, and ServiceAccounts.
        foreach (var resource in ApiResource.Calico) server.UninstallCustomResource(resource);
        server.Store.Apply(K8sObjects.Calico(ApiResource.CalicoCrdGroup, "GlobalNetworkPolicy", "default.listed"));
        server.Store.Apply(K8sObjects.ServiceAccount("shop", "listed"));
        string dir = Directory.CreateTempSubdirectory("tripline-published-api-").FullName;
        string pcap = Path.Combine(dir, "traffic.pcap");
        TestPcap.WriteConnection(pcap, "10.244.0.3", 40000, "10.244.0.2", 8080);
        string flowLog = Directory.CreateDirectory(Path.Combine(dir, "flow-log")).FullName;
        string[] args = ["run", "--kubeconfig", server.WriteKubeconfig(), "--pcap", pcap, "--flow-log", flowLog, "--listen", "127.0.0.1:0", "--node", "node-a"];

        using var agent = RunningAgent.Start(published.Executable, args, NoEnvironment);
        var process = agent.Process;
        try
        {
            process.StandardInput.Close();
            server.Reviews.AddToken("reader-token", "responder");
            server.Reviews.Grant("responder", "/metrics");
            using var http = agent.Client(await agent.ListeningAsync(ProcessTimeout), "reader-token");
            Assert.Equal(HttpStatusCode.OK, await WaitForStatusAsync(http, "/readyz", HttpStatusCode.OK));

            // The flow was judged by the listed pods and policy.
            string[] records = [];
            for (var deadline = DateTime.UtcNow + ProcessTimeout; DateTime.UtcNow < deadline && records.Length < 2; await Task.Delay(100))
            {
                records = [.. Directory.GetFiles(flowLog).SelectMany(ReadShared).Where(l => l.EndsWith('}'))];
            }
            Assert.True(records.Length == 2, $"{records.Length} records\n{agent.Output}");
            foreach (string line in records)
            {
                using var record = System.Text.Json.JsonDocument.Parse(line);
                var root = record.RootElement;
                Assert.Equal("deny", root.GetProperty("verdict").GetString());
                Assert.Equal("client", root.GetProperty("src").GetProperty("pod").GetString());
                Assert.Equal("web", root.GetProperty("dst").GetProperty("pod").GetString());
                Assert.Contains("shop/deny-all", root.GetProperty("ingress").GetProperty("policies").EnumerateArray().Select(p => p.GetString()));
            }

            // A pod and a ClusterNetworkPolicy added now reach the agent as watch events.
            server.Store.Apply(K8sObjects.Pod("shop", "late", "10.244.0.4"));
            server.Store.Apply(K8sObjects.ClusterNetworkPolicy("watched"));
            server.Store.Apply(K8sObjects.Calico(ApiResource.CalicoCrdGroup, "GlobalNetworkPolicy", "default.watched"));
            server.Store.Apply(K8sObjects.ServiceAccount("shop", "watched", new Dictionary<string, string> { ["role"] = "web" }));
            string[] expected =
            [
                "tripline_cluster_objects{resource=\"pods\"} 3",
                "tripline_cluster_objects{resource=\"clusternetworkpolicies\"} 2",
                // Applied from the watch event itself, not found by a relist after an event it could not read.
                "tripline_cluster_events_total{resource=\"clusternetworkpolicies\"} 1",
                "tripline_cluster_relists_total{resource=\"clusternetworkpolicies\"} 0",
                "tripline_cluster_resource_installed{resource=\"adminnetworkpolicies\"} 0",
                "tripline_cluster_objects{resource=\"globalnetworkpolicies.crd.projectcalico.org\"} 2",
                "tripline_cluster_events_total{resource=\"globalnetworkpolicies.crd.projectcalico.org\"} 1",
                "tripline_cluster_resource_installed{resource=\"globalnetworkpolicies.projectcalico.org\"} 0",
                "tripline_cluster_objects{resource=\"serviceaccounts\"} 2",
                "tripline_cluster_events_total{resource=\"serviceaccounts\"} 1",
                "tripline_cluster_relists_total{resource=\"serviceaccounts\"} 0",
            ];
            string metrics = "";
            for (var deadline = DateTime.UtcNow + ProcessTimeout; DateTime.UtcNow < deadline && !expected.All(e => metrics.Contains(e, StringComparison.Ordinal)); await Task.Delay(200))
            {
                metrics = await http.GetStringAsync("/metrics");
            }
            Assert.All(expected, e => Assert.Contains(e, metrics, StringComparison.Ordinal));
            Assert.True(server.WatchRequests(ApiResource.ClusterNetworkPolicies) > 0);

            Assert.Equal(0, await RunKillAsync(process.Id));
            await process.WaitForExitAsync().WaitAsync(ProcessTimeout);
            Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}\n{agent.Output}");
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task Run_PublishedAgentWithAnExecCredentialPlugin_AuthenticatesAndBecomesReady()
    {
        // Cloud clusters hand out tokens through exec plugins (aws eks get-token, gke-gcloud-auth-plugin): the
        // published executable runs the plugin and reads its ExecCredential.
        await using var server = await TestApiServer.StartAsync();
        server.Store.Apply(K8sObjects.Namespace("shop"));
        string dir = Directory.CreateTempSubdirectory("tripline-published-exec-").FullName;
        try
        {
            string plugin = Path.Combine(dir, "credential-plugin");
            await File.WriteAllTextAsync(plugin, "#!/bin/sh\nprintf '%s' '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"" + TestApiServer.Token + "\"}}'\n");
            File.SetUnixFileMode(plugin, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            string kubeconfig = Path.Combine(dir, "kubeconfig");
            string withToken = await File.ReadAllTextAsync(server.WriteKubeconfig());
            await File.WriteAllTextAsync(kubeconfig, withToken.Replace($"token: {TestApiServer.Token}", $"exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {plugin}", StringComparison.Ordinal));
            Assert.DoesNotContain(TestApiServer.Token, await File.ReadAllTextAsync(kubeconfig), StringComparison.Ordinal);

            using var agent = RunningAgent.Start(published.Executable, ["run", "--kubeconfig", kubeconfig, "--pcap", DeployFiles.Path("deploy/demo/traffic.pcap"), "--flow-log", Path.Combine(dir, "flows.log"), "--listen", "127.0.0.1:0", "--node", "node-a"], NoEnvironment);
            try
            {
                using var http = agent.Client(await agent.ListeningAsync(ProcessTimeout));
                var status = await WaitForStatusAsync(http, "/readyz", HttpStatusCode.OK);
                Assert.True(status == HttpStatusCode.OK, $"/readyz {status}\n{agent.Output}");
                Assert.True(server.ListRequests(ApiResource.Namespaces) > 0, "the agent never listed namespaces");
            }
            finally
            {
                if (!agent.Process.HasExited) agent.Process.Kill(entireProcessTree: true);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static IEnumerable<string> ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        var lines = new List<string>();
        while (reader.ReadLine() is { } line) lines.Add(line);
        return lines;
    }

    private static async Task<HttpStatusCode> WaitForStatusAsync(HttpClient http, string path, HttpStatusCode wanted)
    {
        var deadline = DateTime.UtcNow + ProcessTimeout;
        HttpStatusCode last;
        do
        {
            last = (await http.GetAsync(path)).StatusCode;
            if (last == wanted) break;
            await Task.Delay(100);
        }
        while (DateTime.UtcNow < deadline);
        return last;
    }

    /// <summary>SIGTERM, as the kubelet stops a container.</summary>
    private static async Task<int> RunKillAsync(int pid) =>
        (await RunAsync("kill", ["-TERM", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)], env: NoEnvironment)).ExitCode;

    internal static Process Start(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string> env, string? workingDirectory = null)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? DeployFiles.RepositoryRoot,
        };
        foreach (string arg in args) info.ArgumentList.Add(arg);
        // Nothing from the test host's own environment may configure the agent.
        foreach (string name in info.Environment.Keys.Where(k => k.StartsWith("TRIPLINE_", StringComparison.Ordinal) || k == "NODE_NAME").ToList()) info.Environment.Remove(name);
        foreach (var (name, value) in env) info.Environment[name] = value;
        return Process.Start(info) ?? throw new InvalidOperationException("could not start " + file);
    }

    internal static async Task<(int ExitCode, string Output)> RunAsync(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string> env, string? workingDirectory = null, TimeSpan? timeout = null)
    {
        using var process = Start(file, args, env, workingDirectory);
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(timeout ?? ProcessTimeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        return (process.ExitCode, await stdout + await stderr);
    }
}

/// <summary>The published agent running as a child process: its output kept for failure messages, its address once it listens.</summary>
internal sealed partial class RunningAgent : IDisposable
{
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private RunningAgent(Process process)
    {
        Process = process;
        DataReceivedEventHandler onLine = (_, e) =>
        {
            if (e.Data is null) return;
            lock (_output) _output.AppendLine(e.Data);
            if (ListeningLine().Match(e.Data) is { Success: true } m) _listening.TrySetResult(new Uri(m.Groups[1].Value));
        };
        process.OutputDataReceived += onLine;
        process.ErrorDataReceived += onLine;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public Process Process { get; }

    public string Output
    {
        get
        {
            lock (_output) return _output.ToString();
        }
    }

    public static RunningAgent Start(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string> env) =>
        new(PublishTests.Start(file, args, env));

    /// <summary>The address from the agent's "listening on" line; fails with its output if it exits or never says.</summary>
    public async Task<Uri> ListeningAsync(TimeSpan timeout)
    {
        var first = await Task.WhenAny(_listening.Task, Process.WaitForExitAsync(), Task.Delay(timeout));
        Assert.True(first == _listening.Task, $"no listening line (exited: {Process.HasExited})\n{Output}");
        return await _listening.Task;
    }

    /// <summary>The SHA-256 fingerprint the agent logged for its self-signed certificate.</summary>
    public string? Fingerprint => FingerprintLine().Match(Output) is { Success: true } m ? m.Groups[1].Value : null;

    /// <summary>
    /// A client of the agent: over HTTPS it accepts exactly the certificate whose fingerprint the agent logged (pinned,
    /// as a responder would), and sends the bearer token when one is given.
    /// </summary>
    public HttpClient Client(Uri address, string? token = null)
    {
        var handler = new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, certificate, _, _) => certificate is not null && Fingerprint is { } pinned
                && string.Join(':', System.Security.Cryptography.SHA256.HashData(certificate.RawData).Select(b => b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture))) == pinned,
        };
        var client = new HttpClient(handler) { BaseAddress = address, Timeout = TimeSpan.FromSeconds(10) };
        if (token is not null) client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    public void Dispose() => Process.Dispose();

    [GeneratedRegex(@"listening on (https?://\S+)")]
    private static partial Regex ListeningLine();

    [GeneratedRegex("fingerprint ([0-9A-F]{2}(?::[0-9A-F]{2}){31})")]
    private static partial Regex FingerprintLine();
}

/// <summary>The tests that run the published executable share one publish (two and a half minutes of Native AOT).</summary>
[CollectionDefinition(Name)]
public sealed class PublishedAgentCollection : ICollectionFixture<PublishedAgent>
{
    public const string Name = "published agent";
}

/// <summary>
/// Publishes once for the collection: copies the Dockerfile's build context (the paths its build stage COPYs, without
/// bin/ and obj/, as .dockerignore leaves them out) to a scratch directory and runs scripts/publish.sh there, like
/// the image's two RUN steps.
/// </summary>
public sealed class PublishedAgent : IAsyncLifetime
{
    private static readonly TimeSpan PublishTimeout = TimeSpan.FromMinutes(15);

    public string Scratch { get; } = Directory.CreateTempSubdirectory("tripline-publish-").FullName;

    public string Output => Path.Combine(Scratch, "app");

    public string Executable => Path.Combine(Output, "tripline");

    public async Task InitializeAsync()
    {
        string context = Path.Combine(Scratch, "context");
        foreach (var (source, destination) in BuildStageCopies(File.ReadAllLines(DeployFiles.Path("Dockerfile"))))
        {
            CopyIntoContext(DeployFiles.Path(source), Path.Combine(context, destination.TrimStart('/')), source.EndsWith('/'));
        }
        await PublishAsync(context, "restore");
        await PublishAsync(context, Output);
    }

    public Task DisposeAsync()
    {
        Directory.Delete(Scratch, recursive: true);
        return Task.CompletedTask;
    }

    /// <summary>
    /// The build stage's <c>COPY src... dest</c> lines (relative destinations resolved against WORKDIR /src, which is
    /// the context root here). Sources are listed one by one in the Dockerfile: Docker's globs would flatten paths.
    /// </summary>
    internal static IEnumerable<(string Source, string Destination)> BuildStageCopies(string[] dockerfile)
    {
        bool inBuild = false;
        foreach (string line in dockerfile)
        {
            if (line.StartsWith("FROM ", StringComparison.Ordinal)) inBuild = line.Contains(" AS build", StringComparison.Ordinal);
            if (!inBuild || !line.StartsWith("COPY ", StringComparison.Ordinal)) continue;
            var words = line["COPY ".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(w => !w.StartsWith("--", StringComparison.Ordinal)).ToArray();
            string destination = words[^1];
            foreach (string source in words[..^1])
            {
                string target = destination.EndsWith('/') || destination == "./" ? Path.Combine(destination, source.EndsWith('/') ? "" : Path.GetFileName(source)) : destination;
                yield return (source, source.EndsWith('/') ? destination : target);
            }
        }
    }

    private static void CopyIntoContext(string source, string destination, bool directory)
    {
        if (!directory)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            File.Copy(source, destination, overwrite: true);
            return;
        }
        foreach (string file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(source, file);
            var parts = relative.Split(Path.DirectorySeparatorChar);
            if (parts.Any(p => p is "bin" or "obj")) continue;
            string target = Path.Combine(destination, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target, overwrite: true);
        }
    }

    /// <summary>
    /// Under the lead's CI tests run alone; when other builds may run beside them (TRIPLINE_TEST_BUILD_LOCK set), the
    /// publish takes the shared build lock.
    /// </summary>
    private static async Task PublishAsync(string context, string argument)
    {
        string script = Path.Combine(context, "scripts", "publish.sh");
        bool locked = Environment.GetEnvironmentVariable("TRIPLINE_TEST_BUILD_LOCK") is { Length: > 0 };
        var (file, args) = locked ? ("flock", new[] { "/tmp/tripline-build.lock", script, argument }) : (script, new[] { argument });
        var (exitCode, output) = await PublishTests.RunAsync(file, args, env: PublishTests.NoEnvironment, workingDirectory: context, timeout: PublishTimeout);
        Assert.True(exitCode == 0, $"scripts/publish.sh {argument} exited {exitCode}:\n{output}");
    }
}
