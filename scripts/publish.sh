#!/usr/bin/env bash
# The one way the agent is published: the Dockerfile runs this script, and so does the test that proves the
# image's entry point works (tests/Agent.Tests/Deploy/PublishTests.cs), so the two cannot drift apart.
#
#   scripts/publish.sh restore       restore only (the Dockerfile's cached layer: project files, no sources)
#   scripts/publish.sh OUTPUT_DIR    restore (a no-op when already done) and publish into OUTPUT_DIR
#
# Self-contained, so that the native `tripline` executable loads the runtime from its own directory: the image
# gives that executable file capabilities, and a capability-raised process should not look up a shared runtime
# through DOTNET_ROOT or install-location files. ReadyToRun, so that start-up does not wait for the JIT.
# No trimming: KubernetesClient, YamlDotNet and ASP.NET Core bind by reflection, and the trimmer's warnings are
# errors in this repository.
# TRIPLINE_RID picks the target (linux-x64, linux-arm64); by default the machine's own.
set -euo pipefail
cd "$(dirname "$0")/.."

rid=${TRIPLINE_RID:-}
if [ -z "$rid" ]; then
  case "$(uname -m)" in
    x86_64) rid=linux-x64 ;;
    aarch64 | arm64) rid=linux-arm64 ;;
    *) echo "publish.sh: unsupported machine $(uname -m); set TRIPLINE_RID" >&2; exit 2 ;;
  esac
fi
project=src/Agent/Agent.csproj
# Restore and publish must agree on these, or publish asks for packages (runtime packs, crossgen) never restored.
shape=(-r "$rid" -p:SelfContained=true -p:PublishReadyToRun=true)

if [ "${1:-}" = "" ]; then
  echo "usage: scripts/publish.sh restore | scripts/publish.sh OUTPUT_DIR" >&2
  exit 2
fi
dotnet restore "$project" "${shape[@]}" -nologo -v quiet
[ "$1" = restore ] && exit 0

dotnet publish "$project" "${shape[@]}" --no-restore -c Release -nologo -v quiet \
  -p:SatelliteResourceLanguages=en \
  -p:IsTransformWebConfigDisabled=true \
  -p:GenerateDocumentationFile=false \
  -o "$1"
