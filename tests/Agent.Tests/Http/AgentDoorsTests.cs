using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Tripline.Cli;
using Tripline.Export;
using Tripline.Hosting;
using Tripline.Http.Auth;
using Tripline.Tests.Correlation.Kubernetes;
using Tripline.Tests.Export;
using Tripline.Tests.Support;
using Tripline.Records;

namespace Tripline.Tests.Http;

/// <summary>
/// The agent's doors (design.md section 12) against the in-process API server's TokenReview and SubjectAccessReview:
/// who gets 401, 403, 503 and 200, what is cached, what the probes need, and the certificate served.
/// </summary>
public sealed class AgentDoorsTests : IDisposable
{
    private const string Reader = "system:serviceaccount:monitoring:prometheus-k8s";
    private const string Responder = "alice@example.com";
    private readonly DemoTraffic _demo = new();
    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-doors-").FullName;

    public void Dispose()
    {
        _demo.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>The demo's cluster, served by the API server, and the tokens of three users.</summary>
    private async Task<TestApiServer> StartServerAsync()
    {
        var server = await TestApiServer.StartAsync();
        foreach (var document in k8s.KubernetesYaml.LoadAllFromString(await File.ReadAllTextAsync(_demo.Manifests)))
        {
            // In place before the capture's packets, so that their addresses are the pods'.
            if (document is k8s.IKubernetesObject<k8s.Models.V1ObjectMeta> { Metadata: { } meta }) meta.CreationTimestamp = DemoTraffic.Start.UtcDateTime.AddDays(-1);
            switch (document)
            {
                case k8s.Models.V1Namespace o: server.Store.Apply(o); break;
                case k8s.Models.V1Pod o: server.Store.Apply(o); break;
                case k8s.Models.V1Service o: server.Store.Apply(o); break;
                case k8s.Models.V1Node o: server.Store.Apply(o); break;
                case k8s.Models.V1NetworkPolicy o: server.Store.Apply(o); break;
                default: throw new InvalidOperationException("the demo holds a " + document.GetType().Name);
            }
        }
        server.Reviews.AddToken("reader-token", Reader, "system:serviceaccounts");
        server.Reviews.Grant(Reader, "/metrics");
        server.Reviews.AddToken("responder-token", Responder, "sre");
        server.Reviews.Grant("sre", "/metrics");
        server.Reviews.Grant("sre", "/api/v1/flows");
        server.Reviews.AddToken("nobody-token", "nobody");
        return server;
    }

    /// <summary>The agent on the demo capture with state from the API server, once its flows are judged and served.</summary>
    private async Task<AgentUnderTest> StartAgentAsync(TestApiServer server, Func<HttpAuthOptions, HttpAuthOptions>? auth = null)
    {
        var agent = await AgentUnderTest.StartAsync(_demo, o => o with
        {
            Manifests = [],
            Kubeconfig = server.WriteKubeconfig(),
            Http = auth is null ? new HttpAuthOptions() : auth(new HttpAuthOptions()),
        });
        // Flows wait for the first list of every resource; the demo's denied ones show that it was judged.
        var ring = agent.Host.Parts.Exporters.OfType<RecentFlows>().Single();
        Assert.True(FlowFilter.TryCreate(new FlowFilterOptions { Verdict = "deny", Protocol = "TCP" }, DateTimeOffset.UtcNow, out var denied, out _));
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (ring.Read(0, denied, 1, out _, out _).Count == 0 || agent.Host.Pipeline.Table.Stats.FlowsEnded < agent.Host.Pipeline.Table.Stats.FlowsStarted)
        {
            Assert.True(DateTime.UtcNow < deadline, "the agent served no denied flow in 30 s");
            await Task.Delay(20);
        }
        return agent;
    }

    /// <summary>A client that trusts exactly the agent's certificate, with a token or none.</summary>
    private static HttpClient Client(AgentUnderTest agent, string? token)
    {
        var served = agent.Host.Parts.ServingCertificate!.Current;
        var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, certificate, _, _) => certificate is not null && certificate.RawData.AsSpan().SequenceEqual(served.RawData) };
        var client = new HttpClient(handler) { BaseAddress = agent.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        if (token is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    private static async Task<(HttpStatusCode Status, string Body)> GetAsync(HttpClient client, string path)
    {
        using var response = await client.GetAsync(path);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Kubernetes_ProtectedPaths_AnswerByTheReviews_AndTheProbesStayOpen()
    {
        await using var server = await StartServerAsync();
        await using var agent = await StartAgentAsync(server);
        Assert.Equal("https", agent.BaseAddress.Scheme);

        using var anonymous = Client(agent, null);
        using var stranger = Client(agent, "made-up-token");
        using var nobody = Client(agent, "nobody-token");
        using var reader = Client(agent, "reader-token");
        using var responder = Client(agent, "responder-token");

        Assert.Equal(HttpStatusCode.OK, (await GetAsync(anonymous, "/healthz")).Status);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(anonymous, "/readyz")).Status);
        foreach (string path in new[] { "/metrics", "/api/v1/flows", "/api/v1/flows?verdict=deny", "/no-such-path" })
        {
            using var response = await anonymous.GetAsync(path);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("Bearer", Assert.Single(response.Headers.WwwAuthenticate).Scheme);
            Assert.Equal(HttpStatusCode.Unauthorized, (await GetAsync(stranger, path)).Status);
            Assert.Equal(HttpStatusCode.Forbidden, (await GetAsync(nobody, path)).Status);
        }
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(reader, "/metrics")).Status);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(reader, "/metrics/")).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await GetAsync(reader, "/api/v1/flows")).Status);
        var flows = await GetAsync(responder, "/api/v1/flows?verdict=deny");
        Assert.Equal(HttpStatusCode.OK, flows.Status);
        Assert.Contains("\"verdict\":\"deny\"", flows.Body, StringComparison.Ordinal);
        Assert.Contains("tripline_flows_total", (await GetAsync(responder, "/metrics")).Body, StringComparison.Ordinal);

        // Every review asked about the path requested, verb get, for the user the token belongs to.
        Assert.Contains((Reader, "/metrics", "get"), server.Reviews.AccessReviewsAsked);
        Assert.Contains((Reader, "/api/v1/flows", "get"), server.Reviews.AccessReviewsAsked);
        Assert.All(server.Reviews.AccessReviewsAsked, r => Assert.Equal("get", r.Verb));
    }

    /// <summary>
    /// Most clusters lack the admin policy CRDs, and an older ClusterRole lacks their rule: the agent judges flows and
    /// is ready all the same, and its metrics tell the three states apart (read, not installed, forbidden).
    /// </summary>
    [Fact]
    public async Task Kubernetes_AdminPolicyCrdAbsentOrForbidden_ReadyAndTheMetricsMarkEach()
    {
        await using var server = await StartServerAsync();
        server.UninstallCustomResource(ApiResource.ClusterNetworkPolicies);
        server.Forbid(ApiResource.AdminNetworkPolicies);
        // StartAgentAsync waits for judged flows, which wait for the whole cluster state.
        await using var agent = await StartAgentAsync(server);
        using var anonymous = Client(agent, null);
        using var reader = Client(agent, "reader-token");

        Assert.Equal((HttpStatusCode.OK, "ready\n"), await GetAsync(anonymous, "/readyz"));
        var (status, metrics) = await GetAsync(reader, "/metrics");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("tripline_cluster_synced{resource=\"clusternetworkpolicies\"} 0", metrics, StringComparison.Ordinal);
        Assert.Contains("tripline_cluster_resource_installed{resource=\"clusternetworkpolicies\"} 0", metrics, StringComparison.Ordinal);
        Assert.Contains("tripline_cluster_synced{resource=\"adminnetworkpolicies\"} 0", metrics, StringComparison.Ordinal);
        Assert.DoesNotContain("tripline_cluster_resource_installed{resource=\"adminnetworkpolicies\"}", metrics, StringComparison.Ordinal);
        Assert.Contains("tripline_cluster_synced{resource=\"baselineadminnetworkpolicies\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("tripline_cluster_resource_installed{resource=\"baselineadminnetworkpolicies\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("tripline_cluster_resource_installed{resource=\"pods\"} 1", metrics, StringComparison.Ordinal);
    }

    /// <summary>
    /// Most clusters have no Calico, and an older ClusterRole has no rule for ServiceAccounts or for Calico's API server:
    /// the agent is ready all the same, and its metrics tell each Calico resource's state, named with its group.
    /// </summary>
    [Fact]
    public async Task Kubernetes_CalicoAbsentOrForbiddenAndServiceAccountsForbidden_ReadyAndTheMetricsMarkEach()
    {
        await using var server = await StartServerAsync();
        var forbidden = ApiResource.CalicoKind(ApiResource.CalicoGroup, "GlobalNetworkPolicy");
        foreach (var resource in ApiResource.Calico.Concat(ApiResource.CalicoCrds).Where(r => r.Kind != "GlobalNetworkPolicy")) server.UninstallCustomResource(resource);
        server.Forbid(forbidden);
        server.Forbid(ApiResource.ServiceAccounts);
        await using var agent = await StartAgentAsync(server);
        using var anonymous = Client(agent, null);
        using var reader = Client(agent, "reader-token");

        Assert.Equal((HttpStatusCode.OK, "ready\n"), await GetAsync(anonymous, "/readyz"));
        var (status, metrics) = await GetAsync(reader, "/metrics");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("tripline_cluster_resource_installed{resource=\"networkpolicies.projectcalico.org\"} 0", metrics, StringComparison.Ordinal);
        Assert.Contains("tripline_cluster_resource_installed{resource=\"networkpolicies.crd.projectcalico.org\"} 0", metrics, StringComparison.Ordinal);
        Assert.Contains("tripline_cluster_synced{resource=\"networkpolicies.crd.projectcalico.org\"} 0", metrics, StringComparison.Ordinal);
        Assert.Contains("tripline_cluster_resource_installed{resource=\"globalnetworkpolicies.crd.projectcalico.org\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("tripline_cluster_synced{resource=\"globalnetworkpolicies.crd.projectcalico.org\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("tripline_cluster_synced{resource=\"globalnetworkpolicies.projectcalico.org\"} 0", metrics, StringComparison.Ordinal);
        Assert.DoesNotContain("tripline_cluster_resource_installed{resource=\"globalnetworkpolicies.projectcalico.org\"}", metrics, StringComparison.Ordinal);
        Assert.Contains("tripline_cluster_synced{resource=\"serviceaccounts\"} 0", metrics, StringComparison.Ordinal);
        // The Kubernetes kind keeps its plain name.
        Assert.Contains("tripline_cluster_synced{resource=\"networkpolicies\"} 1", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Refusals_DoNotTellWhetherAFlowExists()
    {
        await using var server = await StartServerAsync();
        await using var agent = await StartAgentAsync(server);
        using var anonymous = Client(agent, null);
        using var nobody = Client(agent, "nobody-token");
        using var reader = Client(agent, "reader-token");
        using var responder = Client(agent, "responder-token");
        // One query matches flows of the demo, the other none: only an allowed reader can tell them apart.
        const string Existing = "/api/v1/flows?ip=" + DemoTraffic.FrontendIp;
        const string Missing = "/api/v1/flows?ip=192.0.2.77";
        Assert.NotEqual((await GetAsync(responder, Existing)).Body, (await GetAsync(responder, Missing)).Body);
        foreach (var client in new[] { anonymous, nobody, reader })
        {
            var existing = await GetAsync(client, Existing);
            var missing = await GetAsync(client, Missing);
            Assert.True(existing.Status is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden, $"{existing.Status}");
            Assert.Equal(existing, missing);
            Assert.DoesNotContain(DemoTraffic.FrontendIp, existing.Body, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Reviews_AreCached_SuccessesAndRefusalsEachForTheirOwnTime()
    {
        await using var server = await StartServerAsync();
        // Successes kept an hour, refusals not at all: a scrape costs nothing, a refused token is asked again.
        await using (var agent = await StartAgentAsync(server, a => a with { CacheTtl = TimeSpan.FromHours(1), DenyCacheTtl = TimeSpan.Zero }))
        {
            using var reader = Client(agent, "reader-token");
            using var stranger = Client(agent, "made-up-token");
            for (int i = 0; i < 10; i++) Assert.Equal(HttpStatusCode.OK, (await GetAsync(reader, "/metrics")).Status);
            Assert.Equal(1, server.Reviews.TokenReviews);
            Assert.Equal(1, server.Reviews.SubjectAccessReviews);
            for (int i = 0; i < 3; i++) Assert.Equal(HttpStatusCode.Forbidden, (await GetAsync(reader, "/api/v1/flows")).Status);
            Assert.Equal(1, server.Reviews.TokenReviews);
            Assert.Equal(4, server.Reviews.SubjectAccessReviews);
            for (int i = 0; i < 3; i++) Assert.Equal(HttpStatusCode.Unauthorized, (await GetAsync(stranger, "/metrics")).Status);
            Assert.Equal(4, server.Reviews.TokenReviews);
        }
        // Refusals kept an hour too: a client retrying a bad token costs the API server one review.
        await using (var agent = await StartAgentAsync(server, a => a with { CacheTtl = TimeSpan.FromHours(1), DenyCacheTtl = TimeSpan.FromHours(1) }))
        {
            using var stranger = Client(agent, "another-made-up-token");
            using var reader = Client(agent, "reader-token");
            int tokens = server.Reviews.TokenReviews, access = server.Reviews.SubjectAccessReviews;
            for (int i = 0; i < 5; i++) Assert.Equal(HttpStatusCode.Unauthorized, (await GetAsync(stranger, "/metrics")).Status);
            for (int i = 0; i < 5; i++) Assert.Equal(HttpStatusCode.Forbidden, (await GetAsync(reader, "/api/v1/flows")).Status);
            Assert.Equal(tokens + 2, server.Reviews.TokenReviews);
            Assert.Equal(access + 1, server.Reviews.SubjectAccessReviews);
        }
    }

    [Fact]
    public async Task ApiServerSlowFailingOrDown_Gives503_NeverAnOpenDoor_AndIsNotRemembered()
    {
        await using var server = await StartServerAsync();
        await using var agent = await StartAgentAsync(server, a => a with { ReviewTimeout = TimeSpan.FromMilliseconds(300), DenyCacheTtl = TimeSpan.FromHours(1) });
        using var reader = Client(agent, "reader-token");

        server.Reviews.Delay = TimeSpan.FromSeconds(3);
        using (var slow = await reader.GetAsync("/metrics"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, slow.StatusCode);
            Assert.NotNull(slow.Headers.RetryAfter);
            Assert.DoesNotContain("tripline_", await slow.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        server.Reviews.Delay = TimeSpan.Zero;

        server.Reviews.FailWith = 500;
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await GetAsync(reader, "/api/v1/flows")).Status);
        server.Reviews.FailWith = null;

        await server.GoUnreachableAsync();
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await GetAsync(reader, "/metrics")).Status);
        // The probes do not depend on the API server's answers.
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(reader, "/healthz")).Status);
        await server.ComeBackAsync();

        // None of the failures was remembered as a refusal (refusals are kept an hour here).
        var answer = await GetAsync(reader, "/metrics");
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Contains("tripline_flows_total", answer.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ServingCertificate_FromFiles_IsWhatOpensslSees_AndARotationOnDiskIsServedNext()
    {
        var (_, cert, key) = OpenSsl.IssueServingCertificate(_dir, "first");
        string liveCert = Path.Combine(_dir, "tls.crt"), liveKey = Path.Combine(_dir, "tls.key");
        File.Copy(cert, liveCert);
        File.Copy(key, liveKey);
        await using var server = await StartServerAsync();
        await using var agent = await StartAgentAsync(server, a => a with { TlsCertFile = liveCert, TlsPrivateKeyFile = liveKey });
        int port = agent.BaseAddress.Port;
        Assert.Equal(OpenSsl.Fingerprint(cert, _dir), OpenSsl.ServedFingerprint(port, _dir));

        var (_, secondCert, secondKey) = OpenSsl.IssueServingCertificate(_dir, "second");
        // Half a rotation (the new certificate beside the old key) is not a pair: the old one is still served.
        File.Copy(secondCert, liveCert, overwrite: true);
        await Task.Delay(ServingCertificate.CheckInterval + TimeSpan.FromMilliseconds(500));
        Assert.Equal(OpenSsl.Fingerprint(cert, _dir), OpenSsl.ServedFingerprint(port, _dir));

        File.Copy(secondKey, liveKey, overwrite: true);
        string want = OpenSsl.Fingerprint(secondCert, _dir), served = "";
        for (var deadline = DateTime.UtcNow.AddSeconds(30); DateTime.UtcNow < deadline && served != want; await Task.Delay(250))
        {
            served = OpenSsl.ServedFingerprint(port, _dir);
        }
        Assert.Equal(want, served);
    }

    [Fact]
    public async Task FlowsCommand_AgainstARunningAgent_PrintsItsFlowsWithTheSameFilters()
    {
        await using var server = await StartServerAsync();
        await using var agent = await StartAgentAsync(server);
        string token = Path.Combine(_dir, "token");
        await File.WriteAllTextAsync(token, "responder-token\n");
        string pinned = Path.Combine(_dir, "agent.crt");
        await File.WriteAllTextAsync(pinned, agent.Host.Parts.ServingCertificate!.Current.ExportCertificatePem());
        var filter = new FlowFilterOptions { Verdict = "deny" };

        var (code, stdout, stderr) = Query(new FlowsCommand.FlowsOptions(null, filter, "json", false) { Agent = agent.BaseAddress.ToString(), TokenFile = token, CaFile = pinned });
        Assert.True(code == 0, stderr);
        string[] lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(lines);
        Assert.All(lines, l => Assert.Contains("\"verdict\":\"deny\"", l, StringComparison.Ordinal));
        // The same records the agent's ring serves for the same filter.
        using var responder = Client(agent, "responder-token");
        string direct = (await GetAsync(responder, "/api/v1/flows?verdict=deny&limit=100000")).Body;
        Assert.Equal(direct.Split('\n', StringSplitOptions.RemoveEmptyEntries), lines);

        // No token, a user without the reader role, a certificate not trusted: each says what is wrong.
        (code, _, stderr) = Query(new FlowsCommand.FlowsOptions(null, filter, "json", false) { Agent = agent.BaseAddress.ToString(), CaFile = pinned });
        Assert.Equal(ExitCodes.RuntimeFailure, code);
        Assert.Contains("401", stderr, StringComparison.Ordinal);
        await File.WriteAllTextAsync(token, "reader-token");
        (code, _, stderr) = Query(new FlowsCommand.FlowsOptions(null, filter, "json", false) { Agent = agent.BaseAddress.ToString(), TokenFile = token, CaFile = pinned });
        Assert.Equal(ExitCodes.RuntimeFailure, code);
        Assert.Contains("403", stderr, StringComparison.Ordinal);
        var (otherCa, _, _) = OpenSsl.IssueServingCertificate(_dir, "other");
        (code, _, stderr) = Query(new FlowsCommand.FlowsOptions(null, filter, "json", false) { Agent = agent.BaseAddress.ToString(), TokenFile = token, CaFile = otherCa });
        Assert.Equal(ExitCodes.RuntimeFailure, code);
        Assert.Contains("not trusted", stderr, StringComparison.Ordinal);
        (code, _, stderr) = Query(new FlowsCommand.FlowsOptions(Path.Combine(_dir, "x"), filter, "json", false) { Agent = agent.BaseAddress.ToString() });
        Assert.Equal(ExitCodes.BadUsage, code);
        Assert.Contains("--agent and --flow-log", stderr, StringComparison.Ordinal);
    }

    private static (int Code, string Stdout, string Stderr) Query(FlowsCommand.FlowsOptions options)
    {
        using var stdout = new MemoryStream();
        using var stderr = new StringWriter();
        int code = FlowsCommand.Run(options, stdout, stderr, TimeProvider.System, CancellationToken.None);
        return (code, Encoding.UTF8.GetString(stdout.ToArray()), stderr.ToString());
    }

    [Theory]
    [InlineData("127.0.0.1:9090", null, true, "")]
    [InlineData("[::1]:9090", null, true, "")]
    [InlineData(":9090", null, true, "--listen: [::]:9090 is reachable from other hosts")]
    [InlineData("0.0.0.0:9090", null, true, "--listen: 0.0.0.0:9090 is reachable from other hosts")]
    [InlineData("0.0.0.0:9090", "none", true, "")]
    [InlineData("127.0.0.1:9090", "kubernetes", true, "--http-auth kubernetes: with --manifests there is no API server")]
    [InlineData(":9090", null, false, "")]
    [InlineData(":9090", "none", false, "")]
    public void Options_WithManifests_OpenDoorsOnlyOnLoopbackOrWhenAskedFor(string listen, string? mode, bool manifests, string problem)
    {
        string kubeconfig = Path.Combine(_dir, "kubeconfig");
        File.WriteAllText(kubeconfig, "");
        var options = new AgentOptions
        {
            Node = "n",
            Listen = listen,
            Manifests = manifests ? [_demo.Manifests] : [],
            Kubeconfig = manifests ? null : kubeconfig,
            Http = new HttpAuthOptions { Mode = mode switch { "none" => HttpAuthMode.None, "kubernetes" => HttpAuthMode.Kubernetes, _ => null } },
        };
        var problems = options.Validate();
        if (problem == "") Assert.Empty(problems);
        else Assert.Contains(problems, p => p.StartsWith(problem, StringComparison.Ordinal));
    }

    [Fact]
    public void Options_CertificateWithoutKey_OrMissingFiles_AreNamed()
    {
        var problems = new HttpAuthOptions { TlsCertFile = Path.Combine(_dir, "missing.crt") }.Validate(false, new IPEndPoint(IPAddress.Loopback, 1)).ToList();
        Assert.Contains("--tls-cert-file and --tls-private-key-file go together", problems);
        Assert.Contains(problems, p => p.StartsWith("--tls-cert-file: no such file", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Manifests_Default_IsPlainHttpWithoutTokens_OnLoopback()
    {
        await using var agent = await AgentUnderTest.StartAsync(_demo);
        Assert.Equal("http", agent.BaseAddress.Scheme);
        Assert.Null(agent.Host.Parts.Authorization);
        Assert.Contains("tripline_flows_total", await agent.GetAsync("/metrics"), StringComparison.Ordinal);
    }

    [Fact]
    public void SelfSignedCertificate_NamesTheNodeAndLoopback_AndLogsItsFingerprint()
    {
        var logger = new ListLogger();
        using var certificate = ServingCertificate.SelfSigned("node-a", new IPEndPoint(IPAddress.Parse("192.0.2.10"), 9477), logger);
        var served = certificate.Current;
        string names = served.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single().Format(false);
        Assert.Contains("node-a", names, StringComparison.Ordinal);
        Assert.Contains("127.0.0.1", names, StringComparison.Ordinal);
        Assert.Contains("192.0.2.10", names, StringComparison.Ordinal);
        Assert.True(served.HasPrivateKey);
        Assert.Contains(logger.Lines, l => l.Contains(ServingCertificate.Fingerprint(served), StringComparison.Ordinal));
    }
}
