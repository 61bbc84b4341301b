using System.CommandLine;
using System.Globalization;
using System.Text;
using Tripline.Cli;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Manifests;
using Tripline.Records;

namespace Tripline.Recommend;

/// <summary>
/// <c>tripline recommend</c>: least-privilege policies from observed traffic, one per workload, proven on that traffic
/// with whatif's engine (the recommended set applied newly denies nothing, or what it could not cover is listed).
/// </summary>
internal static class RecommendCommand
{
    public static Command Create()
    {
        var inputs = new OfflineInputOptionSet("the cluster");
        var namespaces = EnvironmentDefaults.List("--namespace", "namespaces to recommend for (default: every namespace a pod of the traffic lives in)");
        var since = EnvironmentDefaults.String("--since", "flows ended at or after: a duration back from now (30m, 2h, 1d) or an RFC 3339 time");
        var until = EnvironmentDefaults.String("--until", "flows ended at or before: an RFC 3339 time or a duration back from now");
        var kind = EnvironmentDefaults.String("--kind", "networkpolicy (networking.k8s.io/v1), clusternetworkpolicy (policy.networking.k8s.io/v1alpha2, Admin tier) or calico (projectcalico.org/v3)", "networkpolicy");
        var output = EnvironmentDefaults.String("--output", "yaml or json", "yaml");
        var outDir = EnvironmentDefaults.String("--out", "write one file per workload into this directory (else standard output)");
        var defaultDeny = EnvironmentDefaults.Flag("--default-deny", "add each namespace's default-deny policy, and show what it alone would deny");
        var mergeCidrs = EnvironmentDefaults.Flag("--merge-cidrs", "merge addresses into the fewest CIDRs that cover no unobserved address");
        var includeDenied = EnvironmentDefaults.Flag("--include-denied", "allow flows that the policies in force denied, too (left out by default)");
        var command = new Command("recommend", "Write least-privilege policies from observed traffic, one per workload, and prove them on it.")
        {
            namespaces, since, until, kind, output, outDir, defaultDeny, mergeCidrs, includeDenied,
        };
        inputs.AddTo(command);
        command.SetAction((parse, cancellationToken) =>
        {
            var (flowLogs, pcaps, manifests, kubeconfig, node) = inputs.Bind(parse);
            return Task.FromResult(Run(new RecommendOptions
            {
                FlowLogs = flowLogs,
                Pcaps = pcaps,
                Manifests = manifests,
                Kubeconfig = kubeconfig,
                Namespaces = parse.GetValue(namespaces) ?? [],
                Since = parse.GetValue(since),
                Until = parse.GetValue(until),
                Kind = parse.GetValue(kind) ?? "networkpolicy",
                Output = parse.GetValue(output) ?? "yaml",
                Out = parse.GetValue(outDir),
                DefaultDeny = parse.GetValue(defaultDeny),
                MergeCidrs = parse.GetValue(mergeCidrs),
                IncludeDenied = parse.GetValue(includeDenied),
                Node = node,
            }, StandardStreams.OpenOutput(), Console.Error, cancellationToken));
        });
        return command;
    }

    internal sealed record RecommendOptions
    {
        public IReadOnlyList<string> FlowLogs { get; init; } = [];
        public IReadOnlyList<string> Pcaps { get; init; } = [];
        public IReadOnlyList<string> Manifests { get; init; } = [];
        public string? Kubeconfig { get; init; }
        public IReadOnlyList<string> Namespaces { get; init; } = [];
        public string? Since { get; init; }
        public string? Until { get; init; }
        public string Kind { get; init; } = "networkpolicy";
        public string Output { get; init; } = "yaml";
        public string? Out { get; init; }
        public bool DefaultDeny { get; init; }
        public bool MergeCidrs { get; init; }
        public bool IncludeDenied { get; init; }
        public string Node { get; init; } = "node";
    }

    /// <summary>Rounds of check and repair: as derived, then with newly denied pairs added as recorded, then by address.</summary>
    private const int Rounds = 3;

    internal static int Run(RecommendOptions options, Stream stdout, TextWriter stderr, CancellationToken cancellationToken = default)
    {
        var problems = new List<string>();
        OfflineInput.Validate(options.FlowLogs, options.Pcaps, options.Manifests, options.Kubeconfig, problems);
        RecommendKind? kind = options.Kind.ToLowerInvariant() switch
        {
            "networkpolicy" => RecommendKind.NetworkPolicy,
            "clusternetworkpolicy" => RecommendKind.ClusterNetworkPolicy,
            "calico" => RecommendKind.Calico,
            _ => null,
        };
        if (kind is null) problems.Add($"--kind: '{options.Kind}' is not networkpolicy, clusternetworkpolicy or calico");
        if (options.Output is not ("yaml" or "json")) problems.Add($"--output: '{options.Output}' is not yaml or json");
        if (options.Out is { } dir && File.Exists(dir)) problems.Add($"--out: {dir} is a file, not a directory");
        foreach (string ns in options.Namespaces.Where(n => n.Length == 0 || n.Length > 63 || !n.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-')))
        {
            problems.Add($"--namespace: '{ns}' is not a namespace name");
        }
        FlowFilter.TryCreate(new FlowFilterOptions { Since = options.Since, Until = options.Until }, DateTimeOffset.UtcNow, out var filter, out var filterProblems);
        problems.AddRange(filterProblems);
        if (problems.Count > 0) return Fail(stderr, problems, ExitCodes.BadUsage);
        if (!OfflineInput.TryLoadCluster(options.Manifests, options.Kubeconfig, "recommend", stderr, cancellationToken, out var cluster)) return ExitCodes.BadUsage;

        var observed = new ObservedPairs(filter);
        int code = OfflineInput.ReadTraffic(options.FlowLogs, options.Pcaps, cluster, options.Node, observed.Add, "recommend", stderr, cancellationToken);
        if (code != ExitCodes.Success) return code;

        var builder = new RecommendationBuilder(cluster, options.Namespaces);
        var pairs = builder.Read(observed.Pairs);
        builder.Derive(pairs, options.IncludeDenied);

        IReadOnlyList<WorkloadPolicy> policies = [];
        IReadOnlyList<Uncovered> uncovered = [];
        List<PolicyDocument> documents = [];
        ClusterSnapshot applied = ClusterSnapshot.Empty;
        CheckResult? check = null;
        var namespacesFor = new List<string>();
        var repaired = new List<string>();
        for (int round = 1; round <= Rounds; round++)
        {
            (policies, uncovered) = builder.Finish();
            namespacesFor = [.. builder.Namespaces];
            documents = PolicyDocuments.Render(policies, options.DefaultDeny ? namespacesFor : [], kind!.Value, options.MergeCidrs);
            // The check judges the documents as written, read back by the manifest loader: what it proves is what ships.
            var loaded = ManifestLoader.LoadFromText(ManifestText.Yaml(documents.Select(d => d.Object)), "recommended");
            if (loaded.Errors.Count > 0)
            {
                foreach (var error in loaded.Errors) stderr.WriteLine($"tripline recommend: internal error: a recommended document does not load: {error}");
                return ExitCodes.RuntimeFailure;
            }
            applied = loaded.Snapshot;
            check = RecommendCheck.Run(cluster, applied, pairs, builder.Touches);
            if (check.NewlyDenied.Count == 0 || round == Rounds) break;
            foreach (var finding in check.NewlyDenied)
            {
                builder.AddFromCheck(finding.Read, addressesOnly: round == 2);
                repaired.Add($"{(round == 2 ? "by address " : "")}{finding.Read.Source.Group} -> {finding.Read.Destination.Group} {RecommendationBuilder.Port(finding.Read)}");
            }
        }

        var notCovered = uncovered.ToList();
        foreach (var finding in check!.NewlyDenied)
        {
            notCovered.Add(new Uncovered(finding.Read.Source.Group, finding.Read.Destination.Group, RecommendationBuilder.Port(finding.Read), finding.Read.Pair.AllowedFlows,
                "the recommended set would deny it: " + finding.Reason));
        }
        foreach (var finding in check.NotJudgeable)
        {
            if (notCovered.Any(u => u.Source == finding.Read.Source.Group && u.Destination == finding.Read.Destination.Group && u.Port == RecommendationBuilder.Port(finding.Read))) continue;
            notCovered.Add(new Uncovered(finding.Read.Source.Group, finding.Read.Destination.Group, RecommendationBuilder.Port(finding.Read), finding.Read.Pair.AllowedFlows,
                "not judgeable: " + finding.Reason));
        }

        try
        {
            Write(documents, options, stdout);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"tripline recommend: --out: {e.Message}");
            return ExitCodes.RuntimeFailure;
        }

        var summary = new StringBuilder();
        summary.Append(string.Create(CultureInfo.InvariantCulture,
            $"tripline recommend: {observed.Records:N0} records read, {observed.Flows:N0} flows in {observed.Pairs.Count:N0} endpoint pairs; {policies.Count} {(policies.Count == 1 ? "policy" : "policies")} for {string.Join(", ", namespacesFor)}{(options.DefaultDeny ? $" and {namespacesFor.Count} default deny" : "")}\n"));
        if (builder.DeniedFlowsLeftOut > 0)
        {
            summary.Append(string.Create(CultureInfo.InvariantCulture, $"  left out: {builder.DeniedFlowsLeftOut:N0} flows the policies in force denied ({builder.DeniedPairsLeftOut:N0} endpoint pairs; --include-denied allows them)\n"));
        }
        if (observed.AggregatedFlows > 0) summary.Append(string.Create(CultureInfo.InvariantCulture, $"  left out: {observed.AggregatedFlows:N0} flows folded into aggregate records by the flood guard\n"));
        if (builder.ReplyFlows > 0) summary.Append(string.Create(CultureInfo.InvariantCulture, $"  added: {builder.ReplyFlows:N0} flows seen without their opening (initiator unknown), as recorded\n"));
        foreach (string line in repaired.Distinct().Order(StringComparer.Ordinal)) summary.Append("  repaired after the check: ").Append(line).Append('\n');
        summary.Append(notCovered.Count == 0
            ? string.Create(CultureInfo.InvariantCulture, $"  check: the recommended set applied to the same traffic newly denies no flow ({check.Judged:N0} flows judged)\n")
            : string.Create(CultureInfo.InvariantCulture, $"  check: {notCovered.Sum(u => u.Flows):N0} flows not covered ({check.Judged:N0} judged):\n"));
        foreach (var u in notCovered) summary.Append(string.Create(CultureInfo.InvariantCulture, $"    {u.Flows,6:N0}  {u.Source} -> {u.Destination} {u.Port}: {u.Reason}\n"));
        foreach (var policy in policies.Where(p => p.Notes.Count > 0))
        {
            foreach (string note in policy.Notes) summary.Append($"  note: {policy.Namespace}/{policy.Name}: {note}\n");
        }
        if (options.DefaultDeny)
        {
            var denyOnly = ManifestLoader.LoadFromText(ManifestText.Yaml(PolicyDocuments.Render([], namespacesFor, kind!.Value, false).Select(d => d.Object)), "default-deny").Snapshot;
            var alone = RecommendCheck.Run(cluster, denyOnly, pairs, builder.Touches);
            summary.Append(string.Create(CultureInfo.InvariantCulture, $"  default deny alone: would newly deny {alone.NewlyDeniedFlows:N0} of {alone.Judged:N0} flows ({alone.NewlyDenied.Count:N0} endpoint pairs), which the recommendations allow\n"));
            foreach (var group in alone.NewlyDenied.GroupBy(f => (f.Read.Source.Group, f.Read.Destination.Group, RecommendationBuilder.Port(f.Read)))
                .Select(g => (g.Key, Flows: g.Sum(f => f.Read.Pair.AllowedFlows))).OrderByDescending(g => g.Flows).ThenBy(g => g.Key.ToString(), StringComparer.Ordinal).Take(20))
            {
                summary.Append(string.Create(CultureInfo.InvariantCulture, $"    {group.Flows,6:N0}  {group.Key.Item1} -> {group.Key.Item2} {group.Key.Item3}\n"));
            }
        }
        var tightness = RecommendCheck.Measure(cluster, applied, builder, namespacesFor);
        summary.Append(string.Create(CultureInfo.InvariantCulture,
            $"  tightness: {RecommendCheck.Percent(tightness.Share)} of the unobserved pod pairs and ports of {string.Join(", ", namespacesFor)} denied ({tightness.Denied:N0} of {tightness.Unobserved:N0})\n"));
        stderr.Write(summary.ToString());
        return notCovered.Count > 0 ? ExitCodes.NotCovered : ExitCodes.Success;
    }

    /// <summary>To standard output, one stream of documents; or one file per document, replacing what an earlier run wrote.</summary>
    private static void Write(List<PolicyDocument> documents, RecommendOptions options, Stream stdout)
    {
        bool json = options.Output == "json";
        if (options.Out is not { } dir)
        {
            byte[] bytes = json
                ? ManifestText.Json(new DocMap().Set("apiVersion", "v1").Set("kind", "List").Set("items", documents.Select(d => (object)d.Object).ToList()))
                : Encoding.UTF8.GetBytes(ManifestText.Yaml(documents.Select(d => d.Object)));
            stdout.Write(bytes);
            stdout.Flush();
            return;
        }
        Directory.CreateDirectory(dir);
        // Files an earlier run wrote go first, so that a workload no longer seen leaves no stale policy behind.
        foreach (string file in Directory.EnumerateFiles(dir).Where(f => f.EndsWith(".yaml", StringComparison.Ordinal) || f.EndsWith(".json", StringComparison.Ordinal)))
        {
            if (File.ReadAllText(file).Contains(PolicyDocuments.Annotation + "generated-by", StringComparison.Ordinal)) File.Delete(file);
        }
        foreach (var document in documents)
        {
            string path = Path.Combine(dir, document.FileName + (json ? ".json" : ".yaml"));
            File.WriteAllBytes(path, json ? ManifestText.Json(document.Object) : Encoding.UTF8.GetBytes(ManifestText.Yaml([document.Object])));
        }
    }

    private static int Fail(TextWriter stderr, List<string> problems, int code)
    {
        foreach (string problem in problems) stderr.WriteLine("tripline recommend: " + problem);
        return code;
    }
}
