using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Tripline.Correlation.Cluster;

namespace Tripline.TrafficGen;

internal enum EndpointKind : byte
{
    Pod,
    Service,
    Node,
    External,
}

internal enum Transport : byte
{
    Tcp,
    Udp,
    Icmp,
}

internal readonly record struct ServerPort(int Port, Transport Transport, string? Name);

/// <summary>Something that sends or answers traffic: a pod, a Service's ClusterIP, a node, or an address outside.</summary>
internal sealed class Endpoint
{
    public required string Name { get; init; }
    public required EndpointKind Kind { get; init; }
    public uint? V4 { get; init; }
    public UInt128? V6 { get; init; }
    public ulong Mac { get; init; }
    public List<ServerPort> Ports { get; } = [];
    /// <summary>The name a client resolves before connecting (Services and external hosts).</summary>
    public string? DnsName { get; init; }
    public bool IsClient { get; init; }

    public bool HasFamily(bool v6) => v6 ? V6.HasValue : V4.HasValue;

    public override string ToString() => Name;
}

/// <summary>A DNS name and the answers the cluster DNS gives for it.</summary>
internal sealed record DnsRecord(string Name, byte[] Wire, uint? A, UInt128? Aaaa, bool InCluster);

/// <summary>The endpoints traffic is drawn between, read from manifests or synthesised when none are given.</summary>
internal sealed class Topology
{
    /// <summary>Calico's fixed gateway MAC: every routed frame on a pod's veth goes to or comes from it.</summary>
    public const ulong GatewayMac = 0xEEEE_EEEE_EEEEUL;

    private readonly Dictionary<string, DnsRecord> _dnsByName = new(StringComparer.OrdinalIgnoreCase);

    public List<Endpoint> Endpoints { get; } = [];
    public List<DnsRecord> DnsRecords { get; } = [];
    public int DnsServer { get; private set; } = -1;

    public IEnumerable<int> Indexes(EndpointKind kind) => Enumerable.Range(0, Endpoints.Count).Where(i => Endpoints[i].Kind == kind);

    public static readonly (string Name, string V4)[] ExternalHosts =
    [
        ("api.stripe.com", "54.187.216.72"),
        ("github.com", "140.82.112.3"),
        ("registry-1.docker.io", "54.236.113.205"),
        ("s3.eu-west-1.amazonaws.com", "52.218.48.130"),
        ("api.segment.io", "34.210.81.35"),
        ("pypi.org", "151.101.0.223"),
    ];

    public int Add(Endpoint endpoint)
    {
        Endpoints.Add(endpoint);
        if (endpoint.DnsName is { } name && (endpoint.V4.HasValue || endpoint.V6.HasValue)) AddDns(name, endpoint.V4, endpoint.V6, endpoint.Kind != EndpointKind.External);
        return Endpoints.Count - 1;
    }

    public DnsRecord AddDns(string name, uint? a, UInt128? aaaa, bool inCluster)
    {
        if (_dnsByName.TryGetValue(name, out var existing)) return existing;
        var record = new DnsRecord(name, EncodeName(name), a, aaaa, inCluster);
        _dnsByName[name] = record;
        DnsRecords.Add(record);
        return record;
    }

    public int DnsIndex(string name) => DnsRecords.FindIndex(r => string.Equals(r.Name, name, StringComparison.OrdinalIgnoreCase));

    public int Find(Func<Endpoint, bool> predicate) => Endpoints.FindIndex(e => predicate(e));

    public static Topology FromSnapshot(ClusterSnapshot snapshot)
    {
        var topology = new Topology();
        var nodeMacs = new Dictionary<string, ulong>(StringComparer.Ordinal);
        foreach (var node in snapshot.Nodes.OrderBy(n => n.Name, StringComparer.Ordinal))
        {
            ulong mac = 0x5254_0000_0000UL | (Hash(node.Name) & 0xFF_FFFF);
            nodeMacs[node.Name] = mac;
            var (v4, v6) = Split(node.Addresses);
            if (v4 is null && v6 is null) continue;
            topology.Add(new Endpoint { Name = "node/" + node.Name, Kind = EndpointKind.Node, V4 = v4, V6 = v6, Mac = mac });
        }
        foreach (var pod in snapshot.Pods.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (pod.IsTerminated || pod.Ips.Count == 0) continue;
            var (v4, v6) = Split(pod.Ips);
            ulong mac = pod.HostNetwork && pod.NodeName is { } n && nodeMacs.TryGetValue(n, out var nm) ? nm
                : v4 is { } a ? 0x0A58_0000_0000UL | a
                : 0x0A58_0000_0000UL | (Hash(pod.Key) & 0xFFFF_FFFF);
            var endpoint = new Endpoint { Name = pod.Key, Kind = EndpointKind.Pod, V4 = v4, V6 = v6, Mac = mac, IsClient = true };
            foreach (var port in pod.Ports)
            {
                if (ToTransport(port.Protocol) is { } t) endpoint.Ports.Add(new ServerPort(port.Port, t, port.Name));
            }
            topology.Add(endpoint);
        }
        foreach (var service in snapshot.Services.OrderBy(s => s.Key, StringComparer.Ordinal))
        {
            var (v4, v6) = Split(service.ClusterIps);
            if (v4 is null && v6 is null) continue;
            var endpoint = new Endpoint
            {
                Name = "service/" + service.Key,
                Kind = EndpointKind.Service,
                V4 = v4,
                V6 = v6,
                Mac = GatewayMac,
                DnsName = $"{service.Name}.{service.Namespace}.svc.cluster.local",
            };
            foreach (var port in service.Ports)
            {
                if (ToTransport(port.Protocol) is { } t) endpoint.Ports.Add(new ServerPort(port.Port, t, port.Name));
            }
            int index = topology.Add(endpoint);
            if (service.Name == "kube-dns" && service.Namespace == "kube-system") topology.DnsServer = index;
        }
        topology.AddExternals();
        return topology;
    }

    /// <summary>A made-up cluster for runs without manifests (benchmarks): clients, servers, a DNS Service, a node.</summary>
    public static Topology Synthetic()
    {
        var topology = new Topology();
        uint Ip(int a, int b, int c, int d) => (uint)(a << 24 | b << 16 | c << 8 | d);
        topology.Add(new Endpoint { Name = "node/node-1", Kind = EndpointKind.Node, V4 = Ip(192, 168, 49, 2), Mac = 0x5254_0012_3456UL });
        for (int i = 0; i < 32; i++)
        {
            uint ip = Ip(10, 244, 1, 10 + i);
            topology.Add(new Endpoint { Name = $"synthetic/client-{i}", Kind = EndpointKind.Pod, V4 = ip, Mac = 0x0A58_0000_0000UL | ip, IsClient = true });
        }
        int[][] ports = [[80], [8080], [443], [5432], [6379], [8080, 9090], [3000], [50051]];
        for (int i = 0; i < 16; i++)
        {
            uint ip = Ip(10, 244, 2, 10 + i);
            var server = new Endpoint { Name = $"synthetic/server-{i}", Kind = EndpointKind.Pod, V4 = ip, Mac = 0x0A58_0000_0000UL | ip, IsClient = true };
            foreach (int port in ports[i % ports.Length]) server.Ports.Add(new ServerPort(port, Transport.Tcp, null));
            topology.Add(server);
        }
        var dns = new Endpoint { Name = "service/kube-system/kube-dns", Kind = EndpointKind.Service, V4 = Ip(10, 96, 0, 10), Mac = GatewayMac, DnsName = "kube-dns.kube-system.svc.cluster.local" };
        dns.Ports.Add(new ServerPort(53, Transport.Udp, "dns"));
        dns.Ports.Add(new ServerPort(53, Transport.Tcp, "dns-tcp"));
        topology.DnsServer = topology.Add(dns);
        for (int i = 0; i < 8; i++)
        {
            uint ip = Ip(10, 96, 10, 1 + i);
            var service = new Endpoint { Name = $"service/synthetic/svc-{i}", Kind = EndpointKind.Service, V4 = ip, Mac = GatewayMac, DnsName = $"svc-{i}.synthetic.svc.cluster.local" };
            service.Ports.Add(new ServerPort(80, Transport.Tcp, "http"));
            topology.Add(service);
        }
        topology.AddExternals();
        return topology;
    }

    private void AddExternals()
    {
        foreach (var (name, ip) in ExternalHosts)
        {
            var external = new Endpoint { Name = "external/" + name, Kind = EndpointKind.External, V4 = ToUInt32(IPAddress.Parse(ip)), Mac = GatewayMac, DnsName = name };
            external.Ports.Add(new ServerPort(443, Transport.Tcp, "https"));
            Add(external);
        }
    }

    /// <summary>An address no manifest names: outside the cluster, reached through the gateway.</summary>
    public int AddAddress(IPAddress address)
    {
        string name = "external/" + address;
        int existing = Find(e => e.Name == name || (e.Kind == EndpointKind.External && Matches(e, address)));
        if (existing >= 0) return existing;
        bool v6 = address.AddressFamily == AddressFamily.InterNetworkV6;
        return Add(new Endpoint
        {
            Name = name,
            Kind = EndpointKind.External,
            V4 = v6 ? null : ToUInt32(address),
            V6 = v6 ? ToUInt128(address) : null,
            Mac = GatewayMac,
        });
    }

    public static bool Matches(Endpoint endpoint, IPAddress address) => address.AddressFamily == AddressFamily.InterNetworkV6
        ? endpoint.V6 == ToUInt128(address)
        : endpoint.V4 == ToUInt32(address);

    public static Transport? ToTransport(string protocol) => protocol.ToUpperInvariant() switch
    {
        "TCP" => Transport.Tcp,
        "UDP" => Transport.Udp,
        "ICMP" or "ICMPV6" => Transport.Icmp,
        _ => null,
    };

    private static (uint? V4, UInt128? V6) Split(IEnumerable<IPAddress> addresses)
    {
        uint? v4 = null;
        UInt128? v6 = null;
        foreach (var address in addresses)
        {
            if (address.AddressFamily == AddressFamily.InterNetwork) v4 ??= ToUInt32(address);
            else if (address.AddressFamily == AddressFamily.InterNetworkV6 && !address.IsIPv6LinkLocal) v6 ??= ToUInt128(address);
        }
        return (v4, v6);
    }

    public static uint ToUInt32(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[4];
        address.TryWriteBytes(bytes, out _);
        return BinaryPrimitives.ReadUInt32BigEndian(bytes);
    }

    public static UInt128 ToUInt128(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        return BinaryPrimitives.ReadUInt128BigEndian(bytes);
    }

    private static ulong Hash(string text)
    {
        ulong h = 0xCBF2_9CE4_8422_2325UL;
        foreach (char c in text) h = (h ^ c) * 0x100_0000_01B3UL;
        return h;
    }

    /// <summary>A DNS name in wire format: length-prefixed labels ending with the root.</summary>
    private static byte[] EncodeName(string name)
    {
        var bytes = new List<byte>();
        foreach (string label in name.TrimEnd('.').Split('.'))
        {
            bytes.Add((byte)label.Length);
            bytes.AddRange(System.Text.Encoding.ASCII.GetBytes(label));
        }
        bytes.Add(0);
        return [.. bytes];
    }
}
