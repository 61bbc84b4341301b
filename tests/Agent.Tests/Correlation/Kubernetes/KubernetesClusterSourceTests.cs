using k8s.Models;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;
using Tripline.Correlation.Kubernetes;
using static Tripline.Tests.Correlation.Kubernetes.K8sObjects;

namespace Tripline.Tests.Correlation.Kubernetes;

public sealed class KubernetesClusterSourceTests
{
    [Fact]
    public async Task StartAsync_PaginatedLists_SnapshotEqualsServerAndIsSynced()
    {
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store => SeedSmallCluster(store, pods: 40),
            configure: o => o with { PageSize = 7 });

        await harness.Source.WaitForSyncAsync(CancellationToken.None).WaitAsync(KubernetesSourceHarness.WaitLimit);
        var snapshot = await harness.WaitForConvergenceAsync();

        Assert.True(harness.Source.IsSynced);
        Assert.Equal(40, snapshot.Pods.Count);
        // 40 pods at 7 a page is 6 pages, all served from one consistent list.
        Assert.True(harness.Server.ListRequests(ApiResource.Pods) >= 6, $"pod list requests: {harness.Server.ListRequests(ApiResource.Pods)}");
        Assert.All(harness.Source.Status, s => Assert.True(s.Synced, s.Resource));
        Assert.Equal(40, harness.StatusOf(ApiResource.Pods).ObjectsCached);
        var pod = snapshot.Pods.Single(p => p.Name == "web-3");
        Assert.Equal("shop", pod.Namespace);
        Assert.False(string.IsNullOrEmpty(pod.Uid));
        Assert.Equal("Deployment/web", pod.Workload?.ToString());
        Assert.Equal(8080, Assert.Single(pod.Ports).Port);
        Assert.Null(Assert.Single(snapshot.Policies).Metadata.Annotations);
    }

    [Fact]
    public async Task Watch_ObjectsAddedModifiedDeleted_SnapshotFollowsWithoutRelist()
    {
        await using var harness = await KubernetesSourceHarness.StartAsync(seed: store => SeedSmallCluster(store));
        await harness.WaitForConvergenceAsync();
        long versionBefore = harness.Source.Current.Version;

        harness.Store.Apply(Pod("default", "new-pod", "10.244.9.9"));
        harness.Store.Apply(Pod("default", "web-0", PodIp(0), new Dictionary<string, string> { ["app"] = "web", ["tier"] = "front" }));
        harness.Store.Delete<V1Pod>("shop", "web-1");
        harness.Store.Apply(Namespace("extra"));
        harness.Store.Apply(DenyAll("default", "second"));
        harness.Store.Apply(Slice("shop", "web", PodIp(3)));
        harness.Store.Delete<V1Node>(null, "node-a");

        var snapshot = await harness.WaitForConvergenceAsync();
        Assert.True(snapshot.Version > versionBefore);
        Assert.Equal("front", snapshot.Pods.Single(p => p.Name == "web-0" && p.DeletedAt is null).Labels.Labels["tier"]);
        Assert.All(harness.Source.Status, s => Assert.Equal(0, s.Relists));
        Assert.True(harness.StatusOf(ApiResource.Pods).EventsApplied >= 3);
        Assert.NotNull(harness.StatusOf(ApiResource.Pods).LastEventAt);
    }

    [Fact]
    public async Task Status_OneResourceNotYetListed_NamesItAndIsNotSynced()
    {
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store => SeedSmallCluster(store),
            beforeStart: server => server.HoldLists(ApiResource.NetworkPolicies));

        await KubernetesSourceHarness.WaitUntilAsync(
            () => harness.Source.Status.Count(s => s.Synced) == harness.Source.Status.Count - 1, "every other resource to sync");
        Assert.False(harness.Source.IsSynced);
        var missing = Assert.Single(harness.Source.Status, s => !s.Synced);
        Assert.Equal("networkpolicies", missing.Resource);
        // Endpoints are already resolvable from what has been listed, while the verdict waits for the policies.
        var partial = await harness.WaitForAsync(s => s.Pods.Count == 20, "pods before policies");
        Assert.Empty(partial.Policies);

        harness.Server.ReleaseLists(ApiResource.NetworkPolicies);
        await harness.Source.WaitForSyncAsync(CancellationToken.None).WaitAsync(KubernetesSourceHarness.WaitLimit);
        var snapshot = await harness.WaitForConvergenceAsync();
        Assert.Single(snapshot.Policies);
    }

    [Fact]
    public async Task Watch_PodBurst_CoalescedIntoFewSnapshots()
    {
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store => SeedSmallCluster(store),
            configure: o => o with { CoalesceDelay = TimeSpan.FromMilliseconds(150) });
        await harness.WaitForConvergenceAsync();
        int before = harness.SnapshotsPublished;

        for (int i = 0; i < 2000; i++) harness.Store.Apply(Pod("burst", $"p-{i}", $"10.250.{i / 250}.{i % 250 + 1}"));
        await harness.WaitForConvergenceAsync();

        int published = harness.SnapshotsPublished - before;
        Assert.True(published < 40, $"{published} snapshots for 2000 events");
        Assert.True(harness.StatusOf(ApiResource.Pods).EventsApplied >= 2000);
    }

    [Fact]
    public async Task Watch_PodDeleted_KeptWithDeletedAtForTheGracePeriodThenPruned()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store => SeedSmallCluster(store),
            clock: clock,
            configure: o => o with { DeletedPodRetention = TimeSpan.FromMinutes(2) });
        await harness.WaitForConvergenceAsync();
        string uid = harness.Store.Objects<V1Pod>().Single(p => p.Metadata.Name == "web-4").Metadata.Uid;

        clock.Advance(TimeSpan.FromSeconds(30));
        var deletedAt = clock.GetUtcNow();
        harness.Store.Delete<V1Pod>("default", "web-4");
        var snapshot = await harness.WaitForAsync(s => s.Pods.Any(p => p.Uid == uid && p.DeletedAt is not null), "the deleted pod to be kept");

        var kept = snapshot.Pods.Single(p => p.Uid == uid);
        Assert.Equal(deletedAt, kept.DeletedAt);
        Assert.Equal(1, harness.Source.DeletedPodsRetained);
        var index = EndpointIndex.Build(snapshot);
        var ip = IpKey.From(System.Net.IPAddress.Parse(PodIp(4)));
        Assert.Equal(uid, index.Resolve(ip, ToNs(deletedAt.AddSeconds(-1))).Pod?.Uid);
        Assert.Equal(uid, index.Resolve(ip, ToNs(deletedAt.AddSeconds(5))).Pod?.Uid);

        clock.Advance(TimeSpan.FromMinutes(3));
        harness.Store.Apply(Pod("default", "unrelated", "10.244.50.50"));
        await harness.WaitForAsync(s => s.Pods.Any(p => p.Name == "unrelated") && s.Pods.All(p => p.Uid != uid), "the deleted pod to be pruned");
        Assert.Equal(0, harness.Source.DeletedPodsRetained);
    }

    [Fact]
    public void RequiredAccess_EveryInformedResource_ListAndWatchOnly()
    {
        var options = KubernetesSourceHarness.FastOptions(WriteDummyKubeconfig());
        var source = new KubernetesClusterSource(options);
        Assert.Equal(source.InformedResources, KubernetesClusterSource.RequiredAccess.Select(a => (a.ApiGroup, a.Resource)));
        Assert.All(KubernetesClusterSource.RequiredAccess, a => Assert.Equal(["list", "watch"], a.Verbs));
        Assert.Equal("discovery.k8s.io", KubernetesClusterSource.RequiredAccess.Single(a => a.Resource == "endpointslices").ApiGroup);
        Assert.Equal("", KubernetesClusterSource.RequiredAccess.Single(a => a.Resource == "serviceaccounts").ApiGroup);
        Assert.Equal(
            ["networking.k8s.io", "projectcalico.org", "crd.projectcalico.org"],
            KubernetesClusterSource.RequiredAccess.Where(a => a.Resource == "networkpolicies").Select(a => a.ApiGroup));
        Assert.Equal(
            ["clusternetworkpolicies", "adminnetworkpolicies", "baselineadminnetworkpolicies"],
            KubernetesClusterSource.RequiredAccess.Where(a => a.ApiGroup == "policy.networking.k8s.io").Select(a => a.Resource));
        string[] calico = ["networkpolicies", "globalnetworkpolicies", "networksets", "globalnetworksets", "tiers", "stagednetworkpolicies", "stagedglobalnetworkpolicies", "stagedkubernetesnetworkpolicies"];
        Assert.Equal(calico, KubernetesClusterSource.RequiredAccess.Where(a => a.ApiGroup == "projectcalico.org").Select(a => a.Resource));
        Assert.Equal(calico, KubernetesClusterSource.RequiredAccess.Where(a => a.ApiGroup == "crd.projectcalico.org").Select(a => a.Resource));
        // Status, logs and metrics name each resource once; Calico's plurals carry their group.
        Assert.Equal(source.Status.Count, source.Status.Select(s => s.Resource).Distinct().Count());
        Assert.Contains("networkpolicies.crd.projectcalico.org", source.Status.Select(s => s.Resource));
    }

    [Fact]
    public void Validate_BadValues_ReportsEveryProblem()
    {
        var options = new KubernetesSourceOptions
        {
            KubeconfigPath = "/nonexistent/kubeconfig",
            PageSize = 0,
            BackoffInitial = TimeSpan.Zero,
            BackoffJitter = 2,
            SilentWatchTimeout = TimeSpan.Zero,
        };
        var errors = options.Validate();
        Assert.Equal(5, errors.Count);
        Assert.Contains(errors, e => e.StartsWith("--kubeconfig:", StringComparison.Ordinal));
        var thrown = Assert.Throws<ArgumentException>(() => new KubernetesClusterSource(options));
        Assert.Contains("page size", thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_UnreadableKubeconfig_ThrowsNamingTheOption()
    {
        string path = Path.Combine(Path.GetTempPath(), $"tripline-bad-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, "this: [is not a kubeconfig");
        try
        {
            var thrown = Assert.Throws<ArgumentException>(() => new KubernetesClusterSource(new KubernetesSourceOptions { KubeconfigPath = path }));
            Assert.Contains("--kubeconfig", thrown.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Backoff_ConsecutiveFailures_GrowsExponentiallyCappedWithinJitter()
    {
        var random = new Random(7);
        var initial = TimeSpan.FromMilliseconds(100);
        var max = TimeSpan.FromSeconds(2);
        for (int failures = 1; failures <= 10; failures++)
        {
            double expected = Math.Min(100 * Math.Pow(2, failures - 1), 2000);
            double actual = Backoff.Delay(failures, initial, max, 0.25, random).TotalMilliseconds;
            Assert.InRange(actual, expected * 0.75 - 0.001, expected * 1.25 + 0.001);
        }
        Assert.Equal(TimeSpan.Zero, Backoff.Delay(0, initial, max, 0.25, random));
    }

    internal static long ToNs(DateTimeOffset time) => (time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;

    private static string WriteDummyKubeconfig()
    {
        string path = Path.Combine(Path.GetTempPath(), $"tripline-dummy-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, """
            apiVersion: v1
            kind: Config
            clusters:
            - name: c
              cluster:
                server: https://127.0.0.1:1
                insecure-skip-tls-verify: true
            contexts:
            - name: c
              context:
                cluster: c
                user: u
            current-context: c
            users:
            - name: u
              user:
                token: t
            """);
        return path;
    }
}
