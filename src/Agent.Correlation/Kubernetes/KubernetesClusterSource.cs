using k8s;
using k8s.Exceptions;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Tripline.Correlation.Cluster;

namespace Tripline.Correlation.Kubernetes;

/// <summary>
/// Cluster state from the Kubernetes API: one informer (list, then watch) per resource the agent reads, and a
/// publisher that folds bursts of changes into one new immutable <see cref="ClusterSnapshot"/> per
/// <see cref="KubernetesSourceOptions.CoalesceDelay"/>. Deleted pods stay in the snapshot, with
/// <see cref="PodInfo.DeletedAt"/> set, for <see cref="KubernetesSourceOptions.DeletedPodRetention"/>, so that
/// packets seen just before or after a pod's IP was handed to a new pod are attributed to the right one.
/// The admin policy kinds (<see cref="AdminPolicyObject.Kinds"/>) are custom resources that most clusters lack: each
/// is read when its CRD is installed, and while it is not, the source is synced without it and asks again every
/// <see cref="KubernetesSourceOptions.CustomResourceRecheckInterval"/>. Calico's kinds (<see cref="CalicoObject.Kinds"/>)
/// are read the same way from both of their groups, and each object is kept once (<see cref="SelectCalicoObjects"/>).
/// </summary>
public sealed class KubernetesClusterSource : IClusterSource
{
    /// <summary>
    /// Everything this source asks of the API server: each resource is listed and watched, nothing else. The
    /// DaemonSet's ClusterRole is derived from this list. Calico's kinds are asked of both groups: a cluster may have
    /// Calico's API server (<c>projectcalico.org</c>), its CRDs (<c>crd.projectcalico.org</c>), or both.
    /// </summary>
    public static IReadOnlyList<(string ApiGroup, string Resource, string[] Verbs)> RequiredAccess { get; } =
    [
        ("", "namespaces", ["list", "watch"]),
        ("", "pods", ["list", "watch"]),
        ("", "services", ["list", "watch"]),
        ("discovery.k8s.io", "endpointslices", ["list", "watch"]),
        ("", "nodes", ["list", "watch"]),
        ("networking.k8s.io", "networkpolicies", ["list", "watch"]),
        ("", "serviceaccounts", ["list", "watch"]),
        .. AdminPolicyObject.Kinds.Select(k => (AdminPolicyObject.Group, k.Resource, new[] { "list", "watch" })),
        .. CalicoObject.Kinds.Select(k => (CalicoObject.Group, k.Resource, new[] { "list", "watch" })),
        .. CalicoObject.Kinds.Select(k => (CalicoObject.CrdGroup, k.Resource, new[] { "list", "watch" })),
        (PeerAuthenticationObject.Group, PeerAuthenticationObject.Resource, ["list", "watch"]),
    ];

    private readonly KubernetesSourceOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly IKubernetes _client;
    private readonly ResourceInformer<V1Namespace, NamespaceInfo> _namespaces;
    private readonly ResourceInformer<V1Pod, PodInfo> _pods;
    private readonly ResourceInformer<V1Service, ServiceInfo> _services;
    private readonly ResourceInformer<V1EndpointSlice, EndpointSliceInfo> _endpointSlices;
    private readonly ResourceInformer<V1Node, NodeInfo> _nodes;
    private readonly ResourceInformer<V1NetworkPolicy, V1NetworkPolicy> _policies;
    private readonly ResourceInformer<V1ServiceAccount, ServiceAccountInfo> _serviceAccounts;
    private readonly ResourceInformer<AdminPolicyObject, AdminPolicyObject>[] _adminPolicies;
    private readonly ResourceInformer<CalicoObject, CalicoObject>[] _calico;
    private readonly ResourceInformer<CalicoObject, CalicoObject>[] _calicoCrds;
    private readonly ResourceInformer<PeerAuthenticationObject, PeerAuthenticationObject> _peerAuthentications;
    private readonly IResourceInformer[] _informers;
    private readonly object _deletedGate = new();
    private readonly List<PodInfo> _deletedPods = [];
    private readonly SemaphoreSlim _dirtySignal = new(0, 1);
    private readonly TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _tasks = [];
    private ClusterSnapshot _current = ClusterSnapshot.Empty;
    private int _dirty;
    private int _settledCount;
    private long _version;
    private int _started;

    /// <summary>
    /// Builds the client from <see cref="KubernetesSourceOptions.KubeconfigPath"/>, or from the pod's service account
    /// when it is null. Throws <see cref="ArgumentException"/> naming every bad option or the unreadable kubeconfig;
    /// nothing is contacted until <see cref="StartAsync"/>.
    /// </summary>
    public KubernetesClusterSource(KubernetesSourceOptions options, ILogger<KubernetesClusterSource>? logger = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate();
        if (errors.Count > 0) throw new ArgumentException(string.Join("; ", errors), nameof(options));
        _options = options;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
        ModelJsonContext.RegisterWithKubernetesJson();
        _client = new k8s.Kubernetes(BuildConfiguration(options));
        AccessReviews = new KubernetesAccessReviews(_client);

        var core = _client.CoreV1;
        _namespaces = Informer<V1Namespace, NamespaceInfo>(
            "namespaces",
            async (next, limit, ct) => Page(await core.ListNamespaceAsync(continueParameter: next, limit: limit, cancellationToken: ct).ConfigureAwait(false)),
            (version, timeout, onError, ct) => core.WatchListNamespaceAsync(allowWatchBookmarks: true, resourceVersion: version, timeoutSeconds: timeout, onError: onError, cancellationToken: ct),
            ClusterObjectConverter.ToNamespace);

        var compactor = new PodCompactor();
        _pods = new ResourceInformer<V1Pod, PodInfo>(
            "pods",
            async (next, limit, ct) => Page(await core.ListPodForAllNamespacesAsync(continueParameter: next, limit: limit, cancellationToken: ct).ConfigureAwait(false)),
            (version, timeout, onError, ct) => core.WatchListPodForAllNamespacesAsync(allowWatchBookmarks: true, resourceVersion: version, timeoutSeconds: timeout, onError: onError, cancellationToken: ct),
            compactor.Convert,
            options,
            _time,
            _logger)
        {
            ApiGroup = GroupOf("pods"),
            Removed = RetainDeletedPod,
        };
        Wire(_pods);

        _services = Informer<V1Service, ServiceInfo>(
            "services",
            async (next, limit, ct) => Page(await core.ListServiceForAllNamespacesAsync(continueParameter: next, limit: limit, cancellationToken: ct).ConfigureAwait(false)),
            (version, timeout, onError, ct) => core.WatchListServiceForAllNamespacesAsync(allowWatchBookmarks: true, resourceVersion: version, timeoutSeconds: timeout, onError: onError, cancellationToken: ct),
            ClusterObjectConverter.ToService);

        var discovery = _client.DiscoveryV1;
        _endpointSlices = Informer<V1EndpointSlice, EndpointSliceInfo>(
            "endpointslices",
            async (next, limit, ct) => Page(await discovery.ListEndpointSliceForAllNamespacesAsync(continueParameter: next, limit: limit, cancellationToken: ct).ConfigureAwait(false)),
            (version, timeout, onError, ct) => discovery.WatchListEndpointSliceForAllNamespacesAsync(allowWatchBookmarks: true, resourceVersion: version, timeoutSeconds: timeout, onError: onError, cancellationToken: ct),
            ClusterObjectConverter.ToEndpointSlice);

        _nodes = Informer<V1Node, NodeInfo>(
            "nodes",
            async (next, limit, ct) => Page(await core.ListNodeAsync(continueParameter: next, limit: limit, cancellationToken: ct).ConfigureAwait(false)),
            (version, timeout, onError, ct) => core.WatchListNodeAsync(allowWatchBookmarks: true, resourceVersion: version, timeoutSeconds: timeout, onError: onError, cancellationToken: ct),
            ClusterObjectConverter.ToNode);

        var networking = _client.NetworkingV1;
        _policies = Informer<V1NetworkPolicy, V1NetworkPolicy>(
            "networkpolicies",
            async (next, limit, ct) => Page(await networking.ListNetworkPolicyForAllNamespacesAsync(continueParameter: next, limit: limit, cancellationToken: ct).ConfigureAwait(false)),
            (version, timeout, onError, ct) => networking.WatchListNetworkPolicyForAllNamespacesAsync(allowWatchBookmarks: true, resourceVersion: version, timeoutSeconds: timeout, onError: onError, cancellationToken: ct),
            TrimPolicy);

        // A cluster always serves ServiceAccounts, so they are a built-in resource, listed before the source is synced.
        // But they only refine verdicts (Calico's service account selectors match their labels; a pod's account name
        // is on the pod), and an older ClusterRole has no rule for them: a 403 is logged and retried without keeping
        // the agent from being ready, since judging everything else beats judging nothing until the role is re-applied.
        _serviceAccounts = new ResourceInformer<V1ServiceAccount, ServiceAccountInfo>(
            "serviceaccounts",
            async (next, limit, ct) => Page(await core.ListServiceAccountForAllNamespacesAsync(continueParameter: next, limit: limit, cancellationToken: ct).ConfigureAwait(false)),
            (version, timeout, onError, ct) => core.WatchListServiceAccountForAllNamespacesAsync(allowWatchBookmarks: true, resourceVersion: version, timeoutSeconds: timeout, onError: onError, cancellationToken: ct),
            ClusterObjectConverter.ToServiceAccount,
            options,
            _time,
            _logger)
        {
            ApiGroup = GroupOf("serviceaccounts"),
            Optional = true,
            WhenForbidden = "Calico's service account selectors match accounts by name only, not by their labels,",
        };
        Wire(_serviceAccounts);

        _adminPolicies = [.. AdminPolicyObject.Kinds.Select(k => AdminPolicyInformer(k.Kind, k.Resource, k.Versions))];
        _calico = [.. CalicoObject.Kinds.Select(k => CalicoInformer(k.Kind, k.Resource, CalicoObject.Group))];
        _calicoCrds = [.. CalicoObject.Kinds.Select(k => CalicoInformer(k.Kind, k.Resource, CalicoObject.CrdGroup))];

        _peerAuthentications = PeerAuthenticationInformer();

        _informers = [_namespaces, _pods, _services, _endpointSlices, _nodes, _policies, _serviceAccounts, .. _adminPolicies, .. _calico, .. _calicoCrds, _peerAuthentications];
    }

    /// <summary>TokenReview and SubjectAccessReview with the source's own client and credentials.</summary>
    public IAccessReviews AccessReviews { get; }

    public ClusterSnapshot Current => Volatile.Read(ref _current);

    public bool IsSynced => _synced.Task.IsCompleted;

    public IReadOnlyList<ResourceSyncStatus> Status => [.. _informers.Select(i => i.Status)];

    /// <summary>Deleted pods currently kept for attribution of late packets.</summary>
    public int DeletedPodsRetained
    {
        get
        {
            lock (_deletedGate) return _deletedPods.Count;
        }
    }

    public event Action<ClusterSnapshot>? SnapshotChanged;

    /// <summary>The API group and resource of each informer, in <see cref="RequiredAccess"/> order.</summary>
    internal IReadOnlyList<(string ApiGroup, string Resource)> InformedResources => [.. _informers.Select(i => (i.ApiGroup, i.RuleResource))];

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _started, 1) != 0) throw new InvalidOperationException("The source has already been started.");
        var stopping = _stopping.Token;
        foreach (var informer in _informers) _tasks.Add(Task.Run(() => informer.RunAsync(stopping), CancellationToken.None));
        _tasks.Add(Task.Run(() => PublishLoopAsync(stopping), CancellationToken.None));
        if (_options.StatsLogInterval > TimeSpan.Zero) _tasks.Add(Task.Run(() => StatsLoopAsync(stopping), CancellationToken.None));
        return Task.CompletedTask;
    }

    /// <summary>
    /// Completes once the source waits for no resource (<see cref="ResourceSyncStatus.Awaited"/>) and a snapshot
    /// holding all of them is current: every resource listed, but for optional ones (the admin policy and Calico kinds,
    /// ServiceAccounts) found not installed or forbidden, which join the snapshot whenever they can be read.
    /// </summary>
    public Task WaitForSyncAsync(CancellationToken cancellationToken) => _synced.Task.WaitAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested) return;
        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(_tasks).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Stopping is what was asked for.
        }
        _client.Dispose();
        _stopping.Dispose();
        _dirtySignal.Dispose();
    }

    private static readonly TimeSpan ExecPluginTimeout = TimeSpan.FromSeconds(30);

    private static KubernetesClientConfiguration BuildConfiguration(KubernetesSourceOptions options)
    {
        try
        {
            if (options.KubeconfigPath is { } path) return ExecCredentialPlugin.BuildConfiguration(KubeconfigReader.Read(path), options.Context, ExecPluginTimeout);
            if (KubernetesClientConfiguration.IsInCluster()) return KubernetesClientConfiguration.InClusterConfig();
        }
        catch (Exception e) when (e is KubeConfigException or KubernetesClientException or IOException or UnauthorizedAccessException or YamlDotNet.Core.YamlException or System.Text.Json.JsonException)
        {
            string what = options.KubeconfigPath is null ? "in-cluster configuration" : $"--kubeconfig: '{options.KubeconfigPath}'";
            throw new ArgumentException($"{what}: {e.Message}", nameof(options), e);
        }
        throw new ArgumentException("--kubeconfig: not running in a pod (no service account) and no kubeconfig given", nameof(options));
    }

    private ResourceInformer<TObject, TItem> Informer<TObject, TItem>(string resource, ListPageAsync<TObject> list, WatchFrom<TObject> watch, Func<TObject, TItem> convert)
        where TObject : class, IKubernetesObject<V1ObjectMeta>
        where TItem : class
    {
        var informer = new ResourceInformer<TObject, TItem>(resource, list, watch, convert, _options, _time, _logger) { ApiGroup = GroupOf(resource) };
        Wire(informer);
        return informer;
    }

    /// <summary>One kind of <c>policy.networking.k8s.io</c>, read at the newest version the server serves, if any.</summary>
    private ResourceInformer<AdminPolicyObject, AdminPolicyObject> AdminPolicyInformer(string kind, string resource, string[] versions)
    {
        var api = new CustomResourceClient<AdminPolicyObject, CustomObjectList<AdminPolicyObject>>(_client.CustomObjects, AdminPolicyObject.Group, resource, kind, versions, _logger);
        var informer = new ResourceInformer<AdminPolicyObject, AdminPolicyObject>(resource, api.ListAsync, api.WatchAsync, p => Trimmed(p, api), _options, _time, _logger)
        {
            ApiGroup = AdminPolicyObject.Group,
            OptionalKind = kind,
        };
        Wire(informer);
        return informer;
    }

    /// <summary>
    /// One Calico kind in one of its groups: <c>projectcalico.org/v3</c>, served by Calico's API server, or
    /// <c>crd.projectcalico.org/v1</c>, the CRDs that store the same objects. Both are optional custom resources, named
    /// <c>plural.group</c> in logs and metrics since the plurals are the same in both groups (and networkpolicies is
    /// Kubernetes' too). What the log says of each group's absence tells where the kind's objects come from instead.
    /// </summary>
    private ResourceInformer<CalicoObject, CalicoObject> CalicoInformer(string kind, string resource, string group)
    {
        bool apiServer = group == CalicoObject.Group;
        string name = $"{resource}.{group}";
        var api = new CustomResourceClient<CalicoObject, CustomObjectList<CalicoObject>>(_client.CustomObjects, group, resource, kind, [apiServer ? "v3" : "v1"], _logger, name);
        string objects = $"Calico {KubernetesSourceLog.PluralOf(kind)}";
        string fromCrds = $"{objects} are read from their CRDs ({CalicoObject.CrdGroup}/v1) instead";
        string onlyFromApiServer = $"{objects} are judged only if {CalicoObject.Group}/v3 serves them";
        var informer = new ResourceInformer<CalicoObject, CalicoObject>(name, api.ListAsync, api.WatchAsync, c => TrimCalico(c, api), _options, _time, _logger)
        {
            ApiGroup = group,
            RuleResource = resource,
            OptionalKind = kind,
            ServedNotes = apiServer
                ? (fromCrds + ", where installed", $"{objects} are read from it from here on, not from their CRDs")
                : (onlyFromApiServer, $"{objects} are read from it while {CalicoObject.Group}/v3 does not serve them"),
            WhenForbidden = apiServer ? fromCrds : onlyFromApiServer,
        };
        Wire(informer);
        return informer;
    }

    /// <summary>
    /// Istio's PeerAuthentications (<c>security.istio.io</c>, v1 or else v1beta1): the mesh audit's "what it should be".
    /// An optional custom resource like the admin kinds: a cluster without Istio lacks it, and that is logged once.
    /// </summary>
    private ResourceInformer<PeerAuthenticationObject, PeerAuthenticationObject> PeerAuthenticationInformer()
    {
        var api = new CustomResourceClient<PeerAuthenticationObject, CustomObjectList<PeerAuthenticationObject>>(_client.CustomObjects, PeerAuthenticationObject.Group,
            PeerAuthenticationObject.Resource, PeerAuthenticationObject.KindName, PeerAuthenticationObject.Versions, _logger);
        var informer = new ResourceInformer<PeerAuthenticationObject, PeerAuthenticationObject>(PeerAuthenticationObject.Resource, api.ListAsync, api.WatchAsync, p => Trimmed(p, api), _options, _time, _logger)
        {
            ApiGroup = PeerAuthenticationObject.Group,
            OptionalKind = PeerAuthenticationObject.KindName,
            WhenForbidden = "Istio's PeerAuthentications are not read, so flows carry no mutual TLS mode (peer_authentication none),",
        };
        Wire(informer);
        return informer;
    }

    private static string GroupOf(string resource) => RequiredAccess.First(a => a.Resource == resource).ApiGroup;

    private void Wire(IResourceInformer informer)
    {
        informer.Changed += MarkDirty;
        informer.Settled += OnSettled;
    }

    private static ListPage<T> Page<T>(IItems<T> list) where T : class
    {
        var meta = (list as IMetadata<V1ListMeta>)?.Metadata;
        return new ListPage<T>(list.Items ?? [], meta?.ContinueProperty, meta?.ResourceVersion);
    }

    /// <summary>
    /// Custom objects (admin policies, PeerAuthentications) are kept whole for their compilers, less the bookkeeping,
    /// named by the kind and version they were read as when they do not say (<see cref="CustomObject.Trim"/>).
    /// </summary>
    private static T Trimmed<T>(T custom, CustomResourceClient<T, CustomObjectList<T>> api) where T : CustomObject
    {
        custom.Trim(api.Kind, api.ServedVersion is { } version ? $"{api.Group}/{version}" : null);
        return custom;
    }

    /// <summary>
    /// Calico's objects are kept whole for their compiler, less the bookkeeping, named by the kind and version they were
    /// read as when they do not say (as admin policies are), and normalised as manifests are
    /// (<see cref="CalicoObject.Normalize"/>): a v1 CRD's default-tier policy loses its <c>default.</c> prefix, so that
    /// it has the name and key that Calico's API server gives it. The informer keys its cache by the name as stored,
    /// which is what a DELETED event names.
    /// </summary>
    private static CalicoObject TrimCalico(CalicoObject calico, CustomResourceClient<CalicoObject, CustomObjectList<CalicoObject>> api)
    {
        return Trimmed(calico, api).Normalize();
    }

    /// <summary>
    /// Calico's objects, each once. Where Calico's API server has listed a kind, its <c>projectcalico.org/v3</c> objects
    /// are the kind's: the CRDs hold the same objects in storage form (undefaulted, and in older versions with a
    /// <c>default.</c> prefix), so their copies are left out. Elsewhere (no API server, or it is forbidden or not yet
    /// listed) the kind's <c>crd.projectcalico.org/v1</c> objects are. Objects that come to the same key keep the first.
    /// </summary>
    internal static List<CalicoObject> SelectCalicoObjects(IEnumerable<(bool ApiServerSynced, IReadOnlyList<CalicoObject> ApiServer, IReadOnlyList<CalicoObject> Crds)> kinds)
    {
        var byKey = new Dictionary<string, CalicoObject>(StringComparer.Ordinal);
        foreach (var (apiServerSynced, apiServer, crds) in kinds)
        {
            foreach (var calico in apiServerSynced ? apiServer : crds) byKey.TryAdd(calico.Key, calico);
        }
        return [.. byKey.Values];
    }

    /// <summary>Policies are kept whole for the engine, less what only the API server's bookkeeping needs.</summary>
    private static V1NetworkPolicy TrimPolicy(V1NetworkPolicy policy)
    {
        if (policy.Metadata is { } meta)
        {
            meta.ManagedFields = null;
            meta.Annotations = null;
        }
        return policy;
    }

    private void RetainDeletedPod(PodInfo pod, DateTimeOffset deletedAt)
    {
        // Only a pod IP can be handed to another pod; a host-network pod's IP is its node's.
        if (pod.HostNetwork || pod.Ips.Count == 0 || _options.DeletedPodRetention <= TimeSpan.Zero) return;
        lock (_deletedGate) _deletedPods.Add(pod with { DeletedAt = deletedAt });
    }

    private void OnSettled()
    {
        if (Interlocked.Increment(ref _settledCount) == _informers.Length) MarkDirty();
    }

    private void MarkDirty()
    {
        if (Interlocked.Exchange(ref _dirty, 1) == 0)
        {
            try
            {
                _dirtySignal.Release();
            }
            catch (ObjectDisposedException)
            {
                // Disposed while an informer was finishing.
            }
        }
    }

    private async Task PublishLoopAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                await _dirtySignal.WaitAsync(cancellationToken).ConfigureAwait(false);
                if (_options.CoalesceDelay > TimeSpan.Zero) await Task.Delay(_options.CoalesceDelay, _time, cancellationToken).ConfigureAwait(false);
                // Cleared before reading the caches: a change from here on marks the next round.
                Interlocked.Exchange(ref _dirty, 0);
                bool allSynced = Volatile.Read(ref _settledCount) == _informers.Length;
                var snapshot = BuildSnapshot();
                Volatile.Write(ref _current, snapshot);
                if (allSynced && _synced.TrySetResult()) KubernetesSourceLog.AllSynced(_logger, snapshot.Version);
                try
                {
                    SnapshotChanged?.Invoke(snapshot);
                }
                catch (Exception e)
                {
                    KubernetesSourceLog.PublishFailed(_logger, e);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    private ClusterSnapshot BuildSnapshot()
    {
        // Live pods are read before the deleted ones: an informer moves a pod from its cache to the deleted list under
        // its own lock, so in this order a pod can be seen twice (which the index resolves) but never lost.
        var pods = _pods.CopyItems();
        var cutoff = _time.GetUtcNow() - _options.DeletedPodRetention;
        lock (_deletedGate)
        {
            _deletedPods.RemoveAll(p => p.DeletedAt < cutoff);
            pods.InsertRange(0, _deletedPods);
        }
        return new ClusterSnapshot(
            Interlocked.Increment(ref _version),
            _namespaces.CopyItems(),
            pods,
            _services.CopyItems(),
            _endpointSlices.CopyItems(),
            _nodes.CopyItems(),
            _policies.CopyItems(),
            _adminPolicies.SelectMany(i => i.CopyItems()),
            // Whether the API server's informer is synced is read before its items: if it stops being synced in
            // between, it empties its cache and raises Changed, and the next snapshot reads the CRDs.
            SelectCalicoObjects(_calico.Select((informer, i) => (informer.Synced, (IReadOnlyList<CalicoObject>)informer.CopyItems(), (IReadOnlyList<CalicoObject>)_calicoCrds[i].CopyItems()))),
            _serviceAccounts.CopyItems(),
            _peerAuthentications.CopyItems());
    }

    private async Task StatsLoopAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_options.StatsLogInterval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                var now = _time.GetUtcNow();
                foreach (var status in Status)
                {
                    double age = status.LastEventAt is { } last ? (now - last).TotalSeconds : double.NaN;
                    KubernetesSourceLog.Stats(_logger, status.Resource, status.Synced, status.ObjectsCached, status.EventsApplied, status.Relists, status.WatchRestarts, age, status.LastError);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }
}
