using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;

namespace Tripline.Correlation.Mesh;

/// <summary>How a pod takes part in an Istio mesh.</summary>
public enum MeshDataplane : byte
{
    None,
    /// <summary>An injected <c>istio-proxy</c> sidecar.</summary>
    Sidecar,
    /// <summary>The ambient data plane (ztunnel): <c>istio.io/dataplane-mode: ambient</c> on the pod or its namespace.</summary>
    Ambient,
}

/// <summary>The mutual TLS mode that PeerAuthentications declare for a pod's port (design.md section 10).</summary>
public enum PeerAuthenticationMode : byte
{
    /// <summary>No PeerAuthentication sets a mode (none applies, or all say UNSET): Istio then accepts both, as PERMISSIVE.</summary>
    None,
    Strict,
    Permissive,
    Disable,
}

/// <summary>What the mesh says of one flow's ends; <see cref="Applies"/> is false when neither end has anything to do with a mesh.</summary>
public readonly record struct MeshFacts(bool SourceMeshed, bool DestinationMeshed, PeerAuthenticationMode PeerAuthentication)
{
    public bool Applies => SourceMeshed || DestinationMeshed || PeerAuthentication != PeerAuthenticationMode.None;

    /// <summary>
    /// A plaintext flow with these facts breaks the mesh's promise: both ends are meshed (their proxies would have
    /// spoken mutual TLS), or the destination's PeerAuthentication is STRICT. Null when plaintext is acceptable here.
    /// </summary>
    public string? PlaintextReason => PeerAuthentication == PeerAuthenticationMode.Strict ? "strict"
        : SourceMeshed && DestinationMeshed ? "meshed"
        : null;

    public static string ModeName(PeerAuthenticationMode mode) => mode switch
    {
        PeerAuthenticationMode.Strict => "STRICT",
        PeerAuthenticationMode.Permissive => "PERMISSIVE",
        PeerAuthenticationMode.Disable => "DISABLE",
        _ => "none",
    };
}

/// <summary>
/// Mesh membership and PeerAuthentication resolved for every pod of one snapshot: a cluster fact, built off the packet
/// path with the rest of the model and asked once per flow event.
/// </summary>
/// <remarks>
/// Membership: a pod with Istio's sidecar (<see cref="PodInfo.IstioSidecar"/>) is meshed by it. Otherwise the label
/// <c>istio.io/dataplane-mode</c> decides, the pod's before its namespace's: <c>ambient</c> enrols it in the ambient data
/// plane, <c>none</c> on the pod opts it out. Host-network pods are never meshed.
/// <para>Modes, as Istio documents PeerAuthentication: a workload policy (the pod's namespace, a non-empty
/// <c>selector.matchLabels</c> that the pod's labels match) before the namespace's policy (no selector) before the
/// mesh-wide policy (no selector, in the root namespace); where several of one scope apply, the oldest. A port's
/// <c>portLevelMtls</c> entry comes first; UNSET at any level inherits from the next.</para>
/// </remarks>
public sealed class MeshView
{
    /// <summary>Istio's default root namespace (<c>meshConfig.rootNamespace</c>), where a selector-less policy is mesh-wide.</summary>
    public const string DefaultRootNamespace = "istio-system";

    private readonly Dictionary<PodInfo, PodMesh> _pods;

    private MeshView(Dictionary<PodInfo, PodMesh> pods) => _pods = pods;

    public static readonly MeshView Empty = new(new Dictionary<PodInfo, PodMesh>(ReferenceEqualityComparer.Instance));

    /// <summary>False when no pod is meshed and no PeerAuthentication exists: every flow's facts are then empty.</summary>
    public bool IsEmpty => _pods.Count == 0;

    public static MeshView Build(ClusterSnapshot snapshot, string rootNamespace = DefaultRootNamespace)
    {
        var byNamespace = snapshot.PeerAuthentications
            .OrderBy(p => p.Metadata?.CreationTimestamp ?? DateTime.MinValue)
            .ThenBy(p => p.Metadata?.Name, StringComparer.Ordinal)
            .GroupBy(p => p.Metadata?.NamespaceProperty ?? "default", StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.ToArray(), StringComparer.Ordinal);
        bool anyLabel = snapshot.Pods.Any(p => p.Labels.Labels.ContainsKey(DataplaneLabel)) || snapshot.Namespaces.Values.Any(n => n.Labels.Labels.ContainsKey(DataplaneLabel));
        if (byNamespace.Count == 0 && !anyLabel && !snapshot.Pods.Any(p => p.IstioSidecar)) return Empty;

        var meshWide = NamespaceWide(byNamespace.GetValueOrDefault(rootNamespace));
        var pods = new Dictionary<PodInfo, PodMesh>(ReferenceEqualityComparer.Instance);
        foreach (var pod in snapshot.Pods)
        {
            var dataplane = DataplaneOf(pod, snapshot.NamespaceLabels(pod.Namespace));
            var inNamespace = byNamespace.GetValueOrDefault(pod.Namespace);
            var workload = inNamespace?.FirstOrDefault(p => p.Spec?.Selector?.MatchLabels is { Count: > 0 } match && match.All(l => pod.Labels.Labels.TryGetValue(l.Key, out var v) && v == l.Value));
            var namespaceWide = NamespaceWide(inNamespace);
            var inherited = Mode(namespaceWide?.Spec?.Mtls?.Mode) is var ns && ns != PeerAuthenticationMode.None ? ns : Mode(meshWide?.Spec?.Mtls?.Mode);
            var own = Mode(workload?.Spec?.Mtls?.Mode) is var w && w != PeerAuthenticationMode.None ? w : inherited;
            (int Port, PeerAuthenticationMode Mode)[] ports = [.. (workload?.Spec?.PortLevelMtls ?? [])
                .Select(e => (Port: int.TryParse(e.Key, out int n) ? n : -1, Mode: Mode(e.Value?.Mode)))
                .Where(e => e.Port > 0 && e.Mode != PeerAuthenticationMode.None)];
            if (dataplane == MeshDataplane.None && own == PeerAuthenticationMode.None && ports.Length == 0) continue;
            pods[pod] = new PodMesh(dataplane, own, ports);
        }
        return new MeshView(pods);
    }

    public const string DataplaneLabel = "istio.io/dataplane-mode";

    public static MeshDataplane DataplaneOf(PodInfo pod, LabelSet namespaceLabels)
    {
        if (pod.HostNetwork) return MeshDataplane.None;
        if (pod.IstioSidecar) return MeshDataplane.Sidecar;
        if (pod.Labels.Labels.TryGetValue(DataplaneLabel, out var mode)) return mode == "ambient" ? MeshDataplane.Ambient : MeshDataplane.None;
        return namespaceLabels.Labels.TryGetValue(DataplaneLabel, out var nsMode) && nsMode == "ambient" ? MeshDataplane.Ambient : MeshDataplane.None;
    }

    public MeshDataplane DataplaneOf(PodInfo pod) => _pods.TryGetValue(pod, out var mesh) ? mesh.Dataplane : MeshDataplane.None;

    /// <summary>The mode the PeerAuthentications declare for <paramref name="pod"/>'s <paramref name="port"/>.</summary>
    public PeerAuthenticationMode ModeOf(PodInfo pod, int port) => _pods.TryGetValue(pod, out var mesh) ? mesh.ModeOf(port) : PeerAuthenticationMode.None;

    /// <summary>The facts of a flow from <paramref name="source"/> to <paramref name="destination"/>'s <paramref name="port"/>.</summary>
    public MeshFacts Facts(in ResolvedEndpoint source, in ResolvedEndpoint destination, int port)
    {
        if (_pods.Count == 0) return default;
        bool sourceMeshed = source.Kind == EndpointKind.Pod && DataplaneOf(source.Pod!) != MeshDataplane.None;
        if (destination.Kind != EndpointKind.Pod || !_pods.TryGetValue(destination.Pod!, out var mesh)) return new MeshFacts(sourceMeshed, false, PeerAuthenticationMode.None);
        return new MeshFacts(sourceMeshed, mesh.Dataplane != MeshDataplane.None, mesh.ModeOf(port));
    }

    private static PeerAuthenticationObject? NamespaceWide(PeerAuthenticationObject[]? policies) =>
        policies?.FirstOrDefault(p => p.Spec?.Selector?.MatchLabels is not { Count: > 0 });

    private static PeerAuthenticationMode Mode(string? mode) => mode switch
    {
        "STRICT" => PeerAuthenticationMode.Strict,
        "PERMISSIVE" => PeerAuthenticationMode.Permissive,
        "DISABLE" => PeerAuthenticationMode.Disable,
        _ => PeerAuthenticationMode.None,
    };

    private sealed record PodMesh(MeshDataplane Dataplane, PeerAuthenticationMode Mode, (int Port, PeerAuthenticationMode Mode)[] Ports)
    {
        public PeerAuthenticationMode ModeOf(int port)
        {
            foreach (var (p, mode) in Ports)
            {
                if (p == port) return mode;
            }
            return Mode;
        }
    }
}
