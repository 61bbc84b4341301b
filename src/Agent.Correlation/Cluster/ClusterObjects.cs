using System.Net;

namespace Tripline.Correlation.Cluster;

/// <summary>A namespace: its name and labels, which namespaceSelectors match.</summary>
public sealed record NamespaceInfo(string Name, LabelSet Labels, string? Uid = null);

/// <summary>A ServiceAccount: Calico's <c>serviceAccountSelector</c> and <c>serviceAccounts.selector</c> match its labels.</summary>
public sealed record ServiceAccountInfo(string Namespace, string Name, LabelSet Labels)
{
    public string Key => $"{Namespace}/{Name}";
}

/// <summary>A port a container declares; named ports are what NetworkPolicy's named ports resolve against.</summary>
public sealed record ContainerPortInfo(string? Name, int Port, string Protocol);

/// <summary>The controller that owns a pod, walked up to the workload a person names (a Deployment, not its ReplicaSet).</summary>
public sealed record WorkloadRef(string Kind, string Name)
{
    public override string ToString() => $"{Kind}/{Name}";
}

/// <summary>What the agent keeps of a pod: enough to name it, select it, and resolve its ports.</summary>
public sealed record PodInfo
{
    public required string Namespace { get; init; }
    public required string Name { get; init; }
    public string Uid { get; init; } = "";
    public LabelSet Labels { get; init; } = LabelSet.Empty;
    public IReadOnlyList<IPAddress> Ips { get; init; } = [];
    public string? NodeName { get; init; }

    /// <summary><c>spec.serviceAccountName</c>; the API server makes it <c>default</c> when a pod names none.</summary>
    public string ServiceAccount { get; init; } = "default";
    public bool HostNetwork { get; init; }
    /// <summary>Pending, Running, Succeeded, Failed or Unknown.</summary>
    public string Phase { get; init; } = "Running";
    public WorkloadRef? Workload { get; init; }
    public IReadOnlyList<ContainerPortInfo> Ports { get; init; } = [];
    /// <summary>
    /// Istio injected its proxy: an <c>istio-proxy</c> container (or native sidecar init container), or the injector's
    /// <c>sidecar.istio.io/status</c> annotation.
    /// </summary>
    public bool IstioSidecar { get; init; }
    public DateTimeOffset? CreatedAt { get; init; }
    /// <summary>When the pod was deleted (set by a live source); its IPs stay attributable for a grace period.</summary>
    public DateTimeOffset? DeletedAt { get; init; }

    public string Key => $"{Namespace}/{Name}";

    /// <summary>Terminated pods hold no IP that traffic could use, whatever their status says.</summary>
    public bool IsTerminated => Phase is "Succeeded" or "Failed";
}

public sealed record ServicePortInfo(string? Name, int Port, string Protocol, int? TargetPort, string? TargetPortName);

public sealed record ServiceInfo
{
    public required string Namespace { get; init; }
    public required string Name { get; init; }
    public IReadOnlyList<IPAddress> ClusterIps { get; init; } = [];
    public IReadOnlyList<ServicePortInfo> Ports { get; init; } = [];
    /// <summary>Null for a Service without a selector (its endpoints are managed by hand).</summary>
    public IReadOnlyDictionary<string, string>? Selector { get; init; }
    public string Type { get; init; } = "ClusterIP";

    public string Key => $"{Namespace}/{Name}";
}

public sealed record EndpointSlicePort(string? Name, int Port, string Protocol);

public sealed record EndpointSliceEndpoint(IReadOnlyList<IPAddress> Addresses, bool Ready, string? PodNamespace, string? PodName);

public sealed record EndpointSliceInfo
{
    public required string Namespace { get; init; }
    public required string Name { get; init; }
    public string? ServiceName { get; init; }
    public IReadOnlyList<EndpointSliceEndpoint> Endpoints { get; init; } = [];
    public IReadOnlyList<EndpointSlicePort> Ports { get; init; } = [];
}

public sealed record NodeInfo
{
    public required string Name { get; init; }
    public IReadOnlyList<IPAddress> Addresses { get; init; } = [];
    public IReadOnlyList<string> PodCidrs { get; init; } = [];
    public LabelSet Labels { get; init; } = LabelSet.Empty;
}
