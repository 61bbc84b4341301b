using System.Text;

namespace Tripline.Tests.Mesh;

/// <summary>
/// A namespace in an Istio mesh, as manifests: pods with an injected sidecar (an <c>istio-proxy</c> container and the
/// <c>sidecar.istio.io/status</c> annotation) or without one, and a namespace-wide PeerAuthentication.
/// </summary>
internal static class MeshManifests
{
    public const string SidecarStatus = """{"initContainers":["istio-init"],"containers":["istio-proxy"],"revision":"default"}""";

    /// <summary>A namespace with sidecar injection on, or with another label of the mesh (<c>istio.io/dataplane-mode: ambient</c>).</summary>
    public static string Namespace(string name, string meshLabel = "istio-injection: enabled") => $"""
        apiVersion: v1
        kind: Namespace
        metadata:
          name: {name}
          labels:
            kubernetes.io/metadata.name: {name}
            {meshLabel}
        ---

        """;

    /// <summary>A pod of Deployment <paramref name="app"/>, with or without an injected sidecar, declaring <paramref name="ports"/>.</summary>
    public static string Pod(string ns, string app, string ip, bool sidecar, string node, params int[] ports) => Pod(ns, app, ip, sidecar, node, null, ports);

    /// <summary>As above, with one more label (<c>istio.io/dataplane-mode: none</c> opts a pod out of ambient).</summary>
    public static string Pod(string ns, string app, string ip, bool sidecar, string node, string? label, params int[] ports)
    {
        var yaml = new StringBuilder();
        yaml.Append($"""
            apiVersion: v1
            kind: Pod
            metadata:
              name: {app}-5d8f7c6b9-x{ip.Replace(".", "", StringComparison.Ordinal)[^4..]}
              namespace: {ns}
              uid: 00000000-0000-0000-0000-{ip.Replace(".", "", StringComparison.Ordinal).PadLeft(12, '0')}
              creationTimestamp: "2020-01-01T00:00:00Z"
              labels:
                app: {app}
                pod-template-hash: 5d8f7c6b9

            """);
        if (label is not null) yaml.Append("    ").Append(label).Append('\n');
        if (sidecar) yaml.Append("  annotations:\n    sidecar.istio.io/status: '").Append(SidecarStatus).Append("'\n");
        yaml.Append($"""
              ownerReferences:
              - apiVersion: apps/v1
                kind: ReplicaSet
                name: {app}-5d8f7c6b9
                uid: rs-{app}
                controller: true
            spec:
              nodeName: {node}
              containers:
              - name: {app}
                image: {app}

            """);
        if (ports.Length > 0)
        {
            yaml.Append("    ports:\n");
            foreach (int port in ports) yaml.Append($"    - containerPort: {port}\n      protocol: TCP\n");
        }
        if (sidecar) yaml.Append("  - name: istio-proxy\n    image: docker.io/istio/proxyv2:1.24.2\n");
        yaml.Append($"""
            status:
              phase: Running
              podIP: {ip}
            ---

            """);
        return yaml.ToString();
    }

    public static string PeerAuthentication(string ns, string name, string mode) => $"""
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata:
          name: {name}
          namespace: {ns}
        spec:
          mtls:
            mode: {mode}
        ---

        """;
}
