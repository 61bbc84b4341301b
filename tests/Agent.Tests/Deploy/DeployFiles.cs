using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace Tripline.Tests.Deploy;

/// <summary>The repository's deployment files, loaded with KubernetesClient's typed models (strict: a misspelt field fails).</summary>
internal static class DeployFiles
{
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    public static string Path(string relative) => System.IO.Path.Combine(RepositoryRoot, relative);

    /// <summary>Every document of <c>deploy/daemonset.yaml</c>, in order.</summary>
    public static IReadOnlyList<object> DaemonSetDocuments() =>
        KubernetesYaml.LoadAllFromString(File.ReadAllText(Path("deploy/daemonset.yaml")), typeMap: null, strict: true);

    public static T Single<T>(this IReadOnlyList<object> documents) => Assert.Single(documents.OfType<T>());

    public static V1DaemonSet DaemonSet() => DaemonSetDocuments().Single<V1DaemonSet>();

    public static V1Container Agent(this V1DaemonSet daemonSet) => Assert.Single(daemonSet.Spec.Template.Spec.Containers);

    /// <summary><c>deploy/podmonitor.yaml</c>: a Prometheus-operator CRD, so typed by the small model below.</summary>
    public static PodMonitor PodMonitor() => PodMonitorDocuments().Single<PodMonitor>();

    /// <summary>Every document of <c>deploy/podmonitor.yaml</c>: the PodMonitor and the binding that lets Prometheus read.</summary>
    public static IReadOnlyList<object> PodMonitorDocuments()
    {
        var typeMap = new Dictionary<string, Type>
        {
            ["monitoring.coreos.com/v1/PodMonitor"] = typeof(PodMonitor),
            ["rbac.authorization.k8s.io/v1/ClusterRoleBinding"] = typeof(V1ClusterRoleBinding),
        };
        return KubernetesYaml.LoadAllFromString(File.ReadAllText(Path("deploy/podmonitor.yaml")), typeMap, strict: true);
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "Agent.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException("Agent.sln not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>The fields of monitoring.coreos.com/v1 PodMonitor that deploy/podmonitor.yaml uses.</summary>
internal sealed class PodMonitor : IKubernetesObject<V1ObjectMeta>
{
    [JsonPropertyName("apiVersion")] public string ApiVersion { get; set; } = "";
    [JsonPropertyName("kind")] public string Kind { get; set; } = "";
    [JsonPropertyName("metadata")] public V1ObjectMeta Metadata { get; set; } = new();
    [JsonPropertyName("spec")] public PodMonitorSpec Spec { get; set; } = new();
}

internal sealed class PodMonitorSpec
{
    [JsonPropertyName("jobLabel")] public string? JobLabel { get; set; }
    [JsonPropertyName("selector")] public V1LabelSelector Selector { get; set; } = new();
    [JsonPropertyName("podMetricsEndpoints")] public List<PodMetricsEndpoint> PodMetricsEndpoints { get; set; } = [];
}

internal sealed class PodMetricsEndpoint
{
    [JsonPropertyName("port")] public string? Port { get; set; }
    [JsonPropertyName("path")] public string? Path { get; set; }
    [JsonPropertyName("interval")] public string? Interval { get; set; }
    [JsonPropertyName("scrapeTimeout")] public string? ScrapeTimeout { get; set; }
    [JsonPropertyName("relabelings")] public List<RelabelConfig> Relabelings { get; set; } = [];
    [JsonPropertyName("scheme")] public string? Scheme { get; set; }
    [JsonPropertyName("bearerTokenFile")] public string? BearerTokenFile { get; set; }
    [JsonPropertyName("tlsConfig")] public TlsConfig? TlsConfig { get; set; }
}

internal sealed class TlsConfig
{
    [JsonPropertyName("insecureSkipVerify")] public bool? InsecureSkipVerify { get; set; }
    [JsonPropertyName("serverName")] public string? ServerName { get; set; }
}

internal sealed class RelabelConfig
{
    [JsonPropertyName("sourceLabels")] public List<string> SourceLabels { get; set; } = [];
    [JsonPropertyName("targetLabel")] public string? TargetLabel { get; set; }
}
