#!/usr/bin/env python3
"""flowcap: a synthetic classic-pcap capture with many concurrent flows.

A peer in benchmarks/replay/measure.sh: a capture that was not written by the project's own TrafficGen, and in
which nearly every flow is live at once. Every flow opens near the start of the capture (all SYNs come first),
the packets of all flows are then interleaved round by round, and every flow closes near the end. With the
defaults that is 50,000 concurrent flows (TrafficGen's captures hold a few thousand at a time), which keeps a
flow table at its full size for the whole replay.

    flowcap.py --out FILE [--flows 50000] [--packets 5000000] [--snaplen 128] [--udp-share 0.2] [--seed 1]

The file is little-endian classic pcap (magic 0xa1b2c3d4, microsecond timestamps, linktype 1 Ethernet). Frames are
Ethernet + IPv4 + TCP or UDP, between pods in 10.244.0.0/16 (clients) and ClusterIPs in 10.96.0.0/12 or other
pods (servers). TCP flows are SYN, SYN-ACK, ACK, data both ways, FIN-ACK, FIN-ACK, ACK, with sequence and
acknowledgement numbers that add up; UDP flows alternate request and response. Payloads (100-1400 bytes for TCP)
count in the IP total length and the original length, but only `snaplen` bytes of each frame are captured.
Payload bytes are zero, so the IPv4, TCP and UDP checksums are all correct for the whole original frame and cost
only a few additions each: they are kept as sums over a flow's constant fields plus the words that change.
The same options and seed write the same bytes. The packet count is exact (--packets), and so is the number of
distinct flows (--flows).

Speed: the loop packs one record header and one frame header per packet into a preallocated zeroed chunk
(zero payload comes free) and writes chunks of 8 MiB; per-flow parts (MACs, addresses, ports, checksum sums)
are prepared once per flow. Payload sizes and timestamp gaps come from precomputed random tables.
"""

import argparse
import random
import struct
import sys
import time

CHUNK = 8 << 20                     # bytes written at a time
START_SECONDS = 1_735_689_600       # 2025-01-01T00:00:00Z
GATEWAY_MAC = b"\xee\xee\xee\xee\xee\xee"  # Calico's routed-traffic gateway MAC, as seen from a pod's veth
ETH_IPV4 = b"\x08\x00"
IP_VERSION_TOS = b"\x45\x00"        # IPv4, 20-byte header, TOS 0
IP_DONT_FRAGMENT = 0x4000
TTL = 64
TCP, UDP = 6, 17
TCP_WINDOW = 64240
SYN, FIN, PSH, ACK = 0x02, 0x01, 0x08, 0x10
ETH_IP_TCP = 14 + 20 + 20           # frame bytes before a TCP payload
ETH_IP_UDP = 14 + 20 + 8
MIN_TCP_PACKETS = 7                 # handshake (3) + one data segment + close (3)

# Server ports by protocol; the TCP list is weighted towards the usual suspects.
TCP_PORTS = [80, 80, 443, 443, 443, 8080, 8443, 5432, 3306, 6379, 9090, 9092, 27017, 5672, 9200, 2379, 50051]
UDP_PORTS = [8125, 514, 6831, 4789, 123, 5353, 1812]
CLUSTER_DNS = (10 << 24) | (96 << 16) | 10  # 10.96.0.10

# Record header (little-endian, as written on x86) and frame headers (network order) up to the payload.
RECORD = struct.Struct("<IIII")                     # ts_sec, ts_usec, incl_len, orig_len
TCP_FRAME = struct.Struct(">16sHHHBBH12sIIBBHHH")   # eth + ver/tos | totlen id frag ttl proto csum | addrs+ports |
                                                    # seq ack offset flags window csum urgent
UDP_FRAME = struct.Struct(">16sHHHBBH12sHH")        # eth + ver/tos | totlen id frag ttl proto csum | addrs+ports |
                                                    # length csum


def ip4(a):
    return struct.pack(">I", a)


def words(b):
    """Sum of the big-endian 16-bit words of b (len(b) even)."""
    return sum(struct.unpack(">%dH" % (len(b) // 2), b))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="capture file to write ('-' for standard output)")
    p.add_argument("--flows", type=int, default=50_000, help="distinct flows (default 50000)")
    p.add_argument("--packets", type=int, default=5_000_000, help="packets in all (default 5000000)")
    p.add_argument("--snaplen", type=int, default=128, help="bytes captured per frame (default 128)")
    p.add_argument("--udp-share", type=float, default=0.2, help="share of flows that are UDP (default 0.2)")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    if a.flows < 1:
        p.error("--flows must be at least 1")
    if a.packets < MIN_TCP_PACKETS * a.flows:
        p.error("--packets must be at least %d x --flows (a TCP flow needs %d packets)" % (MIN_TCP_PACKETS, MIN_TCP_PACKETS))
    if not ETH_IP_TCP <= a.snaplen <= 65535:
        p.error("--snaplen must be between %d and 65535" % ETH_IP_TCP)
    if not 0.0 <= a.udp_share <= 1.0:
        p.error("--udp-share must be between 0 and 1")
    return a


def make_flows(rng, n_flows, udp_share):
    """Distinct (proto, client, cport, server, sport) tuples. Client ports are ephemeral (>= 32768) and server
    ports are not, so no flow is another flow seen the other way round."""
    clients = [(10 << 24) | (244 << 16) | (rng.randrange(256) << 8) | rng.randrange(2, 255) for _ in range(4000)]
    pods = [((10 << 24) | (244 << 16) | (rng.randrange(256) << 8) | rng.randrange(2, 255), rng.choice(TCP_PORTS))
            for _ in range(1000)]
    # 10.96.0.0/12: 10.96.0.0 - 10.111.255.255
    services = [((10 << 24) | ((96 + rng.randrange(16)) << 16) | rng.randrange(1, 65535), rng.choice(TCP_PORTS))
                for _ in range(300)]
    udp_servers = [((10 << 24) | (244 << 16) | (rng.randrange(256) << 8) | rng.randrange(2, 255), rng.choice(UDP_PORTS))
                   for _ in range(200)]
    seen = set()
    flows = []
    while len(flows) < n_flows:
        client, cport = rng.choice(clients), rng.randrange(32768, 61000)
        if rng.random() < udp_share:
            proto = UDP
            server, sport = (CLUSTER_DNS, 53) if rng.random() < 0.6 else rng.choice(udp_servers)
        else:
            proto = TCP
            server, sport = rng.choice(services) if rng.random() < 0.65 else rng.choice(pods)
        key = (proto, client, cport, server, sport)
        if key not in seen:
            seen.add(key)
            flows.append(key)
    return flows


def packet_counts(rng, n_flows, n_packets):
    """Per-flow packet counts that add up to n_packets exactly: the mean, +/- a jitter paired between neighbours,
    the remainder spread one each over the first flows."""
    mean, rest = divmod(n_packets, n_flows)
    spread = min(mean - MIN_TCP_PACKETS, mean // 2)
    counts = [mean] * n_flows
    for f in range(0, n_flows - 1, 2):
        d = rng.randint(0, spread)
        counts[f] += d
        counts[f + 1] -= d
    for f in range(rest):
        counts[f] += 1
    rng.shuffle(counts)
    return counts


def flow_static(proto, client, cport, server, sport):
    """What never changes for a flow: frame prefixes and address/port parts both ways, and checksum sums."""
    c, s = ip4(client), ip4(server)
    client_mac = b"\x0a\x58" + c
    eth_c2s = GATEWAY_MAC + client_mac + ETH_IPV4 + IP_VERSION_TOS
    eth_s2c = client_mac + GATEWAY_MAC + ETH_IPV4 + IP_VERSION_TOS
    addr_c2s = c + s + struct.pack(">HH", cport, sport)
    addr_s2c = s + c + struct.pack(">HH", sport, cport)
    addr_words = words(c + s)
    # IPv4 header sum without total length and id (both directions sum the same).
    ip_sum = words(IP_VERSION_TOS) + IP_DONT_FRAGMENT + ((TTL << 8) | proto) + addr_words
    # Pseudo-header (addresses, protocol) + ports, plus the TCP window; length and per-packet words are added later.
    l4_sum = addr_words + proto + cport + sport + (TCP_WINDOW if proto == TCP else 0)
    return proto == TCP, eth_c2s, eth_s2c, addr_c2s, addr_s2c, ip_sum, l4_sum


def write_capture(out, rng, flows, counts, snaplen):
    """Writes the capture; returns (bytes written, original bytes, last timestamp in seconds)."""
    n_flows = len(flows)
    statics = [flow_static(*fl) for fl in flows]
    isn = [(rng.getrandbits(32), rng.getrandbits(32)) for _ in range(n_flows)]
    client_seq = [c for c, _ in isn]   # next sequence number each way
    server_seq = [s for _, s in isn]
    step = [0] * n_flows               # index of each flow's next packet

    # Random tables, indexed by the packet number.
    tcp_sizes = [rng.randint(100, 1400) for _ in range(1 << 16)]
    udp_sizes = [rng.randint(20, 1200) for _ in range(1 << 16)]
    gaps = [rng.randint(1, 10) for _ in range(1 << 16)]
    mask = (1 << 16) - 1

    # Round r holds packet i of a flow with n packets when r == i * rounds // n, so every flow's first packet is
    # in round 0 and its last in the last rounds. Within a round, flows keep the order they were queued in.
    rounds = max(counts)
    due = [[] for _ in range(rounds)]
    order = list(range(n_flows))
    rng.shuffle(order)
    due[0] = order

    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1))
    written, original = 24, 0
    tcp_pack, udp_pack, rec_pack = TCP_FRAME.pack_into, UDP_FRAME.pack_into, RECORD.pack_into
    tcp_cap, udp_cap = snaplen - ETH_IP_TCP, snaplen - ETH_IP_UDP  # payload bytes that fit in the snap length
    buf, pos, limit = bytearray(CHUNK), 0, CHUNK - 16 - snaplen
    sec, usec, k = START_SECONDS, 0, 0

    for r in range(rounds):
        queue = due[r]
        due[r] = None
        for f in queue:
            i = step[f]
            n = counts[f]
            is_tcp, eth_c2s, eth_s2c, addr_c2s, addr_s2c, ip_sum, l4_sum = statics[f]
            usec += gaps[k & mask]
            if usec >= 1_000_000:
                usec -= 1_000_000
                sec += 1
            ip_id = k & 0xFFFF

            if is_tcp:
                cseq, sseq = client_seq[f], server_seq[f]
                size = 0
                if 3 <= i < n - 3:                      # data: request, response, request, ...
                    size = tcp_sizes[k & mask]
                    flags = PSH | ACK
                    if (i - 3) & 1 == 0:
                        to_server, seq, ack = True, cseq, sseq
                        client_seq[f] = (cseq + size) & 0xFFFFFFFF
                    else:
                        to_server, seq, ack = False, sseq, cseq
                        server_seq[f] = (sseq + size) & 0xFFFFFFFF
                elif i == 0:                            # SYN
                    to_server, seq, ack, flags = True, cseq, 0, SYN
                    client_seq[f] = (cseq + 1) & 0xFFFFFFFF
                elif i == 1:                            # SYN-ACK
                    to_server, seq, ack, flags = False, sseq, cseq, SYN | ACK
                    server_seq[f] = (sseq + 1) & 0xFFFFFFFF
                elif i == n - 3:                        # client FIN
                    to_server, seq, ack, flags = True, cseq, sseq, FIN | ACK
                    client_seq[f] = (cseq + 1) & 0xFFFFFFFF
                elif i == n - 2:                        # server FIN
                    to_server, seq, ack, flags = False, sseq, cseq, FIN | ACK
                    server_seq[f] = (sseq + 1) & 0xFFFFFFFF
                else:                                   # handshake ACK (i == 2) and the last ACK
                    to_server, seq, ack, flags = True, cseq, sseq, ACK

                tcp_len = 20 + size
                total = 20 + tcp_len
                s = ip_sum + total + ip_id
                s = (s & 0xFFFF) + (s >> 16)
                ip_csum = ~((s & 0xFFFF) + (s >> 16)) & 0xFFFF
                s = l4_sum + tcp_len + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16) + (ack & 0xFFFF) + 0x5000 + flags
                s = (s & 0xFFFF) + (s >> 16)
                s = (s & 0xFFFF) + (s >> 16)
                l4_csum = ~((s & 0xFFFF) + (s >> 16)) & 0xFFFF
                incl = ETH_IP_TCP + (size if size < tcp_cap else tcp_cap)
                rec_pack(buf, pos, sec, usec, incl, total + 14)
                if to_server:
                    tcp_pack(buf, pos + 16, eth_c2s, total, ip_id, IP_DONT_FRAGMENT, TTL, TCP, ip_csum, addr_c2s,
                             seq, ack, 0x50, flags, TCP_WINDOW, l4_csum, 0)
                else:
                    tcp_pack(buf, pos + 16, eth_s2c, total, ip_id, IP_DONT_FRAGMENT, TTL, TCP, ip_csum, addr_s2c,
                             seq, ack, 0x50, flags, TCP_WINDOW, l4_csum, 0)
            else:                                       # UDP: request, response, request, ...
                size = udp_sizes[k & mask]
                udp_len = 8 + size
                total = 20 + udp_len
                s = ip_sum + total + ip_id
                s = (s & 0xFFFF) + (s >> 16)
                ip_csum = ~((s & 0xFFFF) + (s >> 16)) & 0xFFFF
                s = l4_sum + udp_len + udp_len        # pseudo-header length + the UDP length field
                s = (s & 0xFFFF) + (s >> 16)
                l4_csum = ~((s & 0xFFFF) + (s >> 16)) & 0xFFFF or 0xFFFF
                incl = ETH_IP_UDP + (size if size < udp_cap else udp_cap)
                rec_pack(buf, pos, sec, usec, incl, total + 14)
                if i & 1 == 0:
                    udp_pack(buf, pos + 16, eth_c2s, total, ip_id, IP_DONT_FRAGMENT, TTL, UDP, ip_csum, addr_c2s,
                             udp_len, l4_csum)
                else:
                    udp_pack(buf, pos + 16, eth_s2c, total, ip_id, IP_DONT_FRAGMENT, TTL, UDP, ip_csum, addr_s2c,
                             udp_len, l4_csum)

            original += 14 + total
            pos += 16 + incl
            if pos > limit:
                out.write(memoryview(buf)[:pos])
                written += pos
                buf, pos = bytearray(CHUNK), 0    # a fresh zeroed chunk: payload bytes stay zero
            k += 1
            i += 1
            step[f] = i
            if i < n:
                due[i * rounds // n].append(f)

    out.write(memoryview(buf)[:pos])
    written += pos
    return written, original, sec - START_SECONDS + usec / 1e6


def main(argv):
    args = parse_args(argv)
    began = time.monotonic()
    rng = random.Random(args.seed)
    flows = make_flows(rng, args.flows, args.udp_share)
    counts = packet_counts(rng, args.flows, args.packets)
    udp_flows = sum(1 for fl in flows if fl[0] == UDP)
    if args.out == "-":
        written, original, span = write_capture(sys.stdout.buffer, rng, flows, counts, args.snaplen)
        sys.stdout.buffer.flush()
    else:
        with open(args.out, "wb", buffering=0) as out:
            written, original, span = write_capture(out, rng, flows, counts, args.snaplen)
    print("flowcap: %d packets, %d flows (%d TCP, %d UDP), %d bytes written (%d bytes of original frames), "
          "%.3f s of capture time, %.1f s to write"
          % (args.packets, args.flows, args.flows - udp_flows, udp_flows, written, original,
             span, time.monotonic() - began), file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
