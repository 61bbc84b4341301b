using System.CommandLine;
using System.Globalization;
using Tripline.Cli;
using Tripline.Records;

namespace Tripline.Report;

/// <summary>
/// <c>tripline report</c> (design.md section 11): an audit report of a period, as one self-contained HTML file and,
/// with <c>--json</c>, the same facts as one JSON object.
/// </summary>
internal static class ReportCommand
{
    public static Command Create()
    {
        var inputs = new OfflineInputOptionSet("the cluster");
        var since = EnvironmentDefaults.String("--since", "flows ended at or after: a duration back from now (30m, 2h, 1d) or an RFC 3339 time");
        var until = EnvironmentDefaults.String("--until", "flows ended at or before: an RFC 3339 time or a duration back from now");
        var outFile = EnvironmentDefaults.String("--out", "the HTML report to write (required)");
        var json = EnvironmentDefaults.String("--json", "also write the report's facts as one JSON object to this file");
        var top = EnvironmentDefaults.String("--top", "rows per table (the rest are counted: \"and N more\")", "50");
        var mapEdges = EnvironmentDefaults.String("--map-edges", "edges drawn on the traffic map, the busiest first", "120");
        var command = new Command("report", "Write an audit report: coverage, posture, exposure, violations, mesh findings and a map of the traffic, as one HTML file.")
        {
            since, until, outFile, json, top, mapEdges,
        };
        inputs.AddTo(command);
        command.SetAction((parse, cancellationToken) =>
        {
            var (flowLogs, pcaps, manifests, kubeconfig, node) = inputs.Bind(parse);
            return Task.FromResult(Run(new ReportOptions
            {
                FlowLogs = flowLogs,
                Pcaps = pcaps,
                Manifests = manifests,
                Kubeconfig = kubeconfig,
                Since = parse.GetValue(since),
                Until = parse.GetValue(until),
                Out = parse.GetValue(outFile),
                Json = parse.GetValue(json),
                Top = parse.GetValue(top) ?? "50",
                MapEdges = parse.GetValue(mapEdges) ?? "120",
                Node = node,
            }, Console.Error, cancellationToken));
        });
        return command;
    }

    internal sealed record ReportOptions
    {
        public IReadOnlyList<string> FlowLogs { get; init; } = [];
        public IReadOnlyList<string> Pcaps { get; init; } = [];
        public IReadOnlyList<string> Manifests { get; init; } = [];
        public string? Kubeconfig { get; init; }
        public string? Since { get; init; }
        public string? Until { get; init; }
        public string? Out { get; init; }
        public string? Json { get; init; }
        public string Top { get; init; } = "50";
        public string MapEdges { get; init; } = "120";
        public string Node { get; init; } = "node";
    }

    internal static int Run(ReportOptions options, TextWriter stderr, CancellationToken cancellationToken = default)
    {
        var problems = new List<string>();
        OfflineInput.Validate(options.FlowLogs, options.Pcaps, options.Manifests, options.Kubeconfig, problems);
        if (options.Out is not { Length: > 0 }) problems.Add("--out: required: the HTML file to write");
        else if (Directory.Exists(options.Out)) problems.Add($"--out: {options.Out} is a directory, not a file");
        if (options.Json is { Length: 0 } || (options.Json is { } jsonPath && Directory.Exists(jsonPath))) problems.Add($"--json: '{options.Json}' is not a file to write");
        if (!int.TryParse(options.Top, NumberStyles.None, CultureInfo.InvariantCulture, out int top) || top < 1) problems.Add($"--top: '{options.Top}' is not a positive number");
        if (!int.TryParse(options.MapEdges, NumberStyles.None, CultureInfo.InvariantCulture, out int mapEdges) || mapEdges < 1) problems.Add($"--map-edges: '{options.MapEdges}' is not a positive number");
        FlowFilter.TryCreate(new FlowFilterOptions { Since = options.Since, Until = options.Until }, DateTimeOffset.UtcNow, out var filter, out var filterProblems);
        problems.AddRange(filterProblems);
        if (problems.Count > 0)
        {
            foreach (string problem in problems) stderr.WriteLine("tripline report: " + problem);
            return ExitCodes.BadUsage;
        }
        if (!OfflineInput.TryLoadCluster(options.Manifests, options.Kubeconfig, "report", stderr, cancellationToken, out var cluster)) return ExitCodes.BadUsage;

        var fold = new TrafficFold(filter);
        int code = OfflineInput.ReadTraffic(options.FlowLogs, options.Pcaps, cluster, options.Node, fold.Add, "report", stderr, cancellationToken);
        if (code != ExitCodes.Success) return code;

        var coverage = new Coverage
        {
            InputKind = options.FlowLogs.Count > 0 ? "flow_log" : "pcap",
            Inputs = options.FlowLogs.Count > 0 ? [.. options.FlowLogs.SelectMany(FlowLogReader.ListFiles)] : [.. options.Pcaps],
            Cluster = options.Manifests.Count > 0 ? "manifests: " + string.Join(", ", options.Manifests) : "API server" + (options.Kubeconfig is { } k ? $" ({k})" : " (in-cluster)"),
            Since = filter.Since?.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture),
            Until = filter.Until?.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture),
            FirstSeen = fold.First.Length > 0 ? System.Text.Encoding.UTF8.GetString(fold.First) : null,
            LastSeen = fold.Last.Length > 0 ? System.Text.Encoding.UTF8.GetString(fold.Last) : null,
            Records = fold.Records,
            Unreadable = fold.Unreadable,
            OutsidePeriod = fold.OutsidePeriod,
            Flows = fold.Flows,
            AggregatedFlows = fold.AggregatedFlows,
            Nodes = [.. fold.Nodes],
        };
        var facts = new ReportAnalysis(cluster, new ReportLimits(top, mapEdges)).Build(fold, coverage);
        try
        {
            using (var html = new FileStream(options.Out!, FileMode.Create, FileAccess.Write))
            {
                ReportHtml.Write(facts, html);
            }
            if (options.Json is { } json)
            {
                using var stream = new FileStream(json, FileMode.Create, FileAccess.Write);
                ReportJson.Write(facts, stream);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"tripline report: {e.Message}");
            return ExitCodes.RuntimeFailure;
        }
        stderr.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"tripline report: {fold.Records:N0} records read, {fold.Flows:N0} flows ({facts.Coverage.DeniedFlows:N0} denied) in {facts.Coverage.EndpointPairs:N0} endpoint pairs; wrote {options.Out}{(options.Json is { } j ? " and " + j : "")}"));
        return ExitCodes.Success;
    }
}
