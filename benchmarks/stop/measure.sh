#!/usr/bin/env bash
# Stops the published agent many times under traffic and prints what each stop took and what each crash cost:
# the suite's stop tests (tests/Agent.Tests/EndToEnd/Stop), run with more stops. The agent runs as a cluster runs
# it: state from a list/watch API server, live capture on the veths of a bridge with pods in network namespaces,
# short connections one after another and one held open. Needs root (network namespaces, capture).
#
#   benchmarks/stop/measure.sh [SIGTERMS] [SIGKILLS]      defaults: 50 and 20
set -euo pipefail
cd "$(dirname "$0")/../.."
terms=${1:-50}
kills=${2:-20}
scripts/ensure-deps.sh test
dotnet build tests/Agent.Tests -c Release -nologo -v quiet
TRIPLINE_STOP_SIGTERMS=$terms TRIPLINE_STOP_SIGKILLS=$kills \
  dotnet test tests/Agent.Tests -c Release --no-build -nologo --filter "FullyQualifiedName~StopUnderTrafficTests" \
  --logger "console;verbosity=detailed" 2>&1 | grep -E "^\s*(sigterm|sigkill|stop time|over [0-9]+ SIGKILLs|Passed!|Failed!|  Failed|  Error Message)" || true
