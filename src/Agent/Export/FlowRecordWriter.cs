using System.Buffers;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Tripline.Capture.Flows;
using Tripline.Capture.Parsing;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;
using Tripline.Correlation.Mesh;
using Tripline.Correlation.Policy;

namespace Tripline.Export;

/// <summary>
/// Writes one flow-log record (design §3) as a JSON object with Utf8JsonWriter: no serializer, no intermediate
/// objects, names and meanings fixed by the contract. Extra fields help a responder and never replace one.
/// </summary>
internal static class FlowRecordWriter
{
    private static readonly JsonEncodedText Time = JsonEncodedText.Encode("time");
    private static readonly JsonEncodedText Event = JsonEncodedText.Encode("event");
    private static readonly JsonEncodedText FlowId = JsonEncodedText.Encode("flow_id");
    private static readonly JsonEncodedText Node = JsonEncodedText.Encode("node");
    private static readonly JsonEncodedText Interface = JsonEncodedText.Encode("interface");
    private static readonly JsonEncodedText Interfaces = JsonEncodedText.Encode("interfaces");
    private static readonly JsonEncodedText Protocol = JsonEncodedText.Encode("protocol");
    private static readonly JsonEncodedText Src = JsonEncodedText.Encode("src");
    private static readonly JsonEncodedText Dst = JsonEncodedText.Encode("dst");
    private static readonly JsonEncodedText Ip = JsonEncodedText.Encode("ip");
    private static readonly JsonEncodedText Port = JsonEncodedText.Encode("port");
    private static readonly JsonEncodedText Kind = JsonEncodedText.Encode("kind");
    private static readonly JsonEncodedText Namespace = JsonEncodedText.Encode("namespace");
    private static readonly JsonEncodedText Pod = JsonEncodedText.Encode("pod");
    private static readonly JsonEncodedText Uid = JsonEncodedText.Encode("uid");
    private static readonly JsonEncodedText Workload = JsonEncodedText.Encode("workload");
    private static readonly JsonEncodedText Labels = JsonEncodedText.Encode("labels");
    private static readonly JsonEncodedText Service = JsonEncodedText.Encode("service");
    private static readonly JsonEncodedText Initiator = JsonEncodedText.Encode("initiator");
    private static readonly JsonEncodedText VerdictName = JsonEncodedText.Encode("verdict");
    private static readonly JsonEncodedText VerdictNote = JsonEncodedText.Encode("verdict_note");
    private static readonly JsonEncodedText EnforcementName = JsonEncodedText.Encode("enforcement");
    private static readonly JsonEncodedText StagedName = JsonEncodedText.Encode("staged");
    private static readonly JsonEncodedText[] EnforcementNames = [.. EnforcementJudge.Names.Select(n => JsonEncodedText.Encode(n))];
    public static readonly JsonEncodedText Egress = JsonEncodedText.Encode("egress");
    public static readonly JsonEncodedText Ingress = JsonEncodedText.Encode("ingress");
    private static readonly JsonEncodedText Isolated = JsonEncodedText.Encode("isolated");
    private static readonly JsonEncodedText Allowed = JsonEncodedText.Encode("allowed");
    private static readonly JsonEncodedText Policies = JsonEncodedText.Encode("policies");
    private static readonly JsonEncodedText Packets = JsonEncodedText.Encode("packets");
    private static readonly JsonEncodedText Bytes = JsonEncodedText.Encode("bytes");
    private static readonly JsonEncodedText Sent = JsonEncodedText.Encode("sent");
    private static readonly JsonEncodedText Received = JsonEncodedText.Encode("received");
    private static readonly JsonEncodedText TcpFlagsName = JsonEncodedText.Encode("tcp_flags");
    private static readonly JsonEncodedText EndReason = JsonEncodedText.Encode("end_reason");
    private static readonly JsonEncodedText FirstSeen = JsonEncodedText.Encode("first_seen");
    private static readonly JsonEncodedText LastSeen = JsonEncodedText.Encode("last_seen");
    private static readonly JsonEncodedText Tunnel = JsonEncodedText.Encode("tunnel");
    private static readonly JsonEncodedText Vni = JsonEncodedText.Encode("vni");
    private static readonly JsonEncodedText Icmp = JsonEncodedText.Encode("icmp");
    private static readonly JsonEncodedText Type = JsonEncodedText.Encode("type");
    private static readonly JsonEncodedText Code = JsonEncodedText.Encode("code");
    private static readonly JsonEncodedText ClusterSynced = JsonEncodedText.Encode("cluster_synced");
    private static readonly JsonEncodedText TlsName = JsonEncodedText.Encode("tls");
    private static readonly JsonEncodedText TlsVersionName = JsonEncodedText.Encode("tls_version");
    private static readonly JsonEncodedText MeshName = JsonEncodedText.Encode("mesh");
    private static readonly JsonEncodedText PeerAuthenticationName = JsonEncodedText.Encode("peer_authentication");
    private static readonly JsonEncodedText Hbone = JsonEncodedText.Encode("hbone");
    private static readonly JsonEncodedText[] PeerAuthenticationModes = Encoded<PeerAuthenticationMode>(MeshFacts.ModeName);

    /// <summary>Istio's HBONE port: ambient's mutual TLS tunnel between ztunnels (and waypoints).</summary>
    public const int HbonePort = 15008;

    private static readonly JsonEncodedText[] FlagNames = [.. new[] { "FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR" }.Select(n => JsonEncodedText.Encode(n))];
    // Values every record repeats, encoded once from the names below and indexed by the enum's value.
    private static readonly JsonEncodedText[] EventNames = Encoded<FlowEventKind>(EventName);
    private static readonly JsonEncodedText[] InitiatorNames = Encoded<FlowOrientation>(InitiatorName);
    private static readonly JsonEncodedText[] EndReasonNames = Encoded<FlowEndReason>(EndReasonName);
    private static readonly JsonEncodedText Allow = JsonEncodedText.Encode("allow");
    private static readonly JsonEncodedText Deny = JsonEncodedText.Encode("deny");
    private static readonly JsonEncodedText[] ProtocolNames = [.. Enumerable.Range(0, 256).Select(p => JsonEncodedText.Encode(IpProtocol.Name((byte)p)))];
    // The order a person reads a handshake in: SYN, ACK, then data and the close.
    private static readonly int[] FlagOrder = [1, 4, 3, 0, 2, 5, 6, 7];

    public static string EventName(FlowEventKind kind) => kind switch
    {
        FlowEventKind.Start => "start",
        FlowEventKind.Update => "update",
        _ => "end",
    };

    public static string EndReasonName(FlowEndReason reason) => reason switch
    {
        FlowEndReason.Fin => "fin",
        FlowEndReason.Rst => "rst",
        FlowEndReason.Idle => "idle",
        FlowEndReason.Shutdown => "shutdown",
        FlowEndReason.Eof => "eof",
        FlowEndReason.Evicted => "evicted",
        _ => "unknown",
    };

    public static string InitiatorName(FlowOrientation orientation) => orientation switch
    {
        FlowOrientation.Observed => "observed",
        FlowOrientation.Inferred => "inferred",
        _ => "unknown",
    };

    private static JsonEncodedText[] Encoded<TEnum>(Func<TEnum, string> name) where TEnum : struct, Enum =>
        [.. Enum.GetValues<TEnum>().Select(value => JsonEncodedText.Encode(name(value)))];

    public static void Write(Utf8JsonWriter w, in FlowEvent e, in FlowJudgement j, FlowContext context)
    {
        ref readonly FlowEntry f = ref e.Flow;
        w.WriteStartObject();
        WriteTime(w, Time, e.TimeNs);
        w.WriteString(Event, EventNames[(int)e.Kind]);
        Span<byte> hex = stackalloc byte[16];
        f.Id.TryFormat(hex, out _, "x16", CultureInfo.InvariantCulture);
        w.WriteString(FlowId, hex);
        w.WriteString(Node, context.EncodedNode);
        w.WriteString(Interface, context.EncodedInterface(f.Interfaces[0]));
        if (f.InterfaceCount > 1)
        {
            w.WriteStartArray(Interfaces);
            for (int i = 0; i < f.InterfaceCount; i++) w.WriteStringValue(context.EncodedInterface(f.Interfaces[i]));
            w.WriteEndArray();
        }
        w.WriteString(Protocol, ProtocolNames[f.Protocol]);
        bool ports = IpProtocol.HasPorts(f.Protocol);
        WriteEndpoint(w, Src, f.Source, ports ? f.SourcePort : -1, j.Source);
        WriteEndpoint(w, Dst, f.Destination, ports ? f.DestinationPort : -1, j.Destination);
        w.WriteString(Initiator, InitiatorNames[(int)f.Orientation]);
        w.WriteString(VerdictName, j.Verdict.Allowed ? Allow : Deny);
        WriteSide(w, Egress, j.Verdict.Egress);
        WriteSide(w, Ingress, j.Verdict.Ingress);
        if (j.Verdict.Note is { } note) w.WriteString(VerdictNote, note);
        w.WriteString(EnforcementName, EnforcementNames[(int)EnforcementJudge.Judge(in e, in j, context)]);
        if (j.Staged is { } staged && staged.Allowed != j.Verdict.Allowed)
        {
            // What the staged change would decide, where it differs (tripline run --staged).
            w.WriteStartObject(StagedName);
            w.WriteString(VerdictName, staged.Allowed ? Allow : Deny);
            WriteSide(w, Egress, staged.Egress);
            WriteSide(w, Ingress, staged.Ingress);
            w.WriteEndObject();
        }
        if (!context.ClusterSynced) w.WriteBoolean(ClusterSynced, false);

        w.WriteStartObject(Packets);
        w.WriteNumber(Sent, f.PacketsSent);
        w.WriteNumber(Received, f.PacketsReceived);
        w.WriteEndObject();
        w.WriteStartObject(Bytes);
        w.WriteNumber(Sent, f.BytesSent);
        w.WriteNumber(Received, f.BytesReceived);
        w.WriteEndObject();
        if (f.Protocol == IpProtocol.Tcp)
        {
            w.WriteStartArray(TcpFlagsName);
            foreach (int bit in FlagOrder)
            {
                if (((int)f.TcpFlagsSeen & (1 << bit)) != 0) w.WriteStringValue(FlagNames[bit]);
            }
            w.WriteEndArray();
        }
        if (f.Tls is { } tls)
        {
            // Only the classification of the first payload bytes, never a byte of them (design.md section 10).
            w.WriteBoolean(TlsName, tls);
            if (tls && f.TlsVersion is { } version) w.WriteString(TlsVersionName, version);
        }
        if (j.Mesh.Applies)
        {
            w.WriteStartObject(MeshName);
            w.WriteBoolean(Src, j.Mesh.SourceMeshed);
            w.WriteBoolean(Dst, j.Mesh.DestinationMeshed);
            w.WriteString(PeerAuthenticationName, PeerAuthenticationModes[(int)j.Mesh.PeerAuthentication]);
            if (f.DestinationPort == HbonePort && f.Tls == true) w.WriteBoolean(Hbone, true);
            w.WriteEndObject();
        }
        if (e.Kind == FlowEventKind.End) w.WriteString(EndReason, EndReasonNames[(int)f.EndReason]);
        WriteTime(w, FirstSeen, f.FirstSeenNs);
        WriteTime(w, LastSeen, f.LastSeenNs);
        if (f.Protocol is IpProtocol.Icmp or IpProtocol.Icmpv6)
        {
            w.WriteStartObject(Icmp);
            w.WriteNumber(Type, f.IcmpType);
            w.WriteNumber(Code, f.IcmpCode);
            w.WriteEndObject();
        }
        if (!f.OuterSource.IsZero)
        {
            w.WriteStartObject(Tunnel);
            WriteIp(w, Src, f.OuterSource);
            WriteIp(w, Dst, f.OuterDestination);
            w.WriteNumber(Vni, f.TunnelId);
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    // What a record says about a pod, a Service, a node or a side of a verdict is the same in every record that
    // names it: rendered once per object (and dropped with it when a new snapshot replaces it), then copied. Labels,
    // names and policy lists otherwise cost most of a record's time in escaping checks and UTF-16 transcoding.
    private static readonly ConditionalWeakTable<object, byte[]> Fragments = new();
    private static readonly byte[] ExternalTail = RenderProperties(static w => w.WriteString(Kind, "external"));

    [ThreadStatic]
    private static byte[]? _scratch;

    private static void WriteEndpoint(Utf8JsonWriter w, JsonEncodedText name, IpAddress ip, int port, in ResolvedEndpoint endpoint)
    {
        // {"ip":"…","port":n, then the cached rest of the object ("kind" onwards), then }.
        byte[] tail = EndpointTail(endpoint);
        int length = 64 + 16 + tail.Length + 1;
        byte[] buffer = _scratch is { } scratch && scratch.Length >= length ? scratch : (_scratch = new byte[Math.Max(length, 4096)]);
        Span<byte> into = buffer;
        "{\"ip\":\""u8.CopyTo(into);
        int n = 7;
        Span<char> text = stackalloc char[64];
        if (!ip.TryFormat(text, out int chars))
        {
            string formatted = ip.ToString();
            formatted.CopyTo(text);
            chars = formatted.Length;
        }
        n += System.Text.Encoding.ASCII.GetBytes(text[..chars], into[n..]);
        into[n++] = (byte)'"';
        if (port >= 0)
        {
            ",\"port\":"u8.CopyTo(into[n..]);
            n += 8;
            port.TryFormat(into[n..], out int digits, default, CultureInfo.InvariantCulture);
            n += digits;
        }
        into[n++] = (byte)',';
        tail.CopyTo(into[n..]);
        n += tail.Length;
        into[n++] = (byte)'}';
        w.WritePropertyName(name);
        w.WriteRawValue(into[..n], skipInputValidation: true);
    }

    /// <summary>The endpoint's properties from "kind" on, as written inside its object, without braces.</summary>
    private static byte[] EndpointTail(in ResolvedEndpoint endpoint)
    {
        object? key = endpoint.Kind switch
        {
            EndpointKind.Pod => endpoint.Pod,
            EndpointKind.Service => endpoint.Service,
            EndpointKind.Node => endpoint.Node,
            _ => null,
        };
        if (key is null) return ExternalTail;
        if (Fragments.TryGetValue(key, out var cached)) return cached;
        var copy = endpoint;
        byte[] rendered = RenderProperties(w => WriteEndpointTail(w, copy));
        Fragments.AddOrUpdate(key, rendered);
        return rendered;
    }

    private static void WriteEndpointTail(Utf8JsonWriter w, ResolvedEndpoint endpoint)
    {
        w.WriteString(Kind, endpoint.KindName);
        switch (endpoint.Kind)
        {
            case EndpointKind.Pod:
                {
                    var pod = endpoint.Pod!;
                    w.WriteString(Namespace, pod.Namespace);
                    w.WriteString(Pod, pod.Name);
                    w.WriteString(Uid, pod.Uid);
                    if (pod.Workload is { } workload) w.WriteString(Workload, workload.ToString());
                    w.WriteStartObject(Labels);
                    foreach (var (key, value) in pod.Labels.Labels) w.WriteString(key, value);
                    w.WriteEndObject();
                    if (pod.NodeName is { } podNode) w.WriteString(Node, podNode);
                    break;
                }
            case EndpointKind.Service:
                {
                    var service = endpoint.Service!;
                    w.WriteString(Namespace, service.Namespace);
                    w.WriteString(Service, service.Key);
                    break;
                }
            case EndpointKind.Node:
                w.WriteString(Node, endpoint.Node!.Name);
                break;
        }
    }

    /// <summary>An object holding the properties <paramref name="write"/> writes, as JSON bytes.</summary>
    private static byte[] RenderObject(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            write(w);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The same properties without the braces, to be copied into an object written around them.</summary>
    private static byte[] RenderProperties(Action<Utf8JsonWriter> write) => RenderObject(write)[1..^1];

    /// <summary>One side of a verdict (shared with the aggregate records, which carry the same sides).</summary>
    public static void WriteSide(Utf8JsonWriter w, JsonEncodedText name, SideVerdict? side)
    {
        if (side is null)
        {
            w.WriteNull(name);
            return;
        }
        if (!Fragments.TryGetValue(side, out var rendered))
        {
            // Verdicts come from the engine's cache, so one side object serves many flows.
            rendered = RenderObject(sideWriter =>
            {
                sideWriter.WriteBoolean(Isolated, side.Isolated);
                sideWriter.WriteBoolean(Allowed, side.Allowed);
                sideWriter.WriteStartArray(Policies);
                foreach (string policy in side.Policies) sideWriter.WriteStringValue(policy);
                sideWriter.WriteEndArray();
            });
            Fragments.AddOrUpdate(side, rendered);
        }
        w.WritePropertyName(name);
        w.WriteRawValue(rendered, skipInputValidation: true);
    }

    private static void WriteIp(Utf8JsonWriter w, JsonEncodedText name, IpAddress ip)
    {
        Span<char> text = stackalloc char[64];
        if (ip.TryFormat(text, out int n)) w.WriteString(name, text[..n]);
        else w.WriteString(name, ip.ToString());
    }

    /// <summary>RFC 3339 UTC with microseconds, e.g. 2026-11-26T02:03:04.123456Z.</summary>
    public static void WriteTime(Utf8JsonWriter w, JsonEncodedText name, long unixNs)
    {
        Span<char> text = stackalloc char[32];
        int n = FormatTime(unixNs, text);
        // ASCII digits and separators: narrowed to UTF-8 here, so the writer only copies them.
        Span<byte> utf8 = stackalloc byte[32];
        for (int i = 0; i < n; i++) utf8[i] = (byte)text[i];
        w.WriteString(name, utf8[..n]);
    }

    public static int FormatTime(long unixNs, Span<char> destination)
    {
        // Written digit by digit: a custom DateTime format string is parsed on every call, and this runs per record.
        long ticks = DateTime.UnixEpoch.Ticks + unixNs / 100;
        if (ticks < DateTime.MinValue.Ticks || ticks > DateTime.MaxValue.Ticks) ticks = DateTime.UnixEpoch.Ticks;
        var time = new DateTime(ticks, DateTimeKind.Utc);
        var (date, _) = time;
        var (year, month, day) = date;
        long ofDay = ticks % TimeSpan.TicksPerDay;
        int seconds = (int)(ofDay / TimeSpan.TicksPerSecond);
        int micros = (int)(ofDay % TimeSpan.TicksPerSecond / 10);
        if (destination.Length < 27) return 0;
        Digits(destination, 0, year, 4);
        destination[4] = '-';
        Digits(destination, 5, month, 2);
        destination[7] = '-';
        Digits(destination, 8, day, 2);
        destination[10] = 'T';
        Digits(destination, 11, seconds / 3600, 2);
        destination[13] = ':';
        Digits(destination, 14, seconds / 60 % 60, 2);
        destination[16] = ':';
        Digits(destination, 17, seconds % 60, 2);
        destination[19] = '.';
        Digits(destination, 20, micros, 6);
        destination[26] = 'Z';
        return 27;

        static void Digits(Span<char> into, int at, int value, int width)
        {
            for (int i = at + width - 1; i >= at; i--)
            {
                into[i] = (char)('0' + value % 10);
                value /= 10;
            }
        }
    }

    public static string FormatTime(long unixNs)
    {
        Span<char> text = stackalloc char[32];
        return new string(text[..FormatTime(unixNs, text)]);
    }
}
