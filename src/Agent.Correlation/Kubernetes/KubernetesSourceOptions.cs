using Tripline.Correlation.Endpoints;

namespace Tripline.Correlation.Kubernetes;

/// <summary>How the live cluster source reaches the API server and how it rides out faults.</summary>
public sealed record KubernetesSourceOptions
{
    /// <summary>A kubeconfig file (<c>--kubeconfig</c>); null for the in-cluster service account.</summary>
    public string? KubeconfigPath { get; init; }

    /// <summary>The kubeconfig context; null for its current-context.</summary>
    public string? Context { get; init; }

    /// <summary>Objects per list page (<c>limit</c>); pages keep a 50,000-pod list from being one huge response.</summary>
    public int PageSize { get; init; } = 500;

    /// <summary>First wait after a failed list or watch; doubled per consecutive failure.</summary>
    public TimeSpan BackoffInitial { get; init; } = TimeSpan.FromMilliseconds(500);

    public TimeSpan BackoffMax { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Fraction (0..1) by which each backoff is randomly shortened or lengthened, so that agents spread out.</summary>
    public double BackoffJitter { get; init; } = 0.3;

    /// <summary>
    /// A watch that delivers nothing, not even a bookmark, for this long is restarted: a half-open TCP connection
    /// otherwise looks like a quiet cluster forever. The API server sends bookmarks about once a minute.
    /// </summary>
    public TimeSpan SilentWatchTimeout { get; init; } = TimeSpan.FromMinutes(3);

    /// <summary>The server ends each watch after this long (randomised up to twice it), as client-go does.</summary>
    public TimeSpan WatchTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Changes within this window are folded into one snapshot: pod churn must not recompile per event.</summary>
    public TimeSpan CoalesceDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>How long a deleted pod is kept so that its last packets are still attributed to it.</summary>
    public TimeSpan DeletedPodRetention { get; init; } = EndpointIndex.DefaultDeletedGrace;

    /// <summary>Interval of the per-resource progress line in the log; zero turns it off.</summary>
    public TimeSpan StatsLogInterval { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How often a custom resource whose CRD is not installed is asked for again (spread by <see cref="BackoffJitter"/>),
    /// so that installing the CRD later is picked up without a restart.
    /// </summary>
    public TimeSpan CustomResourceRecheckInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Every problem at once, each naming the option, so that the CLI can exit 2 with one message.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (KubeconfigPath is not null && !File.Exists(KubeconfigPath))
        {
            errors.Add($"--kubeconfig: file '{KubeconfigPath}' does not exist");
        }
        if (PageSize is < 1 or > 100_000) errors.Add($"page size: {PageSize} is outside 1..100000");
        if (BackoffInitial <= TimeSpan.Zero) errors.Add("backoff initial: must be positive");
        if (BackoffMax < BackoffInitial) errors.Add("backoff max: must be at least the initial backoff");
        if (BackoffJitter is < 0 or > 1 || double.IsNaN(BackoffJitter)) errors.Add($"backoff jitter: {BackoffJitter} is outside 0..1");
        if (SilentWatchTimeout <= TimeSpan.Zero) errors.Add("silent watch timeout: must be positive");
        if (WatchTimeout < TimeSpan.FromSeconds(1)) errors.Add("watch timeout: must be at least one second");
        if (CoalesceDelay < TimeSpan.Zero) errors.Add("coalesce delay: must not be negative");
        if (DeletedPodRetention < TimeSpan.Zero) errors.Add("deleted pod retention: must not be negative");
        if (StatsLogInterval < TimeSpan.Zero) errors.Add("stats log interval: must not be negative");
        if (CustomResourceRecheckInterval <= TimeSpan.Zero) errors.Add("custom resource recheck interval: must be positive");
        return errors;
    }
}
