using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tripline.Cli;
using Tripline.Tests.Support;

namespace Tripline.Tests.Correlation.Policy;

/// <summary>
/// One admin-tier case as <c>tripline replay</c> sees it: a manifest directory (the topology as Namespaces, Nodes and
/// Pods, and the case's policies as written), a capture with one connection per probe, and the flow log it writes.
/// </summary>
internal sealed class AdminTierReplay : IDisposable
{
    /// <summary>The agent's node: a label on the records, no part of the verdict.</summary>
    public const string AgentNode = "node-2";

    private const long StartMicros = 1_764_100_000_000_000;
    private const ushort FirstSourcePort = 40_000;

    private readonly AdminTierSuite _suite;
    private readonly AdminTierCase _case;
    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-admin-tier-").FullName;

    /// <param name="policies">In place of the case's policies (the same policies in another version, say).</param>
    public AdminTierReplay(AdminTierSuite suite, AdminTierCase testCase, string? policies = null)
    {
        _suite = suite;
        _case = testCase;
        Directory.CreateDirectory(Manifests);
        File.WriteAllText(Path.Combine(Manifests, "cluster.json"), ClusterJson());
        File.WriteAllText(Path.Combine(Manifests, "policies.yaml"), policies ?? testCase.Policies);
        WriteCapture();
    }

    public string Manifests => Path.Combine(_dir, "manifests");
    public string Capture => Path.Combine(_dir, "probes.pcap");
    public string FlowLog => Path.Combine(_dir, "flows.jsonl");

    /// <summary>The command line a person would type for this case.</summary>
    public string[] Arguments => ["replay", "--pcap", Capture, "--manifests", Manifests, "--flow-log", FlowLog, "--node", AgentNode];

    /// <summary>
    /// Runs the replay command in this process, as <c>tripline</c> would after parsing <see cref="Arguments"/> (whose
    /// parse is checked here too), but with its output captured rather than written to the shared console.
    /// </summary>
    public (int Exit, string Output, string Errors) RunInProcess()
    {
        var parse = TriplineCommand.Create().Parse(Arguments);
        if (parse.Errors.Count > 0) throw new InvalidOperationException("the command line does not parse: " + string.Join("; ", parse.Errors.Select(e => e.Message)));
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = ReplayCommand.Run(new ReplayCommand.ReplayOptions([Capture], [Manifests], FlowLog, AgentNode, FailOnDeny: false, MaxFlows: 65_536, UpdateIntervalSeconds: 60), stdout, stderr);
        return (exit, stdout.ToString(), stderr.ToString());
    }

    /// <summary>The records of each probe's flow, in probe order (empty when the flow was never written).</summary>
    public IReadOnlyList<ProbeOutcome> Outcomes()
    {
        var byFlow = new Dictionary<string, List<JsonElement>>(StringComparer.Ordinal);
        foreach (string line in File.ReadLines(FlowLog))
        {
            if (line.Length == 0) continue;
            var record = JsonDocument.Parse(line).RootElement.Clone();
            if (!record.TryGetProperty("src", out var src) || !record.TryGetProperty("dst", out var dst) || !record.TryGetProperty("protocol", out var protocol)) continue;
            string key;
            if (src.TryGetProperty("port", out var sourcePort))
            {
                key = FlowKey(protocol.GetString()!, src.GetProperty("ip").GetString()!, sourcePort.GetInt32(), dst.GetProperty("ip").GetString()!, dst.GetProperty("port").GetInt32());
            }
            else if (record.TryGetProperty("icmp", out var icmp))
            {
                key = IcmpKey(protocol.GetString()!, src.GetProperty("ip").GetString()!, dst.GetProperty("ip").GetString()!, icmp.GetProperty("type").GetInt32(), icmp.GetProperty("code").GetInt32());
            }
            else
            {
                continue;
            }
            if (!byFlow.TryGetValue(key, out var records)) byFlow[key] = records = [];
            records.Add(record);
        }
        var outcomes = new List<ProbeOutcome>();
        for (int i = 0; i < _case.Probes.Count; i++)
        {
            var probe = _case.Probes[i];
            string key = probe.IsIcmp
                ? IcmpKey(probe.Protocol, SourceOf(probe).ToString(), _suite.AddressOf(probe.To).ToString(), probe.IcmpType ?? -1, probe.IcmpCode ?? -1)
                : FlowKey(probe.Protocol, SourceOf(probe).ToString(), FirstSourcePort + i, _suite.AddressOf(probe.To).ToString(), probe.Port);
            outcomes.Add(new ProbeOutcome(i, probe, byFlow.TryGetValue(key, out var records) ? records : []));
        }
        return outcomes;
    }

    private static string FlowKey(string protocol, string sourceIp, int sourcePort, string destinationIp, int destinationPort) =>
        string.Create(CultureInfo.InvariantCulture, $"{protocol} {sourceIp}:{sourcePort} -> {destinationIp}:{destinationPort}");

    /// <summary>ICMP records carry no ports: a probe's flow is found by its addresses and its first message's type and code.</summary>
    private static string IcmpKey(string protocol, string sourceIp, string destinationIp, int type, int code) =>
        string.Create(CultureInfo.InvariantCulture, $"{protocol} {sourceIp} -> {destinationIp} {type}/{code}");

    /// <summary>A probe leaves from its pod's IP, which for a host-network pod is its node's.</summary>
    private IPAddress SourceOf(AdminProbe probe) => _suite.AddressOf(probe.From);

    private void WriteCapture()
    {
        using var pcap = new TestPcap(File.Create(Capture));
        // ICMP messages other than echoes have no identifier: two between the same addresses would be one flow, so
        // the later one waits until the earlier flow has ended (the ICMP idle timeout, 30 s, and a sweep).
        var portless = new HashSet<string>(StringComparer.Ordinal);
        long t = StartMicros;
        for (int i = 0; i < _case.Probes.Count; i++, t += 10_000L)
        {
            var probe = _case.Probes[i];
            IPAddress from = SourceOf(probe), to = _suite.AddressOf(probe.To);
            uint client = Ip(from), server = Ip(to);
            // A source port of its own per probe: two probes between the same pair and port stay two flows.
            ushort clientPort = (ushort)(FirstSourcePort + i), serverPort = (ushort)probe.Port;
            // The same packets whatever the expectation: the capture says what was tried, never what should happen.
            switch (probe.Protocol)
            {
                case "TCP":
                    pcap.Write(t, TestPcap.Tcp(client, clientPort, server, serverPort, 0x02));
                    pcap.Write(t + 100, TestPcap.Tcp(server, serverPort, client, clientPort, 0x12));
                    break;
                case "UDP":
                    pcap.Write(t, TestPcap.Udp(client, clientPort, server, serverPort, payload: 32));
                    pcap.Write(t + 100, TestPcap.Udp(server, serverPort, client, clientPort, payload: 32));
                    break;
                case "SCTP":
                    uint tag = 0x1000u + (uint)i;
                    pcap.Write(t, TestPcap.Sctp(client, clientPort, server, serverPort, chunkType: 1, verificationTag: 0, initiateTag: tag));
                    pcap.Write(t + 100, TestPcap.Sctp(server, serverPort, client, clientPort, chunkType: 2, verificationTag: tag, initiateTag: tag + 0x100));
                    break;
                case "ICMP" or "ICMPv6":
                    bool v6 = probe.Protocol == "ICMPv6";
                    if (probe.IcmpType is not (>= 0 and <= 255) || probe.IcmpCode is not (>= 0 and <= 255)) throw new InvalidDataException($"probe {i} ({probe}): icmpType and icmpCode 0-255 are required");
                    if (v6 != (from.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6)) throw new InvalidDataException($"probe {i} ({probe}): {probe.Protocol} between {from} and {to}");
                    byte type = (byte)probe.IcmpType, code = (byte)probe.IcmpCode;
                    byte request = v6 ? (byte)128 : (byte)8, reply = v6 ? (byte)129 : (byte)0;
                    if (type == request)
                    {
                        // An echo request and its reply, as a ping: the identifier tells the probes' pings apart.
                        pcap.Write(t, Icmp(v6, from, to, type, code, clientPort));
                        pcap.Write(t + 100, Icmp(v6, to, from, reply, 0, clientPort));
                    }
                    else
                    {
                        if (type != reply)
                        {
                            // Either direction is the same flow.
                            string pair = string.Join(' ', probe.Protocol, new[] { from.ToString(), to.ToString() }.Order(StringComparer.Ordinal));
                            if (!portless.Add(pair)) t += 40_000_000L;
                        }
                        pcap.Write(t, Icmp(v6, from, to, type, code, type == reply ? clientPort : (ushort)0));
                    }
                    break;
                default:
                    throw new InvalidDataException($"probe {i} ({probe}): unknown protocol {probe.Protocol}");
            }
        }

        static byte[] Icmp(bool v6, IPAddress from, IPAddress to, byte type, byte code, ushort identifier) =>
            v6 ? TestPcap.Icmpv6(from, to, type, code, identifier, sequence: 1) : TestPcap.Icmp(Ip(from), Ip(to), type, code, identifier, sequence: 1);
    }

    private static uint Ip(IPAddress address) => TestPcap.Ip(address.ToString());

    /// <summary>The topology as <c>kubectl get -o json</c> would list it, with the case's namespace relabels applied.</summary>
    private string ClusterJson()
    {
        var items = new JsonArray();
        var relabelled = (_case.TopologyChanges?.Namespaces ?? []).ToDictionary(n => n.Name, n => n.Labels, StringComparer.Ordinal);
        foreach (var ns in _suite.Topology.Namespaces)
        {
            items.Add(new JsonObject
            {
                ["apiVersion"] = "v1",
                ["kind"] = "Namespace",
                ["metadata"] = new JsonObject { ["name"] = ns.Name, ["labels"] = Labels(relabelled.GetValueOrDefault(ns.Name) ?? ns.Labels) },
            });
        }
        foreach (var account in _suite.Topology.ServiceAccounts)
        {
            items.Add(new JsonObject
            {
                ["apiVersion"] = "v1",
                ["kind"] = "ServiceAccount",
                ["metadata"] = new JsonObject { ["name"] = account.Name, ["namespace"] = account.Namespace, ["labels"] = Labels(account.Labels) },
            });
        }
        foreach (var node in _suite.Topology.Nodes)
        {
            items.Add(new JsonObject
            {
                ["apiVersion"] = "v1",
                ["kind"] = "Node",
                ["metadata"] = new JsonObject { ["name"] = node.Name, ["labels"] = Labels(node.Labels) },
                ["spec"] = PodCidrOf(node) is { } cidr ? new JsonObject { ["podCIDR"] = cidr, ["podCIDRs"] = new JsonArray(cidr) } : new JsonObject(),
                ["status"] = new JsonObject
                {
                    ["addresses"] = new JsonArray(
                        new JsonObject { ["type"] = "InternalIP", ["address"] = node.Ip },
                        new JsonObject { ["type"] = "Hostname", ["address"] = node.Name }),
                },
            });
        }
        foreach (var pod in _suite.Topology.Pods)
        {
            var ports = new JsonArray();
            foreach (var port in pod.Ports)
            {
                ports.Add(new JsonObject { ["name"] = port.Name, ["containerPort"] = port.Port, ["protocol"] = port.Protocol });
            }
            string nodeIp = _suite.Topology.Nodes.Single(n => n.Name == pod.Node).Ip;
            // A StatefulSet's pod is <set>-<ordinal>; a pod named otherwise is its own set's only pod.
            string owner = pod.Name.Contains('-', StringComparison.Ordinal) ? pod.Name[..pod.Name.LastIndexOf('-')] : pod.Name;
            var spec = new JsonObject
            {
                ["nodeName"] = pod.Node,
                ["hostNetwork"] = pod.HostNetwork,
                ["containers"] = new JsonArray(new JsonObject { ["name"] = "agnhost", ["image"] = "registry.k8s.io/e2e-test-images/agnhost:2.47", ["ports"] = ports }),
            };
            if (pod.ServiceAccount.Length > 0) spec["serviceAccountName"] = pod.ServiceAccount;
            items.Add(new JsonObject
            {
                ["apiVersion"] = "v1",
                ["kind"] = "Pod",
                ["metadata"] = new JsonObject
                {
                    ["name"] = pod.Name,
                    ["namespace"] = pod.Namespace,
                    ["uid"] = $"uid-{pod.Namespace}-{pod.Name}",
                    ["labels"] = Labels(pod.Labels),
                    ["ownerReferences"] = new JsonArray(new JsonObject
                    {
                        ["apiVersion"] = "apps/v1",
                        ["kind"] = "StatefulSet",
                        ["name"] = owner,
                        ["uid"] = $"uid-{pod.Namespace}-{owner}",
                        ["controller"] = true,
                    }),
                },
                ["spec"] = spec,
                ["status"] = new JsonObject
                {
                    ["phase"] = "Running",
                    ["hostIP"] = nodeIp,
                    ["podIP"] = pod.Ip,
                    ["podIPs"] = new JsonArray(new JsonObject { ["ip"] = pod.Ip }),
                },
            });
        }
        return new JsonObject { ["apiVersion"] = "v1", ["kind"] = "List", ["items"] = items }.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>A kind cluster's /24 per node, where the topology's pod IPs already lie (10.244.1.x on node-2, ...).</summary>
    private string? PodCidrOf(TopologyNode node)
    {
        var pod = _suite.Topology.Pods.FirstOrDefault(p => p.Node == node.Name && !p.HostNetwork);
        if (pod is null) return null;
        byte[] bytes = IPAddress.Parse(pod.Ip).GetAddressBytes();
        return $"{bytes[0]}.{bytes[1]}.{bytes[2]}.0/24";
    }

    private static JsonObject Labels(Dictionary<string, string> labels)
    {
        var json = new JsonObject();
        foreach (var (key, value) in labels) json[key] = value;
        return json;
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); }
        catch (IOException) { }
    }
}

/// <summary>What the flow log says about one probe.</summary>
internal sealed record ProbeOutcome(int Index, AdminProbe Probe, IReadOnlyList<JsonElement> Records)
{
    /// <summary>The flow's last record: its end, written when the capture ran out.</summary>
    public JsonElement? Last => Records.Count == 0 ? null : Records[^1];

    public string? Verdict => Last is { } r && r.TryGetProperty("verdict", out var v) ? v.GetString() : null;

    public string? Note => Last is { } r && r.TryGetProperty("verdict_note", out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    /// <summary>The side (egress or ingress) as written, or null when the record has none.</summary>
    public JsonElement? Side(string name) => Last is { } r && r.TryGetProperty(name, out var side) && side.ValueKind == JsonValueKind.Object ? side : null;

    public static IReadOnlyList<string> PoliciesOf(JsonElement side) =>
        side.TryGetProperty("policies", out var list) && list.ValueKind == JsonValueKind.Array ? [.. list.EnumerateArray().Select(p => p.GetString() ?? "")] : [];

    public static bool AllowedBy(JsonElement side) => !side.TryGetProperty("allowed", out var allowed) || allowed.ValueKind != JsonValueKind.False;

    /// <summary>One line for a failure message: the probe, what was expected, what was written, and why.</summary>
    public string Describe()
    {
        var text = new StringBuilder().Append(CultureInfo.InvariantCulture, $"probe #{Index + 1} {Probe}: expected {Probe.Expect}, observed {Verdict ?? "no record"}");
        foreach (string name in new[] { "egress", "ingress" })
        {
            text.Append("; ").Append(name).Append(": ");
            if (Side(name) is { } side) text.Append(AllowedBy(side) ? "allowed" : "denied").Append(" [").AppendJoin(", ", PoliciesOf(side)).Append(']');
            else text.Append("none");
        }
        if (Note is { } note) text.Append("; verdict_note: ").Append(note);
        return text.ToString();
    }
}
