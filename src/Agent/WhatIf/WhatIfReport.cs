using System.Globalization;
using System.Text;
using System.Text.Json;
using Tripline.Correlation.Policy;
using Tripline.Export;
using Tripline.Records;

namespace Tripline.WhatIf;

/// <summary>
/// What <c>tripline whatif</c> prints: one JSON line per changed flow (design.md section 8), or a table of the changed
/// flows grouped by workload pair, destination port and protocol, newly denied first; and a summary line.
/// </summary>
internal sealed class WhatIfReport : IDisposable
{
    private static readonly JsonEncodedText VerdictName = JsonEncodedText.Encode("verdict");
    private readonly Stream _output;
    private readonly bool _json;
    private readonly Utf8JsonWriter? _writer;
    private readonly Dictionary<(string Source, string Destination, string Port, string Protocol, Change Change), Group> _groups = [];
    private readonly Dictionary<string, long> _notJudgeable = new(StringComparer.Ordinal);

    public WhatIfReport(Stream output, bool json)
    {
        _output = output;
        _json = json;
        if (json) _writer = new Utf8JsonWriter(output, new JsonWriterOptions { SkipValidation = true });
    }

    public long Records { get; private set; }
    public long Judged { get; private set; }
    public long NewlyDenied { get; private set; }
    public long NewlyAllowed { get; private set; }
    public long NotJudgeable { get; private set; }
    public long AggregatesSkipped { get; private set; }

    public void CountRecord() => Records++;

    public void SkipAggregate(long flows) => AggregatesSkipped += flows;

    public void Add(in FlowRecordFields record, Judged judged, ReadOnlySpan<byte> port)
    {
        if (judged.NotJudgeable is { } reason)
        {
            NotJudgeable++;
            _notJudgeable[reason] = _notJudgeable.GetValueOrDefault(reason) + 1;
            return;
        }
        Judged++;
        var change = judged.Change;
        if (change == Change.None) return;
        if (change == Change.NewlyDenied) NewlyDenied++;
        else NewlyAllowed++;
        string time = Encoding.UTF8.GetString(record.Time);
        var key = (judged.SourceGroup, judged.DestinationGroup, Encoding.UTF8.GetString(port), Encoding.UTF8.GetString(record.Protocol), change);
        if (!_groups.TryGetValue(key, out var group)) _groups[key] = group = new Group(time, Deciding(judged.After!));
        group.Flows++;
        if (string.CompareOrdinal(time, group.First) < 0) group.First = time;
        if (string.CompareOrdinal(time, group.Last) > 0) group.Last = time;
        if (_writer is { } w)
        {
            WriteJson(w, in record, judged, change);
            _output.WriteByte((byte)'\n');
        }
    }

    private static void WriteJson(Utf8JsonWriter w, in FlowRecordFields record, Judged judged, Change change)
    {
        w.WriteStartObject();
        w.WriteString("flow_id"u8, record.FlowId);
        w.WriteString("time"u8, record.Time);
        w.WriteString("protocol"u8, record.Protocol);
        w.WritePropertyName("src"u8);
        w.WriteRawValue(record.Source, skipInputValidation: true);
        w.WritePropertyName("dst"u8);
        w.WriteRawValue(record.Destination, skipInputValidation: true);
        w.WriteString("change"u8, change == Change.NewlyDenied ? "newly_denied"u8 : "newly_allowed"u8);
        WriteVerdict(w, "before"u8, judged.Before!);
        WriteVerdict(w, "after"u8, judged.After!);
        if (!record.Verdict.IsEmpty) w.WriteString("recorded_verdict"u8, record.Verdict);
        w.WriteEndObject();
        w.Flush();
        w.Reset();
    }

    private static void WriteVerdict(Utf8JsonWriter w, ReadOnlySpan<byte> name, Verdict verdict)
    {
        w.WriteStartObject(name);
        w.WriteString(VerdictName, verdict.Allowed ? "allow" : "deny");
        FlowRecordWriter.WriteSide(w, FlowRecordWriter.Egress, verdict.Egress);
        FlowRecordWriter.WriteSide(w, FlowRecordWriter.Ingress, verdict.Ingress);
        w.WriteEndObject();
    }

    /// <summary>The policies that decide after the change: those isolating a denying side, else those that allow each side.</summary>
    private static string Deciding(Verdict after)
    {
        var names = new List<string>();
        foreach (var (side, name) in new[] { (after.Egress, "egress"), (after.Ingress, "ingress") })
        {
            if (side is null || side.Policies.Count == 0 || (!after.Allowed && side.Allowed)) continue;
            names.Add($"{name}:{(side.Allowed ? "" : "!")}{string.Join(',', side.Policies)}");
        }
        return names.Count > 0 ? string.Join(' ', names) : "(no policy isolates either end)";
    }

    public void Finish(TextWriter summary)
    {
        if (!_json)
        {
            var text = new StringBuilder();
            if (_groups.Count == 0)
            {
                text.Append("no flow changes verdict\n");
            }
            else
            {
                text.Append(Row("CHANGE", "FLOWS", "SOURCE", "DESTINATION", "PORT", "FIRST SEEN", "LAST SEEN", "DECIDED AFTER BY"));
                foreach (var ((source, destination, port, protocol, change), group) in _groups
                    .OrderBy(g => g.Key.Change == Change.NewlyDenied ? 0 : 1).ThenByDescending(g => g.Value.Flows).ThenBy(g => g.Key.Source, StringComparer.Ordinal).ThenBy(g => g.Key.Destination, StringComparer.Ordinal))
                {
                    text.Append(Row(change == Change.NewlyDenied ? "DENIED" : "ALLOWED", group.Flows.ToString("N0", CultureInfo.InvariantCulture), source, destination,
                        port.Length > 0 ? $"{port}/{protocol}" : protocol, group.First, group.Last, group.Policies));
                }
            }
            _output.Write(Encoding.UTF8.GetBytes(text.ToString()));
        }
        _output.Flush();
        string folded = AggregatesSkipped > 0 ? string.Create(CultureInfo.InvariantCulture, $"; {AggregatesSkipped:N0} flows folded into aggregate records not judged") : "";
        summary.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"tripline whatif: {Records:N0} records read, {Judged:N0} flows judged, {NewlyDenied + NewlyAllowed:N0} change verdict ({NewlyDenied:N0} newly denied, {NewlyAllowed:N0} newly allowed), {NotJudgeable:N0} not judgeable{folded}"));
        foreach (var (reason, count) in _notJudgeable.OrderByDescending(r => r.Value).Take(10))
        {
            summary.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  not judgeable: {count:N0} flows: {reason}"));
        }
    }

    private static string Row(string change, string flows, string source, string destination, string port, string first, string last, string policies) =>
        $"{change,-8} {flows,7}  {source,-36} {destination,-36} {port,-10} {first,-27} {last,-27} {policies}\n";

    public void Dispose() => _writer?.Dispose();

    private sealed class Group(string time, string policies)
    {
        public long Flows;
        public string First = time;
        public string Last = time;
        public string Policies = policies;
    }
}
