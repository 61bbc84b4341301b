using k8s.Models;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Kubernetes;
using Tripline.Tests.Support;
using static Tripline.Tests.Correlation.Kubernetes.K8sObjects;

namespace Tripline.Tests.Correlation.Kubernetes;

/// <summary>
/// Calico's kinds and ServiceAccounts from the API: Calico's objects from its API server (<c>projectcalico.org/v3</c>)
/// where it serves a kind, else from the CRDs (<c>crd.projectcalico.org/v1</c>), each object once and named as Calico
/// shows it; absent, forbidden or installed later without keeping the source from syncing the rest. ServiceAccounts
/// listed and watched with their labels, and not waited for when forbidden.
/// </summary>
public sealed class KubernetesSourceCalicoTests
{
    private const string V3 = ApiResource.CalicoGroup;
    private const string V1 = ApiResource.CalicoCrdGroup;

    private static readonly ApiResource NetworkPoliciesV3 = ApiResource.CalicoKind(V3, CalicoObject.NetworkPolicy);
    private static readonly ApiResource NetworkPoliciesV1 = ApiResource.CalicoKind(V1, CalicoObject.NetworkPolicy);
    private static readonly ApiResource GlobalPoliciesV3 = ApiResource.CalicoKind(V3, CalicoObject.GlobalNetworkPolicy);
    private static readonly ApiResource GlobalPoliciesV1 = ApiResource.CalicoKind(V1, CalicoObject.GlobalNetworkPolicy);

    private static IEnumerable<ApiResource> AllCalico => ApiResource.Calico.Concat(ApiResource.CalicoCrds);

    /// <summary>Fast enough that a test sees several rechecks within a second or two.</summary>
    private static KubernetesSourceOptions FastRecheck(KubernetesSourceOptions options) =>
        options with { CustomResourceRecheckInterval = TimeSpan.FromMilliseconds(50) };

    /// <summary>A cluster without Calico.</summary>
    private static void UninstallCalico(TestApiServer server)
    {
        foreach (var resource in AllCalico) server.UninstallCustomResource(resource);
    }

    /// <summary>A cluster with Calico's CRDs but not its API server, as most Calico clusters.</summary>
    private static void CrdsOnly(TestApiServer server)
    {
        foreach (var resource in ApiResource.Calico) server.UninstallCustomResource(resource);
    }

    [Fact]
    public async Task StartAsync_CalicoNotInstalled_SyncsWithoutItLogsOncePerResourceAndKeepsAsking()
    {
        var logger = new ListLogger();
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store => SeedSmallCluster(store),
            configure: FastRecheck,
            beforeStart: UninstallCalico,
            logger: logger.For<KubernetesClusterSource>());

        await harness.Source.WaitForSyncAsync(CancellationToken.None).WaitAsync(KubernetesSourceHarness.WaitLimit);
        var snapshot = await harness.WaitForConvergenceAsync();
        Assert.Empty(snapshot.CalicoObjects);
        Assert.Single(snapshot.Policies);

        await KubernetesSourceHarness.WaitUntilAsync(
            () => AllCalico.All(r => harness.Server.NotFoundRequests(r) >= 5),
            () => "five rechecks of every Calico resource: " + string.Join(", ", AllCalico.Select(r => $"{r.Name} {harness.Server.NotFoundRequests(r)}")));
        var lines = logger.Lines;
        AssertLogged(1, lines, $"Information: networkpolicies.{V3}: not served ({V3}: 404); Calico NetworkPolicies are read from their CRDs ({V1}/v1) instead, where installed");
        AssertLogged(1, lines, $"Information: networkpolicies.{V1}: not served ({V1}: 404); Calico NetworkPolicies are judged only if {V3}/v3 serves them");
        AssertLogged(1, lines, $"Information: stagedkubernetesnetworkpolicies.{V1}: not served ({V1}: 404); Calico StagedKubernetesNetworkPolicies are judged only if {V3}/v3 serves them");
        foreach (var resource in AllCalico)
        {
            int logged = lines.Count(l => l.StartsWith($"Information: {resource.Name}: not served (", StringComparison.Ordinal));
            Assert.True(logged == 1, $"{resource.Name}: {logged} lines in:\n{string.Join("\n", lines)}");
        }
        Assert.False(lines.Any(l => l.StartsWith("Warning:", StringComparison.Ordinal) && l.Contains("404", StringComparison.Ordinal)), string.Join("\n", lines));

        foreach (var resource in AllCalico)
        {
            var status = harness.StatusOf(resource);
            Assert.False(status.Synced, resource.Name);
            Assert.False(status.Installed, resource.Name);
            Assert.True(status.Optional, resource.Name);
            Assert.False(status.Awaited, resource.Name);
        }
        // The Kubernetes NetworkPolicies keep their own name, and are read.
        Assert.True(harness.StatusOf(ApiResource.NetworkPolicies).Synced);
    }

    [Fact]
    public async Task StartAsync_CrdsInstalled_SnapshotHoldsTheirObjectsUnderCalicosNames()
    {
        var logger = new ListLogger();
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store =>
            {
                SeedSmallCluster(store);
                store.Apply(Calico(V1, CalicoObject.GlobalNetworkPolicy, "default.deny-ingress"));
                store.Apply(Calico(V1, CalicoObject.NetworkPolicy, "default.allow-x", "shop"));
                for (int i = 0; i < 4; i++) store.Apply(Calico(V1, CalicoObject.NetworkPolicy, $"default.page-{i}", "default"));
                // A policy of another tier keeps its name; so does a kind that never had the prefix.
                store.Apply(Calico(V1, CalicoObject.Tier, "security", spec: """{"order":100}"""));
                store.Apply(Calico(V1, CalicoObject.NetworkPolicy, "security.allow-y", "shop", """{"tier":"security","selector":"all()"}"""));
                store.Apply(Calico(V1, CalicoObject.StagedNetworkPolicy, "default.staged-x", "shop"));
                store.Apply(Calico(V1, CalicoObject.StagedKubernetesNetworkPolicy, "default.k8s-staged", "shop", """{"podSelector":{}}"""));
                store.Apply(Calico(V1, CalicoObject.GlobalNetworkSet, "blocked", spec: """{"nets":["192.0.2.0/24"]}"""));
            },
            configure: o => o with { PageSize = 2 },
            beforeStart: CrdsOnly,
            logger: logger.For<KubernetesClusterSource>());

        var snapshot = await harness.WaitForConvergenceAsync();

        Assert.Equal(
            [
                "GlobalNetworkPolicy/deny-ingress",
                "GlobalNetworkSet/blocked",
                "NetworkPolicy(calico)/default/page-0",
                "NetworkPolicy(calico)/default/page-1",
                "NetworkPolicy(calico)/default/page-2",
                "NetworkPolicy(calico)/default/page-3",
                "NetworkPolicy(calico)/shop/allow-x",
                "NetworkPolicy(calico)/shop/security.allow-y",
                "StagedKubernetesNetworkPolicy/shop/default.k8s-staged",
                "StagedNetworkPolicy/shop/staged-x",
                "Tier/security",
            ],
            snapshot.CalicoObjects.Select(o => o.Key));
        Assert.All(snapshot.CalicoObjects, o => Assert.True(o.IsCrd, o.Key));
        var allowX = snapshot.CalicoObjects.Single(o => o.Key == "NetworkPolicy(calico)/shop/allow-x");
        Assert.Equal($"{V1}/v1", allowX.ApiVersion);
        Assert.Equal("NetworkPolicy", allowX.Kind);
        Assert.Null(allowX.Metadata.Annotations);
        Assert.False(string.IsNullOrEmpty(allowX.Metadata.Uid));
        Assert.Equal("Deny", allowX.Spec.GetProperty("ingress")[0].GetProperty("action").GetString());
        Assert.Null(snapshot.CalicoObjects.Single(o => o.Kind == CalicoObject.GlobalNetworkPolicy).Metadata.NamespaceProperty);
        Assert.True(harness.Server.ListRequests(NetworkPoliciesV1) >= 3, $"Calico NetworkPolicy list requests: {harness.Server.ListRequests(NetworkPoliciesV1)}");

        Assert.All(ApiResource.CalicoCrds, r => Assert.True(harness.StatusOf(r).Synced && harness.StatusOf(r).Installed == true, r.Name));
        Assert.All(ApiResource.Calico, r => Assert.False(harness.StatusOf(r).Installed, r.Name));
        Assert.Equal(6, harness.StatusOf(NetworkPoliciesV1).ObjectsCached);
        Assert.Contains($"Information: networkpolicies.{V1}: reading {V1}/v1", logger.Lines);
    }

    [Fact]
    public async Task Watch_CrdPolicyAddedModifiedDeleted_SnapshotFollowsWithoutRelist()
    {
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store =>
            {
                SeedSmallCluster(store);
                store.Apply(Calico(V1, CalicoObject.NetworkPolicy, "default.keep", "shop"));
                store.Apply(Calico(V1, CalicoObject.NetworkPolicy, "default.edit", "shop"));
                store.Apply(Calico(V1, CalicoObject.NetworkPolicy, "default.drop", "shop"));
            },
            beforeStart: CrdsOnly);
        await harness.WaitForConvergenceAsync();
        await harness.WaitForWatchesAsync();

        harness.Store.Apply(Calico(V1, CalicoObject.NetworkPolicy, "default.added", "shop"));
        harness.Store.Apply(Calico(V1, CalicoObject.NetworkPolicy, "default.edit", "shop", """{"selector":"all()","types":["Egress"],"egress":[{"action":"Allow"}]}"""));
        // A DELETED event names the object as stored, prefix and all.
        harness.Store.Delete(NetworkPoliciesV1, "shop", "default.drop");

        var snapshot = await harness.WaitForConvergenceAsync();
        Assert.Equal(
            ["NetworkPolicy(calico)/shop/added", "NetworkPolicy(calico)/shop/edit", "NetworkPolicy(calico)/shop/keep"],
            snapshot.CalicoObjects.Select(o => o.Key));
        var edited = snapshot.CalicoObjects.Single(o => o.Metadata.Name == "edit");
        Assert.Equal("Allow", edited.Spec.GetProperty("egress")[0].GetProperty("action").GetString());
        Assert.Null(snapshot.CalicoObjects.Single(o => o.Metadata.Name == "added").Metadata.Annotations);
        Assert.Equal(0, harness.StatusOf(NetworkPoliciesV1).Relists);
        Assert.True(harness.StatusOf(NetworkPoliciesV1).EventsApplied >= 3, $"events applied: {harness.StatusOf(NetworkPoliciesV1).EventsApplied}");
    }

    [Fact]
    public async Task StartAsync_ApiServerAndCrdsBoth_EachObjectOnceFromTheApiServer_ThenFromTheCrdsWhileItIsGone()
    {
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store =>
            {
                SeedSmallCluster(store);
                // The same objects in both groups, as a cluster with Calico's API server has them.
                store.Apply(Calico(V3, CalicoObject.NetworkPolicy, "allow-x", "shop"));
                store.Apply(Calico(V1, CalicoObject.NetworkPolicy, "default.allow-x", "shop"));
                store.Apply(Calico(V3, CalicoObject.GlobalNetworkPolicy, "deny-ingress"));
                store.Apply(Calico(V1, CalicoObject.GlobalNetworkPolicy, "default.deny-ingress"));
                // A CRD copy the API server does not show is not the kind's while the API server serves the kind.
                store.Apply(Calico(V1, CalicoObject.GlobalNetworkPolicy, "default.crd-only"));
                store.Apply(Calico(V1, CalicoObject.Tier, "security", spec: """{"order":100}"""));
            },
            configure: FastRecheck,
            // Every kind in both groups, but Tier from the CRDs alone.
            beforeStart: server => server.UninstallCustomResource(ApiResource.CalicoKind(V3, CalicoObject.Tier)));

        var snapshot = await harness.WaitForConvergenceAsync();
        Assert.Equal(["GlobalNetworkPolicy/deny-ingress", "NetworkPolicy(calico)/shop/allow-x", "Tier/security"], snapshot.CalicoObjects.Select(o => o.Key));
        Assert.Equal([$"{V3}/v3", $"{V3}/v3", $"{V1}/v1"], snapshot.CalicoObjects.Select(o => o.ApiVersion));
        // Both groups are read; the CRDs' copies of the kinds the API server serves are left out.
        Assert.Equal(3, harness.StatusOf(GlobalPoliciesV1).ObjectsCached + harness.StatusOf(NetworkPoliciesV1).ObjectsCached);

        // Calico's API server goes: its kinds come from the CRDs, without the source waiting for anything.
        harness.Server.UninstallCustomResource(GlobalPoliciesV3);
        snapshot = await harness.WaitForAsync(s => s.CalicoObjects.Count(o => o.Kind == CalicoObject.GlobalNetworkPolicy) == 2, "the GlobalNetworkPolicies from the CRDs");
        Assert.Equal(["GlobalNetworkPolicy/crd-only", "GlobalNetworkPolicy/deny-ingress"], snapshot.CalicoObjects.Where(o => o.Kind == CalicoObject.GlobalNetworkPolicy).Select(o => o.Key));
        Assert.All(snapshot.CalicoObjects.Where(o => o.Kind == CalicoObject.GlobalNetworkPolicy), o => Assert.Equal($"{V1}/v1", o.ApiVersion));
        Assert.Equal($"{V3}/v3", snapshot.CalicoObjects.Single(o => o.Kind == CalicoObject.NetworkPolicy).ApiVersion);

        // And back.
        harness.Server.InstallCustomResource(GlobalPoliciesV3);
        snapshot = await harness.WaitForAsync(
            s => s.CalicoObjects.Where(o => o.Kind == CalicoObject.GlobalNetworkPolicy).Select(o => o.ApiVersion).SequenceEqual([$"{V3}/v3"]),
            "the GlobalNetworkPolicies from the API server again");
        Assert.Equal("GlobalNetworkPolicy/deny-ingress", snapshot.CalicoObjects.Single(o => o.Kind == CalicoObject.GlobalNetworkPolicy).Key);
        Assert.True(harness.Source.IsSynced);
    }

    [Fact]
    public async Task Recheck_CrdInstalledLater_ReadWithoutRestartAndLoggedOnce()
    {
        var logger = new ListLogger();
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store =>
            {
                SeedSmallCluster(store);
                store.Apply(Calico(V1, CalicoObject.GlobalNetworkPolicy, "default.staged-1"));
                store.Apply(Calico(V1, CalicoObject.GlobalNetworkPolicy, "default.staged-2"));
            },
            configure: FastRecheck,
            beforeStart: UninstallCalico,
            logger: logger.For<KubernetesClusterSource>());
        await harness.Source.WaitForSyncAsync(CancellationToken.None).WaitAsync(KubernetesSourceHarness.WaitLimit);
        Assert.Empty((await harness.WaitForConvergenceAsync()).CalicoObjects);
        await KubernetesSourceHarness.WaitUntilAsync(() => harness.StatusOf(GlobalPoliciesV1).Installed == false, "the GlobalNetworkPolicy CRD to be seen absent");

        harness.Server.InstallCustomResource(GlobalPoliciesV1);
        var snapshot = await harness.WaitForAsync(s => s.CalicoObjects.Count == 2, "the GlobalNetworkPolicies of the CRD installed later");
        Assert.Equal(["GlobalNetworkPolicy/staged-1", "GlobalNetworkPolicy/staged-2"], snapshot.CalicoObjects.Select(o => o.Key));
        // A snapshot that another resource's change publishes may hold the objects a moment before the informer marks
        // itself synced (after logging).
        await KubernetesSourceHarness.WaitUntilAsync(() => harness.StatusOf(GlobalPoliciesV1).Synced, "the GlobalNetworkPolicy CRD to be synced");
        var status = harness.StatusOf(GlobalPoliciesV1);
        Assert.True(status.Synced);
        Assert.True(status.Installed);
        Assert.Single(logger.Lines, l => l == $"Information: globalnetworkpolicies.{V1}: served now ({V1}); Calico GlobalNetworkPolicies are read from it while {V3}/v3 does not serve them");

        // Watched from here on, like any resource.
        await harness.WaitForWatchesAsync();
        harness.Store.Apply(Calico(V1, CalicoObject.GlobalNetworkPolicy, "default.after-install"));
        Assert.Equal(3, (await harness.WaitForConvergenceAsync()).CalicoObjects.Count);
    }

    [Fact]
    public async Task List_CalicoApiServerForbidden_LoggedOnceNotWaitedFor_CrdsReadUntilPermitted()
    {
        var logger = new ListLogger();
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store =>
            {
                SeedSmallCluster(store);
                store.Apply(Calico(V3, CalicoObject.GlobalNetworkPolicy, "guarded"));
                store.Apply(Calico(V1, CalicoObject.GlobalNetworkPolicy, "default.guarded"));
            },
            beforeStart: server => server.Forbid(GlobalPoliciesV3),
            logger: logger.For<KubernetesClusterSource>());

        await harness.Source.WaitForSyncAsync(CancellationToken.None).WaitAsync(KubernetesSourceHarness.WaitLimit);
        await KubernetesSourceHarness.WaitUntilAsync(() => harness.Server.ForbiddenRequests(GlobalPoliciesV3) >= 3, "three forbidden attempts");
        var snapshot = await harness.WaitForConvergenceAsync();
        Assert.Equal($"{V1}/v1", Assert.Single(snapshot.CalicoObjects).ApiVersion);
        var status = harness.StatusOf(GlobalPoliciesV3);
        Assert.True(status.Forbidden);
        Assert.False(status.Awaited);
        var forbidden = Assert.Single(logger.Lines, l => l.Contains($"globalnetworkpolicies.{V3}: forbidden (403)", StringComparison.Ordinal));
        Assert.StartsWith($"Warning: globalnetworkpolicies.{V3}: forbidden (403) to list; the ClusterRole lacks the rule apiGroups: [\"{V3}\"], resources: [\"globalnetworkpolicies\"], verbs: [\"list\", \"watch\"]", forbidden, StringComparison.Ordinal);
        Assert.Contains($"Calico GlobalNetworkPolicies are read from their CRDs ({V1}/v1) instead until it is granted", forbidden, StringComparison.Ordinal);

        harness.Server.Permit(GlobalPoliciesV3);
        snapshot = await harness.WaitForAsync(s => s.CalicoObjects.Any(o => o.ApiVersion == $"{V3}/v3"), "the API server's copy once permitted");
        Assert.Equal("GlobalNetworkPolicy/guarded", Assert.Single(snapshot.CalicoObjects).Key);
        Assert.False(harness.StatusOf(GlobalPoliciesV3).Forbidden);
    }

    /// <summary>
    /// Calico's API server registered but down (its APIService answers 503): the agent must not wait for it forever. After
    /// a few failed lists the kind is no longer waited for, its CRDs are read meanwhile, and the API server's copy
    /// takes over when it answers again.
    /// </summary>
    [Fact]
    public async Task List_CalicoApiServerUnavailable_NotWaitedForAfterAFewFailures_CrdsReadUntilItAnswers()
    {
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store =>
            {
                SeedSmallCluster(store);
                store.Apply(Calico(V3, CalicoObject.GlobalNetworkPolicy, "guarded"));
                store.Apply(Calico(V1, CalicoObject.GlobalNetworkPolicy, "default.guarded"));
            },
            beforeStart: server => server.MakeUnavailable(GlobalPoliciesV3));

        await harness.Source.WaitForSyncAsync(CancellationToken.None).WaitAsync(KubernetesSourceHarness.WaitLimit);
        Assert.True(harness.Server.UnavailableAnswers(GlobalPoliciesV3) >= ResourceSyncStatus.FailuresBeforeGivingUpWaiting);
        var status = harness.StatusOf(GlobalPoliciesV3);
        Assert.True(status.Failing);
        Assert.False(status.Awaited);
        var snapshot = await harness.WaitForConvergenceAsync();
        Assert.Equal($"{V1}/v1", Assert.Single(snapshot.CalicoObjects).ApiVersion);

        harness.Server.Restore(GlobalPoliciesV3);
        await harness.WaitForAsync(s => s.CalicoObjects.Any(o => o.ApiVersion == $"{V3}/v3"), "the API server's copy once it answers");
        await KubernetesSourceHarness.WaitUntilAsync(() => !harness.StatusOf(GlobalPoliciesV3).Failing, "the failure streak reset");
    }

    [Fact]
    public async Task ServiceAccounts_ListedOverPagesAndWatched_InTheSnapshotWithTheirLabels()
    {
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store =>
            {
                SeedSmallCluster(store);
                store.Apply(ServiceAccount("default", "default"));
                store.Apply(ServiceAccount("shop", "default"));
                store.Apply(ServiceAccount("shop", "api", new Dictionary<string, string> { ["role"] = "api" }));
                store.Apply(ServiceAccount("shop", "worker", new Dictionary<string, string> { ["role"] = "worker" }));
                store.Apply(ServiceAccount("shop", "gone"));
            },
            configure: o => o with { PageSize = 2 });

        var snapshot = await harness.WaitForConvergenceAsync();
        Assert.Equal(["default/default", "shop/api", "shop/default", "shop/gone", "shop/worker"], snapshot.ServiceAccounts.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("api", snapshot.ServiceAccounts["shop/api"].Labels.Labels["role"]);
        Assert.True(harness.Server.ListRequests(ApiResource.ServiceAccounts) >= 3, $"ServiceAccount list requests: {harness.Server.ListRequests(ApiResource.ServiceAccounts)}");
        var status = harness.StatusOf(ApiResource.ServiceAccounts);
        Assert.True(status.Synced);
        Assert.True(status.Installed);

        await harness.WaitForWatchesAsync();
        harness.Store.Apply(ServiceAccount("shop", "api", new Dictionary<string, string> { ["role"] = "api", ["tier"] = "front" }));
        harness.Store.Apply(ServiceAccount("default", "batch", new Dictionary<string, string> { ["role"] = "batch" }));
        harness.Store.Delete(ApiResource.ServiceAccounts, "shop", "gone");

        snapshot = await harness.WaitForConvergenceAsync();
        Assert.Equal(["default/batch", "default/default", "shop/api", "shop/default", "shop/worker"], snapshot.ServiceAccounts.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("front", snapshot.ServiceAccounts["shop/api"].Labels.Labels["tier"]);
        Assert.Equal("batch", snapshot.ServiceAccounts["default/batch"].Labels.Labels["role"]);
        Assert.Equal(0, harness.StatusOf(ApiResource.ServiceAccounts).Relists);
        Assert.True(harness.StatusOf(ApiResource.ServiceAccounts).EventsApplied >= 3);
    }

    [Fact]
    public async Task List_ServiceAccountsForbidden_NotWaitedForAndNamedInTheLog_ThenReadOncePermitted()
    {
        var logger = new ListLogger();
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store =>
            {
                SeedSmallCluster(store);
                store.Apply(ServiceAccount("shop", "api", new Dictionary<string, string> { ["role"] = "api" }));
            },
            beforeStart: server => server.Forbid(ApiResource.ServiceAccounts),
            logger: logger.For<KubernetesClusterSource>());

        // An older ClusterRole without the rule must not keep the agent from auditing.
        await harness.Source.WaitForSyncAsync(CancellationToken.None).WaitAsync(KubernetesSourceHarness.WaitLimit);
        await KubernetesSourceHarness.WaitUntilAsync(() => harness.Server.ForbiddenRequests(ApiResource.ServiceAccounts) >= 3, "three forbidden attempts");
        Assert.Empty((await harness.WaitForConvergenceAsync()).ServiceAccounts);
        var status = harness.StatusOf(ApiResource.ServiceAccounts);
        Assert.True(status.Forbidden);
        Assert.True(status.Optional);
        Assert.False(status.Awaited);
        var forbidden = Assert.Single(logger.Lines, l => l.Contains("serviceaccounts: forbidden (403)", StringComparison.Ordinal));
        Assert.StartsWith("Warning: serviceaccounts: forbidden (403) to list; the ClusterRole lacks the rule apiGroups: [\"\"], resources: [\"serviceaccounts\"]", forbidden, StringComparison.Ordinal);
        Assert.Contains("match accounts by name only, not by their labels, until it is granted", forbidden, StringComparison.Ordinal);
        Assert.DoesNotContain("stays not ready", forbidden, StringComparison.Ordinal);

        harness.Server.Permit(ApiResource.ServiceAccounts);
        var snapshot = await harness.WaitForAsync(s => s.ServiceAccounts.Count == 1, "the ServiceAccount once permitted");
        Assert.Equal("api", snapshot.ServiceAccounts["shop/api"].Labels.Labels["role"]);
    }

    [Fact]
    public void SelectCalicoObjects_ApiServerSyncedOrNot_PicksOneGroupPerKindAndKeepsEachKeyOnce()
    {
        var v3 = Calico(V3, CalicoObject.NetworkPolicy, "allow-x", "shop").Normalize();
        var v1 = Calico(V1, CalicoObject.NetworkPolicy, "default.allow-x", "shop").Normalize();
        var v1Twin = Calico(V1, CalicoObject.NetworkPolicy, "allow-x", "shop").Normalize();
        var tier = Calico(V1, CalicoObject.Tier, "security").Normalize();

        var fromApiServer = KubernetesClusterSource.SelectCalicoObjects([(true, [v3], [v1]), (false, [], [tier])]);
        Assert.Equal([v3, tier], fromApiServer);

        var fromCrds = KubernetesClusterSource.SelectCalicoObjects([(false, [v3], [v1, v1Twin])]);
        Assert.Same(v1, Assert.Single(fromCrds));
    }

    /// <summary>Exactly <paramref name="times"/> such lines; the whole log in the message when not.</summary>
    private static void AssertLogged(int times, IReadOnlyList<string> lines, string line) =>
        Assert.True(lines.Count(l => l == line) == times, $"expected {times} × '{line}' in:\n{string.Join("\n", lines)}");
}
