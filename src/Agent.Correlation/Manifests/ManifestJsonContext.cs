using System.Text.Json.Serialization;
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
