using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace Tripline.Correlation.Cluster;

/// <summary>
/// An object of a custom resource that KubernetesClient has no model for (the admin policies, Calico's kinds, Istio's
/// PeerAuthentication): its kind, version and metadata, with the spec in the subclass.
/// </summary>
public abstract class CustomObject : IKubernetesObject<V1ObjectMeta>
{
    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = "";

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = "";

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    /// <summary>
    /// Drops the bookkeeping that nothing reads (managed fields, annotations) from an object read from the API, and
    /// names it by <paramref name="kind"/> and <paramref name="apiVersion"/> when it does not say: the objects of a
    /// custom resource's list and watch carry them, but the compilers tell spellings apart by them and must not guess.
    /// </summary>
    public void Trim(string kind, string? apiVersion)
    {
        if (string.IsNullOrEmpty(Kind)) Kind = kind;
        if (string.IsNullOrEmpty(ApiVersion) && apiVersion is not null) ApiVersion = apiVersion;
        if (Metadata is { } meta)
        {
            meta.ManagedFields = null;
            meta.Annotations = null;
        }
    }
}

/// <summary>A list of custom objects, as the API server answers a list of the resource.</summary>
public sealed class CustomObjectList<T> : IKubernetesObject<V1ListMeta>, IItems<T>
    where T : CustomObject
{
    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = "";

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = "";

    [JsonPropertyName("metadata")]
    public V1ListMeta Metadata { get; set; } = new();

    [JsonPropertyName("items")]
    public IList<T> Items { get; set; } = [];
}
