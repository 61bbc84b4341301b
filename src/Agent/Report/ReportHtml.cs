using System.Globalization;
using System.Net;
using System.Text;

namespace Tripline.Report;

/// <summary>
/// The report as one self-contained HTML page: inline styles, the map as inline SVG, no script and no fetch, so it
/// opens from disk, prints, and can be handed over as it is. Every string from the input is HTML-encoded.
/// Sections carry stable ids (coverage, posture, exposure, violations, mesh, map).
/// </summary>
internal static class ReportHtml
{
    private const string Style = """
        body { font-family: "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; color: #1c2833; margin: 0 auto; max-width: 1180px; padding: 24px; line-height: 1.4; }
        h1 { font-size: 1.7em; margin: 0 0 4px; }
        h2 { font-size: 1.3em; border-bottom: 2px solid #37474f; padding-bottom: 4px; margin-top: 32px; }
        h3 { font-size: 1.05em; margin: 20px 0 6px; }
        .subtitle { color: #546e7a; margin: 0 0 16px; }
        nav a { margin-right: 14px; color: #1565c0; }
        table { border-collapse: collapse; width: 100%; font-size: 0.9em; margin: 6px 0; }
        th, td { overflow-wrap: anywhere; text-align: left; padding: 4px 8px; border-bottom: 1px solid #cfd8dc; vertical-align: top; }
        th { background: #eceff1; overflow-wrap: normal; }
        td.num, td.port, td.enforcement { white-space: nowrap; overflow-wrap: normal; }
        tr:nth-child(even) td { background: #fafafa; }
        td.time { font-size: 0.85em; white-space: nowrap; }
        td.policies code { display: block; }
        td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
        .cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 10px 0; }
        .card { border: 1px solid #cfd8dc; border-radius: 6px; padding: 8px 14px; min-width: 150px; }
        .card .value { font-size: 1.5em; font-weight: bold; }
        .card.bad .value { color: #c62828; }
        .card.good .value { color: #2e7d32; }
        .bad { color: #c62828; font-weight: bold; }
        .good { color: #2e7d32; }
        .note, .more { color: #546e7a; font-size: 0.9em; }
        .more { font-style: italic; }
        code { font-family: "DejaVu Sans Mono", monospace; font-size: 0.92em; }
        dl.facts { display: grid; grid-template-columns: max-content auto; gap: 3px 16px; }
        dl.facts dt { font-weight: bold; }
        dl.facts dd { margin: 0; }
        .legend span { display: inline-block; margin-right: 18px; }
        .legend i { display: inline-block; width: 26px; height: 4px; vertical-align: middle; margin-right: 6px; }
        .map-box { overflow-x: auto; border: 1px solid #cfd8dc; border-radius: 6px; padding: 6px; }
        svg.traffic-map { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; font-size: 12px; max-width: 100%; height: auto; }
        svg .map-namespace { font-weight: bold; fill: #37474f; }
        footer { margin-top: 40px; color: #78909c; font-size: 0.85em; }
        @media print { body { max-width: none; padding: 0; } nav { display: none; } section { break-inside: avoid-page; } .map-box { overflow: visible; } }
        """;

    public static void Write(ReportFacts facts, Stream stream)
    {
        var html = new StringBuilder(64 * 1024);
        var c = facts.Coverage;
        html.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        // No network: a policy that forbids every fetch, so that nothing in the page could reach out.
        html.Append("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n");
        html.Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        html.Append("<title>Tripline audit report").Append(Period(c) is { Length: > 0 } title ? " — " + E(title) : "").Append("</title>\n");
        html.Append("<style>\n").Append(Style).Append("\n</style>\n</head>\n<body>\n");
        html.Append("<header><h1>Tripline audit report</h1>\n<p class=\"subtitle\">").Append(E(Period(c) is { Length: > 0 } p ? "Traffic from " + p : "No traffic in the period"))
            .Append(" · ").Append(N(c.Flows)).Append(" flows on ").Append(N(c.Nodes.Count)).Append(c.Nodes.Count == 1 ? " node" : " nodes").Append("</p>\n");
        html.Append("<nav><a href=\"#coverage\">Coverage</a><a href=\"#posture\">Posture</a><a href=\"#exposure\">Exposure</a><a href=\"#violations\">Violations</a><a href=\"#mesh\">Mesh</a><a href=\"#map\">Map</a></nav></header>\n");
        Coverage(html, c);
        Posture(html, facts.Posture);
        Exposure(html, facts.Exposure);
        Violations(html, facts.Violations, c.DeniedFlows);
        Mesh(html, facts.Mesh);
        Map(html, facts.Map);
        html.Append("<footer>Written by <code>tripline report</code> (report version ").Append(ReportJson.Version)
            .Append("). Posture and exposure are computed by Tripline's policy engine from the cluster given, not from traffic; the traffic says which rules matched and which reach was used. docs/report.md says how each fact is computed.</footer>\n");
        html.Append("</body>\n</html>\n");
        var bytes = Encoding.UTF8.GetBytes(html.ToString());
        stream.Write(bytes);
    }

    private static string Period(Coverage c)
    {
        string? from = c.Since ?? c.FirstSeen, to = c.Until ?? c.LastSeen;
        return from is null && to is null ? "" : $"{from ?? "the beginning"} to {to ?? "the end"}";
    }

    private static void Coverage(StringBuilder html, Coverage c)
    {
        html.Append("<section id=\"coverage\">\n<h2>What was covered</h2>\n<dl class=\"facts\">\n");
        Fact(html, "Period asked", c.Since is null && c.Until is null ? "everything in the inputs" : $"{c.Since ?? "the beginning"} to {c.Until ?? "the end"}");
        Fact(html, "Traffic seen", c.FirstSeen is null ? "none" : $"{c.FirstSeen} to {c.LastSeen}");
        Fact(html, "Flows", $"{N(c.Flows)} ({N(c.AllowedFlows)} allowed, {N(c.DeniedFlows)} denied) in {N(c.EndpointPairs)} endpoint pairs");
        Fact(html, "Records read", $"{N(c.Records)}{(c.OutsidePeriod > 0 ? $", {N(c.OutsidePeriod)} outside the period" : "")}{(c.Unreadable > 0 ? $", {N(c.Unreadable)} unreadable" : "")}");
        if (c.AggregatedFlows > 0) Fact(html, "Folded by the flood guard", $"{N(c.AggregatedFlows)} flows in aggregate records (counted, not judged)");
        Fact(html, "Nodes", c.Nodes.Count == 0 ? "none" : string.Join(", ", c.Nodes));
        Fact(html, "Cluster", $"{c.Cluster}: {N(c.Namespaces)} namespaces, {N(c.Pods)} pods in {N(c.Workloads)} workloads, {N(c.Policies)} policies");
        html.Append("<dt>").Append(c.InputKind == "pcap" ? "Captures read" : "Flow logs read").Append("</dt><dd>");
        foreach (string input in c.Inputs.Take(20)) html.Append("<code>").Append(E(input)).Append("</code><br>");
        if (c.Inputs.Count > 20) html.Append("<span class=\"more\">and ").Append(N(c.Inputs.Count - 20)).Append(" more files</span>");
        html.Append("</dd>\n</dl>\n</section>\n");
    }

    private static void Fact(StringBuilder html, string name, string value) => html.Append("<dt>").Append(E(name)).Append("</dt><dd>").Append(E(value)).Append("</dd>\n");

    private static void Posture(StringBuilder html, Posture p)
    {
        html.Append("<section id=\"posture\">\n<h2>Posture</h2>\n");
        int withoutDeny = p.Namespaces.Count(n => !n.IngressDenied && n.Pods > 0);
        html.Append("<div class=\"cards\">");
        Card(html, "pods no policy selects for ingress", p.PodsWithoutIngressPolicy, $"of {N(p.PodsJudged)}");
        Card(html, "pods no policy selects for egress", p.PodsWithoutEgressPolicy, $"of {N(p.PodsJudged)}");
        Card(html, "namespaces with pods and no default deny", withoutDeny, $"of {N(p.Namespaces.Count(n => n.Pods > 0))}");
        Card(html, "policies that select no pod", p.PoliciesSelectingNoPod.Count, "");
        Card(html, "rules that matched no flow", p.RulesWithoutFlows.Total, $"of {N(p.Rules)}");
        html.Append("</div>\n");

        html.Append("<h3 id=\"unprotected\">Pods no policy selects</h3>\n");
        if (p.Unprotected.Total == 0) html.Append("<p class=\"good\">Every pod is selected by some policy for ingress and for egress.</p>\n");
        else
        {
            html.Append("<table><thead><tr><th>namespace</th><th>workload</th><th class=\"num\">pods</th><th class=\"num\">without an ingress policy</th><th class=\"num\">without an egress policy</th></tr></thead><tbody>\n");
            foreach (var u in p.Unprotected.Items)
            {
                html.Append("<tr><td>").Append(E(u.Namespace)).Append("</td><td>").Append(E(u.Workload)).Append("</td>");
                Num(html, u.Pods);
                html.Append("<td class=\"num").Append(u.IngressUnprotected > 0 ? " bad" : "").Append("\">").Append(N(u.IngressUnprotected)).Append("</td>");
                Num(html, u.EgressUnprotected);
                html.Append("</tr>\n");
            }
            html.Append("</tbody></table>\n");
            More(html, p.Unprotected.Omitted, "workloads");
        }

        html.Append("<h3 id=\"default-deny\">Default deny by namespace</h3>\n<p class=\"note\">A namespace denies by default when a new pod without labels there would be denied ingress from an outside address and from a pod of another namespace (egress: to an outside address), under every policy kind judged.</p>\n");
        html.Append("<table><thead><tr><th>namespace</th><th class=\"num\">pods</th><th>ingress</th><th>egress</th><th>policies that would select a new pod</th></tr></thead><tbody>\n");
        foreach (var n in p.Namespaces)
        {
            html.Append("<tr><td>").Append(E(n.Namespace)).Append("</td>");
            Num(html, n.Pods);
            html.Append(n.IngressDenied ? "<td class=\"good\">default deny</td>" : "<td class=\"bad\">no default deny</td>");
            html.Append(n.EgressDenied ? "<td class=\"good\">default deny</td>" : "<td>no default deny</td>");
            html.Append("<td>").Append(E(string.Join(", ", n.IngressPolicies.Concat(n.EgressPolicies).Distinct().Order(StringComparer.Ordinal)))).Append("</td></tr>\n");
        }
        html.Append("</tbody></table>\n");

        html.Append("<h3 id=\"policies-no-pod\">Policies that select no pod</h3>\n");
        if (p.PoliciesSelectingNoPod.Count == 0) html.Append("<p class=\"good\">Every policy selects at least one pod.</p>\n");
        else
        {
            html.Append("<ul>");
            foreach (string name in p.PoliciesSelectingNoPod) html.Append("<li><code>").Append(E(name)).Append("</code></li>");
            html.Append("</ul>\n");
        }

        html.Append("<h3 id=\"rules-no-flow\">Rules that matched no flow in the period</h3>\n<p class=\"note\">Each distinct pair of the traffic was explained by the engine (")
            .Append(N(p.PairsExplained)).Append(" explained").Append(p.PairsNotExplained > 0 ? $", {N(p.PairsNotExplained)} could not be: their Service or node is not in the cluster given" : "")
            .Append("); a rule matched when it admitted a flow (NetworkPolicy) or decided it (tiers).</p>\n");
        if (p.RulesWithoutFlows.Total == 0) html.Append(p.Rules == 0 ? "<p>No policy has rules.</p>\n" : "<p class=\"good\">Every rule matched some flow.</p>\n");
        else
        {
            html.Append("<table><thead><tr><th>policy</th><th>direction</th><th>rule</th></tr></thead><tbody>\n");
            foreach (var r in p.RulesWithoutFlows.Items)
            {
                html.Append("<tr><td><code>").Append(E(r.Policy)).Append("</code></td><td>").Append(E(r.Direction)).Append("</td><td><code>").Append(E(r.Rule)).Append("</code></td></tr>\n");
            }
            html.Append("</tbody></table>\n");
            More(html, p.RulesWithoutFlows.Omitted, "rules");
        }
        html.Append("</section>\n");
    }

    private static void Exposure(StringBuilder html, Limited<WorkloadExposure> exposure)
    {
        html.Append("<section id=\"exposure\">\n<h2>Exposure</h2>\n<p class=\"note\">Who may reach each workload under the policies, computed by the engine (every other workload's pod, and the outside address 203.0.113.1, probed on each port the workload declares, its Services send to, its ingress rules name or traffic used), against who did: \"used\" counts the peers whose allowed traffic reached that port. Widest open first.</p>\n");
        if (exposure.Total == 0)
        {
            html.Append("<p>No workload with an address and a port in the cluster given.</p>\n</section>\n");
            return;
        }
        html.Append("<table><thead><tr><th>workload</th><th>port</th><th>its namespace: allowed / used</th><th>other namespaces: allowed / used</th><th>outside the cluster</th></tr></thead><tbody>\n");
        foreach (var w in exposure.Items)
        {
            bool first = true;
            foreach (var port in w.Ports)
            {
                html.Append("<tr>");
                if (first) html.Append("<td rowspan=\"").Append(w.Ports.Count).Append("\">").Append(E($"{w.Namespace}/{w.Workload}")).Append("<br><span class=\"note\">").Append(N(w.Pods)).Append(w.Pods == 1 ? " pod" : " pods").Append("</span></td>");
                first = false;
                html.Append("<td class=\"port\">").Append(port.Port).Append('/').Append(E(port.Protocol)).Append("</td>");
                Reach(html, port.SameNamespace, null);
                Reach(html, port.OtherNamespaces, port.OtherNamespaces.Namespaces);
                html.Append(port.Outside ? "<td class=\"bad\">allowed" : "<td class=\"good\">denied");
                if (port.OutsideUsed > 0) html.Append(" · used by ").Append(N(port.OutsideUsed)).Append(port.OutsideUsed == 1 ? " address" : " addresses");
                html.Append("</td></tr>\n");
            }
        }
        html.Append("</tbody></table>\n");
        More(html, exposure.Omitted, "workloads");
        html.Append("</section>\n");
    }

    private static void Reach(StringBuilder html, PeerReach reach, IReadOnlyList<string>? namespaces)
    {
        if (reach.Of == 0)
        {
            html.Append("<td class=\"note\">no other workload</td>");
            return;
        }
        string share = reach.Allowed == reach.Of ? "all " + N(reach.Of) : $"{N(reach.Allowed)} of {N(reach.Of)}";
        html.Append("<td").Append(reach.Allowed > reach.Used ? " class=\"wide\"" : "").Append('>').Append(share).Append(" · used by ").Append(N(reach.Used));
        if (namespaces is { Count: > 0 } && reach.Allowed < reach.Of)
        {
            html.Append("<br><span class=\"note\">from ").Append(E(string.Join(", ", namespaces.Take(8)))).Append(namespaces.Count > 8 ? $" and {N(namespaces.Count - 8)} more" : "").Append("</span>");
        }
        html.Append("</td>");
    }

    private static void Violations(StringBuilder html, Limited<Violation> violations, long deniedFlows)
    {
        html.Append("<section id=\"violations\">\n<h2>Violations</h2>\n");
        if (violations.Total == 0)
        {
            html.Append("<p class=\"good\">No denied flow in the period.</p>\n</section>\n");
            return;
        }
        html.Append("<p>").Append(N(deniedFlows)).Append(" denied flows, by workload pair, port and the policies that decided (the side that denied and the policies that isolate it). <code>not_enforced</code>: the network let it through.</p>\n");
        html.Append("<table><thead><tr><th>source</th><th>destination</th><th>port</th><th>denied by</th><th class=\"num\">flows</th><th>first seen</th><th>last seen</th><th>enforcement</th></tr></thead><tbody>\n");
        foreach (var v in violations.Items)
        {
            html.Append("<tr><td>").Append(E(v.Source)).Append("</td><td>").Append(E(v.Destination)).Append("</td><td class=\"port\">")
                .Append(v.Port is { } port ? port.ToString(CultureInfo.InvariantCulture) + "/" : "").Append(E(v.Protocol)).Append("</td><td class=\"policies\">")
                .Append(E(v.Direction)).Append(':');
            foreach (string policy in v.Policies) html.Append("<code>").Append(E(policy)).Append("</code>");
            html.Append("</td>");
            Num(html, v.Flows);
            html.Append("<td class=\"time\">").Append(E(Time(v.First))).Append("</td><td class=\"time\">").Append(E(Time(v.Last))).Append("</td><td class=\"enforcement\">");
            html.Append(string.Join("<br>", v.Enforcement.Select(e => (e.Key == "not_enforced" ? "<span class=\"bad\">" : "<span>") + E(e.Key) + " " + N(e.Value) + "</span>")));
            html.Append("</td></tr>\n");
        }
        html.Append("</tbody></table>\n");
        More(html, violations.Omitted, "groups of denied flows");
        html.Append("</section>\n");
    }

    private static void Mesh(StringBuilder html, MeshFacts mesh)
    {
        html.Append("<section id=\"mesh\">\n<h2>Mesh</h2>\n");
        if (mesh.RecordsWithMeshData == 0)
        {
            html.Append("<p class=\"note\">There is no mesh data: no record in the period carries <code>tls</code> or <code>mesh</code>.</p>\n</section>\n");
            return;
        }
        html.Append("<p>").Append(N(mesh.RecordsWithMeshData)).Append(" flows carry mesh data. Plaintext (not TLS) between two meshed pods, or into a pod whose PeerAuthentication is STRICT:</p>\n");
        if (mesh.Plaintext.Total == 0)
        {
            html.Append("<p class=\"good\">No plaintext flow between meshed pods.</p>\n</section>\n");
            return;
        }
        html.Append("<table><thead><tr><th>source</th><th>destination</th><th>port</th><th>finding</th><th>PeerAuthentication</th><th class=\"num\">flows</th><th>first seen</th><th>last seen</th></tr></thead><tbody>\n");
        foreach (var f in mesh.Plaintext.Items)
        {
            html.Append("<tr><td>").Append(E(f.Source)).Append("</td><td>").Append(E(f.Destination)).Append("</td><td class=\"port\">")
                .Append(f.Port is { } port ? port.ToString(CultureInfo.InvariantCulture) + "/" : "").Append(E(f.Protocol)).Append("</td><td class=\"bad\">plaintext ")
                .Append(E(f.Reason)).Append("</td><td>").Append(E(f.PeerAuthentication)).Append("</td>");
            Num(html, f.Flows);
            html.Append("<td class=\"time\">").Append(E(Time(f.First))).Append("</td><td class=\"time\">").Append(E(Time(f.Last))).Append("</td></tr>\n");
        }
        html.Append("</tbody></table>\n");
        More(html, mesh.Plaintext.Omitted, "plaintext findings");
        html.Append("</section>\n");
    }

    private static void Map(StringBuilder html, TrafficMap map)
    {
        html.Append("<section id=\"map\">\n<h2>Map of the observed traffic</h2>\n");
        if (map.Edges.Count == 0)
        {
            html.Append("<p class=\"note\">No traffic to draw.</p>\n</section>\n");
            return;
        }
        html.Append("<p class=\"legend\"><span><i style=\"background:").Append(TrafficMapSvg.AllowedColour).Append("\"></i>allowed</span><span><i style=\"background:")
            .Append(TrafficMapSvg.DeniedColour).Append("\"></i>denied</span><span><i style=\"background:").Append(TrafficMapSvg.BothColour)
            .Append("\"></i>both allowed and denied flows</span><span class=\"note\">workloads by namespace; a Service's flows drawn to its backends; arrows from the initiator; thicker: more flows</span></p>\n");
        html.Append("<div class=\"map-box\">\n");
        TrafficMapSvg.Write(html, map);
        html.Append("</div>\n");
        if (map.TotalEdges > map.Edges.Count)
        {
            html.Append("<p class=\"more\">The ").Append(N(map.Edges.Count)).Append(" busiest of ").Append(N(map.TotalEdges)).Append(" edges are drawn: and ")
                .Append(N(map.TotalEdges - map.Edges.Count)).Append(" more edges (").Append(N(map.TotalNodes - map.Nodes.Count)).Append(" more workloads) not drawn.</p>\n");
        }
        html.Append("</section>\n");
    }

    private static void Card(StringBuilder html, string label, long value, string of)
    {
        html.Append("<div class=\"card ").Append(value == 0 ? "good" : "bad").Append("\"><div class=\"value\">").Append(N(value)).Append("</div><div>")
            .Append(E(label)).Append(of.Length > 0 ? " <span class=\"note\">" + E(of) + "</span>" : "").Append("</div></div>");
    }

    private static void Num(StringBuilder html, long value) => html.Append("<td class=\"num\">").Append(N(value)).Append("</td>");

    private static void More(StringBuilder html, int omitted, string what)
    {
        if (omitted > 0) html.Append("<p class=\"more\">and ").Append(N(omitted)).Append(" more ").Append(E(what)).Append(" (raise <code>--top</code> to list them)</p>\n");
    }

    /// <summary>A record time as a person reads it: date, then the time to the second (the JSON keeps the microseconds).</summary>
    private static string Time(string rfc3339) => rfc3339.Length >= 19 && rfc3339[10] == 'T' ? rfc3339[..10] + " " + rfc3339[11..19] + "Z" : rfc3339;

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static string E(string text) => WebUtility.HtmlEncode(text);
}
