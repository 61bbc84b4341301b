using Tripline.Correlation.Cluster;
using Tripline.Correlation.Manifests;

namespace Tripline.Tests.Correlation.Manifests;

public sealed class CalicoManifestTests
{
    [Fact]
    public void Load_CalicoKindsOfBothGroups_AreKeptByKey()
    {
        var result = ManifestLoader.LoadFromText("""
            apiVersion: projectcalico.org/v3
            kind: NetworkPolicy
            metadata: { name: allow-web, namespace: shop }
            spec: { selector: app == 'web', ingress: [ { action: Allow } ] }
            ---
            apiVersion: projectcalico.org/v3
            kind: GlobalNetworkPolicy
            metadata: { name: deny-all }
            spec: { selector: all(), types: [Ingress, Egress] }
            ---
            apiVersion: crd.projectcalico.org/v1
            kind: GlobalNetworkPolicy
            metadata: { name: default.from-crd }
            spec: { tier: default, selector: all() }
            ---
            apiVersion: crd.projectcalico.org/v1
            kind: GlobalNetworkPolicy
            metadata: { name: security.keep-prefix }
            spec: { tier: security, selector: all() }
            ---
            apiVersion: projectcalico.org/v3
            kind: Tier
            metadata: { name: security }
            spec: { order: 100, defaultAction: Pass }
            ---
            apiVersion: projectcalico.org/v3
            kind: NetworkSet
            metadata: { name: partners, labels: { role: partner } }
            spec: { nets: [ 198.51.100.0/24 ] }
            ---
            apiVersion: projectcalico.org/v3
            kind: GlobalNetworkSet
            metadata: { name: dns }
            spec: { nets: [ 8.8.8.8/32 ] }
            ---
            apiVersion: projectcalico.org/v3
            kind: StagedKubernetesNetworkPolicy
            metadata: { name: staged, namespace: shop }
            spec: { podSelector: {} }
            """);
        Assert.Empty(result.Errors);
        Assert.Equal(
            [
                "GlobalNetworkPolicy/deny-all", "GlobalNetworkPolicy/from-crd", "GlobalNetworkPolicy/security.keep-prefix",
                "GlobalNetworkSet/dns", "NetworkPolicy(calico)/shop/allow-web", "NetworkSet/default/partners",
                "StagedKubernetesNetworkPolicy/shop/staged", "Tier/security",
            ],
            result.Snapshot.CalicoObjects.Select(o => o.Key));
        Assert.Empty(result.IgnoredKinds);
    }

    [Fact]
    public void Load_ServiceAccountsAndPodsServiceAccountName_AreRead()
    {
        var result = ManifestLoader.LoadFromText("""
            apiVersion: v1
            kind: ServiceAccount
            metadata: { name: api, namespace: shop, labels: { role: api } }
            ---
            apiVersion: v1
            kind: Pod
            metadata: { name: a, namespace: shop }
            spec: { serviceAccountName: api, containers: [ { name: c } ] }
            status: { phase: Running, podIPs: [ { ip: 10.0.0.1 } ] }
            ---
            apiVersion: v1
            kind: Pod
            metadata: { name: b, namespace: shop }
            spec: { containers: [ { name: c } ] }
            status: { phase: Running, podIPs: [ { ip: 10.0.0.2 } ] }
            """);
        Assert.Empty(result.Errors);
        var account = Assert.Single(result.Snapshot.ServiceAccounts.Values);
        Assert.Equal(("shop", "api", "api"), (account.Namespace, account.Name, account.Labels.Labels["role"]));
        Assert.Equal(["api", "default"], result.Snapshot.Pods.OrderBy(p => p.Name).Select(p => p.ServiceAccount));
    }

    [Fact]
    public void Load_BadCalicoPolicy_NamesTheFileTheObjectTheFieldAndTheColumn_AndTheRestLoads()
    {
        var result = ManifestLoader.LoadFromText("""
            apiVersion: projectcalico.org/v3
            kind: GlobalNetworkPolicy
            metadata: { name: broken }
            spec:
              selector: app == 'web' && role in {'a' 'b'}
              ingress: [ { action: Allow } ]
            ---
            apiVersion: projectcalico.org/v3
            kind: StagedNetworkPolicy
            metadata: { name: staged-broken, namespace: shop }
            spec: { stagedAction: Replace }
            ---
            apiVersion: projectcalico.org/v3
            kind: NetworkPolicy
            metadata: { name: fine, namespace: shop }
            spec: { selector: all(), ingress: [ { action: Deny, protocol: ICMP, icmp: { code: 3 } } ] }
            ---
            apiVersion: projectcalico.org/v3
            kind: GlobalNetworkPolicy
            metadata: { name: ok }
            spec: { selector: all() }
            """, "calico.yaml");
        Assert.Equal(3, result.Errors.Count);
        string broken = result.Errors[0].ToString();
        Assert.StartsWith("calico.yaml:", broken);
        Assert.Contains("broken", broken);
        Assert.Contains("spec.selector", broken);
        Assert.Contains("column", broken);
        Assert.Contains("spec.stagedAction: must be Set, Delete, Learn or Ignore (was Replace)", result.Errors[1].ToString());
        Assert.Contains("spec.ingress[0].icmp.code: needs a type", result.Errors[2].ToString());
        Assert.Equal(["GlobalNetworkPolicy/ok"], result.Snapshot.CalicoObjects.Select(o => o.Key));
    }
}
