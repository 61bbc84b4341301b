using CsCheck;
using Tripline.Capture.Flows;
using Tripline.Capture.Parsing;
using static Tripline.Tests.Capture.PacketBuilder;

namespace Tripline.Tests.Capture;

public sealed class FlowTableTests
{
    private const string Client = "10.0.0.1";
    private const string Server = "10.0.0.2";
    private const TcpFlags Syn = TcpFlags.Syn;
    private const TcpFlags SynAck = TcpFlags.Syn | TcpFlags.Ack;
    private const TcpFlags Ack = TcpFlags.Ack;
    private const TcpFlags PshAck = TcpFlags.Psh | TcpFlags.Ack;
    private const TcpFlags FinAck = TcpFlags.Fin | TcpFlags.Ack;
    private const TcpFlags RstAck = TcpFlags.Rst | TcpFlags.Ack;

    private static (FlowTable Table, RecordingSink Sink) NewTable(FlowTableOptions? options = null, IServerPortHint? hint = null)
    {
        var sink = new RecordingSink();
        return (new FlowTable(options ?? new FlowTableOptions(), sink, hint), sink);
    }

    private static void Add(FlowTable table, PacketHeaders packet) => table.Add(ref packet);

    private static PacketHeaders Up(TcpFlags flags, long t, int length = 60) => Tcp(Client, 40000, Server, 8080, flags, t, length);
    private static PacketHeaders Down(TcpFlags flags, long t, int length = 60) => Tcp(Server, 8080, Client, 40000, flags, t, length);

    [Fact]
    public void Add_SynFirst_OrientsFromTheSynSender()
    {
        var (table, sink) = NewTable();
        Add(table, Up(Syn, T0));
        table.EndAll(FlowEndReason.Eof);

        var flow = Assert.Single(sink.Ends);
        Assert.Equal(IpAddress.Parse(Client), flow.Source);
        Assert.Equal(8080, flow.DestinationPort);
        Assert.Equal(FlowOrientation.Observed, flow.Orientation);
    }

    [Fact]
    public void Add_SynAckFirst_OrientsFromTheSynAckReceiver()
    {
        var (table, sink) = NewTable();
        Add(table, Down(SynAck, T0));
        Add(table, Up(Ack, T0 + 1000));
        table.EndAll(FlowEndReason.Eof);

        var flow = Assert.Single(sink.Ends);
        Assert.Equal(IpAddress.Parse(Client), flow.Source);
        Assert.Equal(FlowOrientation.Observed, flow.Orientation);
        Assert.Equal(1UL, flow.PacketsSent);
        Assert.Equal(1UL, flow.PacketsReceived);
    }

    [Fact]
    public void Add_MidStreamFromServerWithHint_OrientsByTheDeclaredPort()
    {
        var (table, sink) = NewTable(hint: new FixedServerHint(Server, 8080));
        Add(table, Down(PshAck, T0, 1500));
        table.EndAll(FlowEndReason.Eof);

        var flow = Assert.Single(sink.Ends);
        Assert.Equal(IpAddress.Parse(Client), flow.Source);
        Assert.Equal(FlowOrientation.Inferred, flow.Orientation);
        Assert.Equal(1UL, flow.PacketsReceived);
        Assert.Equal(1500UL, flow.BytesReceived);
    }

    [Fact]
    public void Add_MidStreamWithoutHint_KeepsDirectionAndSaysUnknown()
    {
        var (table, sink) = NewTable();
        Add(table, Up(PshAck, T0));
        table.EndAll(FlowEndReason.Eof);

        var flow = Assert.Single(sink.Ends);
        Assert.Equal(IpAddress.Parse(Client), flow.Source);
        Assert.Equal(FlowOrientation.Unknown, flow.Orientation);
    }

    [Fact]
    public void Add_MidStreamFromWellKnownPortWithoutHint_GuessesTheWellKnownSideServes()
    {
        var (table, sink) = NewTable();
        Add(table, Tcp(Server, 443, Client, 51000, Ack, T0));
        table.EndAll(FlowEndReason.Eof);

        var flow = Assert.Single(sink.Ends);
        Assert.Equal(IpAddress.Parse(Client), flow.Source);
        Assert.Equal(443, flow.DestinationPort);
        Assert.Equal(FlowOrientation.Unknown, flow.Orientation);
    }

    [Fact]
    public void Add_UdpFirstPacket_OrientsFromItsSender()
    {
        var (table, sink) = NewTable();
        Add(table, Udp(Client, 53000, Server, 53, T0));
        Add(table, Udp(Server, 53, Client, 53000, T0 + 500_000, 120));
        table.EndAll(FlowEndReason.Eof);

        var flow = Assert.Single(sink.Ends);
        Assert.Equal(IpAddress.Parse(Client), flow.Source);
        Assert.Equal(FlowOrientation.Observed, flow.Orientation);
        Assert.Equal(80UL, flow.BytesSent);
        Assert.Equal(120UL, flow.BytesReceived);
    }

    [Fact]
    public void Add_IcmpEchoReplyFirst_OrientsFromTheRequester()
    {
        var (table, sink) = NewTable();
        Add(table, Echo(Server, Client, 77, reply: true, T0));
        Add(table, Echo(Client, Server, 77, reply: false, T0 + Second));
        table.EndAll(FlowEndReason.Eof);

        var flow = Assert.Single(sink.Ends);
        Assert.Equal(IpAddress.Parse(Client), flow.Source);
        Assert.Equal(1UL, flow.PacketsSent);
        Assert.Equal(1UL, flow.PacketsReceived);
    }

    [Fact]
    public void Add_HandshakeDataAndFinClose_CountsPerDirectionAndKeepsTheLastAck()
    {
        var (table, sink) = NewTable();
        long t = T0;
        Add(table, Up(Syn, t += 1000, 60));
        Add(table, Down(SynAck, t += 1000, 60));
        Add(table, Up(Ack, t += 1000, 52));
        Add(table, Up(PshAck, t += 1000, 500));
        Add(table, Down(PshAck, t += 1000, 1500));
        Add(table, Down(PshAck, t += 1000, 900));
        Add(table, Up(FinAck, t += 1000, 52));
        Add(table, Down(FinAck, t += 1000, 52));
        Add(table, Up(Ack, t += 1000, 52)); // the last ACK after both FINs belongs to the flow
        table.Advance(t + 30 * Second);
        table.EndAll(FlowEndReason.Eof);

        Assert.Equal(1, sink.Count(FlowEventKind.Start));
        var flow = Assert.Single(sink.Ends);
        Assert.Equal(FlowEndReason.Fin, flow.EndReason);
        Assert.Equal(5UL, flow.PacketsSent);
        Assert.Equal(4UL, flow.PacketsReceived);
        Assert.Equal(60UL + 52 + 500 + 52 + 52, flow.BytesSent);
        Assert.Equal(60UL + 1500 + 900 + 52, flow.BytesReceived);
        Assert.Equal(SynAck | TcpFlags.Psh | TcpFlags.Fin, flow.TcpFlagsSeen);
        Assert.Equal(t, flow.LastSeenNs);
    }

    [Fact]
    public void Add_Rst_EndsTheFlowWithRstAfterTheLinger()
    {
        var (table, sink) = NewTable();
        Add(table, Up(Syn, T0));
        Add(table, Down(RstAck, T0 + 1000));
        Assert.Empty(sink.Ends);
        table.Advance(T0 + 10 * Second);

        var flow = Assert.Single(sink.Ends);
        Assert.Equal(FlowEndReason.Rst, flow.EndReason);
        Assert.Equal(0, table.Count);
    }

    [Theory]
    [InlineData(IpProtocol.Tcp, 300)]
    [InlineData(IpProtocol.Udp, 60)]
    [InlineData(IpProtocol.Icmp, 30)]
    public void Advance_PastTheIdleTimeout_EndsTheFlowAsIdleAtLastSeenPlusTimeout(byte protocol, int timeoutSeconds)
    {
        var (table, sink) = NewTable();
        PacketHeaders packet = protocol switch
        {
            IpProtocol.Tcp => Up(Ack, T0),
            IpProtocol.Udp => Udp(Client, 5000, Server, 6000, T0),
            _ => Echo(Client, Server, 9, reply: false, T0),
        };
        Add(table, packet);
        table.Advance(T0 + (timeoutSeconds - 1) * Second);
        Assert.Empty(sink.Ends);

        table.Advance(T0 + (timeoutSeconds + 1) * Second);

        var end = Assert.Single(sink.Events, e => e.Kind == FlowEventKind.End);
        Assert.Equal(FlowEndReason.Idle, end.Flow.EndReason);
        Assert.Equal(T0 + timeoutSeconds * Second, end.TimeNs);
    }

    [Fact]
    public void Add_ActiveFlowPastTheUpdateInterval_WritesUpdateRecords()
    {
        var (table, sink) = NewTable(new FlowTableOptions { UpdateInterval = TimeSpan.FromSeconds(60) });
        Add(table, Up(Syn, T0));
        for (int s = 10; s <= 150; s += 10) Add(table, Up(PshAck, T0 + s * Second));
        table.EndAll(FlowEndReason.Eof);

        var updates = sink.Events.Where(e => e.Kind == FlowEventKind.Update).ToList();
        Assert.Equal(2, updates.Count);
        Assert.All(updates, u => Assert.Equal(sink.Events[0].Flow.Id, u.Flow.Id));
        Assert.True(updates[1].TimeNs - updates[0].TimeNs >= 60 * Second);
        Assert.Equal(1, sink.Count(FlowEventKind.Start));
    }

    [Fact]
    public void Add_NewSynOnAClosedFiveTuple_EndsTheOldFlowAndStartsANewOne()
    {
        var (table, sink) = NewTable();
        Add(table, Up(Syn, T0));
        Add(table, Down(SynAck, T0 + 1));
        Add(table, Up(FinAck, T0 + 2));
        Add(table, Down(FinAck, T0 + 3));
        Add(table, Up(Ack, T0 + 4));
        Add(table, Up(Syn, T0 + 1000)); // the port is reused while the old connection still lingers
        Add(table, Down(SynAck, T0 + 1001));
        table.EndAll(FlowEndReason.Eof);

        Assert.Equal(2, sink.Count(FlowEventKind.Start));
        var ends = sink.Ends.ToList();
        Assert.Equal(2, ends.Count);
        Assert.Equal(FlowEndReason.Fin, ends[0].EndReason);
        Assert.Equal(5UL, ends[0].PacketsSent + ends[0].PacketsReceived);
        Assert.Equal(2UL, ends[1].PacketsSent + ends[1].PacketsReceived);
        Assert.NotEqual(ends[0].Id, ends[1].Id);
    }

    [Fact]
    public void Add_SamePacketsOnASecondInterface_AreNotCountedTwice()
    {
        var (table, sink) = NewTable();
        for (int i = 0; i < 10; i++)
        {
            Add(table, Tcp(Client, 40000, Server, 8080, i == 0 ? Syn : Ack, T0 + i * 1000, 100, iface: 3));
            Add(table, Tcp(Client, 40000, Server, 8080, i == 0 ? Syn : Ack, T0 + i * 1000 + 10, 100, iface: 7));
        }
        table.EndAll(FlowEndReason.Eof);

        var flow = Assert.Single(sink.Ends);
        Assert.Equal(10UL, flow.PacketsSent);
        Assert.Equal(1000UL, flow.BytesSent);
        Assert.Equal(10, table.Stats.DuplicatePackets);
        Assert.Equal(2, flow.InterfaceCount);
        Assert.Equal(3, flow.InterfaceAt(0));
        Assert.Equal(7, flow.InterfaceAt(1));
    }

    [Fact]
    public void Add_MoreFlowsThanCapacity_EvictsAndCountsEveryEviction()
    {
        var options = new FlowTableOptions { MaxFlows = 16 };
        var (table, sink) = NewTable(options);
        for (int i = 0; i < 100; i++)
        {
            Add(table, Tcp(Client, (ushort)(10000 + i), Server, 80, Syn, T0 + i * 1000));
            Assert.True(table.Count <= 16);
        }
        table.EndAll(FlowEndReason.Eof);

        Assert.Equal(84, table.Stats.Evictions);
        Assert.Equal(84, sink.Ends.Count(f => f.EndReason == FlowEndReason.Evicted));
        Assert.Equal(100, sink.Count(FlowEventKind.End));
        // The least recently active flows go first.
        Assert.All(sink.Ends.Where(f => f.EndReason == FlowEndReason.Eof), f => Assert.True(f.SourcePort >= 10000 + 84 - EvictionSlack));
    }

    private const int EvictionSlack = 16;

    [Fact]
    public void Add_LaterFragments_BorrowTheFirstFragmentsPorts()
    {
        var (table, sink) = NewTable();
        var first = Udp(Client, 5000, Server, 6000, T0, 1500);
        first.Flags |= PacketFlags.Fragment;
        first.FragmentId = 4242;
        var later = Udp(Client, 0, Server, 0, T0 + 10, 800);
        later.Flags = PacketFlags.Fragment | PacketFlags.NonFirstFragment;
        later.FragmentId = 4242;
        var stray = Udp(Client, 0, Server, 0, T0 + 20, 800);
        stray.Flags = PacketFlags.Fragment | PacketFlags.NonFirstFragment;
        stray.FragmentId = 999;

        Add(table, first);
        Add(table, later);
        Add(table, stray);
        table.EndAll(FlowEndReason.Eof);

        var flow = Assert.Single(sink.Ends);
        Assert.Equal(2UL, flow.PacketsSent);
        Assert.Equal(2300UL, flow.BytesSent);
        Assert.Equal(6000, flow.DestinationPort);
        Assert.Equal(1, table.Stats.UnmatchedFragments);
    }

    // Few hosts and ports so that flows collide, reuse ports, close, idle out and get evicted.
    private static readonly Gen<(string Source, string Destination, ushort SourcePort, ushort DestinationPort, byte Protocol, TcpFlags Flags, int GapMs, int Iface)> RandomPacket =
        Gen.Select(Gen.Int[0, 3], Gen.Int[0, 3], Gen.Int[0, 2], Gen.Int[0, 2], Gen.Int[0, 2], Gen.Byte, Gen.Int[0, 40_000], Gen.Int[0, 2])
            .Select(t =>
            {
                var (a, b, pa, pb, proto, flags, gapMs, iface) = t;
                byte protocol = proto switch { 0 => IpProtocol.Tcp, 1 => IpProtocol.Udp, _ => IpProtocol.Icmp };
                return (Source: $"10.0.0.{a}", Destination: $"10.0.1.{b}", SourcePort: (ushort)(1000 + pa), DestinationPort: (ushort)(80 + pb), Protocol: protocol, Flags: (TcpFlags)flags, GapMs: gapMs, Iface: iface);
            });

    private static PacketHeaders[] Build((string Source, string Destination, ushort SourcePort, ushort DestinationPort, byte Protocol, TcpFlags Flags, int GapMs, int Iface)[] packets)
    {
        var headers = new PacketHeaders[packets.Length];
        long t = T0;
        for (int i = 0; i < packets.Length; i++)
        {
            var p = packets[i];
            t += p.GapMs * 1_000_000L;
            headers[i] = p.Protocol switch
            {
                IpProtocol.Tcp => Tcp(p.Source, p.SourcePort, p.Destination, p.DestinationPort, p.Flags, t, 100, p.Iface),
                IpProtocol.Udp => Udp(p.Source, p.SourcePort, p.Destination, p.DestinationPort, t, 100, p.Iface),
                _ => Echo(p.Source, p.Destination, p.SourcePort, reply: ((byte)p.Flags & 1) == 1, t, 100) with { InterfaceIndex = p.Iface },
            };
        }
        return headers;
    }

    [Fact]
    public void Add_RandomTraffic_CountsEveryPacketInExactlyOneFlow()
    {
        RandomPacket.Array[1, 400].Sample(packets =>
        {
            var (table, sink) = NewTable(new FlowTableOptions { MaxFlows = 16, UpdateInterval = TimeSpan.FromSeconds(20) });
            foreach (var h in Build(packets)) Add(table, h);
            table.EndAll(FlowEndReason.Eof);

            ulong counted = 0;
            var ids = new HashSet<ulong>();
            foreach (var end in sink.Ends)
            {
                counted += end.PacketsSent + end.PacketsReceived;
                Assert.True(ids.Add(end.Id), "a flow ended twice");
            }
            Assert.Equal(sink.Count(FlowEventKind.Start), sink.Count(FlowEventKind.End));
            Assert.Equal((ulong)packets.Length, counted + (ulong)table.Stats.DuplicatePackets);
            Assert.Equal(table.Stats.Packets, (long)counted);
            Assert.Equal(0, table.Count);
        }, iter: 300);
    }

    [Fact]
    public void AddBatch_RandomTraffic_SameEventsAsOneByOne()
    {
        // The batch path prefetches ahead but must account exactly as the packet-by-packet path does, batch edges included.
        Gen.Select(RandomPacket.Array[1, 400], Gen.Int[1, 64]).Sample((packets, batchSize) =>
        {
            var one = NewTable(new FlowTableOptions { MaxFlows = 16 });
            var batched = NewTable(new FlowTableOptions { MaxFlows = 16 });
            var headers = Build(packets);
            foreach (var h in headers) Add(one.Table, h);
            var copy = (PacketHeaders[])headers.Clone();
            for (int i = 0; i < copy.Length; i += batchSize) batched.Table.Add(copy.AsSpan(i, Math.Min(batchSize, copy.Length - i)));
            one.Table.EndAll(FlowEndReason.Eof);
            batched.Table.EndAll(FlowEndReason.Eof);

            static object Seen((FlowEventKind Kind, long TimeNs, FlowEntry Flow) e) => (e.Kind, e.TimeNs, e.Flow.Id, e.Flow.Source, e.Flow.Destination, e.Flow.SourcePort,
                e.Flow.DestinationPort, e.Flow.PacketsSent, e.Flow.PacketsReceived, e.Flow.BytesSent, e.Flow.BytesReceived, e.Flow.Orientation, e.Flow.EndReason);
            Assert.Equal(one.Sink.Events.Select(Seen), batched.Sink.Events.Select(Seen));
            Assert.NotEmpty(one.Sink.Events);
            Assert.Equal(one.Table.Stats.Packets, batched.Table.Stats.Packets);
        }, iter: 200);
    }

    [Fact]
    public void Add_MoreFlowsThanTheFirstTableHolds_GrowsAndLosesNone()
    {
        // Several doublings past the first size: every flow keeps its counters and its identity across each move.
        const int Flows = FlowTable.InitialSlots * 3;
        var (table, sink) = NewTable(new FlowTableOptions { MaxFlows = Flows * 2 });
        for (int round = 0; round < 3; round++)
        {
            for (int i = 0; i < Flows; i++)
            {
                string client = $"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}";
                Add(table, Tcp(client, 40000, Server, 8080, round == 0 ? Syn : Ack, T0 + round * 1_000_000L + i, 100));
            }
        }
        Assert.Equal(Flows, table.Count);
        table.EndAll(FlowEndReason.Eof);

        var ends = sink.Ends.ToList();
        Assert.Equal(Flows, ends.Count);
        Assert.All(ends, end => Assert.Equal(3UL, end.PacketsSent));
        // Flows one nanosecond and one address apart, the pattern that once gave them all the same id.
        Assert.Equal(Flows, ends.Select(e => e.Id).Distinct().Count());
        Assert.Equal(0, table.Stats.Evictions);
    }

    /// <summary>Declares port 80 on 10.0.1.* and port 1000 on 10.0.0.1 as serving; <see cref="Later"/> answers "not yet".</summary>
    private sealed class DeclaredPorts : IServerPortHint
    {
        public bool Later { get; set; }

        public ServerSide Classify(IpAddress first, ushort firstPort, IpAddress second, ushort secondPort, byte protocol)
        {
            if (Later) return ServerSide.Later;
            bool a = Serves(first, firstPort), b = Serves(second, secondPort);
            return a == b ? ServerSide.Unknown : a ? ServerSide.First : ServerSide.Second;
        }

        private static bool Serves(IpAddress ip, ushort port) =>
            (port == 80 && ip.ToString().StartsWith("10.0.1.", StringComparison.Ordinal)) || (port == 1000 && ip.ToString() == "10.0.0.1");
    }

    [Fact]
    public void ResolvePending_RandomTraffic_SameRecordsAsWhenTheClusterWasKnownFromTheStart()
    {
        // A replay orients flows that began before its manifests loaded afterwards, on the export side: every event
        // must then read exactly as if the answer had been there when the flow began.
        RandomPacket.Array[1, 300].Sample(packets =>
        {
            var known = NewTable(new FlowTableOptions { MaxFlows = 16 }, new DeclaredPorts());
            var later = new DeclaredPorts { Later = true };
            var deferred = NewTable(new FlowTableOptions { MaxFlows = 16 }, later);
            foreach (var h in Build(packets))
            {
                Add(known.Table, h);
                Add(deferred.Table, h);
            }
            known.Table.EndAll(FlowEndReason.Eof);
            deferred.Table.EndAll(FlowEndReason.Eof);

            var answer = new DeclaredPorts();
            static object Seen((FlowEventKind Kind, long TimeNs, FlowEntry Flow) e) => (e.Kind, e.TimeNs, e.Flow.Id, e.Flow.Source, e.Flow.Destination, e.Flow.SourcePort,
                e.Flow.DestinationPort, e.Flow.PacketsSent, e.Flow.PacketsReceived, e.Flow.BytesSent, e.Flow.BytesReceived, e.Flow.Orientation, e.Flow.EndReason);
            var resolved = deferred.Sink.Events.Select(e =>
            {
                var flow = e.Flow;
                FlowTable.ResolvePending(ref flow, answer);
                return Seen((e.Kind, e.TimeNs, flow));
            }).ToList();
            Assert.Equal(known.Sink.Events.Select(Seen), resolved);
            Assert.DoesNotContain(resolved, r => r.ToString()!.Contains(nameof(FlowOrientation.Pending), StringComparison.Ordinal));
        }, iter: 300);
    }
}
