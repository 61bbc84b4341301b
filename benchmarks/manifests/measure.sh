#!/usr/bin/env bash
# A large cluster from manifests against the same cluster from the API, in one run: the published agent replays 600
# probe flows against 5,000 and 50,000 pods with 2,000 NetworkPolicies, in every form (one document per object, one
# List as kubectl writes it, JSON, gzipped YAML); the in-process API server serves the same cluster to the agent's
# list-and-sync. Prints wall time and peak RSS of each replay (load, compile and judge), the sync time of the API path,
# and the ratio. The cluster is tests/Agent.Tests/Support/GeneratedCluster.cs.
#
#   benchmarks/manifests/measure.sh [SMALL_PODS] [LARGE_PODS] [POLICIES]      defaults: 5000 50000 2000
set -euo pipefail
cd "$(dirname "$0")/../.."
small=${1:-5000}
large=${2:-50000}
policies=${3:-2000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dotnet build benchmarks/Agent.Benchmarks -c Release -nologo -v quiet >/dev/null
bench() { dotnet benchmarks/Agent.Benchmarks/bin/Release/net10.0/Agent.Benchmarks.dll "$@"; }
scripts/publish.sh "$work/app" >/dev/null
agent="$work/app/tripline"
for pods in "$small" "$large"; do
  bench manifest-gen "$work/$pods" "$pods" "$policies" >/dev/null
  api=$(bench api-sync "$pods" "$policies" | sed -nE 's/.*sync ([0-9.]+) s.*/\1/p')
  echo "== $pods pods, $policies policies: API list-and-sync $api s"
  printf '%-26s %10s %10s %14s\n' form "replay s" "vs API" "peak RSS MiB"
  for form in documents.yaml list.yaml json.json list.yaml.gz; do
    file="$work/$pods/cluster-$form"
    # Best of three: the machine is shared.
    best=""
    for run in 1 2 3; do
      out=$(/usr/bin/time -f "%e %M" "$agent" replay --pcap "$work/$pods/probes.pcap" --manifests "$file" --flow-log /dev/null 2>&1 >/dev/null | tail -n 1)
      if [ -z "$best" ] || awk -v a="${out%% *}" -v b="${best%% *}" 'BEGIN { exit !(a < b) }'; then best=$out; fi
    done
    seconds=${best%% *}
    rss=${best##* }
    printf '%-26s %10s %10s %14s\n' "$form" "$seconds" "$(awk -v s="$seconds" -v a="$api" 'BEGIN { printf "%.2f", s / a }')" "$((rss / 1024))"
  done
done
