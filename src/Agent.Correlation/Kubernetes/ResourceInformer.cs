using System.Diagnostics;
using System.Net;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Tripline.Correlation.Cluster;

namespace Tripline.Correlation.Kubernetes;

/// <summary>One page of a list: its items, the token for the next page, and the list's resourceVersion.</summary>
internal readonly record struct ListPage<TObject>(IList<TObject> Items, string? Continue, string? ResourceVersion);

/// <summary>Lists one page of a resource (KubernetesClient's typed list call).</summary>
internal delegate Task<ListPage<TObject>> ListPageAsync<TObject>(string? continueToken, int limit, CancellationToken cancellationToken);

/// <summary>Watches a resource from a resourceVersion (KubernetesClient's typed watch call).</summary>
internal delegate IAsyncEnumerable<(WatchEventType Type, TObject Object)> WatchFrom<TObject>(
    string resourceVersion, int timeoutSeconds, Action<Exception> onError, CancellationToken cancellationToken);

/// <summary>The resource-independent face of an informer, for the source's status and sync bookkeeping.</summary>
internal interface IResourceInformer
{
    string Resource { get; }
    string ApiGroup { get; }
    string RuleResource { get; }
    bool Synced { get; }
    ResourceSyncStatus Status { get; }

    /// <summary>Raised after the cache changed (on the informer's task, outside its lock).</summary>
    event Action? Changed;

    /// <summary>Raised once, when the source stops waiting for this resource (<see cref="ResourceSyncStatus.Awaited"/>).</summary>
    event Action? Settled;

    Task RunAsync(CancellationToken cancellationToken);
}

/// <summary>
/// Keeps one resource kind in memory: a paginated list, then a watch from the list's resourceVersion with bookmarks.
/// An expired version (410 Gone), a malformed event or a Status error leads to a fresh list that is reconciled
/// against the cache, so that deletions missed while disconnected are applied; a dropped or failed connection is
/// retried with exponential backoff and jitter from the last resourceVersion; a silent watch is restarted.
/// A 403 is logged once per streak, naming the RBAC rule, and retried with backoff. An optional custom resource
/// (<see cref="OptionalKind"/>) whose CRD is not installed is held empty and asked for again every
/// <see cref="KubernetesSourceOptions.CustomResourceRecheckInterval"/>; an optional resource (<see cref="Optional"/>)
/// that is forbidden is not waited for.
/// One task runs the loop, so list and watch never overlap; readers copy the cache under a lock.
/// </summary>
internal sealed class ResourceInformer<TObject, TItem> : IResourceInformer
    where TObject : class, IKubernetesObject<V1ObjectMeta>
    where TItem : class
{
    private readonly object _gate = new();
    private readonly ListPageAsync<TObject> _list;
    private readonly WatchFrom<TObject> _watch;
    private readonly Func<TObject, TItem> _convert;
    private readonly KubernetesSourceOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Random _random = new();
    private Dictionary<string, Entry> _items = new(StringComparer.Ordinal);
    private string? _resourceVersion;
    private volatile bool _synced;
    private long _eventsApplied;
    private long _relists;
    private long _watchRestarts;
    private long _lastEventTicks;
    private long _lastContactTicks;
    private volatile string? _lastError;
    private volatile bool _forbidden;

    /// <summary>First lists failed in a row (neither 403 nor 404); reset by any answer with the resource.</summary>
    private int _listFailures;
    private int _installed = Served;
    private int _settled;

    public ResourceInformer(
        string resource,
        ListPageAsync<TObject> list,
        WatchFrom<TObject> watch,
        Func<TObject, TItem> convert,
        KubernetesSourceOptions options,
        TimeProvider time,
        ILogger logger)
    {
        Resource = resource;
        _list = list;
        _watch = watch;
        _convert = convert;
        _options = options;
        _time = time;
        _logger = logger;
    }

    /// <summary>How logs, status and metrics name the resource: its plural, or <c>plural.group</c> where two groups share it.</summary>
    public string Resource { get; }

    /// <summary>The resource's API group ("" for the core group), for the RBAC rule that a 403 names.</summary>
    public string ApiGroup { get; init; } = "";

    /// <summary>
    /// The plural that the API path and the RBAC rule name. <see cref="Resource"/> but for a resource named with its group
    /// (Calico's <c>networkpolicies.projectcalico.org</c>, which would otherwise be taken for the Kubernetes kind).
    /// </summary>
    public string RuleResource
    {
        get => field ?? Resource;
        init;
    }

    /// <summary>
    /// The kind of a custom resource that the agent reads when its CRD is installed and does without when it is not;
    /// null for a resource it cannot do without. The list names a missing CRD by throwing
    /// <see cref="ResourceNotInstalledException"/>.
    /// </summary>
    public string? OptionalKind
    {
        get;
        init
        {
            field = value;
            // Nothing is known of a custom resource until the server answers; a built-in one is always served.
            _installed = value is null ? Served : Unknown;
        }
    }

    /// <summary>
    /// Whether the source does without the resource when it cannot read it: an optional custom resource
    /// (<see cref="OptionalKind"/>), or a built-in one that only refines verdicts, which is waited for until it is
    /// listed or forbidden, never longer (<see cref="ResourceSyncStatus.Awaited"/>).
    /// </summary>
    public bool Optional
    {
        get => OptionalKind is not null || field;
        init;
    }

    /// <summary>
    /// What the 403 line says is missed until the rule is granted. Null for the defaults: an optional kind's objects are
    /// not judged; without any other resource the agent stays not ready.
    /// </summary>
    public string? WhenForbidden { get; init; }

    /// <summary>
    /// What the line about an optional custom resource found not served (404 for every version) says follows, and the
    /// line when it is served again; null for the admin policy kinds' wording (the CRD is not installed, its kinds are
    /// not judged until it is). A resource that another group may serve in its place says where its objects come from.
    /// </summary>
    public (string NotServed, string Served)? ServedNotes { get; init; }

    public bool Synced => _synced;

    public event Action? Changed;

    public event Action? Settled;

    /// <summary>
    /// Called under the cache lock when an object leaves the cache: deleted, missed while disconnected (found gone by a
    /// relist), or replaced by a new object of the same name (a new uid). The time is when it stopped existing, as
    /// near as the informer knows.
    /// </summary>
    public Action<TItem, DateTimeOffset>? Removed { get; init; }

    public ResourceSyncStatus Status
    {
        get
        {
            int count;
            lock (_gate) count = _items.Count;
            long last = Interlocked.Read(ref _lastEventTicks);
            return new ResourceSyncStatus(
                Resource,
                _synced,
                Interlocked.Read(ref _eventsApplied),
                Interlocked.Read(ref _relists),
                Interlocked.Read(ref _watchRestarts),
                count,
                last == 0 ? null : new DateTimeOffset(last, TimeSpan.Zero),
                _lastError,
                Optional,
                Volatile.Read(ref _installed) switch { Served => true, NotServed => false, _ => null },
                _forbidden,
                Volatile.Read(ref _listFailures) >= ResourceSyncStatus.FailuresBeforeGivingUpWaiting);
        }
    }

    public List<TItem> CopyItems()
    {
        lock (_gate)
        {
            var copy = new List<TItem>(_items.Count);
            foreach (var entry in _items.Values) copy.Add(entry.Item);
            return copy;
        }
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        int failures = 0;
        string relistReason = "initial";
        bool needList = true;
        while (!cancellationToken.IsCancellationRequested)
        {
            string operation = needList ? "list" : "watch";
            try
            {
                if (needList)
                {
                    await ListAndReconcileAsync(relistReason, cancellationToken).ConfigureAwait(false);
                    needList = false;
                    failures = 0;
                }

                operation = "watch";
                var (end, events) = await WatchOnceAsync(cancellationToken).ConfigureAwait(false);
                switch (end)
                {
                    case WatchEnd.Expired:
                        KubernetesSourceLog.Expired(_logger, Resource, _resourceVersion, _expiredWhy);
                        (needList, relistReason) = (true, _expiredWhy);
                        break;
                    case WatchEnd.BadEvent:
                        (needList, relistReason) = (true, "bad watch event");
                        failures++;
                        await DelayAsync(failures, cancellationToken).ConfigureAwait(false);
                        break;
                    case WatchEnd.Silent:
                        Interlocked.Increment(ref _watchRestarts);
                        KubernetesSourceLog.WatchSilent(_logger, Resource, _options.SilentWatchTimeout.TotalSeconds, _resourceVersion);
                        break;
                    default:
                        Interlocked.Increment(ref _watchRestarts);
                        KubernetesSourceLog.WatchClosed(_logger, Resource, events, _resourceVersion);
                        // A server that closes every watch at once must not be hammered.
                        if (events == 0) await DelayAsync(++failures, cancellationToken).ConfigureAwait(false);
                        else failures = 0;
                        break;
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (HttpOperationException e) when (!needList && IsTooLargeResourceVersion(e.Response?.StatusCode, e.Response?.Content))
            {
                // The server's history runs behind the version held here: a control plane restored from a backup, or a
                // new etcd. Resuming would wait for versions that may never mean the same objects again; relist (as
                // client-go's reflector does for a watch that cannot resume).
                KubernetesSourceLog.Expired(_logger, Resource, _resourceVersion, TooLargeWhy);
                (needList, relistReason) = (true, TooLargeWhy);
                _lastError = Describe(e);
            }
            catch (HttpOperationException e) when (e.Response?.StatusCode == HttpStatusCode.Gone)
            {
                // A continue token that expired between pages: the list starts over.
                (needList, relistReason) = (true, "continue token expired");
                _lastError = e.Message;
            }
            catch (ResourceNotInstalledException) when (OptionalKind is not null && !cancellationToken.IsCancellationRequested)
            {
                failures = 0;
                OnNotInstalled();
                (needList, relistReason) = (true, "CRD installed");
                if (!await TryDelayAsync(RecheckDelay(), cancellationToken).ConfigureAwait(false)) break;
            }
            catch (HttpOperationException e) when (e.Response?.StatusCode == HttpStatusCode.Forbidden && !cancellationToken.IsCancellationRequested)
            {
                failures++;
                _lastError = Describe(e);
                if (!needList) Interlocked.Increment(ref _watchRestarts);
                OnForbidden(operation);
                if (!await TryDelayAsync(NextDelay(failures), cancellationToken).ConfigureAwait(false)) break;
            }
            catch (HttpOperationException e) when (e.Response?.StatusCode == HttpStatusCode.NotFound && !cancellationToken.IsCancellationRequested)
            {
                // The version being read is no longer served: a CRD upgraded or removed. Only a list, which asks every
                // version, can tell which (a watch would ask the same missing version again and again).
                failures++;
                _lastError = Describe(e);
                if (!needList) Interlocked.Increment(ref _watchRestarts);
                (needList, relistReason) = (true, "version no longer served (404)");
                TimeSpan delay = NextDelay(failures);
                KubernetesSourceLog.Failed(_logger, Resource, operation, failures, (long)delay.TotalMilliseconds, _lastError);
                if (!await TryDelayAsync(delay, cancellationToken).ConfigureAwait(false)) break;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                failures++;
                _lastError = Describe(e);
                if (needList && !_synced && Interlocked.Increment(ref _listFailures) >= ResourceSyncStatus.FailuresBeforeGivingUpWaiting) TrySettle();
                if (!needList) Interlocked.Increment(ref _watchRestarts);
                TimeSpan delay = NextDelay(failures);
                KubernetesSourceLog.Failed(_logger, Resource, operation, failures, (long)delay.TotalMilliseconds, _lastError);
                if (!await TryDelayAsync(delay, cancellationToken).ConfigureAwait(false)) break;
            }
            catch (Exception) when (cancellationToken.IsCancellationRequested)
            {
                // Stopping: whatever the last answer was (a 404 that arrived with the cancellation, say), it no longer matters.
                break;
            }
        }
    }

    /// <summary>
    /// Every version answered 404. Whatever was cached went with the CRD (deleting a CRD deletes its objects), and
    /// nothing is synced until it is back; the absence is logged once, when it begins, since on most clusters it lasts
    /// for good.
    /// </summary>
    private void OnNotInstalled()
    {
        _forbidden = false;
        _lastError = null;
        bool wasCached;
        bool wasSynced;
        lock (_gate)
        {
            wasCached = _items.Count > 0;
            wasSynced = _synced;
            _items = new Dictionary<string, Entry>(StringComparer.Ordinal);
            _resourceVersion = null;
            _synced = false;
        }
        if (Interlocked.Exchange(ref _installed, NotServed) != NotServed)
        {
            if (ServedNotes is { } notes) KubernetesSourceLog.NotServed(_logger, Resource, ApiGroup, notes.NotServed);
            else KubernetesSourceLog.NotInstalled(_logger, Resource, ApiGroup, KubernetesSourceLog.PluralOf(OptionalKind!));
        }
        TrySettle();
        // No longer synced is a change even without objects: the source may read the kind from another group now.
        if (wasCached || wasSynced) Changed?.Invoke();
    }

    /// <summary>Logged once per streak of 403s, with the rule that is missing; a retry every few seconds would flood the log.</summary>
    private void OnForbidden(string operation)
    {
        bool first = !_forbidden;
        _forbidden = true;
        if (first)
        {
            string consequence = WhenForbidden is { } missed ? $"{missed} until it is granted"
                : OptionalKind is { } kind ? $"{KubernetesSourceLog.PluralOf(kind)} are not judged until it is granted"
                : "the agent stays not ready until it is granted";
            KubernetesSourceLog.Forbidden(_logger, Resource, operation, ApiGroup, RuleResource, consequence, _lastError ?? "");
        }
        TrySettle();
    }

    /// <summary>The server answered with the resource (a list, or a watch's first event): it is served and allowed.</summary>
    private void OnServed()
    {
        _forbidden = false;
        Volatile.Write(ref _listFailures, 0);
        if (Interlocked.Exchange(ref _installed, Served) == NotServed)
        {
            if (ServedNotes is { } notes) KubernetesSourceLog.ServedNow(_logger, Resource, ApiGroup, notes.Served);
            else KubernetesSourceLog.Installed(_logger, Resource, ApiGroup, KubernetesSourceLog.PluralOf(OptionalKind ?? Resource));
        }
    }

    /// <summary>Raises <see cref="Settled"/> the first time the source need not wait for this resource any longer.</summary>
    private void TrySettle()
    {
        if (!Status.Awaited && Interlocked.Exchange(ref _settled, 1) == 0) Settled?.Invoke();
    }

    /// <summary>The recheck interval, spread like a backoff so that a DaemonSet's agents do not ask in step.</summary>
    private TimeSpan RecheckDelay()
    {
        double spread = 1 + _options.BackoffJitter * (_random.NextDouble() * 2 - 1);
        return _options.CustomResourceRecheckInterval * spread;
    }

    private async Task<bool> TryDelayAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private async Task ListAndReconcileAsync(string reason, CancellationToken cancellationToken)
    {
        long started = Stopwatch.GetTimestamp();
        var fresh = new Dictionary<string, Entry>(StringComparer.Ordinal);
        string? continueToken = null;
        string? resourceVersion = null;
        do
        {
            var page = await _list(continueToken, _options.PageSize, cancellationToken).ConfigureAwait(false);
            foreach (var obj in page.Items)
            {
                if (TryConvert(obj, out string key, out var entry)) fresh[key] = entry;
            }
            continueToken = page.Continue;
            resourceVersion = page.ResourceVersion;
        }
        while (!string.IsNullOrEmpty(continueToken));

        var now = _time.GetUtcNow();
        // Objects that vanished while no watch was open were deleted at some point after the last word from the
        // server; that moment is the best bound, since a later time would steal a reused IP's packets from its new pod.
        long contact = Interlocked.Read(ref _lastContactTicks);
        var goneAt = contact == 0 ? now : new DateTimeOffset(contact, TimeSpan.Zero);
        int deleted = 0;
        lock (_gate)
        {
            foreach (var (key, old) in _items)
            {
                if (!fresh.TryGetValue(key, out var current) || !string.Equals(current.Uid, old.Uid, StringComparison.Ordinal))
                {
                    deleted++;
                    Removed?.Invoke(old.Item, goneAt);
                }
            }
            // Counted before the swap: whoever sees the relisted state also sees the relist.
            if (_synced) Interlocked.Increment(ref _relists);
            _items = fresh;
            _resourceVersion = resourceVersion;
        }
        Interlocked.Exchange(ref _lastContactTicks, now.UtcTicks);
        _lastError = null;
        OnServed();

        if (!_synced)
        {
            _synced = true;
            KubernetesSourceLog.FirstSync(_logger, Resource, fresh.Count, resourceVersion, (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            TrySettle();
        }
        else
        {
            KubernetesSourceLog.Relisted(_logger, Resource, reason, fresh.Count, deleted);
        }
        Changed?.Invoke();
    }

    private async Task<(WatchEnd End, int Events)> WatchOnceAsync(CancellationToken cancellationToken)
    {
        using var watchCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        watchCts.CancelAfter(_options.SilentWatchTimeout);
        WatchEnd? forced = null;
        int events = 0;

        // The client reports a Status object (410 Gone above all) and an undecodable line here, then reads on; either
        // means the cache can no longer be trusted to follow the stream, so the watch is ended and a relist follows.
        void OnError(Exception e)
        {
            if (e is KubernetesException { Status.Code: (int)HttpStatusCode.Gone })
            {
                forced = WatchEnd.Expired;
                _expiredWhy = "resourceVersion expired (410 Gone)";
            }
            else if (e is KubernetesException { Status: { } status } && IsTooLargeResourceVersion(status))
            {
                forced = WatchEnd.Expired;
                _expiredWhy = TooLargeWhy;
            }
            else
            {
                forced = WatchEnd.BadEvent;
                _lastError = Describe(e);
                KubernetesSourceLog.BadEvent(_logger, Resource, _lastError);
            }
            try
            {
                watchCts.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The watch already ended.
            }
        }

        int timeoutSeconds = (int)(_options.WatchTimeout.TotalSeconds * (1 + _random.NextDouble()));
        string from = _resourceVersion ?? "";
        try
        {
            await foreach (var (type, obj) in _watch(from, timeoutSeconds, OnError, watchCts.Token).WithCancellation(watchCts.Token).ConfigureAwait(false))
            {
                watchCts.CancelAfter(_options.SilentWatchTimeout);
                if (events++ == 0)
                {
                    _lastError = null;
                    OnServed();
                }
                var now = _time.GetUtcNow();
                Interlocked.Exchange(ref _lastContactTicks, now.UtcTicks);
                if (type == WatchEventType.Bookmark)
                {
                    if (obj?.Metadata?.ResourceVersion is { Length: > 0 } bookmark) _resourceVersion = bookmark;
                    continue;
                }
                if (obj is null || type == WatchEventType.Error)
                {
                    OnError(new InvalidDataException($"watch event {type} without an object"));
                    break;
                }
                Apply(type, obj, now);
                Interlocked.Increment(ref _eventsApplied);
                Interlocked.Exchange(ref _lastEventTicks, now.UtcTicks);
                if (obj.Metadata?.ResourceVersion is { Length: > 0 } version) _resourceVersion = version;
                Changed?.Invoke();
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return (forced ?? WatchEnd.Silent, events);
        }
        catch (System.Text.Json.JsonException e)
        {
            // Some client versions throw an undecodable line instead of reporting it: the same bad event.
            OnError(e);
        }
        return (forced ?? WatchEnd.Closed, events);
    }

    private void Apply(WatchEventType type, TObject obj, DateTimeOffset now)
    {
        if (type == WatchEventType.Deleted)
        {
            string key = KeyOf(obj.Metadata);
            lock (_gate)
            {
                if (_items.Remove(key, out var old)) Removed?.Invoke(old.Item, now);
            }
            return;
        }
        if (!TryConvert(obj, out string upsertKey, out var entry)) return;
        lock (_gate)
        {
            if (_items.TryGetValue(upsertKey, out var old) && !string.Equals(old.Uid, entry.Uid, StringComparison.Ordinal))
            {
                // Same name, new object (a StatefulSet pod recreated): the old one is gone.
                Removed?.Invoke(old.Item, now);
            }
            _items[upsertKey] = entry;
        }
    }

    private bool TryConvert(TObject obj, out string key, out Entry entry)
    {
        key = KeyOf(obj.Metadata);
        try
        {
            entry = new Entry(obj.Metadata?.Uid, _convert(obj));
            return true;
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or ArgumentException)
        {
            KubernetesSourceLog.SkippedObject(_logger, Resource, key, e.Message);
            entry = default;
            return false;
        }
    }

    private static string KeyOf(V1ObjectMeta? meta)
    {
        string name = meta?.Name ?? "";
        return string.IsNullOrEmpty(meta?.NamespaceProperty) ? name : $"{meta.NamespaceProperty}/{name}";
    }

    private TimeSpan NextDelay(int failures) =>
        Backoff.Delay(failures, _options.BackoffInitial, _options.BackoffMax, _options.BackoffJitter, _random);

    private Task DelayAsync(int failures, CancellationToken cancellationToken) =>
        Task.Delay(NextDelay(failures), _time, cancellationToken);

    private const string TooLargeWhy = "resourceVersion ahead of the server's history (504 ResourceVersionTooLarge)";
    private string _expiredWhy = "resourceVersion expired (410 Gone)";

    /// <summary>
    /// The API server's answer to a resourceVersion newer than its own history: 504 (reason Timeout) with the cause
    /// ResourceVersionTooLarge, as an HTTP response or a watch's ERROR event (client-go's IsTooLargeResourceVersion).
    /// </summary>
    internal static bool IsTooLargeResourceVersion(HttpStatusCode? code, string? body)
    {
        if (code != HttpStatusCode.GatewayTimeout || string.IsNullOrEmpty(body)) return false;
        try
        {
            var status = KubernetesJson.Deserialize<V1Status>(body);
            return status is not null && IsTooLargeResourceVersion(status);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    internal static bool IsTooLargeResourceVersion(V1Status status) =>
        status.Code == (int)HttpStatusCode.GatewayTimeout
        && ((status.Details?.Causes?.Any(c => c.Reason == "ResourceVersionTooLarge") ?? false)
            || (status.Message?.Contains("Too large resource version", StringComparison.OrdinalIgnoreCase) ?? false));

    private static string Describe(Exception e) => e switch
    {
        KubernetesException { Status: { } status } => $"{status.Code} {status.Reason}: {status.Message}",
        HttpOperationException { Response: { } response } => $"HTTP {(int)response.StatusCode}: {e.Message}",
        { InnerException: { } inner } => $"{e.GetType().Name}: {e.Message} ({inner.Message})",
        _ => $"{e.GetType().Name}: {e.Message}",
    };

    private const int Unknown = -1;
    private const int NotServed = 0;
    private const int Served = 1;

    private readonly record struct Entry(string? Uid, TItem Item);

    private enum WatchEnd
    {
        Closed,
        Silent,
        Expired,
        BadEvent,
    }
}
