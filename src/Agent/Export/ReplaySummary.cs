using System.Globalization;
using System.Text;
using Tripline.Capture.Flows;
using Tripline.Capture.Parsing;
using Tripline.Capture.Sources;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;

namespace Tripline.Export;

/// <summary>Counts flows by final verdict and remembers the denied ones, for the summary a person reads after replay.</summary>
internal sealed class ReplaySummary : IFlowExporter
{
    private const int Shown = 10;
    /// <summary>Distinct denied connections remembered; past it, flows of pairs not yet seen are only counted.</summary>
    private const int MaxDeniedConnections = 10_000;
    private readonly Dictionary<string, long> _deniedPairs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long[]> _deniedConnections = new(StringComparer.Ordinal);
    private readonly long[] _enforcement = new long[EnforcementJudge.Names.Length];
    private long _deniedUnlisted;

    public long Flows { get; private set; }
    public long Allowed { get; private set; }
    public long Denied { get; private set; }

    public void Export(in FlowEvent flowEvent, in FlowJudgement judgement, FlowContext context)
    {
        if (flowEvent.Kind != FlowEventKind.End) return;
        Flows++;
        var enforcement = EnforcementJudge.Judge(in flowEvent, in judgement, context);
        _enforcement[(int)enforcement]++;
        if (judgement.Verdict.Allowed)
        {
            Allowed++;
            return;
        }
        Denied++;
        string pair = $"{Describe(judgement.Source, namespaceOnly: true)} -> {Describe(judgement.Destination, namespaceOnly: true)}";
        _deniedPairs[pair] = _deniedPairs.GetValueOrDefault(pair) + 1;
        // One line per connection (source, destination, protocol and port, and why), however many flows repeated it.
        ref readonly var f = ref flowEvent.Flow;
        string port = IpProtocol.HasPorts(f.Protocol) ? "/" + f.DestinationPort.ToString(CultureInfo.InvariantCulture) : "";
        var why = new List<string>();
        if (judgement.Verdict.Egress is { Allowed: false } egress) why.Add("egress isolated by " + string.Join(", ", egress.Policies));
        if (judgement.Verdict.Ingress is { Allowed: false } ingress) why.Add("ingress isolated by " + string.Join(", ", ingress.Policies));
        string connection = $"{Describe(judgement.Source, false)} ({f.Source}) -> {Describe(judgement.Destination, false)} ({f.Destination}) {IpProtocol.Name(f.Protocol)}{port}: {string.Join("; ", why)}";
        // Per connection: its flows (first), then its flows by enforcement.
        if (!_deniedConnections.TryGetValue(connection, out long[]? seen) && _deniedConnections.Count < MaxDeniedConnections)
        {
            _deniedConnections[connection] = seen = new long[1 + EnforcementJudge.Names.Length];
        }
        if (seen is null)
        {
            _deniedUnlisted++;
            return;
        }
        seen[0]++;
        seen[1 + (int)enforcement]++;
    }

    private static string Describe(in ResolvedEndpoint endpoint, bool namespaceOnly) => endpoint.Kind switch
    {
        EndpointKind.Pod => namespaceOnly ? endpoint.Pod!.Namespace : endpoint.Pod!.Key,
        EndpointKind.Service => namespaceOnly ? endpoint.Service!.Namespace : "service " + endpoint.Service!.Key,
        EndpointKind.Node => "node " + endpoint.Node!.Name,
        _ => "external",
    };

    public void Flush()
    {
    }

    public string Render(CaptureCounters capture, FlowTableStats table, TimeSpan elapsed, int files)
    {
        var text = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        text.AppendLine(inv, $"Tripline replay: {files} capture file(s) in {elapsed.TotalSeconds:F2} s");
        text.AppendLine(inv, $"  packets   {capture.Frames,12:N0} read, {table.Packets:N0} in flows, {capture.Malformed:N0} malformed, {capture.Skipped:N0} not IP flows (ARP, other protocols)");
        if (table.DuplicatePackets > 0 || table.UnmatchedFragments > 0)
        {
            text.AppendLine(inv, $"            {table.DuplicatePackets:N0} seen again on a second interface, {table.UnmatchedFragments:N0} fragments without their first");
        }
        foreach (var (status, count) in capture.ByStatus().Where(s => s.Status.IsMalformed()).OrderByDescending(s => s.Count))
        {
            text.AppendLine(inv, $"            malformed: {status.Reason()} {count:N0}");
        }
        text.AppendLine(inv, $"  flows     {Flows,12:N0} ({Allowed:N0} allowed, {Denied:N0} denied{(table.Evictions > 0 ? $", {table.Evictions:N0} evicted when the table was full" : "")})");
        // What the network did with the verdicts: the violations first.
        text.AppendLine(inv, $"  enforcement {_enforcement[(int)Enforcement.NotEnforced]:N0} not_enforced (denied, went through), {_enforcement[(int)Enforcement.Enforced]:N0} enforced, "
            + $"{_enforcement[(int)Enforcement.Dropped]:N0} dropped (allowed, lost), {_enforcement[(int)Enforcement.Delivered]:N0} delivered, {_enforcement[(int)Enforcement.Unknown]:N0} unknown");
        if (_deniedPairs.Count > 0)
        {
            text.AppendLine("  top denied namespace pairs:");
            foreach (var (pair, count) in _deniedPairs.OrderByDescending(p => p.Value).ThenBy(p => p.Key, StringComparer.Ordinal).Take(10))
            {
                text.AppendLine(inv, $"    {count,8:N0}  {pair}");
            }
            text.AppendLine(inv, $"  denied connections ({_deniedConnections.Count:N0}{(_deniedUnlisted > 0 ? "+" : "")} distinct; flows, most first):");
            foreach (var (connection, counts) in _deniedConnections.OrderByDescending(c => c.Value[0]).ThenBy(c => c.Key, StringComparer.Ordinal).Take(Shown))
            {
                var fates = Enumerable.Range(0, EnforcementJudge.Names.Length).Where(i => counts[1 + i] > 0)
                    .OrderByDescending(i => (Enforcement)i == Enforcement.NotEnforced).Select(i => $"{counts[1 + i]:N0} {EnforcementJudge.Names[i]}");
                text.AppendLine(inv, $"    {counts[0],8:N0}  {connection} [{string.Join(", ", fates)}]");
            }
            if (_deniedConnections.Count > Shown) text.AppendLine(inv, $"    ... and {_deniedConnections.Count - Shown:N0} more{(_deniedUnlisted > 0 ? $" ({_deniedUnlisted:N0} flows of connections past the first {MaxDeniedConnections:N0})" : "")}: query the flow log");
        }
        // The whole process, start-up and manifests included: a steady packet path adds nothing here.
        text.AppendLine(inv, $"  memory    {GC.GetTotalAllocatedBytes() / (1024.0 * 1024):F1} MiB allocated, GC collections gen0 {GC.CollectionCount(0)}, gen1 {GC.CollectionCount(1)}, gen2 {GC.CollectionCount(2)}{(PeakResidentBytes() is { } peak ? $", peak resident {peak / (1024.0 * 1024):F0} MiB" : "")}");
        return text.ToString();
    }

    /// <summary>The process's peak resident set (VmHWM), where the kernel tells it: what a memory limit is measured against.</summary>
    public static long? PeakResidentBytes()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/status"))
            {
                if (!line.StartsWith("VmHWM:", StringComparison.Ordinal)) continue;
                var kib = line.AsSpan(6).Trim();
                if (kib.EndsWith(" kB", StringComparison.Ordinal) && long.TryParse(kib[..^3].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out long value)) return value * 1024;
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return null;
    }
}
