using Tripline.Capture.Parsing;
using Tripline.Correlation.Endpoints;

namespace Tripline.Export;

/// <summary>
/// One end of a flow as the flow log groups it: a pod by namespace and workload (or its name when it has none), a
/// Service or node by name, anything else by address. The strings are the cluster objects' own, so making one
/// allocates nothing. <see cref="Coarse"/> keeps only the kind and namespace, for the overflow of a full table.
/// </summary>
internal readonly record struct Peer(EndpointKind Kind, string? Namespace, string? Group, string? Name, IpAddress Ip)
{
    public static Peer Of(in ResolvedEndpoint endpoint, IpAddress ip) => endpoint.Kind switch
    {
        EndpointKind.Pod => endpoint.Pod!.Workload is { } workload
            ? new Peer(EndpointKind.Pod, endpoint.Pod.Namespace, workload.Kind, workload.Name, default)
            : new Peer(EndpointKind.Pod, endpoint.Pod.Namespace, null, endpoint.Pod.Name, default),
        EndpointKind.Service => new Peer(EndpointKind.Service, endpoint.Service!.Namespace, null, endpoint.Service.Name, default),
        EndpointKind.Node => new Peer(EndpointKind.Node, null, null, endpoint.Node!.Name, default),
        _ => new Peer(endpoint.Kind, null, null, null, ip),
    };

    /// <summary>
    /// 64 bits that tell peers apart: the address through a bijective mix, so that no two addresses of the same kind
    /// (a scan's million targets) ever share one; the names through their hash.
    /// </summary>
    public ulong Fingerprint()
    {
        ulong names = (uint)HashCode.Combine(Kind, Namespace, Group, Name);
        return DistinctCounter.Mix(DistinctCounter.Mix(Ip.High ^ names) ^ Ip.Low);
    }

    public Peer Coarse() => new(Kind, Namespace, null, null, default);

    public bool IsCoarse => Group is null && Name is null && Ip.IsZero;
}

/// <summary>
/// Peer pairs seen recently, in a fixed table (1 MiB): 4-way sets of 64-bit fingerprints and the time each pair was
/// last seen. A full set forgets its oldest pair, which then counts as new once more: a pair wrongly thought new is
/// only preferred, never lost.
/// </summary>
internal sealed class RecentPairs
{
    private const int Slots = 1 << 16;
    private const int Ways = 4;
    private readonly ulong[] _keys = new ulong[Slots];
    private readonly long[] _seen = new long[Slots];
    private readonly long _memoryNs;

    public RecentPairs(TimeSpan memory) => _memoryNs = memory.Ticks * 100;

    /// <summary>Marks the pair seen at <paramref name="nowNs"/>; true when it was not seen within the memory.</summary>
    public bool Touch(in Peer source, in Peer destination, long nowNs)
    {
        // Zero marks an empty slot.
        ulong key = DistinctCounter.Mix(source.Fingerprint() ^ ulong.RotateLeft(destination.Fingerprint(), 17)) | 1;
        int set = (int)(key >> 32) & (Slots - 1) & ~(Ways - 1);
        int victim = -1;
        for (int i = set; i < set + Ways; i++)
        {
            if (_keys[i] == key)
            {
                bool recent = nowNs - _seen[i] < _memoryNs;
                if (nowNs > _seen[i]) _seen[i] = nowNs;
                return !recent;
            }
            // An empty slot first, else the pair seen longest ago.
            bool better = victim < 0
                || (_keys[victim] != 0 && (_keys[i] == 0 || _seen[i] < _seen[victim]));
            if (better) victim = i;
        }
        _keys[victim] = key;
        _seen[victim] = nowNs;
        return true;
    }
}
