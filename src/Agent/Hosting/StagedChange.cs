using Microsoft.Extensions.Logging;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Manifests;

namespace Tripline.Hosting;

/// <summary>Staged documents (<c>--staged</c>): what <see cref="ClusterChange"/> applies to every snapshot.</summary>
internal sealed class StagedChange(ClusterSnapshot applied, ILogger logger)
{
    public ClusterSnapshot Applied { get; } = applied;

    public ClusterSnapshot AppliedTo(ClusterSnapshot snapshot)
    {
        var problems = new List<string>();
        var result = ClusterChange.Apply(snapshot, Applied, [], problems);
        foreach (string problem in problems) logger.LogWarning("staged: {Problem}", problem);
        return result;
    }
}

/// <summary>
/// Watches the <c>--staged</c> files: reads them at start and again whenever one changes (checked every two seconds,
/// by size and time, as cert-manager's and git-sync's swaps change both), and stages them on the cluster state. A
/// document that does not parse keeps the previous staging and says which file, line and object.
/// </summary>
internal sealed partial class StagedPolicies : IDisposable
{
    internal static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(2);

    private readonly IReadOnlyList<string> _paths;
    private readonly ClusterState _cluster;
    private readonly ILogger _logger;
    private readonly Timer _timer;
    private readonly Lock _gate = new();
    private string _stamp = "";

    public StagedPolicies(IReadOnlyList<string> paths, ClusterState cluster, ILogger logger)
    {
        _paths = paths;
        _cluster = cluster;
        _logger = logger;
        Check();
        _timer = new Timer(_ => Check(), null, CheckInterval, CheckInterval);
    }

    /// <summary>Documents staged (the last good read).</summary>
    public int Documents { get; private set; }

    /// <summary>Reads the files again if any changed; true when the staging was replaced.</summary>
    internal bool Check()
    {
        lock (_gate)
        {
            var errors = new List<ManifestError>();
            var files = ManifestLoader.ExpandPaths(_paths, errors);
            string stamp = string.Join('|', files.Select(f => new FileInfo(f)).Select(f => $"{f.FullName}:{f.Length}:{f.LastWriteTimeUtc.Ticks}"));
            if (stamp == _stamp && errors.Count == 0) return false;
            _stamp = stamp;
            var loaded = ManifestLoader.Load(_paths, declaredOnly: true);
            if (loaded.Errors.Count > 0)
            {
                foreach (var error in loaded.Errors) LogStagedError(_logger, error.ToString());
                return false;
            }
            Documents = loaded.Snapshot.Policies.Count + loaded.Snapshot.Namespaces.Count + loaded.Snapshot.Pods.Count;
            _cluster.SetStaged(new StagedChange(loaded.Snapshot, _logger));
            LogStaged(_logger, loaded.FilesRead, loaded.Snapshot.Policies.Count, string.Join(", ", _paths));
            return true;
        }
    }

    public void Dispose() => _timer.Dispose();

    [LoggerMessage(EventId = 40, Level = LogLevel.Information, Message = "staged: {Files} file(s), {Policies} policies from {Paths}; every flow is judged with them applied as well")]
    private static partial void LogStaged(ILogger logger, int files, int policies, string paths);

    [LoggerMessage(EventId = 41, Level = LogLevel.Error, Message = "staged: {Error}; the previous staging stays")]
    private static partial void LogStagedError(ILogger logger, string error);
}
