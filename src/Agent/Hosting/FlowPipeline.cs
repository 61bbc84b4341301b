using System.Threading.Channels;
using Tripline.Capture.Flows;
using Tripline.Capture.Parsing;
using Tripline.Capture.Sources;
using Tripline.Correlation.Cluster;
using Tripline.Export;

namespace Tripline.Hosting;

/// <summary>
/// packets → batches → bounded channel → flow table → (per flow event) endpoints + verdict → exporters.
/// The source runs on its own thread; the flow table, enrichment and export run on the consuming thread, so the
/// table needs no lock. Nothing on the per-packet path allocates.
/// </summary>
internal sealed class FlowPipeline : IFlowEventSink
{
    public const int ChannelCapacity = 64;

    private readonly IPacketSource _source;
    private readonly ClusterState _cluster;
    private readonly IReadOnlyList<IFlowExporter> _exporters;
    private readonly FlowContext _context;
    private readonly Channel<PacketBatch> _channel;
    private readonly PacketBatchPool _pool;
    private Exception? _sourceFailure;

    public FlowPipeline(IPacketSource source, ClusterState cluster, FlowTableOptions options, IReadOnlyList<IFlowExporter> exporters, string node)
    {
        _source = source;
        _cluster = cluster;
        _exporters = exporters;
        _context = new FlowContext(node, source.InterfaceName, cluster.Current.IsSynced);
        _channel = Channel.CreateBounded<PacketBatch>(new BoundedChannelOptions(ChannelCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = false,
        });
        _pool = new PacketBatchPool(ChannelCapacity + 4);
        Table = new FlowTable(options, this, new ClusterServerPortHint(cluster), idSeed: (ulong)node.GetHashCode(StringComparison.Ordinal));
    }

    public FlowTable Table { get; }

    public ChannelWriter<PacketBatch> Input => _channel.Writer;

    public PacketBatchPool Pool => _pool;

    /// <summary>Runs a finite source to its end: every flow ends with <c>eof</c> at its last packet.</summary>
    public void RunToEnd(CancellationToken cancellationToken)
    {
        var producer = StartSource(cancellationToken);
        var reader = _channel.Reader;
        var spin = new SpinWait();
        while (true)
        {
            if (reader.TryRead(out var batch))
            {
                Consume(batch);
                spin.Reset();
                continue;
            }
            if (reader.Completion.IsCompleted) break;
            if (cancellationToken.IsCancellationRequested) break;
            spin.SpinOnce(sleep1Threshold: -1); // never a 1 ms nap: on two cores it stalls both stages
        }
        producer.Join();
        Table.EndAll(cancellationToken.IsCancellationRequested ? FlowEndReason.Shutdown : FlowEndReason.Eof);
        foreach (var exporter in _exporters) exporter.Flush();
        if (_sourceFailure is not null) throw new InvalidOperationException("packet source failed: " + _sourceFailure.Message, _sourceFailure);
    }

    /// <summary>Starts the source on its own thread; the channel completes when the source returns.</summary>
    public Thread StartSource(CancellationToken cancellationToken)
    {
        var producer = new Thread(() =>
        {
            try
            {
                _source.Run(_channel.Writer, _pool, cancellationToken);
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
                _channel.Writer.TryComplete();
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
    public async Task ConsumeAsync(TimeProvider? liveClock, TimeSpan flushInterval, CancellationToken cancellationToken)
    {
        var reader = _channel.Reader;
        var clock = liveClock ?? TimeProvider.System;
        long lastFlush = clock.GetTimestamp();
        while (!cancellationToken.IsCancellationRequested)
        {
            while (reader.TryRead(out var batch)) Consume(batch);
            if (liveClock is not null) Table.Advance(UnixNanoseconds(liveClock));
            if (clock.GetElapsedTime(lastFlush) >= flushInterval)
            {
                lastFlush = clock.GetTimestamp();
                foreach (var exporter in _exporters) exporter.Flush();
            }
            if (reader.Completion.IsCompleted)
            {
                if (!SourceFinished)
                {
                    Table.EndAll(FlowEndReason.Eof);
                    foreach (var exporter in _exporters) exporter.Flush();
                    SourceFinished = true;
                }
                try
                {
                    await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }
                break;
            }
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(TimeSpan.FromMilliseconds(250));
                await reader.WaitToReadAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
        while (reader.TryRead(out var batch)) Consume(batch);
        if (!SourceFinished) Table.EndAll(FlowEndReason.Shutdown, UnixNanoseconds(clock));
        foreach (var exporter in _exporters) exporter.Flush();
    }

    public static long UnixNanoseconds(TimeProvider time) => (time.GetUtcNow().UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;

    private void Consume(PacketBatch batch)
    {
        var items = batch.Items;
        for (int i = 0; i < batch.Count; i++) Table.Add(ref items[i]);
        _pool.Return(batch);
    }

    public void OnFlowEvent(FlowEventKind kind, long timeNs, in FlowEntry flow)
    {
        var model = _cluster.Current;
        _context.ClusterSynced = model.IsSynced;
        var judgement = model.Judge(flow.Source.Value, flow.Destination.Value, IpProtocol.HasPorts(flow.Protocol) ? flow.DestinationPort : 0,
            ClusterServerPortHint.ToPolicyProtocol(flow.Protocol), flow.FirstSeenNs);
        var flowEvent = new FlowEvent { Kind = kind, TimeNs = timeNs, Flow = flow };
        foreach (var exporter in _exporters) exporter.Export(in flowEvent, in judgement, _context);
    }
}
