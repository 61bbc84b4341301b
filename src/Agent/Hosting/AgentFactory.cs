using Microsoft.Extensions.Logging;
using Tripline.Capture.Sources;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Manifests;
using System.Net;
using Tripline.Correlation.Kubernetes;
using Tripline.Export;
using Tripline.Http.Auth;

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
        AddDoors(parts, options, loggerFactory, problems);
        logger.LogDebug("parts: cluster={Cluster} packets={Packets}", cluster.GetType().Name, packets.GetType().Name);
        return parts;
    }

    /// <summary>TLS on the listener, and tokens reviewed by the API server (design.md section 12).</summary>
    private static void AddDoors(AgentParts parts, AgentOptions options, ILoggerFactory loggerFactory, List<string> problems)
    {
        var http = options.Http;
        if (problems.Count > 0 || !AgentOptions.TryParseListen(options.Listen, out var listen)) return;
        var logger = loggerFactory.CreateLogger("tripline.http");
        if (http.TlsCertFile is { } cert && http.TlsPrivateKeyFile is { } key)
        {
            try
            {
                parts.ServingCertificate = ServingCertificate.FromFiles(cert, key, logger);
            }
            catch (Exception e) when (e is InvalidOperationException or IOException or UnauthorizedAccessException)
            {
                problems.Add(e.Message);
                return;
            }
        }
        else if (http.Tls(options.FromManifests))
        {
            parts.ServingCertificate = ServingCertificate.SelfSigned(options.Node, listen, logger);
        }
        if (http.Effective(options.FromManifests) == HttpAuthMode.Kubernetes)
        {
            if (parts.ClusterSource is not KubernetesClusterSource kubernetes)
            {
                problems.Add("--http-auth kubernetes: needs cluster state from the API server");
                return;
            }
            parts.Authorization = new BearerAuthorization(kubernetes.AccessReviews, http, logger);
        }
        else if (!IPAddress.IsLoopback(listen.Address))
        {
            logger.LogWarning("--http-auth none on {Listen}: /metrics and /api/v1/flows are open to anyone who reaches this address", options.Listen);
        }
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
