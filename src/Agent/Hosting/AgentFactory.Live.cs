using Microsoft.Extensions.Logging;
using Tripline.Capture.Sources;

namespace Tripline.Hosting;

internal static partial class AgentFactory
{
    private static IPacketSource CreateLiveSource(AgentOptions options, ILoggerFactory loggerFactory, List<string> problems)
    {
        problems.Add("--pcap: required until live capture is wired in");
        return new PcapFileSource([]);
    }
}
