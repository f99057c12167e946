# argus-orchestrator in a container: built and unit-tested on Debian 12, run on bookworm-slim
# with the runtime libraries only, as a non-root user.
#
#   docker build -t argus-orchestrator .
#   docker run -p 8080:8080 -e WORKER_NODE_URL=http://worker:3000 argus-orchestrator
#
# (podman build needs --format docker to keep the HEALTHCHECK; the OCI format has none.)

FROM debian:bookworm AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
# The build packages are the project's one list (scripts/deps.sh), plus cmocka for the unit
# tests, libc6-dev (gcc only recommends it) and libssl-dev (h2o.h includes OpenSSL's headers
# without depending on them); a layer of its own, so that a change to the sources does not
# download them again.
COPY scripts/deps.sh scripts/deps.sh
RUN . scripts/deps.sh \
    && apt_install "${BUILD_PACKAGES[@]}" libc6-dev libssl-dev libcmocka-dev \
    && rm -rf /var/lib/apt/lists/*
COPY . .
# The unit tests take a second and check the build on the image's own libraries; the
# integration, journal and soak tests need systemd and run in CI (./scripts/test).
RUN meson setup build --buildtype=release -Dwerror=true \
    && ninja -C build \
    && meson test -C build --suite unit --print-errorlogs \
    && strip build/argus-orchestrator

FROM debian:bookworm-slim
# Keep VERSION equal to meson.build's (tests/container/run.sh checks it).
ARG VERSION=0.3.0
ARG SOURCE=https://example.org/argus/argus-orchestrator
LABEL org.opencontainers.image.title="argus-orchestrator" \
      org.opencontainers.image.description="Front door of the Argus review-collection pipeline: takes jobs over HTTP and hands them to the worker node" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
# The libraries the binary links (ca-certificates for an https WORKER_NODE_URL), and the user;
# without documentation, as Docker's slim images install packages (a no-op on those).
RUN printf 'path-exclude %s\n' '/usr/share/doc/*' '/usr/share/man/*' '/usr/share/info/*' \
        '/usr/share/locale/*' '/usr/share/lintian/*' >/etc/dpkg/dpkg.cfg.d/argus-slim \
    && printf 'path-include %s\n' '/usr/share/doc/*/copyright' >>/etc/dpkg/dpkg.cfg.d/argus-slim \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libh2o0.13 libuv1 libcurl4 libjson-c5 libsystemd0 libsqlite3-0 ca-certificates \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
    && groupadd --system --gid 10001 argus \
    && useradd --system --uid 10001 --gid argus --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin argus
COPY --from=build /src/build/argus-orchestrator /usr/bin/argus-orchestrator
# Fails the build here, not at the first start, if a library is missing.
RUN argus-orchestrator --version

# Numeric, so that Kubernetes' runAsNonRoot can check it without a passwd file.
USER 10001:10001
# The api-token credential is read from $CREDENTIALS_DIRECTORY/api-token when there is one:
# /run/secrets is where docker and podman put secrets (--secret api-token).
ENV PORT=8080 \
    CREDENTIALS_DIRECTORY=/run/secrets
EXPOSE 8080
# SIGTERM drains: in-flight requests finish (SHUTDOWN_TIMEOUT_SEC at most), then exit 0.
STOPSIGNAL SIGTERM
# --probe /health: GET http://127.0.0.1:$PORT/health, healthy when answered 200; no curl needed.
HEALTHCHECK --interval=10s --timeout=7s --start-period=5s --retries=3 \
    CMD ["argus-orchestrator", "--probe", "/health"]
ENTRYPOINT ["/usr/bin/argus-orchestrator"]
