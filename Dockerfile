# syntax=docker/dockerfile:1
# The Tripline agent image. Build (see deploy/README.md):
#   docker build -t REGISTRY/tripline:VERSION --build-arg VERSION=VERSION \
#     --build-arg REVISION=$(git rev-parse HEAD) --build-arg SOURCE=$(git remote get-url origin) .
# The publish step is scripts/publish.sh, the same command the test suite runs (tests/Agent.Tests/Deploy).

ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG SOURCE=unknown

# ---- build: on the target's own platform (Native AOT links with the platform's C toolchain, no cross-linking) ----
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
ARG TARGETARCH
WORKDIR /src
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
# Restore in its own layer: only the files that decide which packages are needed, so that a source change
# does not download the AOT compiler again.
COPY global.json Directory.Build.props Directory.Packages.props ./
COPY src/Agent/Agent.csproj src/Agent/
COPY src/Agent.Capture/Agent.Capture.csproj src/Agent.Capture/
COPY src/Agent.Correlation/Agent.Correlation.csproj src/Agent.Correlation/
COPY scripts/publish.sh scripts/
RUN export TRIPLINE_RID=linux-$([ "$TARGETARCH" = arm64 ] && echo arm64 || echo x64) \
 && scripts/publish.sh restore
COPY src/ src/
RUN export TRIPLINE_RID=linux-$([ "$TARGETARCH" = arm64 ] && echo arm64 || echo x64) \
 && scripts/publish.sh /app

# ---- runtime: Debian 13 with the native dependencies of a Native AOT .NET app, plus libpcap ----
FROM mcr.microsoft.com/dotnet/runtime-deps:10.0-trixie-slim
ARG VERSION
ARG REVISION
ARG SOURCE
LABEL org.opencontainers.image.title="tripline" \
      org.opencontainers.image.description="Kubernetes node agent that audits network flows against NetworkPolicies" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
# libpcap0.8t64 is Debian 13's name for libpcap0.8 (the 64-bit time_t transition; same libpcap.so.0.8).
# libcap2-bin gives setcap for the step below, and getcap/capsh to check the result from a shell.
# Set-user-ID and set-group-ID bits are removed so that nothing in the image can raise privileges
# through execve; the agent's own capabilities come from its file capabilities alone.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap0.8t64 libcap2-bin \
 && rm -rf /var/lib/apt/lists/* \
 && find / -xdev -type f -perm /6000 -exec chmod a-s {} + \
 && mkdir -p /var/log/tripline
COPY --from=build /app /app
# The agent runs as the image's non-root user (APP_UID, 1654). Kubernetes puts the capabilities the pod adds
# into the bounding and permitted sets, but for a non-root user execve clears the effective set unless the
# executable carries file capabilities: the native `tripline` executable (Native AOT, the runtime compiled in)
# is given exactly NET_RAW, all that capture needs. docs/operations.md explains.
RUN setcap cap_net_raw=ep /app/tripline
USER $APP_UID
WORKDIR /app
# No HEALTHCHECK: the DaemonSet's liveness and readiness probes call /healthz and /readyz.
ENTRYPOINT ["/app/tripline"]
CMD ["run"]
