using Microsoft.Extensions.Logging;
using Tripline.Capture.Sources;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Manifests;
using Tripline.Export;

namespace Tripline.Hosting;

/// <summary>Chooses the agent's parts from its options: any packet source works with any cluster source.</summary>
internal static partial class AgentFactory
{
    /// <summary>Builds the parts, or returns the configuration problems (exit code 2).</summary>
    public static AgentParts Create(AgentOptions options, ILoggerFactory loggerFactory, List<string> problems)
    {
        var logger = loggerFactory.CreateLogger("tripline");
        IClusterSource cluster = CreateClusterSource(options, loggerFactory, problems);
        IPacketSource packets = CreatePacketSource(options, loggerFactory, problems);
        var parts = new AgentParts { ClusterSource = cluster, PacketSource = packets };
        if (options.FlowLog is { } path && FlowLogSinks.Create(path, options.FlowLogOptions, problems) is { } flowLog) parts.Exporters.Add(flowLog);
        Tripline.Http.AgentEndpoints.Add(parts, options);
        logger.LogDebug("parts: cluster={Cluster} packets={Packets}", cluster.GetType().Name, packets.GetType().Name);
        return parts;
    }

    private static IClusterSource CreateClusterSource(AgentOptions options, ILoggerFactory loggerFactory, List<string> problems)
    {
        if (options.Manifests.Count > 0)
        {
            var loaded = ManifestLoader.Load(options.Manifests);
            var logger = loggerFactory.CreateLogger("tripline.manifests");
            foreach (var error in loaded.Errors) logger.LogError("manifest error: {Error}", error.ToString());
            return new ManifestClusterSource(loaded);
        }
        return CreateKubernetesSource(options, loggerFactory, problems);
    }

    private static IPacketSource CreatePacketSource(AgentOptions options, ILoggerFactory loggerFactory, List<string> problems)
    {
        if (options.Pcaps.Count > 0)
        {
            var logger = loggerFactory.CreateLogger("tripline.capture");
            return new PcapFileSource(options.Pcaps, e => logger.LogError("{Error}", e.Message));
        }
        return CreateLiveSource(options, loggerFactory, problems);
    }
}
