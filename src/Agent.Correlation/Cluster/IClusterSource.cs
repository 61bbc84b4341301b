namespace Tripline.Correlation.Cluster;

/// <summary>How far one resource kind of a cluster source has come, for /readyz, logs and metrics.</summary>
public sealed record ResourceSyncStatus(
    string Resource,
    bool Synced,
    long EventsApplied = 0,
    long Relists = 0,
    long WatchRestarts = 0,
    int ObjectsCached = 0,
    DateTimeOffset? LastEventAt = null,
    string? LastError = null);

/// <summary>
/// Where cluster state comes from: manifest files (read once) or the Kubernetes API (list and watch).
/// Every change is published as a whole new <see cref="ClusterSnapshot"/>.
/// </summary>
public interface IClusterSource : IAsyncDisposable
{
    /// <summary>The latest snapshot; <see cref="ClusterSnapshot.Empty"/> until the first one is built.</summary>
    ClusterSnapshot Current { get; }

    /// <summary>True once every resource kind has completed its first full list.</summary>
    bool IsSynced { get; }

    IReadOnlyList<ResourceSyncStatus> Status { get; }

    /// <summary>Raised on any thread when a new snapshot replaces <see cref="Current"/>.</summary>
    event Action<ClusterSnapshot>? SnapshotChanged;

    /// <summary>Starts loading (and, for a live source, watching). Returns once started, not once synced.</summary>
    Task StartAsync(CancellationToken cancellationToken);
}
