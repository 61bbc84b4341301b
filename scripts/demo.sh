#!/usr/bin/env bash
# The offline demo: replays deploy/demo/traffic.pcap against the demo cluster's manifests, no cluster and no
# root needed, then asks the flow log which flows the declared policies should have stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh demo
dotnet build src/Agent -c Release -nologo -v quiet >/dev/null
tripline() { dotnet src/Agent/bin/Release/net10.0/tripline.dll "$@"; }
log=$(mktemp -d)/demo-flows.jsonl
tripline replay --pcap deploy/demo/traffic.pcap --manifests deploy/demo --flow-log "$log"
echo
echo "Denied flows in the flow log ($log):"
tripline flows --flow-log "$log" --verdict deny
echo
echo "Plaintext in the meshed namespace bank, where Istio's mutual TLS should be (tripline flows --tls false):"
tripline flows --flow-log "$log" --tls false --namespace bank
echo
echo "Before you apply deploy/demo-proposed: what would it break? (tripline whatif)"
tripline whatif --flow-log "$log" --manifests deploy/demo --apply deploy/demo-proposed
echo
report=$(dirname "$log")/demo-report.html
tripline report --flow-log "$log" --manifests deploy/demo --out "$report" --json "${report%.html}.json"
echo "The audit report (tripline report): $report (open it in a browser; the facts as JSON: ${report%.html}.json)"
