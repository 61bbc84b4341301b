using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;
using Tripline.Correlation.Manifests;
using Tripline.Correlation.Policy;
using static Tripline.Tests.Correlation.Policy.PolicyBuilders;

namespace Tripline.Tests.Correlation.Policy;

/// <summary>
/// Calico's policies in the engine, one fact each: tiers and Pass around Kubernetes NetworkPolicies, service accounts,
/// network sets, ICMP types, staged policies, names in verdicts, and verdicts that a change must not outlive.
/// </summary>
public sealed class CalicoEngineTests
{
    private static readonly PodInfo Web = Pod("prod", "web", "10.1.0.1", new() { ["app"] = "web" }, new ContainerPortInfo("http", 8080, "TCP")) with { ServiceAccount = "web-sa" };
    private static readonly PodInfo Db = Pod("prod", "db", "10.1.0.2", new() { ["app"] = "db" }, new ContainerPortInfo("pg", 5432, "TCP")) with { ServiceAccount = "db-sa" };
    private static readonly PodInfo Tool = Pod("tools", "tool", "10.2.0.1", new() { ["app"] = "tool" });

    private const string Gnp = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n";
    private const string Cnp = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n";

    private const string Accounts = """
        apiVersion: v1
        kind: ServiceAccount
        metadata: {name: web-sa, namespace: prod, labels: {role: frontend}}
        ---
        apiVersion: v1
        kind: ServiceAccount
        metadata: {name: db-sa, namespace: prod, labels: {role: database}}
        ---

        """;

    private static ClusterSnapshot Cluster(string yaml, long version = 1)
    {
        var loaded = ManifestLoader.LoadFromText(Accounts + yaml);
        Assert.True(loaded.Errors.Count == 0, string.Join("\n", loaded.Errors));
        var s = loaded.Snapshot;
        return new ClusterSnapshot(version,
            [Namespace("prod", new() { ["env"] = "prod" }), Namespace("tools", new() { ["env"] = "ops" })],
            [Web, Db, Tool], [], [], [], s.Policies, s.AdminPolicies, s.CalicoObjects, s.ServiceAccounts.Values);
    }

    private static PolicyEngine Engine(string yaml) => PolicyEngine.Compile(Cluster(yaml));

    private static Verdict ToAddress(PolicyEngine engine, PodInfo from, string ip, int port, PolicyProtocol protocol = PolicyProtocol.TCP) =>
        engine.Evaluate(from.AsEndpoint(), IpOf(from), ResolvedEndpoint.External, Ip(ip), port, protocol);

    [Fact]
    public void Evaluate_TierPass_ReachesTheKubernetesNetworkPolicies_AndTheTierDenyIsFinal()
    {
        var engine = Engine("""
            apiVersion: projectcalico.org/v3
            kind: Tier
            metadata: {name: security}
            spec: {order: 100}
            ---
            """ + "\n" + Gnp + """
            metadata: {name: security.guard}
            spec:
              tier: security
              order: 10
              selector: projectcalico.org/namespace == 'prod'
              ingress:
              - {action: Deny, source: {namespaceSelector: env == 'ops'}}
              - {action: Pass}
            ---
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: db-from-web, namespace: prod}
            spec:
              podSelector: {matchLabels: {app: db}}
              ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]
            """);
        var denied = engine.Evaluate(Tool, Db, 5432);
        Assert.False(denied.Allowed);
        Assert.Equal(["GlobalNetworkPolicy/security.guard"], denied.Ingress!.Policies);
        var passed = engine.Evaluate(Web, Db, 5432);
        Assert.True(passed.Allowed);
        Assert.Equal(["prod/db-from-web"], passed.Ingress!.Policies);
        // Passed to the default tier, where only the NetworkPolicy selects db: it isolates, and db may not reach itself through web's rules.
        Assert.False(engine.Evaluate(Db, Db with { Name = "db-1", Ips = [System.Net.IPAddress.Parse("10.1.0.3")] }, 5432).Allowed);
    }

    [Fact]
    public void Evaluate_ServiceAccountSelectors_MatchTheServiceAccountsLabels()
    {
        var engine = Engine(Cnp + """
            metadata: {name: db-ingress, namespace: prod}
            spec:
              serviceAccountSelector: role == 'database'
              types: [Ingress]
              ingress:
              - {action: Allow, protocol: TCP, source: {serviceAccounts: {selector: role == 'frontend'}}, destination: {ports: [pg]}}
            """);
        var allowed = engine.Evaluate(Web, Db, 5432);
        Assert.True(allowed.Allowed);
        Assert.Equal(["NetworkPolicy(calico)/prod/db-ingress"], allowed.Ingress!.Policies);
        // The same pod labels under another service account: not a frontend.
        Assert.False(engine.Evaluate(Tool, Db, 5432).Allowed);
        // A named port resolves on the destination: 5433 is not "pg".
        Assert.False(engine.Evaluate(Web, Db, 5433).Allowed);
        // web's service account is not role=database: the policy does not select it.
        Assert.True(engine.Evaluate(Db, Web, 8080).Allowed);
        Assert.Empty(engine.PoliciesSelecting(Web, PolicyDirection.Ingress));
    }

    [Fact]
    public void Evaluate_NetworkSets_AreSelectedByLabels_ANamespacedOneOnlyInItsNamespace()
    {
        var engine = Engine("""
            apiVersion: projectcalico.org/v3
            kind: GlobalNetworkSet
            metadata: {name: partners, labels: {trust: partner}}
            spec: {nets: [203.0.113.0/24]}
            ---
            apiVersion: projectcalico.org/v3
            kind: NetworkSet
            metadata: {name: payments, namespace: tools, labels: {trust: partner}}
            spec: {nets: [198.51.100.0/24]}
            ---
            """ + "\n" + Gnp + """
            metadata: {name: egress-partners}
            spec:
              selector: app == 'web'
              types: [Egress]
              egress:
              - {action: Allow, destination: {selector: trust == 'partner'}}
            ---
            """ + "\n" + Cnp + """
            metadata: {name: db-egress, namespace: prod}
            spec:
              selector: app == 'db'
              types: [Egress]
              egress:
              - {action: Allow, destination: {selector: trust == 'partner'}}
            """);
        Assert.True(ToAddress(engine, Web, "203.0.113.7", 443).Allowed);
        Assert.True(ToAddress(engine, Web, "198.51.100.7", 443).Allowed);
        var other = ToAddress(engine, Web, "192.0.2.1", 443);
        Assert.False(other.Allowed);
        Assert.Equal(["GlobalNetworkPolicy/egress-partners"], other.Egress!.Policies);
        // A NetworkPolicy's selector is scoped to its namespace: neither the global set nor the tools one is in prod.
        Assert.False(ToAddress(engine, Db, "203.0.113.7", 443).Allowed);
        Assert.False(ToAddress(engine, Db, "198.51.100.7", 443).Allowed);
    }

    [Fact]
    public void Evaluate_ServicesInARule_MatchTheServicesEndpoints()
    {
        var loaded = ManifestLoader.LoadFromText(Gnp + """
            metadata: {name: web-to-db-service}
            spec:
              selector: app == 'web'
              types: [Egress]
              egress:
              - {action: Allow, destination: {services: {name: db, namespace: prod}}}
              - {action: Allow, destination: {services: {name: gone, namespace: prod}}}
            """);
        Assert.Empty(loaded.Errors);
        var slice = new EndpointSliceInfo
        {
            Namespace = "prod",
            Name = "db-abc",
            ServiceName = "db",
            Endpoints = [new EndpointSliceEndpoint([Db.Ips[0]], true, "prod", "db")],
        };
        var engine = PolicyEngine.Compile(new ClusterSnapshot(1, [Namespace("prod"), Namespace("tools")], [Web, Db, Tool], [], [slice], [], [], null, loaded.Snapshot.CalicoObjects));
        Assert.True(engine.Evaluate(Web, Db, 5432).Allowed);
        var other = engine.Evaluate(Web, Tool, 5432);
        Assert.False(other.Allowed);
        Assert.Equal(["GlobalNetworkPolicy/web-to-db-service"], other.Egress!.Policies);
    }

    [Fact]
    public void Evaluate_IcmpType_IsJudgedFromTheFlowsFirstMessage()
    {
        var engine = Engine(Gnp + """
            metadata: {name: ping-only}
            spec:
              selector: app == 'web'
              types: [Ingress]
              ingress:
              - {action: Allow, protocol: ICMP, icmp: {type: 8}}
            """);
        var tool = Tool.AsEndpoint();
        var web = Web.AsEndpoint();
        Assert.True(engine.Evaluate(in tool, IpOf(Tool), in web, IpOf(Web), PolicyEngine.IcmpPort(8, 0), PolicyProtocol.ICMP).Allowed);
        Assert.False(engine.Evaluate(in tool, IpOf(Tool), in web, IpOf(Web), PolicyEngine.IcmpPort(13, 0), PolicyProtocol.ICMP).Allowed);
        // A recorded ICMP flow carries no type: it is taken as the echo conversation flows hold.
        Assert.True(engine.Evaluate(in tool, IpOf(Tool), in web, IpOf(Web), 0, PolicyProtocol.ICMP).Allowed);
        Assert.False(engine.Evaluate(Tool, Web, 8080).Allowed);
    }

    [Fact]
    public void Build_StagedPolicies_AreJudgedOnlyOnTheStagedPath()
    {
        var snapshot = Cluster("""
            apiVersion: projectcalico.org/v3
            kind: StagedGlobalNetworkPolicy
            metadata: {name: lockdown}
            spec:
              selector: app == 'db'
              types: [Ingress]
              ingress: [{action: Allow, source: {selector: app == 'web'}}]
            ---
            apiVersion: projectcalico.org/v3
            kind: StagedKubernetesNetworkPolicy
            metadata: {name: web-deny, namespace: prod}
            spec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Ingress]}
            """);
        var model = ClusterModel.Build(snapshot);
        Assert.Equal(0, model.Engine.TierPolicyCount);
        Assert.Equal(0, model.Engine.PolicyCount);
        Assert.NotNull(model.StagedEngine);
        Assert.True(model.Engine.Evaluate(Tool, Db, 5432).Allowed);
        var staged = model.StagedEngine!.Evaluate(Tool, Db, 5432);
        Assert.False(staged.Allowed);
        Assert.Equal(["StagedGlobalNetworkPolicy/lockdown"], staged.Ingress!.Policies);
        Assert.True(model.StagedEngine!.Evaluate(Web, Db, 5432).Allowed);
        Assert.Equal(["StagedKubernetesNetworkPolicy/prod/web-deny"], model.StagedEngine!.Evaluate(Tool, Web, 8080).Ingress!.Policies);
    }

    [Fact]
    public void Build_AStagedPolicyOfAnEnforcedOnesName_IsJudgedBesideIt_AsCalicosPendingViewDoes()
    {
        var snapshot = Cluster(Gnp + """
            metadata: {name: db-guard}
            spec:
              order: 10
              selector: app == 'db'
              ingress: [{action: Deny, source: {namespaceSelector: env == 'ops'}}]
            ---
            apiVersion: projectcalico.org/v3
            kind: StagedGlobalNetworkPolicy
            metadata: {name: db-guard}
            spec:
              order: 20
              selector: app == 'db'
              ingress: [{action: Allow}]
            """);
        var model = ClusterModel.Build(snapshot);
        // The enforced Deny comes first and stays; the staged twin decides what the enforced one leaves.
        Assert.Equal(["GlobalNetworkPolicy/db-guard"], model.StagedEngine!.Evaluate(Tool, Db, 5432).Ingress!.Policies);
        Assert.False(model.StagedEngine!.Evaluate(Tool, Db, 5432).Allowed);
        Assert.Equal(["StagedGlobalNetworkPolicy/db-guard"], model.StagedEngine!.Evaluate(Web, Db, 5432).Ingress!.Policies);
    }

    [Fact]
    public void Build_StagedDelete_IsLeftOutOfThePendingView_AndSaidSo()
    {
        var snapshot = Cluster(Gnp + """
            metadata: {name: deny-tools}
            spec:
              selector: all()
              ingress: [{action: Deny, source: {namespaceSelector: env == 'ops'}}]
            ---
            apiVersion: projectcalico.org/v3
            kind: StagedGlobalNetworkPolicy
            metadata: {name: deny-tools}
            spec: {stagedAction: Delete}
            """);
        var model = ClusterModel.Build(snapshot);
        Assert.False(model.Engine.Evaluate(Tool, Web, 8080).Allowed);
        Assert.False(model.StagedEngine!.Evaluate(Tool, Web, 8080).Allowed);
        Assert.Contains(model.StagedEngine!.PolicyNotes, n => n.StartsWith("StagedGlobalNetworkPolicy/deny-tools has stagedAction Delete", StringComparison.Ordinal));
    }

    [Fact]
    public void Apply_CalicoKinds_AreAppliedAndDeletedByTheNamesRecordsUse()
    {
        var cluster = Cluster(Gnp + """
            metadata: {name: deny-tools}
            spec: {selector: all(), ingress: [{action: Deny, source: {namespaceSelector: env == 'ops'}}]}
            """);
        var loaded = ManifestLoader.LoadFromText(Cnp + """
            metadata: {name: web-only, namespace: prod}
            spec: {selector: app == 'db', ingress: [{action: Allow, source: {selector: app == 'web'}}]}
            """).Snapshot;
        var applied = new ClusterSnapshot(1, [], [], [], [], [], [], null, loaded.CalicoObjects);
        Assert.True(ObjectRef.TryParse("GlobalNetworkPolicy/deny-tools", out var gnp, out _));
        Assert.True(ObjectRef.TryParse("gnp/deny-tools", out var alias, out _));
        Assert.Equal(gnp, alias);
        Assert.False(ObjectRef.TryParse("NetworkPolicy(calico)/deny-tools", out _, out string problem));
        Assert.Contains("KIND/NAMESPACE/NAME", problem);
        var problems = new List<string>();
        var after = PolicyEngine.Compile(ClusterChange.Apply(cluster, applied, [gnp], problems));
        Assert.Empty(problems);
        Assert.False(PolicyEngine.Compile(cluster).Evaluate(Tool, Db, 5432).Allowed);
        Assert.True(after.Evaluate(Web, Db, 5432).Allowed);
        Assert.Equal(["NetworkPolicy(calico)/prod/web-only"], after.Evaluate(Tool, Db, 5432).Ingress!.Policies);
        Assert.True(ObjectRef.TryParse("NetworkPolicy(calico)/prod/missing", out var missing, out _));
        ClusterChange.Apply(cluster, applied, [missing], problems);
        Assert.Equal(["--delete NetworkPolicy(calico)/prod/missing: no such policy in the cluster"], problems);
    }

    [Fact]
    public void Compile_ACalicoChange_DropsTheVerdictsItCouldChange()
    {
        const string allow = "ingress: [{action: Allow, source: {namespaceSelector: env == 'ops'}}]";
        var before = Engine(Gnp + "metadata: {name: p}\nspec:\n  selector: app == 'web'\n  " + allow);
        Assert.True(before.Evaluate(Tool, Web, 8080).Allowed);
        var after = PolicyEngine.Compile(Cluster(Gnp + "metadata: {name: p}\nspec:\n  selector: app == 'web'\n  ingress: [{action: Deny}]", version: 2), before);
        Assert.False(after.Evaluate(Tool, Web, 8080).Allowed);
        Assert.Equal(after.EvaluateUncached(Tool.AsEndpoint(), IpOf(Tool), Web.AsEndpoint(), IpOf(Web), 8080, PolicyProtocol.TCP).Allowed, after.Evaluate(Tool, Web, 8080).Allowed);
    }

    [Fact]
    public void Explain_WalksCalicosTiers_AndNamesWhatJudgesNothing()
    {
        var engine = Engine(Gnp + """
            metadata: {name: host-only}
            spec: {selector: all(), preDNAT: true, applyOnForward: true, ingress: [{action: Deny}]}
            ---
            """ + "\n" + Gnp + """
            metadata: {name: audit}
            spec:
              order: 5
              selector: app == 'web'
              ingress:
              - {action: Log}
              - {action: Deny, protocol: TCP, destination: {notPorts: [8080]}}
              - {action: Allow, protocol: TCP, source: {selector: app == 'tool'}}
            """);
        var explanation = engine.Explain(Tool, Web, 8080);
        Assert.True(explanation.Verdict.Allowed);
        string text = explanation.ToText();
        Assert.Contains("GlobalNetworkPolicy/audit", text);
        Assert.Contains("Log (logged, decides nothing", text);
        Assert.Contains("ingress[2]", text);
        Assert.Contains("GlobalNetworkPolicy/host-only is a preDNAT policy", text);
    }

    [Fact]
    public void Evaluate_GlobalNotSelector_MatchesAddressesOutsideTheCluster_ANamespacedOneDoesNot()
    {
        var engine = Engine(Gnp + """
            metadata: {name: g}
            spec:
              selector: app == 'web'
              types: [Egress]
              egress: [{action: Allow, destination: {notSelector: app == 'db'}}]
            ---
            """ + "\n" + Cnp + """
            metadata: {name: n, namespace: prod}
            spec:
              selector: app == 'db'
              types: [Egress]
              egress: [{action: Allow, destination: {notSelector: app == 'web'}}]
            """);
        Assert.True(ToAddress(engine, Web, "192.0.2.1", 443).Allowed);
        Assert.False(engine.Evaluate(Web, Db, 5432).Allowed);
        Assert.False(ToAddress(engine, Db, "192.0.2.1", 443).Allowed);
        Assert.False(engine.Evaluate(Db, Web, 8080).Allowed);
    }
}
