using k8s.Models;
using static Tripline.Tests.Correlation.Kubernetes.K8sObjects;

namespace Tripline.Tests.Correlation.Kubernetes;

/// <summary>After every fault the API server can throw at it, the source's cache equals the server's state.</summary>
public sealed class KubernetesSourceFaultTests
{
    [Fact]
    public async Task Watch_DroppedMidStream_ResumesFromResourceVersionWithoutRelist()
    {
        await using var harness = await KubernetesSourceHarness.StartAsync(seed: store => SeedSmallCluster(store));
        await harness.WaitForConvergenceAsync();
        await harness.WaitForWatchesAsync();
        int watchesBefore = harness.Server.WatchRequests(ApiResource.Pods);

        harness.Server.DropWatches();
        harness.Store.Apply(Pod("default", "after-drop", "10.244.7.7"));
        harness.Store.Delete<V1Pod>("default", "web-2");
        harness.Store.Apply(Service("default", "late", "10.96.0.99"));

        await harness.WaitForConvergenceAsync();
        Assert.All(harness.Source.Status, s => Assert.Equal(0, s.Relists));
        Assert.True(harness.Server.WatchRequests(ApiResource.Pods) > watchesBefore);
        await KubernetesSourceHarness.WaitUntilAsync(() => harness.StatusOf(ApiResource.Pods).WatchRestarts >= 1, "the restart to be counted");
    }

    [Fact]
    public async Task Watch_Answered410AfterLostEvents_RelistsAndAppliesMissedDeletions()
    {
        await using var harness = await KubernetesSourceHarness.StartAsync(seed: store => SeedSmallCluster(store));
        await harness.WaitForConvergenceAsync();
        string replacedUid = harness.Store.Objects<V1Pod>().Single(p => p.Metadata.Name == "web-6").Metadata.Uid;

        // Events that never reach the agent, then a compaction: only a relist can tell what changed.
        harness.Store.SuppressDelivery = true;
        for (int i = 10; i < 15; i++) harness.Store.Delete<V1Pod>(i % 2 == 0 ? "default" : "shop", $"web-{i}");
        harness.Store.Delete<V1Pod>("default", "web-6");
        harness.Store.Apply(Pod("default", "web-6", "10.244.8.6"));
        harness.Store.Apply(Pod("shop", "newcomer", "10.244.8.7"));
        harness.Store.Delete<V1NetworkPolicy>("shop", "deny-all");
        harness.Store.SuppressDelivery = false;
        harness.Server.ExpireWatches();

        var snapshot = await harness.WaitForConvergenceAsync();
        Assert.True(harness.StatusOf(ApiResource.Pods).Relists >= 1);
        Assert.True(harness.StatusOf(ApiResource.NetworkPolicies).Relists >= 1);
        Assert.Empty(snapshot.Policies);
        // The missed deletions, and the pod replaced under the same name, are kept as deleted pods for late packets.
        Assert.Equal(6, snapshot.Pods.Count(p => p.DeletedAt is not null));
        Assert.Contains(snapshot.Pods, p => p.Uid == replacedUid && p.DeletedAt is not null);
    }

    [Fact]
    public async Task Restart_NewResourceVersionHistory_RelistsEveryResourceAndConverges()
    {
        await using var harness = await KubernetesSourceHarness.StartAsync(seed: store => SeedSmallCluster(store));
        await harness.WaitForConvergenceAsync();

        harness.Store.SuppressDelivery = true;
        harness.Store.Delete<V1Pod>("default", "web-0");
        harness.Store.Apply(Node("node-b", "192.168.1.11"));
        harness.Store.SuppressDelivery = false;
        // Restored from a backup: the versions now run lower than the ones the agent holds.
        harness.Server.RestartWithNewHistory(newRevision: 10);
        harness.Store.Apply(Pod("default", "after-restart", "10.244.9.1"));

        await harness.WaitForConvergenceAsync();
        // Resources with nothing new converge before their watch is back; each must still relist once it is, since its
        // resourceVersion is ahead of the new history (the server answers 504 Too large resource version).
        await KubernetesSourceHarness.WaitUntilAsync(() => harness.Source.Status.All(s => s.Relists >= 1),
            () => "every resource to relist: " + string.Join(", ", harness.Source.Status.Select(s => $"{s.Resource} relists {s.Relists}")));

        harness.Store.Apply(Pod("default", "later", "10.244.9.2"));
        await harness.WaitForConvergenceAsync();
    }

    [Fact]
    public async Task Server_UnreachableForAWhile_RetriesWithBackoffThenConverges()
    {
        await using var harness = await KubernetesSourceHarness.StartAsync(seed: store => SeedSmallCluster(store));
        await harness.WaitForConvergenceAsync();

        await harness.Server.GoUnreachableAsync();
        harness.Store.Delete<V1Pod>("shop", "web-5");
        harness.Store.Apply(Pod("shop", "while-away", "10.244.6.6"));
        await KubernetesSourceHarness.WaitUntilAsync(
            () => harness.Source.Status.Count(s => s.LastError is not null) == harness.Source.Status.Count, "every resource to see the server gone");
        await harness.Server.ComeBackAsync();

        await harness.WaitForConvergenceAsync();
        Assert.All(harness.Source.Status, s => Assert.True(s.WatchRestarts >= 1, $"{s.Resource} restarts {s.WatchRestarts}"));
        Assert.True(harness.Source.IsSynced);
    }

    [Fact]
    public async Task Watch_MalformedEvent_RelistsAndConverges()
    {
        await using var harness = await KubernetesSourceHarness.StartAsync(seed: store => SeedSmallCluster(store));
        await harness.WaitForConvergenceAsync();

        await harness.WaitForWatchesAsync();
        harness.Server.SendMalformedEvent(ApiResource.Pods);
        harness.Store.Apply(Pod("default", "web-0", PodIp(0), new Dictionary<string, string> { ["app"] = "changed" }));
        harness.Store.Apply(Pod("default", "next", "10.244.5.5"));

        await harness.WaitForConvergenceAsync();
        var pods = harness.StatusOf(ApiResource.Pods);
        Assert.True(pods.Relists >= 1, $"{pods}");
        Assert.Equal(0, harness.StatusOf(ApiResource.Services).Relists);
    }

    [Fact]
    public async Task Server_SlowResponses_ListCompletesAndWatchFollows()
    {
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store => SeedSmallCluster(store, pods: 60),
            configure: o => o with { PageSize = 10 },
            beforeStart: server => server.ResponseDelay = TimeSpan.FromMilliseconds(150));
        await harness.WaitForConvergenceAsync();

        harness.Store.Apply(Pod("default", "slow-1", "10.244.4.4"));
        await harness.WaitForConvergenceAsync();
        Assert.All(harness.Source.Status, s => Assert.Null(s.LastError));
        Assert.True(harness.Server.ListRequests(ApiResource.Pods) >= 6);
    }

    [Fact]
    public async Task Watch_SilentTooLong_RestartedAndCatchesUp()
    {
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store => SeedSmallCluster(store),
            configure: o => o with { SilentWatchTimeout = TimeSpan.FromMilliseconds(700) });
        await harness.WaitForConvergenceAsync();
        await harness.WaitForWatchesAsync();
        long restartsBefore = harness.StatusOf(ApiResource.Pods).WatchRestarts;

        harness.Server.StallWatches();
        harness.Store.Apply(Pod("default", "during-stall", "10.244.3.3"));
        await KubernetesSourceHarness.WaitUntilAsync(
            () => harness.StatusOf(ApiResource.Pods).WatchRestarts > restartsBefore, "the silent watch to be restarted");
        harness.Server.ResumeWatches();

        await harness.WaitForConvergenceAsync();
        Assert.Equal(0, harness.StatusOf(ApiResource.Pods).Relists);
    }

    [Fact]
    public async Task List_ContinueTokenExpiredMidList_StartsOverAndConverges()
    {
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store => SeedSmallCluster(store, pods: 30),
            configure: o => o with { PageSize = 5 },
            beforeStart: server => server.FailNextContinue());

        await harness.WaitForConvergenceAsync();
        // Six pages, plus the page that failed and the first page again.
        Assert.True(harness.Server.ListRequests(ApiResource.Pods) >= 8, $"pod list requests: {harness.Server.ListRequests(ApiResource.Pods)}");
        Assert.Equal(0, harness.StatusOf(ApiResource.Pods).Relists);
    }
}
