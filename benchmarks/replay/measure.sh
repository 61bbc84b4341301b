#!/usr/bin/env bash
# Whole-process replay against tcpdump on the same file, timed in the same run (hyperfine).
# Usage: benchmarks/replay/measure.sh [FLOWS] [PACKETS_PER_FLOW]   (defaults: 50000 flows x 100 packets = 5,000,000)
set -euo pipefail
cd "$(dirname "$0")/../.."
flows=${1:-50000}
per_flow=${2:-100}
for pkg in tcpdump hyperfine; do
  dpkg -s "$pkg" >/dev/null 2>&1 || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null; }
done
work=$(mktemp -d /tmp/tripline-replay-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The shipped build: the same Native AOT publish that the container image runs.
scripts/publish.sh "$work/bin" >/dev/null
dotnet build tools/TrafficGen -c Release -nologo -v quiet >/dev/null
capture="$work/bench.pcap"
dotnet tools/TrafficGen/bin/Release/net10.0/tripline-trafficgen.dll --manifests deploy/demo --flows "$flows" --packets-per-flow "$per_flow" \
  --snaplen 128 --seed 1 --out "$capture" >/dev/null
echo "capture: $(stat -c %s "$capture") bytes"
tripline="$work/bin/tripline"
# One run outside hyperfine shows the summary: packets, flows, GC collections over the long replay.
$tripline replay --pcap "$capture" --manifests deploy/demo --flow-log "$work/flows.jsonl"
echo "flow log: $(wc -l < "$work/flows.jsonl") records"
mkdir -p "$work/empty"
# The bar first, then variants that show where the time goes: no flow log, no cluster, start-up alone.
hyperfine -N --warmup 2 --runs "${RUNS:-10}" --export-markdown "$work/table.md" \
  -n "tcpdump -r FILE -w /dev/null" "tcpdump -r $capture -w /dev/null" \
  -n "tripline replay (flow log written)" "$tripline replay --pcap $capture --manifests deploy/demo --flow-log $work/flows.jsonl" \
  -n "tripline replay (no flow log)" "$tripline replay --pcap $capture --manifests deploy/demo" \
  -n "tripline replay (empty manifest directory)" "$tripline replay --pcap $capture --manifests $work/empty" \
  -n "tripline replay of the demo capture (start-up)" "$tripline replay --pcap deploy/demo/traffic.pcap --manifests deploy/demo"
cat "$work/table.md"
