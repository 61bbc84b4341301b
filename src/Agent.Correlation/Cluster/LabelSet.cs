using System.Collections.Concurrent;
using System.Collections.Frozen;

namespace Tripline.Correlation.Cluster;

/// <summary>
/// An immutable set of labels, interned: pods with identical labels share one instance, so that selector results
/// and verdicts can be computed once per distinct label set and compared by reference.
/// </summary>
public sealed class LabelSet : IEquatable<LabelSet>
{
    private static readonly ConcurrentDictionary<LabelSet, LabelSet> Interned = new();
    private static int _nextId;

    public static readonly LabelSet Empty = Intern(new Dictionary<string, string>());

    private readonly FrozenDictionary<string, string> _labels;
    private readonly int _hash;

    private LabelSet(FrozenDictionary<string, string> labels)
    {
        _labels = labels;
        int hash = 0;
        foreach (var (key, value) in labels) hash ^= HashCode.Combine(key, value);
        _hash = hash;
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
        var candidate = new LabelSet((labels ?? new Dictionary<string, string>()).ToFrozenDictionary(StringComparer.Ordinal));
        if (Interned.TryGetValue(candidate, out var existing)) return existing;
        var fresh = new LabelSet(candidate._labels) { Id = Interlocked.Increment(ref _nextId) };
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
