#!/usr/bin/env bash
# Whole-process replay against its peers on the same file, timed in the same run (hyperfine): tcpdump reading the
# capture (-w /dev/null), and the C floor (benchmarks/replay/cloop.c: mmap, parse, flow hash, nothing else).
#
#   benchmarks/replay/measure.sh                      two captures from different generators, 5,000,000 packets each:
#                                                     tools/TrafficGen's (demo cluster, 50,000 flows, at most ~4,000
#                                                     live at once) and benchmarks/replay/flowcap.py's (50,000 flows,
#                                                     all live at once)
#   benchmarks/replay/measure.sh --pcap FILE [...]    the given captures instead (classic pcap for the C floor)
#
# Manifests: deploy/demo for TrafficGen's capture (its flows are the demo's pods); one Namespace for any other, as a
# user replaying a foreign capture would have. RUNS sets hyperfine's runs (default 10). Prints, per capture, each
# command's mean and its ratio to tcpdump and to the C floor, and the summary of one replay (GC counts).
set -euo pipefail
cd "$(dirname "$0")/../.."
captures=()
while [ $# -gt 0 ]; do
  case "$1" in
    --pcap) captures+=("$(realpath "$2")"); shift 2 ;;
    *) echo "usage: $0 [--pcap FILE]..." >&2; exit 2 ;;
  esac
done
for pkg in tcpdump hyperfine gcc python3; do
  dpkg -s "$pkg" >/dev/null 2>&1 || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null; }
done
work=$(mktemp -d /tmp/tripline-replay-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The shipped build: the same Native AOT publish that the container image runs.
scripts/publish.sh "$work/bin" >/dev/null
tripline="$work/bin/tripline"
gcc -O2 -o "$work/cloop" benchmarks/replay/cloop.c
mkdir -p "$work/empty" "$work/ns"
printf 'apiVersion: v1\nkind: Namespace\nmetadata: { name: default }\n' > "$work/ns/ns.yaml"

declare -A manifests_of=()
if [ ${#captures[@]} -eq 0 ]; then
  dotnet build tools/TrafficGen -c Release -nologo -v quiet >/dev/null
  dotnet tools/TrafficGen/bin/Release/net10.0/tripline-trafficgen.dll --manifests deploy/demo --flows 50000 --packets-per-flow 100 \
    --snaplen 128 --seed 1 --out "$work/trafficgen.pcap" >/dev/null
  python3 benchmarks/replay/flowcap.py --out "$work/flowcap.pcap" --flows 50000 --packets 5000000 --snaplen 128 --seed 1
  captures=("$work/trafficgen.pcap" "$work/flowcap.pcap")
  manifests_of["$work/trafficgen.pcap"]=deploy/demo
fi

for capture in "${captures[@]}"; do
  manifests=${manifests_of["$capture"]:-$work/ns}
  echo "== $(basename "$capture"): $(stat -c %s "$capture") bytes; manifests $manifests"
  "$work/cloop" "$capture"
  # One run outside hyperfine shows the summary: packets, flows, GC collections over the long replay.
  "$tripline" replay --pcap "$capture" --manifests "$manifests" --flow-log "$work/flows.jsonl" | grep -E 'packets|flows  |memory'
  echo "flow log: $(wc -l < "$work/flows.jsonl") records, $(stat -c %s "$work/flows.jsonl") bytes"
  hyperfine -N --warmup 2 --runs "${RUNS:-10}" --export-json "$work/times.json" --style none \
    -n "tcpdump -r FILE -w /dev/null" "tcpdump -r $capture -w /dev/null" \
    -n "C floor (mmap, parse, flow hash)" "$work/cloop $capture" \
    -n "tripline replay, flow log to a file" "$tripline replay --pcap $capture --manifests $manifests --flow-log $work/flows.jsonl" \
    -n "tripline replay, no flow log" "$tripline replay --pcap $capture --manifests $manifests" \
    -n "tripline replay, empty manifest directory" "$tripline replay --pcap $capture --manifests $work/empty" >/dev/null
  python3 - "$work/times.json" <<'EOF'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
tcpdump, floor = results[0]["mean"], results[1]["mean"]
print("| command | mean | user | system | vs tcpdump | vs C floor |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for r in results:
    print(f"| {r['command']} | {r['mean'] * 1000:.0f} ms ± {r['stddev'] * 1000:.0f} | {r['user'] * 1000:.0f} ms | {r['system'] * 1000:.0f} ms "
          f"| {r['mean'] / tcpdump:.2f} | {r['mean'] / floor:.2f} |")
EOF
done
