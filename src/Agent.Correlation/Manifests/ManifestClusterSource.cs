using Tripline.Correlation.Cluster;

namespace Tripline.Correlation.Manifests;

/// <summary>
/// Cluster state from manifest files: one snapshot, synced once loaded. Loading may run in the background (a replay
/// reads packets meanwhile); until it completes the source is empty and not synced, then it raises
/// <see cref="SnapshotChanged"/> once.
/// </summary>
public sealed class ManifestClusterSource : IClusterSource
{
    private readonly Task<ManifestLoadResult> _loading;
    private volatile ManifestLoadResult? _result;
    private volatile bool _synced;
    private Action<ClusterSnapshot>? _changed;

    public ManifestClusterSource(ManifestLoadResult result)
    {
        _result = result;
        _synced = true;
        _loading = Task.FromResult(result);
    }

    /// <summary>A source that becomes synced when <paramref name="loading"/> completes (or fails: then empty).</summary>
    public ManifestClusterSource(Task<ManifestLoadResult> loading)
    {
        _loading = loading;
        loading.ContinueWith(static (task, state) => ((ManifestClusterSource)state!).Loaded(task), this, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Starts loading <paramref name="paths"/> on the thread pool and returns the source at once.</summary>
    public static ManifestClusterSource StartLoading(IReadOnlyList<string> paths) => new(Task.Run(() => ManifestLoader.Load(paths)));

    /// <summary>The load, for its errors; faulted if loading failed as a whole (a bad document is an error in the result).</summary>
    public Task<ManifestLoadResult> Loading => _loading;

    public ClusterSnapshot Current => _result?.Snapshot ?? ClusterSnapshot.Empty;

    public bool IsSynced => _synced;

    public IReadOnlyList<ResourceSyncStatus> Status =>
    [
        new("namespaces", IsSynced, ObjectsCached: Current.Namespaces.Count),
        new("pods", IsSynced, ObjectsCached: Current.Pods.Count),
        new("services", IsSynced, ObjectsCached: Current.Services.Count),
        new("endpointslices", IsSynced, ObjectsCached: Current.EndpointSlices.Count),
        new("nodes", IsSynced, ObjectsCached: Current.Nodes.Count),
        new("networkpolicies", IsSynced, ObjectsCached: Current.Policies.Count),
    ];

    public event Action<ClusterSnapshot>? SnapshotChanged
    {
        add
        {
            lock (_loading) _changed += value;
        }
        remove
        {
            lock (_loading) _changed -= value;
        }
    }

    private void Loaded(Task<ManifestLoadResult> task)
    {
        if (task.IsCompletedSuccessfully) _result = task.Result;
        _synced = true;
        Action<ClusterSnapshot>? changed;
        lock (_loading) changed = _changed;
        // A failed load leaves the source empty but synced: nothing more will come, and waiting would never end.
        changed?.Invoke(Current);
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
