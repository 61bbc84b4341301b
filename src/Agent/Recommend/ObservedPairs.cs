using System.Text;
using Tripline.Records;

namespace Tripline.Recommend;

/// <summary>What the log says of one endpoint pair (<see cref="EndpointPairKey"/>): its two ends as first recorded and its flows.</summary>
internal sealed class ObservedPair(string protocol, byte[] source, byte[] destination)
{
    public string Protocol { get; } = protocol;
    public byte[] Source { get; } = source;
    public byte[] Destination { get; } = destination;
    public long AllowedFlows;
    public long DeniedFlows;
    /// <summary>Flows whose opening was not seen (initiator <c>unknown</c>): the orientation is a guess.</summary>
    public long UnknownInitiator;
    /// <summary>The first and last end times, as recorded (fixed-width UTC, so they order as bytes).</summary>
    public byte[] First = [];
    public byte[] Last = [];
    public readonly SortedSet<string> Nodes = new(StringComparer.Ordinal);

    public long Flows => AllowedFlows + DeniedFlows;
}

/// <summary>
/// The streaming pass of <c>tripline recommend</c>: every flow's end record folded into its endpoint pair (protocol,
/// both ends as recorded, all but the source port), so memory grows with the distinct pairs, never with the log.
/// </summary>
internal sealed class ObservedPairs
{
    private readonly Dictionary<string, ObservedPair> _pairs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ObservedPair>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly EndpointPairKey _key = new();
    private readonly FlowFilter _filter;
    private byte[] _lastNode = [];
    private string _lastNodeText = "";

    public ObservedPairs(FlowFilter filter)
    {
        _filter = filter;
        _lookup = _pairs.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public long Records { get; private set; }
    public long Flows { get; private set; }
    public long AggregatedFlows { get; private set; }

    public IReadOnlyCollection<ObservedPair> Pairs => _pairs.Values;

    public void Add(ReadOnlySpan<byte> line)
    {
        if (line.Trim(" \t\r"u8).IsEmpty) return;
        Records++;
        if (!_filter.MatchesEverything && _filter.Evaluate(line) != FilterResult.Match) return;
        if (!FlowRecordFields.TryRead(line, out var record, WhatIf.WhatIfCommand.JudgedEvents, stopAfterVerdict: true)) return;
        if (record.Event.SequenceEqual("aggregate"u8))
        {
            AggregatedFlows += record.Flows;
            return;
        }
        if (!record.Event.SequenceEqual("end"u8)) return;
        Flows++;
        ReadOnlySpan<char> key = _key.Of(in record);
        if (!_lookup.TryGetValue(key, out var pair))
        {
            pair = new ObservedPair(Encoding.UTF8.GetString(record.Protocol), record.Source.ToArray(), record.Destination.ToArray());
            _pairs[key.ToString()] = pair;
        }
        if (record.Verdict.SequenceEqual("deny"u8)) pair.DeniedFlows++;
        else pair.AllowedFlows++;
        if (record.Initiator.SequenceEqual("unknown"u8)) pair.UnknownInitiator++;
        RecordedTimes.Widen(ref pair.First, ref pair.Last, record.Time, record.Time);
        if (!record.Node.IsEmpty)
        {
            if (!record.Node.SequenceEqual(_lastNode))
            {
                _lastNode = record.Node.ToArray();
                _lastNodeText = Encoding.UTF8.GetString(_lastNode);
            }
            pair.Nodes.Add(_lastNodeText);
        }
    }
}
