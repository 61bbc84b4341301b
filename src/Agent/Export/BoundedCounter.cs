using Prometheus;

namespace Tripline.Export;

/// <summary>
/// A labelled counter whose label sets stay bounded: past <c>maxSeries</c> distinct sets, a new set has its
/// foldable labels (namespaces, workloads, policies) replaced by <c>other</c>; the fixed ones (verdict, direction,
/// protocol) stay, so totals stay exact. Sets idle for longer than the time to live whose names left the cluster
/// are removed at scrape time, so a deleted namespace's series do not live forever.
/// </summary>
internal sealed class BoundedCounter
{
    public const string Other = "other";

    private readonly Counter _counter;
    private readonly bool[] _foldable;
    private readonly int _maxSeries;
    private readonly TimeSpan _ttl;
    private readonly TimeProvider _time;
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public BoundedCounter(Counter counter, bool[] foldable, int maxSeries, TimeSpan ttl, TimeProvider time)
    {
        _counter = counter;
        _foldable = foldable;
        _maxSeries = maxSeries;
        _ttl = ttl;
        _time = time;
    }

    /// <summary>Label sets folded into <c>other</c> because the cap was reached.</summary>
    public long Folded;

    public int SeriesCount
    {
        get { lock (_lock) return _entries.Count; }
    }

    /// <summary>Adds to the series of <paramref name="labels"/> (or its <c>other</c> fold). Called per flow, never per packet.</summary>
    public void Inc(string[] labels, double by = 1)
    {
        string key = string.Join('\u001f', labels);
        long now = _time.GetTimestamp();
        lock (_lock)
        {
            if (!_entries.TryGetValue(key, out var entry))
            {
                if (_entries.Count >= _maxSeries)
                {
                    var folded = new string[labels.Length];
                    for (int i = 0; i < labels.Length; i++) folded[i] = _foldable[i] ? Other : labels[i];
                    key = string.Join('\u001f', folded);
                    labels = folded;
                    Folded++;
                    _entries.TryGetValue(key, out entry);
                }
                if (entry is null)
                {
                    // Folded sets may take the count a little past the cap: only as many as the fixed labels allow.
                    entry = new Entry(labels, _counter.WithLabels(labels));
                    _entries[key] = entry;
                }
            }
            entry.LastUsed = now;
            entry.Child.Inc(by);
        }
    }

    /// <summary>
    /// Removes the series idle for longer than the time to live whose labels <paramref name="gone"/> says left the
    /// cluster. Returns how many were removed.
    /// </summary>
    public int Expire(Func<string[], bool> gone)
    {
        var removed = new List<string>();
        lock (_lock)
        {
            foreach (var (key, entry) in _entries)
            {
                if (_time.GetElapsedTime(entry.LastUsed) > _ttl && gone(entry.Labels)) removed.Add(key);
            }
            foreach (string key in removed)
            {
                _counter.RemoveLabelled(_entries[key].Labels);
                _entries.Remove(key);
            }
        }
        return removed.Count;
    }

    private sealed class Entry(string[] labels, Counter.Child child)
    {
        public string[] Labels { get; } = labels;
        public Counter.Child Child { get; } = child;
        public long LastUsed;
    }
}
