#!/usr/bin/env bash
# What re-judging a flow log costs over reading it: `tripline whatif` (a change to one namespace's policies,
# deploy/demo-proposed) against `tripline flows` over the same log, no filter, `--output json` to /dev/null, in one
# run, alternating, best of REPEATS each. The log is the demo's replay, repeated with fresh flow ids and times, every
# record rewritten with its own source port, to SIZE_MIB. Prints the wall times, the ratio and both peak RSS, then
# the same at twice the size (memory must stay flat in the log's size).
#
#   benchmarks/whatif/measure.sh [SIZE_MIB] [REPEATS]      defaults: 1024 3
set -euo pipefail
cd "$(dirname "$0")/../.."
size=${1:-1024}
repeats=${2:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
scripts/publish.sh "$work/app" >/dev/null
agent="$work/app/tripline"
"$agent" replay --pcap deploy/demo/traffic.pcap --manifests deploy/demo --flow-log "$work/seed.log" >/dev/null
python3 benchmarks/flows/repeat-log.py "$work/seed.log" "$work/big.log" "$size"
run() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -n 1; }
measure() {
  local log=$1 best_flows="" best_whatif="" rss_flows=0 rss_whatif=0
  for _ in $(seq "$repeats"); do
    read -r t m < <(run "$agent" flows --flow-log "$log" --output json)
    if [ -z "$best_flows" ] || awk "BEGIN{exit !($t < $best_flows)}"; then best_flows=$t; fi
    rss_flows=$m
    read -r t m < <(run "$agent" whatif --flow-log "$log" --manifests deploy/demo --apply deploy/demo-proposed --output json)
    if [ -z "$best_whatif" ] || awk "BEGIN{exit !($t < $best_whatif)}"; then best_whatif=$t; fi
    rss_whatif=$m
  done
  local mib; mib=$(( $(stat -c %s "$log") >> 20 ))
  printf '%6d MiB log: flows %6.2f s (peak %4d MiB), whatif %6.2f s (peak %4d MiB), ratio %.2f\n' \
    "$mib" "$best_flows" $((rss_flows / 1024)) "$best_whatif" $((rss_whatif / 1024)) "$(awk "BEGIN{print $best_whatif / $best_flows}")"
}
measure "$work/big.log"
cat "$work/big.log" "$work/big.log" > "$work/double.log"
measure "$work/double.log"
