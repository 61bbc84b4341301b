using System.Net;
using PacketDotNet;
using Tripline.Capture.Flows;
using Tripline.Capture.Parsing;
using static Tripline.Tests.Capture.PacketBuilder;
using TcpFlags = Tripline.Capture.Parsing.TcpFlags;

namespace Tripline.Tests.Capture;

/// <summary>
/// What the packets say of a flow's fate (issue 15): answered, refused by an ICMP unreachable, tried again without an
/// answer, seen reaching the peer's interface. Frames are built with PacketDotNet and read by the agent's parser.
/// </summary>
public sealed class FlowEvidenceTests
{
    private const string Client = "10.0.0.1";
    private const string Server = "10.0.0.2";

    private static (FlowTable Table, RecordingSink Sink) NewTable()
    {
        var sink = new RecordingSink();
        return (new FlowTable(new FlowTableOptions(), sink), sink);
    }

    private static void Add(FlowTable table, PacketHeaders packet) => table.Add(ref packet);

    /// <summary>Parses an IPv4/IPv6 packet as the capture would (raw IP link type).</summary>
    private static PacketHeaders Parse(Packet ip, long timeNs, int iface = 0)
    {
        var headers = new PacketHeaders { TimestampNs = timeNs, InterfaceIndex = iface };
        byte[] bytes = ip.Bytes;
        Assert.Equal(ParseStatus.Ok, PacketParser.TryParse(bytes, LinkType.Raw, ref headers));
        return headers;
    }

    private static IPv4Packet UdpDatagram(string from, ushort fromPort, string to, ushort toPort)
    {
        var udp = new UdpPacket(fromPort, toPort) { PayloadData = new byte[20] };
        var ip = new IPv4Packet(IPAddress.Parse(from), IPAddress.Parse(to)) { PayloadPacket = udp, TimeToLive = 64 };
        udp.UpdateCalculatedValues();
        ip.UpdateCalculatedValues();
        return ip;
    }

    /// <summary>What a host (or a REJECT rule) sends back: ICMP type 3 quoting the IP header and 8 bytes of the packet.</summary>
    private static IPv4Packet Unreachable(IPv4Packet quoted, string from, byte code = 3, byte type = 3)
    {
        byte[] quote = quoted.Bytes[..(quoted.HeaderLength * 4 + 8)];
        byte[] icmp = new byte[8 + quote.Length];
        icmp[0] = type;
        icmp[1] = code;
        quote.CopyTo(icmp, 8);
        var ip = new IPv4Packet(IPAddress.Parse(from), quoted.SourceAddress) { Protocol = PacketDotNet.ProtocolType.Icmp, PayloadData = icmp, TimeToLive = 64 };
        ip.UpdateCalculatedValues();
        return ip;
    }

    [Fact]
    public void IcmpUnreachable_QuotingAUdpDatagram_IsEvidenceOnThatFlow_NotAFlowOfItsOwn()
    {
        var (table, sink) = NewTable();
        var datagram = UdpDatagram(Client, 40000, Server, 53);
        Add(table, Parse(datagram, T0));
        var refusal = Parse(Unreachable(datagram, Server), T0 + Second / 1000);
        Assert.True(refusal.Has(PacketFlags.IcmpQuote));
        Add(table, refusal);
        table.EndAll(FlowEndReason.Eof);

        var flow = Assert.Single(sink.Ends);
        Assert.Equal(IpProtocol.Udp, flow.Protocol);
        Assert.Equal(FlowEvidence.Unreachable, flow.Evidence & FlowEvidence.Unreachable);
        Assert.Equal(0UL, flow.PacketsReceived);
        Assert.True(flow.EvidenceSettled);
        Assert.Equal(1, table.Stats.IcmpErrors);
    }

    [Fact]
    public void IcmpUnreachable_QuotingAnEchoRequest_IsEvidenceOnThePing()
    {
        var (table, sink) = NewTable();
        var icmp = new byte[16];
        icmp[0] = 8;
        icmp[4] = 0x12;
        icmp[5] = 0x34;
        var ping = new IPv4Packet(IPAddress.Parse(Client), IPAddress.Parse(Server)) { Protocol = PacketDotNet.ProtocolType.Icmp, PayloadData = icmp, TimeToLive = 64 };
        ping.UpdateCalculatedValues();
        Add(table, Parse(ping, T0));
        Add(table, Parse(Unreachable(ping, "10.0.0.254", code: 13), T0 + 1000));
        table.EndAll(FlowEndReason.Eof);

        var flow = Assert.Single(sink.Ends);
        Assert.Equal(0x1234, flow.SourcePort);
        Assert.True(flow.Evidence.HasFlag(FlowEvidence.Unreachable));
    }

    [Fact]
    public void IcmpError_ForNoKnownFlow_IsStillAnIcmpFlow()
    {
        var (table, sink) = NewTable();
        Add(table, Parse(Unreachable(UdpDatagram(Client, 40000, Server, 53), Server), T0));
        table.EndAll(FlowEndReason.Eof);

        var flow = Assert.Single(sink.Ends);
        Assert.Equal(IpProtocol.Icmp, flow.Protocol);
        Assert.Equal(IpAddress.Parse(Server), flow.Source);
        Assert.Equal(0, table.Stats.IcmpErrors);
    }

    [Fact]
    public void TimeExceeded_IsTheFlowsButNoRefusal()
    {
        var (table, sink) = NewTable();
        var datagram = UdpDatagram(Client, 40000, Server, 53);
        Add(table, Parse(datagram, T0));
        Add(table, Parse(Unreachable(datagram, "10.0.0.254", code: 0, type: 11), T0 + 1000));
        table.EndAll(FlowEndReason.Eof);

        var flow = Assert.Single(sink.Ends);
        Assert.False(flow.Evidence.HasFlag(FlowEvidence.Unreachable));
        Assert.False(flow.EvidenceSettled);
    }

    [Fact]
    public void SynRetransmissions_WithoutAnswer_AreCounted_AndSettleAtTheSecond()
    {
        var (table, sink) = NewTable();
        Add(table, Tcp(Client, 40000, Server, 8080, TcpFlags.Syn, T0));
        Add(table, Tcp(Client, 40000, Server, 8080, TcpFlags.Syn, T0 + Second));
        table.EndAll(FlowEndReason.Eof);
        var once = Assert.Single(sink.Ends);
        Assert.Equal(1, once.SynRetransmits);
        Assert.False(once.EvidenceSettled);

        (table, sink) = NewTable();
        foreach (long t in new[] { 0L, 1, 3 }) Add(table, Tcp(Client, 40000, Server, 8080, TcpFlags.Syn, T0 + t * Second));
        table.EndAll(FlowEndReason.Eof);
        var twice = Assert.Single(sink.Ends);
        Assert.Equal(2, twice.SynRetransmits);
        Assert.True(twice.EvidenceSettled);
        Assert.Equal(0UL, twice.PacketsReceived);
    }

    [Fact]
    public void SynAnswered_IsSettled_AndLaterSynsAreNotRetransmissions()
    {
        var (table, sink) = NewTable();
        Add(table, Tcp(Client, 40000, Server, 8080, TcpFlags.Syn, T0));
        Add(table, Tcp(Server, 8080, Client, 40000, TcpFlags.Syn | TcpFlags.Ack, T0 + 1000));
        Add(table, Tcp(Client, 40000, Server, 8080, TcpFlags.Ack, T0 + 2000));
        table.EndAll(FlowEndReason.Eof);

        var flow = Assert.Single(sink.Ends);
        Assert.Equal(0, flow.SynRetransmits);
        Assert.True(flow.EvidenceSettled);
    }

    [Fact]
    public void InitiatorsPacketOnASecondInterface_ReachedThePeer_ButARepliesCopyDoesNot()
    {
        var (table, sink) = NewTable();
        Add(table, Udp(Client, 40000, Server, 53, T0, iface: 1));
        Add(table, Udp(Server, 53, Client, 40000, T0 + 100, iface: 2));
        table.EndAll(FlowEndReason.Eof);
        Assert.False(Assert.Single(sink.Ends).Evidence.HasFlag(FlowEvidence.ReachedPeer));

        (table, sink) = NewTable();
        Add(table, Udp(Client, 40000, Server, 53, T0, iface: 1));
        Add(table, Udp(Client, 40000, Server, 53, T0 + 100, iface: 2));
        table.EndAll(FlowEndReason.Eof);
        var flow = Assert.Single(sink.Ends);
        Assert.True(flow.Evidence.HasFlag(FlowEvidence.ReachedPeer));
        Assert.Equal(1UL, flow.PacketsSent);
    }

    [Fact]
    public void Reported_IsClearOnTheFirstRecordWithSettledEvidence_AndSetOnTheRest()
    {
        var (table, sink) = NewTable();
        Add(table, Tcp(Client, 40000, Server, 8080, TcpFlags.Syn | TcpFlags.Ack, T0));
        // The first record (the start) already has an answer: it is the one that reports it.
        Add(table, Tcp(Client, 40000, Server, 8080, TcpFlags.Ack, T0 + 1000));
        table.Advance(T0 + 61 * Second);
        table.EndAll(FlowEndReason.Eof);

        var records = sink.Events.Select(e => (e.Kind, Reported: e.Flow.Evidence.HasFlag(FlowEvidence.Reported), e.Flow.EvidenceSettled)).ToList();
        Assert.Equal((FlowEventKind.Start, false, true), records[0]);
        Assert.All(records.Skip(1), r => Assert.True(r.Reported));
        Assert.Contains(records, r => r.Kind == FlowEventKind.Update);
    }
}
