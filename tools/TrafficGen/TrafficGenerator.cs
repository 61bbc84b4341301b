using System.Buffers.Binary;
using Tripline.Capture.Parsing;

namespace Tripline.TrafficGen;

/// <summary>
/// Plays flow specs out as packets in time order. Each live flow is a small state machine in a struct array; a
/// priority queue keyed on the time of each flow's next packet interleaves them. Per packet nothing is allocated:
/// frames are built in one buffer and copied, cut to the snap length, into the writer's buffer.
/// </summary>
internal sealed class TrafficGenerator
{
    private enum Phase : byte
    {
        Request,
        Response,
        Ack,
    }

    private struct ActiveFlow
    {
        public int Spec;
        public int Sent;
        public int DataLeft;
        public int SegmentsLeft;
        public Phase Phase;
        public Leg Up;
        public Leg Down;
        public uint ClientSeq;
        public uint ServerSeq;
        public uint ClientTsBase;
        public uint ServerTsBase;
        public ushort ClientIpId;
        public ushort ServerIpId;
        public ushort DnsId;
        public long RttNs;
        public long ThinkNs;
        public int Mss;
        public PayloadSet Payloads;
        public bool ClientSpoke;
        public bool ServerSpoke;
    }

    private readonly Topology _topology;
    private readonly IReadOnlyList<FlowSpec> _specs;
    private readonly CaptureWriter _writer;
    private readonly FrameBuilder _frames;
    private readonly Rng _rng;
    private readonly double _noise;
    private readonly byte[] _dns = new byte[512];
    private readonly int[] _noiseHosts;
    private ActiveFlow[] _flows = new ActiveFlow[256];
    private readonly Stack<int> _free = new();
    private int _used;

    public TrafficGenerator(Topology topology, IReadOnlyList<FlowSpec> specs, CaptureWriter writer, ulong seed, double noise)
    {
        _topology = topology;
        _specs = specs;
        _writer = writer;
        _frames = new FrameBuilder(writer.SnapLength);
        _rng = new Rng(seed ^ 0x5DEE_CE66_D1CE_4E5BUL);
        _noise = noise;
        _noiseHosts = Enumerable.Range(0, topology.Endpoints.Count)
            .Where(i => topology.Endpoints[i].Kind is EndpointKind.Pod or EndpointKind.Node && topology.Endpoints[i].V4.HasValue)
            .ToArray();
    }

    public long FlowPackets { get; private set; }

    public long NoiseFrames { get; private set; }

    public long LastTimestampNs { get; private set; }

    public void Run()
    {
        var queue = new PriorityQueue<int, long>(1024);
        int nextSpec = 0;
        while (true)
        {
            long next = queue.TryPeek(out int slot, out long time) ? time : long.MaxValue;
            if (nextSpec < _specs.Count && _specs[nextSpec].StartNs <= next)
            {
                int s = Allocate();
                Start(ref _flows[s], nextSpec);
                queue.Enqueue(s, _specs[nextSpec].StartNs);
                nextSpec++;
                continue;
            }
            if (next == long.MaxValue) break;
            queue.Dequeue();
            long gap = WriteNext(ref _flows[slot], time);
            LastTimestampNs = time;
            if (gap >= 0) queue.Enqueue(slot, time + gap);
            else _free.Push(slot);
            if (_noise > 0 && _rng.Chance(_noise)) WriteNoise(time);
        }
    }

    private int Allocate()
    {
        if (_free.TryPop(out int slot)) return slot;
        if (_used == _flows.Length) Array.Resize(ref _flows, _flows.Length * 2);
        return _used++;
    }

    private void Start(ref ActiveFlow f, int specIndex)
    {
        FlowSpec s = _specs[specIndex];
        var client = _topology.Endpoints[s.Client];
        var server = _topology.Endpoints[s.Server];
        f = default;
        f.Spec = specIndex;
        f.Up = MakeLeg(client, server, s.V6, 64);
        bool outside = server.Kind == EndpointKind.External;
        f.Down = MakeLeg(server, client, s.V6, outside ? (byte)(46 + _rng.Next(12)) : (byte)64);
        f.ClientSeq = _rng.NextUInt32();
        f.ServerSeq = _rng.NextUInt32();
        f.ClientTsBase = _rng.NextUInt32();
        f.ServerTsBase = _rng.NextUInt32();
        f.ClientIpId = (ushort)_rng.Next(65536);
        f.ServerIpId = (ushort)_rng.Next(65536);
        f.RttNs = outside ? 2_000_000 + _rng.Next(38_000_000)
            : server.Kind == EndpointKind.Node ? 60_000 + _rng.Next(140_000)
            : 80_000 + _rng.Next(320_000);
        f.ThinkNs = _rng.Chance(0.7) ? 2_000_000 + _rng.Next(18_000_000) : 100_000_000 + _rng.Next(900_000_000);
        f.Mss = s.V6 ? 1428 : 1448;
        f.Payloads = s.Kind == FlowKind.Udp ? PayloadSet.Datagrams : PayloadSet.For(s.Payload, s.ServerPort);
        int closing = s.Close switch
        {
            CloseKind.ClientFin or CloseKind.ServerFin => 3,
            CloseKind.ClientRst or CloseKind.ServerRst => 1,
            _ => 0,
        };
        f.DataLeft = Math.Max(0, s.Packets - 3 - closing);
    }

    private static Leg MakeLeg(Endpoint from, Endpoint to, bool v6, byte ttl) => new()
    {
        SourceMac = from.Mac,
        DestinationMac = to.Mac,
        V6 = v6,
        Source4 = from.V4 ?? 0,
        Destination4 = to.V4 ?? 0,
        Source6 = from.V6 ?? UInt128.Zero,
        Destination6 = to.V6 ?? UInt128.Zero,
        FlowLabel = (uint)((from.Mac ^ (to.Mac << 3)) & 0xFFFFF),
        Ttl = ttl,
    };

    /// <summary>Writes the flow's next packet at <paramref name="now"/>; returns the delay to the one after, or -1 when done.</summary>
    private long WriteNext(ref ActiveFlow f, long now)
    {
        FlowSpec s = _specs[f.Spec];
        long gap = s.Kind switch
        {
            FlowKind.Tcp => WriteTcp(ref f, in s, now),
            FlowKind.Udp => WriteUdp(ref f, in s),
            FlowKind.Dns => WriteDns(ref f, in s),
            _ => WriteIcmp(ref f, in s, now),
        };
        // A connection whose start the capture missed: its handshake happened, but before the capture began.
        if (!(s.MissStart && f.Sent <= 3))
        {
            _writer.Write(now, _frames.Captured, _frames.WireLength);
            FlowPackets++;
        }
        return f.Sent >= s.Packets ? -1 : gap;
    }

    private long Jitter(long baseNs, long spreadNs) => baseNs + _rng.Next((int)Math.Min(spreadNs, int.MaxValue));

    private long WriteTcp(ref ActiveFlow f, in FlowSpec s, long now)
    {
        int k = f.Sent++;
        uint elapsedMs = (uint)((now - s.StartNs) / 1_000_000);
        uint clientTs = f.ClientTsBase + elapsedMs;
        uint serverTs = f.ServerTsBase + elapsedMs;
        if (s.Close == CloseKind.Unanswered)
        {
            // The same SYN again after Linux's retransmission timeouts (1 s, then doubled): nothing ever answers.
            _frames.Tcp(in f.Up, s.ClientPort, s.ServerPort, f.ClientSeq, 0, TcpFlags.Syn, 64240, TcpOptionSet.Syn, clientTs, 0, 0, null, f.ClientIpId++);
            return 1_000_000_000L << k;
        }
        if (k == 0)
        {
            _frames.Tcp(in f.Up, s.ClientPort, s.ServerPort, f.ClientSeq, 0, TcpFlags.Syn, 64240, TcpOptionSet.Syn, clientTs, 0, 0, null, f.ClientIpId++);
            f.ClientSeq++;
            return f.RttNs;
        }
        if (s.Close == CloseKind.Refused)
        {
            // Nothing listens: the kernel answers the SYN with RST-ACK, sequence 0, no options, and a zero IP id.
            _frames.Tcp(in f.Down, s.ServerPort, s.ClientPort, 0, f.ClientSeq, TcpFlags.Rst | TcpFlags.Ack, 0, TcpOptionSet.None, 0, 0, 0, null, 0);
            return -1;
        }
        if (k == 1)
        {
            _frames.Tcp(in f.Down, s.ServerPort, s.ClientPort, f.ServerSeq, f.ClientSeq, TcpFlags.Syn | TcpFlags.Ack, 65160, TcpOptionSet.Syn, serverTs, clientTs, 0, null, 0);
            f.ServerSeq++;
            return Jitter(15_000, 30_000);
        }
        if (k == 2)
        {
            ClientSegment(ref f, TcpFlags.Ack, 0, clientTs, serverTs);
            f.Phase = Phase.Request;
            return Jitter(20_000, 200_000);
        }
        if (f.DataLeft > 0)
        {
            f.DataLeft--;
            long gap;
            switch (f.Phase)
            {
                case Phase.Request:
                    {
                        int size = 60 + _rng.Next(840);
                        if (!f.ClientSpoke && f.Payloads.FirstRequest == PayloadPattern.TlsClientHello) size = PayloadPattern.ClientHelloSegment;
                        ClientSegment(ref f, TcpFlags.Psh | TcpFlags.Ack, size, clientTs, serverTs);
                        f.Phase = Phase.Response;
                        f.SegmentsLeft = 1 + (int)Math.Min(_rng.Exponential(2.5), 40);
                        gap = f.RttNs + (long)_rng.Exponential(400_000);
                        break;
                    }
                case Phase.Response:
                    {
                        bool last = --f.SegmentsLeft == 0;
                        int size = last ? 100 + _rng.Next(f.Mss - 100) : f.Mss;
                        ServerSegment(ref f, last ? TcpFlags.Psh | TcpFlags.Ack : TcpFlags.Ack, size, serverTs, clientTs);
                        if (last) f.Phase = Phase.Ack;
                        gap = last ? Jitter(20_000, 40_000) : Jitter(4_000, 16_000);
                        break;
                    }
                default:
                    ClientSegment(ref f, TcpFlags.Ack, 0, clientTs, serverTs);
                    f.Phase = Phase.Request;
                    gap = (long)Math.Min(_rng.Exponential(f.ThinkNs), 20_000_000_000);
                    break;
            }
            if (f.DataLeft == 0 && gap < 1_000_000) gap += Jitter(200_000, 5_000_000);
            return gap;
        }

        int c = k - (s.Packets - (s.Close is CloseKind.ClientRst or CloseKind.ServerRst ? 1 : 3));
        switch (s.Close)
        {
            case CloseKind.ClientRst:
                ClientSegment(ref f, TcpFlags.Rst | TcpFlags.Ack, 0, clientTs, serverTs);
                return -1;
            case CloseKind.ServerRst:
                ServerSegment(ref f, TcpFlags.Rst | TcpFlags.Ack, 0, serverTs, clientTs);
                return -1;
            case CloseKind.ServerFin:
                if (c == 1)
                {
                    ClientSegment(ref f, TcpFlags.Fin | TcpFlags.Ack, 0, clientTs, serverTs);
                    f.ClientSeq++;
                    return f.RttNs;
                }
                ServerSegment(ref f, c == 0 ? TcpFlags.Fin | TcpFlags.Ack : TcpFlags.Ack, 0, serverTs, clientTs);
                if (c == 0) f.ServerSeq++;
                return c == 0 ? Jitter(30_000, 500_000) : -1;
            default:
                if (c == 1)
                {
                    ServerSegment(ref f, TcpFlags.Fin | TcpFlags.Ack, 0, serverTs, clientTs);
                    f.ServerSeq++;
                    return Jitter(15_000, 30_000);
                }
                ClientSegment(ref f, c == 0 ? TcpFlags.Fin | TcpFlags.Ack : TcpFlags.Ack, 0, clientTs, serverTs);
                if (c == 0) f.ClientSeq++;
                return c == 0 ? f.RttNs : -1;
        }
    }

    private void ClientSegment(ref ActiveFlow f, TcpFlags flags, int payload, uint tsValue, uint tsEcho)
    {
        FlowSpec s = _specs[f.Spec];
        PayloadPattern pattern = f.Payloads.Request;
        if (payload > 0)
        {
            if (!f.ClientSpoke && f.Payloads.FirstRequest is { } first) pattern = first;
            f.ClientSpoke = true;
        }
        _frames.Tcp(in f.Up, s.ClientPort, s.ServerPort, f.ClientSeq, f.ServerSeq, flags, 502, s.LongOptions ? TcpOptionSet.Long : TcpOptionSet.Timestamps, tsValue, tsEcho, payload, pattern, f.ClientIpId++);
        f.ClientSeq += (uint)payload;
    }

    private void ServerSegment(ref ActiveFlow f, TcpFlags flags, int payload, uint tsValue, uint tsEcho)
    {
        FlowSpec s = _specs[f.Spec];
        PayloadPattern pattern = f.Payloads.Response;
        if (payload > 0)
        {
            if (!f.ServerSpoke && f.Payloads.FirstResponse is { } first) pattern = first;
            f.ServerSpoke = true;
        }
        _frames.Tcp(in f.Down, s.ServerPort, s.ClientPort, f.ServerSeq, f.ClientSeq, flags, 509, s.LongOptions ? TcpOptionSet.Long : TcpOptionSet.Timestamps, tsValue, tsEcho, payload, pattern, f.ServerIpId++);
        f.ServerSeq += (uint)payload;
    }

    private long WriteUdp(ref ActiveFlow f, in FlowSpec s)
    {
        int k = f.Sent++;
        int size = 40 + _rng.Next(460);
        if ((k & 1) == 0)
        {
            _frames.Udp(in f.Up, s.ClientPort, s.ServerPort, size, f.Payloads.Request, f.ClientIpId++);
            return f.RttNs + (long)_rng.Exponential(200_000);
        }
        _frames.Udp(in f.Down, s.ServerPort, s.ClientPort, size, f.Payloads.Response, f.ServerIpId++);
        return (long)Math.Min(_rng.Exponential(f.ThinkNs), 20_000_000_000);
    }

    private long WriteDns(ref ActiveFlow f, in FlowSpec s)
    {
        int k = f.Sent++;
        var record = s.DnsRecord >= 0 ? _topology.DnsRecords[s.DnsRecord] : null;
        ushort type = k < 2 ? (ushort)1 : (ushort)28; // A, then AAAA from the same socket, as glibc asks
        int length;
        if ((k & 1) == 0)
        {
            f.DnsId = (ushort)_rng.Next(65536);
            length = WriteDnsMessage(f.DnsId, record, type, response: false);
            _frames.Udp(in f.Up, s.ClientPort, s.ServerPort, _dns.AsSpan(0, length), f.ClientIpId++);
            return f.RttNs + Jitter(60_000, 400_000);
        }
        length = WriteDnsMessage(f.DnsId, record, type, response: true);
        _frames.Udp(in f.Down, s.ServerPort, s.ClientPort, _dns.AsSpan(0, length), 0);
        return Jitter(20_000, 60_000);
    }

    private int WriteDnsMessage(ushort id, DnsRecord? record, ushort type, bool response)
    {
        Span<byte> d = _dns;
        ReadOnlySpan<byte> name = record is null ? "\u0007example\u0003com\0"u8 : record.Wire;
        bool hasAnswer = response && record is not null && (type == 1 ? record.A.HasValue : record.Aaaa.HasValue);
        bool nxdomain = response && (record is null || (!record.A.HasValue && !record.Aaaa.HasValue));
        BinaryPrimitives.WriteUInt16BigEndian(d, id);
        ushort flags = response ? (ushort)(record is { InCluster: true } ? 0x8580 : 0x8180) : (ushort)0x0100;
        if (nxdomain) flags |= 3;
        BinaryPrimitives.WriteUInt16BigEndian(d[2..], flags);
        BinaryPrimitives.WriteUInt16BigEndian(d[4..], 1);
        BinaryPrimitives.WriteUInt16BigEndian(d[6..], hasAnswer ? (ushort)1 : (ushort)0);
        BinaryPrimitives.WriteUInt32BigEndian(d[8..], 0);
        int o = 12;
        name.CopyTo(d[o..]);
        o += name.Length;
        BinaryPrimitives.WriteUInt16BigEndian(d[o..], type);
        BinaryPrimitives.WriteUInt16BigEndian(d[(o + 2)..], 1);
        o += 4;
        if (hasAnswer)
        {
            BinaryPrimitives.WriteUInt16BigEndian(d[o..], 0xC00C); // the name, as a pointer to the question
            BinaryPrimitives.WriteUInt16BigEndian(d[(o + 2)..], type);
            BinaryPrimitives.WriteUInt16BigEndian(d[(o + 4)..], 1);
            BinaryPrimitives.WriteUInt32BigEndian(d[(o + 6)..], record!.InCluster ? 30u : 120u);
            o += 10;
            if (type == 1)
            {
                BinaryPrimitives.WriteUInt16BigEndian(d[o..], 4);
                BinaryPrimitives.WriteUInt32BigEndian(d[(o + 2)..], record.A!.Value);
                o += 6;
            }
            else
            {
                BinaryPrimitives.WriteUInt16BigEndian(d[o..], 16);
                BinaryPrimitives.WriteUInt128BigEndian(d[(o + 2)..], record.Aaaa!.Value);
                o += 18;
            }
        }
        return o;
    }

    private long WriteIcmp(ref ActiveFlow f, in FlowSpec s, long now)
    {
        int k = f.Sent++;
        ushort seq = (ushort)(k / 2 + 1);
        if ((k & 1) == 0)
        {
            _frames.IcmpEcho(in f.Up, reply: false, s.ClientPort, seq, now, f.ClientIpId++);
            return f.RttNs;
        }
        _frames.IcmpEcho(in f.Down, reply: true, s.ClientPort, seq, now - f.RttNs, f.ServerIpId++);
        return 1_000_000_000 - f.RttNs + _rng.Next(200_000);
    }

    private void WriteNoise(long now)
    {
        NoiseFrames++;
        int kind = _rng.Next(10);
        if (_noiseHosts.Length < 2) kind = 7 + _rng.Next(3);
        Endpoint a = _noiseHosts.Length > 0 ? _topology.Endpoints[_noiseHosts[_rng.Next(_noiseHosts.Length)]] : _topology.Endpoints[0];
        Endpoint b = _noiseHosts.Length > 0 ? _topology.Endpoints[_noiseHosts[_rng.Next(_noiseHosts.Length)]] : a;
        switch (kind)
        {
            case 0 or 1 or 2:
                _frames.Arp(Topology.GatewayMac, a.V4 ?? 0x0A00_0001u, 0, b.V4 ?? 0x0A00_0002u, reply: false);
                break;
            case 3:
                _frames.Arp(b.Mac, b.V4 ?? 0x0A00_0002u, Topology.GatewayMac, a.V4 ?? 0x0A00_0001u, reply: true);
                break;
            case 4 or 5:
                _frames.NeighborSolicitation(a.Mac, LinkLocal(a.Mac), b.V6 ?? LinkLocal(b.Mac));
                break;
            case 6:
                _frames.Lldp(0x0050_5600_0001UL | ((ulong)_rng.Next(256) << 8));
                break;
            default:
                {
                    var leg = MakeLeg(a, b, v6: false, 64);
                    if (leg.Source4 == 0) { leg.Source4 = 0x0AF4_0101u; leg.Destination4 = 0x0AF4_0102u; }
                    _frames.Malformed(in leg, _rng.Next(4), (ushort)_rng.Next(65536));
                    break;
                }
        }
        _writer.Write(now, _frames.Captured, _frames.WireLength);
    }

    /// <summary>fe80::/64 with the modified EUI-64 interface id of a MAC.</summary>
    private static UInt128 LinkLocal(ulong mac)
    {
        ulong eui = ((mac >> 24) << 40) | (0xFFFEUL << 24) | (mac & 0xFF_FFFF);
        eui ^= 0x0200_0000_0000_0000UL;
        return new UInt128(0xFE80_0000_0000_0000UL, eui);
    }
}
