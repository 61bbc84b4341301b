using System.Collections.Concurrent;
using System.Collections.Frozen;

namespace Tripline.Correlation.Cluster;

/// <summary>
/// An immutable set of labels, interned: pods with identical labels share one instance, so that selector results
/// and verdicts can be computed once per distinct label set and compared by reference.
/// </summary>
public sealed class LabelSet : IEquatable<LabelSet>
{
    private static readonly ConcurrentDictionary<LabelSet, LabelSet> Interned = new(new SetComparer());
    // Looks a pod's labels up as they come (a plain dictionary), so that only a new set is frozen: freezing costs more
    // than the lookup, and 50,000 pods share a few thousand sets.
    private static readonly ConcurrentDictionary<LabelSet, LabelSet>.AlternateLookup<IDictionary<string, string>> ByLabels =
        Interned.GetAlternateLookup<IDictionary<string, string>>();
    private static int _nextId;

    public static readonly LabelSet Empty = Intern(new Dictionary<string, string>());

    private readonly FrozenDictionary<string, string> _labels;
    private readonly int _hash;

    private LabelSet(FrozenDictionary<string, string> labels)
    {
        _labels = labels;
        _hash = HashOf(labels);
    }

    /// <summary>Order-free, so that a set and a dictionary of the same labels hash alike.</summary>
    private static int HashOf(IEnumerable<KeyValuePair<string, string>> labels)
    {
        int hash = 0;
        foreach (var (key, value) in labels) hash ^= HashCode.Combine(key, value);
        return hash;
    }

    /// <summary>Compares sets with each other, and a set with a plain dictionary of labels.</summary>
    private sealed class SetComparer : IEqualityComparer<LabelSet>, IAlternateEqualityComparer<IDictionary<string, string>, LabelSet>
    {
        public bool Equals(LabelSet? x, LabelSet? y) => ReferenceEquals(x, y) || (x is not null && x.Equals(y));

        public int GetHashCode(LabelSet set) => set._hash;

        public bool Equals(IDictionary<string, string> alternate, LabelSet other)
        {
            if (alternate.Count != other._labels.Count) return false;
            foreach (var (key, value) in alternate)
            {
                if (!other._labels.TryGetValue(key, out var v) || !string.Equals(v, value, StringComparison.Ordinal)) return false;
            }
            return true;
        }

        public int GetHashCode(IDictionary<string, string> alternate) => HashOf(alternate);

        public LabelSet Create(IDictionary<string, string> alternate) => new(alternate.ToFrozenDictionary(StringComparer.Ordinal)) { Id = Interlocked.Increment(ref _nextId) };
    }

    /// <summary>A small dense number, unique per distinct label set in this process.</summary>
    public int Id { get; private init; }

    public IReadOnlyDictionary<string, string> Labels => _labels;

    public int Count => _labels.Count;

    public static LabelSet Intern(IDictionary<string, string>? labels)
    {
        if (labels is null || labels.Count == 0)
        {
            if (Empty is not null) return Empty;
        }
        labels ??= new Dictionary<string, string>();
        if (ByLabels.TryGetValue(labels, out var existing)) return existing;
        var fresh = new LabelSet(labels.ToFrozenDictionary(StringComparer.Ordinal)) { Id = Interlocked.Increment(ref _nextId) };
        return Interned.GetOrAdd(fresh, fresh);
    }

    public bool TryGetValue(string key, out string? value)
    {
        bool found = _labels.TryGetValue(key, out var v);
        value = v;
        return found;
    }

    public bool ContainsKey(string key) => _labels.ContainsKey(key);

    public bool Equals(LabelSet? other)
    {
        if (ReferenceEquals(this, other)) return true;
        if (other is null || other._hash != _hash || other._labels.Count != _labels.Count) return false;
        foreach (var (key, value) in _labels)
        {
            if (!other._labels.TryGetValue(key, out var v) || !string.Equals(v, value, StringComparison.Ordinal)) return false;
        }
        return true;
    }

    public override bool Equals(object? obj) => Equals(obj as LabelSet);

    public override int GetHashCode() => _hash;

    public override string ToString() => string.Join(",", _labels.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}"));
}
