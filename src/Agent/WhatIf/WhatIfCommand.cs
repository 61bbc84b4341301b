using System.CommandLine;
using Tripline.Cli;
using Tripline.Correlation.Cluster;
using Tripline.Records;

namespace Tripline.WhatIf;

/// <summary>
/// <c>tripline whatif</c> (design.md section 8): judges recorded traffic against the cluster as it is and as it would
/// be after a change, and lists the flows whose verdict the change flips.
/// </summary>
internal static class WhatIfCommand
{
    public static Command Create()
    {
        var inputs = new OfflineInputOptionSet("the cluster as it is");
        var apply = EnvironmentDefaults.List("--apply", "documents applied as kubectl apply -f would (policies, namespaces, pods)");
        var delete = EnvironmentDefaults.List("--delete", "policies removed: KIND/NAMESPACE/NAME (NetworkPolicy/shop/db), or KIND/NAME for a cluster-scoped kind (ClusterNetworkPolicy/deny-metadata); Calico's as records name them (NetworkPolicy(calico)/shop/db, GlobalNetworkPolicy/name)");
        var output = EnvironmentDefaults.String("--output", "table or json (one line per changed flow)", "table");
        var failOnBreak = EnvironmentDefaults.Flag("--fail-on-break", "exit 3 when any flow would be newly denied (a CI gate)");
        var filters = new FlowFilterOptionSet();
        var command = new Command("whatif", "What would a policy change break? Judge recorded traffic before and after the change, and list the flows whose verdict flips.")
        {
            apply, delete, output, failOnBreak,
        };
        inputs.AddTo(command);
        filters.AddTo(command);
        command.SetAction((parse, cancellationToken) =>
        {
            var (flowLogs, pcaps, manifestPaths, kubeconfigPath, nodeName) = inputs.Bind(parse);
            return Task.FromResult(Run(new WhatIfOptions
            {
                FlowLogs = flowLogs,
                Pcaps = pcaps,
                Manifests = manifestPaths,
                Kubeconfig = kubeconfigPath,
                Apply = parse.GetValue(apply) ?? [],
                Delete = parse.GetValue(delete) ?? [],
                Node = nodeName,
                Output = parse.GetValue(output) ?? "table",
                FailOnBreak = parse.GetValue(failOnBreak),
                Filter = filters.Bind(parse),
            }, StandardStreams.OpenOutput(), Console.Error, cancellationToken));
        });
        return command;
    }

    internal sealed record WhatIfOptions
    {
        public IReadOnlyList<string> FlowLogs { get; init; } = [];
        public IReadOnlyList<string> Pcaps { get; init; } = [];
        public IReadOnlyList<string> Manifests { get; init; } = [];
        public string? Kubeconfig { get; init; }
        public IReadOnlyList<string> Apply { get; init; } = [];
        public IReadOnlyList<string> Delete { get; init; } = [];
        public string Node { get; init; } = "node";
        public string Output { get; init; } = "table";
        public bool FailOnBreak { get; init; }
        public FlowFilterOptions Filter { get; init; } = new();
    }

    internal static int Run(WhatIfOptions options, Stream stdout, TextWriter stderr, CancellationToken cancellationToken = default)
    {
        var problems = new List<string>();
        OfflineInput.Validate(options.FlowLogs, options.Pcaps, options.Manifests, options.Kubeconfig, problems);
        if (options.Output is not ("table" or "json")) problems.Add($"--output: '{options.Output}' is not table or json");
        FlowFilter.TryCreate(options.Filter, DateTimeOffset.UtcNow, out var filter, out var filterProblems);
        problems.AddRange(filterProblems);
        if (problems.Count > 0) return Fail(stderr, problems, ExitCodes.BadUsage);

        // The change first: a document that does not parse fails the run before any traffic is read.
        var change = ProposedChange.Load(options.Apply, options.Delete, problems);
        if (problems.Count > 0) return Fail(stderr, problems, ExitCodes.BadUsage);
        if (!OfflineInput.TryLoadCluster(options.Manifests, options.Kubeconfig, "whatif", stderr, cancellationToken, out var before)) return ExitCodes.BadUsage;
        var after = change.AppliedTo(before, problems);
        if (problems.Count > 0) return Fail(stderr, problems, ExitCodes.BadUsage);

        var analysis = new WhatIfAnalysis(before, after);
        using var output = new BufferedStream(stdout, 1 << 16);
        using var report = new WhatIfReport(output, options.Output == "json");
        FlowLineHandler onLine = line =>
        {
            if (line.Trim(" \t\r"u8).IsEmpty) return;
            report.CountRecord();
            // Without a filter the record is read once, and only as far as its ends and verdict; start and update
            // records are dropped as soon as their event is read.
            bool filtered = !filter.MatchesEverything;
            if (filtered && filter.Evaluate(line) != FilterResult.Match) return;
            if (!FlowRecordFields.TryRead(line, out var record, JudgedEvents, stopAfterVerdict: true)) return;
            if (record.Event.SequenceEqual("aggregate"u8))
            {
                report.SkipAggregate(record.Flows);
                return;
            }
            // A flow once: at its end record, which every flow writes last.
            if (!record.Event.SequenceEqual("end"u8)) return;
            report.Add(in record, analysis.Judge(in record), DestinationPort(record.Destination));
        };
        int code = OfflineInput.ReadTraffic(options.FlowLogs, options.Pcaps, before, options.Node, onLine, "whatif", stderr, cancellationToken);
        if (code != ExitCodes.Success) return code;
        report.Finish(stderr);
        return options.FailOnBreak && report.NewlyDenied > 0 ? ExitCodes.DeniedFlows : ExitCodes.Success;
    }

    /// <summary>Each flow once, at its end record; aggregates are counted.</summary>
    internal static readonly EventFilter JudgedEvents = name => name.SequenceEqual("end"u8) || name.SequenceEqual("aggregate"u8);

    internal static ReadOnlySpan<byte> DestinationPort(ReadOnlySpan<byte> destination)
    {
        int at = destination.IndexOf("\"port\":"u8);
        if (at < 0) return default;
        var rest = destination[(at + 7)..];
        int end = 0;
        while (end < rest.Length && rest[end] is >= (byte)'0' and <= (byte)'9') end++;
        return rest[..end];
    }

    private static int Fail(TextWriter stderr, List<string> problems, int code)
    {
        foreach (string problem in problems) stderr.WriteLine("tripline whatif: " + problem);
        return code;
    }
}
