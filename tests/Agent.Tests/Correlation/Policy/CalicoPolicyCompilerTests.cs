using Tripline.Correlation.Cluster;
using Tripline.Correlation.Manifests;
using Tripline.Correlation.Policy;
using Tripline.Correlation.Policy.Calico;
using Tripline.Correlation.Policy.Tiers;

namespace Tripline.Tests.Correlation.Policy;

public sealed class CalicoPolicyCompilerTests
{
    private static CalicoObject Load(string yaml)
    {
        var result = ManifestLoader.LoadFromText(yaml);
        Assert.Empty(result.Errors);
        return Assert.Single(result.Snapshot.CalicoObjects);
    }

    private static TierPolicy Compile(string yaml, out List<string> problems)
    {
        problems = [];
        var policies = CalicoPolicyCompiler.Compile(Load(yaml), new Dictionary<string, PolicyTier>(), problems, out string? excluded);
        Assert.Null(excluded);
        return Assert.Single(policies);
    }

    [Fact]
    public void Compile_NoTypesAndOnlyIngressRules_DeclaresIngressOnly()
    {
        var policy = Compile("""
            apiVersion: projectcalico.org/v3
            kind: NetworkPolicy
            metadata: { name: web, namespace: shop }
            spec: { order: 100, selector: app == 'web', ingress: [ { action: Allow, protocol: TCP, destination: { ports: [80, "8000:8080"] } } ] }
            """, out var problems);
        Assert.Empty(problems);
        Assert.Equal(("NetworkPolicy(calico)/shop/web", "default", 100.0), (policy.Key, policy.Tier.Name, policy.Order));
        Assert.True(policy.DeclaresIngress);
        Assert.False(policy.DeclaresEgress);
        var rule = Assert.Single(policy.Ingress);
        Assert.Equal(RuleAction.Accept, rule.Action);
        Assert.True(rule.MatchesPort(null, 8080, PolicyProtocol.TCP));
        Assert.False(rule.MatchesPort(null, 81, PolicyProtocol.TCP));
        Assert.False(rule.MatchesPort(null, 80, PolicyProtocol.UDP));
    }

    [Fact]
    public void Compile_CrdWithoutTypes_DeclaresBothDirections()
    {
        var policy = Compile("""
            apiVersion: crd.projectcalico.org/v1
            kind: GlobalNetworkPolicy
            metadata: { name: default.raw }
            spec: { selector: all(), ingress: [ { action: Deny } ] }
            """, out _);
        Assert.Equal("GlobalNetworkPolicy/raw", policy.Key);
        Assert.True(policy.DeclaresIngress && policy.DeclaresEgress);
    }

    [Fact]
    public void Compile_Subject_NetworkPolicyStaysInItsNamespace()
    {
        var policy = Compile("""
            apiVersion: projectcalico.org/v3
            kind: NetworkPolicy
            metadata: { name: web, namespace: shop }
            spec: { selector: app == 'web' }
            """, out _);
        var web = LabelSet.Intern(new Dictionary<string, string> { ["app"] = "web" });
        Assert.True(Selects(policy, Namespace("shop"), web));
        Assert.False(Selects(policy, Namespace("other"), web));
        Assert.False(Selects(policy, Namespace("shop"), LabelSet.Empty));
    }

    private static bool Selects(TierPolicy policy, LabelSet ns, LabelSet pod) =>
        policy.Subject.Selects(ns, pod, CalicoLabels.ForPod(pod, ns, "default", null));

    [Fact]
    public void Compile_PreDnat_IsExcludedWithAReason()
    {
        var problems = new List<string>();
        var policies = CalicoPolicyCompiler.Compile(Load("""
            apiVersion: projectcalico.org/v3
            kind: GlobalNetworkPolicy
            metadata: { name: host }
            spec: { preDNAT: true, applyOnForward: true, selector: all(), ingress: [ { action: Deny } ] }
            """), new Dictionary<string, PolicyTier>(), problems, out string? excluded);
        Assert.Empty(policies);
        Assert.Contains("host endpoints", excluded, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_BadSelector_IsAnErrorNamingTheField()
    {
        var result = ManifestLoader.LoadFromText("""
            apiVersion: projectcalico.org/v3
            kind: GlobalNetworkPolicy
            metadata: { name: bad }
            spec: { selector: "app == ", ingress: [ { action: Allow } ] }
            """);
        Assert.Contains(result.Errors, e => e.Message.StartsWith("spec.selector:", StringComparison.Ordinal));
    }

    [Fact]
    public void CompileTier_OrderAndPass_AreRead()
    {
        var tier = CalicoPolicyCompiler.CompileTier(Load("""
            apiVersion: projectcalico.org/v3
            kind: Tier
            metadata: { name: security }
            spec: { order: 100, defaultAction: Pass }
            """), []);
        Assert.Equal(("security", 100.0, RuleAction.Pass), (tier.Name, tier.Order, tier.EndAction));
    }

    private static LabelSet Namespace(string name) =>
        LabelSet.Intern(new Dictionary<string, string> { [ClusterObjectConverter.NamespaceNameLabel] = name });
}
