#!/usr/bin/env bash
# What the audit report of a large log costs, and what it weighs: `tripline report` against `tripline flows --output
# json` over the same log, in one run, alternating, best of REPEATS each, the published executable. The log is a
# synthetic day of a 50-node cluster's agents (benchmarks/report/generate-cluster.py: 800 pods in 400 workloads of 20
# namespaces, start and end records) of SIZE_MIB, with the cluster's manifests. Prints the wall times, the ratio, both
# peak RSS, the sizes of the HTML and the JSON, and how long headless Chromium takes to load the page and lay it out
# (--dump-dom), then the same at twice the size (memory must stay flat in the log's size).
#
#   benchmarks/report/measure.sh [SIZE_MIB] [REPEATS]      defaults: 1024 3
#   APP=DIR reuses a published agent (DIR/tripline) instead of publishing one.
set -euo pipefail
cd "$(dirname "$0")/../.."
size=${1:-1024}
repeats=${2:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "${APP:-}" ]; then agent="$APP/tripline"; else scripts/publish.sh "$work/app" >/dev/null; agent="$work/app/tripline"; fi
python3 benchmarks/report/generate-cluster.py "$work/cluster" "$work/big.log" "$size"
run() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -n 1; }
measure() {
  local log=$1 best_flows="" best_report="" rss_flows=0 rss_report=0
  for _ in $(seq "$repeats"); do
    read -r t m < <(run "$agent" flows --flow-log "$log" --output json)
    if [ -z "$best_flows" ] || awk "BEGIN{exit !($t < $best_flows)}"; then best_flows=$t; fi
    rss_flows=$m
    read -r t m < <(run "$agent" report --flow-log "$log" --manifests "$work/cluster" --out "$work/report.html" --json "$work/report.json")
    if [ -z "$best_report" ] || awk "BEGIN{exit !($t < $best_report)}"; then best_report=$t; fi
    rss_report=$m
  done
  local mib; mib=$(( $(stat -c %s "$log") >> 20 ))
  printf '%6d MiB log: flows %6.2f s (peak %4d MiB), report %6.2f s (peak %4d MiB), ratio %.2f; HTML %d KiB, JSON %d KiB\n' \
    "$mib" "$best_flows" $((rss_flows / 1024)) "$best_report" $((rss_report / 1024)) "$(awk "BEGIN{print $best_report / $best_flows}")" \
    $(( $(stat -c %s "$work/report.html") >> 10 )) $(( $(stat -c %s "$work/report.json") >> 10 ))
  if command -v chromium >/dev/null; then
    local profile; profile=$(mktemp -d)
    read -r t _ < <(run chromium --headless --no-sandbox --disable-gpu --user-data-dir="$profile" --dump-dom "file://$work/report.html")
    rm -rf "$profile"
    printf '             headless chromium loads and lays out the report in %.2f s (the whole process, start included)\n' "$t"
  fi
}
measure "$work/big.log"
cat "$work/big.log" "$work/big.log" > "$work/double.log"
measure "$work/double.log"
