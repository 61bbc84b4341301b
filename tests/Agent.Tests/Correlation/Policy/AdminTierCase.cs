using System.Net;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Tripline.Tests.Correlation.Policy;

/// <summary>
/// One file of admin-tier cases (Fixtures/admin): a topology of nodes, namespaces and pods shared by every case, and
/// cases that each put a set of policies in force and probe connections against them.
/// </summary>
public sealed class AdminTierSuite
{
    public AdminTopology Topology { get; set; } = new();
    public List<AdminTierCase> Cases { get; set; } = [];

    private static readonly Lazy<AdminTierSuite> Cnp = new(() => Load("cnp-conformance.yaml"));
    private static readonly Lazy<AdminTierSuite> Anp = new(() => Load("anp-conformance.yaml"));
    private static readonly Lazy<AdminTierSuite> Interplay = new(() => Load("interplay-cases.yaml"));
    private static readonly Lazy<AdminTierSuite> CalicoCases = new(() => Load("calico", "calico-cases.yaml"));

    /// <summary>network-policy-api's v1alpha2 ClusterNetworkPolicy suite (main).</summary>
    public static AdminTierSuite ClusterNetworkPolicy => Cnp.Value;

    /// <summary>network-policy-api's v1alpha1 AdminNetworkPolicy / BaselineAdminNetworkPolicy suite (release-0.1).</summary>
    public static AdminTierSuite AdminNetworkPolicy => Anp.Value;

    /// <summary>This project's cases for the interplay of the Admin, NetworkPolicy and Baseline tiers.</summary>
    public static AdminTierSuite TierInterplay => Interplay.Value;

    /// <summary>Calico's policy semantics (Fixtures/calico): cases from Calico's documentation and Felix's tests.</summary>
    public static AdminTierSuite Calico => CalicoCases.Value;

    public AdminTierCase Case(string name) => Cases.Single(c => c.Name == name);

    public static AdminTierSuite Load(string fileName) => Load("admin", fileName);

    /// <param name="folder">The folder of Fixtures the file is in.</param>
    public static AdminTierSuite Load(string folder, string fileName)
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Correlation", "Policy", "Fixtures", folder, fileName);
        // Unknown keys fail the load: a field the harness does not know would otherwise be silently dropped.
        var deserializer = new DeserializerBuilder().WithNamingConvention(CamelCaseNamingConvention.Instance).Build();
        return deserializer.Deserialize<AdminTierSuite>(File.ReadAllText(path));
    }

    /// <summary>Where a probe goes: a pod (<c>ns/name</c>), a node (<c>node:name</c>) or a bare IP outside the cluster.</summary>
    public IPAddress AddressOf(string endpoint)
    {
        if (endpoint.StartsWith("node:", StringComparison.Ordinal)) return IPAddress.Parse(Topology.Nodes.Single(n => n.Name == endpoint[5..]).Ip);
        if (endpoint.Contains('/', StringComparison.Ordinal)) return IPAddress.Parse(Topology.Pods.Single(p => $"{p.Namespace}/{p.Name}" == endpoint).Ip);
        return IPAddress.Parse(endpoint);
    }
}

public sealed class AdminTopology
{
    public List<TopologyNode> Nodes { get; set; } = [];
    public List<TopologyNamespace> Namespaces { get; set; } = [];
    public List<TopologyPod> Pods { get; set; } = [];

    /// <summary>Written as ServiceAccount objects: Calico selects pods by their service account's labels.</summary>
    public List<TopologyServiceAccount> ServiceAccounts { get; set; } = [];
}

public sealed class TopologyServiceAccount
{
    public string Namespace { get; set; } = "";
    public string Name { get; set; } = "";
    public Dictionary<string, string> Labels { get; set; } = [];
}

public sealed class TopologyNode
{
    public string Name { get; set; } = "";
    public string Ip { get; set; } = "";
    public Dictionary<string, string> Labels { get; set; } = [];
}

public sealed class TopologyNamespace
{
    public string Name { get; set; } = "";
    public Dictionary<string, string> Labels { get; set; } = [];
}

public sealed class TopologyPod
{
    public string Namespace { get; set; } = "";
    public string Name { get; set; } = "";
    public Dictionary<string, string> Labels { get; set; } = [];

    /// <summary>For a host-network pod, its node's IP.</summary>
    public string Ip { get; set; } = "";
    public string Node { get; set; } = "";
    public bool HostNetwork { get; set; }

    /// <summary>The pod's spec.serviceAccountName; none written when empty.</summary>
    public string ServiceAccount { get; set; } = "";

    /// <summary>Only the ports declared in the pod spec: named ports resolve against these.</summary>
    public List<TopologyPort> Ports { get; set; } = [];
}

public sealed class TopologyPort
{
    public string Name { get; set; } = "";
    public int Port { get; set; }
    public string Protocol { get; set; } = "TCP";
}

public sealed class AdminTierCase
{
    public string Name { get; set; } = "";

    /// <summary>The upstream test and subtest, or the documentation an own case rests on.</summary>
    public string Source { get; set; } = "";

    /// <summary>Informational: the upstream base manifest the policies derive from.</summary>
    public string? Manifest { get; set; }

    /// <summary>Every policy in force for this case, as YAML documents (admin-tier kinds and NetworkPolicies).</summary>
    public string Policies { get; set; } = "";

    [YamlMember(Alias = "topology_changes", ApplyNamingConventions = false)]
    public TopologyChanges? TopologyChanges { get; set; }

    public List<AdminProbe> Probes { get; set; } = [];

    public override string ToString() => Name;
}

/// <summary>For one case only: these namespaces' labels are replaced (upstream relabels a namespace mid-test).</summary>
public sealed class TopologyChanges
{
    public List<TopologyNamespace> Namespaces { get; set; } = [];
}

public sealed class AdminProbe
{
    public string From { get; set; } = "";
    public string To { get; set; } = "";
    /// <summary>The destination port; none (0) for ICMP and ICMPv6.</summary>
    public int Port { get; set; }
    public string Protocol { get; set; } = "TCP";

    /// <summary>For ICMP and ICMPv6: the type and code of the first message (an echo request is 8/0, or 128/0).</summary>
    public int? IcmpType { get; set; }
    public int? IcmpCode { get; set; }

    /// <summary><c>allow</c>, or <c>deny</c> where upstream expects the connection attempt to time out.</summary>
    public string Expect { get; set; } = "";

    /// <summary>
    /// The verdict with the case's staged policies put in force, where the case has any: the record's
    /// <c>staged.verdict</c>, written only when it differs from <see cref="Expect"/>.
    /// </summary>
    public string? Staged { get; set; }

    public bool IsIcmp => Protocol is "ICMP" or "ICMPv6";

    public override string ToString() => IsIcmp
        ? $"{From} -> {To} {Protocol} {IcmpType}/{IcmpCode}"
        : $"{From} -> {To} {Port}/{Protocol}";
}
