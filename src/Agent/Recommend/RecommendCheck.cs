using System.Globalization;
using System.Text;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;
using Tripline.Correlation.Policy;
using Tripline.Records;
using Tripline.WhatIf;

namespace Tripline.Recommend;

/// <summary>A pair the check found newly denied or could not judge, with why.</summary>
internal sealed record CheckFinding(ReadPair Read, string Reason);

/// <summary>The check's answer: the flows judged, those newly denied, those it could not judge.</summary>
internal sealed record CheckResult(long Judged, long NewlyDeniedFlows, IReadOnlyList<CheckFinding> NewlyDenied, IReadOnlyList<CheckFinding> NotJudgeable);

/// <summary>Tightness: of the unobserved pod pairs and ports of the namespaces, the share the recommended set denies.</summary>
internal sealed record Tightness(long Denied, long Unobserved)
{
    public double Share => Unobserved == 0 ? 1 : (double)Denied / Unobserved;
}

/// <summary>
/// Proves a recommendation on the traffic it came from: the recorded flows judged by whatif's engine against the
/// cluster as it is and with the recommended documents applied (as <c>tripline whatif --apply</c> would), and how
/// much of what was not observed the recommended set alone denies.
/// </summary>
internal static class RecommendCheck
{
    public static CheckResult Run(ClusterSnapshot before, ClusterSnapshot applied, IEnumerable<ReadPair> pairs, Func<ReadPair, bool> inScope)
    {
        var problems = new List<string>();
        var after = ClusterChange.Apply(before, applied, [], problems);
        var analysis = new WhatIfAnalysis(before, after);
        var newlyDenied = new List<CheckFinding>();
        var notJudgeable = new List<CheckFinding>();
        long judged = 0, deniedFlows = 0;
        foreach (var read in pairs)
        {
            if (read.Pair.AllowedFlows == 0 || !inScope(read)) continue;
            var record = new FlowRecordFields
            {
                Event = "end"u8,
                Protocol = Encoding.UTF8.GetBytes(read.Pair.Protocol),
                Source = read.Pair.Source,
                Destination = read.Pair.Destination,
            };
            var verdicts = analysis.Judge(in record);
            if (verdicts.NotJudgeable is { } reason)
            {
                notJudgeable.Add(new CheckFinding(read, reason));
                continue;
            }
            judged += read.Pair.AllowedFlows;
            if (verdicts.Change != Change.NewlyDenied) continue;
            deniedFlows += read.Pair.AllowedFlows;
            newlyDenied.Add(new CheckFinding(read, Deciding(verdicts.After!)));
        }
        return new CheckResult(judged, deniedFlows, newlyDenied, notJudgeable);
    }

    /// <summary>The sides that deny, with the policies that isolate them.</summary>
    private static string Deciding(Verdict after)
    {
        var parts = new List<string>();
        if (after.Egress is { Allowed: false } egress) parts.Add($"egress denied (isolated by {string.Join(", ", egress.Policies)})");
        if (after.Ingress is { Allowed: false } ingress) parts.Add($"ingress denied (isolated by {string.Join(", ", ingress.Policies)})");
        return parts.Count > 0 ? string.Join("; ", parts) : "denied";
    }

    /// <summary>
    /// Every ordered pair of pods of the namespaces (a workload's pods judged through one of them, weighted by their
    /// number) on every port the namespaces' pods declare or were reached on, less what was observed, judged against
    /// the cluster with the recommended documents as its only policies.
    /// </summary>
    public static Tightness Measure(ClusterSnapshot cluster, ClusterSnapshot applied, RecommendationBuilder builder, IReadOnlyList<string> namespaces)
    {
        var alone = new ClusterSnapshot(cluster.Version + 1, cluster.Namespaces.Values, cluster.Pods, cluster.Services, cluster.EndpointSlices, cluster.Nodes,
            applied.Policies, applied.AdminPolicies, [.. cluster.CalicoObjects.Where(o => o.Kind == CalicoObject.Tier), .. applied.CalicoObjects], cluster.ServiceAccounts.Values,
            cluster.PeerAuthentications);
        var model = ClusterModel.Build(alone);
        long denied = 0, unobserved = 0;
        foreach (string ns in namespaces)
        {
            var workloads = builder.Workloads.Values.Where(w => w.Namespace == ns && w.Representative is { Ips.Count: > 0 })
                .OrderBy(w => w.Name, StringComparer.Ordinal).ToList();
            var ports = new SortedSet<(string Protocol, int Port)>();
            foreach (var w in workloads)
            {
                foreach (var p in w.DeclaredPorts) if (p.Protocol is "TCP" or "UDP" or "SCTP") ports.Add((p.Protocol, p.Port));
            }
            foreach (var edge in builder.PodEdges)
            {
                if (edge.To.StartsWith(ns + "/", StringComparison.Ordinal) && edge.Protocol is "TCP" or "UDP" or "SCTP") ports.Add((edge.Protocol, edge.Port));
            }
            foreach (var from in workloads)
            {
                var source = new ResolvedEndpoint(EndpointKind.Pod, pod: from.Representative);
                var sourceIp = IpKey.From(from.Representative!.Ips[0]);
                foreach (var to in workloads)
                {
                    long weight = from == to ? (long)from.Pods.Count * (from.Pods.Count - 1) : (long)from.Pods.Count * to.Pods.Count;
                    if (weight == 0) continue;
                    // Two pods of one workload, never a pod with itself: an endpoint's traffic to itself is not policed.
                    var target = from == to ? to.Second : to.Representative;
                    if (target is not { Ips.Count: > 0 }) continue;
                    var destination = new ResolvedEndpoint(EndpointKind.Pod, pod: target);
                    var destinationIp = IpKey.From(target.Ips[0]);
                    foreach (var (protocol, port) in ports)
                    {
                        if (builder.PodEdges.Contains(($"{ns}/{from.Name}", $"{ns}/{to.Name}", port, protocol))) continue;
                        unobserved += weight;
                        var verdict = model.JudgeResolved(in source, sourceIp, in destination, destinationIp, port, Enum.Parse<PolicyProtocol>(protocol)).Verdict;
                        if (!verdict.Allowed) denied += weight;
                    }
                }
            }
        }
        return new Tightness(denied, unobserved);
    }

    public static string Percent(double share) => (share * 100).ToString("0.0", CultureInfo.InvariantCulture) + "%";
}
