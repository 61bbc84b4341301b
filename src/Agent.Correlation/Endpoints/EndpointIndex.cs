using System.Collections.Frozen;
using Tripline.Correlation.Cluster;

namespace Tripline.Correlation.Endpoints;

/// <summary>
/// IP at time t → pod, node, Service or external, built once per snapshot and read lock-free. Pod IPs are reused
/// by new pods seconds after the old ones are gone, so every pod that held an IP is kept with its lifetime, and a
/// lookup prefers the pod whose lifetime covers the packet.
/// </summary>
public sealed class EndpointIndex
{
    /// <summary>How long a deleted pod's IP stays attributed to it when no newer pod holds the IP.</summary>
    public static readonly TimeSpan DefaultDeletedGrace = TimeSpan.FromMinutes(2);

    private readonly FrozenDictionary<IpKey, PodInfo[]> _pods;
    private readonly FrozenDictionary<IpKey, NodeInfo> _nodes;
    private readonly FrozenDictionary<IpKey, ServiceInfo> _services;
    private readonly FrozenDictionary<string, PodInfo> _podsByName;
    private readonly long _graceNs;

    private EndpointIndex(ClusterSnapshot snapshot, TimeSpan deletedGrace)
    {
        Snapshot = snapshot;
        _graceNs = deletedGrace.Ticks * 100;
        var pods = new Dictionary<IpKey, List<PodInfo>>();
        var byName = new Dictionary<string, PodInfo>(StringComparer.Ordinal);
        foreach (var pod in snapshot.Pods)
        {
            // A live source keeps deleted pods for late packets; a name (a StatefulSet pod recreated) means the live one.
            if (pod.DeletedAt is null || !byName.TryGetValue(pod.Key, out var named) || named.DeletedAt is not null) byName[pod.Key] = pod;
            // A host-network pod's IP is its node's: traffic from it is the node's traffic.
            if (pod.HostNetwork) continue;
            foreach (var ip in pod.Ips)
            {
                var key = IpKey.From(ip);
                if (!pods.TryGetValue(key, out var list)) pods[key] = list = [];
                list.Add(pod);
            }
        }
        _pods = pods.ToFrozenDictionary(kv => kv.Key, kv => kv.Value.OrderBy(p => p.CreatedAt ?? DateTimeOffset.MinValue).ToArray());
        _podsByName = byName.ToFrozenDictionary(StringComparer.Ordinal);

        var nodes = new Dictionary<IpKey, NodeInfo>();
        foreach (var node in snapshot.Nodes)
        {
            foreach (var ip in node.Addresses) nodes[IpKey.From(ip)] = node;
        }
        _nodes = nodes.ToFrozenDictionary();

        var services = new Dictionary<IpKey, ServiceInfo>();
        foreach (var service in snapshot.Services)
        {
            foreach (var ip in service.ClusterIps) services[IpKey.From(ip)] = service;
        }
        _services = services.ToFrozenDictionary();
    }

    public static EndpointIndex Build(ClusterSnapshot snapshot, TimeSpan? deletedGrace = null) => new(snapshot, deletedGrace ?? DefaultDeletedGrace);

    public ClusterSnapshot Snapshot { get; }

    public bool TryGetPod(string namespaceAndName, out PodInfo? pod) => _podsByName.TryGetValue(namespaceAndName, out pod);

    /// <summary>Who held <paramref name="ip"/> at <paramref name="timeNs"/> (Unix nanoseconds; 0 when unknown).</summary>
    public ResolvedEndpoint Resolve(IpKey ip, long timeNs)
    {
        if (_pods.TryGetValue(ip, out var candidates))
        {
            var pod = PickPod(candidates, timeNs);
            if (pod is not null) return new ResolvedEndpoint(EndpointKind.Pod, pod: pod);
        }
        if (_services.TryGetValue(ip, out var service)) return new ResolvedEndpoint(EndpointKind.Service, service: service);
        if (_nodes.TryGetValue(ip, out var node)) return new ResolvedEndpoint(EndpointKind.Node, node: node);
        return ResolvedEndpoint.External;
    }

    private PodInfo? PickPod(PodInfo[] candidates, long timeNs)
    {
        if (candidates.Length == 1 && timeNs == 0) return candidates[0];
        PodInfo? best = null;
        long bestEnd = long.MaxValue;
        PodInfo? terminated = null;
        // Prefer a pod whose lifetime [created, deleted] covers the packet. An IP is held by one pod at a time and
        // passes on in the order the holders are deleted, while a newer pod's creation time (the object's, before its
        // sandbox got the IP, and cut to the second) can fall inside an older holder's lifetime. So among the pods
        // that cover the packet, the holder is the one deleted first; a live pod's lifetime is open, and among equals
        // the newest wins.
        for (int i = candidates.Length - 1; i >= 0; i--)
        {
            var pod = candidates[i];
            long created = ToNs(pod.CreatedAt) ?? long.MinValue;
            long? deleted = ToNs(pod.DeletedAt);
            if (timeNs == 0)
            {
                // No time: the pod that holds the IP now.
                if (deleted is null && !pod.IsTerminated) return pod;
                continue;
            }
            if (created > timeNs || (deleted is not null && timeNs > deleted.Value)) continue;
            if (pod.IsTerminated)
            {
                terminated ??= pod;
                continue;
            }
            long end = deleted ?? long.MaxValue;
            if (best is null || end < bestEnd) (best, bestEnd) = (pod, end);
        }
        best ??= terminated;
        if (best is not null) return best;
        // Next, the pod deleted last, within the grace period (its last packets arrive after the delete event).
        PodInfo? recent = null;
        long recentDeleted = long.MinValue;
        for (int i = candidates.Length - 1; i >= 0; i--)
        {
            var pod = candidates[i];
            if (ToNs(pod.DeletedAt) is { } deleted && timeNs > deleted && timeNs - deleted <= _graceNs && deleted > recentDeleted)
            {
                (recent, recentDeleted) = (pod, deleted);
            }
        }
        if (recent is not null) return recent;
        // Manifests and clocks disagree (a capture older than the manifests' creation times): the newest live pod.
        for (int i = candidates.Length - 1; i >= 0; i--)
        {
            if (candidates[i].DeletedAt is null) return candidates[i];
        }
        return timeNs == 0 ? candidates[^1] : null;
    }

    private static long? ToNs(DateTimeOffset? time) => time is { } t ? (t.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100 : null;
}
