using System.Collections.Concurrent;
using Tripline.Capture.Parsing;

namespace Tripline.Capture.Sources;

/// <summary>Parsed headers handed from a capture thread to the flow-table thread in one channel write.</summary>
public sealed class PacketBatch
{
    public const int DefaultSize = 512;

    public PacketBatch(int size = DefaultSize) => Items = new PacketHeaders[size];

    public PacketHeaders[] Items { get; }

    public int Count { get; set; }

    public bool IsFull => Count == Items.Length;

    /// <summary>The next slot to fill; the caller commits it with <see cref="Commit"/> only if parsing succeeded.</summary>
    public ref PacketHeaders Next => ref Items[Count];

    public void Commit() => Count++;
}

/// <summary>
/// A fixed set of batches, sized so that it never runs dry when every batch is returned: the channel holds at
/// most its capacity, and the producer and the consumer one each.
/// </summary>
public sealed class PacketBatchPool
{
    private readonly ConcurrentQueue<PacketBatch> _free = new();
    private readonly int _batchSize;

    public PacketBatchPool(int count, int batchSize = PacketBatch.DefaultSize)
    {
        _batchSize = batchSize;
        for (int i = 0; i < count; i++) _free.Enqueue(new PacketBatch(batchSize));
    }

    public PacketBatch Rent()
    {
        // Only a leak of batches could empty the pool; a fresh batch keeps capture going rather than failing.
        if (!_free.TryDequeue(out var batch)) batch = new PacketBatch(_batchSize);
        batch.Count = 0;
        return batch;
    }

    public void Return(PacketBatch batch)
    {
        batch.Count = 0;
        _free.Enqueue(batch);
    }
}
