# Debian 12 packages, sourced by the scripts and .ci/run: the one list of what we need. Each list
# was found by running its step on a fresh `debootstrap --variant=minbase bookworm` root with only
# git added, and is installed without recommends, so nothing merely recommended may be relied on
# (CI checks the README's two commands that way on every run: tests/fresh/run.sh).
# shellcheck shell=bash disable=SC2034

# Building (scripts/run, scripts/test): gcc without its recommends lacks the C library's headers
# (libc6-dev), and libh2o-dev's h2o.h includes openssl/ssl.h without depending on libssl-dev;
# libsqlite3-dev for the spool (src/spool/spool-store.c).
BUILD_PACKAGES=(gcc libc6-dev pkg-config meson ninja-build
    libh2o-dev libssl-dev libuv1-dev libsystemd-dev libcurl4-openssl-dev libjson-c-dev
    libsqlite3-dev)
# Running it in the foreground (scripts/run), on top of BUILD_PACKAGES: curl, for the README's
# examples.
RUN_PACKAGES=(curl)
# scripts/test, on top of BUILD_PACKAGES: cmocka; systemd for systemd-socket-activate (integration,
# soak and metrics-lint tests), systemd-journald, systemd-cat and journalctl (journal test) and
# systemd-analyze (units test); curl, ss, unshare, mount and shuf (journal and metrics-lint tests);
# clang-format and git (the format check, on the files git knows).
TEST_PACKAGES=(libcmocka-dev systemd curl iproute2 util-linux coreutils clang-format git)
# .ci/run alone, on top of TEST_PACKAGES: prometheus for promtool (the alert-rules and
# metrics-lint tests, which skip without it). Debian 12 has promtool in no other package, and
# installing it starts a Prometheus server where systemd runs: not for a developer's
# ./scripts/test.
PROMTOOL_PACKAGES=(prometheus)
# scripts/build-deb, on top of BUILD_PACKAGES and TEST_PACKAGES (the package's build runs the
# tests); git lists the files that go into the package.
DEB_PACKAGES=(build-essential debhelper dpkg-dev lintian git)
# tests/e2e/run.sh, on top of what built the .deb (which brings its run-time libraries): boots a
# throw-away overlay of / under systemd with systemd-nspawn; curl, ip and wrk (the burst that
# journald must keep whole) in there. The same for bench/journald.sh.
E2E_PACKAGES=(systemd-container systemd curl iproute2 wrk)
# scripts/fuzz, alone: clang with libFuzzer and the sanitizer runtimes (libclang-rt-14-dev, which
# clang only recommends), and the headers of what the fuzzed sources include (built from those
# sources alone, not the core library: no libsqlite3-dev while none of them is a spool module).
FUZZ_PACKAGES=(clang libclang-rt-14-dev libc6-dev pkg-config
    libh2o-dev libssl-dev libuv1-dev libsystemd-dev libcurl4-openssl-dev libjson-c-dev)
# bench/run.sh, on top of BUILD_PACKAGES and RUN_PACKAGES: nginx and wrk; systemd-socket-activate,
# ss and pgrep.
BENCH_PACKAGES=(nginx-light wrk systemd iproute2 procps)
# rpm/build.sh, on top of BUILD_PACKAGES and TEST_PACKAGES (%check runs the tests): Debian's
# rpmbuild, file (its brp-strip scripts find the binaries with it), and what makes the source
# tarball.
RPM_PACKAGES=(rpm file git tar gzip)
# tests/fresh/run.sh: debootstrap makes the fresh root, systemd-nspawn runs the commands in it, ss
# sees whether the ports they use are free.
FRESH_PACKAGES=(debootstrap systemd-container iproute2)
# tests/container/run.sh: the image built and run with podman, deploy/kubernetes/ played with
# podman kube play, /metrics read by a real Prometheus parser (the one list not yet tried on a
# fresh root)
CONTAINER_PACKAGES=(podman runc catatonit slirp4netns debootstrap curl
    python3-prometheus-client python3-yaml)

# apt_install PKG…: installs what is missing (as root, or through sudo).
apt_install() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    echo "Installing Debian packages: ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 \
        --no-install-recommends "${missing[@]}"
}
