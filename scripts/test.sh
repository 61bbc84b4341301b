#!/usr/bin/env bash
# The whole test suite: unit, conformance, in-process API server, live capture in network namespaces (root),
# and a real Prometheus. Installs the Debian packages the tests need when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh test
dotnet build Agent.sln -c Release -nologo -v quiet
out=$(mktemp)
set +e
dotnet test tests/Agent.Tests/Agent.Tests.csproj -c Release --no-build -nologo 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
# One closing line that any CI reads: "N passed, N failed".
line=$(grep -E '(Passed|Failed)!? +- +Failed: ' "$out" | tail -n 1 || true)
passed=$(sed -nE 's/.*Passed: +([0-9]+).*/\1/p' <<<"$line")
failed=$(sed -nE 's/.*Failed: +([0-9]+).*/\1/p' <<<"$line")
rm -f "$out"
echo "${passed:-0} passed, ${failed:-0} failed"
exit "$status"
