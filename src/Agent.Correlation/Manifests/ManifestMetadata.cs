using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using k8s.Models;
using Tripline.Correlation.Cluster;

namespace Tripline.Correlation.Manifests;

/// <summary>
/// The metadata a manifest is read with: <see cref="ModelJsonContext"/>'s, less the properties the agent never
/// reads. A Pod's spec reaches some three hundred model types (volumes, probes, affinity, security contexts); building
/// their metadata cost most of a replay's start-up, to fill fields that <see cref="ClusterObjectConverter"/>
/// then ignores. A property left out here is skipped in the document like an unknown one, so a value the agent does not
/// read cannot fail the object either. NetworkPolicies are read whole: the policy engine and its validation read every
/// field.
/// <para>The options read scalars as YAML would have typed them for the model (<see cref="YamlJson"/>).</para>
/// </summary>
internal static class ManifestMetadata
{
    // By model type, the JSON names of the properties that ClusterObjectConverter reads; a type not listed keeps all.
    private static readonly Dictionary<Type, string[]> Read = new()
    {
        [typeof(V1ObjectMeta)] = ["name", "namespace", "uid", "labels", "annotations", "ownerReferences", "creationTimestamp", "deletionTimestamp"],
        [typeof(V1OwnerReference)] = ["kind", "name", "controller"],
        [typeof(V1Namespace)] = ["apiVersion", "kind", "metadata"],
        [typeof(V1ServiceAccount)] = ["apiVersion", "kind", "metadata"],
        [typeof(V1Pod)] = ["apiVersion", "kind", "metadata", "spec", "status"],
        [typeof(V1PodSpec)] = ["containers", "initContainers", "nodeName", "hostNetwork", "serviceAccountName"],
        [typeof(V1Container)] = ["name", "ports", "restartPolicy"],
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

    private static readonly JsonSerializerOptions Options = new(ModelJsonContext.Default.Options)
    {
        TypeInfoResolver = ModelJsonContext.Default.WithAddedModifier(KeepRead),
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowReadingFromString,
        Converters = { new YamlJson.ScalarAsString(), new YamlJson.YamlBoolean() },
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
