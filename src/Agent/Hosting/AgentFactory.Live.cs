using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Tripline.Capture.Live;
using Tripline.Capture.Sources;
using Tripline.Export;

namespace Tripline.Hosting;

internal static partial class AgentFactory
{
    /// <summary>
    /// Live capture on the node's interfaces. Problems found here are configuration errors (exit 2); a capture that
    /// cannot start yet (no libpcap, no permission, no interface) is not: the agent runs, reports it on /readyz and
    /// keeps watching.
    /// </summary>
    private static IPacketSource CreateLiveSource(AgentOptions options, ILoggerFactory loggerFactory, List<string> problems)
    {
        var live = options.LiveCapture;
        if (options.Interfaces.Count > 0) live = live with { Interfaces = options.Interfaces };
        problems.AddRange(live.Validate());
        if (live.BpfFilter is { Length: > 0 } filter && !SharpPcapFilterCheck(filter, out string? error))
        {
            problems.Add($"--bpf-filter: '{filter}': {error}");
        }
        return new LiveCapturePacketSource(new LiveCaptureSource(live, loggerFactory.CreateLogger("tripline.capture")));
    }

    private static bool SharpPcapFilterCheck(string filter, out string? error)
    {
        try
        {
            return SharpPcap.LibPcap.PcapDevice.CheckFilter(filter, out error);
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException)
        {
            // Without libpcap the filter cannot be compiled here; capture reports the missing library itself.
            error = null;
            return true;
        }
    }
}

/// <summary>The live source as the agent sees it: a packet source whose per-interface counters reach the metrics.</summary>
internal sealed class LiveCapturePacketSource(LiveCaptureSource inner) : IPacketSource, ICaptureStatistics
{
    public LiveCaptureSource Inner { get; } = inner;

    public CaptureCounters Counters => Inner.Counters;

    public string? NotReadyReason => Inner.NotReadyReason;

    public string InterfaceName(int index) => Inner.InterfaceName(index);

    public bool CapturesEachInterface => Inner.CapturesEachInterface;

    public void Run(ChannelWriter<PacketBatch> output, PacketBatchPool pool, CancellationToken cancellationToken) => Inner.Run(output, pool, cancellationToken);

    public IReadOnlyList<InterfaceCaptureStatistics> InterfaceStatistics()
    {
        var stats = Inner.InterfaceStatistics();
        var result = new InterfaceCaptureStatistics[stats.Count];
        for (int i = 0; i < stats.Count; i++)
        {
            var s = stats[i];
            result[i] = new InterfaceCaptureStatistics(s.Interface, s.Packets, s.Bytes, s.KernelDrops, s.InterfaceDrops);
        }
        return result;
    }

    public void Dispose() => Inner.Dispose();
}
