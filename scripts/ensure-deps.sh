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
  want nftables       # a CNI that enforces (or drops) in the enforcement end-to-end tests
  want openssl        # certificates and a TLS client for the agent's HTTPS tests
  want chromium           # headless rendering of the audit report (tests/Agent.Tests/Report/ChromiumTests.cs)
  want fonts-dejavu-core  # the report's fonts, so that screenshots show text
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-deps: missing packages: ${need[*]} (run as root, or: sudo apt-get install -y ${need[*]})" >&2
    exit 1
  fi
  echo "ensure-deps: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # The tests need the prometheus package's binaries, not its service (they start their own servers on free ports):
  # Debian's policy-rc.d convention keeps the packages installed here from starting services, so nothing is started
  # that would then have to be stopped, and no Prometheus of the machine's own is ever touched.
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  status=0
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || status=$?
  if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
  if [ "$status" -ne 0 ]; then echo "ensure-deps: apt-get install failed ($status)" >&2; exit "$status"; fi
fi
