using Microsoft.Extensions.Logging;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Manifests;

namespace Tripline.Hosting;

internal static partial class AgentFactory
{
    private static IClusterSource CreateKubernetesSource(AgentOptions options, ILoggerFactory loggerFactory, List<string> problems)
    {
        problems.Add("--manifests: required until the Kubernetes API source is wired in");
        return new ManifestClusterSource(ManifestLoader.LoadFromText(""));
    }
}
