using System.Text.Json;

namespace Tripline.Report;

/// <summary>The report's facts as one JSON object (docs/report.md lists the fields). Written by hand, so the bytes depend on the input alone.</summary>
internal static class ReportJson
{
    public const int Version = 1;

    public static void Write(ReportFacts facts, Stream stream)
    {
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteNumber("report_version", Version);
        WriteCoverage(w, facts.Coverage);
        WritePosture(w, facts.Posture);
        WriteTable(w, "exposure", facts.Exposure, WriteExposure);
        WriteTable(w, "violations", facts.Violations, WriteViolation);
        w.WriteStartObject("mesh");
        w.WriteNumber("records_with_mesh_data", facts.Mesh.RecordsWithMeshData);
        w.WriteNumber("plaintext_flows", facts.Mesh.PlaintextFlows);
        WriteTable(w, "plaintext", facts.Mesh.Plaintext, WritePlaintext);
        w.WriteEndObject();
        WriteMap(w, facts.Map);
        w.WriteEndObject();
        w.Flush();
    }

    private static void WriteTable<T>(Utf8JsonWriter w, string name, Limited<T> table, Action<Utf8JsonWriter, T> item)
    {
        w.WriteStartObject(name);
        w.WriteNumber("total", table.Total);
        w.WriteNumber("omitted", table.Omitted);
        w.WriteStartArray("items");
        foreach (var entry in table.Items) item(w, entry);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void Strings(Utf8JsonWriter w, string name, IEnumerable<string> values)
    {
        w.WriteStartArray(name);
        foreach (string value in values) w.WriteStringValue(value);
        w.WriteEndArray();
    }

    private static void WriteCoverage(Utf8JsonWriter w, Coverage c)
    {
        w.WriteStartObject("coverage");
        w.WriteString("input_kind", c.InputKind);
        Strings(w, "inputs", c.Inputs);
        w.WriteString("cluster", c.Cluster);
        // A null string is written as JSON null: a period not given, or no flow seen.
        w.WriteString("since", c.Since);
        w.WriteString("until", c.Until);
        w.WriteString("first_seen", c.FirstSeen);
        w.WriteString("last_seen", c.LastSeen);
        w.WriteNumber("records", c.Records);
        w.WriteNumber("unreadable_records", c.Unreadable);
        w.WriteNumber("records_outside_period", c.OutsidePeriod);
        w.WriteNumber("flows", c.Flows);
        w.WriteNumber("allowed_flows", c.AllowedFlows);
        w.WriteNumber("denied_flows", c.DeniedFlows);
        w.WriteNumber("aggregated_flows", c.AggregatedFlows);
        w.WriteNumber("endpoint_pairs", c.EndpointPairs);
        Strings(w, "nodes", c.Nodes);
        w.WriteNumber("namespaces", c.Namespaces);
        w.WriteNumber("pods", c.Pods);
        w.WriteNumber("workloads", c.Workloads);
        w.WriteNumber("policies", c.Policies);
        w.WriteEndObject();
    }

    private static void WritePosture(Utf8JsonWriter w, Posture p)
    {
        w.WriteStartObject("posture");
        w.WriteNumber("pods", p.PodsJudged);
        w.WriteNumber("pods_without_ingress_policy", p.PodsWithoutIngressPolicy);
        w.WriteNumber("pods_without_egress_policy", p.PodsWithoutEgressPolicy);
        WriteTable(w, "unprotected_workloads", p.Unprotected, static (w, u) =>
        {
            w.WriteStartObject();
            w.WriteString("namespace", u.Namespace);
            w.WriteString("workload", u.Workload);
            w.WriteNumber("pods", u.Pods);
            w.WriteNumber("pods_without_ingress_policy", u.IngressUnprotected);
            w.WriteNumber("pods_without_egress_policy", u.EgressUnprotected);
            w.WriteEndObject();
        });
        w.WriteStartArray("namespaces");
        foreach (var n in p.Namespaces)
        {
            w.WriteStartObject();
            w.WriteString("namespace", n.Namespace);
            w.WriteNumber("pods", n.Pods);
            w.WriteBoolean("default_deny_ingress", n.IngressDenied);
            w.WriteBoolean("default_deny_egress", n.EgressDenied);
            Strings(w, "ingress_policies", n.IngressPolicies);
            Strings(w, "egress_policies", n.EgressPolicies);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        Strings(w, "policies_selecting_no_pod", p.PoliciesSelectingNoPod);
        w.WriteNumber("rules", p.Rules);
        w.WriteNumber("pairs_explained", p.PairsExplained);
        w.WriteNumber("pairs_not_explained", p.PairsNotExplained);
        WriteTable(w, "rules_without_flows", p.RulesWithoutFlows, static (w, r) =>
        {
            w.WriteStartObject();
            w.WriteString("policy", r.Policy);
            w.WriteString("direction", r.Direction);
            w.WriteString("rule", r.Rule);
            w.WriteEndObject();
        });
        w.WriteEndObject();
    }

    private static void WriteExposure(Utf8JsonWriter w, WorkloadExposure e)
    {
        w.WriteStartObject();
        w.WriteString("namespace", e.Namespace);
        w.WriteString("workload", e.Workload);
        w.WriteNumber("pods", e.Pods);
        w.WriteStartArray("ports");
        foreach (var p in e.Ports)
        {
            w.WriteStartObject();
            w.WriteNumber("port", p.Port);
            w.WriteString("protocol", p.Protocol);
            Reach(w, "same_namespace", p.SameNamespace);
            Reach(w, "other_namespaces", p.OtherNamespaces);
            Strings(w, "other_namespaces_allowed", p.OtherNamespaces.Namespaces);
            w.WriteStartObject("outside");
            w.WriteBoolean("allowed", p.Outside);
            w.WriteNumber("used_by_addresses", p.OutsideUsed);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();

        static void Reach(Utf8JsonWriter w, string name, PeerReach reach)
        {
            w.WriteStartObject(name);
            w.WriteNumber("allowed_workloads", reach.Allowed);
            w.WriteNumber("workloads", reach.Of);
            w.WriteNumber("used_by_workloads", reach.Used);
            w.WriteEndObject();
        }
    }

    private static void WriteViolation(Utf8JsonWriter w, Violation v)
    {
        w.WriteStartObject();
        w.WriteString("src", v.Source);
        w.WriteString("dst", v.Destination);
        if (v.Port is { } port) w.WriteNumber("port", port); else w.WriteNull("port");
        w.WriteString("protocol", v.Protocol);
        w.WriteString("denied_by", v.Direction);
        Strings(w, "policies", v.Policies);
        w.WriteNumber("flows", v.Flows);
        w.WriteString("first_seen", v.First);
        w.WriteString("last_seen", v.Last);
        w.WriteStartObject("enforcement");
        foreach (var (name, n) in v.Enforcement) w.WriteNumber(name, n);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WritePlaintext(Utf8JsonWriter w, PlaintextFinding f)
    {
        w.WriteStartObject();
        w.WriteString("src", f.Source);
        w.WriteString("dst", f.Destination);
        if (f.Port is { } port) w.WriteNumber("port", port); else w.WriteNull("port");
        w.WriteString("protocol", f.Protocol);
        w.WriteString("reason", f.Reason);
        w.WriteString("peer_authentication", f.PeerAuthentication);
        w.WriteNumber("flows", f.Flows);
        w.WriteString("first_seen", f.First);
        w.WriteString("last_seen", f.Last);
        w.WriteEndObject();
    }

    private static void WriteMap(Utf8JsonWriter w, TrafficMap map)
    {
        w.WriteStartObject("map");
        w.WriteNumber("total_nodes", map.TotalNodes);
        w.WriteNumber("total_edges", map.TotalEdges);
        w.WriteNumber("omitted_edges", map.TotalEdges - map.Edges.Count);
        w.WriteStartArray("nodes");
        foreach (var n in map.Nodes)
        {
            w.WriteStartObject();
            w.WriteString("id", n.Id);
            w.WriteString("namespace", n.Namespace);
            w.WriteString("label", n.Label);
            w.WriteNumber("flows", n.Flows);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("edges");
        foreach (var e in map.Edges)
        {
            w.WriteStartObject();
            w.WriteString("src", e.Source);
            w.WriteString("dst", e.Destination);
            w.WriteString("verdict", e.Verdict);
            w.WriteNumber("flows", e.Flows);
            w.WriteNumber("allowed_flows", e.AllowedFlows);
            w.WriteNumber("denied_flows", e.DeniedFlows);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
