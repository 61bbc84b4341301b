using System.Buffers;
using System.Text.Json;
using Tripline.Capture.Flows;
using Tripline.Correlation.Cluster;
using Tripline.Records;

namespace Tripline.Export;

/// <summary>
/// The last N flow records, serialized exactly as the flow log writes them, for <c>/api/v1/flows</c>. Written by the
/// flow-table thread (one copy per flow event, never per packet), read by HTTP requests under a short lock.
/// Followers wait on a signal that the writer completes when something new arrives.
/// </summary>
internal sealed class RecentFlows : IFlowExporter, IDisposable
{
    private readonly byte[]?[] _ring;
    private readonly ArrayBufferWriter<byte> _buffer = new(4096);
    private readonly Utf8JsonWriter _json;
    private readonly Lock _lock = new();
    private long _next;
    private TaskCompletionSource _arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public RecentFlows(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _ring = new byte[capacity][];
        _json = new Utf8JsonWriter(_buffer, new JsonWriterOptions { SkipValidation = true });
    }

    public int Capacity => _ring.Length;

    /// <summary>Sequence number the next record will get; records are numbered from 0.</summary>
    public long Next
    {
        get { lock (_lock) return _next; }
    }

    public void Export(in FlowEvent flowEvent, in FlowJudgement judgement, FlowContext context)
    {
        _buffer.ResetWrittenCount();
        _json.Reset();
        FlowRecordWriter.Write(_json, in flowEvent, in judgement, context);
        _json.Flush();
        Append(_buffer.WrittenSpan.ToArray());
    }

    /// <summary>Adds one serialized record (without a newline).</summary>
    public void Append(byte[] record)
    {
        TaskCompletionSource arrived;
        lock (_lock)
        {
            _ring[_next % _ring.Length] = record;
            _next++;
            arrived = _arrived;
            _arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        arrived.TrySetResult();
    }

    public void Flush()
    {
    }

    /// <summary>
    /// Copies the records numbered from <paramref name="from"/> on that pass <paramref name="filter"/>, at most the
    /// last <paramref name="limit"/> of them. <paramref name="missed"/> counts records overwritten before they were read.
    /// </summary>
    public List<byte[]> Read(long from, FlowFilter filter, int limit, out long next, out long missed)
    {
        byte[]?[] window;
        long first;
        lock (_lock)
        {
            next = _next;
            first = Math.Max(from, _next - _ring.Length);
            missed = first - from > 0 ? first - from : 0;
            window = new byte[(int)(_next - first)][];
            for (long i = first; i < _next; i++) window[i - first] = _ring[i % _ring.Length];
        }
        // Filtering happens outside the lock: the writer never waits for a reader's JSON parsing.
        var result = new List<byte[]>();
        for (int i = window.Length - 1; i >= 0 && result.Count < limit; i--)
        {
            if (window[i] is { } record && filter.Matches(record)) result.Add(record);
        }
        result.Reverse();
        return result;
    }

    /// <summary>Completes when a record numbered <paramref name="next"/> or later exists, or on cancellation.</summary>
    public Task WaitAsync(long next, CancellationToken cancellationToken)
    {
        Task arrived;
        lock (_lock)
        {
            if (_next > next) return Task.CompletedTask;
            arrived = _arrived.Task;
        }
        return arrived.WaitAsync(cancellationToken);
    }

    public void Dispose() => _json.Dispose();
}
