#!/usr/bin/env bash
# What recommending from a flow log costs over reading it: `tripline recommend --namespace shop` (the recommendation,
# its check by whatif's engine, tightness) against `tripline flows --output json` over the same log, in one run,
# alternating, best of REPEATS each, the published executable. The log is the demo's replay, repeated with fresh flow
# ids and times, every record with its own source port, to SIZE_MIB (the generator of benchmarks/whatif/measure.sh).
# Prints the wall times, the ratio and both peak RSS, then the same at twice the size (memory must stay flat in the
# log's size), and checks that the recommendation from the big log is the one from the demo's (same bytes).
#
#   benchmarks/recommend/measure.sh [SIZE_MIB] [REPEATS]      defaults: 1024 3
#   APP=DIR reuses a published agent (DIR/tripline) instead of publishing one.
set -euo pipefail
cd "$(dirname "$0")/../.."
size=${1:-1024}
repeats=${2:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "${APP:-}" ]; then agent="$APP/tripline"; else scripts/publish.sh "$work/app" >/dev/null; agent="$work/app/tripline"; fi
"$agent" replay --pcap deploy/demo/traffic.pcap --manifests deploy/demo --flow-log "$work/seed.log" >/dev/null
python3 benchmarks/flows/repeat-log.py "$work/seed.log" "$work/big.log" "$size"
run() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -n 1; }
measure() {
  local log=$1 best_flows="" best_recommend="" rss_flows=0 rss_recommend=0
  for _ in $(seq "$repeats"); do
    read -r t m < <(run "$agent" flows --flow-log "$log" --output json)
    if [ -z "$best_flows" ] || awk "BEGIN{exit !($t < $best_flows)}"; then best_flows=$t; fi
    rss_flows=$m
    read -r t m < <(run "$agent" recommend --flow-log "$log" --manifests deploy/demo --namespace shop)
    if [ -z "$best_recommend" ] || awk "BEGIN{exit !($t < $best_recommend)}"; then best_recommend=$t; fi
    rss_recommend=$m
  done
  local mib; mib=$(( $(stat -c %s "$log") >> 20 ))
  printf '%6d MiB log: flows %6.2f s (peak %4d MiB), recommend %6.2f s (peak %4d MiB), ratio %.2f\n' \
    "$mib" "$best_flows" $((rss_flows / 1024)) "$best_recommend" $((rss_recommend / 1024)) "$(awk "BEGIN{print $best_recommend / $best_flows}")"
}
measure "$work/big.log"
"$agent" recommend --flow-log "$work/seed.log" --manifests deploy/demo --namespace shop > "$work/seed.yaml" 2>/dev/null
"$agent" recommend --flow-log "$work/big.log" --manifests deploy/demo --namespace shop > "$work/big.yaml" 2>/dev/null
# Only the annotations that count flows and name the period may differ: the rules must not.
if diff <(grep -v 'tripline.dev/\(flows\|period\)' "$work/seed.yaml") <(grep -v 'tripline.dev/\(flows\|period\)' "$work/big.yaml") >/dev/null; then
  echo "the big log's recommendation is the demo's (rules byte for byte)"
else
  echo "the big log's recommendation differs from the demo's" >&2; exit 1
fi
cat "$work/big.log" "$work/big.log" > "$work/double.log"
measure "$work/double.log"
