namespace Tripline.Capture.Sources;

/// <summary>
/// A batch writer that lets a finite source (which loses nothing) sleep while the queue is full, rather than spin:
/// on two cores a spinning reader takes the time the flow table and the exporter need.
/// </summary>
public interface IBlockingBatchWriter
{
    /// <summary>Returns once the queue has room, or throws <see cref="OperationCanceledException"/>.</summary>
    void WaitForRoom(CancellationToken cancellationToken);
}
