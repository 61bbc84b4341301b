#!/usr/bin/env bash
# How long a new pod goes unseen: 100 pods wired as a bridge CNI wires them while the published agent runs, each
# sending a datagram every millisecond from the moment its interface is up. Prints, per capture mode, the time from
# the first datagram sent to the first captured (0 means nothing was missed) and, with one socket per interface, the
# time from the interface's creation to its own capture handle being open. The suite's pod-start tests
# (tests/Agent.Tests/EndToEnd/LiveCapture/PodStartTests.cs), run with more pods. Needs root.
#
#   benchmarks/podstart/measure.sh [PODS]      default: 100
set -euo pipefail
cd "$(dirname "$0")/../.."
pods=${1:-100}
scripts/ensure-deps.sh test
dotnet build tests/Agent.Tests -c Release -nologo -v quiet
TRIPLINE_POD_STARTS=$pods dotnet test tests/Agent.Tests -c Release --no-build -nologo \
  --filter "FullyQualifiedName~PodStartTests.Run_NewPodsSendingFromTheirFirstMillisecond" \
  --logger "console;verbosity=detailed" 2>&1 | grep -E "pods, |Passed!|Failed!|  Failed|  Error Message" || true
