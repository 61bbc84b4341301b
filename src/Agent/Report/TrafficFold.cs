using System.Text;
using Tripline.Records;

namespace Tripline.Report;

/// <summary>Flows of one pair that share how they were judged or classified: a denial by the same sides, or plaintext under the same mesh facts.</summary>
internal sealed class FlowFacet
{
    public long Flows;
    /// <summary>The earliest first packet and the latest end, as recorded (fixed-width UTC, so they order as bytes).</summary>
    public byte[] First = [];
    public byte[] Last = [];
    public readonly SortedDictionary<string, long> Enforcement = new(StringComparer.Ordinal);

    public void Add(ReadOnlySpan<byte> first, ReadOnlySpan<byte> last, ReadOnlySpan<byte> enforcement)
    {
        Flows++;
        RecordedTimes.Widen(ref First, ref Last, first, last);
        if (!enforcement.IsEmpty)
        {
            string name = Encoding.UTF8.GetString(enforcement);
            Enforcement[name] = Enforcement.GetValueOrDefault(name) + 1;
        }
    }
}

/// <summary>What the log says of one folded pair (<see cref="ReportPairKey"/>): its ends as first recorded, its flows, its denials and its plaintext.</summary>
internal sealed class ReportPair(string protocol, byte[] source, byte[] destination)
{
    public string Protocol { get; } = protocol;
    public byte[] Source { get; } = source;
    public byte[] Destination { get; } = destination;
    public long AllowedFlows;
    public long DeniedFlows;
    /// <summary>Denied flows by the raw <c>egress</c> and <c>ingress</c> judgements that denied them.</summary>
    public readonly Dictionary<(string Egress, string Ingress), FlowFacet> Denials = [];
    /// <summary>Flows recorded as not TLS, by their raw <c>mesh</c> object.</summary>
    public readonly Dictionary<string, FlowFacet> Plaintext = new(StringComparer.Ordinal);

    public long Flows => AllowedFlows + DeniedFlows;
}

/// <summary>
/// The streaming pass of <c>tripline report</c>: every flow's end record folded into its endpoint pair (as recommend
/// folds them), keeping per pair the counts, first and last seen, its denials and its plaintext, so that memory grows
/// with the distinct pairs (and the few ways each was judged), never with the log. Also the coverage: records, nodes,
/// the period seen.
/// </summary>
internal sealed class TrafficFold
{
    private readonly Dictionary<string, ReportPair> _pairs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ReportPair>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly ReportPairKey _key = new();
    private readonly FlowFilter _filter;
    private byte[] _lastNode = [];
    private byte[] _first = [], _last = [];

    public TrafficFold(FlowFilter filter)
    {
        _filter = filter;
        _lookup = _pairs.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Lines read (blank lines not counted).</summary>
    public long Records { get; private set; }
    /// <summary>Lines that are not flow records (a line cut by a crash, or not JSON).</summary>
    public long Unreadable { get; private set; }
    /// <summary>Records left out by <c>--since</c>/<c>--until</c>.</summary>
    public long OutsidePeriod { get; private set; }
    public long Flows { get; private set; }
    public long AggregatedFlows { get; private set; }
    /// <summary>End records that carry the mesh facts (<c>tls</c> or <c>mesh</c>).</summary>
    public long MeshRecords { get; private set; }
    /// <summary>The earliest first packet and the latest end of the flows read (empty when none).</summary>
    public byte[] First => _first;
    public byte[] Last => _last;
    public SortedSet<string> Nodes { get; } = new(StringComparer.Ordinal);

    public IReadOnlyCollection<ReportPair> Pairs => _pairs.Values;

    public void Add(ReadOnlySpan<byte> line)
    {
        if (line.Trim(" \t\r"u8).IsEmpty) return;
        Records++;
        if (!_filter.MatchesEverything && _filter.Evaluate(line) != FilterResult.Match)
        {
            OutsidePeriod++;
            return;
        }
        if (!FlowRecordFields.TryRead(line, out var record))
        {
            Unreadable++;
            return;
        }
        if (!record.Node.IsEmpty && !record.Node.SequenceEqual(_lastNode))
        {
            _lastNode = record.Node.ToArray();
            Nodes.Add(Encoding.UTF8.GetString(_lastNode));
        }
        if (record.Event.SequenceEqual("aggregate"u8))
        {
            AggregatedFlows += record.Flows;
            return;
        }
        // Each flow writes one end record, last: counting ends counts every flow once.
        if (!record.Event.SequenceEqual("end"u8)) return;
        Flows++;
        ReadOnlySpan<byte> first = record.FirstSeen.IsEmpty ? record.Time : record.FirstSeen;
        RecordedTimes.Widen(ref _first, ref _last, first, record.Time);

        ReadOnlySpan<char> key = _key.Of(in record);
        if (!_lookup.TryGetValue(key, out var pair))
        {
            pair = new ReportPair(Encoding.UTF8.GetString(record.Protocol), record.Source.ToArray(), record.Destination.ToArray());
            _pairs[key.ToString()] = pair;
        }
        if (record.Verdict.SequenceEqual("deny"u8))
        {
            pair.DeniedFlows++;
            var sides = (Encoding.UTF8.GetString(record.Egress), Encoding.UTF8.GetString(record.Ingress));
            if (!pair.Denials.TryGetValue(sides, out var denial)) pair.Denials[sides] = denial = new FlowFacet();
            denial.Add(first, record.Time, record.Enforcement);
        }
        else
        {
            pair.AllowedFlows++;
        }
        if (record.Tls is not null || !record.Mesh.IsEmpty) MeshRecords++;
        if (record.Tls == false)
        {
            string mesh = Encoding.UTF8.GetString(record.Mesh);
            if (!pair.Plaintext.TryGetValue(mesh, out var plaintext)) pair.Plaintext[mesh] = plaintext = new FlowFacet();
            plaintext.Add(first, record.Time, record.Enforcement);
        }
    }
}
