using System.CommandLine;
using System.Net;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;
using Tripline.Correlation.Manifests;
using Tripline.Correlation.Policy;

namespace Tripline.Cli;

/// <summary>
/// <c>tripline explain</c>: one flow's verdict and its reasoning, from manifests. A denial is an answer, not a
/// failure, so both verdicts exit 0; only bad usage (2) and unreadable manifests (1) do not.
/// </summary>
internal static class ExplainCommand
{
    public static Command Create()
    {
        var manifests = EnvironmentDefaults.List("--manifests", "manifest files or directories (YAML/JSON, multi-document, kind: List)");
        var from = new Option<string>("--from") { Description = "source: NAMESPACE/POD or an IP address (or --flow-id)" };
        var to = new Option<string>("--to") { Description = "destination: NAMESPACE/POD or an IP address (or --flow-id)" };
        var port = new Option<int>("--port") { Description = "destination port (0 for ICMP)" };
        var protocol = new Option<string>("--protocol") { Description = "TCP, UDP, SCTP or ICMP", DefaultValueFactory = _ => "TCP" };
        var flowId = new Option<string>("--flow-id") { Description = "a recorded flow (its flow_id in --flow-log): its endpoints, port and protocol, and what the network did with it" };
        var flowLog = EnvironmentDefaults.String("--flow-log", "with --flow-id: flow-log file or directory of rotated logs");
        var apply = EnvironmentDefaults.List("--apply", "explain under a change: documents applied as kubectl apply -f would");
        var delete = EnvironmentDefaults.List("--delete", "explain under a change: policies removed (KIND/NAMESPACE/NAME, or KIND/NAME for a cluster-scoped kind)");
        var output = new Option<string>("--output") { Description = "text or json", DefaultValueFactory = _ => "text" };
        output.AcceptOnlyFromAmong("text", "json");

        var command = new Command("explain", "Explain whether the manifests' NetworkPolicies allow one flow, and why: which policies select each pod and which rule matched or why none did.")
        {
            manifests, from, to, port, protocol, output, flowId, flowLog, apply, delete,
        };
        command.SetAction(parse => Run(new ExplainOptions(
            parse.GetValue(manifests) ?? [],
            parse.GetValue(from) ?? "",
            parse.GetValue(to) ?? "",
            parse.GetValue(port),
            parse.GetValue(protocol) ?? "TCP",
            parse.GetValue(output) ?? "text")
        {
            FlowId = parse.GetValue(flowId) is { Length: > 0 } id ? id : null,
            FlowLog = parse.GetValue(flowLog),
            Apply = parse.GetValue(apply) ?? [],
            Delete = parse.GetValue(delete) ?? [],
        }));
        return command;
    }

    internal sealed record ExplainOptions(string[] Manifests, string From, string To, int Port, string Protocol, string Output)
    {
        public string? FlowId { get; init; }
        public string? FlowLog { get; init; }
        public IReadOnlyList<string> Apply { get; init; } = [];
        public IReadOnlyList<string> Delete { get; init; } = [];
    }

    internal static int Run(ExplainOptions options, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        stdout ??= Console.Out;
        stderr ??= Console.Error;
        var problems = new List<string>();
        RecordedFlow? recorded = null;
        if (options.FlowId is not null)
        {
            if (RecordedFlow.Find(options.FlowLog, options.FlowId, problems) is not { } found) return Fail(stderr, problems);
            recorded = found;
            options = options with { From = found.Source, To = found.Destination, Port = found.Port, Protocol = found.Protocol };
        }
        else if (options.From.Length == 0 || options.To.Length == 0)
        {
            problems.Add("--from and --to (with --port) are required, or --flow-id with --flow-log");
            return Fail(stderr, problems);
        }
        if (options.Manifests.Length == 0) problems.Add("--manifests: at least one file or directory is required");
        foreach (string path in options.Manifests)
        {
            if (!File.Exists(path) && !Directory.Exists(path)) problems.Add($"--manifests: no such file or directory: {path}");
        }
        if (!Enum.TryParse<PolicyProtocol>(options.Protocol, ignoreCase: true, out var protocol) || protocol == PolicyProtocol.Other)
        {
            problems.Add($"--protocol: '{options.Protocol}' is not TCP, UDP, SCTP or ICMP");
        }
        if (protocol <= PolicyProtocol.SCTP && options.Port is < 1 or > 65535) problems.Add($"--port: {options.Port} is outside 1-65535");
        if (options.Output is not ("text" or "json")) problems.Add($"--output: '{options.Output}' is not text or json");
        if (problems.Count > 0) return Fail(stderr, problems);

        var loaded = ManifestLoader.Load(options.Manifests);
        foreach (var error in loaded.Errors) stderr.WriteLine("tripline explain: manifest error: " + error);
        if (loaded.FilesRead == 0)
        {
            stderr.WriteLine("tripline explain: --manifests: no .yaml, .yml or .json files found");
            return ExitCodes.BadUsage;
        }

        var snapshot = loaded.Snapshot;
        if (options.Apply.Count > 0 || options.Delete.Count > 0)
        {
            // Under a change, as whatif judges it: the same way of building the changed cluster.
            var change = ProposedChange.Load(options.Apply, options.Delete, problems);
            if (problems.Count > 0) return Fail(stderr, problems);
            snapshot = change.AppliedTo(snapshot, problems);
            if (problems.Count > 0) return Fail(stderr, problems);
        }
        var index = EndpointIndex.Build(snapshot);
        if (!TryResolve(options.From, "--from", snapshot, index, problems, out var source, out var sourceIp)
            | !TryResolve(options.To, "--to", snapshot, index, problems, out var destination, out var destinationIp))
        {
            return Fail(stderr, problems);
        }
        if (source.Kind == EndpointKind.Service || destination.Kind == EndpointKind.Service)
        {
            // A ClusterIP is rewritten to a backend before any policy sees it; judging the ClusterIP would mislead.
            string option = source.Kind == EndpointKind.Service ? "--from" : "--to";
            problems.Add($"{option}: {(source.Kind == EndpointKind.Service ? options.From : options.To)} is a Service ClusterIP; name one of its backend pods instead");
            return Fail(stderr, problems);
        }

        var engine = PolicyEngine.Compile(snapshot);
        var explanation = engine.Explain(in source, sourceIp, in destination, destinationIp, protocol <= PolicyProtocol.SCTP ? options.Port : 0, protocol);
        if (recorded is not null && options.Output == "text") stdout.Write(recorded.Describe());
        stdout.Write(options.Output == "json" ? explanation.ToJson() + Environment.NewLine : explanation.ToText());
        return ExitCodes.Success;
    }

    private static bool TryResolve(string text, string option, ClusterSnapshot snapshot, EndpointIndex index, List<string> problems, out ResolvedEndpoint endpoint, out IpKey ip)
    {
        endpoint = ResolvedEndpoint.External;
        ip = IpKey.Zero;
        if (IPAddress.TryParse(text, out var address))
        {
            ip = IpKey.From(address);
            endpoint = index.Resolve(ip, 0);
            return true;
        }
        int slash = text.IndexOf('/');
        if (slash <= 0 || slash == text.Length - 1 || text.IndexOf('/', slash + 1) >= 0)
        {
            problems.Add($"{option}: '{text}' is neither NAMESPACE/POD nor an IP address");
            return false;
        }
        var pod = snapshot.Pods.FirstOrDefault(p => string.Equals(p.Key, text, StringComparison.Ordinal));
        if (pod is null)
        {
            problems.Add($"{option}: no pod {text} in the manifests");
            return false;
        }
        if (pod.Ips.Count == 0)
        {
            problems.Add($"{option}: pod {text} has no IP in the manifests (status.podIP); give its IP instead");
            return false;
        }
        ip = IpKey.From(pod.Ips[0]);
        // A host-network pod's IP is its node's; the engine still needs to know it was this pod to say so.
        endpoint = new ResolvedEndpoint(EndpointKind.Pod, pod: pod);
        return true;
    }

    private static int Fail(TextWriter stderr, List<string> problems)
    {
        foreach (string problem in problems) stderr.WriteLine("tripline explain: " + problem);
        return ExitCodes.BadUsage;
    }
}
