using Tripline.Correlation.Cluster;

namespace Tripline.Hosting;

/// <summary>
/// The current <see cref="ClusterModel"/>, swapped whole when the cluster source publishes a snapshot. Readers
/// take the reference once per flow event; the rebuild runs on the source's thread, never on the packet path.
/// </summary>
internal sealed class ClusterState : IDisposable
{
    private readonly IClusterSource _source;
    private ClusterModel _model;
    private StagedChange? _staged;

    private readonly ManualResetEventSlim _synced = new(false);

    public ClusterState(IClusterSource source)
    {
        _source = source;
        _model = ClusterModel.Empty;
        // Subscribed before the first read, so that a snapshot landing in between is not missed.
        source.SnapshotChanged += OnSnapshot;
        if (source.IsSynced || source.Current.Version > 0) OnSnapshot(source.Current);
    }

    /// <summary>
    /// Blocks until a synced model is published (a finite replay judges nothing against a partial cluster); false
    /// if cancelled first.
    /// </summary>
    public bool WaitUntilSynced(CancellationToken cancellationToken)
    {
        try
        {
            _synced.Wait(cancellationToken);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public ClusterModel Current => Volatile.Read(ref _model);

    public IClusterSource Source => _source;

    public event Action<ClusterModel>? ModelChanged;

    /// <summary>
    /// Judges every flow against the cluster with this change applied as well (<c>--staged</c>); null stops it. The
    /// model is rebuilt from the current snapshot at once.
    /// </summary>
    public void SetStaged(StagedChange? staged)
    {
        Volatile.Write(ref _staged, staged);
        OnSnapshot(Volatile.Read(ref _model).Snapshot, restage: true);
    }

    private void OnSnapshot(ClusterSnapshot snapshot) => OnSnapshot(snapshot, restage: false);

    private void OnSnapshot(ClusterSnapshot snapshot, bool restage)
    {
        var previous = Volatile.Read(ref _model);
        var staged = Volatile.Read(ref _staged);
        var model = ClusterModel.Build(snapshot, _source.IsSynced, previous: previous, staged: staged?.AppliedTo(snapshot));
        if (restage && model.Snapshot.Version == previous.Snapshot.Version)
        {
            // The same snapshot, staged anew: replace the model whatever its version says.
            Interlocked.CompareExchange(ref _model, model, previous);
            ModelChanged?.Invoke(model);
            return;
        }
        // Snapshots may race in from several threads: never replace a newer model with an older one.
        while (model.Snapshot.Version >= previous.Snapshot.Version)
        {
            var seen = Interlocked.CompareExchange(ref _model, model, previous);
            if (ReferenceEquals(seen, previous))
            {
                if (model.IsSynced) _synced.Set();
                ModelChanged?.Invoke(model);
                return;
            }
            previous = seen;
        }
    }

    // The event is not disposed: a late snapshot may still set it, and it holds no kernel handle unless waited on by handle.
    public void Dispose() => _source.SnapshotChanged -= OnSnapshot;
}
