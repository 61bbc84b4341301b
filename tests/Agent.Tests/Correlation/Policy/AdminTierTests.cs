using System.Net;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;
using Tripline.Correlation.Manifests;
using Tripline.Correlation.Policy;
using static Tripline.Tests.Correlation.Policy.PolicyBuilders;

namespace Tripline.Tests.Correlation.Policy;

/// <summary>The administrator's tiers around NetworkPolicy, one fact each: order, actions, peers, ports, names.</summary>
public sealed class AdminTierTests
{
    private static readonly PodInfo Web = Pod("prod", "web", "10.1.0.1", new() { ["app"] = "web" }, new ContainerPortInfo("http", 8080, "TCP"));
    private static readonly PodInfo Api = Pod("prod", "api", "10.1.0.2", new() { ["app"] = "api" });
    private static readonly PodInfo Tool = Pod("tools", "tool", "10.2.0.1", new() { ["app"] = "tool" });
    private static readonly PodInfo Monitor = Pod("monitoring", "prom", "10.3.0.1", new() { ["app"] = "prometheus" });
    private static readonly NodeInfo Node1 = new() { Name = "node-1", Addresses = [IPAddress.Parse("172.18.0.2")], Labels = LabelSet.Intern(new Dictionary<string, string> { ["role"] = "control-plane" }) };
    private static readonly NodeInfo Node2 = new() { Name = "node-2", Addresses = [IPAddress.Parse("172.18.0.3")], Labels = LabelSet.Intern(new Dictionary<string, string> { ["role"] = "worker" }) };

    private const string Cnp = "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\n";
    private const string Np = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n";

    private static ClusterSnapshot Cluster(string yaml, long version = 1)
    {
        var loaded = ManifestLoader.LoadFromText(yaml);
        Assert.True(loaded.Errors.Count == 0, string.Join("\n", loaded.Errors));
        return new ClusterSnapshot(version,
            [Namespace("prod", new() { ["env"] = "prod" }), Namespace("tools", new() { ["env"] = "ops" }), Namespace("monitoring", new() { ["env"] = "ops" })],
            [Web, Api, Tool, Monitor], [], [], [Node1, Node2], loaded.Snapshot.Policies, loaded.Snapshot.AdminPolicies);
    }

    private static PolicyEngine Engine(string yaml) => PolicyEngine.Compile(Cluster(yaml));

    private static Verdict ToAddress(PolicyEngine engine, PodInfo from, string ip, int port, EndpointKind kind = EndpointKind.External)
    {
        var destination = kind == EndpointKind.Node ? new ResolvedEndpoint(EndpointKind.Node, node: Node1) : ResolvedEndpoint.External;
        return engine.Evaluate(from.AsEndpoint(), IpOf(from), in destination, Ip(ip), port, PolicyProtocol.TCP);
    }

    [Fact]
    public void Evaluate_AdminDeny_OverridesANetworkPolicyThatAllows()
    {
        var engine = Engine(Cnp + """
            metadata: {name: no-tools}
            spec:
              tier: Admin
              priority: 10
              subject: {namespaces: {matchLabels: {env: prod}}}
              ingress:
              - {name: deny-tools, action: Deny, from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: tools}}}]}
            ---

            """ + Np + "metadata: {name: allow-all, namespace: prod}\nspec: {podSelector: {}, ingress: [{}]}");
        var verdict = engine.Evaluate(Tool, Web, 8080);
        Assert.False(verdict.Allowed);
        Assert.Equal(["ClusterNetworkPolicy/no-tools"], verdict.Ingress!.Policies);
        Assert.True(engine.Evaluate(Api, Web, 8080).Allowed);
    }

    [Fact]
    public void Evaluate_AdminAccept_OverridesANetworkPolicyThatDenies_AndTheFirstRuleWins()
    {
        var engine = Engine(Cnp + """
            metadata: {name: monitoring}
            spec:
              tier: Admin
              priority: 5
              subject: {namespaces: {}}
              ingress:
              - {name: scrape, action: Accept, from: [{pods: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}, podSelector: {matchLabels: {app: prometheus}}}}], protocols: [{tcp: {destinationPort: {number: 8080}}}]}
              - {name: then-deny, action: Deny, from: [{namespaces: {}}]}
            ---

            """ + Np + "metadata: {name: deny, namespace: prod}\nspec: {podSelector: {}, policyTypes: [Ingress]}");
        Assert.True(engine.Evaluate(Monitor, Web, 8080).Allowed);
        Assert.Equal(["ClusterNetworkPolicy/monitoring"], engine.Evaluate(Monitor, Web, 8080).Ingress!.Policies);
        var other = engine.Evaluate(Monitor, Web, 9090);
        Assert.False(other.Allowed);
        Assert.Equal(["ClusterNetworkPolicy/monitoring"], other.Ingress!.Policies);
    }

    [Fact]
    public void Evaluate_Pass_HandsTheFlowToNetworkPolicies_AndSkipsLaterAdminRules()
    {
        string yaml = Cnp + """
            metadata: {name: pass-prod}
            spec:
              tier: Admin
              priority: 1
              subject: {namespaces: {matchLabels: {env: prod}}}
              ingress:
              - {action: Pass, from: [{namespaces: {matchLabels: {env: ops}}}]}
            ---

            """ + Cnp + """
            metadata: {name: deny-ops}
            spec:
              tier: Admin
              priority: 2
              subject: {namespaces: {}}
              ingress:
              - {action: Deny, from: [{namespaces: {matchLabels: {env: ops}}}]}
            """;
        // No NetworkPolicy selects web: after Pass, nothing denies.
        Assert.True(Engine(yaml).Evaluate(Tool, Web, 80).Allowed);
        // A NetworkPolicy that isolates web decides after Pass.
        var engine = Engine(yaml + "\n---\n" + Np + "metadata: {name: iso, namespace: prod}\nspec: {podSelector: {}, policyTypes: [Ingress]}");
        var verdict = engine.Evaluate(Tool, Web, 80);
        Assert.False(verdict.Allowed);
        Assert.Equal(["prod/iso"], verdict.Ingress!.Policies);
        // Without the Pass, the lower Admin policy would deny the monitoring namespace's pods too.
        Assert.False(engine.Evaluate(Monitor, Api, 80).Allowed);
    }

    [Fact]
    public void Evaluate_Baseline_AppliesOnlyWhereNoNetworkPolicySelectsThePod()
    {
        string baseline = Cnp + """
            metadata: {name: default-deny}
            spec:
              tier: Baseline
              priority: 10
              subject: {namespaces: {}}
              ingress:
              - {action: Deny, from: [{namespaces: {}}]}
            """;
        var engine = Engine(baseline + "\n---\n" + Np + "metadata: {name: web, namespace: prod}\nspec: {podSelector: {matchLabels: {app: web}}, ingress: [{from: [{namespaceSelector: {}}]}]}");
        Assert.True(engine.Evaluate(Tool, Web, 80).Allowed);
        var api = engine.Evaluate(Tool, Api, 80);
        Assert.False(api.Allowed);
        Assert.Equal(["ClusterNetworkPolicy/default-deny"], api.Ingress!.Policies);
        // The Baseline tier selects no node: an address outside the cluster is not a namespaces peer.
        Assert.True(ToAddress(engine, Api, "8.8.8.8", 443).Allowed);
    }

    [Fact]
    public void Evaluate_NetworksPeer_MatchesPodAddressesToo_AndNodesPeerMatchesByNodeLabels()
    {
        var engine = Engine(Cnp + """
            metadata: {name: egress}
            spec:
              tier: Admin
              priority: 10
              subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: api}}}}
              egress:
              - {action: Accept, to: [{nodes: {matchLabels: {role: control-plane}}}]}
              - {action: Deny, to: [{networks: [10.0.0.0/8, 172.16.0.0/12]}]}
            """);
        Assert.False(engine.Evaluate(Api, Tool, 80).Allowed);
        Assert.True(ToAddress(engine, Api, "172.18.0.2", 6443, EndpointKind.Node).Allowed);
        Assert.False(ToAddress(engine, Api, "172.18.0.3", 6443, EndpointKind.Node).Allowed);
        Assert.True(ToAddress(engine, Api, "8.8.8.8", 53).Allowed);
        // The cache must tell the two nodes apart.
        Assert.True(ToAddress(engine, Api, "172.18.0.2", 6443, EndpointKind.Node).Allowed);
        Assert.False(ToAddress(engine, Api, "172.18.0.3", 6443, EndpointKind.Node).Allowed);
    }

    [Fact]
    public void Evaluate_DomainNamesRuleThatAloneWouldDecide_IsNotedAndNotGuessed()
    {
        var engine = Engine(Cnp + """
            metadata: {name: egress}
            spec:
              tier: Admin
              priority: 10
              subject: {namespaces: {matchLabels: {env: prod}}}
              egress:
              - {name: vendor, action: Accept, to: [{domainNames: ["*.vendor.example"]}]}
              - {name: no-internet, action: Deny, to: [{networks: [0.0.0.0/0]}]}
            """);
        var outside = ToAddress(engine, Web, "203.0.113.9", 443);
        Assert.Equal(PolicyEngine.NotJudgeableDomainNames, outside.NotJudgeable);
        Assert.Contains("domainNames", outside.Note);
        Assert.Contains("*.vendor.example", outside.Note);
        Assert.False(outside.Allowed);
        // A pod of the cluster is not reached by an outside name: judged, no note.
        var pod = engine.Evaluate(Web, Tool, 80);
        Assert.Null(pod.NotJudgeable);
        Assert.False(pod.Allowed);
    }

    [Fact]
    public void Evaluate_NamedPortAndRanges_ResolveOnTheDestinationPod()
    {
        var engine = Engine(Cnp + """
            metadata: {name: ports}
            spec:
              tier: Admin
              priority: 10
              subject: {namespaces: {matchLabels: {env: prod}}}
              ingress:
              - {action: Accept, from: [{namespaces: {}}], protocols: [{destinationNamedPort: http}, {udp: {destinationPort: {range: {start: 5000, end: 6000}}}}]}
              - {action: Deny, from: [{namespaces: {}}]}
            """);
        Assert.True(engine.Evaluate(Tool, Web, 8080).Allowed);
        Assert.False(engine.Evaluate(Tool, Api, 8080).Allowed);
        Assert.True(engine.Evaluate(Tool, Api, 5500, PolicyProtocol.UDP).Allowed);
        Assert.False(engine.Evaluate(Tool, Api, 5500, PolicyProtocol.TCP).Allowed);
        Assert.False(engine.Evaluate(Tool, Api, 6001, PolicyProtocol.UDP).Allowed);
    }

    [Fact]
    public void Evaluate_V1alpha1Kinds_MapOntoTheSameTiers()
    {
        var engine = Engine("""
            apiVersion: policy.networking.k8s.io/v1alpha1
            kind: AdminNetworkPolicy
            metadata: {name: allow-monitoring}
            spec:
              priority: 1
              subject: {namespaces: {}}
              ingress:
              - {action: Allow, from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}], ports: [{portNumber: {protocol: TCP, port: 8080}}]}
            ---
            apiVersion: policy.networking.k8s.io/v1alpha1
            kind: BaselineAdminNetworkPolicy
            metadata: {name: default}
            spec:
              subject: {namespaces: {}}
              ingress:
              - {action: Deny, from: [{namespaces: {}}]}
            """);
        Assert.True(engine.Evaluate(Monitor, Web, 8080).Allowed);
        Assert.Equal(["AdminNetworkPolicy/allow-monitoring"], engine.Evaluate(Monitor, Web, 8080).Ingress!.Policies);
        Assert.Equal(["BaselineAdminNetworkPolicy/default"], engine.Evaluate(Tool, Web, 8080).Ingress!.Policies);
        Assert.False(engine.Evaluate(Tool, Web, 8080).Allowed);
    }

    [Fact]
    public void Evaluate_SameLabels_ComparesThePeersNamespaceWithTheSubjects()
    {
        var engine = Engine("""
            apiVersion: policy.networking.k8s.io/v1alpha1
            kind: AdminNetworkPolicy
            metadata: {name: same-env}
            spec:
              priority: 1
              subject: {namespaces: {}}
              ingress:
              - {action: Allow, from: [{namespaces: {sameLabels: [env]}}]}
              - {action: Deny, from: [{namespaces: {namespaceSelector: {}}}]}
            """);
        Assert.True(engine.Evaluate(Tool, Monitor, 80).Allowed);
        Assert.False(engine.Evaluate(Tool, Web, 80).Allowed);
    }

    [Fact]
    public void Evaluate_HostNetworkPodsAndSelfTraffic_AreNotSubjects()
    {
        var host = Pod("prod", "host", "172.18.0.2", new() { ["app"] = "web" }) with { HostNetwork = true };
        var snapshot = Cluster(Cnp + """
            metadata: {name: deny-all}
            spec:
              tier: Admin
              priority: 1
              subject: {namespaces: {}}
              egress:
              - {action: Deny, to: [{networks: [0.0.0.0/0]}]}
            """);
        snapshot = new ClusterSnapshot(2, snapshot.Namespaces.Values, [.. snapshot.Pods, host], [], [], snapshot.Nodes, [], snapshot.AdminPolicies);
        var engine = PolicyEngine.Compile(snapshot);
        var fromHost = engine.Evaluate(host.AsEndpoint(), IpOf(host), Tool.AsEndpoint(), IpOf(Tool), 80, PolicyProtocol.TCP);
        Assert.True(fromHost.Allowed);
        Assert.Null(fromHost.Egress);
        var self = engine.Evaluate(Web, Web, 8080);
        Assert.True(self.Allowed);
        Assert.False(engine.Evaluate(Api, Web, 8080).Allowed);
    }

    [Fact]
    public void Evaluate_UnknownPeerKind_FailsClosed()
    {
        var engine = Engine(Cnp + """
            metadata: {name: future}
            spec:
              tier: Admin
              priority: 1
              subject: {namespaces: {matchLabels: {env: prod}}}
              ingress:
              - {action: Accept, from: [{serviceAccounts: {name: x}}]}
              - {action: Deny, from: [{serviceAccounts: {name: y}}]}
            """.Replace("{serviceAccounts", "{futurePeer", StringComparison.Ordinal), allowErrors: true);
        Assert.False(engine.Evaluate(Tool, Web, 80).Allowed);
    }

    private static PolicyEngine Engine(string yaml, bool allowErrors)
    {
        var loaded = ManifestLoader.LoadFromText(yaml);
        Assert.True(allowErrors ? loaded.Errors.Count > 0 : loaded.Errors.Count == 0, string.Join("\n", loaded.Errors));
        // The API server would refuse such an object; one read from the API is still judged, failing closed.
        var json = YamlToJson(yaml);
        var policy = new AdminPolicyObject
        {
            ApiVersion = (string)json["apiVersion"]!,
            Kind = (string)json["kind"]!,
            Metadata = new k8s.Models.V1ObjectMeta { Name = (string)json["metadata"]!["name"]! },
            Spec = System.Text.Json.JsonDocument.Parse(json["spec"]!.ToJsonString()).RootElement,
        };
        return PolicyEngine.Compile(new ClusterSnapshot(1, [Namespace("prod", new() { ["env"] = "prod" }), Namespace("tools", new() { ["env"] = "ops" })], [Web, Tool], [], [], [], [], [policy]));
    }

    private static System.Text.Json.Nodes.JsonNode YamlToJson(string yaml)
    {
        var deserializer = new YamlDotNet.Serialization.DeserializerBuilder().Build();
        object? tree = deserializer.Deserialize(new StringReader(yaml));
        var serializer = new YamlDotNet.Serialization.SerializerBuilder().JsonCompatible().Build();
        return System.Text.Json.Nodes.JsonNode.Parse(serializer.Serialize(tree))!;
    }

    [Fact]
    public void Load_InvalidAdminPolicies_NameTheObjectAndTheField()
    {
        var loaded = ManifestLoader.LoadFromText(Cnp + """
            metadata: {name: bad}
            spec:
              tier: Middle
              priority: 2000
              subject: {namespaces: {}, pods: {namespaceSelector: {}, podSelector: {}}}
              egress:
              - {action: Allow, to: [{networks: [10.0.0.0/33]}], protocols: [{tcp: {destinationPort: {range: {start: 90, end: 80}}}}]}
            ---
            apiVersion: policy.networking.k8s.io/v1alpha1
            kind: BaselineAdminNetworkPolicy
            metadata: {name: other}
            spec: {subject: {namespaces: {}}}
            """);
        string errors = string.Join("\n", loaded.Errors);
        Assert.Contains("ClusterNetworkPolicy bad", errors);
        Assert.Contains("spec.tier", errors);
        Assert.Contains("spec.priority", errors);
        Assert.Contains("spec.subject", errors);
        Assert.Contains("spec.egress[0].action", errors);
        Assert.Contains("10.0.0.0/33", errors);
        Assert.Contains("spec.egress[0].protocols[0]", errors);
        Assert.Contains("BaselineAdminNetworkPolicy other", errors);
        Assert.Contains("must be named default", errors);
        Assert.Empty(loaded.Snapshot.AdminPolicies);
    }

    [Fact]
    public void Explain_WalksTheTiers_AndReportsSamePriorityOverlaps()
    {
        var engine = Engine(Cnp + """
            metadata: {name: a-accept}
            spec:
              tier: Admin
              priority: 10
              subject: {namespaces: {matchLabels: {env: prod}}}
              ingress:
              - {name: from-tools, action: Accept, from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: tools}}}]}
            ---

            """ + Cnp + """
            metadata: {name: b-deny}
            spec:
              tier: Admin
              priority: 10
              subject: {namespaces: {}}
              ingress:
              - {name: from-ops, action: Deny, from: [{namespaces: {matchLabels: {env: ops}}}]}
            """);
        var explanation = engine.Explain(Tool, Web, 80);
        string text = explanation.ToText();
        Assert.Contains("decided in the Admin tier by ClusterNetworkPolicy/a-accept", text);
        Assert.Contains("\"from-tools\"", text);
        Assert.Contains("same priority 10", text);
        Assert.Contains("ClusterNetworkPolicy/b-deny", text);
        Assert.Contains("\"tier\": \"Admin\"", explanation.ToJson());

        var passed = engine.Explain(Monitor, Api, 80);
        Assert.False(passed.Verdict.Allowed);
        Assert.Contains("b-deny", passed.ToText());
    }

    [Fact]
    public void Compile_AfterAnAdminPolicyChanges_CarriedOverVerdictsFollowTheChange()
    {
        string allow = Cnp + "metadata: {name: p}\nspec: {tier: Admin, priority: 1, subject: {namespaces: {}}, ingress: [{action: Accept, from: [{namespaces: {}}]}]}";
        string deny = allow.Replace("Accept", "Deny", StringComparison.Ordinal);
        var first = PolicyEngine.Compile(Cluster(allow, 1));
        Assert.True(first.Evaluate(Tool, Web, 80).Allowed);
        var second = PolicyEngine.Compile(Cluster(deny, 2), first);
        Assert.False(second.Evaluate(Tool, Web, 80).Allowed);
        var third = PolicyEngine.Compile(Cluster(deny, 3), second);
        Assert.False(third.Evaluate(Tool, Web, 80).Allowed);
    }
}
