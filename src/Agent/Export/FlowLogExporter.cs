using System.Buffers;
using System.Text.Json;
using Tripline.Capture.Flows;
using Tripline.Correlation.Cluster;

namespace Tripline.Export;

/// <summary>Which records reach the flow log.</summary>
internal sealed record FlowLogFilter
{
    public bool DeniedOnly { get; init; }
    /// <summary>Skip update records: only starts and ends.</summary>
    public bool StartsAndEndsOnly { get; init; }

    public bool Accepts(FlowEventKind kind, bool allowed) =>
        (!DeniedOnly || !allowed) && (!StartsAndEndsOnly || kind != FlowEventKind.Update);
}

/// <summary>
/// JSON lines into a reused buffer, handed to the output in large writes. A failed write (disk full, read-only
/// directory, closed pipe) costs the records in that write, which are counted; the agent goes on.
/// </summary>
internal sealed class FlowLogExporter : IFlowExporter, IDisposable
{
    private const int FlushThreshold = 64 * 1024;
    private readonly IFlowLogOutput _output;
    private readonly FlowLogFilter _filter;
    private readonly ArrayBufferWriter<byte> _buffer = new(FlushThreshold * 2);
    private readonly Utf8JsonWriter _json;
    private int _pendingRecords;
    private bool _sealed;
    private readonly Lock _lock = new();

    public FlowLogExporter(IFlowLogOutput output, FlowLogFilter? filter = null)
    {
        _output = output;
        _filter = filter ?? new FlowLogFilter();
        _json = new Utf8JsonWriter(_buffer, new JsonWriterOptions { SkipValidation = true });
    }

    public long RecordsWritten;
    /// <summary>Records that could not be written, for any reason; <see cref="RecordsLostPastDeadline"/> is part of it.</summary>
    public long RecordsLost;
    /// <summary>Records offered after the stop deadline sealed the log.</summary>
    public long RecordsLostPastDeadline;
    public string? LastError;

    /// <summary>Records not written because their content went into an aggregate or a later record, by <see cref="FoldReason"/>.</summary>
    private readonly long[] _folded = new long[FoldReasons.All.Length];

    public long Folded(FoldReason reason) => Volatile.Read(ref _folded[(int)reason]);

    /// <summary>Counts records folded instead of written (the export thread counts, a scrape reads).</summary>
    public void CountFolded(FoldReason reason, int records) => Interlocked.Add(ref _folded[(int)reason], records);

    public void Export(in FlowEvent flowEvent, in FlowJudgement judgement, FlowContext context)
    {
        if (!_filter.Accepts(flowEvent.Kind, judgement.Verdict.Allowed)) return;
        lock (_lock)
        {
            if (_sealed)
            {
                Interlocked.Increment(ref RecordsLost);
                Interlocked.Increment(ref RecordsLostPastDeadline);
                return;
            }
            FlowRecordWriter.Write(_json, in flowEvent, in judgement, context);
            EndLine();
        }
    }

    public FlowLogFilter Filter => _filter;

    /// <summary>Writes a record that is not one flow event (an aggregate); the filter is the caller's to apply.</summary>
    public void WriteRecord<TState>(TState state, Action<Utf8JsonWriter, TState> write)
    {
        lock (_lock)
        {
            if (_sealed)
            {
                Interlocked.Increment(ref RecordsLost);
                Interlocked.Increment(ref RecordsLostPastDeadline);
                return;
            }
            write(_json, state);
            EndLine();
        }
    }

    /// <summary>Ends the record just written: newline, count, and a write to the output once enough is buffered.</summary>
    private void EndLine()
    {
        _json.Flush();
        _json.Reset();
        _buffer.GetSpan(1)[0] = (byte)'\n';
        _buffer.Advance(1);
        _pendingRecords++;
        if (_buffer.WrittenCount >= FlushThreshold) WriteOut(flushOutput: false);
    }

    public void Flush()
    {
        lock (_lock) WriteOut(flushOutput: true);
    }

    /// <summary>
    /// The agent is exiting past its stop deadline: writes out what is buffered and takes no more records (each one
    /// offered after this is counted lost), so that the process never ends in the middle of a write. A write that is
    /// itself stuck (standard output that nobody reads) is waited for at most <paramref name="wait"/>; false then.
    /// </summary>
    public bool Seal(TimeSpan wait)
    {
        if (!_lock.TryEnter(wait)) return false;
        try
        {
            WriteOut(flushOutput: true);
            _sealed = true;
            return true;
        }
        finally
        {
            _lock.Exit();
        }
    }

    private void WriteOut(bool flushOutput)
    {
        try
        {
            if (_buffer.WrittenCount > 0) _output.Write(_buffer.WrittenSpan);
            if (flushOutput) _output.Flush();
            Interlocked.Add(ref RecordsWritten, _pendingRecords);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            Interlocked.Add(ref RecordsLost, _pendingRecords);
            LastError = e.Message;
        }
        _pendingRecords = 0;
        _buffer.ResetWrittenCount();
    }

    public void Dispose()
    {
        Flush();
        _json.Dispose();
        _output.Dispose();
    }
}
