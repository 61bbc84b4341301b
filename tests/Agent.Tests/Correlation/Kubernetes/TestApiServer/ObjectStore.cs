using System.Globalization;
using System.Threading.Channels;
using k8s;
using k8s.Models;

namespace Tripline.Tests.Correlation.Kubernetes;

/// <summary>
/// The test API server's state: objects per resource, one global resourceVersion counter (as etcd has), a bounded
/// event history per resource that watches replay from, and the open watches that new events fan out to.
/// Objects are serialised once when written; the store takes ownership of the objects it is given.
/// </summary>
public sealed class ObjectStore
{
    private readonly object _gate = new();
    private readonly Dictionary<string, ResourceState> _resources;
    private readonly TimeProvider _time;
    private long _revision;

    public ObjectStore(TimeProvider time, long firstRevision = 1000)
    {
        _time = time;
        _revision = firstRevision;
        _resources = ApiResource.All.ToDictionary(r => r.Name, r => new ResourceState(r));
    }

    /// <summary>Events kept per resource; a watch from before the oldest kept one gets 410 Gone.</summary>
    public int HistoryLimit { get; set; } = 200_000;

    /// <summary>While set, events are recorded but not delivered to open watches (events lost on the wire).</summary>
    public bool SuppressDelivery { get; set; }

    public long Revision
    {
        get
        {
            lock (_gate) return _revision;
        }
    }

    /// <summary>
    /// Creates or replaces an object; fills uid, creationTimestamp and resourceVersion as the server would. A custom
    /// resource's object keeps the version of its group it names (it is served at whichever version is asked for).
    /// </summary>
    public long Apply<T>(T obj) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var resource = ApiResource.Of(obj);
        var meta = obj.Metadata ?? throw new ArgumentException("metadata is required", nameof(obj));
        if (resource.Namespaced && string.IsNullOrEmpty(meta.NamespaceProperty)) meta.NamespaceProperty = "default";
        if (!resource.IsCustom || !resource.Versions.Any(v => resource.ApiVersionAt(v) == obj.ApiVersion)) obj.ApiVersion = resource.ApiVersion;
        obj.Kind = resource.Kind;
        string key = KeyOf(resource, meta);
        lock (_gate)
        {
            var state = _resources[resource.Name];
            bool exists = state.Objects.TryGetValue(key, out var previous);
            if (exists && string.IsNullOrEmpty(meta.Uid)) meta.Uid = previous!.Object.Metadata.Uid;
            if (exists && meta.CreationTimestamp is null) meta.CreationTimestamp = previous!.Object.Metadata.CreationTimestamp;
            if (string.IsNullOrEmpty(meta.Uid)) meta.Uid = Guid.NewGuid().ToString();
            meta.CreationTimestamp ??= _time.GetUtcNow().UtcDateTime;
            long revision = ++_revision;
            meta.ResourceVersion = revision.ToString(CultureInfo.InvariantCulture);
            string json = KubernetesJson.Serialize(obj);
            state.Objects[key] = new StoredObject(obj, json, revision);
            Record(state, revision, exists ? "MODIFIED" : "ADDED", json);
            return revision;
        }
    }

    public bool Delete<T>(string? ns, string name) where T : class, IKubernetesObject<V1ObjectMeta> => Delete(ApiResource.For(typeof(T)), ns, name);

    public bool Delete(ApiResource resource, string? ns, string name)
    {
        string key = resource.Namespaced ? $"{ns ?? "default"}/{name}" : name;
        lock (_gate)
        {
            var state = _resources[resource.Name];
            if (!state.Objects.Remove(key, out var stored)) return false;
            long revision = ++_revision;
            // The DELETED event carries the last state, stamped with the deletion's resourceVersion.
            var obj = stored.Object;
            obj.Metadata.ResourceVersion = revision.ToString(CultureInfo.InvariantCulture);
            obj.Metadata.DeletionTimestamp ??= _time.GetUtcNow().UtcDateTime;
            Record(state, revision, "DELETED", KubernetesJson.Serialize(obj));
            return true;
        }
    }

    public IReadOnlyList<T> Objects<T>() where T : class, IKubernetesObject<V1ObjectMeta> => Objects<T>(ApiResource.For(typeof(T)));

    public IReadOnlyList<T> Objects<T>(ApiResource resource) where T : class, IKubernetesObject<V1ObjectMeta>
    {
        lock (_gate) return [.. _resources[resource.Name].Objects.Values.Select(o => (T)o.Object)];
    }

    public int Count(ApiResource resource)
    {
        lock (_gate) return _resources[resource.Name].Objects.Count;
    }

    /// <summary>Drops every event so far: any watch from an older resourceVersion now gets 410 Gone.</summary>
    public void Compact()
    {
        lock (_gate)
        {
            foreach (var state in _resources.Values)
            {
                state.History.Clear();
                state.CompactedThrough = _revision;
            }
        }
    }

    /// <summary>A new history, as after an etcd restore: resourceVersions start again from another number.</summary>
    public void ResetHistory(long newRevision)
    {
        lock (_gate)
        {
            _revision = newRevision;
            foreach (var state in _resources.Values)
            {
                state.History.Clear();
                state.CompactedThrough = newRevision;
            }
        }
    }

    /// <summary>A consistent copy for a list: the objects in key order and the revision they are at.</summary>
    internal (string[] Items, long Revision) ListSnapshot(ApiResource resource)
    {
        lock (_gate)
        {
            var state = _resources[resource.Name];
            return ([.. state.Objects.Values.Select(o => o.Json)], _revision);
        }
    }

    /// <summary>
    /// Opens a watch from <paramref name="resourceVersion"/>: the events after it (or ADDED for every object when it
    /// is empty or "0"), then every new event. Null with <paramref name="expired"/> set when the version is no longer
    /// (or not yet) in the history.
    /// </summary>
    internal WatchSubscription? Subscribe(ApiResource resource, string? resourceVersion, out string? expired, out bool tooLarge)
    {
        lock (_gate)
        {
            var state = _resources[resource.Name];
            var subscription = new WatchSubscription(state);
            expired = null;
            tooLarge = false;
            if (string.IsNullOrEmpty(resourceVersion) || resourceVersion == "0")
            {
                foreach (var stored in state.Objects.Values) subscription.Lines.Writer.TryWrite(EventLine("ADDED", stored.Json));
            }
            else if (long.TryParse(resourceVersion, NumberStyles.None, CultureInfo.InvariantCulture, out long ahead) && ahead > _revision)
            {
                // Newer than this server's history (a restore, a new etcd): the real server answers 504 Too large.
                expired = $"Too large resource version: {resourceVersion}, current: {_revision}";
                tooLarge = true;
                return null;
            }
            else if (!long.TryParse(resourceVersion, NumberStyles.None, CultureInfo.InvariantCulture, out long from)
                || from < state.CompactedThrough)
            {
                expired = $"too old resource version: {resourceVersion} ({state.CompactedThrough})";
                return null;
            }
            else
            {
                foreach (var (revision, line) in state.History)
                {
                    if (revision > from) subscription.Lines.Writer.TryWrite(line);
                }
            }
            state.Watches.Add(subscription);
            return subscription;
        }
    }

    internal void Unsubscribe(WatchSubscription subscription)
    {
        lock (_gate) subscription.State.Watches.Remove(subscription);
    }

    /// <summary>The revision a bookmark may carry now: only when every event up to it has been written to this watch.</summary>
    internal long? BookmarkRevision(WatchSubscription subscription)
    {
        lock (_gate) return subscription.Lines.Reader.Count == 0 ? _revision : null;
    }

    internal IReadOnlyList<WatchSubscription> OpenWatches()
    {
        lock (_gate) return [.. _resources.Values.SelectMany(s => s.Watches)];
    }

    /// <summary>Ends the open watches of one resource cleanly, as the server does when a CRD is deleted.</summary>
    internal void EndWatches(ApiResource resource)
    {
        lock (_gate)
        {
            foreach (var watch in _resources[resource.Name].Watches) watch.Lines.Writer.TryComplete();
        }
    }

    /// <summary>The next event of <paramref name="resource"/> reaches open watches as an undecodable line.</summary>
    internal void CorruptNextEvent(ApiResource resource)
    {
        lock (_gate) _resources[resource.Name].CorruptNext = true;
    }

    internal static string EventLine(string type, string objectJson) => $"{{\"type\":\"{type}\",\"object\":{objectJson}}}";

    private void Record(ResourceState state, long revision, string type, string json)
    {
        string line = EventLine(type, json);
        state.History.Add((revision, line));
        if (state.History.Count > HistoryLimit)
        {
            int drop = state.History.Count - HistoryLimit;
            state.CompactedThrough = state.History[drop - 1].Revision;
            state.History.RemoveRange(0, drop);
        }
        if (SuppressDelivery) return;
        if (state.CorruptNext)
        {
            state.CorruptNext = false;
            line = line[..(line.Length / 2)] + "<<garbage";
        }
        foreach (var watch in state.Watches) watch.Lines.Writer.TryWrite(line);
    }

    private static string KeyOf(ApiResource resource, V1ObjectMeta meta) =>
        resource.Namespaced ? $"{meta.NamespaceProperty}/{meta.Name}" : meta.Name;

    internal sealed record StoredObject(IKubernetesObject<V1ObjectMeta> Object, string Json, long Revision);

    internal sealed class ResourceState(ApiResource resource)
    {
        public ApiResource Resource { get; } = resource;
        public SortedDictionary<string, StoredObject> Objects { get; } = new(StringComparer.Ordinal);
        public List<(long Revision, string Line)> History { get; } = [];
        public long CompactedThrough { get; set; }
        public List<WatchSubscription> Watches { get; } = [];
        public bool CorruptNext { get; set; }
    }

    /// <summary>One open watch: the lines still to write, and a switch to drop its connection.</summary>
    internal sealed class WatchSubscription(ResourceState state)
    {
        public ResourceState State { get; } = state;
        public Channel<string> Lines { get; } = Channel.CreateUnbounded<string>();
        public CancellationTokenSource Drop { get; } = new();
    }
}
