using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

using Tripline.Export;

namespace Tripline.Records;

/// <summary>The filters of <c>tripline flows</c> and <c>/api/v1/flows</c>, as text, before validation.</summary>
internal sealed record FlowFilterOptions
{
    public string? Namespace { get; init; }
    /// <summary>NS/NAME.</summary>
    public string? Pod { get; init; }
    /// <summary>Kind/name, or a name of any kind.</summary>
    public string? Workload { get; init; }
    /// <summary>An IP address or a CIDR.</summary>
    public string? Ip { get; init; }
    public string? Port { get; init; }
    public string? Protocol { get; init; }
    public string? Verdict { get; init; }
    /// <summary>What the network did with the verdict: enforced, not_enforced, dropped, delivered or unknown.</summary>
    public string? Enforcement { get; init; }
    /// <summary>ns/name, or a name in any namespace.</summary>
    public string? Policy { get; init; }
    /// <summary>true or false: whether the connection's first payload was a TLS record (records that do not know match neither).</summary>
    public string? Tls { get; init; }
    /// <summary>A duration back from now (30m, 2h, 1d, 90s) or an RFC 3339 time.</summary>
    public string? Since { get; init; }
    /// <summary>An RFC 3339 time or a duration back from now.</summary>
    public string? Until { get; init; }
}

/// <summary>Whether a line passed the filter, failed it, or could not be read as a record.</summary>
internal enum FilterResult : byte
{
    Match,
    NoMatch,
    Corrupt,
}

/// <summary>
/// A flow-record filter validated and compiled once, then evaluated over the raw UTF-8 of each JSON line without
/// building objects: one pass of <see cref="Utf8JsonReader"/>, values compared as bytes. A record matches a
/// namespace, pod, workload, IP or port when either end does, and a policy when either side lists it.
/// </summary>
internal sealed class FlowFilter
{
    private readonly byte[]? _namespace;
    private readonly byte[]? _podNamespace;
    private readonly byte[]? _podName;
    private readonly byte[]? _workload;
    private readonly bool _workloadNameOnly;
    private readonly IPNetwork? _network;
    private readonly int _port = -1;
    private readonly string? _protocol;
    private readonly byte[]? _verdict;
    private readonly byte[]? _enforcement;
    private readonly byte[]? _policy;
    private readonly bool _policyNameOnly;
    private readonly bool? _tls;
    private readonly DateTimeOffset? _since;
    private readonly DateTimeOffset? _until;
    private readonly byte[]? _sinceText;
    private readonly byte[]? _untilText;

    public static readonly FlowFilter All = new(new FlowFilterOptions(), DateTimeOffset.UnixEpoch);

    /// <summary>No criterion at all: every well-formed record matches (a reader that parses the record anyway may skip the filter).</summary>
    public bool MatchesEverything => _namespace is null && _podName is null && _workload is null && _network is null && _port < 0
        && _protocol is null && _verdict is null && _enforcement is null && _policy is null && _tls is null && _sinceText is null && _untilText is null
        && _since is null && _until is null;

    private FlowFilter(FlowFilterOptions o, DateTimeOffset now, List<string>? problems = null)
    {
        problems ??= [];
        if (!string.IsNullOrEmpty(o.Namespace)) _namespace = Encoding.UTF8.GetBytes(o.Namespace);
        if (!string.IsNullOrEmpty(o.Pod))
        {
            int slash = o.Pod.IndexOf('/', StringComparison.Ordinal);
            if (slash <= 0 || slash == o.Pod.Length - 1) problems.Add($"--pod: '{o.Pod}' is not NAMESPACE/NAME");
            else
            {
                _podNamespace = Encoding.UTF8.GetBytes(o.Pod[..slash]);
                _podName = Encoding.UTF8.GetBytes(o.Pod[(slash + 1)..]);
            }
        }
        if (!string.IsNullOrEmpty(o.Workload))
        {
            _workloadNameOnly = !o.Workload.Contains('/', StringComparison.Ordinal);
            _workload = Encoding.UTF8.GetBytes(_workloadNameOnly ? "/" + o.Workload : o.Workload);
        }
        if (!string.IsNullOrEmpty(o.Ip))
        {
            if (IPNetwork.TryParse(o.Ip, out var network)) _network = network;
            else if (IPAddress.TryParse(o.Ip, out var address)) _network = new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
            else problems.Add($"--ip: '{o.Ip}' is neither an IP address nor a CIDR");
        }
        if (!string.IsNullOrEmpty(o.Port))
        {
            if (int.TryParse(o.Port, NumberStyles.None, CultureInfo.InvariantCulture, out int port) && port is >= 0 and <= 65535) _port = port;
            else problems.Add($"--port: '{o.Port}' is not a port number (0-65535)");
        }
        if (!string.IsNullOrEmpty(o.Protocol))
        {
            _protocol = o.Protocol.ToUpperInvariant() switch
            {
                "TCP" => "TCP",
                "UDP" => "UDP",
                "SCTP" => "SCTP",
                "ICMP" => "ICMP",
                "ICMPV6" => "ICMPv6",
                _ => null,
            };
            if (_protocol is null) problems.Add($"--protocol: '{o.Protocol}' is not TCP, UDP, SCTP, ICMP or ICMPv6");
        }
        if (!string.IsNullOrEmpty(o.Verdict))
        {
            string v = o.Verdict.ToLowerInvariant();
            if (v is "allow" or "deny") _verdict = Encoding.UTF8.GetBytes(v);
            else problems.Add($"--verdict: '{o.Verdict}' is not allow or deny");
        }
        if (!string.IsNullOrEmpty(o.Enforcement))
        {
            string e = o.Enforcement.ToLowerInvariant();
            if (EnforcementJudge.TryParse(e, out _)) _enforcement = Encoding.UTF8.GetBytes(e);
            else problems.Add($"--enforcement: '{o.Enforcement}' is not {string.Join(", ", EnforcementJudge.Names)}");
        }
        if (!string.IsNullOrEmpty(o.Policy))
        {
            _policyNameOnly = !o.Policy.Contains('/', StringComparison.Ordinal);
            _policy = Encoding.UTF8.GetBytes(_policyNameOnly ? "/" + o.Policy : o.Policy);
        }
        if (!string.IsNullOrEmpty(o.Tls))
        {
            if (bool.TryParse(o.Tls, out bool tls)) _tls = tls;
            else problems.Add($"--tls: '{o.Tls}' is not true or false");
        }
        if (!string.IsNullOrEmpty(o.Since))
        {
            if (TryParseTime(o.Since, now, out var since)) _since = since;
            else problems.Add($"--since: '{o.Since}' is neither a duration (30m, 2h, 1d) nor an RFC 3339 time");
        }
        if (!string.IsNullOrEmpty(o.Until))
        {
            if (TryParseTime(o.Until, now, out var until)) _until = until;
            else problems.Add($"--until: '{o.Until}' is neither an RFC 3339 time nor a duration (30m, 2h, 1d)");
        }
        if (_since is { } s && _until is { } u && u < s) problems.Add($"--until: {o.Until} is before --since {o.Since}");
        // Records carry fixed-width UTC times, so the common case compares bytes without parsing a date.
        if (_since is { } sinceTime) _sinceText = Encoding.ASCII.GetBytes(FormatRecordTime(sinceTime));
        if (_until is { } untilTime) _untilText = Encoding.ASCII.GetBytes(FormatRecordTime(untilTime));
    }

    /// <summary>Validates every option and reports every problem, each naming its option.</summary>
    public static bool TryCreate(FlowFilterOptions options, DateTimeOffset now, out FlowFilter filter, out IReadOnlyList<string> problems)
    {
        var list = new List<string>();
        filter = new FlowFilter(options, now, list);
        problems = list;
        return list.Count == 0;
    }

    public DateTimeOffset? Since => _since;
    public DateTimeOffset? Until => _until;

    private static string FormatRecordTime(DateTimeOffset time) =>
        time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    /// <summary>A duration back from <paramref name="now"/> ("90s", "30m", "2h", "1d", "1h30m") or an RFC 3339 time.</summary>
    public static bool TryParseTime(string text, DateTimeOffset now, out DateTimeOffset time)
    {
        if (TryParseDuration(text, out var duration))
        {
            time = now - duration;
            return true;
        }
        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out time)
            && (text.Contains('T', StringComparison.Ordinal) || text.Contains(' ', StringComparison.Ordinal) || text.Length == 10);
    }

    public static bool TryParseDuration(string text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        if (string.IsNullOrEmpty(text)) return false;
        int i = 0;
        bool any = false;
        while (i < text.Length)
        {
            int start = i;
            while (i < text.Length && char.IsAsciiDigit(text[i])) i++;
            if (i == start || i == text.Length) return false;
            if (!long.TryParse(text.AsSpan(start, i - start), NumberStyles.None, CultureInfo.InvariantCulture, out long n)) return false;
            var unit = text[i] switch
            {
                's' => TimeSpan.FromSeconds(1),
                'm' => TimeSpan.FromMinutes(1),
                'h' => TimeSpan.FromHours(1),
                'd' => TimeSpan.FromDays(1),
                'w' => TimeSpan.FromDays(7),
                _ => TimeSpan.Zero,
            };
            if (unit == TimeSpan.Zero || n > 100_000) return false;
            duration += unit * n;
            i++;
            any = true;
        }
        return any;
    }

    /// <summary>Evaluates one record (a JSON object, without its newline).</summary>
    public FilterResult Evaluate(ReadOnlySpan<byte> line)
    {
        var fields = new Fields();
        try
        {
            var reader = new Utf8JsonReader(line, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return FilterResult.Corrupt;
            while (reader.Read())
            {
                if (reader.TokenType == JsonTokenType.EndObject)
                {
                    // The object closed: anything after it but whitespace means a line is damaged.
                    return reader.Read() ? FilterResult.Corrupt : Decide(ref fields);
                }
                if (reader.TokenType != JsonTokenType.PropertyName) return FilterResult.Corrupt;
                if (reader.ValueTextEquals("time"u8)) { reader.Read(); fields.Time = Value(ref reader); }
                else if (reader.ValueTextEquals("protocol"u8)) { reader.Read(); fields.Protocol = Value(ref reader); }
                else if (reader.ValueTextEquals("verdict"u8)) { reader.Read(); fields.Verdict = Value(ref reader); }
                else if (reader.ValueTextEquals("enforcement"u8)) { reader.Read(); fields.Enforcement = Value(ref reader); }
                else if (reader.ValueTextEquals("tls"u8)) { reader.Read(); fields.Tls = reader.TokenType switch { JsonTokenType.True => true, JsonTokenType.False => false, _ => null }; reader.Skip(); }
                else if (reader.ValueTextEquals("src"u8)) { reader.Read(); ReadEndpoint(ref reader, ref fields); }
                else if (reader.ValueTextEquals("dst"u8)) { reader.Read(); ReadEndpoint(ref reader, ref fields); }
                else if (reader.ValueTextEquals("egress"u8) || reader.ValueTextEquals("ingress"u8)) { reader.Read(); ReadSide(ref reader, ref fields); }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
            return FilterResult.Corrupt;
        }
        catch (JsonException)
        {
            return FilterResult.Corrupt;
        }
    }

    public bool Matches(ReadOnlySpan<byte> line) => Evaluate(line) == FilterResult.Match;

    private ref struct Fields
    {
        public ReadOnlySpan<byte> Time;
        public ReadOnlySpan<byte> Protocol;
        public ReadOnlySpan<byte> Verdict;
        public ReadOnlySpan<byte> Enforcement;
        public bool? Tls;
        public bool NamespaceMatched;
        public bool PodMatched;
        public bool WorkloadMatched;
        public bool IpMatched;
        public bool PortMatched;
        public bool PolicyMatched;
    }

    private static ReadOnlySpan<byte> Value(scoped ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.String && reader.TokenType != JsonTokenType.Number)
        {
            reader.Skip();
            return default;
        }
        // Escapes are rare in these fields (names are DNS labels); unescape only then.
        return reader.ValueIsEscaped ? Encoding.UTF8.GetBytes(reader.GetString()!) : reader.ValueSpan;
    }

    private void ReadEndpoint(scoped ref Utf8JsonReader reader, ref Fields fields)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return;
        }
        ReadOnlySpan<byte> ns = default, pod = default;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("ip"u8))
            {
                reader.Read();
                if (_network is { } network && reader.TokenType == JsonTokenType.String && IPAddress.TryParse(Encoding.ASCII.GetString(Value(ref reader)), out var ip)
                    && network.Contains(ip))
                {
                    fields.IpMatched = true;
                }
            }
            else if (reader.ValueTextEquals("port"u8))
            {
                reader.Read();
                if (_port >= 0 && reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out int port) && port == _port) fields.PortMatched = true;
            }
            else if (reader.ValueTextEquals("namespace"u8))
            {
                reader.Read();
                ns = Value(ref reader);
                if (_namespace is not null && ns.SequenceEqual(_namespace)) fields.NamespaceMatched = true;
            }
            else if (reader.ValueTextEquals("pod"u8))
            {
                reader.Read();
                pod = Value(ref reader);
            }
            else if (reader.ValueTextEquals("workload"u8))
            {
                reader.Read();
                var workload = Value(ref reader);
                if (_workload is not null && (_workloadNameOnly ? workload.EndsWith(_workload) : workload.SequenceEqual(_workload))) fields.WorkloadMatched = true;
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        if (_podName is not null && ns.SequenceEqual(_podNamespace) && pod.SequenceEqual(_podName)) fields.PodMatched = true;
    }

    private void ReadSide(scoped ref Utf8JsonReader reader, ref Fields fields)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return;
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("policies"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartArray)
                {
                    reader.Skip();
                    continue;
                }
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    var policy = Value(ref reader);
                    if (_policy is not null && (_policyNameOnly ? policy.EndsWith(_policy) : policy.SequenceEqual(_policy))) fields.PolicyMatched = true;
                }
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
    }

    private FilterResult Decide(ref Fields f)
    {
        if (f.Time.IsEmpty) return FilterResult.Corrupt;
        bool ok = (_namespace is null || f.NamespaceMatched)
            && (_podName is null || f.PodMatched)
            && (_workload is null || f.WorkloadMatched)
            && (_network is null || f.IpMatched)
            && (_port < 0 || f.PortMatched)
            && (_protocol is null || Encoding.ASCII.GetString(f.Protocol) == _protocol)
            && (_verdict is null || f.Verdict.SequenceEqual(_verdict))
            && (_enforcement is null || f.Enforcement.SequenceEqual(_enforcement))
            && (_policy is null || f.PolicyMatched)
            && (_tls is null || f.Tls == _tls)
            && InTimeRange(f.Time);
        return ok ? FilterResult.Match : FilterResult.NoMatch;
    }

    private bool InTimeRange(ReadOnlySpan<byte> time)
    {
        if (_sinceText is null && _untilText is null) return true;
        if (time.Length == 27 && time[^1] == (byte)'Z' && time[10] == (byte)'T')
        {
            return (_sinceText is null || time.SequenceCompareTo(_sinceText) >= 0) && (_untilText is null || time.SequenceCompareTo(_untilText) <= 0);
        }
        if (!DateTimeOffset.TryParse(Encoding.ASCII.GetString(time), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed)) return false;
        return (_since is null || parsed >= _since) && (_until is null || parsed <= _until);
    }
}
