using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace Tripline.Correlation.Cluster;

/// <summary>
/// Istio's <c>security.istio.io</c> PeerAuthentication (v1, v1beta1): the mutual TLS mode that the workloads it selects
/// accept, mesh-wide (in the root namespace, no selector), namespace-wide (no selector) or for the pods its
/// <c>selector.matchLabels</c> selects, with per-port modes (<c>portLevelMtls</c>). Read from manifests and the API as a
/// custom resource that most clusters lack; <see cref="Mesh.MeshView"/> resolves the mode of each pod and port.
/// </summary>
public sealed class PeerAuthenticationObject : CustomObject
{
    public const string Group = "security.istio.io";
    public const string KindName = "PeerAuthentication";
    public const string Resource = "peerauthentications";

    /// <summary>The versions read, newest first.</summary>
    public static readonly string[] Versions = ["v1", "v1beta1"];

    [JsonPropertyName("spec")]
    public PeerAuthenticationSpec? Spec { get; set; }

    /// <summary><c>ns/name</c>.</summary>
    [JsonIgnore]
    public string Key => $"{Metadata?.NamespaceProperty}/{Metadata?.Name}";

    public static bool IsKnown(string apiVersion, string kind) =>
        string.Equals(kind, KindName, StringComparison.Ordinal) &&
        apiVersion.StartsWith(Group + "/", StringComparison.Ordinal) &&
        Array.IndexOf(Versions, apiVersion[(Group.Length + 1)..]) >= 0;

    /// <summary>What is wrong with the object, as Istio's validation would refuse it, each naming its field.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (string.IsNullOrEmpty(Metadata?.Name)) problems.Add("metadata.name is missing");
        if (Spec?.Mtls?.Mode is { } mode && !IsMode(mode)) problems.Add($"spec.mtls.mode: '{mode}' is not UNSET, DISABLE, PERMISSIVE or STRICT");
        if (Spec?.PortLevelMtls is { Count: > 0 } ports)
        {
            if (Spec.Selector?.MatchLabels is not { Count: > 0 }) problems.Add("spec.portLevelMtls: needs a workload selector (spec.selector.matchLabels), as Istio requires");
            foreach (var (port, mtls) in ports)
            {
                if (!int.TryParse(port, out int number) || number is < 1 or > 65535) problems.Add($"spec.portLevelMtls: '{port}' is not a port number (1-65535)");
                if (mtls?.Mode is { } portMode && !IsMode(portMode)) problems.Add($"spec.portLevelMtls[{port}].mode: '{portMode}' is not UNSET, DISABLE, PERMISSIVE or STRICT");
            }
        }
        return problems;
    }

    private static bool IsMode(string mode) => mode is "UNSET" or "DISABLE" or "PERMISSIVE" or "STRICT";
}

public sealed class PeerAuthenticationSpec
{
    [JsonPropertyName("selector")]
    public PeerAuthenticationSelector? Selector { get; set; }

    [JsonPropertyName("mtls")]
    public PeerAuthenticationMtls? Mtls { get; set; }

    [JsonPropertyName("portLevelMtls")]
    public Dictionary<string, PeerAuthenticationMtls?>? PortLevelMtls { get; set; }
}

public sealed class PeerAuthenticationSelector
{
    [JsonPropertyName("matchLabels")]
    public Dictionary<string, string>? MatchLabels { get; set; }
}

public sealed class PeerAuthenticationMtls
{
    [JsonPropertyName("mode")]
    public string? Mode { get; set; }
}
