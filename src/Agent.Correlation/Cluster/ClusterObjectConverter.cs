using System.Net;
using k8s.Models;

namespace Tripline.Correlation.Cluster;

/// <summary>
/// Turns KubernetesClient's typed objects into the few fields the agent keeps. Shared by the manifest source and the
/// live source so that both read a pod the same way.
/// </summary>
public static class ClusterObjectConverter
{
    public const string NamespaceNameLabel = "kubernetes.io/metadata.name";

    public static NamespaceInfo ToNamespace(V1Namespace ns)
    {
        string name = ns.Metadata?.Name ?? throw new InvalidDataException("metadata.name is missing");
        var labels = new Dictionary<string, string>(ns.Metadata.Labels ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        // The API server sets this label on every namespace; manifests written by hand may omit it.
        labels.TryAdd(NamespaceNameLabel, name);
        return new NamespaceInfo(name, LabelSet.Intern(labels), ns.Metadata.Uid);
    }

    public static ServiceAccountInfo ToServiceAccount(V1ServiceAccount account)
    {
        var meta = account.Metadata ?? throw new InvalidDataException("metadata is missing");
        string name = meta.Name ?? throw new InvalidDataException("metadata.name is missing");
        return new ServiceAccountInfo(string.IsNullOrEmpty(meta.NamespaceProperty) ? "default" : meta.NamespaceProperty, name, LabelSet.Intern(meta.Labels));
    }

    public static PodInfo ToPod(V1Pod pod)
    {
        var meta = pod.Metadata ?? throw new InvalidDataException("metadata is missing");
        string name = meta.Name ?? throw new InvalidDataException("metadata.name is missing");
        var ips = new List<IPAddress>();
        if (pod.Status?.PodIPs is { Count: > 0 } podIps)
        {
            foreach (var ip in podIps) ips.Add(ParseIp(ip.Ip, "status.podIPs"));
        }
        else if (!string.IsNullOrEmpty(pod.Status?.PodIP))
        {
            ips.Add(ParseIp(pod.Status.PodIP, "status.podIP"));
        }

        var ports = new List<ContainerPortInfo>();
        foreach (var container in (pod.Spec?.Containers ?? []).Concat(pod.Spec?.InitContainers ?? []))
        {
            foreach (var port in container.Ports ?? [])
            {
                ports.Add(new ContainerPortInfo(port.Name, port.ContainerPort, string.IsNullOrEmpty(port.Protocol) ? "TCP" : port.Protocol.ToUpperInvariant()));
            }
        }

        bool sidecar = (pod.Spec?.Containers ?? []).Any(c => c.Name == "istio-proxy")
            || (pod.Spec?.InitContainers ?? []).Any(c => c.Name == "istio-proxy" && c.RestartPolicy == "Always")
            || meta.Annotations?.ContainsKey("sidecar.istio.io/status") == true;
        return new PodInfo
        {
            Namespace = string.IsNullOrEmpty(meta.NamespaceProperty) ? "default" : meta.NamespaceProperty,
            Name = name,
            Uid = meta.Uid ?? "",
            Labels = LabelSet.Intern(meta.Labels),
            Ips = ips,
            NodeName = pod.Spec?.NodeName,
            ServiceAccount = string.IsNullOrEmpty(pod.Spec?.ServiceAccountName) ? "default" : pod.Spec.ServiceAccountName,
            HostNetwork = pod.Spec?.HostNetwork ?? false,
            Phase = pod.Status?.Phase ?? (ips.Count > 0 ? "Running" : "Pending"),
            Workload = WorkloadOf(meta),
            Ports = ports,
            IstioSidecar = sidecar,
            CreatedAt = meta.CreationTimestamp is { } created ? new DateTimeOffset(DateTime.SpecifyKind(created, DateTimeKind.Utc)) : null,
            DeletedAt = meta.DeletionTimestamp is { } deleted ? new DateTimeOffset(DateTime.SpecifyKind(deleted, DateTimeKind.Utc)) : null,
        };
    }

    /// <summary>
    /// The workload a person would name. A ReplicaSet created by a Deployment is named after it plus the pod
    /// template hash, and a Job created by a CronJob after it plus a schedule number: both are walked up.
    /// </summary>
    public static WorkloadRef? WorkloadOf(V1ObjectMeta meta)
    {
        var owner = meta.OwnerReferences?.FirstOrDefault(o => o.Controller == true) ?? meta.OwnerReferences?.FirstOrDefault();
        if (owner is null) return null;
        if (owner.Kind == "ReplicaSet" && meta.Labels?.TryGetValue("pod-template-hash", out var hash) == true
            && owner.Name.EndsWith("-" + hash, StringComparison.Ordinal))
        {
            return new WorkloadRef("Deployment", owner.Name[..^(hash.Length + 1)]);
        }
        if (owner.Kind == "Job")
        {
            int dash = owner.Name.LastIndexOf('-');
            if (dash > 0 && owner.Name.Length - dash - 1 >= 8 && owner.Name.AsSpan(dash + 1).ContainsAnyExceptInRange('0', '9') == false)
            {
                return new WorkloadRef("CronJob", owner.Name[..dash]);
            }
        }
        return new WorkloadRef(owner.Kind, owner.Name);
    }

    public static ServiceInfo ToService(V1Service service)
    {
        var meta = service.Metadata ?? throw new InvalidDataException("metadata is missing");
        string name = meta.Name ?? throw new InvalidDataException("metadata.name is missing");
        var ips = new List<IPAddress>();
        var declared = service.Spec?.ClusterIPs is { Count: > 0 } list ? list : (service.Spec?.ClusterIP is { } one ? [one] : []);
        foreach (var ip in declared)
        {
            if (string.IsNullOrEmpty(ip) || ip == "None") continue;
            ips.Add(ParseIp(ip, "spec.clusterIPs"));
        }
        var ports = new List<ServicePortInfo>();
        foreach (var port in service.Spec?.Ports ?? [])
        {
            int? targetNumber = null;
            string? targetName = null;
            string? target = port.TargetPort?.Value;
            if (string.IsNullOrEmpty(target)) targetNumber = port.Port;
            else if (int.TryParse(target, out int number)) targetNumber = number;
            else targetName = target;
            ports.Add(new ServicePortInfo(port.Name, port.Port, string.IsNullOrEmpty(port.Protocol) ? "TCP" : port.Protocol.ToUpperInvariant(), targetNumber, targetName));
        }
        return new ServiceInfo
        {
            Namespace = string.IsNullOrEmpty(meta.NamespaceProperty) ? "default" : meta.NamespaceProperty,
            Name = name,
            ClusterIps = ips,
            Ports = ports,
            Selector = service.Spec?.Selector is { Count: > 0 } selector ? new Dictionary<string, string>(selector, StringComparer.Ordinal) : null,
            Type = service.Spec?.Type ?? "ClusterIP",
        };
    }

    public static EndpointSliceInfo ToEndpointSlice(V1EndpointSlice slice)
    {
        var meta = slice.Metadata ?? throw new InvalidDataException("metadata is missing");
        string name = meta.Name ?? throw new InvalidDataException("metadata.name is missing");
        string? serviceName = null;
        meta.Labels?.TryGetValue("kubernetes.io/service-name", out serviceName);
        var endpoints = new List<EndpointSliceEndpoint>();
        foreach (var endpoint in slice.Endpoints ?? [])
        {
            var addresses = (endpoint.Addresses ?? []).Select(a => ParseIp(a, "endpoints[].addresses")).ToList();
            bool ready = endpoint.Conditions?.Ready ?? true;
            string? podNs = endpoint.TargetRef?.Kind == "Pod" ? endpoint.TargetRef.NamespaceProperty ?? meta.NamespaceProperty : null;
            string? podName = endpoint.TargetRef?.Kind == "Pod" ? endpoint.TargetRef.Name : null;
            endpoints.Add(new EndpointSliceEndpoint(addresses, ready, podNs, podName));
        }
        var ports = (slice.Ports ?? []).Select(p => new EndpointSlicePort(p.Name, p.Port ?? 0, string.IsNullOrEmpty(p.Protocol) ? "TCP" : p.Protocol.ToUpperInvariant())).ToList();
        return new EndpointSliceInfo
        {
            Namespace = string.IsNullOrEmpty(meta.NamespaceProperty) ? "default" : meta.NamespaceProperty,
            Name = name,
            ServiceName = serviceName,
            Endpoints = endpoints,
            Ports = ports,
        };
    }

    public static NodeInfo ToNode(V1Node node)
    {
        var meta = node.Metadata ?? throw new InvalidDataException("metadata is missing");
        string name = meta.Name ?? throw new InvalidDataException("metadata.name is missing");
        var addresses = new List<IPAddress>();
        foreach (var address in node.Status?.Addresses ?? [])
        {
            if (address.Type is "InternalIP" or "ExternalIP" && IPAddress.TryParse(address.Address, out var ip)) addresses.Add(ip);
        }
        var cidrs = node.Spec?.PodCIDRs is { Count: > 0 } list ? list.ToList() : (node.Spec?.PodCIDR is { } one ? [one] : []);
        return new NodeInfo { Name = name, Addresses = addresses, PodCidrs = cidrs, Labels = LabelSet.Intern(meta.Labels) };
    }

    private static IPAddress ParseIp(string? text, string field)
    {
        if (IPAddress.TryParse(text, out var ip)) return ip;
        throw new InvalidDataException($"{field}: '{text}' is not an IP address");
    }
}
