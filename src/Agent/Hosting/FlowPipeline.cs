using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Tripline.Capture.Flows;
using Tripline.Capture.Parsing;
using Tripline.Capture.Sources;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Policy;
using Tripline.Export;

namespace Tripline.Hosting;

/// <summary>
/// packets → batches → bounded channel → flow table → flow events → bounded channel → judge + export.
/// Three threads: the source reads and parses; the flow-table thread owns the table (no lock); the export thread
/// resolves endpoints, judges, and runs the exporters, so that disk and JSON work never hold up the table. Nothing on
/// the per-packet path allocates.
/// </summary>
internal sealed class FlowPipeline : IFlowEventSink, IReleasedFlowSink
{
    public const int ChannelCapacity = 64;
    private const int EventBatchSize = 256;
    private const int EventChannelCapacity = 64;
    /// <summary>Flow events held while a live cluster source has not listed everything yet; past this they are judged as things stand.</summary>
    /// <summary>Events held while the cluster is not yet whole (a test lowers it).</summary>
    internal int MaxDeferredEvents { get; init; } = 64 * 1024;

    private readonly IPacketSource _source;
    private readonly ClusterState _cluster;
    private readonly ClusterServerPortHint _hint;
    // Set by RunToEnd: verdicts wait for a synced cluster however long that takes.
    private CancellationToken? _holdUntilSynced;
    private readonly IReadOnlyList<IFlowExporter> _exporters;
    private readonly FlowContext _context;
    private readonly Channel<PacketBatch> _channel;
    private readonly PacketBatchPool _pool;
    private Exception? _sourceFailure;
    private bool _sourceDone;
    private readonly Channel<EventBatch> _events;
    private readonly System.Collections.Concurrent.ConcurrentQueue<EventBatch> _freeEvents = new();
    private readonly ManualResetEventSlim _eventsAvailable = new(false, spinCount: 1);
    // No spinning before blocking: between batches the wait is long, and spinning only burns the second core.
    private readonly ManualResetEventSlim _packetsAvailable = new(false, spinCount: 1);
    // The flow table sleeps here when the event channel is full, until the export thread has read it down to half.
    private readonly RoomSignal _eventRoom = new(EventChannelCapacity);
    private readonly Func<bool> _eventsFull;
    private readonly SignallingWriter _input;
    private EventBatch _pendingEvents;
    private Thread? _exportThread;
    private Exception? _exportFailure;
    private TimeSpan _flushInterval = TimeSpan.FromSeconds(5);

    /// <summary>Flow events handed from the flow-table thread to the export thread, pooled.</summary>
    private sealed class EventBatch
    {
        public readonly FlowEvent[] Events = new FlowEvent[EventBatchSize];
        public int Count;
    }

    public FlowPipeline(IPacketSource source, ClusterState cluster, FlowTableOptions options, IReadOnlyList<IFlowExporter> exporters, string node)
    {
        _source = source;
        _cluster = cluster;
        _exporters = exporters;
        _context = new FlowContext(node, source.InterfaceName, cluster.Current.IsSynced, source.CapturesEachInterface);
        _channel = Channel.CreateBounded<PacketBatch>(new BoundedChannelOptions(ChannelCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = false,
        });
        _pool = new PacketBatchPool(ChannelCapacity + 4);
        _input = new SignallingWriter(_channel, _packetsAvailable);
        _events = Channel.CreateBounded<EventBatch>(new BoundedChannelOptions(EventChannelCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = true,
        });
        for (int i = 0; i < EventChannelCapacity + 2; i++) _freeEvents.Enqueue(new EventBatch());
        _pendingEvents = RentEvents();
        _eventsFull = () => _events.Reader.Count >= EventChannelCapacity && _exportFailure is null;
        // Deferred events are judged as soon as the cluster is whole, not at the export thread's next timeout.
        cluster.ModelChanged += model =>
        {
            if (model.IsSynced) _eventsAvailable.Set();
        };
        _hint = new ClusterServerPortHint(cluster);
        Table = new FlowTable(options, this, _hint, idSeed: StableHash(node));
    }

    public FlowTable Table { get; }

    /// <summary>FNV-1a of the node name: string.GetHashCode is randomised per process, and flow ids must not be.</summary>
    private static ulong StableHash(string text)
    {
        ulong hash = 0xcbf29ce484222325UL;
        foreach (char c in text)
        {
            hash = (hash ^ c) * 0x100000001b3UL;
        }
        return hash;
    }

    /// <summary>
    /// The channel's writer, which also wakes the flow-table thread: it blocks on an event rather than awaiting the
    /// channel, because a continuation per batch keeps thread-pool workers spinning between batches. A finite source
    /// that finds the channel full sleeps until the flow table has read it down to half (<see cref="Read"/>).
    /// </summary>
    private sealed class SignallingWriter : ChannelWriter<PacketBatch>, IBlockingBatchWriter, ICoalescingBatchWriter
    {
        private readonly Channel<PacketBatch> _channel;
        private readonly ManualResetEventSlim _signal;
        private readonly RoomSignal _room = new(ChannelCapacity);
        private readonly Func<bool> _full;

        public SignallingWriter(Channel<PacketBatch> channel, ManualResetEventSlim signal)
        {
            _channel = channel;
            _signal = signal;
            _full = () => channel.Reader.Count >= ChannelCapacity && !channel.Reader.Completion.IsCompleted;
        }

        public override bool TryWrite(PacketBatch item)
        {
            if (!TryWriteQuietly(item)) return false;
            Wake();
            return true;
        }

        public bool TryWriteQuietly(PacketBatch item) => _channel.Writer.TryWrite(item);

        public void Wake() => _signal.Set();

        public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default) => _channel.Writer.WaitToWriteAsync(cancellationToken);

        public override bool TryComplete(Exception? error = null)
        {
            bool completed = _channel.Writer.TryComplete(error);
            _signal.Set();
            return completed;
        }

        public void WaitForRoom(CancellationToken cancellationToken) => _room.WaitWhile(_full, cancellationToken);

        /// <summary>Called by the flow-table thread after each read: wakes a waiting source once there is room for half the channel.</summary>
        public void Read() => _room.Read(_channel.Reader.Count);
    }

    /// <summary>Runs a finite source to its end: every flow ends with <c>eof</c> at its last packet.</summary>
    /// <remarks>
    /// A finite source has no live traffic to keep up with, so every verdict waits for the cluster state to be whole:
    /// packets are read while manifests load, nothing is judged against a partial cluster, and a flow whose start
    /// was missed before the cluster was loaded is oriented by the export thread once it is.
    /// </remarks>
    public void RunToEnd(CancellationToken cancellationToken)
    {
        // Verdicts wait for the whole cluster even after a stop: manifests are local files whose load ends (a failed
        // load ends synced and empty), and a record judged against half a cluster would mislead.
        _holdUntilSynced = CancellationToken.None;
        _hint.DeferUntilSynced = true;
        StartExport(Timeout.InfiniteTimeSpan);
        var producer = StartSource(cancellationToken);
        var reader = _channel.Reader;
        long stopAsked = 0;
        while (true)
        {
            // Reset before draining: a batch written after the drain sets the event again, so the wait cannot miss it.
            _packetsAvailable.Reset();
            while (reader.TryRead(out var batch)) Consume(batch);
            if (reader.Completion.IsCompleted) break;
            // A stop (SIGTERM, Ctrl-C) ends reading at the source's next batch, and what it read is still drained and
            // judged here. A source blocked in a read (standard input with nothing coming) is not waited for long.
            if (cancellationToken.IsCancellationRequested)
            {
                if (stopAsked == 0) stopAsked = System.Diagnostics.Stopwatch.GetTimestamp();
                else if (System.Diagnostics.Stopwatch.GetElapsedTime(stopAsked) > TimeSpan.FromSeconds(1)) break;
            }
            _packetsAvailable.Wait(cancellationToken.IsCancellationRequested ? 50 : 250, CancellationToken.None);
        }
        producer.Join(cancellationToken.IsCancellationRequested ? TimeSpan.FromSeconds(1) : Timeout.InfiniteTimeSpan);
        Table.EndAll(cancellationToken.IsCancellationRequested ? FlowEndReason.Shutdown : FlowEndReason.Eof);
        StopExport();
        if (_sourceFailure is not null) throw new InvalidOperationException("packet source failed: " + _sourceFailure.Message, _sourceFailure);
    }

    /// <summary>Starts the source on its own thread; the channel completes when the source returns.</summary>
    public Thread StartSource(CancellationToken cancellationToken)
    {
        var producer = new Thread(() =>
        {
            try
            {
                _source.Run(_input, _pool, cancellationToken);
            }
            catch (OperationCanceledException)
            {
            }
            catch (Exception e)
            {
                _sourceFailure = e;
            }
            finally
            {
                _input.TryComplete();
                Volatile.Write(ref _sourceDone, true);
            }
        })
        { Name = "tripline-source", IsBackground = true };
        producer.Start();
        return producer;
    }

    public Exception? SourceFailure => _sourceFailure;

    /// <summary>True once a finite source has been read to its end and its flows ended.</summary>
    public bool SourceFinished { get; private set; }

    /// <summary>
    /// The agent's consumer loop. With <paramref name="liveClock"/> the flow clock follows the wall clock when the
    /// node is quiet, so idle flows end on time; without it (a capture file) time comes from the packets only.
    /// On cancellation it drains what capture already handed over and ends every flow with <c>shutdown</c>.
    /// </summary>
    public Task ConsumeAsync(TimeProvider? liveClock, TimeSpan flushInterval, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var consumer = new Thread(() =>
        {
            try
            {
                ConsumeLoop(liveClock, flushInterval, cancellationToken);
                done.SetResult();
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        })
        { Name = "tripline-flows", IsBackground = true };
        consumer.Start();
        return done.Task;
    }

    private void ConsumeLoop(TimeProvider? liveClock, TimeSpan flushInterval, CancellationToken cancellationToken)
    {
        StartExport(flushInterval);
        var reader = _channel.Reader;
        var clock = liveClock ?? TimeProvider.System;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                _packetsAvailable.Reset();
                while (reader.TryRead(out var batch)) Consume(batch);
                if (liveClock is not null) Table.Advance(UnixNanoseconds(liveClock));
                // A quiet node still gets its records out: hand over what the table produced so far.
                HandOverEvents();
                if (reader.Completion.IsCompleted)
                {
                    if (!SourceFinished)
                    {
                        Table.EndAll(FlowEndReason.Eof);
                        HandOverEvents();
                        SourceFinished = true;
                    }
                    cancellationToken.WaitHandle.WaitOne();
                    break;
                }
                try
                {
                    // Woken by the next batch; the timeout keeps the flow clock moving on a quiet node.
                    _packetsAvailable.Wait(TimeSpan.FromMilliseconds(250), cancellationToken);
                }
                catch (OperationCanceledException)
                {
                }
            }
            // Capture stops with the same cancellation: it reads what the kernel still holds, hands its last batches over
            // and completes the channel. Read them as they come. (The channel's Completion is no signal here: it
            // completes only once it is empty, which is this loop's job.)
            long stopAsked = System.Diagnostics.Stopwatch.GetTimestamp();
            while (!Volatile.Read(ref _sourceDone) && System.Diagnostics.Stopwatch.GetElapsedTime(stopAsked) < TimeSpan.FromSeconds(5))
            {
                _packetsAvailable.Reset();
                while (reader.TryRead(out var batch)) Consume(batch);
                _packetsAvailable.Wait(20, CancellationToken.None);
            }
            while (reader.TryRead(out var batch)) Consume(batch);
            if (!SourceFinished) Table.EndAll(FlowEndReason.Shutdown, UnixNanoseconds(clock));
        }
        finally
        {
            StopExport();
        }
    }

    public static long UnixNanoseconds(TimeProvider time) => (time.GetUtcNow().UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Consume(PacketBatch batch)
    {
        _input.Read();
        Table.Add(batch.Items.AsSpan(0, batch.Count));
        _pool.Return(batch);
    }

    /// <summary>Called by the flow table on this thread: copies the event into the batch bound for the export thread.</summary>
    public void OnFlowEvent(FlowEventKind kind, long timeNs, in FlowEntry flow)
    {
        var batch = _pendingEvents;
        ref FlowEvent slot = ref batch.Events[batch.Count++];
        slot.Kind = kind;
        slot.TimeNs = timeNs;
        slot.Flow = flow;
        if (batch.Count == EventBatchSize) HandOverEvents();
    }

    private EventBatch RentEvents()
    {
        if (!_freeEvents.TryDequeue(out var batch)) batch = new EventBatch();
        batch.Count = 0;
        return batch;
    }

    private void HandOverEvents()
    {
        var batch = _pendingEvents;
        if (batch.Count == 0) return;
        // Flow events are never dropped: when export lags, the flow table waits (asleep, woken by the export thread
        // once it has drained the channel), and capture counts its own losses.
        while (!_events.Writer.TryWrite(batch))
        {
            if (_exportFailure is not null)
            {
                batch.Count = 0;
                return;
            }
            _eventRoom.WaitWhile(_eventsFull);
        }
        _eventsAvailable.Set();
        _pendingEvents = RentEvents();
    }

    private void StartExport(TimeSpan flushInterval)
    {
        _flushInterval = flushInterval;
        _exportThread = new Thread(ExportLoop) { Name = "tripline-export", IsBackground = true };
        _exportThread.Start();
    }

    /// <summary>Hands over the last events, lets the export thread finish them, and flushes every exporter.</summary>
    private void StopExport()
    {
        HandOverEvents();
        _events.Writer.TryComplete();
        _eventsAvailable.Set();
        _exportThread?.Join();
        foreach (var exporter in _exporters) exporter.Flush();
        if (_exportFailure is not null) throw new InvalidOperationException("flow export failed: " + _exportFailure.Message, _exportFailure);
    }

    private void ExportLoop()
    {
        var reader = _events.Reader;
        var deferred = new Queue<EventBatch>();
        int deferredEvents = 0;
        long lastFlush = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            while (true)
            {
                _eventsAvailable.Reset();
                var model = _cluster.Current;
                // A replay holds its events until the cluster is loaded, but not without bound: past the cap it stops
                // reading, so the flow table and the file reader wait on their bounded queues instead of memory growing
                // with the capture.
                bool holdingFull = _holdUntilSynced is not null && !model.IsSynced && deferredEvents >= MaxDeferredEvents;
                while (!holdingFull && reader.TryRead(out var batch))
                {
                    _eventRoom.Read(reader.Count);
                    if (model.IsSynced && deferred.Count == 0)
                    {
                        Export(batch, model);
                        continue;
                    }
                    // Until the live cluster state has listed everything, a verdict would come from a partial policy
                    // set: hold the events and judge them once it is whole (endpoints are resolved at packet time).
                    deferred.Enqueue(batch);
                    deferredEvents += batch.Count;
                    holdingFull = _holdUntilSynced is not null && deferredEvents >= MaxDeferredEvents;
                }
                // Drained (or holding): a waiting flow table re-checks the channel now.
                _eventRoom.Read(0);
                // Completion means the writer is done and everything was read: checked after the drain, not before.
                bool finished = reader.Completion.IsCompleted;
                if (deferred.Count > 0 && !model.IsSynced && finished && _holdUntilSynced is { } hold)
                {
                    // A replay read to its end before its manifests finished loading: wait for them (or cancellation).
                    _cluster.WaitUntilSynced(hold);
                    model = _cluster.Current;
                }
                // A live source judges against what it has after a bounded wait; a finite one only against the whole.
                bool release = model.IsSynced || finished || (_holdUntilSynced is null && deferredEvents >= MaxDeferredEvents);
                if (deferred.Count > 0 && release)
                {
                    while (deferred.TryDequeue(out var held)) Export(held, model);
                    deferredEvents = 0;
                }
                // Flows waiting to be named: those named now, or waiting too long, go out (all of them at the end).
                ReleaseHeld(model, all: finished && deferred.Count == 0);
                if (_flushInterval != Timeout.InfiniteTimeSpan && System.Diagnostics.Stopwatch.GetElapsedTime(lastFlush) >= _flushInterval)
                {
                    lastFlush = System.Diagnostics.Stopwatch.GetTimestamp();
                    foreach (var exporter in _exporters) exporter.Flush();
                }
                if (finished && deferred.Count == 0) return;
                // Waiting on an event allocates nothing; the timeout re-checks sync state, held flows and the flush interval.
                _eventsAvailable.Wait(deferred.Count > 0 || _hold is { Count: > 0 } ? TimeSpan.FromMilliseconds(100) : _flushInterval == Timeout.InfiniteTimeSpan ? TimeSpan.FromMilliseconds(500) : _flushInterval);
            }
        }
        catch (Exception e)
        {
            _exportFailure = e;
            // Keep the flow table from waiting on a dead export thread.
            while (reader.TryRead(out _))
            {
            }
        }
    }

    private void Export(EventBatch batch, ClusterModel model)
    {
        _context.ClusterSynced = model.IsSynced;
        var events = batch.Events;
        long now = System.Diagnostics.Stopwatch.GetTimestamp();
        for (int i = 0; i < batch.Count; i++)
        {
            ref FlowEvent flowEvent = ref events[i];
            // A flow that began before the cluster was loaded is oriented now, with the cluster that judges it.
            if (flowEvent.Flow.Orientation == FlowOrientation.Pending) FlowTable.ResolvePending(ref flowEvent.Flow, _hint);
            // An address in a pod range that no pod holds yet: the pod is newer than the cluster state (the CNI is faster
            // than the watch). Its flow waits to be named rather than be judged as external.
            if (_hold is { } hold && hold.TryHold(in flowEvent, model, now)) continue;
            ExportOne(ref flowEvent, model, note: null);
        }
        batch.Count = 0;
        _freeEvents.Enqueue(batch);
    }

    private void ExportOne(ref FlowEvent flowEvent, ClusterModel model, string? note)
    {
        ref readonly FlowEntry flow = ref flowEvent.Flow;
        int port = IpProtocol.HasPorts(flow.Protocol) ? flow.DestinationPort
            : flow.Protocol is IpProtocol.Icmp or IpProtocol.Icmpv6 ? PolicyEngine.IcmpPort(flow.IcmpType, flow.IcmpCode) : 0;
        var judgement = model.Judge(flow.Source.ToKey(), flow.Destination.ToKey(), port,
            ClusterServerPortHint.ToPolicyProtocol(flow.Protocol), flow.FirstSeenNs);
        if (note is not null) judgement = judgement with { Verdict = judgement.Verdict with { Note = judgement.Verdict.Note is { } other ? other + "; " + note : note } };
        foreach (var exporter in _exporters) exporter.Export(in flowEvent, in judgement, _context);
    }

    /// <summary>Exports the held flows that are named now, or have waited long enough (all of them when <paramref name="all"/>).</summary>
    private void ReleaseHeld(ClusterModel model, bool all)
    {
        if (_hold is not { Count: > 0 } hold) return;
        _context.ClusterSynced = model.IsSynced;
        hold.Release(model, System.Diagnostics.Stopwatch.GetTimestamp(), all, this);
    }

    /// <summary>Called by <see cref="AttributionHold.Release"/> for each event it lets go, in order.</summary>
    public void ExportReleased(ref FlowEvent flowEvent, ClusterModel model, bool timedOut) =>
        ExportOne(ref flowEvent, model, timedOut ? _hold!.TimeoutNote : null);

    /// <summary>
    /// Live cluster state only: how long a flow whose address lies in a pod range but belongs to no known pod waits for
    /// the pod to appear. Zero (replay, manifests) judges at once.
    /// </summary>
    public TimeSpan AttributionWait
    {
        init => _hold = value > TimeSpan.Zero ? new AttributionHold(value) : null;
    }

    private readonly AttributionHold? _hold;

    /// <summary>Flow events held for attribution now, and flows let go unnamed after the wait (for metrics and tests).</summary>
    public (int Held, long TimedOut) AttributionStats => _hold is { } h ? (h.Count, Interlocked.Read(ref h.TimedOutFlows)) : (0, 0);
}
