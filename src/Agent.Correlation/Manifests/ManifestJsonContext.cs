using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using k8s;
using k8s.Models;

namespace Tripline.Correlation.Manifests;

/// <summary>
/// KubernetesClient's typed models for the kinds Tripline reads, with System.Text.Json metadata generated at build
/// time and the same options and converters as <see cref="KubernetesJson"/>. KubernetesJson builds its metadata by
/// reflection on first use, emitting and compiling accessors for the hundreds of types a Pod spec reaches: a
/// quarter of a second before the first packet of a replay could be judged. The generated metadata is code,
/// compiled ahead of time with the rest of the agent.
/// </summary>
[JsonSourceGenerationOptions(
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    UseStringEnumConverter = true,
    Converters = [typeof(KubernetesJson.Iso8601TimeSpanConverter), typeof(KubernetesJson.KubernetesDateTimeConverter), typeof(KubernetesJson.KubernetesDateTimeOffsetConverter)])]
[JsonSerializable(typeof(V1Namespace))]
[JsonSerializable(typeof(V1Pod))]
[JsonSerializable(typeof(V1Service))]
[JsonSerializable(typeof(V1Node))]
[JsonSerializable(typeof(V1EndpointSlice))]
[JsonSerializable(typeof(V1NetworkPolicy))]
internal sealed partial class ManifestJsonContext : JsonSerializerContext;

/// <summary>
/// The metadata a manifest is read with: <see cref="ManifestJsonContext"/>'s, less the properties the agent never
/// reads. A Pod's spec reaches some three hundred model types (volumes, probes, affinity, security contexts); building
/// their metadata cost most of a replay's start-up, to fill fields that <see cref="Cluster.ClusterObjectConverter"/>
/// then ignores. A property left out here is skipped in the document like an unknown one, so a value the agent does not
/// read cannot fail the object either. NetworkPolicies are read whole: the policy engine and its validation read every
/// field.
/// </summary>
internal static class ManifestMetadata
{
    // By model type, the JSON names of the properties that ClusterObjectConverter reads; a type not listed keeps all.
    private static readonly Dictionary<Type, string[]> Read = new()
    {
        [typeof(V1ObjectMeta)] = ["name", "namespace", "uid", "labels", "ownerReferences", "creationTimestamp", "deletionTimestamp"],
        [typeof(V1OwnerReference)] = ["kind", "name", "controller"],
        [typeof(V1Namespace)] = ["apiVersion", "kind", "metadata"],
        [typeof(V1Pod)] = ["apiVersion", "kind", "metadata", "spec", "status"],
        [typeof(V1PodSpec)] = ["containers", "initContainers", "nodeName", "hostNetwork"],
        [typeof(V1Container)] = ["name", "ports"],
        [typeof(V1PodStatus)] = ["phase", "podIP", "podIPs"],
        [typeof(V1Service)] = ["apiVersion", "kind", "metadata", "spec"],
        [typeof(V1ServiceSpec)] = ["clusterIP", "clusterIPs", "ports", "selector", "type"],
        [typeof(V1Node)] = ["apiVersion", "kind", "metadata", "spec", "status"],
        [typeof(V1NodeSpec)] = ["podCIDR", "podCIDRs"],
        [typeof(V1NodeStatus)] = ["addresses"],
        [typeof(V1EndpointSlice)] = ["apiVersion", "kind", "metadata", "endpoints", "ports"],
        [typeof(V1Endpoint)] = ["addresses", "conditions", "targetRef"],
        [typeof(V1EndpointConditions)] = ["ready"],
        [typeof(V1ObjectReference)] = ["kind", "namespace", "name"],
    };

    private static readonly System.Text.Json.JsonSerializerOptions Options = new(ManifestJsonContext.Default.Options)
    {
        TypeInfoResolver = ManifestJsonContext.Default.WithAddedModifier(KeepRead),
    };

    public static JsonTypeInfo<T> For<T>() =>
        (JsonTypeInfo<T>)Options.GetTypeInfo(typeof(T));

    private static void KeepRead(JsonTypeInfo info)
    {
        if (!Read.TryGetValue(info.Type, out var keep)) return;
        for (int i = info.Properties.Count - 1; i >= 0; i--)
        {
            if (Array.IndexOf(keep, info.Properties[i].Name) < 0) info.Properties.RemoveAt(i);
        }
    }
}
