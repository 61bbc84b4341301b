using Tripline.Correlation.Cluster;

namespace Tripline.Correlation.Manifests;

/// <summary>Cluster state read once from manifest files: synced as soon as it is loaded.</summary>
public sealed class ManifestClusterSource : IClusterSource
{
    private readonly ManifestLoadResult _result;

    public ManifestClusterSource(ManifestLoadResult result) => _result = result;

    public ClusterSnapshot Current => _result.Snapshot;

    public bool IsSynced => true;

    public IReadOnlyList<ResourceSyncStatus> Status =>
    [
        new("namespaces", true, ObjectsCached: Current.Namespaces.Count),
        new("pods", true, ObjectsCached: Current.Pods.Count),
        new("services", true, ObjectsCached: Current.Services.Count),
        new("endpointslices", true, ObjectsCached: Current.EndpointSlices.Count),
        new("nodes", true, ObjectsCached: Current.Nodes.Count),
        new("networkpolicies", true, ObjectsCached: Current.Policies.Count),
    ];

    public event Action<ClusterSnapshot>? SnapshotChanged
    {
        add { }
        remove { }
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
