using k8s.Models;
using Tripline.Correlation.Cluster;

namespace Tripline.Correlation.Kubernetes;

/// <summary>
/// Pods are the bulk of the cache, and most of their fields repeat: namespace, node, phase, workload, port lists.
/// Those are shared between pods here (labels are already interned by <see cref="LabelSet"/>), so that a 50,000-pod
/// cluster costs little more than its names, uids and IPs. Used by one thread at a time: the pod informer's task, or
/// a manifest load.
/// </summary>
internal sealed class PodCompactor
{
    // Bounds the pools in a cluster whose workload names churn (CronJob runs): start over rather than grow forever.
    private const int MaxPooled = 200_000;

    private readonly Dictionary<string, string> _strings = new(StringComparer.Ordinal);
    private readonly Dictionary<WorkloadRef, WorkloadRef> _workloads = [];
    private readonly Dictionary<string, IReadOnlyList<ContainerPortInfo>> _ports = new(StringComparer.Ordinal);

    public PodInfo Convert(V1Pod pod) => Compact(ClusterObjectConverter.ToPod(pod)) with
    {
        // A pod that still exists still holds its IPs, even while terminating; the time it is really gone is set
        // by the source when the deletion arrives.
        DeletedAt = null,
    };

    /// <summary>The pod with its repeated fields shared with other pods'.</summary>
    public PodInfo Compact(PodInfo info)
    {
        if (_strings.Count + _workloads.Count + _ports.Count > MaxPooled)
        {
            _strings.Clear();
            _workloads.Clear();
            _ports.Clear();
        }
        return info with
        {
            Namespace = Intern(info.Namespace),
            NodeName = info.NodeName is null ? null : Intern(info.NodeName),
            Phase = Intern(info.Phase),
            ServiceAccount = Intern(info.ServiceAccount),
            Workload = info.Workload is null ? null : InternWorkload(info.Workload),
            Ports = InternPorts(info.Ports),
        };
    }

    private string Intern(string value)
    {
        if (_strings.TryGetValue(value, out var pooled)) return pooled;
        _strings[value] = value;
        return value;
    }

    private WorkloadRef InternWorkload(WorkloadRef workload)
    {
        if (_workloads.TryGetValue(workload, out var pooled)) return pooled;
        var fresh = new WorkloadRef(Intern(workload.Kind), Intern(workload.Name));
        _workloads[fresh] = fresh;
        return fresh;
    }

    private IReadOnlyList<ContainerPortInfo> InternPorts(IReadOnlyList<ContainerPortInfo> ports)
    {
        if (ports.Count == 0) return [];
        string key = string.Join('|', ports.Select(p => $"{p.Name}:{p.Port}/{p.Protocol}"));
        if (_ports.TryGetValue(key, out var pooled)) return pooled;
        ContainerPortInfo[] shared = [.. ports.Select(p => new ContainerPortInfo(p.Name is null ? null : Intern(p.Name), p.Port, Intern(p.Protocol)))];
        _ports[key] = shared;
        return shared;
    }
}
