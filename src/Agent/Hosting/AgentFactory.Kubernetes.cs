using k8s.Exceptions;
using Microsoft.Extensions.Logging;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Kubernetes;
using Tripline.Correlation.Manifests;

namespace Tripline.Hosting;

internal static partial class AgentFactory
{
    private static IClusterSource CreateKubernetesSource(AgentOptions options, ILoggerFactory loggerFactory, List<string> problems)
    {
        try
        {
            return new KubernetesClusterSource(
                new KubernetesSourceOptions { KubeconfigPath = options.Kubeconfig },
                loggerFactory.CreateLogger<KubernetesClusterSource>());
        }
        catch (Exception e) when (e is ArgumentException or KubeConfigException or IOException or UnauthorizedAccessException or FormatException)
        {
            // The source's message names the option (or says no service account is mounted).
            string message = e.Message.Replace(" (Parameter 'options')", "", StringComparison.Ordinal);
            problems.Add(options.Kubeconfig is null ? message + "; pass --kubeconfig or --manifests" : message);
            return new ManifestClusterSource(ManifestLoader.LoadFromText(""));
        }
    }
}
