using System.Globalization;
using System.Net;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Tripline.TrafficGen;

/// <summary>One line of a traffic plan: <c>count</c> connections from a pod to a pod, Service or address.</summary>
internal sealed record PlannedConnection(int Line, string From, string To, string? Port, string? Protocol, int Count, int? Packets, string? Close, bool? Dns, string? Family, string? Query,
    string? Payload = null, string? Start = null, string? TcpOptions = null);

/// <summary>
/// A traffic plan (YAML or JSON): a list of connections, so that a demo's traffic is deliberate.
/// <code>
/// connections:
///   - from: shop/frontend-6d9c7b8f5-k2x7q   # NS/POD
///     to: shop/cart                          # NS/POD, NS/SERVICE, node/NAME or an IP
///     port: http                             # number or a declared port name; omitted: the first declared port
///     protocol: TCP                          # TCP (default), UDP or ICMP
///     count: 20                              # connections
///     packets: 12                            # per connection (default: --packets-per-flow)
///     close: fin                             # fin, server-fin, rst, server-rst, refused, unanswered (SYN thrice, no answer)
///     dns: true                              # look the Service up first (default for Services)
///     family: ipv4                           # ipv4 or ipv6
///     payload: tls                           # TCP: tls (ClientHello, ServerHello, then records) or plain (HTTP); default by port
///     start: missed                          # TCP: the capture misses the handshake (default: seen)
///     tcp-options: long                      # TCP: 40 bytes of options after the handshake (default: timestamps)
/// </code>
/// </summary>
internal static class TrafficPlan
{
    public static IReadOnlyList<PlannedConnection> Load(string path, List<string> errors)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            errors.Add($"--plan: cannot read {path}: {e.Message}");
            return [];
        }
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            errors.Add($"--plan: {path}:{e.Start.Line}: not valid YAML or JSON: {e.Message}");
            return [];
        }
        if (stream.Documents.Count == 0)
        {
            errors.Add($"--plan: {path}: empty plan");
            return [];
        }
        YamlNode root = stream.Documents[0].RootNode;
        if (root is YamlMappingNode map && map.Children.TryGetValue(new YamlScalarNode("connections"), out var list)) root = list;
        if (root is not YamlSequenceNode sequence)
        {
            errors.Add($"--plan: {path}: expected a list of connections (or a mapping with 'connections')");
            return [];
        }
        var result = new List<PlannedConnection>();
        foreach (var item in sequence)
        {
            int line = (int)item.Start.Line;
            if (item is not YamlMappingNode entry)
            {
                errors.Add($"--plan: {path}:{line}: a connection must be a mapping");
                continue;
            }
            string? from = Scalar(entry, "from");
            string? to = Scalar(entry, "to");
            if (from is null) errors.Add($"--plan: {path}:{line}: 'from' is required");
            if (to is null) errors.Add($"--plan: {path}:{line}: 'to' is required");
            int count = 1;
            if (Scalar(entry, "count") is { } c && (!int.TryParse(c, NumberStyles.None, CultureInfo.InvariantCulture, out count) || count < 1))
            {
                errors.Add($"--plan: {path}:{line}: 'count' must be a positive integer (was {c})");
            }
            int? packets = null;
            if (Scalar(entry, "packets") is { } p)
            {
                if (int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= 1) packets = n;
                else errors.Add($"--plan: {path}:{line}: 'packets' must be a positive integer (was {p})");
            }
            bool? dns = null;
            if (Scalar(entry, "dns") is { } d)
            {
                if (bool.TryParse(d, out bool b)) dns = b;
                else errors.Add($"--plan: {path}:{line}: 'dns' must be true or false (was {d})");
            }
            foreach (var key in entry.Children.Keys)
            {
                if (key is YamlScalarNode { Value: { } name } && !KnownKeys.Contains(name)) errors.Add($"--plan: {path}:{line}: unknown key '{name}'");
            }
            if (from is null || to is null) continue;
            result.Add(new PlannedConnection(line, from, to, Scalar(entry, "port"), Scalar(entry, "protocol"), count, packets,
                Scalar(entry, "close"), dns, Scalar(entry, "family"), Scalar(entry, "query"), Scalar(entry, "payload"), Scalar(entry, "start"), Scalar(entry, "tcp-options")));
        }
        return result;
    }

    private static readonly HashSet<string> KnownKeys = new(StringComparer.Ordinal)
    {
        "from", "to", "port", "protocol", "count", "packets", "close", "dns", "family", "query", "note", "payload", "start", "tcp-options",
    };

    private static string? Scalar(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var value) && value is YamlScalarNode { Value: { Length: > 0 } text } ? text : null;
}

/// <summary>Turns a plan, or a wish for N random flows, into flow specs with start times and client ports.</summary>
internal static class FlowPlanner
{
    public static List<FlowSpec> FromPlan(IReadOnlyList<PlannedConnection> plan, Topology topology, GeneratorOptions options, Rng rng, List<string> errors)
    {
        // A group is a connection and the DNS lookup that precedes it; groups are interleaved in time.
        var groups = new List<List<FlowSpec>>();
        foreach (var connection in plan)
        {
            string where = $"--plan: {options.PlanPath}:{connection.Line}";
            int client = ResolveFrom(topology, connection.From);
            if (client < 0) { errors.Add($"{where}: 'from' {connection.From} is not a pod, node or address in the manifests"); continue; }
            int server = ResolveTo(topology, connection.To);
            if (server < 0) { errors.Add($"{where}: 'to' {connection.To} is not a pod, Service, node or address in the manifests"); continue; }
            var target = topology.Endpoints[server];

            Transport? transport = connection.Protocol is null ? null : Topology.ToTransport(connection.Protocol);
            if (connection.Protocol is not null && transport is null) { errors.Add($"{where}: protocol must be TCP, UDP or ICMP (was {connection.Protocol})"); continue; }
            int port = 0;
            if (transport != Transport.Icmp)
            {
                if (connection.Port is null)
                {
                    var declared = target.Ports.FirstOrDefault(p => transport is null || p.Transport == transport);
                    if (declared == default) { errors.Add($"{where}: no port given and {target.Name} declares none"); continue; }
                    port = declared.Port;
                    transport ??= declared.Transport;
                }
                else if (int.TryParse(connection.Port, NumberStyles.None, CultureInfo.InvariantCulture, out port))
                {
                    if (port is < 1 or > 65535) { errors.Add($"{where}: port {port} is out of range"); continue; }
                    transport ??= target.Ports.FirstOrDefault(p => p.Port == port) is { Port: > 0 } match ? match.Transport : Transport.Tcp;
                }
                else
                {
                    var named = target.Ports.FirstOrDefault(p => string.Equals(p.Name, connection.Port, StringComparison.Ordinal) && (transport is null || p.Transport == transport));
                    if (named == default) { errors.Add($"{where}: {target.Name} declares no port named '{connection.Port}'"); continue; }
                    port = named.Port;
                    transport ??= named.Transport;
                }
            }
            transport ??= Transport.Tcp;

            CloseKind close = CloseKind.ClientFin;
            switch (connection.Close?.ToLowerInvariant())
            {
                case null or "fin": break;
                case "server-fin": close = CloseKind.ServerFin; break;
                case "rst": close = CloseKind.ClientRst; break;
                case "server-rst": close = CloseKind.ServerRst; break;
                case "refused": close = CloseKind.Refused; break;
                case "unanswered": close = CloseKind.Unanswered; break;
                default: errors.Add($"{where}: close must be fin, server-fin, rst, server-rst, refused or unanswered (was {connection.Close})"); continue;
            }
            bool v6 = false;
            switch (connection.Family?.ToLowerInvariant())
            {
                case null or "ipv4": break;
                case "ipv6": v6 = true; break;
                default: errors.Add($"{where}: family must be ipv4 or ipv6 (was {connection.Family})"); continue;
            }
            PayloadKind payload = PayloadKind.ByPort;
            switch (connection.Payload?.ToLowerInvariant())
            {
                case null: break;
                case "tls": payload = PayloadKind.Tls; break;
                case "plain": payload = PayloadKind.Plain; break;
                default: errors.Add($"{where}: payload must be tls or plain (was {connection.Payload})"); continue;
            }
            bool missStart = false;
            switch (connection.Start?.ToLowerInvariant())
            {
                case null or "seen": break;
                case "missed": missStart = true; break;
                default: errors.Add($"{where}: start must be seen or missed (was {connection.Start})"); continue;
            }
            bool longOptions = false;
            switch (connection.TcpOptions?.ToLowerInvariant())
            {
                case null or "timestamps": break;
                case "long": longOptions = true; break;
                default: errors.Add($"{where}: tcp-options must be timestamps or long (was {connection.TcpOptions})"); continue;
            }
            if ((payload != PayloadKind.ByPort || missStart || longOptions) && transport != Transport.Tcp)
            {
                errors.Add($"{where}: payload, start and tcp-options are for TCP connections");
                continue;
            }
            if (missStart && close is CloseKind.Refused or CloseKind.Unanswered)
            {
                errors.Add($"{where}: start: missed needs a connection that was established (close {connection.Close} never is)");
                continue;
            }
            var source = topology.Endpoints[client];
            if (!source.HasFamily(v6) || !target.HasFamily(v6))
            {
                errors.Add($"{where}: {(source.HasFamily(v6) ? target.Name : source.Name)} has no {(v6 ? "IPv6" : "IPv4")} address");
                continue;
            }

            FlowKind kind = transport switch
            {
                Transport.Icmp => FlowKind.Icmp,
                Transport.Udp when port == 53 => FlowKind.Dns,
                Transport.Udp => FlowKind.Udp,
                _ => FlowKind.Tcp,
            };
            int dnsRecord = -1;
            if (kind == FlowKind.Dns)
            {
                string name = connection.Query ?? topology.DnsRecords.FirstOrDefault(r => r.InCluster)?.Name ?? "kubernetes.default.svc.cluster.local";
                var record = topology.DnsRecords.FirstOrDefault(r => string.Equals(r.Name, name, StringComparison.OrdinalIgnoreCase)) ?? topology.AddDns(name, null, null, true);
                dnsRecord = topology.DnsRecords.IndexOf(record);
            }
            bool lookup = (connection.Dns ?? target.Kind == EndpointKind.Service) && kind != FlowKind.Dns && target.DnsName is not null && topology.DnsServer >= 0;
            for (int i = 0; i < connection.Count; i++)
            {
                var group = new List<FlowSpec>(2);
                if (lookup)
                {
                    group.Add(new FlowSpec
                    {
                        Client = client,
                        Server = topology.DnsServer,
                        Kind = FlowKind.Dns,
                        ServerPort = 53,
                        Packets = 4,
                        V6 = v6 && topology.Endpoints[topology.DnsServer].V6.HasValue,
                        DnsRecord = topology.DnsIndex(target.DnsName!),
                    });
                }
                int packets = connection.Packets ?? DrawPackets(rng, options.PacketsPerFlow, FlowSpec.MinimumFor(kind, close));
                group.Add(new FlowSpec
                {
                    Client = client,
                    Server = server,
                    Kind = kind,
                    Close = close,
                    V6 = v6,
                    ServerPort = (ushort)port,
                    Packets = FlowSpec.Normalize(kind, close, packets),
                    DnsRecord = dnsRecord,
                    Payload = payload,
                    MissStart = missStart,
                    LongOptions = longOptions,
                });
                groups.Add(group);
            }
        }
        var shuffled = groups.ToArray();
        rng.Shuffle(shuffled);
        var specs = new List<FlowSpec>();
        long t = options.StartNs;
        foreach (var group in shuffled)
        {
            t += NextArrival(rng, options.FlowRate);
            long start = t;
            foreach (var spec in group)
            {
                var s = spec;
                s.StartNs = start;
                specs.Add(s);
                start += 1_500_000 + rng.Next(2_000_000); // the lookup's answer, then the connection
            }
        }
        specs.Sort((a, b) => a.StartNs.CompareTo(b.StartNs));
        AssignPorts(specs, topology, rng);
        return specs;
    }

    public static List<FlowSpec> Random(Topology topology, GeneratorOptions options, Rng rng)
    {
        var clients = topology.Endpoints.Select((e, i) => (e, i)).Where(x => x.e.IsClient).Select(x => x.i).ToArray();
        var servers = topology.Endpoints.Select((e, i) => (e, i)).Where(x => x.e.Kind is EndpointKind.Pod or EndpointKind.Service && x.e.Ports.Count > 0 && x.i != topology.DnsServer).Select(x => x.i).ToArray();
        var externals = topology.Indexes(EndpointKind.External).ToArray();
        var pingable = topology.Endpoints.Select((e, i) => (e, i)).Where(x => x.e.Kind is EndpointKind.Pod or EndpointKind.Node).Select(x => x.i).ToArray();
        var clusterNames = topology.DnsRecords.Select((r, i) => (r, i)).Where(x => x.r.InCluster).Select(x => x.i).ToArray();
        var outsideNames = topology.DnsRecords.Select((r, i) => (r, i)).Where(x => !x.r.InCluster).Select(x => x.i).ToArray();
        if (clients.Length == 0) throw new InvalidOperationException("the manifests hold no running pod with an IP to send traffic from");

        var specs = new List<FlowSpec>(options.Flows);
        long t = options.StartNs;
        for (int n = 0; n < options.Flows; n++)
        {
            t += NextArrival(rng, options.FlowRate);
            int client = clients[rng.Next(clients.Length)];
            var spec = new FlowSpec { Client = client, StartNs = t, DnsRecord = -1 };
            double r = rng.NextDouble();
            if (r < 0.14 && topology.DnsServer >= 0 && topology.DnsRecords.Count > 0)
            {
                spec.Kind = FlowKind.Dns;
                spec.Server = topology.DnsServer;
                spec.ServerPort = 53;
                spec.DnsRecord = clusterNames.Length > 0 && (outsideNames.Length == 0 || rng.Chance(0.8))
                    ? clusterNames[rng.Next(clusterNames.Length)]
                    : outsideNames[rng.Next(outsideNames.Length)];
                spec.Packets = rng.Chance(0.7) ? 4 : 2;
            }
            else if ((r < 0.22 || servers.Length == 0) && externals.Length > 0)
            {
                spec.Kind = FlowKind.Tcp;
                spec.Server = externals[rng.Next(externals.Length)];
                spec.ServerPort = 443;
                spec.Close = rng.Chance(0.9) ? CloseKind.ClientFin : CloseKind.ServerFin;
            }
            else if (r < 0.26 && pingable.Length > 1)
            {
                spec.Kind = FlowKind.Icmp;
                do spec.Server = pingable[rng.Next(pingable.Length)]; while (spec.Server == client);
                spec.Packets = 2 * rng.Next(1, 6);
            }
            else if (servers.Length > 0)
            {
                do spec.Server = servers[rng.Next(servers.Length)]; while (spec.Server == client && servers.Length > 1);
                var port = rng.Pick(topology.Endpoints[spec.Server].Ports);
                spec.ServerPort = (ushort)port.Port;
                spec.Kind = port.Transport switch
                {
                    Transport.Udp when port.Port == 53 => FlowKind.Dns,
                    Transport.Udp => FlowKind.Udp,
                    _ => FlowKind.Tcp,
                };
                if (spec.Kind == FlowKind.Dns)
                {
                    spec.DnsRecord = clusterNames.Length > 0 ? clusterNames[rng.Next(clusterNames.Length)] : -1;
                    if (spec.DnsRecord < 0) spec.Kind = FlowKind.Udp;
                }
                double c = rng.NextDouble();
                spec.Close = c < 0.80 ? CloseKind.ClientFin : c < 0.88 ? CloseKind.ServerFin : c < 0.91 ? CloseKind.ClientRst : c < 0.94 ? CloseKind.ServerRst : CloseKind.Refused;
            }
            else
            {
                continue;
            }
            var server = topology.Endpoints[spec.Server];
            var source = topology.Endpoints[client];
            spec.V6 = source.V6.HasValue && server.V6.HasValue && (!source.V4.HasValue || !server.V4.HasValue || rng.Chance(0.2));
            if (!spec.V6 && !(source.V4.HasValue && server.V4.HasValue)) continue;
            if (spec.Kind is FlowKind.Tcp or FlowKind.Udp) spec.Packets = DrawPackets(rng, options.PacketsPerFlow, spec.MinimumPackets);
            spec.Packets = FlowSpec.Normalize(spec.Kind, spec.Close, spec.Packets);
            specs.Add(spec);
        }
        MatchTotal(specs, (long)options.Flows * options.PacketsPerFlow);
        AssignPorts(specs, topology, rng);
        return specs;
    }

    /// <summary>Packets of one flow: a minimum plus an exponential tail, so most flows are short and a few are long.</summary>
    private static int DrawPackets(Rng rng, int average, int minimum)
    {
        double extra = Math.Max(0, average - minimum);
        return minimum + (int)Math.Min(rng.Exponential(extra), extra * 12 + 1);
    }

    /// <summary>Stretches or shrinks the adjustable flows so that the capture holds exactly the asked-for packets.</summary>
    private static void MatchTotal(List<FlowSpec> specs, long target)
    {
        long fixedPackets = 0, adjustable = 0, minimum = 0;
        foreach (var s in specs)
        {
            if (s.IsAdjustable) { adjustable += s.Packets; minimum += s.MinimumPackets; }
            else fixedPackets += s.Packets;
        }
        long want = target - fixedPackets;
        if (adjustable == 0 || want <= minimum) return;
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(specs);
        double scale = (double)(want - minimum) / (adjustable - minimum);
        long total = 0;
        for (int i = 0; i < span.Length; i++)
        {
            if (!span[i].IsAdjustable) continue;
            int min = span[i].MinimumPackets;
            span[i].Packets = min + (int)Math.Round((span[i].Packets - min) * scale);
            total += span[i].Packets;
        }
        // Rounding leaves a few packets over or under; spread them one per flow.
        long diff = want - total;
        for (int i = 0; diff != 0; i = (i + 1) % span.Length)
        {
            if (!span[i].IsAdjustable) continue;
            if (diff > 0) { span[i].Packets++; diff--; }
            else if (span[i].Packets > span[i].MinimumPackets) { span[i].Packets--; diff++; }
        }
    }

    /// <summary>Ephemeral ports per client, moving forward as Linux's do, so concurrent flows never share a 5-tuple.</summary>
    private static void AssignPorts(List<FlowSpec> specs, Topology topology, Rng rng)
    {
        var next = new int[topology.Endpoints.Count];
        for (int i = 0; i < next.Length; i++) next[i] = rng.Next(32768, 61000);
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(specs);
        for (int i = 0; i < span.Length; i++)
        {
            ref FlowSpec s = ref span[i];
            if (s.Kind == FlowKind.Icmp)
            {
                s.ClientPort = (ushort)rng.Next(1, 65536); // the echo identifier
                s.ServerPort = s.ClientPort;
                continue;
            }
            int port = next[s.Client] + 1 + rng.Next(4);
            if (port >= 61000) port = 32768 + (port - 61000);
            next[s.Client] = port;
            s.ClientPort = (ushort)port;
        }
    }

    private static long NextArrival(Rng rng, double flowsPerSecond) => 1 + (long)rng.Exponential(1e9 / flowsPerSecond);

    private static int ResolveFrom(Topology topology, string from)
    {
        if (IPAddress.TryParse(from, out var address))
        {
            int known = topology.Find(e => e.Kind != EndpointKind.Service && Topology.Matches(e, address));
            return known >= 0 ? known : topology.AddAddress(address);
        }
        return topology.Find(e => e.Kind is EndpointKind.Pod or EndpointKind.Node && (e.Name == from || e.Name == "node/" + from));
    }

    private static int ResolveTo(Topology topology, string to)
    {
        if (IPAddress.TryParse(to, out var address))
        {
            int known = topology.Find(e => Topology.Matches(e, address));
            return known >= 0 ? known : topology.AddAddress(address);
        }
        int pod = topology.Find(e => e.Kind == EndpointKind.Pod && e.Name == to);
        if (pod >= 0) return pod;
        int service = topology.Find(e => e.Kind == EndpointKind.Service && e.Name == "service/" + to);
        if (service >= 0) return service;
        return topology.Find(e => e.Kind is EndpointKind.Node or EndpointKind.External && (e.Name == to || e.Name == "node/" + to || e.Name == "external/" + to));
    }
}
