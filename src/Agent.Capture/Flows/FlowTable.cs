using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using Tripline.Capture.Parsing;

namespace Tripline.Capture.Flows;

/// <summary>
/// Connections and conversations, one struct entry each, in a pre-sized open-addressing table (linear probing,
/// backward-shift deletion, so no tombstones). Owned by one thread: no locks. Every packet handed to
/// <see cref="Add"/> is counted in exactly one flow or in one of the <see cref="Stats"/> counters.
/// </summary>
public sealed class FlowTable
{
    private const int EvictionWindow = 16;
    private const int FragmentCacheSize = 4096;

    /// <summary>The table starts at this many slots and doubles as flows arrive, up to twice the flow limit.</summary>
    internal const int InitialSlots = 8192;

    private AlignedArray<FlowEntry> _slots;
    /// <summary>One bit per slot, set when occupied: sweeps visit live flows, not every slot of a mostly empty table.</summary>
    private ulong[] _occupied;
    /// <summary>
    /// The hash of each slot's flow (never zero; zero marks an empty slot), probed instead of the entries: a probe
    /// reads four bytes of a compact array, and only a matching hash touches the wide entry.
    /// </summary>
    private uint[] _tags;
    private int _mask;
    private readonly int _slotLimit;
    private readonly int _maxFlows;
    private readonly IFlowEventSink _sink;
    private readonly IServerPortHint? _hint;
    private readonly long _tcpIdleNs, _udpIdleNs, _icmpIdleNs, _sctpIdleNs, _lingerNs, _updateNs, _sweepNs;
    private readonly ulong _idSeed;
    private readonly FragmentPorts[] _fragments = new FragmentPorts[FragmentCacheSize];
    private int _count;
    private long _now;
    private long _nextSweep;

    private struct FragmentPorts
    {
        public IpAddress Source;
        public uint Id;
        public ushort SourcePort;
        public ushort DestinationPort;
        public byte Protocol;
        public bool Valid;
    }

    public FlowTable(FlowTableOptions options, IFlowEventSink sink, IServerPortHint? hint = null, ulong idSeed = 0)
    {
        _maxFlows = options.MaxFlows;
        // Load factor at most one half keeps linear-probe chains short. The table grows to that bound rather than
        // starting there: memory a node's few thousand flows never touch costs nothing, but a table spread over
        // 23 MB makes every lookup a cache and TLB miss, and faulting it all in costs a short replay its start.
        _slotLimit = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(16, options.MaxFlows * 2));
        (_slots, _tags, _occupied) = NewArrays(Math.Min(_slotLimit, InitialSlots));
        _mask = _slots.Length - 1;
        _sink = sink;
        _hint = hint;
        _idSeed = idSeed;
        _tcpIdleNs = Ns(options.TcpIdleTimeout);
        _udpIdleNs = Ns(options.UdpIdleTimeout);
        _icmpIdleNs = Ns(options.IcmpIdleTimeout);
        _sctpIdleNs = Ns(options.SctpIdleTimeout);
        _lingerNs = Ns(options.CloseLinger);
        _updateNs = Ns(options.UpdateInterval);
        _sweepNs = Ns(options.SweepInterval);
        _nextSweep = long.MinValue;
    }

    private static long Ns(TimeSpan span) => span.Ticks * 100;

    public FlowTableStats Stats { get; } = new();

    public int Count => _count;

    public int Capacity => _maxFlows;

    /// <summary>The latest time the table has seen (packet or clock).</summary>
    public long Now => _now;

    /// <summary>Accounts one parsed packet. Returns false when it was counted elsewhere (an unmatched fragment).</summary>
    // Optimized from the first call: a replay lasts a second or two, and tiered compilation would spend it in
    // unoptimized and instrumented versions of the per-packet code.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool Add(ref PacketHeaders packet) => Add(ref packet, HashOf(in packet));

    /// <summary><see cref="Add(ref PacketHeaders)"/> with the packet's hash already computed (for its prefetch).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private bool Add(ref PacketHeaders packet, uint hash)
    {
        if (packet.TimestampNs > _now) _now = packet.TimestampNs;
        if (_now >= _nextSweep) SweepDue();

        if ((packet.Flags & PacketFlags.Fragment) != 0)
        {
            if (!ResolveFragmentPorts(ref packet))
            {
                Stats.UnmatchedFragments++;
                return false;
            }
            // A later fragment has just borrowed its ports.
            hash = HashOf(in packet);
        }

        // An ICMP error about a flow the table holds is evidence on that flow, not a conversation of its own.
        if ((packet.Flags & PacketFlags.IcmpQuote) != 0 && NoteIcmpError(in packet)) return true;

        int slot = (int)(hash & (uint)_mask);
        var tags = _tags;
        uint tag;
        while ((tag = tags[slot]) != 0)
        {
            if (tag == hash)
            {
                ref FlowEntry entry = ref _slots[slot];
                if (entry.Protocol != packet.Protocol)
                {
                    slot = (slot + 1) & _mask;
                    continue;
                }
                if (entry.Source == packet.Source && entry.Destination == packet.Destination
                    && entry.SourcePort == packet.SourcePort && entry.DestinationPort == packet.DestinationPort)
                {
                    return Update(ref entry, ref packet, fromSource: true, slot);
                }
                if (entry.Source == packet.Destination && entry.Destination == packet.Source
                    && entry.SourcePort == packet.DestinationPort && entry.DestinationPort == packet.SourcePort)
                {
                    return Update(ref entry, ref packet, fromSource: false, slot);
                }
            }
            slot = (slot + 1) & _mask;
        }
        Insert(slot, hash, ref packet);
        return true;
    }

    /// <summary>
    /// Accounts a batch of parsed packets, as <see cref="Add(ref PacketHeaders)"/> does one by one, while the slots of
    /// the packets a few places ahead are prefetched: with thousands of live flows nearly every packet's slot is a
    /// cache miss, and overlapping those misses rather than taking them in turn is most of the table's speed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Add(Span<PacketHeaders> packets)
    {
        // Each packet's hash is computed once, for its prefetch, and kept here until its turn comes.
        const int Ahead = 8;
        Span<uint> hashes = stackalloc uint[Ahead];
        int count = packets.Length;
        for (int i = 0; i < Math.Min(Ahead, count); i++) hashes[i] = Prefetch(in packets[i]);
        for (int i = 0; i < count; i++)
        {
            uint hash = hashes[i & (Ahead - 1)];
            if (i + Ahead < count) hashes[(i + Ahead) & (Ahead - 1)] = Prefetch(in packets[i + Ahead]);
            Add(ref packets[i], hash);
        }
    }

    /// <summary>
    /// Starts loading the hash tag and the hot part of the slot where a packet's flow most likely lives, and answers
    /// the packet's hash. The hot part is the first two cache lines of the entry (see <see cref="FlowEntry"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private unsafe uint Prefetch(in PacketHeaders packet)
    {
        uint hash = HashOf(in packet);
        if (Sse.IsSupported)
        {
            int slot = (int)(hash & (uint)_mask);
            // The tags are an ordinary array the collector may move, but a stale address only wastes the hint: a
            // prefetch never faults.
            Sse.Prefetch0(Unsafe.AsPointer(ref _tags[slot]));
            byte* entry = _slots.AddressOf(slot);
            Sse.Prefetch0(entry);
            Sse.Prefetch0(entry + 64);
        }
        return hash;
    }

    /// <summary>Moves the table's clock forward without a packet (live capture on a quiet node) and sweeps if due.</summary>
    public void Advance(long nowNs)
    {
        if (nowNs > _now) _now = nowNs;
        if (_now >= _nextSweep) SweepDue();
    }

    /// <summary>Ends every flow (end of file, shutdown) with the given reason.</summary>
    public void EndAll(FlowEndReason reason, long? timeNs = null)
    {
        for (int i = 0; i < _slots.Length; i++)
        {
            ref FlowEntry entry = ref _slots[i];
            if (!entry.Occupied) continue;
            if (entry.EndReason == FlowEndReason.None) entry.EndReason = reason;
            // At the end of a file the flow ended with its last packet; at shutdown, now.
            long time = timeNs ?? entry.LastSeenNs;
            EmitEnd(ref entry, time);
            entry.Occupied = false;
        }
        Array.Clear(_occupied);
        Array.Clear(_tags);
        _count = 0;
        Stats.Active = 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint HashOf(in PacketHeaders p) => HashOf(p.Source, p.Destination, p.SourcePort, p.DestinationPort, p.Protocol);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint HashOf(in IpAddress source, in IpAddress destination, ushort sourcePort, ushort destinationPort, byte protocol)
    {
        // Symmetric: both directions of a flow hash alike. XOR of the two endpoints, then a strong mix.
        ulong x = source.High ^ source.Low ^ destination.High ^ destination.Low;
        ulong ports = (uint)(sourcePort ^ destinationPort) | ((ulong)(uint)(sourcePort + destinationPort) << 16);
        x ^= ports << 24 ^ (ulong)protocol << 56 ^ (ulong)protocol;
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdUL;
        x ^= x >> 33;
        x *= 0xc4ceb9fe1a85ec53UL;
        x ^= x >> 33;
        // The top bit is always set so that no flow hashes to the empty tag; slots use the low bits.
        return (uint)x | 0x8000_0000u;
    }

    private bool ResolveFragmentPorts(ref PacketHeaders packet)
    {
        // The first fragment carries the ports; later ones borrow them through a small direct-mapped cache.
        int index = (int)((packet.FragmentId ^ (uint)packet.Source.Low ^ (uint)packet.Destination.Low * 31) & (FragmentCacheSize - 1));
        ref FragmentPorts cached = ref _fragments[index];
        if ((packet.Flags & PacketFlags.NonFirstFragment) == 0)
        {
            cached.Source = packet.Source;
            cached.Id = packet.FragmentId;
            cached.Protocol = packet.Protocol;
            cached.SourcePort = packet.SourcePort;
            cached.DestinationPort = packet.DestinationPort;
            cached.Valid = true;
            return true;
        }
        if (cached.Valid && cached.Id == packet.FragmentId && cached.Source == packet.Source && cached.Protocol == packet.Protocol)
        {
            packet.SourcePort = cached.SourcePort;
            packet.DestinationPort = cached.DestinationPort;
            return true;
        }
        // ICMP errors and other portless protocols need no ports to find their flow.
        return !IpProtocol.HasPorts(packet.Protocol) && (packet.Flags & PacketFlags.HasPorts) == 0 && packet.Protocol is not (IpProtocol.Icmp or IpProtocol.Icmpv6);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private bool Update(ref FlowEntry entry, ref PacketHeaders packet, bool fromSource, int slot)
    {
        // Only the counting interface may restart a flow: live capture reads a short connection whole on one veth
        // before the copies from the peer's veth arrive, and a copied SYN is not a reused 5-tuple.
        if (entry.CloseState == TcpCloseState.Closing && IsNewConnection(in packet) && packet.InterfaceIndex == entry.Interfaces[0])
        {
            // The 5-tuple was reused by a new connection while the old one lingered: end it, start afresh.
            long endTime = entry.LastSeenNs;
            EmitEnd(ref entry, endTime);
            RemoveAt(slot);
            Add(ref packet);
            return true;
        }

        if (!NoteInterface(ref entry, packet.InterfaceIndex))
        {
            // The initiator's packet on a second interface: on one node, it reached the peer's veth.
            if (fromSource) entry.Evidence |= FlowEvidence.ReachedPeer;
            Stats.DuplicatePackets++;
            return true;
        }

        Stats.Packets++;
        Stats.Bytes += packet.IpLength;
        if (fromSource)
        {
            entry.PacketsSent++;
            entry.BytesSent += (ulong)packet.IpLength;
        }
        else
        {
            entry.PacketsReceived++;
            entry.BytesReceived += (ulong)packet.IpLength;
        }
        entry.LastSeenNs = Math.Max(entry.LastSeenNs, packet.TimestampNs);
        entry.ActivitySinceRecord = true;
        ApplyTransportState(ref entry, in packet, fromSource);
        return true;
    }

    /// <summary>
    /// Finds the flow an ICMP error quotes (either direction) and, for a destination unreachable, marks it refused.
    /// False when the table holds no such flow: the error is then a flow of its own, as any ICMP packet.
    /// </summary>
    private bool NoteIcmpError(in PacketHeaders packet)
    {
        ushort quotedSource = (ushort)(packet.QuotedPorts >> 16), quotedDestination = (ushort)packet.QuotedPorts;
        byte protocol = packet.QuotedProtocol;
        uint hash = HashOf(packet.OuterSource, packet.OuterDestination, quotedSource, quotedDestination, protocol);
        for (int slot = (int)(hash & (uint)_mask); _tags[slot] != 0; slot = (slot + 1) & _mask)
        {
            if (_tags[slot] != hash) continue;
            ref FlowEntry entry = ref _slots[slot];
            if (entry.Protocol != protocol) continue;
            bool forward = entry.Source == packet.OuterSource && entry.Destination == packet.OuterDestination
                && entry.SourcePort == quotedSource && entry.DestinationPort == quotedDestination;
            bool backward = entry.Source == packet.OuterDestination && entry.Destination == packet.OuterSource
                && entry.SourcePort == quotedDestination && entry.DestinationPort == quotedSource;
            if (!forward && !backward) continue;
            // Type 3 (ICMP) or 1 (ICMPv6): destination unreachable, the refusal a REJECT rule or a closed port sends.
            // Time exceeded and the others say nothing of policy; they are still the flow's, not new flows.
            bool v4 = packet.Protocol == IpProtocol.Icmp;
            if (packet.IcmpType == (v4 ? 3 : 1))
            {
                entry.Evidence |= FlowEvidence.Unreachable;
                if (packet.IcmpCode == (v4 ? 3 : 4)) entry.Evidence |= FlowEvidence.PortUnreachable;
            }
            Stats.IcmpErrors++;
            return true;
        }
        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool NoteInterface(ref FlowEntry entry, int iface)
    {
        // Rule against double counting: a flow's packets are counted on the interface that saw it first; the same
        // packet seen on the peer's veth or on a bridge only adds that interface to the record.
        if (entry.Interfaces[0] == iface) return true;
        for (int i = 1; i < entry.InterfaceCount; i++)
        {
            if (entry.Interfaces[i] == iface) return false;
        }
        if (entry.InterfaceCount < InterfaceSet.Capacity) entry.Interfaces[entry.InterfaceCount++] = iface;
        return false;
    }

    private static bool IsNewConnection(in PacketHeaders p) => p.Protocol switch
    {
        IpProtocol.Tcp => (p.TcpFlags & (TcpFlags.Syn | TcpFlags.Ack)) == TcpFlags.Syn,
        IpProtocol.Sctp => p.SctpChunkType == 1,
        _ => false,
    };

    private void ApplyTransportState(ref FlowEntry entry, in PacketHeaders packet, bool fromSource)
    {
        if (packet.Protocol == IpProtocol.Tcp)
        {
            TcpFlags flags = packet.TcpFlags;
            entry.TcpFlagsSeen |= flags;
            // The first payload of each direction: what it began with is a fact only after the connection's SYN, since
            // a payload caught midway may start anywhere in a record.
            if (packet.Payload.Kind != PayloadKind.None)
            {
                ref PayloadClass first = ref fromSource ? ref entry.SourcePayload : ref entry.DestinationPayload;
                if (first.Kind == PayloadKind.None) first = (entry.TcpFlagsSeen & TcpFlags.Syn) != 0 ? packet.Payload : PayloadClass.Unknown;
            }
            // A SYN again with no answer yet: the first was dropped, or refused without a word.
            if (fromSource && (flags & (TcpFlags.Syn | TcpFlags.Ack)) == TcpFlags.Syn && entry.PacketsReceived == 0 && entry.PacketsSent > 1 && entry.SynRetransmits < byte.MaxValue)
            {
                entry.SynRetransmits++;
            }
            if ((flags & TcpFlags.Rst) != 0)
            {
                if (entry.CloseState == TcpCloseState.Open) entry.EndReason = FlowEndReason.Rst;
                entry.CloseState = TcpCloseState.Closing;
            }
            else if ((flags & TcpFlags.Fin) != 0)
            {
                if (fromSource) entry.FinFromSource = true; else entry.FinFromDestination = true;
                if (entry.FinFromSource && entry.FinFromDestination && entry.CloseState == TcpCloseState.Open)
                {
                    entry.EndReason = FlowEndReason.Fin;
                    entry.CloseState = TcpCloseState.Closing;
                }
            }
        }
        else if (packet.Protocol == IpProtocol.Sctp)
        {
            // ABORT (6) or SHUTDOWN COMPLETE (14) ends an association.
            if (packet.SctpChunkType == 6 && entry.CloseState == TcpCloseState.Open)
            {
                entry.EndReason = FlowEndReason.Rst;
                entry.CloseState = TcpCloseState.Closing;
            }
            else if (packet.SctpChunkType == 14 && entry.CloseState == TcpCloseState.Open)
            {
                entry.EndReason = FlowEndReason.Fin;
                entry.CloseState = TcpCloseState.Closing;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Insert(int slot, uint hash, ref PacketHeaders packet)
    {
        if (_count + 1 > _slots.Length >> 1 && _slots.Length < _slotLimit)
        {
            Grow();
            slot = (int)(hash & (uint)_mask);
            while (_tags[slot] != 0) slot = (slot + 1) & _mask;
        }
        if (_count >= _maxFlows)
        {
            EvictNear(hash);
            // Eviction shifted entries; find the free slot for this hash again.
            slot = (int)(hash & (uint)_mask);
            while (_tags[slot] != 0) slot = (slot + 1) & _mask;
        }

        ref FlowEntry entry = ref _slots[slot];
        entry = default;
        entry.Occupied = true;
        _occupied[slot >> 6] |= 1UL << slot;
        _tags[slot] = hash;
        entry.Hash = hash;
        entry.Protocol = packet.Protocol;
        entry.FirstSeenNs = packet.TimestampNs;
        entry.LastSeenNs = packet.TimestampNs;
        entry.LastRecordNs = packet.TimestampNs;
        entry.Interfaces[0] = packet.InterfaceIndex;
        entry.InterfaceCount = 1;
        entry.IcmpType = packet.IcmpType;
        entry.IcmpCode = packet.IcmpCode;
        if ((packet.Flags & PacketFlags.Tunnel) != 0)
        {
            entry.OuterSource = packet.OuterSource;
            entry.OuterDestination = packet.OuterDestination;
            entry.TunnelId = packet.TunnelId;
        }

        bool reverse = Orient(in packet, out entry.Orientation);
        if (reverse)
        {
            entry.Source = packet.Destination;
            entry.Destination = packet.Source;
            entry.SourcePort = packet.DestinationPort;
            entry.DestinationPort = packet.SourcePort;
            entry.OuterSource = packet.OuterDestination;
            entry.OuterDestination = packet.OuterSource;
        }
        else
        {
            entry.Source = packet.Source;
            entry.Destination = packet.Destination;
            entry.SourcePort = packet.SourcePort;
            entry.DestinationPort = packet.DestinationPort;
        }
        entry.Id = FlowId(in entry);
        _count++;
        Stats.Active = _count;
        Stats.FlowsStarted++;
        Stats.Packets++;
        Stats.Bytes += packet.IpLength;
        if (reverse)
        {
            entry.PacketsReceived = 1;
            entry.BytesReceived = (ulong)packet.IpLength;
        }
        else
        {
            entry.PacketsSent = 1;
            entry.BytesSent = (ulong)packet.IpLength;
        }
        ApplyTransportState(ref entry, in packet, fromSource: !reverse);
        entry.ActivitySinceRecord = false;
        _sink.OnFlowEvent(FlowEventKind.Start, packet.TimestampNs, in entry);
        MarkReported(ref entry);
    }

    /// <summary>
    /// Once a record carried settled evidence, later records say so (their enforcement is no longer news); so too once a
    /// record carried a plaintext first payload (the plaintext is counted once).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MarkReported(ref FlowEntry entry)
    {
        if (entry.EvidenceSettled) entry.Evidence |= FlowEvidence.Reported;
        if (entry.Tls == false) entry.Evidence |= FlowEvidence.PlaintextReported;
    }

    private static (AlignedArray<FlowEntry> Slots, uint[] Tags, ulong[] Occupied) NewArrays(int capacity) =>
        (new AlignedArray<FlowEntry>(capacity), new uint[capacity], new ulong[Math.Max(1, capacity / 64)]);

    /// <summary>Doubles the table and places every flow again (per flow count, never per packet).</summary>
    private void Grow()
    {
        var oldSlots = _slots;
        var oldTags = _tags;
        var oldOccupied = _occupied;
        (_slots, _tags, _occupied) = NewArrays(oldSlots.Length * 2);
        _mask = _slots.Length - 1;
        for (int word = 0; word < oldOccupied.Length; word++)
        {
            ulong bits = oldOccupied[word];
            while (bits != 0)
            {
                int old = (word << 6) | System.Numerics.BitOperations.TrailingZeroCount(bits);
                bits &= bits - 1;
                uint hash = oldTags[old];
                int slot = (int)(hash & (uint)_mask);
                while (_tags[slot] != 0) slot = (slot + 1) & _mask;
                _slots[slot] = oldSlots[old];
                _tags[slot] = hash;
                _occupied[slot >> 6] |= 1UL << slot;
            }
        }
    }

    /// <summary>Decides the initiator of a new flow from its first packet. True when the packet goes responder to initiator.</summary>
    private bool Orient(in PacketHeaders p, out FlowOrientation orientation)
    {
        switch (p.Protocol)
        {
            case IpProtocol.Tcp:
                {
                    TcpFlags syn = p.TcpFlags & (TcpFlags.Syn | TcpFlags.Ack);
                    if (syn == TcpFlags.Syn) { orientation = FlowOrientation.Observed; return false; }
                    if (syn == (TcpFlags.Syn | TcpFlags.Ack)) { orientation = FlowOrientation.Observed; return true; }
                    return OrientByPorts(in p, out orientation);
                }
            case IpProtocol.Sctp:
                if (p.SctpChunkType == 1) { orientation = FlowOrientation.Observed; return false; }
                if (p.SctpChunkType == 2) { orientation = FlowOrientation.Observed; return true; }
                return OrientByPorts(in p, out orientation);
            case IpProtocol.Udp:
                {
                    // A datagram flow starts with its first packet, unless that packet plainly comes from a declared
                    // server port to a port that is not one (a reply whose request came before the capture).
                    ServerSide side = _hint?.Classify(p.Source, p.SourcePort, p.Destination, p.DestinationPort, p.Protocol) ?? ServerSide.Unknown;
                    orientation = side switch
                    {
                        ServerSide.First => FlowOrientation.Inferred,
                        ServerSide.Later => FlowOrientation.Pending,
                        _ => FlowOrientation.Observed,
                    };
                    return side == ServerSide.First;
                }
            case IpProtocol.Icmp:
                orientation = FlowOrientation.Observed;
                return p.IcmpType == 0;
            case IpProtocol.Icmpv6:
                orientation = FlowOrientation.Observed;
                return p.IcmpType == 129;
            default:
                orientation = FlowOrientation.Observed;
                return false;
        }
    }

    private bool OrientByPorts(in PacketHeaders p, out FlowOrientation orientation)
    {
        ServerSide side = _hint?.Classify(p.Source, p.SourcePort, p.Destination, p.DestinationPort, p.Protocol) ?? ServerSide.Unknown;
        if (side is ServerSide.First or ServerSide.Second)
        {
            orientation = FlowOrientation.Inferred;
            return side == ServerSide.First;
        }
        // Nothing declared: keep the packet's direction, but a well-known port against an ephemeral one is a
        // better guess at the server than arrival order. The record still says "unknown".
        orientation = side == ServerSide.Later ? FlowOrientation.Pending : FlowOrientation.Unknown;
        return WellKnownGuess(p.SourcePort, p.DestinationPort);
    }

    private static bool WellKnownGuess(ushort sourcePort, ushort destinationPort) => sourcePort < 1024 && destinationPort >= 1024;

    /// <summary>
    /// Decides a <see cref="FlowOrientation.Pending"/> flow as <see cref="Orient"/> would have with the cluster's
    /// answer (<paramref name="hint"/>, now whole), on a copy of the entry: turns it round when the provisional
    /// source is the side that serves. A hint that still answers <see cref="ServerSide.Later"/> counts as no answer.
    /// Enrichment calls this for every event of such a flow; with the same cluster it decides the same way each time.
    /// </summary>
    public static void ResolvePending(ref FlowEntry flow, IServerPortHint hint)
    {
        if (flow.Orientation != FlowOrientation.Pending) return;
        ServerSide side = hint.Classify(flow.Source, flow.SourcePort, flow.Destination, flow.DestinationPort, flow.Protocol);
        bool datagram = flow.Protocol == IpProtocol.Udp;
        bool turn;
        if (side is ServerSide.First or ServerSide.Second)
        {
            // A datagram flow keeps its first packet's direction unless that packet came from the serving side.
            flow.Orientation = datagram && side == ServerSide.Second ? FlowOrientation.Observed : FlowOrientation.Inferred;
            turn = side == ServerSide.First;
        }
        else if (datagram)
        {
            flow.Orientation = FlowOrientation.Observed;
            turn = false;
        }
        else
        {
            // The provisional direction already is the well-known-port guess.
            flow.Orientation = FlowOrientation.Unknown;
            turn = false;
        }
        if (!turn) return;
        (flow.Source, flow.Destination) = (flow.Destination, flow.Source);
        (flow.SourcePort, flow.DestinationPort) = (flow.DestinationPort, flow.SourcePort);
        (flow.OuterSource, flow.OuterDestination) = (flow.OuterDestination, flow.OuterSource);
        (flow.PacketsSent, flow.PacketsReceived) = (flow.PacketsReceived, flow.PacketsSent);
        (flow.BytesSent, flow.BytesReceived) = (flow.BytesReceived, flow.BytesSent);
        (flow.FinFromSource, flow.FinFromDestination) = (flow.FinFromDestination, flow.FinFromSource);
        (flow.SourcePayload, flow.DestinationPayload) = (flow.DestinationPayload, flow.SourcePayload);
    }

    private ulong FlowId(in FlowEntry e)
    {
        // Each part is mixed in on its own: folded together first, a time and an address that rise in step (one flow
        // per nanosecond from consecutive addresses) cancel out and every flow would get the same id.
        // The endpoints go in a fixed order, not the flow's: an orientation decided later (FlowTable.ResolvePending)
        // must not change the id, or a replay's ids would depend on how fast its manifests loaded.
        var (a, aPort, b, bPort) = (e.Source, e.SourcePort, e.Destination, e.DestinationPort);
        if (a > b || (a == b && aPort > bPort)) (a, aPort, b, bPort) = (b, bPort, a, aPort);
        ulong x = Mix(_idSeed ^ (ulong)e.FirstSeenNs);
        x = Mix(x ^ a.High ^ a.Low);
        x = Mix(x ^ b.High ^ b.Low);
        x = Mix(x ^ ((ulong)aPort << 24 | (ulong)bPort << 8 | e.Protocol));
        return x;

        static ulong Mix(ulong v)
        {
            v ^= v >> 30; v *= 0xbf58476d1ce4e5b9UL;
            v ^= v >> 27; v *= 0x94d049bb133111ebUL;
            return v ^ (v >> 31);
        }
    }

    private void EvictNear(uint hash)
    {
        int slot = (int)(hash & (uint)_mask);
        int victim = -1;
        long oldest = long.MaxValue;
        for (int i = 0, s = slot; i < _slots.Length && (i < EvictionWindow || victim < 0); i++, s = (s + 1) & _mask)
        {
            ref FlowEntry e = ref _slots[s];
            if (e.Occupied && e.LastSeenNs < oldest)
            {
                oldest = e.LastSeenNs;
                victim = s;
            }
        }
        if (victim < 0) return;
        ref FlowEntry v = ref _slots[victim];
        if (v.EndReason == FlowEndReason.None) v.EndReason = FlowEndReason.Evicted;
        EmitEnd(ref v, _now);
        RemoveAt(victim);
        Stats.Evictions++;
    }

    private void EmitEnd(ref FlowEntry entry, long timeNs)
    {
        Stats.FlowsEnded++;
        _sink.OnFlowEvent(FlowEventKind.End, timeNs, in entry);
    }

    private void RemoveAt(int slot)
    {
        int hole = slot;
        int j = slot;
        while (true)
        {
            j = (j + 1) & _mask;
            uint nextTag = _tags[j];
            if (nextTag == 0) break;
            int home = (int)(nextTag & (uint)_mask);
            // Move the entry back into the hole unless its home lies cyclically in (hole, j].
            bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
            if (!stays)
            {
                _slots[hole] = _slots[j];
                _tags[hole] = nextTag;
                hole = j;
            }
        }
        _slots[hole].Occupied = false;
        _tags[hole] = 0;
        _occupied[hole >> 6] &= ~(1UL << hole);
        _count--;
        Stats.Active = _count;
    }

    private long IdleTimeout(byte protocol) => protocol switch
    {
        IpProtocol.Tcp => _tcpIdleNs,
        IpProtocol.Udp => _udpIdleNs,
        IpProtocol.Sctp => _sctpIdleNs,
        _ => _icmpIdleNs,
    };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void SweepDue()
    {
        long now = _now;
        _nextSweep = now + _sweepNs;
        for (int word = 0; word < _occupied.Length; word++)
        {
            ulong bits = _occupied[word];
            while (bits != 0)
            {
                int bit = System.Numerics.BitOperations.TrailingZeroCount(bits);
                int slot = (word << 6) | bit;
                if (SweepSlot(slot, now) && _slots[slot].Occupied)
                {
                    // The backward shift moved a later entry into this slot: look at it too.
                    continue;
                }
                // Later slots of this word can only have lost entries to earlier holes, never gained any.
                bits = bit == 63 ? 0 : _occupied[word] & (ulong.MaxValue << (bit + 1));
            }
        }
    }

    /// <summary>Ends or updates one flow as time demands. True when the flow was removed.</summary>
    private bool SweepSlot(int slot, long now)
    {
        ref FlowEntry entry = ref _slots[slot];
        if (entry.CloseState == TcpCloseState.Closing)
        {
            if (now - entry.LastSeenNs < _lingerNs) return false;
            EmitEnd(ref entry, entry.LastSeenNs);
            RemoveAt(slot);
            return true;
        }
        long idle = IdleTimeout(entry.Protocol);
        if (now - entry.LastSeenNs >= idle)
        {
            entry.EndReason = FlowEndReason.Idle;
            EmitEnd(ref entry, entry.LastSeenNs + idle);
            RemoveAt(slot);
            return true;
        }
        if (entry.ActivitySinceRecord && now - entry.LastRecordNs >= _updateNs)
        {
            entry.LastRecordNs = now;
            entry.ActivitySinceRecord = false;
            _sink.OnFlowEvent(FlowEventKind.Update, now, in entry);
            MarkReported(ref entry);
        }
        return false;
    }
}
