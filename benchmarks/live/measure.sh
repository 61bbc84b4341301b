#!/usr/bin/env bash
# Live capture at the rate this machine can offer: tcpreplay --topspeed of a generated capture into a veth whose
# far end sits in a network namespace, first while `tripline run` captures on the veth, then while
# `tcpdump -w /dev/null -s 128` does. Reports packets offered, captured and dropped by the kernel, CPU seconds per
# million packets (utime+stime of the capturing process from /proc/PID/stat) and resident memory.
# Run as root from the repository root: benchmarks/live/measure.sh [PACKETS] [LOOPS] [REPEATS]
# Defaults: 1,000,000 frames sent 20 times (20 million packets a run: tcpdump uses about 1.3 CPU s, so one clock tick
# is under 1 percent), 5 repeats, each repeat alternating the agent with its flow log to /dev/null, tcpdump, and the
# agent with its flow log to a real file. Prints every run, then the median ratio and its spread.
# Holds /tmp/tripline-build.lock while measuring, so no build competes for the two cores.
set -euo pipefail
PACKETS=${1:-1000000}
LOOPS=${2:-20}
REPEATS=${3:-5}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/tripline-live-bench.XXXXXX)
NODE=tlbench-node-$$
POD=tlbench-pod-$$
VETH=calibench0

for tool in tcpreplay tcpdump python3 ip; do
  command -v $tool >/dev/null || { apt-get install -y tcpreplay tcpdump >/dev/null; break; }
done

cleanup() {
  [ -n "${AGENT:-}" ] && kill "$AGENT" 2>/dev/null || true
  ip netns del "$POD" 2>/dev/null || true
  ip netns del "$NODE" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# The shipped build: the same Native AOT publish that the container image runs. AGENT_DIR=DIR measures an
# executable published before (DIR/tripline), to compare two builds under the same conditions.
if [ -n "${AGENT_DIR:-}" ]; then
  mkdir -p "$WORK/agent" && cp "$AGENT_DIR/tripline" "$WORK/agent/"
else
  flock /tmp/tripline-build.lock "$ROOT/scripts/publish.sh" "$WORK/agent" >"$WORK/build.log" 2>&1 || { tail -20 "$WORK/build.log"; exit 1; }
fi
python3 "$ROOT/benchmarks/live/frames.py" "$WORK/frames.pcap" "$PACKETS"

ip netns add "$NODE"; ip netns add "$POD"
ip -n "$NODE" link set lo up
ip -n "$NODE" link add "$VETH" type veth peer name eth0 netns "$POD"
ip -n "$NODE" link set "$VETH" up
ip -n "$POD" link set eth0 up
cat > "$WORK/cluster.yaml" <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: bench}
YAML

# utime+stime in ticks; the comm field may hold spaces, so count fields after its closing parenthesis.
cpu() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
thread() { grep -l "^$2$" /proc/$1/task/*/comm | head -1 | xargs dirname | xargs basename; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
ticks=$(getconf CLK_TCK)

replay() { ip netns exec "$POD" tcpreplay --topspeed --loop="$LOOPS" -i eth0 "$WORK/frames.pcap" 2>&1 | awk '/Actual:/ {print $2} /Rated:/ {print $6}' | paste -sd' '; }
# One unmeasured pass first, for both: the agent runs for days, and what a node pays is its steady state, not the
# first second in which the runtime compiles the packet path and the flow table grows to the traffic's flows.
# Prints the packets it sent, which the capture counts below leave out.
warm_up() { ip netns exec "$POD" tcpreplay --topspeed --loop=1 -i eth0 "$WORK/frames.pcap" 2>&1 | awk '/Actual:/ {print $2}'; sleep 1; }

exec 9>/tmp/tripline-build.lock
flock 9


# One run of the agent with its flow log to $1: prints a line describing it, sets CPU_SECONDS and CAPTURED.
measure_agent() {
  local log=$1
  rm -f "$WORK/flows.jsonl"
  ip netns exec "$NODE" "$WORK/agent/tripline" run --manifests "$WORK/cluster.yaml" --flow-log "$log" \
    --listen 127.0.0.1:0 --node bench --interfaces 'cali*' >"$WORK/agent.log" 2>&1 &
  AGENT=$!
  for _ in $(seq 100); do grep -q "capture ready" "$WORK/agent.log" && break; sleep 0.1; done
  if ! kill -0 "$AGENT" 2>/dev/null || ! grep -q "capture ready" "$WORK/agent.log"; then
    echo "the agent did not start capturing:" >&2; cat "$WORK/agent.log" >&2; exit 1
  fi
  sleep 1
  local warm source flows before source_before flows_before offered rate after source_after flows_after agent_rss line captured dropped agent_cpu
  warm=$(warm_up)
  source=$(thread $AGENT tripline-source)
  flows=$(thread $AGENT tripline-flows)
  before=$(cpu $AGENT); source_before=$(cpu $AGENT/task/$source); flows_before=$(cpu $AGENT/task/$flows)
  read -r offered rate <<<"$(replay)"
  sleep 1
  after=$(cpu $AGENT); source_after=$(cpu $AGENT/task/$source); flows_after=$(cpu $AGENT/task/$flows)
  agent_rss=$(rss $AGENT)
  kill -TERM $AGENT; wait $AGENT || true
  AGENT=
  line=$(grep "released $VETH" "$WORK/agent.log")
  captured=$(( $(sed -E 's/.*\(([0-9]+) packets read.*/\1/' <<<"$line") - warm ))
  dropped=$(sed -E 's/.* ([0-9]+) dropped by the kernel.*/\1/' <<<"$line")
  agent_cpu=$(awk -v a="$before" -v b="$after" -v t="$ticks" 'BEGIN {printf "%.2f", (b - a) / t}')
  echo "agent (flow log $log): offered $offered ($rate pps), captured $captured, kernel dropped $dropped, CPU ${agent_cpu}s," \
    "$(awk -v c="$agent_cpu" -v n="$captured" 'BEGIN {printf "%.4f", c / n * 1e6}') CPU s per million packets, RSS $((agent_rss / 1024)) MiB;" \
    "capture thread $(awk -v a="$source_before" -v b="$source_after" -v t="$ticks" -v n="$captured" 'BEGIN {printf "%.4f", (b - a) / t / n * 1e6}')," \
    "flow-table thread $(awk -v a="$flows_before" -v b="$flows_after" -v t="$ticks" -v n="$captured" 'BEGIN {printf "%.4f", (b - a) / t / n * 1e6}') CPU s per million packets"
  CPU_SECONDS=$agent_cpu
  CAPTURED=$captured
}

# One run of tcpdump: prints a line describing it, sets CPU_SECONDS and CAPTURED.
measure_tcpdump() {
  ip netns exec "$NODE" tcpdump -i "$VETH" -w /dev/null -s 128 >"$WORK/tcpdump.log" 2>&1 &
  TCPDUMP=$!
  for _ in $(seq 50); do grep -q "listening on" "$WORK/tcpdump.log" && break; sleep 0.1; done
  sleep 1
  local warm before offered rate after dump_rss captured dropped dump_cpu
  warm=$(warm_up)
  before=$(cpu $TCPDUMP)
  read -r offered rate <<<"$(replay)"
  sleep 1
  after=$(cpu $TCPDUMP)
  dump_rss=$(rss $TCPDUMP)
  kill -INT $TCPDUMP; wait $TCPDUMP || true
  captured=$(( $(awk '/packets captured/ {print $1}' "$WORK/tcpdump.log") - warm ))
  dropped=$(awk '/dropped by kernel/ {print $1}' "$WORK/tcpdump.log")
  dump_cpu=$(awk -v a="$before" -v b="$after" -v t="$ticks" 'BEGIN {printf "%.2f", (b - a) / t}')
  echo "tcpdump: offered $offered ($rate pps), captured $captured, kernel dropped $dropped, CPU ${dump_cpu}s," \
    "$(awk -v c="$dump_cpu" -v n="$captured" 'BEGIN {printf "%.4f", c / n * 1e6}') CPU s per million packets, RSS $((dump_rss / 1024)) MiB"
  CPU_SECONDS=$dump_cpu
  CAPTURED=$captured
}

# CPU seconds per million packets, with enough digits for a ratio.
per_packet() { awk -v c="$1" -v n="$2" 'BEGIN {printf "%.6f", c / n * 1e6}'; }
null_ratios=()
file_ratios=()
for repeat in $(seq "$REPEATS"); do
  echo "-- repeat $repeat of $REPEATS"
  measure_agent /dev/null
  a=$(per_packet "$CPU_SECONDS" "$CAPTURED")
  measure_tcpdump
  d=$(per_packet "$CPU_SECONDS" "$CAPTURED")
  measure_agent "$WORK/flows.jsonl"
  f=$(per_packet "$CPU_SECONDS" "$CAPTURED")
  null_ratios+=("$(awk -v a="$a" -v d="$d" 'BEGIN {printf "%.3f", a / d}')")
  file_ratios+=("$(awk -v a="$f" -v d="$d" 'BEGIN {printf "%.3f", a / d}')")
  echo "ratio (agent / tcpdump CPU per packet): flow log to /dev/null ${null_ratios[-1]}, to a file ${file_ratios[-1]}"
done
summary() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {printf "median %.2f, min %.2f, max %.2f over %d runs", v[int((NR + 1) / 2)], v[1], v[NR], NR}'; }
echo "agent / tcpdump, flow log to /dev/null: $(summary "${null_ratios[@]}")"
echo "agent / tcpdump, flow log to a file:    $(summary "${file_ratios[@]}")"
