using k8s.Models;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Kubernetes;
using Tripline.Tests.Support;
using static Tripline.Tests.Correlation.Kubernetes.K8sObjects;

namespace Tripline.Tests.Correlation.Kubernetes;

/// <summary>
/// The mesh audit's cluster facts from the API: Istio's PeerAuthentications (v1, else v1beta1) listed and watched as an
/// optional custom resource, and pods' sidecars read from their containers and annotations.
/// </summary>
public sealed class KubernetesSourceMeshTests
{
    private static readonly ApiResource PeerAuthentications = ApiResource.PeerAuthentications;

    private static PeerAuthenticationObject Strict(string ns, string name, string version = "v1", Dictionary<string, string>? selector = null) => new()
    {
        ApiVersion = $"{PeerAuthenticationObject.Group}/{version}",
        Kind = PeerAuthenticationObject.KindName,
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns, Annotations = new Dictionary<string, string> { ["kubectl.kubernetes.io/last-applied-configuration"] = "{}" } },
        Spec = new PeerAuthenticationSpec
        {
            Selector = selector is null ? null : new PeerAuthenticationSelector { MatchLabels = selector },
            Mtls = new PeerAuthenticationMtls { Mode = "STRICT" },
        },
    };

    private static V1Pod WithSidecar(V1Pod pod)
    {
        pod.Spec.Containers.Add(new V1Container { Name = "istio-proxy" });
        return pod;
    }

    [Fact]
    public async Task PeerAuthenticationsAndSidecars_ListedAndWatched()
    {
        await using var harness = await KubernetesSourceHarness.StartAsync(seed: store =>
        {
            SeedSmallCluster(store);
            store.Apply(Strict("a", "namespace-wide"));
            store.Apply(Strict("a", "db", selector: new() { ["app"] = "db" }));
            store.Apply(WithSidecar(Pod("a", "meshed", "10.244.9.1")));
        });
        await harness.Source.WaitForSyncAsync(CancellationToken.None).WaitAsync(KubernetesSourceHarness.WaitLimit);
        await KubernetesSourceHarness.WaitUntilAsync(
            () => harness.Source.Current.PeerAuthentications.Count == 2 && harness.Source.Current.Pods.Any(p => p.Name == "meshed"),
            () => $"PeerAuthentications: {harness.Source.Current.PeerAuthentications.Count}");
        var snapshot = harness.Source.Current;
        Assert.Equal(["a/db", "a/namespace-wide"], snapshot.PeerAuthentications.Select(p => p.Key));
        var db = snapshot.PeerAuthentications.Single(p => p.Key == "a/db");
        Assert.Equal("STRICT", db.Spec?.Mtls?.Mode);
        Assert.Equal("db", db.Spec?.Selector?.MatchLabels?["app"]);
        Assert.Null(db.Metadata.Annotations);
        Assert.True(snapshot.Pods.Single(p => p.Name == "meshed").IstioSidecar);
        Assert.DoesNotContain(snapshot.Pods, p => p.Name != "meshed" && p.IstioSidecar);
        var status = harness.StatusOf(PeerAuthentications);
        Assert.True(status.Synced);
        Assert.True(status.Optional);

        await harness.WaitForWatchesAsync();
        harness.Store.Apply(Strict("b", "added"));
        harness.Store.Delete(PeerAuthentications, "a", "db");
        await KubernetesSourceHarness.WaitUntilAsync(
            () => harness.Source.Current.PeerAuthentications.Select(p => p.Key).SequenceEqual(["a/namespace-wide", "b/added"]),
            () => string.Join(", ", harness.Source.Current.PeerAuthentications.Select(p => p.Key)));
        Assert.Equal(0, harness.StatusOf(PeerAuthentications).Relists);
    }

    [Fact]
    public async Task PeerAuthentications_OnlyV1Beta1Served_ReadAtV1Beta1()
    {
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store =>
            {
                SeedSmallCluster(store);
                store.Apply(Strict("a", "old-istio", version: "v1beta1"));
            },
            beforeStart: server => server.InstallCustomResource(PeerAuthentications, "v1beta1"));
        await KubernetesSourceHarness.WaitUntilAsync(
            () => harness.Source.Current.PeerAuthentications.Count == 1,
            () => $"PeerAuthentications: {harness.Source.Current.PeerAuthentications.Count}");
        Assert.Equal($"{PeerAuthenticationObject.Group}/v1beta1", harness.Source.Current.PeerAuthentications[0].ApiVersion);
    }

    [Fact]
    public async Task PeerAuthentications_IstioNotInstalled_SyncsWithoutThem()
    {
        var logger = new ListLogger();
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store => SeedSmallCluster(store),
            configure: o => o with { CustomResourceRecheckInterval = TimeSpan.FromMilliseconds(50) },
            beforeStart: server => server.UninstallCustomResource(PeerAuthentications),
            logger: logger.For<KubernetesClusterSource>());
        await harness.Source.WaitForSyncAsync(CancellationToken.None).WaitAsync(KubernetesSourceHarness.WaitLimit);
        var snapshot = await harness.WaitForConvergenceAsync();
        Assert.Empty(snapshot.PeerAuthentications);
        Assert.NotEmpty(snapshot.Pods);
        var status = harness.StatusOf(PeerAuthentications);
        Assert.False(status.Installed);
        Assert.False(status.Awaited);
        Assert.Single(logger.Lines, l => l.StartsWith("Information: peerauthentications: ", StringComparison.Ordinal));
    }
}
