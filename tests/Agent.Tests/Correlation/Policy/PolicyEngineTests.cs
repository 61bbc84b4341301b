using System.Text.Json;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;
using Tripline.Correlation.Policy;
using static Tripline.Tests.Correlation.Policy.PolicyBuilders;

namespace Tripline.Tests.Correlation.Policy;

/// <summary>The corners of NetworkPolicy v1 that implementations get wrong, one fact each.</summary>
public sealed class PolicyEngineTests
{
    private static readonly PodInfo Web = Pod("prod", "web", "10.1.0.1", new() { ["app"] = "web" }, new ContainerPortInfo("http", 8080, "TCP"));
    private static readonly PodInfo Api = Pod("prod", "api", "10.1.0.2", new() { ["app"] = "api" }, new ContainerPortInfo("http", 9090, "TCP"));
    private static readonly PodInfo Tool = Pod("tools", "tool", "10.2.0.1", new() { ["app"] = "tool" });

    private static PolicyEngine Engine(string yaml, params PodInfo[] pods) =>
        PolicyEngine.Compile(Snapshot(pods.Length == 0 ? [Web, Api, Tool] : pods, yaml, [Namespace("prod", new() { ["env"] = "prod" }), Namespace("tools", new() { ["env"] = "ops" })]));

    private const string Header = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n";

    [Fact]
    public void Evaluate_EmptyPodSelector_SelectsEveryPodOfItsNamespaceOnly()
    {
        var engine = Engine(Header + "metadata: {name: deny, namespace: prod}\nspec: {podSelector: {}, policyTypes: [Ingress]}");
        Assert.False(engine.Evaluate(Tool, Web, 80).Allowed);
        Assert.False(engine.Evaluate(Tool, Api, 80).Allowed);
        Assert.True(engine.Evaluate(Web, Tool, 80).Allowed);
        Assert.Empty(engine.PoliciesSelecting(Tool, PolicyDirection.Ingress));
        Assert.Equal(["prod/deny"], engine.PoliciesSelecting(Web, PolicyDirection.Ingress));
    }

    [Fact]
    public void Evaluate_EmptyRuleInIngressList_AllowsEveryone()
    {
        var engine = Engine(Header + "metadata: {name: all, namespace: prod}\nspec: {podSelector: {}, ingress: [{}]}");
        var verdict = engine.Evaluate(Tool, Web, 1234, PolicyProtocol.UDP);
        Assert.True(verdict.Allowed);
        Assert.Equal(["prod/all"], verdict.Ingress!.Policies);
    }

    [Fact]
    public void Evaluate_RuleWithoutFromButWithPorts_AllowsEveryoneOnThosePorts()
    {
        var engine = Engine(Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {}, ingress: [{ports: [{port: 80}]}]}");
        Assert.True(engine.Evaluate(Tool, Web, 80).Allowed);
        Assert.False(engine.Evaluate(Tool, Web, 81).Allowed);
    }

    [Fact]
    public void Evaluate_AbsentIngressWithIngressType_DeniesEveryoneAndNamesTheIsolatingPolicy()
    {
        var engine = Engine(Header + "metadata: {name: iso, namespace: prod}\nspec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Ingress]}");
        var verdict = engine.Evaluate(Api, Web, 8080);
        Assert.False(verdict.Allowed);
        Assert.True(verdict.Ingress!.Isolated);
        Assert.Equal(["prod/iso"], verdict.Ingress.Policies);
        Assert.Same(SideVerdict.NotIsolated, verdict.Egress);
    }

    [Fact]
    public void Evaluate_EmptyNamespaceSelector_MatchesPodsOfEveryNamespace()
    {
        var engine = Engine(Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {matchLabels: {app: web}}, ingress: [{from: [{namespaceSelector: {}}]}]}");
        Assert.True(engine.Evaluate(Tool, Web, 80).Allowed);
        Assert.True(engine.Evaluate(Api, Web, 80).Allowed);
        // A namespaceSelector matches pods, never addresses outside the cluster.
        Assert.False(engine.Evaluate(new ResolvedEndpoint(EndpointKind.External), Ip("8.8.8.8"), Web.AsEndpoint(), IpOf(Web), 80, PolicyProtocol.TCP).Allowed);
    }

    [Fact]
    public void Evaluate_PodSelectorAndNamespaceSelectorInOnePeer_RequiresBoth()
    {
        var other = Pod("tools", "api-copy", "10.2.0.2", new() { ["app"] = "api" });
        var engine = Engine(Header + "metadata: {name: p, namespace: prod}\nspec:\n  podSelector: {matchLabels: {app: web}}\n  ingress:\n  - from:\n    - {namespaceSelector: {matchLabels: {env: ops}}, podSelector: {matchLabels: {app: api}}}", Web, Api, Tool, other);
        Assert.True(engine.Evaluate(other, Web, 80).Allowed);
        Assert.False(engine.Evaluate(Tool, Web, 80).Allowed);
        Assert.False(engine.Evaluate(Api, Web, 80).Allowed);
    }

    [Fact]
    public void Evaluate_PodSelectorAndNamespaceSelectorInTwoPeers_AllowsEither()
    {
        var engine = Engine(Header + "metadata: {name: p, namespace: prod}\nspec:\n  podSelector: {matchLabels: {app: web}}\n  ingress:\n  - from:\n    - {namespaceSelector: {matchLabels: {env: ops}}}\n    - {podSelector: {matchLabels: {app: api}}}");
        Assert.True(engine.Evaluate(Tool, Web, 80).Allowed);
        Assert.True(engine.Evaluate(Api, Web, 80).Allowed);
    }

    [Theory]
    [InlineData("In", "[web, api]", "web", true)]
    [InlineData("In", "[api]", "web", false)]
    [InlineData("NotIn", "[api]", "web", true)]
    [InlineData("NotIn", "[web]", "web", false)]
    [InlineData("Exists", "", "web", true)]
    [InlineData("DoesNotExist", "", "web", false)]
    public void Evaluate_MatchExpressionOperators_SelectAsApimachineryDoes(string op, string values, string app, bool selected)
    {
        string expr = values.Length == 0 ? $"{{key: app, operator: {op}}}" : $"{{key: app, operator: {op}, values: {values}}}";
        var engine = Engine(Header + $"metadata: {{name: p, namespace: prod}}\nspec: {{podSelector: {{matchExpressions: [{expr}]}}, policyTypes: [Ingress]}}");
        var pod = app == "web" ? Web : Api;
        Assert.Equal(selected, engine.PoliciesSelecting(pod, PolicyDirection.Ingress).Count == 1);
    }

    [Fact]
    public void Evaluate_NotInOnMissingKey_SelectsThePod()
    {
        var engine = Engine(Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {matchExpressions: [{key: tier, operator: NotIn, values: [db]}]}, policyTypes: [Ingress]}");
        Assert.Single(engine.PoliciesSelecting(Web, PolicyDirection.Ingress));
    }

    [Fact]
    public void Evaluate_IpBlockWithExcept_MatchesBlockButNotTheException()
    {
        var engine = Engine(Header + "metadata: {name: p, namespace: prod}\nspec:\n  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8, 192.168.1.0/24]}}]");
        Verdict To(string ip) => engine.Evaluate(Web.AsEndpoint(), IpOf(Web), new ResolvedEndpoint(EndpointKind.External), Ip(ip), 443, PolicyProtocol.TCP);
        Assert.True(To("8.8.8.8").Allowed);
        Assert.True(To("192.168.2.1").Allowed);
        Assert.False(To("192.168.1.7").Allowed);
        Assert.False(To("10.9.9.9").Allowed);
        // An IPv4 block says nothing about IPv6 destinations.
        Assert.False(To("2001:db8::1").Allowed);
        // Pods are matched by ipBlock too, by their IP: 10.1.0.2 is excepted.
        Assert.False(engine.Evaluate(Web, Api, 80).Allowed);
    }

    [Fact]
    public void Evaluate_IPv6IpBlock_MatchesIPv6PodsAndAddresses()
    {
        var web6 = Pod("prod", "web6", "fd00:1::5", new() { ["app"] = "web" });
        var client6 = Pod("tools", "client6", "fd00:2::7", new() { ["app"] = "tool" });
        var engine = Engine(Header + "metadata: {name: p, namespace: prod}\nspec:\n  podSelector: {matchLabels: {app: web}}\n  ingress:\n  - from: [{ipBlock: {cidr: 'fd00::/16', except: ['fd00:3::/32']}}]", web6, client6, Tool);
        Assert.True(engine.Evaluate(client6, web6, 80).Allowed);
        Assert.False(engine.Evaluate(new ResolvedEndpoint(EndpointKind.External), Ip("fd00:3::9"), web6.AsEndpoint(), IpOf(web6), 80, PolicyProtocol.TCP).Allowed);
        Assert.False(engine.Evaluate(Tool, web6, 80).Allowed);
    }

    [Fact]
    public void Evaluate_NamedPortDeclaredTwiceWithDifferentNumbers_MatchesEitherNumber()
    {
        var twin = Pod("prod", "twin", "10.1.0.9", new() { ["app"] = "web" }, new ContainerPortInfo("metrics", 9100, "TCP"), new ContainerPortInfo("metrics", 9200, "TCP"));
        var engine = Engine(Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {}, ingress: [{ports: [{port: metrics}]}]}", twin, Tool);
        Assert.True(engine.Evaluate(Tool, twin, 9100).Allowed);
        Assert.True(engine.Evaluate(Tool, twin, 9200).Allowed);
        Assert.False(engine.Evaluate(Tool, twin, 9300).Allowed);
    }

    [Fact]
    public void Evaluate_NamedPortResolvesPerDestinationPod_SameNameDifferentNumbers()
    {
        var engine = Engine(Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {}, ingress: [{ports: [{port: http}]}]}");
        Assert.True(engine.Evaluate(Tool, Web, 8080).Allowed);
        Assert.False(engine.Evaluate(Tool, Web, 9090).Allowed);
        Assert.True(engine.Evaluate(Tool, Api, 9090).Allowed);
        Assert.False(engine.Evaluate(Tool, Api, 8080).Allowed);
    }

    [Fact]
    public void Evaluate_NamedPortThePodDoesNotDeclare_MatchesNothing()
    {
        var bare = Pod("prod", "bare", "10.1.0.8", new() { ["app"] = "web" });
        var engine = Engine(Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {}, ingress: [{ports: [{port: http}]}]}", bare, Tool);
        Assert.False(engine.Evaluate(Tool, bare, 8080).Allowed);
        // The name is declared for TCP; a UDP rule of the same name resolves to nothing.
        var udp = Engine(Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {}, ingress: [{ports: [{port: http, protocol: UDP}]}]}");
        Assert.False(udp.Evaluate(Tool, Web, 8080, PolicyProtocol.UDP).Allowed);
    }

    [Fact]
    public void Evaluate_EgressNamedPortToNonPod_MatchesNothing()
    {
        var engine = Engine(Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{port: http}]}]}");
        Assert.True(engine.Evaluate(Web, Web with { Name = "web-2", Ips = [System.Net.IPAddress.Parse("10.1.0.3")] }, 8080).Allowed);
        Assert.False(engine.Evaluate(Web.AsEndpoint(), IpOf(Web), new ResolvedEndpoint(EndpointKind.External), Ip("1.1.1.1"), 8080, PolicyProtocol.TCP).Allowed);
    }

    [Fact]
    public void Evaluate_EndPortRange_IsInclusive()
    {
        var engine = Engine(Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {}, ingress: [{ports: [{port: 32000, endPort: 32768}]}]}");
        Assert.False(engine.Evaluate(Tool, Web, 31999).Allowed);
        Assert.True(engine.Evaluate(Tool, Web, 32000).Allowed);
        Assert.True(engine.Evaluate(Tool, Web, 32768).Allowed);
        Assert.False(engine.Evaluate(Tool, Web, 32769).Allowed);
    }

    [Fact]
    public void Evaluate_PortWithoutProtocol_DefaultsToTcp()
    {
        var engine = Engine(Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {}, ingress: [{ports: [{port: 53}]}]}");
        Assert.True(engine.Evaluate(Tool, Web, 53, PolicyProtocol.TCP).Allowed);
        Assert.False(engine.Evaluate(Tool, Web, 53, PolicyProtocol.UDP).Allowed);
    }

    [Fact]
    public void Evaluate_ProtocolWithoutPort_MatchesEveryPortOfThatProtocol()
    {
        var engine = Engine(Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {}, ingress: [{ports: [{protocol: UDP}]}]}");
        Assert.True(engine.Evaluate(Tool, Web, 5353, PolicyProtocol.UDP).Allowed);
        Assert.False(engine.Evaluate(Tool, Web, 5353, PolicyProtocol.TCP).Allowed);
        Assert.False(engine.Evaluate(Tool, Web, 0, PolicyProtocol.ICMP).Allowed);
    }

    [Fact]
    public void Evaluate_IcmpAgainstRuleWithoutPorts_IsAllowed()
    {
        var engine = Engine(Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {}, ingress: [{from: [{namespaceSelector: {}}]}]}");
        Assert.True(engine.Evaluate(Tool, Web, 0, PolicyProtocol.ICMP).Allowed);
    }

    [Fact]
    public void Evaluate_PolicyTypesAbsentWithEgressRules_InfersEgressIsolation()
    {
        var engine = Engine(Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {matchLabels: {app: web}}, egress: [{ports: [{port: 53, protocol: UDP}]}]}");
        Assert.False(engine.Evaluate(Web, Tool, 80).Allowed);
        Assert.True(engine.Evaluate(Web, Tool, 53, PolicyProtocol.UDP).Allowed);
        // Ingress is always inferred: no ingress rules, so all ingress is denied.
        Assert.False(engine.Evaluate(Tool, Web, 80).Allowed);
    }

    [Fact]
    public void Evaluate_PolicyTypesAbsentWithEmptyEgressList_IsIngressOnly()
    {
        var engine = Engine(Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {matchLabels: {app: web}}, egress: []}");
        Assert.Empty(engine.PoliciesSelecting(Web, PolicyDirection.Egress));
        Assert.True(engine.Evaluate(Web, Tool, 80).Allowed);
    }

    [Fact]
    public void Evaluate_PolicyInOtherNamespace_NeverSelectsThePod()
    {
        var engine = Engine(Header + "metadata: {name: p, namespace: tools}\nspec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Ingress, Egress]}");
        Assert.Empty(engine.PoliciesSelecting(Web, PolicyDirection.Ingress));
        Assert.True(engine.Evaluate(Api, Web, 80).Allowed);
    }

    [Fact]
    public void Evaluate_SeveralPolicies_AreAUnionAndNameEveryAllowingPolicy()
    {
        var engine = Engine(Header + "metadata: {name: a, namespace: prod}\nspec: {podSelector: {}, ingress: [{ports: [{port: 80}]}]}\n---\n"
            + Header + "metadata: {name: b, namespace: prod}\nspec: {podSelector: {matchLabels: {app: web}}, ingress: [{from: [{namespaceSelector: {matchLabels: {env: ops}}}]}]}\n---\n"
            + Header + "metadata: {name: c, namespace: prod}\nspec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Ingress]}");
        var both = engine.Evaluate(Tool, Web, 80);
        Assert.True(both.Allowed);
        Assert.Equal(["prod/a", "prod/b"], both.Ingress!.Policies);
        var denied = engine.Evaluate(Api, Web, 81);
        Assert.False(denied.Allowed);
        Assert.Equal(["prod/a", "prod/b", "prod/c"], denied.Ingress!.Policies);
    }

    [Fact]
    public void Evaluate_EgressDeniedButIngressAllowed_ReportsEgressPolicies()
    {
        var engine = Engine(Header + "metadata: {name: out, namespace: tools}\nspec: {podSelector: {}, policyTypes: [Egress]}\n---\n"
            + Header + "metadata: {name: in, namespace: prod}\nspec: {podSelector: {}, ingress: [{}]}");
        var verdict = engine.Evaluate(Tool, Web, 80);
        Assert.False(verdict.Allowed);
        Assert.Equal(["tools/out"], verdict.Egress!.Policies);
        Assert.True(verdict.Ingress!.Allowed);
        Assert.Equal(["prod/in"], verdict.Ingress.Policies);
    }

    [Fact]
    public void Evaluate_TerminatedPod_IsNotSelected()
    {
        var done = Pod("prod", "job", "10.1.0.7", new() { ["app"] = "web" }) with { Phase = "Succeeded" };
        var engine = Engine(Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {}, policyTypes: [Ingress, Egress]}", done, Tool);
        Assert.Empty(engine.PoliciesSelecting(done, PolicyDirection.Ingress));
        var verdict = engine.Evaluate(Tool, done, 80);
        Assert.True(verdict.Allowed);
        Assert.Same(SideVerdict.NotIsolated, verdict.Ingress);
        Assert.Contains("terminated", verdict.Note);
    }

    [Fact]
    public void Evaluate_PendingPodWithoutIp_IsStillSelected()
    {
        var pending = Pod("prod", "pending", "", new() { ["app"] = "web" }) with { Phase = "Pending" };
        var engine = Engine(Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {}, policyTypes: [Ingress]}", pending, Tool);
        Assert.Equal(["prod/p"], engine.PoliciesSelecting(pending, PolicyDirection.Ingress));
    }

    [Fact]
    public void Evaluate_HostNetworkPod_IsJudgedAsItsNodeWithANote()
    {
        var host = Pod("prod", "agent", "192.168.0.10", new() { ["app"] = "web" }) with { HostNetwork = true, NodeName = "node-9" };
        var engine = Engine(Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {}, policyTypes: [Ingress, Egress], ingress: [{from: [{podSelector: {}}]}], egress: [{to: [{podSelector: {}}]}]}", Web, host, Tool);
        Assert.Empty(engine.PoliciesSelecting(host, PolicyDirection.Egress));
        var outbound = engine.Evaluate(host.AsEndpoint(), IpOf(host), Web.AsEndpoint(), IpOf(Web), 80, PolicyProtocol.TCP);
        Assert.Null(outbound.Egress);
        // Its labels match the podSelector peer, but NetworkPolicy sees a host-network pod only as its node's address.
        Assert.False(outbound.Allowed);
        Assert.Contains("host-network", outbound.Note);
        var inbound = engine.Evaluate(Web.AsEndpoint(), IpOf(Web), host.AsEndpoint(), IpOf(host), 80, PolicyProtocol.TCP);
        Assert.Null(inbound.Ingress);
        Assert.False(inbound.Allowed);
    }

    [Fact]
    public void Evaluate_FromThePodsOwnNode_IsAlwaysAllowed()
    {
        var node = new NodeInfo { Name = "node-1", Addresses = [System.Net.IPAddress.Parse("192.168.0.1")] };
        var other = new NodeInfo { Name = "node-2", Addresses = [System.Net.IPAddress.Parse("192.168.0.2")] };
        var engine = Engine(Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {}, policyTypes: [Ingress]}");
        var own = engine.Evaluate(new ResolvedEndpoint(EndpointKind.Node, node: node), Ip("192.168.0.1"), Web.AsEndpoint(), IpOf(Web), 8080, PolicyProtocol.TCP);
        Assert.True(own.Allowed);
        Assert.Contains("own node", own.Note);
        Assert.False(engine.Evaluate(new ResolvedEndpoint(EndpointKind.Node, node: other), Ip("192.168.0.2"), Web.AsEndpoint(), IpOf(Web), 8080, PolicyProtocol.TCP).Allowed);
    }

    [Fact]
    public void Evaluate_NonPodBothSides_IsUnjudgedAndAllowed()
    {
        var engine = Engine(Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {}, policyTypes: [Ingress, Egress]}");
        var verdict = engine.Evaluate(new ResolvedEndpoint(EndpointKind.External), Ip("1.2.3.4"), new ResolvedEndpoint(EndpointKind.External), Ip("5.6.7.8"), 80, PolicyProtocol.TCP);
        Assert.True(verdict.Allowed);
        Assert.Null(verdict.Egress);
        Assert.Null(verdict.Ingress);
    }

    [Fact]
    public void Evaluate_SameIdentityTwice_ReturnsTheCachedInstanceWithoutAllocating()
    {
        var twin = Api with { Name = "api-2", Ips = [System.Net.IPAddress.Parse("10.1.0.3")] };
        var engine = Engine(Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {matchLabels: {app: web}}, ingress: [{from: [{podSelector: {matchLabels: {app: api}}}]}]}", Web, Api, twin, Tool);
        var first = engine.Evaluate(Api, Web, 8080);
        // Same namespace and labels: the second pod shares the first one's verdict.
        Assert.Same(first, engine.Evaluate(twin, Web, 8080));
        var source = Api.AsEndpoint();
        var destination = Web.AsEndpoint();
        IpKey sourceIp = IpOf(Api), destinationIp = IpOf(Web);
        // The first passes compile the loop and the engine's methods as they tier up, and compiling on this thread can
        // allocate (type loads): the steady state is what must not allocate. A per-call allocation shows in every pass.
        var passes = new List<long>();
        for (int pass = 0; pass < 5 && (passes.Count == 0 || passes[^1] != 0); pass++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            EvaluateMany(engine, source, sourceIp, destination, destinationIp, 1000);
            passes.Add(GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.True(passes[^1] == 0, "bytes allocated per pass of 1,000 cached verdicts: " + string.Join(", ", passes));
    }

    private static void EvaluateMany(PolicyEngine engine, ResolvedEndpoint source, IpKey sourceIp, ResolvedEndpoint destination, IpKey destinationIp, int count)
    {
        for (int i = 0; i < count; i++) engine.Evaluate(in source, sourceIp, in destination, destinationIp, 8080, PolicyProtocol.TCP);
    }

    [Fact]
    public void Compile_PolicyChangeInOneNamespace_KeepsVerdictsOfOtherNamespaces()
    {
        var pods = new[] { Web, Api, Tool, Pod("tools", "tool-2", "10.2.0.2", new() { ["app"] = "other" }) };
        string toolsPolicy = Header + "metadata: {name: t, namespace: tools}\nspec: {podSelector: {}, ingress: [{}]}";
        var v1 = PolicyEngine.Compile(Snapshot(pods, Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {}, ingress: [{}]}\n---\n" + toolsPolicy));
        var keep = v1.Evaluate(pods[3], Tool, 80);
        var drop = v1.Evaluate(Tool, Web, 80);
        Assert.True(drop.Allowed);
        var v2 = PolicyEngine.Compile(Snapshot(pods, Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {}, policyTypes: [Ingress]}\n---\n" + toolsPolicy, version: 2), v1);
        Assert.Same(keep, v2.Evaluate(pods[3], Tool, 80));
        Assert.False(v2.Evaluate(Tool, Web, 80).Allowed);
    }

    [Fact]
    public void Compile_NamespaceLabelChange_InvalidatesVerdictsWithPodsOfThatNamespace()
    {
        string yaml = Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {team: a}}}]}]}";
        var v1 = PolicyEngine.Compile(Snapshot([Web, Tool], yaml, [Namespace("tools")]));
        Assert.False(v1.Evaluate(Tool, Web, 80).Allowed);
        var v2 = PolicyEngine.Compile(Snapshot([Web, Tool], yaml, [Namespace("tools", new() { ["team"] = "a" })], version: 2), v1);
        Assert.True(v2.Evaluate(Tool, Web, 80).Allowed);
    }

    [Fact]
    public void Explain_DeniedIngress_NamesThePolicyAndWhyEachRuleMissed()
    {
        var engine = Engine(Header + "metadata: {name: web-from-api, namespace: prod}\nspec:\n  podSelector: {matchLabels: {app: web}}\n  ingress:\n  - from: [{podSelector: {matchLabels: {app: api}}}]\n    ports: [{port: http}]");
        var explanation = engine.Explain(Tool, Web, 8080);
        Assert.False(explanation.Verdict.Allowed);
        Assert.Equal(engine.Evaluate(Tool, Web, 8080).Allowed, explanation.Verdict.Allowed);
        var policy = Assert.Single(explanation.Ingress!.Policies);
        Assert.Equal("prod/web-from-api", policy.Name);
        var rule = Assert.Single(policy.Rules);
        Assert.False(rule.PeerMatched);
        Assert.True(rule.PortMatched);
        Assert.Contains("no namespaceSelector", rule.Peers);
        string text = explanation.ToText();
        Assert.StartsWith("DENIED  TCP tools/tool (10.2.0.1) -> prod/web (10.1.0.1):8080", text);
        Assert.Contains("ingress of prod/web: DENIED", text);
        Assert.Contains("http/TCP (= 8080 on prod/web)", rule.Ports);
        Assert.Contains("only pods of prod match, and tools/tool is in tools", text, StringComparison.Ordinal);
        using var json = JsonDocument.Parse(explanation.ToJson());
        Assert.Equal("deny", json.RootElement.GetProperty("verdict").GetString());
        Assert.Equal("prod/web-from-api", json.RootElement.GetProperty("ingress").GetProperty("policies")[0].GetProperty("name").GetString());
        Assert.False(json.RootElement.GetProperty("egress").GetProperty("isolated").GetBoolean());
    }

    [Fact]
    public void Explain_AllowedByOneOfTwoPolicies_MarksTheMatchingRule()
    {
        var engine = Engine(Header + "metadata: {name: a, namespace: prod}\nspec: {podSelector: {}, ingress: [{ports: [{port: 81}]}]}\n---\n"
            + Header + "metadata: {name: b, namespace: prod}\nspec: {podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {env: ops}}}]}]}");
        var explanation = engine.Explain(Tool, Web, 80);
        Assert.True(explanation.Verdict.Allowed);
        Assert.Equal([false, true], explanation.Ingress!.Policies.Select(p => p.Allowed));
        Assert.Contains("+ prod/b", explanation.ToText());
    }

    [Fact]
    public void Validate_EmptyPeer_IsRefused()
    {
        var loaded = Tripline.Correlation.Manifests.ManifestLoader.LoadFromText(Header + "metadata: {name: p, namespace: prod}\nspec: {podSelector: {}, ingress: [{from: [{}]}]}");
        Assert.Contains(loaded.Errors, e => e.Message.Contains("must specify a peer"));
    }
}
