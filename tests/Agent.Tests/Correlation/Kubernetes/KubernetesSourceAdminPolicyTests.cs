using k8s.Models;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Kubernetes;
using Tripline.Tests.Support;
using static Tripline.Tests.Correlation.Kubernetes.K8sObjects;

namespace Tripline.Tests.Correlation.Kubernetes;

/// <summary>
/// The admin policy kinds of <c>policy.networking.k8s.io</c> from the API: listed and watched like the rest where
/// their CRDs are installed, at the version the server serves; absent, forbidden, or installed later, without ever
/// keeping the source from syncing the rest.
/// </summary>
public sealed class KubernetesSourceAdminPolicyTests
{
    private const string Group = "policy.networking.k8s.io";

    private static readonly ApiResource Cnp = ApiResource.ClusterNetworkPolicies;
    private static readonly ApiResource Anp = ApiResource.AdminNetworkPolicies;
    private static readonly ApiResource Banp = ApiResource.BaselineAdminNetworkPolicies;

    /// <summary>Fast enough that a test sees several rechecks within a second or two.</summary>
    private static KubernetesSourceOptions FastRecheck(KubernetesSourceOptions options) =>
        options with { CustomResourceRecheckInterval = TimeSpan.FromMilliseconds(50) };

    [Fact]
    public async Task StartAsync_ClusterNetworkPoliciesOverSeveralPages_SnapshotHoldsThemTrimmedWithKindAndVersion()
    {
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store =>
            {
                SeedSmallCluster(store);
                for (int i = 0; i < 5; i++) store.Apply(ClusterNetworkPolicy($"cnp-{i}", priority: 10 + i));
            },
            configure: o => o with { PageSize = 2 });

        await harness.Source.WaitForSyncAsync(CancellationToken.None).WaitAsync(KubernetesSourceHarness.WaitLimit);
        var snapshot = await harness.WaitForConvergenceAsync();

        Assert.Equal(5, snapshot.AdminPolicies.Count);
        Assert.True(harness.Server.ListRequests(Cnp) >= 3, $"CNP list requests: {harness.Server.ListRequests(Cnp)}");
        var policy = snapshot.AdminPolicies.Single(p => p.Metadata.Name == "cnp-3");
        Assert.Equal("ClusterNetworkPolicy/cnp-3", policy.Key);
        Assert.Equal($"{Group}/v1beta1", policy.ApiVersion);
        Assert.False(string.IsNullOrEmpty(policy.Metadata.Uid));
        Assert.False(string.IsNullOrEmpty(policy.Metadata.ResourceVersion));
        Assert.Null(policy.Metadata.Annotations);
        Assert.Equal(13, policy.Spec.GetProperty("priority").GetInt32());
        Assert.Equal("Admin", policy.Spec.GetProperty("tier").GetString());
        var status = harness.StatusOf(Cnp);
        Assert.True(status.Synced);
        Assert.True(status.Optional);
        Assert.True(status.Installed);
        Assert.Equal(5, status.ObjectsCached);
    }

    [Fact]
    public async Task Watch_ClusterNetworkPolicyAddedModifiedDeleted_SnapshotFollowsWithoutRelist()
    {
        await using var harness = await KubernetesSourceHarness.StartAsync(seed: store =>
        {
            SeedSmallCluster(store);
            store.Apply(ClusterNetworkPolicy("keep"));
            store.Apply(ClusterNetworkPolicy("edit", priority: 20));
            store.Apply(ClusterNetworkPolicy("drop"));
        });
        await harness.WaitForConvergenceAsync();
        await harness.WaitForWatchesAsync();

        harness.Store.Apply(ClusterNetworkPolicy("added", priority: 5));
        harness.Store.Apply(ClusterNetworkPolicy("edit", priority: 21, tier: "Baseline"));
        harness.Store.Delete(Cnp, null, "drop");

        var snapshot = await harness.WaitForConvergenceAsync();
        Assert.Equal(["ClusterNetworkPolicy/added", "ClusterNetworkPolicy/edit", "ClusterNetworkPolicy/keep"], snapshot.AdminPolicies.Select(p => p.Key));
        var edited = snapshot.AdminPolicies.Single(p => p.Metadata.Name == "edit");
        Assert.Equal(21, edited.Spec.GetProperty("priority").GetInt32());
        Assert.Equal("Baseline", edited.Spec.GetProperty("tier").GetString());
        // Objects from watch events are named by their kind and version, like listed ones.
        Assert.All(snapshot.AdminPolicies, p => Assert.Equal($"{Group}/v1beta1", p.ApiVersion));
        Assert.Null(snapshot.AdminPolicies.Single(p => p.Metadata.Name == "added").Metadata.Annotations);
        Assert.Equal(0, harness.StatusOf(Cnp).Relists);
        Assert.True(harness.StatusOf(Cnp).EventsApplied >= 3, $"events applied: {harness.StatusOf(Cnp).EventsApplied}");
    }

    [Fact]
    public async Task StartAsync_ServerServesOnlyV1Alpha2_ReadsAndWatchesV1Alpha2()
    {
        var logger = new ListLogger();
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store =>
            {
                SeedSmallCluster(store);
                store.Apply(ClusterNetworkPolicy("old-install", version: "v1alpha2"));
            },
            beforeStart: server => server.InstallCustomResource(Cnp, "v1alpha2"),
            logger: logger.For<KubernetesClusterSource>());

        var snapshot = await harness.WaitForConvergenceAsync();
        Assert.Equal($"{Group}/v1alpha2", Assert.Single(snapshot.AdminPolicies).ApiVersion);
        // v1beta1 was asked first, and answered 404.
        Assert.True(harness.Server.NotFoundRequests(Cnp) >= 1);
        Assert.Contains($"Information: clusternetworkpolicies: reading {Group}/v1alpha2", logger.Lines);
        Assert.DoesNotContain(logger.Lines, l => l.Contains("the CRD is not installed", StringComparison.Ordinal));

        await harness.WaitForWatchesAsync();
        harness.Store.Apply(ClusterNetworkPolicy("watched", version: "v1alpha2"));
        snapshot = await harness.WaitForConvergenceAsync();
        Assert.Equal($"{Group}/v1alpha2", snapshot.AdminPolicies.Single(p => p.Metadata.Name == "watched").ApiVersion);
        Assert.Equal(0, harness.StatusOf(Cnp).Relists);
    }

    [Fact]
    public async Task StartAsync_AdminAndBaselineAdminNetworkPolicies_ReadAtV1Alpha1()
    {
        await using var harness = await KubernetesSourceHarness.StartAsync(seed: store =>
        {
            SeedSmallCluster(store);
            store.Apply(AdminNetworkPolicy("deny-from-all", priority: 3));
            store.Apply(BaselineAdminNetworkPolicy());
            store.Apply(ClusterNetworkPolicy("new-spelling"));
        });

        var snapshot = await harness.WaitForConvergenceAsync();

        Assert.Equal(
            ["AdminNetworkPolicy/deny-from-all", "BaselineAdminNetworkPolicy/default", "ClusterNetworkPolicy/new-spelling"],
            snapshot.AdminPolicies.Select(p => p.Key));
        Assert.Equal($"{Group}/v1alpha1", snapshot.AdminPolicies[0].ApiVersion);
        Assert.Equal($"{Group}/v1alpha1", snapshot.AdminPolicies[1].ApiVersion);
        Assert.Equal(3, snapshot.AdminPolicies[0].Spec.GetProperty("priority").GetInt32());
        Assert.True(harness.StatusOf(Anp).Synced);
        Assert.True(harness.StatusOf(Banp).Synced);
    }

    [Fact]
    public async Task StartAsync_CrdsNotInstalled_SyncsWithoutThemLogsOnceEachAndKeepsAsking()
    {
        var logger = new ListLogger();
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store => SeedSmallCluster(store),
            configure: FastRecheck,
            beforeStart: server =>
            {
                foreach (var resource in ApiResource.AdminPolicies) server.UninstallCustomResource(resource);
            },
            logger: logger.For<KubernetesClusterSource>());

        await harness.Source.WaitForSyncAsync(CancellationToken.None).WaitAsync(KubernetesSourceHarness.WaitLimit);
        var snapshot = await harness.WaitForConvergenceAsync();
        Assert.True(harness.Source.IsSynced);
        Assert.Empty(snapshot.AdminPolicies);
        Assert.Single(snapshot.Policies);

        // Many rechecks later (each asks every version), still one line per resource.
        await KubernetesSourceHarness.WaitUntilAsync(
            () => ApiResource.AdminPolicies.All(r => harness.Server.NotFoundRequests(r) >= 5 * r.Versions.Count),
            () => "five rechecks of every admin policy resource: " + string.Join(", ", ApiResource.AdminPolicies.Select(r => $"{r.Name} {harness.Server.NotFoundRequests(r)}")));
        var lines = logger.Lines;
        AssertLogged(1, lines, $"Information: clusternetworkpolicies: the CRD is not installed ({Group}); ClusterNetworkPolicies are not judged until it is");
        AssertLogged(1, lines, $"Information: adminnetworkpolicies: the CRD is not installed ({Group}); AdminNetworkPolicies are not judged until it is");
        AssertLogged(1, lines, $"Information: baselineadminnetworkpolicies: the CRD is not installed ({Group}); BaselineAdminNetworkPolicies are not judged until it is");
        // An absent CRD is not a failure: no "list failed ... 404" warnings at every recheck. (Other warnings, a
        // connection reset on a loaded machine, are no concern of this test.)
        Assert.False(lines.Any(l => l.StartsWith("Warning:", StringComparison.Ordinal) && l.Contains("404", StringComparison.Ordinal)), string.Join("\n", lines));

        foreach (var resource in ApiResource.AdminPolicies)
        {
            var status = harness.StatusOf(resource);
            Assert.False(status.Synced, resource.Name);
            Assert.False(status.Installed, resource.Name);
            Assert.True(status.Optional, resource.Name);
            Assert.False(status.Awaited, resource.Name);
            Assert.DoesNotContain("404", status.LastError ?? "", StringComparison.Ordinal);
        }
        Assert.All(harness.Source.Status.Where(s => !s.Optional), s => Assert.True(s.Synced && s.Installed == true, s.Resource));
    }

    [Fact]
    public async Task Recheck_CrdInstalledLater_ReadWithoutRestartAndLoggedOnce_ThenUninstalledAgain_Emptied()
    {
        var logger = new ListLogger();
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store =>
            {
                SeedSmallCluster(store);
                store.Apply(ClusterNetworkPolicy("staged-1"));
                store.Apply(ClusterNetworkPolicy("staged-2"));
            },
            configure: FastRecheck,
            beforeStart: server => server.UninstallCustomResource(Cnp),
            logger: logger.For<KubernetesClusterSource>());
        await harness.Source.WaitForSyncAsync(CancellationToken.None).WaitAsync(KubernetesSourceHarness.WaitLimit);
        Assert.Empty((await harness.WaitForConvergenceAsync()).AdminPolicies);
        Assert.False(harness.StatusOf(Cnp).Installed);

        harness.Server.InstallCustomResource(Cnp);
        var snapshot = await harness.WaitForAsync(s => s.AdminPolicies.Count == 2, "the CNPs of the CRD installed later");
        Assert.All(snapshot.AdminPolicies, p => Assert.Equal($"{Group}/v1beta1", p.ApiVersion));
        // The objects can be published a moment before the informer marks itself synced: wait for the status too.
        await KubernetesSourceHarness.WaitUntilAsync(() => harness.StatusOf(Cnp).Synced, "the ClusterNetworkPolicy CRD to be synced");
        var status = harness.StatusOf(Cnp);
        Assert.True(status.Synced);
        Assert.True(status.Installed);
        Assert.Single(logger.Lines, l => l == $"Information: clusternetworkpolicies: the CRD is installed now ({Group}); ClusterNetworkPolicies are judged from here on");

        // Watched from here on, like any resource.
        await harness.WaitForWatchesAsync();
        harness.Store.Apply(ClusterNetworkPolicy("after-install"));
        Assert.Equal(3, (await harness.WaitForConvergenceAsync()).AdminPolicies.Count);

        // The CRD deleted: its objects go with it, and the absence is a new one, logged again.
        harness.Server.UninstallCustomResource(Cnp);
        await harness.WaitForAsync(s => s.AdminPolicies.Count == 0, "the CNPs to go with their CRD");
        await KubernetesSourceHarness.WaitUntilAsync(() => harness.StatusOf(Cnp).Installed == false, "the CNP CRD to be seen gone");
        Assert.Equal(2, logger.Lines.Count(l => l.Contains("clusternetworkpolicies: the CRD is not installed", StringComparison.Ordinal)));
        Assert.False(harness.StatusOf(Cnp).Synced);
        Assert.True(harness.Source.IsSynced);
    }

    [Fact]
    public async Task List_AdminPolicyForbidden_LoggedOncePerStreakNotWaitedFor_ThenReadOncePermitted()
    {
        var logger = new ListLogger();
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store =>
            {
                SeedSmallCluster(store);
                store.Apply(ClusterNetworkPolicy("guarded"));
            },
            beforeStart: server => server.Forbid(Cnp),
            logger: logger.For<KubernetesClusterSource>());

        // Synced without it: a missing RBAC rule for an optional kind must not keep the agent from auditing.
        await harness.Source.WaitForSyncAsync(CancellationToken.None).WaitAsync(KubernetesSourceHarness.WaitLimit);
        await KubernetesSourceHarness.WaitUntilAsync(() => harness.Server.ForbiddenRequests(Cnp) >= 4, "four forbidden attempts");
        var status = harness.StatusOf(Cnp);
        Assert.True(status.Forbidden);
        Assert.False(status.Synced);
        Assert.Null(status.Installed);
        Assert.False(status.Awaited);
        var forbidden = Assert.Single(logger.Lines, l => l.Contains("clusternetworkpolicies: forbidden (403)", StringComparison.Ordinal));
        Assert.StartsWith("Warning: clusternetworkpolicies: forbidden (403) to list; the ClusterRole lacks the rule apiGroups: [\"policy.networking.k8s.io\"], resources: [\"clusternetworkpolicies\"], verbs: [\"list\", \"watch\"]", forbidden, StringComparison.Ordinal);
        Assert.Contains("ClusterNetworkPolicies are not judged until it is granted", forbidden, StringComparison.Ordinal);
        Assert.DoesNotContain(logger.Lines, l => l.Contains("the CRD is not installed", StringComparison.Ordinal));

        harness.Server.Permit(Cnp);
        var snapshot = await harness.WaitForConvergenceAsync();
        Assert.Equal("ClusterNetworkPolicy/guarded", Assert.Single(snapshot.AdminPolicies).Key);
        Assert.False(harness.StatusOf(Cnp).Forbidden);
        Assert.True(harness.StatusOf(Cnp).Installed);

        // A new streak is logged again.
        harness.Server.Forbid(Cnp);
        await KubernetesSourceHarness.WaitUntilAsync(
            () => logger.Lines.Count(l => l.Contains("clusternetworkpolicies: forbidden (403)", StringComparison.Ordinal)) == 2, "the second streak to be logged");
    }

    [Fact]
    public async Task List_BuiltInResourceForbidden_StillAwaitedAndNamedInTheLog()
    {
        var logger = new ListLogger();
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store => SeedSmallCluster(store),
            beforeStart: server => server.Forbid(ApiResource.Pods),
            logger: logger.For<KubernetesClusterSource>());

        await KubernetesSourceHarness.WaitUntilAsync(() => harness.Server.ForbiddenRequests(ApiResource.Pods) >= 3, "three forbidden pod lists");
        // Pods were never listed, so nothing can have made the source synced.
        Assert.False(harness.Source.IsSynced);
        Assert.True(harness.StatusOf(ApiResource.Pods).Awaited);
        Assert.Single(logger.Lines, l => l.StartsWith("Warning: pods: forbidden (403) to list; the ClusterRole lacks the rule apiGroups: [\"\"], resources: [\"pods\"]", StringComparison.Ordinal)
            && l.Contains("the agent stays not ready until it is granted", StringComparison.Ordinal));

        harness.Server.Permit(ApiResource.Pods);
        await harness.Source.WaitForSyncAsync(CancellationToken.None).WaitAsync(KubernetesSourceHarness.WaitLimit);
        await harness.WaitForConvergenceAsync();
    }

    /// <summary>Exactly <paramref name="times"/> such lines; the whole log in the message when not.</summary>
    private static void AssertLogged(int times, IReadOnlyList<string> lines, string line) =>
        Assert.True(lines.Count(l => l == line) == times, $"expected {times} × '{line}' in:\n{string.Join("\n", lines)}");

    [Fact]
    public void Validate_RecheckIntervalNotPositive_Reported()
    {
        var errors = new KubernetesSourceOptions { CustomResourceRecheckInterval = TimeSpan.Zero }.Validate();
        Assert.Equal("custom resource recheck interval: must be positive", Assert.Single(errors));
    }

    [Fact]
    public void Awaited_OptionalResourceAbsentOrForbidden_IsNotWaitedFor_ARequiredOneIs()
    {
        Assert.True(new ResourceSyncStatus("pods", Synced: false).Awaited);
        Assert.True(new ResourceSyncStatus("pods", Synced: false, Forbidden: true).Awaited);
        Assert.False(new ResourceSyncStatus("pods", Synced: true).Awaited);
        Assert.True(new ResourceSyncStatus("clusternetworkpolicies", Synced: false, Optional: true, Installed: null).Awaited);
        Assert.True(new ResourceSyncStatus("clusternetworkpolicies", Synced: false, Optional: true, Installed: true).Awaited);
        Assert.False(new ResourceSyncStatus("clusternetworkpolicies", Synced: false, Optional: true, Installed: false).Awaited);
        Assert.False(new ResourceSyncStatus("clusternetworkpolicies", Synced: false, Optional: true, Installed: null, Forbidden: true).Awaited);
    }
}
