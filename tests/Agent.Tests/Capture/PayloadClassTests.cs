using System.Buffers.Binary;
using System.Text;
using Tripline.Capture.Flows;
using Tripline.Capture.Parsing;
using static Tripline.Tests.Capture.PacketBuilder;

namespace Tripline.Tests.Capture;

/// <summary>
/// The mesh audit's packet fact (design.md section 10): what the first payload bytes of each direction of a TCP
/// connection are — a TLS record with its version, plaintext, or not known — read in place and never kept.
/// </summary>
public sealed class PayloadClassTests
{
    /// <summary>A TLS 1.2 ClientHello's first bytes: record 3.1 (as clients write it), handshake type 1, hello version 3.3.</summary>
    internal static readonly byte[] ClientHello = [0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03, 0x5b, 0x90, 0x11, 0x2e, 0x7a, 0x01, 0x02];
    internal static readonly byte[] ServerHello = [0x16, 0x03, 0x03, 0x00, 0x5a, 0x02, 0x00, 0x00, 0x56, 0x03, 0x03, 0x9e, 0x40, 0x2c, 0x71];
    internal static readonly byte[] Http = Encoding.ASCII.GetBytes("GET /healthz HTTP/1.1\r\nHost: cart\r\n\r\n");

    [Theory]
    [InlineData(new byte[] { 0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03 }, "1.2")]   // ClientHello: the hello says 1.2
    [InlineData(new byte[] { 0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x01 }, "1.0")]   // a TLS 1.0 client
    [InlineData(new byte[] { 0x16, 0x03, 0x03, 0x00, 0x5a, 0x02, 0x00, 0x00, 0x56, 0x03, 0x03 }, "1.2")]   // ServerHello
    [InlineData(new byte[] { 0x16, 0x03, 0x01, 0x00, 0xc8 }, "1.0")]                                       // the hello cut off: the record's version
    [InlineData(new byte[] { 0x17, 0x03, 0x03, 0x40, 0x00 }, "1.2")]                                       // application data
    [InlineData(new byte[] { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28 }, "1.2")]                           // an alert
    [InlineData(new byte[] { 0x14, 0x03, 0x00, 0x00, 0x01, 0x01 }, "SSL3.0")]                              // change_cipher_spec, SSL 3.0
    public void Classify_TlsRecords_AreTlsWithTheirVersion(byte[] payload, string version)
    {
        var c = PayloadClass.Classify(payload, payload.Length + 100);
        Assert.Equal(PayloadKind.Tls, c.Kind);
        Assert.Equal(version, c.TlsVersion);
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\n")]
    [InlineData("PRI * HTTP/2.0\r\n")]
    [InlineData("*2\r\n$3\r\nGET\r\n")]
    [InlineData("\u0016\u0002\u0001\u0000")]     // a handshake byte, but major version 2
    [InlineData("\u0016\u0003\u0005\u0000\u0001")] // minor version 5: no such TLS
    [InlineData("\u0018\u0003\u0003\u0000\u0001")] // heartbeat (24) is never a first record
    [InlineData("X")]                             // one byte that no TLS record begins with
    public void Classify_AnythingElse_IsPlain(string text)
    {
        byte[] payload = Encoding.Latin1.GetBytes(text);
        Assert.Equal(PayloadKind.Plain, PayloadClass.Classify(payload, payload.Length).Kind);
    }

    [Theory]
    [InlineData(0, 100)]   // the snaplen ended with the headers
    [InlineData(1, 100)]   // one byte of a possible record header
    [InlineData(2, 100)]   // two
    [InlineData(2, 2)]     // a whole two-byte payload that begins like a record: too short to say
    public void Classify_TooLittleCaptured_IsUnknownNeverPlain(int captured, int declared)
    {
        Assert.Equal(PayloadKind.Unknown, PayloadClass.Classify(ClientHello.AsSpan(0, captured), declared).Kind);
    }

    [Fact]
    public void Classify_NoPayload_IsNone()
    {
        Assert.Equal(PayloadKind.None, PayloadClass.Classify(default, 0).Kind);
        // Ethernet padding after a bare ACK is not payload.
        Assert.Equal(PayloadKind.None, PayloadClass.Classify(new byte[6], 0).Kind);
    }

    [Theory]
    [InlineData(false, 0, 128)]
    [InlineData(true, 0, 128)]
    [InlineData(false, 40, 128)]
    [InlineData(true, 40, 160)]
    public void Parse_TcpSegments_ClassifyTheirPayloadOnBothPaths(bool v6, int optionBytes, int snaplen)
    {
        foreach (var (payload, kind) in new[] { (ClientHello, PayloadKind.Tls), (Http, PayloadKind.Plain), ([], PayloadKind.None) })
        {
            byte[] frame = Frame(v6, optionBytes, payload, snaplen);
            var fast = default(PacketHeaders);
            Assert.Equal(ParseStatus.Ok, PacketParser.TryParse(frame, LinkType.Ethernet, ref fast));
            var general = default(PacketHeaders);
            Assert.Equal(ParseStatus.Ok, PacketParser.TryParseGeneral(frame, LinkType.Ethernet, ref general));
            Assert.Equal(kind, fast.Payload.Kind);
            Assert.Equal(fast.Payload, general.Payload);
        }
    }

    [Theory]
    [InlineData(false, 40, 80)]  // 14 + 20 + 60 header bytes: the payload starts past an 80-byte snaplen
    [InlineData(true, 40, 100)]  // 14 + 40 + 60
    [InlineData(false, 0, 55)]   // one byte of payload captured
    [InlineData(true, 20, 96)]   // two bytes
    public void Parse_PayloadPastTheSnaplen_IsUnknownNeverPlain(bool v6, int optionBytes, int snaplen)
    {
        byte[] frame = Frame(v6, optionBytes, ClientHello, snaplen);
        var h = default(PacketHeaders);
        PacketParser.TryParse(frame, LinkType.Ethernet, ref h);
        Assert.True(h.Has(PacketFlags.HasPorts));
        Assert.Equal(PayloadKind.Unknown, h.Payload.Kind);
    }

    [Fact]
    public void FlowTable_BothFirstPayloadsTls_FlowIsTlsWithTheServersVersion()
    {
        var flow = Connection(ClientHello, ServerHello);
        Assert.True(flow.Tls);
        Assert.Equal("1.2", flow.TlsVersion);
    }

    [Fact]
    public void FlowTable_PlaintextInEitherDirection_FlowIsNotTls()
    {
        Assert.False(Connection(Http, null).Tls);
        // A client that sent TLS to a server that answered in plaintext: plaintext went over the wire.
        Assert.False(Connection(ClientHello, Http).Tls);
        Assert.False(Connection(Http, ServerHello).Tls);
    }

    [Fact]
    public void FlowTable_OnlyTheFirstPayloadOfADirectionCounts()
    {
        // TLS first, then bytes that look like anything: a record's body may.
        var flow = Connection(ClientHello, ServerHello, then: Http);
        Assert.True(flow.Tls);
    }

    [Fact]
    public void FlowTable_NoPayloadOrStartNotSeen_TlsIsNotKnown()
    {
        Assert.Null(Connection(null, null).Tls);
        // Caught midway, a segment may begin anywhere inside a TLS record: neither TLS nor plaintext is a fact.
        var recording = new RecordingSink();
        var table = new FlowTable(new FlowTableOptions(), recording);
        var p = Tcp("10.0.0.1", 40000, "10.0.0.2", 8080, TcpFlags.Psh | TcpFlags.Ack, T0);
        p.Payload = PayloadClass.Classify(Http, Http.Length);
        table.Add(ref p);
        var q = Tcp("10.0.0.2", 8080, "10.0.0.1", 40000, TcpFlags.Psh | TcpFlags.Ack, T0 + 1000);
        q.Payload = PayloadClass.Classify(Http, Http.Length);
        table.Add(ref q);
        table.EndAll(FlowEndReason.Eof);
        var flow = Assert.Single(recording.Ends);
        Assert.Null(flow.Tls);
        Assert.Equal(PayloadKind.Unknown, flow.SourcePayload.Kind);
    }

    [Fact]
    public void FlowTable_FirstPayloadCutBySnaplen_TlsIsNotKnownEvenWhenALaterSegmentLooksPlain()
    {
        var flow = Connection(null, null, firstClient: PayloadClass.Unknown, then: Http, thenBothWays: false);
        Assert.Null(flow.Tls);
    }

    /// <summary>A whole connection through a flow table: handshake, the first payloads, optionally more, and the close.</summary>
    private static FlowEntry Connection(byte[]? client, byte[]? server, byte[]? then = null, PayloadClass? firstClient = null, bool thenBothWays = true)
    {
        var sink = new RecordingSink();
        var table = new FlowTable(new FlowTableOptions(), sink);
        long t = T0;
        void Send(bool up, TcpFlags flags, PayloadClass payload)
        {
            var p = up ? Tcp("10.0.0.1", 40000, "10.0.0.2", 8443, flags, t += 1000) : Tcp("10.0.0.2", 8443, "10.0.0.1", 40000, flags, t += 1000);
            p.Payload = payload;
            table.Add(ref p);
        }
        Send(true, TcpFlags.Syn, default);
        Send(false, TcpFlags.Syn | TcpFlags.Ack, default);
        Send(true, TcpFlags.Ack, default);
        if (firstClient is { } first) Send(true, TcpFlags.Psh | TcpFlags.Ack, first);
        if (client is not null) Send(true, TcpFlags.Psh | TcpFlags.Ack, PayloadClass.Classify(client, client.Length));
        if (server is not null) Send(false, TcpFlags.Psh | TcpFlags.Ack, PayloadClass.Classify(server, server.Length));
        if (then is not null)
        {
            Send(true, TcpFlags.Psh | TcpFlags.Ack, PayloadClass.Classify(then, then.Length));
            if (thenBothWays) Send(false, TcpFlags.Psh | TcpFlags.Ack, PayloadClass.Classify(then, then.Length));
        }
        Send(true, TcpFlags.Fin | TcpFlags.Ack, default);
        Send(false, TcpFlags.Fin | TcpFlags.Ack, default);
        table.EndAll(FlowEndReason.Eof);
        return Assert.Single(sink.Ends);
    }

    /// <summary>An Ethernet frame of a TCP segment with <paramref name="optionBytes"/> of options, cut at <paramref name="snaplen"/>.</summary>
    internal static byte[] Frame(bool v6, int optionBytes, ReadOnlySpan<byte> payload, int snaplen)
    {
        int ip = v6 ? 40 : 20;
        int tcp = 20 + optionBytes;
        byte[] frame = new byte[14 + ip + tcp + payload.Length];
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), v6 ? (ushort)0x86DD : (ushort)0x0800);
        var packet = frame.AsSpan(14);
        if (v6)
        {
            packet[0] = 0x60;
            BinaryPrimitives.WriteUInt16BigEndian(packet[4..], (ushort)(tcp + payload.Length));
            packet[6] = 6;
            packet[7] = 64;
            packet[8] = 0xfd; packet[23] = 1;
            packet[24] = 0xfd; packet[39] = 2;
        }
        else
        {
            packet[0] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(packet[2..], (ushort)(ip + tcp + payload.Length));
            packet[8] = 64;
            packet[9] = 6;
            packet[12] = 10; packet[15] = 1;
            packet[16] = 10; packet[19] = 2;
        }
        var segment = packet[ip..];
        BinaryPrimitives.WriteUInt16BigEndian(segment, 40000);
        BinaryPrimitives.WriteUInt16BigEndian(segment[2..], 443);
        segment[12] = (byte)((tcp / 4) << 4);
        segment[13] = (byte)(TcpFlags.Psh | TcpFlags.Ack);
        // Options: NOPs, as padding between real ones would be.
        segment[20..tcp].Fill(1);
        payload.CopyTo(segment[tcp..]);
        return frame.AsSpan(0, Math.Min(frame.Length, snaplen)).ToArray();
    }
}
