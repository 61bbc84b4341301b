#!/usr/bin/env bash
# Live capture's CPU per packet at several offered rates, for one or more builds of the agent and tcpdump in the same
# run: what a node pays per packet depends on how fast packets come, because wake-ups cost by the second and packets
# by the packet. tcpreplay sends a generated capture (benchmarks/live/frames.py) into a veth whose far end sits in a
# network namespace, at each rate in turn (--pps=N, or topspeed), while one capturer at a time reads the veth.
# Run as root from the repository root:
#   benchmarks/live/rates.sh [-r "100000 200000 topspeed"] [-l LOOPS] LABEL=DIR ...
# DIR holds a published executable (DIR/tripline, scripts/publish.sh DIR); each rate runs tcpdump first and last, and
# every build between. Prints one line per run: CPU ticks (10 ms) over LOOPS x 1,000,000 packets, CPU s per million
# packets, and the agent's capture and flow-table threads.
set -euo pipefail
RATES="100000 200000 topspeed"
LOOPS=3
while getopts "r:l:" opt; do
  case $opt in
    r) RATES=$OPTARG ;;
    l) LOOPS=$OPTARG ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: $0 [-r RATES] [-l LOOPS] LABEL=DIR ..." >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/tripline-live-rates.XXXXXX)
NODE=tlrates-node-$$
POD=tlrates-pod-$$
VETH=calirates0

for tool in tcpreplay tcpdump; do
  command -v $tool >/dev/null || { apt-get install -y tcpreplay tcpdump >/dev/null; break; }
done
cleanup() {
  [ -n "${CAPTURER:-}" ] && kill "$CAPTURER" 2>/dev/null || true
  ip netns del "$POD" 2>/dev/null || true
  ip netns del "$NODE" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

python3 "$ROOT/benchmarks/live/frames.py" "$WORK/frames.pcap" 1000000
ip netns add "$NODE"; ip netns add "$POD"
ip -n "$NODE" link set lo up
ip -n "$NODE" link add "$VETH" type veth peer name eth0 netns "$POD"
ip -n "$NODE" link set "$VETH" up
ip -n "$POD" link set eth0 up
printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: bench}\n' >"$WORK/cluster.yaml"

cpu() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
thread_cpu() { local t; t=$(grep -l "^$2$" /proc/$1/task/*/comm | head -1 | xargs dirname); sed 's/.*) //' "$t/stat" | awk '{print $12 + $13}'; }
ticks=$(getconf CLK_TCK)

exec 9>/tmp/tripline-build.lock
flock 9

run() {
  local rate=$1 label=$2 dir=$3 option before after source flows offered extra=""
  if [ "$rate" = topspeed ]; then option=--topspeed; else option=--pps=$rate; fi
  if [ "$dir" = tcpdump ]; then
    ip netns exec "$NODE" tcpdump -i "$VETH" -w /dev/null -s 128 >"$WORK/capturer.log" 2>&1 &
    CAPTURER=$!
    for _ in $(seq 50); do grep -q "listening on" "$WORK/capturer.log" && break; sleep 0.1; done
  else
    ip netns exec "$NODE" "$dir/tripline" run --manifests "$WORK/cluster.yaml" --flow-log /dev/null \
      --listen 127.0.0.1:0 --node bench --interfaces 'cali*' >"$WORK/capturer.log" 2>&1 &
    CAPTURER=$!
    for _ in $(seq 100); do grep -q "capture ready" "$WORK/capturer.log" && break; sleep 0.1; done
    grep -q "capture ready" "$WORK/capturer.log" || { echo "$label did not start capturing:" >&2; cat "$WORK/capturer.log" >&2; exit 1; }
  fi
  sleep 1
  # One unmeasured pass: the steady state is measured, not the first second.
  ip netns exec "$POD" tcpreplay --topspeed --loop=1 -i eth0 "$WORK/frames.pcap" >/dev/null 2>&1
  sleep 1
  before=$(cpu $CAPTURER)
  if [ "$dir" != tcpdump ]; then source=$(thread_cpu $CAPTURER tripline-source); flows=$(thread_cpu $CAPTURER tripline-flows); fi
  offered=$(ip netns exec "$POD" tcpreplay $option --loop="$LOOPS" -i eth0 "$WORK/frames.pcap" 2>&1 | awk '/Rated:/ {printf "%d", $6}')
  sleep 1
  after=$(cpu $CAPTURER)
  if [ "$dir" != tcpdump ]; then
    extra="capture thread $(( $(thread_cpu $CAPTURER tripline-source) - source )), flow-table thread $(( $(thread_cpu $CAPTURER tripline-flows) - flows ))"
    kill -TERM $CAPTURER
  else
    kill -INT $CAPTURER
  fi
  wait $CAPTURER || true
  CAPTURER=
  printf '%-9s %-10s %7s pps  %4d ticks  %.4f CPU s per million  %s\n' "$rate" "$label" "$offered" $((after - before)) \
    "$(awk -v t=$((after - before)) -v k="$ticks" -v l="$LOOPS" 'BEGIN {print t / k / l}')" "$extra"
}

for rate in $RATES; do
  run "$rate" tcpdump tcpdump
  for build in "$@"; do run "$rate" "${build%%=*}" "${build#*=}"; done
  run "$rate" tcpdump tcpdump
done
