using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace Tripline.Correlation.Cluster;

/// <summary>
/// KubernetesClient's typed models for what Tripline reads, from manifests and from the API server, with
/// System.Text.Json metadata generated at build time and the same options and converters as <see cref="KubernetesJson"/>.
/// KubernetesJson builds metadata by reflection for any type its own generated metadata lacks (the watch events
/// among them), emitting and compiling accessors on first use: start-up time, and in the published Native AOT
/// executable no code to run at all. The generated metadata is code, compiled ahead of time with the rest of the agent.
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
[JsonSerializable(typeof(V1NamespaceList))]
[JsonSerializable(typeof(V1PodList))]
[JsonSerializable(typeof(V1ServiceList))]
[JsonSerializable(typeof(V1NodeList))]
[JsonSerializable(typeof(V1EndpointSliceList))]
[JsonSerializable(typeof(V1NetworkPolicyList))]
[JsonSerializable(typeof(AdminPolicyObject))]
[JsonSerializable(typeof(CustomObjectList<AdminPolicyObject>))]
[JsonSerializable(typeof(CalicoObject))]
[JsonSerializable(typeof(CustomObjectList<CalicoObject>))]
[JsonSerializable(typeof(PeerAuthenticationObject))]
[JsonSerializable(typeof(CustomObjectList<PeerAuthenticationObject>))]
[JsonSerializable(typeof(V1ServiceAccount))]
[JsonSerializable(typeof(V1ServiceAccountList))]
[JsonSerializable(typeof(V1Status))]
[JsonSerializable(typeof(V1TokenReview))]
[JsonSerializable(typeof(V1SubjectAccessReview))]
[JsonSerializable(typeof(k8s.KubeConfigModels.ExecCredentialResponse))]
[JsonSerializable(typeof(Watcher<KubernetesObject>.WatchEvent))]
[JsonSerializable(typeof(Watcher<V1Status>.WatchEvent))]
[JsonSerializable(typeof(Watcher<V1Namespace>.WatchEvent))]
[JsonSerializable(typeof(Watcher<V1Pod>.WatchEvent))]
[JsonSerializable(typeof(Watcher<V1Service>.WatchEvent))]
[JsonSerializable(typeof(Watcher<V1Node>.WatchEvent))]
[JsonSerializable(typeof(Watcher<V1EndpointSlice>.WatchEvent))]
[JsonSerializable(typeof(Watcher<V1NetworkPolicy>.WatchEvent))]
[JsonSerializable(typeof(Watcher<AdminPolicyObject>.WatchEvent))]
[JsonSerializable(typeof(Watcher<CalicoObject>.WatchEvent))]
[JsonSerializable(typeof(Watcher<PeerAuthenticationObject>.WatchEvent))]
[JsonSerializable(typeof(Watcher<V1ServiceAccount>.WatchEvent))]
internal sealed partial class ModelJsonContext : JsonSerializerContext
{
    private static int _registered;

    /// <summary>
    /// Puts this metadata ahead of KubernetesJson's own, so that KubernetesClient reads lists and watch events with
    /// it. Called before the client is made; KubernetesJson's options freeze on first use, and where something used
    /// them earlier in the process (a test host) they are left as they are, reflection and all.
    /// </summary>
    public static void RegisterWithKubernetesJson()
    {
        if (Interlocked.Exchange(ref _registered, 1) == 0)
        {
            KubernetesJson.AddJsonOptions(options =>
            {
                if (!options.IsReadOnly) options.TypeInfoResolverChain.Insert(0, Default);
            });
        }
    }
}

