using System.Net;
using k8s.Models;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;
using Tripline.Correlation.Manifests;
using Tripline.Correlation.Policy;

namespace Tripline.Tests.Correlation.Policy;

/// <summary>Builders for the pods, namespaces and policies that engine tests need, and a one-call evaluation.</summary>
internal static class PolicyBuilders
{
    public static PodInfo Pod(string ns, string name, string ip, Dictionary<string, string>? labels = null, params ContainerPortInfo[] ports) => new()
    {
        Namespace = ns,
        Name = name,
        Uid = $"uid-{ns}-{name}",
        Labels = LabelSet.Intern(labels ?? []),
        Ips = string.IsNullOrEmpty(ip) ? [] : [IPAddress.Parse(ip)],
        NodeName = "node-1",
        Phase = "Running",
        Ports = ports,
    };

    public static NamespaceInfo Namespace(string name, Dictionary<string, string>? labels = null) =>
        ClusterObjectConverter.ToNamespace(new V1Namespace { Metadata = new V1ObjectMeta { Name = name, Labels = labels ?? [] } });

    /// <summary>Policies from YAML, validated as the manifest loader validates them; a test with an invalid policy fails here.</summary>
    public static IReadOnlyList<V1NetworkPolicy> Policies(string yaml)
    {
        var loaded = ManifestLoader.LoadFromText(yaml);
        Assert.True(loaded.Errors.Count == 0, string.Join("\n", loaded.Errors));
        return loaded.Snapshot.Policies;
    }

    public static ClusterSnapshot Snapshot(IEnumerable<PodInfo> pods, string policiesYaml, IEnumerable<NamespaceInfo>? namespaces = null, IEnumerable<NodeInfo>? nodes = null, long version = 1)
    {
        var podList = pods.ToList();
        var nsList = (namespaces ?? []).ToList();
        foreach (string ns in podList.Select(p => p.Namespace).Distinct().Where(n => nsList.All(x => x.Name != n)).ToList()) nsList.Add(Namespace(ns));
        return new ClusterSnapshot(version, nsList, podList, [], [], nodes ?? [], Policies(policiesYaml));
    }

    public static ResolvedEndpoint AsEndpoint(this PodInfo pod) => new(EndpointKind.Pod, pod: pod);

    public static IpKey Ip(string ip) => IpKey.From(IPAddress.Parse(ip));

    public static IpKey IpOf(PodInfo pod) => IpKey.From(pod.Ips[0]);

    public static Verdict Evaluate(this PolicyEngine engine, PodInfo from, PodInfo to, int port, PolicyProtocol protocol = PolicyProtocol.TCP) =>
        engine.Evaluate(from.AsEndpoint(), IpOf(from), to.AsEndpoint(), IpOf(to), port, protocol);

    public static Explanation Explain(this PolicyEngine engine, PodInfo from, PodInfo to, int port, PolicyProtocol protocol = PolicyProtocol.TCP) =>
        engine.Explain(from.AsEndpoint(), IpOf(from), to.AsEndpoint(), IpOf(to), port, protocol);
}
