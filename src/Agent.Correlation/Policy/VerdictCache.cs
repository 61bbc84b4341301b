namespace Tripline.Correlation.Policy;

/// <summary>
/// What a verdict depends on, and nothing else: each side's namespace, interned label set, ipBlock class (not the
/// IP), the destination's port declarations, the port and protocol. Pods with identical labels share entries.
/// </summary>
internal readonly struct VerdictKey : IEquatable<VerdictKey>
{
    public VerdictKey(int sourceNamespace, int sourceLabels, int sourceClass, int destinationNamespace, int destinationLabels, int destinationClass, int destinationPorts, int port, int kinds)
    {
        SourceNamespace = sourceNamespace;
        SourceLabels = sourceLabels;
        SourceClass = sourceClass;
        DestinationNamespace = destinationNamespace;
        DestinationLabels = destinationLabels;
        DestinationClass = destinationClass;
        DestinationPorts = destinationPorts;
        Port = port;
        Kinds = kinds;
    }

    /// <summary>Namespace id of a pod side; negative for the non-pod kinds, which only ipBlocks see.</summary>
    public int SourceNamespace { get; }
    public int SourceLabels { get; }
    public int SourceClass { get; }
    public int DestinationNamespace { get; }
    public int DestinationLabels { get; }
    public int DestinationClass { get; }
    public int DestinationPorts { get; }
    public int Port { get; }

    /// <summary>Protocol and both endpoint kinds packed in one word.</summary>
    public int Kinds { get; }

    public bool Equals(VerdictKey other) =>
        SourceLabels == other.SourceLabels && DestinationLabels == other.DestinationLabels && Port == other.Port
        && SourceNamespace == other.SourceNamespace && DestinationNamespace == other.DestinationNamespace
        && SourceClass == other.SourceClass && DestinationClass == other.DestinationClass
        && DestinationPorts == other.DestinationPorts && Kinds == other.Kinds;

    public override bool Equals(object? obj) => obj is VerdictKey other && Equals(other);

    public override int GetHashCode()
    {
        // Multiply-rotate mixing: cheap, and good enough spread for a power-of-two table.
        ulong h = (uint)SourceLabels * 0x9E3779B97F4A7C15UL;
        h = (h ^ (uint)DestinationLabels) * 0xC2B2AE3D27D4EB4FUL;
        h = (h ^ (uint)Port ^ ((ulong)(uint)Kinds << 32)) * 0x165667B19E3779F9UL;
        h = (h ^ (uint)SourceNamespace ^ ((ulong)(uint)DestinationNamespace << 32)) * 0x9E3779B97F4A7C15UL;
        h = (h ^ (uint)SourceClass ^ ((ulong)(uint)DestinationClass << 32) ^ ((ulong)(uint)DestinationPorts << 16)) * 0xC2B2AE3D27D4EB4FUL;
        return (int)(h >> 32) ^ (int)h;
    }

    public static bool operator ==(VerdictKey left, VerdictKey right) => left.Equals(right);

    public static bool operator !=(VerdictKey left, VerdictKey right) => !left.Equals(right);
}

/// <summary>
/// A bounded, lock-free verdict table: two-way set-associative over an array of immutable entries. A reader sees
/// either the old or the new entry reference, never a torn one; a collision only evicts, it never answers wrongly.
/// </summary>
internal sealed class VerdictCache
{
    public const int DefaultCapacity = 1 << 16;

    private readonly Entry?[] _entries;
    private readonly int _mask;

    public VerdictCache(int capacity = DefaultCapacity)
    {
        int size = (int)Math.Max(2, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)capacity));
        _entries = new Entry?[size];
        _mask = size - 1;
    }

    public int Capacity => _entries.Length;

    public bool TryGet(in VerdictKey key, out Verdict verdict)
    {
        int hash = key.GetHashCode();
        int slot = hash & _mask & ~1;
        var entries = _entries;
        var first = Volatile.Read(ref entries[slot]);
        if (first is not null && first.Hash == hash && first.Key.Equals(key))
        {
            verdict = first.Verdict;
            return true;
        }
        var second = Volatile.Read(ref entries[slot + 1]);
        if (second is not null && second.Hash == hash && second.Key.Equals(key))
        {
            verdict = second.Verdict;
            return true;
        }
        verdict = null!;
        return false;
    }

    public void Set(in VerdictKey key, Verdict verdict)
    {
        int hash = key.GetHashCode();
        int slot = hash & _mask & ~1;
        var entries = _entries;
        // Fill an empty way first; otherwise the hash's next bit picks the victim, which spreads evictions.
        if (entries[slot] is not null && (entries[slot + 1] is null || ((hash >> 16) & 1) == 1)) slot++;
        Volatile.Write(ref entries[slot], new Entry(hash, key, verdict));
    }

    /// <summary>A new table holding the entries that <paramref name="keep"/> still trusts.</summary>
    public VerdictCache CopyWhere(Func<VerdictKey, bool> keep)
    {
        var copy = new VerdictCache(_entries.Length);
        for (int i = 0; i < _entries.Length; i++)
        {
            var entry = Volatile.Read(ref _entries[i]);
            if (entry is not null && keep(entry.Key)) copy._entries[i] = entry;
        }
        return copy;
    }

    private sealed class Entry(int hash, VerdictKey key, Verdict verdict)
    {
        public readonly int Hash = hash;
        public readonly VerdictKey Key = key;
        public readonly Verdict Verdict = verdict;
    }
}
