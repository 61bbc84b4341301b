using Tripline.Correlation.Cluster;
using Tripline.Correlation.Manifests;

namespace Tripline.Tests.Correlation.Manifests;

public sealed class ManifestLoaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-manifests-").FullName;

    private const string Cluster = """
        apiVersion: v1
        kind: Namespace
        metadata: { name: shop, labels: { team: shop } }
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: web-7d9f8-abcde
          namespace: shop
          uid: 1111
          labels: { app: web, pod-template-hash: 7d9f8 }
          ownerReferences: [ { apiVersion: apps/v1, kind: ReplicaSet, name: web-7d9f8, uid: rs, controller: true } ]
        spec:
          nodeName: node-a
          containers:
          - name: web
            ports: [ { name: http, containerPort: 8080 }, { name: dns, containerPort: 53, protocol: UDP } ]
        status: { phase: Running, podIP: 10.1.0.5, podIPs: [ { ip: 10.1.0.5 }, { ip: "fd00::5" } ] }
        ---
        apiVersion: v1
        kind: Service
        metadata: { name: web, namespace: shop }
        spec:
          clusterIP: 10.96.0.5
          clusterIPs: [ 10.96.0.5 ]
          selector: { app: web }
          ports: [ { name: http, port: 80, targetPort: http }, { name: alt, port: 81, targetPort: 8081 } ]
        ---
        apiVersion: v1
        kind: Node
        metadata: { name: node-a }
        spec: { podCIDR: 10.1.0.0/24 }
        status: { addresses: [ { type: InternalIP, address: 192.168.0.10 }, { type: Hostname, address: node-a } ] }
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: { name: web, namespace: shop }
        """;

    private string Write(string name, string text)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void Load_MultiDocumentYaml_KeepsWhatTheAgentNeeds()
    {
        var result = ManifestLoader.Load([Write("cluster.yaml", Cluster)]);
        Assert.Empty(result.Errors);
        var snapshot = result.Snapshot;
        var pod = Assert.Single(snapshot.Pods);
        Assert.Equal("shop/web-7d9f8-abcde", pod.Key);
        Assert.Equal("1111", pod.Uid);
        Assert.Equal(["10.1.0.5", "fd00::5"], pod.Ips.Select(ip => ip.ToString()));
        Assert.Equal(new WorkloadRef("Deployment", "web"), pod.Workload);
        Assert.Equal("node-a", pod.NodeName);
        Assert.Contains(new ContainerPortInfo("dns", 53, "UDP"), pod.Ports);
        Assert.Contains(new ContainerPortInfo("http", 8080, "TCP"), pod.Ports);
        var service = Assert.Single(snapshot.Services);
        Assert.Equal("http", service.Ports[0].TargetPortName);
        Assert.Equal(8081, service.Ports[1].TargetPort);
        Assert.Equal("192.168.0.10", Assert.Single(Assert.Single(snapshot.Nodes).Addresses).ToString());
        Assert.Equal("shop", snapshot.Namespaces["shop"].Labels.Labels["kubernetes.io/metadata.name"]);
        Assert.Equal(1, result.IgnoredKinds["apps/v1/Deployment"]);
    }

    [Fact]
    public void Load_KubectlListAsYamlAndJson_LoadsEveryItem()
    {
        Write("list.yaml", """
            apiVersion: v1
            kind: List
            items:
            - apiVersion: v1
              kind: Pod
              metadata: { name: a, namespace: x }
              status: { phase: Running, podIPs: [ { ip: 10.0.0.1 } ] }
            - apiVersion: networking.k8s.io/v1
              kind: NetworkPolicy
              metadata: { name: deny, namespace: x }
              spec: { podSelector: {}, policyTypes: [ Ingress ] }
            """);
        Write("list.json", """
            {"apiVersion":"v1","kind":"PodList","items":[
              {"apiVersion":"v1","kind":"Pod","metadata":{"name":"b","namespace":"y","labels":{"app":"b"}},"status":{"phase":"Running","podIPs":[{"ip":"10.0.0.2"}]}}
            ]}
            """);
        Write("notes.txt", "not a manifest");
        var result = ManifestLoader.Load([_dir]);
        Assert.Empty(result.Errors);
        Assert.Equal(2, result.FilesRead);
        Assert.Equal(["x/a", "y/b"], result.Snapshot.Pods.Select(p => p.Key).Order());
        Assert.Equal("x", Assert.Single(result.Snapshot.Policies).Metadata.NamespaceProperty);
        // Namespaces that objects live in exist for selectors even without a Namespace object.
        Assert.Equal("y", result.Snapshot.NamespaceLabels("y").Labels["kubernetes.io/metadata.name"]);
    }

    [Fact]
    public void Load_BadDocuments_NameFileLineAndObjectAndTheRestStillLoads()
    {
        string path = Write("mixed.yaml", """
            apiVersion: v1
            kind: Pod
            metadata: { name: good-1, namespace: x }
            status: { phase: Running, podIPs: [ { ip: 10.0.0.1 } ] }
            ---
            apiVersion: v1
            kind: Pod
            metadata: { name: broken, namespace: x
            ---
            apiVersion: v1
            kind: Pod
            metadata: { name: bad-ip, namespace: x }
            status: { phase: Running, podIPs: [ { ip: 10.0.0.300 } ] }
            ---
            kind: Pod
            metadata: { name: no-version }
            ---
            apiVersion: v1
            kind: Pod
            metadata: { name: good-2, namespace: x }
            status: { phase: Running, podIPs: [ { ip: 10.0.0.2 } ] }
            """);
        var result = ManifestLoader.Load([path]);
        Assert.Equal(["x/good-1", "x/good-2"], result.Snapshot.Pods.Select(p => p.Key).Order());
        Assert.Equal(3, result.Errors.Count);
        Assert.All(result.Errors, e => Assert.Equal(path, e.File));
        Assert.Contains(result.Errors, e => e.Line >= 6 && e.Line <= 9 && e.Message.Contains("not valid YAML", StringComparison.Ordinal));
        Assert.Contains(result.Errors, e => e.Line == 10 && e.Object == "Pod x/bad-ip" && e.Message.Contains("10.0.0.300", StringComparison.Ordinal));
        Assert.Contains(result.Errors, e => e.Line == 15 && e.Message.Contains("apiVersion and kind are required", StringComparison.Ordinal));
    }

    [Fact]
    public void Load_ScalarsThatJsonTypingReadsDifferently_LoadAsYamlReadsThem()
    {
        // A plain number as a label value, and YAML 1.1's "yes": the typed model still gets strings and booleans.
        var result = ManifestLoader.LoadFromText("""
            apiVersion: v1
            kind: Pod
            metadata: { name: a, namespace: x, labels: { version: 2, release: 1.10, build: 007, canary: true, app: web } }
            spec: { hostNetwork: yes, containers: [ { name: c, ports: [ { containerPort: 80, name: "8080" }, { containerPort: "8443" } ] } ] }
            status: { phase: Running, podIPs: [ { ip: 10.0.0.1 } ] }
            """);
        Assert.Empty(result.Errors);
        var pod = Assert.Single(result.Snapshot.Pods);
        // Label values keep the text they were written with.
        Assert.Equal("2", pod.Labels.Labels["version"]);
        Assert.Equal("1.10", pod.Labels.Labels["release"]);
        Assert.Equal("007", pod.Labels.Labels["build"]);
        Assert.Equal("true", pod.Labels.Labels["canary"]);
        Assert.True(pod.HostNetwork);
        Assert.Equal(["8080", null], pod.Ports.Select(p => p.Name));
        Assert.Equal([80, 8443], pod.Ports.Select(p => p.Port));
    }

    [Fact]
    public void Load_FieldsTheAgentDoesNotRead_CannotFailAPodButTheOnesItReadsStillDo()
    {
        // Resources, volumes and probes are skipped unread: a value there the model could not hold costs nothing.
        // A container port is read, so one that is not a number is still the object's error.
        var result = ManifestLoader.LoadFromText("""
            apiVersion: v1
            kind: Pod
            metadata: { name: a, namespace: x, finalizers: 5, managedFields: yes }
            spec:
              volumes: not-a-list
              containers: [ { name: c, resources: 5, livenessProbe: [], ports: [ { containerPort: 8080, name: http } ] } ]
            status: { phase: Running, podIPs: [ { ip: 10.0.0.1 } ], conditions: yes }
            ---
            apiVersion: v1
            kind: Pod
            metadata: { name: b, namespace: x }
            spec: { containers: [ { name: c, ports: [ { containerPort: http } ] } ] }
            status: { phase: Running, podIPs: [ { ip: 10.0.0.2 } ] }
            """);
        var pod = Assert.Single(result.Snapshot.Pods);
        Assert.Equal("x/a", pod.Key);
        Assert.Equal(8080, Assert.Single(pod.Ports).Port);
        Assert.Equal("Pod x/b", Assert.Single(result.Errors).Object);
    }

    [Fact]
    public void Load_MissingPath_IsAnErrorNamingIt()
    {
        string missing = Path.Combine(_dir, "nope.yaml");
        var result = ManifestLoader.Load([missing]);
        Assert.Equal(missing, Assert.Single(result.Errors).File);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
