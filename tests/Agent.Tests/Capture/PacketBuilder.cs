using Tripline.Capture.Flows;
using Tripline.Capture.Parsing;

namespace Tripline.Tests.Capture;

/// <summary>Parsed packets as the flow table receives them, without frames: one line per packet in a test.</summary>
internal static class PacketBuilder
{
    public const long Second = 1_000_000_000;
    public const long T0 = 1_750_000_000 * Second;

    public static PacketHeaders Tcp(string source, ushort sourcePort, string destination, ushort destinationPort, TcpFlags flags, long timeNs, int length = 60, int iface = 0) =>
        Ports(source, sourcePort, destination, destinationPort, IpProtocol.Tcp, timeNs, length, iface).WithFlags(flags);

    public static PacketHeaders Udp(string source, ushort sourcePort, string destination, ushort destinationPort, long timeNs, int length = 80, int iface = 0) =>
        Ports(source, sourcePort, destination, destinationPort, IpProtocol.Udp, timeNs, length, iface);

    public static PacketHeaders Echo(string source, string destination, ushort id, bool reply, long timeNs, int length = 84)
    {
        var p = Ports(source, id, destination, id, IpProtocol.Icmp, timeNs, length, 0);
        p.IcmpType = reply ? (byte)0 : (byte)8;
        return p;
    }

    private static PacketHeaders Ports(string source, ushort sourcePort, string destination, ushort destinationPort, byte protocol, long timeNs, int length, int iface) => new()
    {
        TimestampNs = timeNs,
        Source = IpAddress.Parse(source),
        Destination = IpAddress.Parse(destination),
        SourcePort = sourcePort,
        DestinationPort = destinationPort,
        Protocol = protocol,
        IpVersion = source.Contains(':', StringComparison.Ordinal) ? (byte)6 : (byte)4,
        IpLength = length,
        WireLength = length + 14,
        CapturedLength = length + 14,
        InterfaceIndex = iface,
        Flags = PacketFlags.HasPorts,
    };

    public static PacketHeaders WithFlags(this PacketHeaders p, TcpFlags flags)
    {
        p.TcpFlags = flags;
        return p;
    }
}

/// <summary>Keeps every flow event the table emits, copied, in order.</summary>
internal sealed class RecordingSink : IFlowEventSink
{
    public List<(FlowEventKind Kind, long TimeNs, FlowEntry Flow)> Events { get; } = [];

    public void OnFlowEvent(FlowEventKind kind, long timeNs, in FlowEntry flow) => Events.Add((kind, timeNs, flow));

    public IEnumerable<FlowEntry> Ends => Events.Where(e => e.Kind == FlowEventKind.End).Select(e => e.Flow);

    public int Count(FlowEventKind kind) => Events.Count(e => e.Kind == kind);
}

/// <summary>A hint that knows one server endpoint, as the cluster would declare a container port.</summary>
internal sealed class FixedServerHint(string server, ushort port) : IServerPortHint
{
    private readonly IpAddress _server = IpAddress.Parse(server);

    public ServerSide Classify(IpAddress first, ushort firstPort, IpAddress second, ushort secondPort, byte protocol)
    {
        if (first == _server && firstPort == port) return ServerSide.First;
        if (second == _server && secondPort == port) return ServerSide.Second;
        return ServerSide.Unknown;
    }
}
