#!/usr/bin/env bash
# The one way the agent is published: the Dockerfile runs this script, and so does the test that proves the
# image's entry point works (tests/Agent.Tests/Deploy/PublishTests.cs), so the two cannot drift apart.
#
#   scripts/publish.sh restore       restore only (the Dockerfile's cached layer: project files, no sources)
#   scripts/publish.sh OUTPUT_DIR    restore (a no-op when already done) and publish into OUTPUT_DIR
#
# Native AOT: one native `tripline` executable with the runtime compiled in. The image gives that executable file
# capabilities, and a capability-raised process must not look up a runtime through DOTNET_ROOT or install-location
# files. Nothing is compiled or laid out at start-up: a replay of the demo starts, loads its manifests and ends in
# tens of milliseconds instead of two hundred (benchmarks/README.md). The JSON the agent reads (manifests, the
# API server's lists and watch events) goes through metadata generated at build time, not reflection.
# Native AOT links with the platform's C toolchain: clang, or clang-NN when only a versioned one is installed; as
# root on Debian this installs clang when there is none.
# TRIPLINE_RID picks the target (linux-x64, linux-arm64); it must be the machine's own (no cross-linking).
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
# Restore and publish must agree on these, or publish asks for packages (the AOT compiler) never restored.
shape=(-r "$rid" -p:PublishAot=true)

if [ "${1:-}" = "" ]; then
  echo "usage: scripts/publish.sh restore | scripts/publish.sh OUTPUT_DIR" >&2
  exit 2
fi
dotnet restore "$project" "${shape[@]}" -nologo -v quiet
[ "$1" = restore ] && exit 0

linker=()
if ! command -v clang >/dev/null 2>&1; then
  versioned=$(compgen -c clang- | grep -E '^clang-[0-9]+$' | sort -t- -k2 -n | tail -n 1 || true)
  if [ -n "$versioned" ]; then
    linker=(-p:CppCompilerAndLinker="$versioned")
  elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "publish.sh: installing clang, which Native AOT links with" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang zlib1g-dev >/dev/null
  else
    echo "publish.sh: Native AOT needs clang to link (apt-get install -y clang zlib1g-dev)" >&2
    exit 2
  fi
fi

dotnet publish "$project" "${shape[@]}" "${linker[@]}" --no-restore -c Release -nologo -v quiet \
  -p:SatelliteResourceLanguages=en \
  -p:IsTransformWebConfigDisabled=true \
  -p:GenerateDocumentationFile=false \
  -p:DebugType=none \
  -o "$1"
# The native symbols (tripline.dbg, some 90 MB) stay out of the image; exceptions' stack traces keep their method
# names without them.
rm -f "$1"/tripline.dbg
