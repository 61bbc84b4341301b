using System.Globalization;
using System.Text;

namespace Tripline.Report;

/// <summary>
/// Draws the traffic map as inline SVG: workloads as boxes in one column per namespace (the nodes and outside
/// addresses in a column of their own), bands of columns when there are many, edges as curves coloured by verdict.
/// Deterministic: the same facts give the same drawing, and nothing needs a script to read.
/// </summary>
internal static class TrafficMapSvg
{
    public const string AllowedColour = "#2e7d32";
    public const string DeniedColour = "#c62828";
    public const string BothColour = "#ef6c00";

    private const int ColumnsPerBand = 6;
    private const int ColumnWidth = 250;
    private const int BoxWidth = 190;
    private const int BoxHeight = 30;
    private const int RowHeight = 46;
    private const int Header = 40;
    private const int Margin = 20;
    private const int LabelChars = 28;

    public static string Colour(string verdict) => verdict switch { "allowed" => AllowedColour, "denied" => DeniedColour, _ => BothColour };

    public static void Write(StringBuilder html, TrafficMap map)
    {
        var columns = map.Nodes.GroupBy(n => n.Namespace).Select(g => (Namespace: g.Key, Nodes: g.ToList())).ToList();
        var position = new Dictionary<string, (double X, double Y)>(StringComparer.Ordinal);
        var bands = columns.Chunk(ColumnsPerBand).ToList();
        double top = Margin;
        var headers = new List<(string Text, double X, double Y)>();
        int widest = 0;
        foreach (var band in bands)
        {
            widest = Math.Max(widest, band.Length);
            int rows = band.Max(c => c.Nodes.Count);
            for (int c = 0; c < band.Length; c++)
            {
                double x = Margin + c * ColumnWidth;
                headers.Add((band[c].Namespace, x, top + 16));
                for (int r = 0; r < band[c].Nodes.Count; r++) position[band[c].Nodes[r].Id] = (x, top + Header + r * RowHeight);
            }
            top += Header + rows * RowHeight + Margin;
        }
        double width = Margin * 2 + Math.Max(1, widest) * ColumnWidth;
        double height = Math.Max(top, 80);
        html.Append(Invariant($"<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"traffic-map\" role=\"img\" aria-label=\"traffic map\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\">\n"));
        html.Append("<defs>");
        foreach (string verdict in new[] { "allowed", "denied", "both" })
        {
            html.Append(Invariant($"<marker id=\"arrow-{verdict}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerUnits=\"userSpaceOnUse\" markerWidth=\"10\" markerHeight=\"10\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"{Colour(verdict)}\"/></marker>"));
        }
        html.Append("</defs>\n");
        foreach (var (text, x, y) in headers)
        {
            html.Append(Invariant($"<text class=\"map-namespace\" x=\"{x}\" y=\"{y}\">")).Append(Encode(Shorten(text == ReportAnalysis.OutsideColumn ? text : "namespace " + text, LabelChars + 6))).Append("</text>\n");
        }
        long busiest = map.Edges.Count == 0 ? 1 : map.Edges.Max(e => e.Flows);
        foreach (var edge in map.Edges)
        {
            var (sx, sy) = position[edge.Source];
            var (dx, dy) = position[edge.Destination];
            string path;
            if (edge.Source == edge.Destination)
            {
                double ex = sx + BoxWidth, ey = sy + BoxHeight / 2.0;
                path = Invariant($"M{ex},{ey - 6} C{ex + 40},{ey - 30} {ex + 40},{ey + 30} {ex},{ey + 6}");
            }
            else if (Math.Abs(sx - dx) < 1)
            {
                double ax = sx + BoxWidth, ay = sy + BoxHeight / 2.0, by = dy + BoxHeight / 2.0;
                double bulge = 30 + Math.Abs(by - ay) / 4;
                path = Invariant($"M{ax},{ay} C{ax + bulge},{ay} {ax + bulge},{by} {ax},{by}");
            }
            else
            {
                bool right = dx > sx;
                double ax = right ? sx + BoxWidth : sx, ay = sy + BoxHeight / 2.0;
                double bx = right ? dx : dx + BoxWidth, by = dy + BoxHeight / 2.0;
                double pull = Math.Max(40, Math.Abs(bx - ax) / 2);
                path = Invariant($"M{ax},{ay} C{(right ? ax + pull : ax - pull)},{ay} {(right ? bx - pull : bx + pull)},{by} {bx},{by}");
            }
            double stroke = 1.2 + 3.5 * Math.Log(1 + edge.Flows) / Math.Log(1 + busiest);
            html.Append(Invariant($"<path class=\"map-edge {edge.Verdict}\" data-src=\"")).Append(Encode(edge.Source))
                .Append("\" data-dst=\"").Append(Encode(edge.Destination))
                .Append(Invariant($"\" data-verdict=\"{edge.Verdict}\" data-flows=\"{edge.Flows}\" d=\"{path}\" fill=\"none\" stroke=\"{Colour(edge.Verdict)}\" stroke-width=\"{stroke:0.##}\" stroke-opacity=\"0.8\" marker-end=\"url(#arrow-{edge.Verdict})\">"))
                .Append("<title>").Append(Encode(Invariant($"{edge.Source} -> {edge.Destination}: {edge.Flows:N0} flows ({edge.AllowedFlows:N0} allowed, {edge.DeniedFlows:N0} denied)"))).Append("</title></path>\n");
        }
        foreach (var node in map.Nodes)
        {
            var (x, y) = position[node.Id];
            string fill = node.Namespace == ReportAnalysis.OutsideColumn ? "#eceff1" : "#e3f2fd";
            html.Append("<g class=\"map-node\" data-id=\"").Append(Encode(node.Id)).Append("\" data-namespace=\"").Append(Encode(node.Namespace)).Append("\">")
                .Append("<title>").Append(Encode(Invariant($"{node.Id}: {node.Flows:N0} flows"))).Append("</title>")
                .Append(Invariant($"<rect x=\"{x}\" y=\"{y}\" width=\"{BoxWidth}\" height=\"{BoxHeight}\" rx=\"5\" fill=\"{fill}\" stroke=\"#546e7a\"/>"))
                .Append(Invariant($"<text x=\"{x + 8}\" y=\"{y + 19}\">")).Append(Encode(Shorten(node.Label, LabelChars))).Append("</text></g>\n");
        }
        html.Append("</svg>\n");
    }

    private static string Shorten(string text, int max) => text.Length <= max ? text : text[..(max - 1)] + "…";

    private static string Encode(string text) => System.Net.WebUtility.HtmlEncode(text);

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
