using System.Globalization;
using System.Net;
using System.Text.Json;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Kubernetes;

namespace Tripline.Tests.Correlation.Kubernetes;

/// <summary>A clock the test moves by hand; timers stay real, so backoff and coalescing still run.</summary>
public sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    private long _ticks = start.UtcTicks;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public void Set(DateTimeOffset time) => Interlocked.Exchange(ref _ticks, time.UtcTicks);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}

/// <summary>A test API server and a <see cref="KubernetesClusterSource"/> pointed at it through a kubeconfig file.</summary>
public sealed class KubernetesSourceHarness : IAsyncDisposable
{
    public static readonly TimeSpan WaitLimit = TimeSpan.FromSeconds(20);

    private readonly object _gate = new();
    private readonly List<(Func<ClusterSnapshot, bool> Condition, TaskCompletionSource<ClusterSnapshot> Done)> _waiters = [];
    private int _snapshotsPublished;

    private KubernetesSourceHarness(TestApiServer server, KubernetesClusterSource source)
    {
        Server = server;
        Source = source;
        Source.SnapshotChanged += OnSnapshot;
    }

    public TestApiServer Server { get; }
    public KubernetesClusterSource Source { get; }
    public ObjectStore Store => Server.Store;
    public int SnapshotsPublished => Volatile.Read(ref _snapshotsPublished);

    public static KubernetesSourceOptions FastOptions(string kubeconfig) => new()
    {
        KubeconfigPath = kubeconfig,
        PageSize = 500,
        BackoffInitial = TimeSpan.FromMilliseconds(50),
        BackoffMax = TimeSpan.FromMilliseconds(400),
        CoalesceDelay = TimeSpan.FromMilliseconds(20),
        SilentWatchTimeout = TimeSpan.FromSeconds(30),
        StatsLogInterval = TimeSpan.Zero,
    };

    /// <summary>Starts the server, lets <paramref name="seed"/> fill it, then creates and starts the source.</summary>
    public static async Task<KubernetesSourceHarness> StartAsync(
        Action<ObjectStore>? seed = null,
        Func<KubernetesSourceOptions, KubernetesSourceOptions>? configure = null,
        TimeProvider? clock = null,
        Action<TestApiServer>? beforeStart = null,
        bool start = true,
        ILogger<KubernetesClusterSource>? logger = null)
    {
        var server = await TestApiServer.StartAsync(clock);
        seed?.Invoke(server.Store);
        beforeStart?.Invoke(server);
        var options = FastOptions(server.WriteKubeconfig());
        if (configure is not null) options = configure(options);
        var source = new KubernetesClusterSource(options, logger, timeProvider: clock);
        var harness = new KubernetesSourceHarness(server, source);
        if (start) await source.StartAsync(CancellationToken.None);
        return harness;
    }

    /// <summary>Waits for a published snapshot that satisfies the condition (the current one counts).</summary>
    public async Task<ClusterSnapshot> WaitForAsync(Func<ClusterSnapshot, bool> condition, string what, TimeSpan? limit = null)
    {
        var done = new TaskCompletionSource<ClusterSnapshot>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate) _waiters.Add((condition, done));
        var current = Source.Current;
        if (condition(current)) done.TrySetResult(current);
        try
        {
            return await done.Task.WaitAsync(limit ?? WaitLimit);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"timed out waiting for {what}; last snapshot {Source.Current.Version}; status: "
                + string.Join("; ", Source.Status.Select(s => $"{s.Resource} synced={s.Synced} cached={s.ObjectsCached} relists={s.Relists} restarts={s.WatchRestarts} error={s.LastError}")));
        }
        finally
        {
            lock (_gate) _waiters.RemoveAll(w => w.Done == done);
        }
    }

    /// <summary>Waits until the source's snapshot holds exactly what the server holds, for every resource.</summary>
    public async Task<ClusterSnapshot> WaitForConvergenceAsync(TimeSpan? limit = null)
    {
        var expected = ServerDigest();
        try
        {
            return await WaitForAsync(s => Source.IsSynced && SnapshotDigest(s).SequenceEqual(expected), "the source to match the server", limit);
        }
        catch (TimeoutException e)
        {
            var actual = SnapshotDigest(Source.Current);
            var missing = expected.Except(actual).Take(5);
            var extra = actual.Except(expected).Take(5);
            throw new TimeoutException($"{e.Message}\nmissing: {string.Join(" | ", missing)}\nextra: {string.Join(" | ", extra)}", e);
        }
    }

    /// <summary>Waits until every resource the server serves has a watch open on it (faults aimed at watches need one).</summary>
    public Task WaitForWatchesAsync() =>
        WaitUntilAsync(() => Server.OpenWatchCount >= ApiResource.All.Count(Server.IsReadable), "a watch on every resource");

    /// <summary>Polls a condition that no event announces (a retry that has not happened yet), with a limit.</summary>
    public static Task WaitUntilAsync(Func<bool> condition, string what, TimeSpan? limit = null) => WaitUntilAsync(condition, () => what, limit);

    /// <summary>Waits for <paramref name="condition"/>; a timeout says what was awaited, as things stand then.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, Func<string> what, TimeSpan? limit = null)
    {
        var deadline = DateTime.UtcNow + (limit ?? WaitLimit);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting for {what()}");
            await Task.Delay(10);
        }
    }

    public ResourceSyncStatus StatusOf(ApiResource resource) => Source.Status.Single(s => s.Resource == resource.Name);

    public List<string> ServerDigest()
    {
        var digest = new List<string>();
        digest.AddRange(Store.Objects<V1Namespace>().Select(n => Describe(ClusterObjectConverter.ToNamespace(n))));
        digest.AddRange(Store.Objects<V1Pod>().Select(p => Describe(ClusterObjectConverter.ToPod(p))));
        digest.AddRange(Store.Objects<V1Service>().Select(s => Describe(ClusterObjectConverter.ToService(s))));
        digest.AddRange(Store.Objects<V1EndpointSlice>().Select(s => Describe(ClusterObjectConverter.ToEndpointSlice(s))));
        digest.AddRange(Store.Objects<V1Node>().Select(n => Describe(ClusterObjectConverter.ToNode(n))));
        digest.AddRange(Store.Objects<V1NetworkPolicy>().Select(Describe));
        // A custom resource the server does not serve, or forbids, is no part of what a client can know.
        foreach (var resource in ApiResource.AdminPolicies.Where(Server.IsReadable)) digest.AddRange(Store.Objects<AdminPolicyObject>(resource).Select(Describe));
        // ServiceAccounts are read when allowed, and forbidden they are not waited for.
        if (Server.IsReadable(ApiResource.ServiceAccounts)) digest.AddRange(Store.Objects<V1ServiceAccount>().Select(a => Describe(ClusterObjectConverter.ToServiceAccount(a))));
        // A Calico kind comes from Calico's API server where it is readable, else from its CRD, named as Calico shows it.
        for (int i = 0; i < ApiResource.Calico.Count; i++)
        {
            var apiServer = ApiResource.Calico[i];
            var crd = ApiResource.CalicoCrds[i];
            var from = Server.IsReadable(apiServer) ? apiServer : Server.IsReadable(crd) ? crd : null;
            if (from is not null) digest.AddRange(Store.Objects<CalicoObject>(from).Select(o => Describe(Normalized(o))));
        }
        digest.Sort(StringComparer.Ordinal);
        return digest;
    }

    /// <summary>A normalised copy of a stored Calico object (the store owns the original).</summary>
    private static CalicoObject Normalized(CalicoObject stored) =>
        k8s.KubernetesJson.Deserialize<CalicoObject>(k8s.KubernetesJson.Serialize(stored)).Normalize();

    public static List<string> SnapshotDigest(ClusterSnapshot snapshot)
    {
        var digest = new List<string>();
        digest.AddRange(snapshot.Namespaces.Values.Select(Describe));
        // Deleted pods kept for late packets are not part of the server's state.
        digest.AddRange(snapshot.Pods.Where(p => p.DeletedAt is null).Select(Describe));
        digest.AddRange(snapshot.Services.Select(Describe));
        digest.AddRange(snapshot.EndpointSlices.Select(Describe));
        digest.AddRange(snapshot.Nodes.Select(Describe));
        digest.AddRange(snapshot.Policies.Select(Describe));
        digest.AddRange(snapshot.AdminPolicies.Select(Describe));
        digest.AddRange(snapshot.ServiceAccounts.Values.Select(Describe));
        digest.AddRange(snapshot.CalicoObjects.Select(Describe));
        digest.Sort(StringComparer.Ordinal);
        return digest;
    }

    public async ValueTask DisposeAsync()
    {
        await Source.DisposeAsync();
        await Server.DisposeAsync();
    }

    private static string Describe(NamespaceInfo ns) => $"ns {ns.Name} {ns.Labels}";

    private static string Describe(PodInfo pod) =>
        $"pod {pod.Key} {pod.Uid} [{pod.Labels}] {string.Join(",", pod.Ips)} {pod.Phase} {pod.NodeName} {pod.Workload} {pod.Ports.Count}";

    private static string Describe(ServiceInfo service) => $"svc {service.Key} {string.Join(",", service.ClusterIps)} {service.Ports.Count}";

    private static string Describe(EndpointSliceInfo slice) =>
        $"slice {slice.Namespace}/{slice.Name} {slice.ServiceName} {string.Join(",", slice.Endpoints.SelectMany(e => e.Addresses))}";

    private static string Describe(NodeInfo node) => $"node {node.Name} {string.Join(",", node.Addresses)} {node.Labels}";

    private static string Describe(V1NetworkPolicy policy) => $"netpol {policy.Metadata.NamespaceProperty}/{policy.Metadata.Name} {policy.Metadata.ResourceVersion}";

    private static string Describe(AdminPolicyObject policy) =>
        $"admin {policy.Key} {policy.Metadata.Uid} {policy.Metadata.ResourceVersion} {JsonSerializer.Serialize(policy.Spec)}";

    private static string Describe(ServiceAccountInfo account) => $"sa {account.Key} {account.Labels}";

    private static string Describe(CalicoObject calico) =>
        $"calico {calico.Key} {calico.ApiVersion} {calico.Metadata.Uid} {calico.Metadata.ResourceVersion} {JsonSerializer.Serialize(calico.Spec)}";

    private void OnSnapshot(ClusterSnapshot snapshot)
    {
        Interlocked.Increment(ref _snapshotsPublished);
        List<(Func<ClusterSnapshot, bool> Condition, TaskCompletionSource<ClusterSnapshot> Done)> waiters;
        lock (_gate) waiters = [.. _waiters];
        foreach (var (condition, done) in waiters)
        {
            if (!done.Task.IsCompleted && condition(snapshot)) done.TrySetResult(snapshot);
        }
    }
}

/// <summary>Builders for the objects the tests put on the server.</summary>
public static class K8sObjects
{
    public static V1Pod Pod(string ns, string name, string? ip, IDictionary<string, string>? labels = null, string node = "node-a", string phase = "Running", DateTime? created = null) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = name,
            NamespaceProperty = ns,
            Labels = labels is null ? new Dictionary<string, string> { ["app"] = name, ["pod-template-hash"] = "5d8f7" } : new Dictionary<string, string>(labels),
            CreationTimestamp = created,
            OwnerReferences = [new V1OwnerReference { ApiVersion = "apps/v1", Kind = "ReplicaSet", Name = "web-5d8f7", Uid = "rs-1", Controller = true }],
        },
        Spec = new V1PodSpec
        {
            NodeName = node,
            Containers = [new V1Container { Name = "main", Image = "nginx", Ports = [new V1ContainerPort { ContainerPort = 8080, Name = "http" }] }],
        },
        Status = ip is null ? new V1PodStatus { Phase = "Pending" } : new V1PodStatus { Phase = phase, PodIP = ip, PodIPs = [new V1PodIP { Ip = ip }] },
    };

    public static V1Namespace Namespace(string name, IDictionary<string, string>? labels = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Labels = labels is null ? null : new Dictionary<string, string>(labels) },
    };

    public static V1Service Service(string ns, string name, string clusterIp, int port = 80) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns },
        Spec = new V1ServiceSpec
        {
            ClusterIP = clusterIp,
            ClusterIPs = [clusterIp],
            Selector = new Dictionary<string, string> { ["app"] = name },
            Ports = [new V1ServicePort { Port = port, TargetPort = "8080", Protocol = "TCP" }],
        },
    };

    public static V1EndpointSlice Slice(string ns, string service, params string[] podIps) => new()
    {
        Metadata = new V1ObjectMeta { Name = $"{service}-abcde", NamespaceProperty = ns, Labels = new Dictionary<string, string> { ["kubernetes.io/service-name"] = service } },
        AddressType = "IPv4",
        Endpoints = [.. podIps.Select(ip => new V1Endpoint { Addresses = [ip], Conditions = new V1EndpointConditions { Ready = true } })],
        Ports = [new Discoveryv1EndpointPort { Port = 8080, Protocol = "TCP" }],
    };

    public static V1Node Node(string name, string ip) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Labels = new Dictionary<string, string> { ["kubernetes.io/hostname"] = name } },
        Spec = new V1NodeSpec { PodCIDR = "10.244.0.0/24" },
        Status = new V1NodeStatus { Addresses = [new V1NodeAddress { Type = "InternalIP", Address = ip }] },
    };

    public static V1NetworkPolicy DenyAll(string ns, string name = "deny-all") => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = name,
            NamespaceProperty = ns,
            Annotations = new Dictionary<string, string> { ["kubectl.kubernetes.io/last-applied-configuration"] = "{}" },
        },
        Spec = new V1NetworkPolicySpec { PodSelector = new V1LabelSelector(), PolicyTypes = ["Ingress", "Egress"] },
    };

    /// <summary>A small cluster: two namespaces, a node, pods, a Service with its slice, a policy.</summary>
    public static void SeedSmallCluster(ObjectStore store, int pods = 20)
    {
        store.Apply(Namespace("default"));
        store.Apply(Namespace("shop", new Dictionary<string, string> { ["team"] = "shop" }));
        store.Apply(Node("node-a", "192.168.1.10"));
        for (int i = 0; i < pods; i++) store.Apply(Pod(i % 2 == 0 ? "default" : "shop", $"web-{i}", PodIp(i)));
        store.Apply(Service("shop", "web", "10.96.0.10"));
        store.Apply(Slice("shop", "web", PodIp(1), PodIp(3)));
        store.Apply(DenyAll("shop"));
    }

    /// <summary>
    /// An Admin-tier ClusterNetworkPolicy denying ingress from every namespace to namespaces labelled
    /// <c>tripline-test: admin-subject</c>, which no fixture has: these tests are about reading it, and it changes no
    /// verdict of a test that also judges flows.
    /// </summary>
    public static AdminPolicyObject ClusterNetworkPolicy(string name, int priority = 10, string version = "v1beta1", string tier = "Admin") => new()
    {
        ApiVersion = $"{ApiResource.AdminPolicyGroup}/{version}",
        Kind = "ClusterNetworkPolicy",
        Metadata = AdminMetadata(name),
        Spec = Json("""{"tier":"TIER","priority":PRIORITY,"subject":{"namespaces":{"matchLabels":{"tripline-test":"admin-subject"}}},"ingress":[{"name":"deny-all","action":"Deny","from":[{"namespaces":{}}]}]}"""
            .Replace("TIER", tier, StringComparison.Ordinal).Replace("PRIORITY", priority.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)),
    };

    /// <summary>Like <see cref="ClusterNetworkPolicy"/>, in the older spelling.</summary>
    public static AdminPolicyObject AdminNetworkPolicy(string name, int priority = 10) => new()
    {
        ApiVersion = $"{ApiResource.AdminPolicyGroup}/v1alpha1",
        Kind = "AdminNetworkPolicy",
        Metadata = AdminMetadata(name),
        Spec = Json("""{"priority":PRIORITY,"subject":{"namespaces":{"matchLabels":{"tripline-test":"admin-subject"}}},"ingress":[{"name":"deny-all","action":"Deny","from":[{"namespaces":{}}]}]}"""
            .Replace("PRIORITY", priority.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)),
    };

    /// <summary>The cluster's one BaselineAdminNetworkPolicy: its name must be <c>default</c>.</summary>
    public static AdminPolicyObject BaselineAdminNetworkPolicy() => new()
    {
        ApiVersion = $"{ApiResource.AdminPolicyGroup}/v1alpha1",
        Kind = "BaselineAdminNetworkPolicy",
        Metadata = AdminMetadata("default"),
        Spec = Json("""{"subject":{"namespaces":{"matchLabels":{"tripline-test":"admin-subject"}}},"ingress":[{"name":"deny-all","action":"Deny","from":[{"namespaces":{}}]}]}"""),
    };

    public static V1ServiceAccount ServiceAccount(string ns, string name, IDictionary<string, string>? labels = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns, Labels = labels is null ? null : new Dictionary<string, string>(labels) },
    };

    /// <summary>
    /// A Calico object of <paramref name="kind"/> as <paramref name="group"/> serves it (v3 or v1), with the name as it
    /// is stored there. The default spec selects endpoints labelled <c>tripline-test: calico-subject</c>, which no
    /// fixture has, and denies their ingress.
    /// </summary>
    public static CalicoObject Calico(string group, string kind, string name, string? ns = null, string? spec = null) => new()
    {
        ApiVersion = $"{group}/{(group == ApiResource.CalicoGroup ? "v3" : "v1")}",
        Kind = kind,
        Metadata = new V1ObjectMeta
        {
            Name = name,
            NamespaceProperty = ns,
            Annotations = new Dictionary<string, string> { ["kubectl.kubernetes.io/last-applied-configuration"] = "{}" },
        },
        Spec = Json(spec ?? """{"selector":"tripline-test == 'calico-subject'","types":["Ingress"],"ingress":[{"action":"Deny"}]}"""),
    };

    private static V1ObjectMeta AdminMetadata(string name) => new()
    {
        Name = name,
        Annotations = new Dictionary<string, string> { ["kubectl.kubernetes.io/last-applied-configuration"] = "{}" },
    };

    private static JsonElement Json(string text)
    {
        using var document = JsonDocument.Parse(text);
        return document.RootElement.Clone();
    }

    public static string PodIp(int i) => new IPAddress([10, 244, (byte)(i / 250), (byte)(i % 250 + 2)]).ToString();
}
