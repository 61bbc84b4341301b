namespace Tripline.Correlation.Cluster;

/// <summary>How far one resource kind of a cluster source has come, for /readyz, logs and metrics.</summary>
/// <param name="Optional">
/// A resource the agent does without when it cannot read it: a custom resource it reads when its CRD is installed (the
/// admin policy and Calico kinds), since an API server without it is a normal cluster, not a fault; or ServiceAccounts,
/// which only refine Calico's service account selectors, so that an older ClusterRole without their rule (403) does
/// not keep the agent from being ready.
/// </param>
/// <param name="Installed">
/// Whether the API server serves the resource: false once it answered 404 for every version read (its CRD is not
/// installed), null while nothing but 403 has come back. The last answer stands until another comes.
/// </param>
/// <param name="Forbidden">The last answer was 403: RBAC does not let the agent list or watch the resource.</param>
/// <param name="Failing">
/// The resource's first list has failed <see cref="FailuresBeforeGivingUpWaiting"/> times in a row for another reason (an
/// aggregated API server such as Calico's answering 503, a timeout): retried with backoff, but an optional resource is no
/// longer waited for.
/// </param>
public sealed record ResourceSyncStatus(
    string Resource,
    bool Synced,
    long EventsApplied = 0,
    long Relists = 0,
    long WatchRestarts = 0,
    int ObjectsCached = 0,
    DateTimeOffset? LastEventAt = null,
    string? LastError = null,
    bool Optional = false,
    bool? Installed = true,
    bool Forbidden = false,
    bool Failing = false)
{
    /// <summary>Failed first lists after which an optional resource is not waited for (a few backoff steps, seconds).</summary>
    public const int FailuresBeforeGivingUpWaiting = 3;

    /// <summary>
    /// Whether the source (and so the agent's readiness) still waits for this resource: until its first list, unless
    /// it is optional and the API server has said it is not installed or not allowed. Nothing can be waited for from a
    /// CRD that may never be installed; a 403 is logged and retried, but a missing RBAC rule for an optional resource
    /// must not keep the agent from auditing everything else.
    /// </summary>
    public bool Awaited => !Synced && !(Optional && (Installed == false || Forbidden || Failing));
}

/// <summary>
/// Where cluster state comes from: manifest files (read once) or the Kubernetes API (list and watch).
/// Every change is published as a whole new <see cref="ClusterSnapshot"/>.
/// </summary>
public interface IClusterSource : IAsyncDisposable
{
    /// <summary>The latest snapshot; <see cref="ClusterSnapshot.Empty"/> until the first one is built.</summary>
    ClusterSnapshot Current { get; }

    /// <summary>
    /// True once no resource kind is <see cref="ResourceSyncStatus.Awaited"/>: each has completed its first full list,
    /// or is an optional kind that the API server does not serve or does not let the agent read.
    /// </summary>
    bool IsSynced { get; }

    IReadOnlyList<ResourceSyncStatus> Status { get; }

    /// <summary>Raised on any thread when a new snapshot replaces <see cref="Current"/>.</summary>
    event Action<ClusterSnapshot>? SnapshotChanged;

    /// <summary>Starts loading (and, for a live source, watching). Returns once started, not once synced.</summary>
    Task StartAsync(CancellationToken cancellationToken);
}
