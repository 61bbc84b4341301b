using System.Buffers;
using System.Text;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;
using Tripline.Correlation.Policy;
using Tripline.Records;

namespace Tripline.WhatIf;

/// <summary>How a flow's verdict moves under the change.</summary>
internal enum Change : byte
{
    None,
    NewlyDenied,
    NewlyAllowed,
}

/// <summary>A flow's two verdicts (the cluster as it is, and with the change), or why it cannot be judged.</summary>
internal sealed record Judged(Verdict? Before, Verdict? After, string? NotJudgeable, string SourceGroup, string DestinationGroup)
{
    public Change Change => Before is null || After is null || Before.Allowed == After.Allowed ? Change.None
        : After.Allowed ? Change.NewlyAllowed : Change.NewlyDenied;
}

/// <summary>
/// Judges recorded flows twice, before and after a change. Verdicts are cached by what decides them, the flow's two
/// ends as recorded (all but the source port) and its protocol, so a log of millions of records costs a few
/// thousand judgements; the cache is bounded, so memory stays flat however long the log.
/// </summary>
internal sealed class WhatIfAnalysis
{
    /// <summary>Distinct endpoint pairs kept; past it the cache starts again (what it costs is time, never memory).</summary>
    internal const int MaxCached = 200_000;

    private readonly ClusterModel _before;
    private readonly ClusterModel _after;
    private readonly ClusterIndex _index;
    private readonly Dictionary<string, Judged> _cache = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Judged>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly EndpointPairKey _key = new();

    public WhatIfAnalysis(ClusterSnapshot before, ClusterSnapshot after)
    {
        _before = ClusterModel.Build(before);
        _after = ClusterModel.Build(after);
        _index = new ClusterIndex(before, after);
        _lookup = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public long Judgements { get; private set; }

    /// <summary>The verdicts of one record's flow (its ends, protocol and destination port).</summary>
    public Judged Judge(in FlowRecordFields record)
    {
        ReadOnlySpan<char> key = _key.Of(in record);
        if (_lookup.TryGetValue(key, out var cached)) return cached;
        var judged = JudgeUncached(in record);
        if (_cache.Count >= MaxCached) _cache.Clear();
        _cache[key.ToString()] = judged;
        return judged;
    }

    private Judged JudgeUncached(in FlowRecordFields record)
    {
        Judgements++;
        var source = RecordedEndpoint.Read(record.Source);
        var destination = RecordedEndpoint.Read(record.Destination);
        if (!TryProtocol(record.Protocol, out var protocol))
        {
            return new Judged(null, null, $"protocol {Encoding.UTF8.GetString(record.Protocol)} is not one policies name", source.Group, destination.Group);
        }
        var from = source.Resolve(_index, destination: false, out string? sourceProblem);
        var to = destination.Resolve(_index, destination: true, out string? destinationProblem);
        if ((sourceProblem ?? destinationProblem) is { } problem) return new Judged(null, null, problem, source.Group, destination.Group);
        var fromEndpoint = from!.Value;
        var toEndpoint = to!.Value;
        int port = protocol <= PolicyProtocol.SCTP ? Math.Max(0, destination.Port) : 0;
        // A Service is judged by its backends in each cluster, as the agent judges it.
        var before = _before.JudgeResolved(in fromEndpoint, source.IpKey, in toEndpoint, destination.IpKey, port, protocol).Verdict;
        var after = _after.JudgeResolved(in fromEndpoint, source.IpKey, in toEndpoint, destination.IpKey, port, protocol).Verdict;
        return new Judged(before, after, null, source.Group, destination.Group);
    }

    private static bool TryProtocol(ReadOnlySpan<byte> text, out PolicyProtocol protocol)
    {
        protocol = text.SequenceEqual("TCP"u8) ? PolicyProtocol.TCP
            : text.SequenceEqual("UDP"u8) ? PolicyProtocol.UDP
            : text.SequenceEqual("SCTP"u8) ? PolicyProtocol.SCTP
            : text.SequenceEqual("ICMP"u8) || text.SequenceEqual("ICMPv6"u8) ? PolicyProtocol.ICMP
            : PolicyProtocol.Other;
        return protocol != PolicyProtocol.Other;
    }
}
