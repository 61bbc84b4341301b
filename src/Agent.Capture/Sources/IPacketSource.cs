using System.Threading.Channels;

namespace Tripline.Capture.Sources;

/// <summary>
/// A producer of parsed packet batches: capture files or live interfaces. It runs on its own thread, parses in
/// place, and writes full batches to the channel. File sources wait when the channel is full (nothing is lost in
/// replay); live sources never wait and count the loss.
/// </summary>
public interface IPacketSource : IDisposable
{
    /// <summary>Interface names by the index that packets carry in <c>PacketHeaders.InterfaceIndex</c>.</summary>
    string InterfaceName(int index);

    CaptureCounters Counters { get; }

    /// <summary>Null when capturing; otherwise what capture is waiting for (no interface matched, no permission, ...), for /readyz.</summary>
    string? NotReadyReason { get; }

    /// <summary>
    /// Whether each pod interface is captured on its own, so that a packet between two pods of the node is seen on
    /// both veths (live capture); a capture file holds one vantage point.
    /// </summary>
    bool CapturesEachInterface { get; }

    /// <summary>Runs until the input ends or cancellation; completes no channel (the pipeline does).</summary>
    void Run(ChannelWriter<PacketBatch> output, PacketBatchPool pool, CancellationToken cancellationToken);
}
