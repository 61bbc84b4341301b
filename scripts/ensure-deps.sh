#!/usr/bin/env bash
# Installs what Tripline's demo and tests need on a fresh Debian machine, and nothing that is already there.
# Usage: scripts/ensure-deps.sh [demo|test]
set -euo pipefail
need=()
want() { dpkg -s "$1" >/dev/null 2>&1 || need+=("$1"); }

if ! command -v dotnet >/dev/null 2>&1; then
  echo "ensure-deps: the .NET 10 SDK (dotnet) is required and is not on PATH" >&2
  exit 1
fi
if [ "${1:-test}" = test ]; then
  want libpcap0.8     # live capture (SharpPcap loads it)
  want iproute2       # ip netns for the live-capture end-to-end tests
  want prometheus     # promtool and a real Prometheus for the metrics tests
  want tcpdump        # reference captures in tests
  want python3        # socket peers inside the test namespaces
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-deps: missing packages: ${need[*]} (run as root, or: sudo apt-get install -y ${need[*]})" >&2
    exit 1
  fi
  echo "ensure-deps: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The prometheus package starts a server on :9090 (the agent's default port); tests start their own.
  if [[ " ${need[*]} " == *" prometheus "* ]]; then
    systemctl stop prometheus >/dev/null 2>&1 || service prometheus stop >/dev/null 2>&1 || pkill -x prometheus || true
  fi
fi
