# Debian 12 packages, sourced by the scripts and .ci/run: the one list of what we need.
# shellcheck shell=bash
BUILD_PACKAGES=(gcc pkg-config meson ninja-build
    libh2o-dev libuv1-dev libsystemd-dev libcurl4-openssl-dev libjson-c-dev)
RUN_PACKAGES=(systemd curl)
TEST_PACKAGES=(libcmocka-dev systemd curl iproute2 util-linux coreutils clang-format)

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
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"
}
DEB_PACKAGES=(build-essential debhelper dpkg-dev lintian)
E2E_PACKAGES=(systemd-container)
# tests/container/run.sh: the image built and run with podman, deploy/kubernetes/ played with
# podman kube play, /metrics read by a real Prometheus parser
CONTAINER_PACKAGES=(podman runc catatonit slirp4netns debootstrap curl
    python3-prometheus-client python3-yaml)
