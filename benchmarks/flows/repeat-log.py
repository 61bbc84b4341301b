# Repeats a flow log (the demo's replay) to about SIZE_MIB: every round with fresh flow ids and every record with its
# own source port, so that nothing downstream can cache a whole record. Used by benchmarks/whatif and
# benchmarks/recommend.
# Usage: python3 repeat-log.py SEED_LOG OUT_LOG SIZE_MIB
import json, sys
seed = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
target = int(sys.argv[3]) << 20
with open(sys.argv[2], "w") as out:
    written, round = 0, 0
    while written < target:
        for r in seed:
            r = dict(r)
            r["flow_id"] = "%016x" % (int(r["flow_id"], 16) ^ (round * 0x9E3779B97F4A7C15 & (2**64 - 1)))
            if "port" in r.get("src", {}):
                r["src"] = dict(r["src"], port=20000 + (round * 131 + written) % 40000)
            line = json.dumps(r, separators=(",", ":")) + "\n"
            out.write(line)
            written += len(line)
        round += 1
