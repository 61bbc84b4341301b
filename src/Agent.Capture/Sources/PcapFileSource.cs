using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Tripline.Capture.Parsing;
using Tripline.Capture.Pcap;

namespace Tripline.Capture.Sources;

/// <summary>Reads capture files (or standard input) one after another; in replay every packet is delivered.</summary>
public sealed class PcapFileSource : IPacketSource
{
    private readonly IReadOnlyList<string> _paths;
    private readonly Action<CaptureFileException>? _onFileError;

    public PcapFileSource(IReadOnlyList<string> paths, Action<CaptureFileException>? onFileError = null)
    {
        _paths = paths;
        _onFileError = onFileError;
    }

    public CaptureCounters Counters { get; } = new();

    /// <summary>Bytes read so far of the current file, and its length when known, for progress lines.</summary>
    public long BytesRead => Volatile.Read(ref _bytesRead);
    public long TotalBytes { get; private set; }
    private long _bytesRead;

    /// <summary>Files that ended with an error (after everything readable in them was delivered).</summary>
    public List<CaptureFileException> FileErrors { get; } = [];

    /// <summary>A capture file holds one vantage point, even with several interfaces in a pcapng.</summary>
    public bool CapturesEachInterface => false;

    public string InterfaceName(int index) => "pcap";

    public string? NotReadyReason => null;

    public void Run(ChannelWriter<PacketBatch> output, PacketBatchPool pool, CancellationToken cancellationToken)
    {
        TotalBytes = _paths.Where(p => p != "-" && File.Exists(p)).Sum(p => new FileInfo(p).Length);
        long before = 0;
        PacketBatch batch = pool.Rent();
        foreach (string path in _paths)
        {
            // Stopped (SIGTERM, Ctrl-C): what was read is handed over below and judged; nothing more is read.
            if (cancellationToken.IsCancellationRequested) break;
            try
            {
                using var reader = CaptureFileReader.Open(path, cancellationToken);
                batch = ReadAll(reader, batch, output, pool, before, cancellationToken);
                before += reader.Position;
            }
            catch (CaptureFileException) when (cancellationToken.IsCancellationRequested && path == "-")
            {
                // A stop ended standard input between two packets' bytes: not a damaged capture.
            }
            catch (CaptureFileException e)
            {
                Counters.CaptureErrors++;
                FileErrors.Add(e);
                _onFileError?.Invoke(e);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                var error = new CaptureFileException(path, 0, e.Message);
                Counters.CaptureErrors++;
                FileErrors.Add(error);
                _onFileError?.Invoke(error);
            }
        }
        if (batch.Count > 0) Write(output, batch);
        else pool.Return(batch);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private PacketBatch ReadAll(CaptureFileReader reader, PacketBatch batch, ChannelWriter<PacketBatch> output, PacketBatchPool pool, long before, CancellationToken cancellationToken)
    {
        int sinceProgress = 0;
        try
        {
            while (reader.TryReadPacket(out var data, out var info))
            {
                Counters.Frames++;
                ref PacketHeaders headers = ref batch.Next;
                headers.TimestampNs = info.TimestampNs;
                headers.WireLength = info.OriginalLength;
                headers.InterfaceIndex = info.InterfaceId;
                ParseStatus status = PacketParser.TryParse(data, info.LinkType, ref headers);
                if (status == ParseStatus.Ok)
                {
                    batch.Commit();
                    if (batch.IsFull)
                    {
                        Write(output, batch);
                        batch = pool.Rent();
                        if (cancellationToken.IsCancellationRequested) break;
                    }
                }
                else
                {
                    Counters.Count(status);
                }
                if (++sinceProgress == 4096)
                {
                    sinceProgress = 0;
                    Volatile.Write(ref _bytesRead, before + reader.Position);
                }
            }
        }
        finally
        {
            Volatile.Write(ref _bytesRead, before + reader.Position);
        }
        return batch;
    }

    private static void Write(ChannelWriter<PacketBatch> output, PacketBatch batch)
    {
        // Replay loses nothing, not even on a stop: wait for room without allocating a task per wait, asleep when the
        // writer allows it. The flow table drains the queue to its end on a stop, so the wait ends.
        var spin = new SpinWait();
        while (!output.TryWrite(batch))
        {
            if (output is IBlockingBatchWriter blocking) blocking.WaitForRoom(CancellationToken.None);
            else spin.SpinOnce(sleep1Threshold: -1); // never a 1 ms nap: on two cores it stalls both stages
        }
    }

    public void Dispose()
    {
    }
}
