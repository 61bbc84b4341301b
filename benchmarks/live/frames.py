# Writes a classic pcap of small UDP and TCP frames between 4096 flows of a /16 test range (198.18.0.0/15),
# deterministic (seeded), for tcpreplay onto a veth. Usage: frames.py OUT.pcap PACKETS
import random, struct, sys

out, count = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)

def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF); s += s >> 16
    return ~s & 0xFFFF

flows = []
for i in range(4096):
    src = bytes([198, 18, rng.randrange(256), rng.randrange(1, 255)])
    dst = bytes([198, 19, rng.randrange(256), rng.randrange(1, 255)])
    flows.append((src, dst, rng.randrange(1024, 65535), rng.choice([53, 80, 443, 8080, 5432]), rng.random() < 0.5))

frames = []
for src, dst, sport, dport, tcp in flows:
    if tcp:
        l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x10, 65535, 0, 0) + b"\0" * 6
        proto = 6
    else:
        l4 = struct.pack("!HHHH", sport, dport, 8 + 18, 0) + b"\0" * 18
        proto = 17
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0x4000, 64, proto, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    frames.append(b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + b"\x08\x00" + ip + l4)

with open(out, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for n in range(count):
        frame = frames[rng.randrange(len(frames))]
        f.write(struct.pack("<IIII", 1_700_000_000 + n // 1_000_000, n % 1_000_000, len(frame), len(frame)))
        f.write(frame)
