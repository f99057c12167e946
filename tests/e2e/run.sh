#!/bin/bash
# End-to-end test under a real systemd as PID 1: boots a throw-away overlay of / with
# systemd-nspawn, in a network namespace of its own (port 8080 need not be free on the host),
# installs the .deb inside with dpkg, and runs inside.sh there as a oneshot unit that powers the
# container off when done. Its verdict comes back through /out.
# Usage: tests/e2e/run.sh ARGUS_DEB STANDIN_BINARY
set -euo pipefail
deb=$(readlink -f "$1") standin=$(readlink -f "$2")
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 1; }
command -v systemd-nspawn >/dev/null || { echo "needs systemd-nspawn (systemd-container)"; exit 1; }

tmp=$(mktemp -d /tmp/argus-e2e.XXXXXX)
out="$tmp/out"
root="$tmp/overlay/root"
cleanup() {
    umount "$root" 2>/dev/null || umount -l "$root" 2>/dev/null || true
    umount "$tmp/overlay" 2>/dev/null || umount -l "$tmp/overlay" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$out" "$tmp/overlay"
mount -t tmpfs tmpfs "$tmp/overlay"
mkdir -p "$tmp/overlay/upper" "$tmp/overlay/work" "$root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$tmp/overlay/upper,workdir=$tmp/overlay/work" "$root"

cp "$deb" "$out/argus-orchestrator.deb"
cp "$standin" "$out/argus-worker-standin"
cp "$here/inside.sh" "$out/inside.sh"
chmod +x "$out/inside.sh" "$out/argus-worker-standin"

# Nothing of the host's own units should start in there: only what the test asks for.
cat >"$root/etc/systemd/system/argus-e2e.service" <<'UNIT'
[Unit]
Description=argus-orchestrator end-to-end test
After=basic.target systemd-journald.service
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStart=/out/inside.sh
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=180
UNIT
rm -f "$root"/etc/machine-id && systemd-machine-id-setup --root="$root" >/dev/null 2>&1
# A container image's policy-rc.d (exit 101) would keep dpkg from starting units, which a real
# system does not do.
rm -f "$root/usr/sbin/policy-rc.d"

timeout 240 systemd-nspawn -q -D "$root" --register=no --keep-unit --private-network \
    --bind="$out:/out" \
    -b -- systemd.unit=argus-e2e.service systemd.firstboot=off systemd.show_status=no \
    </dev/null >"$out/console.log" 2>&1 || true

if [ ! -f "$out/result" ]; then
    echo "the container left no verdict; its console:"
    tail -50 "$out/console.log"
    exit 1
fi
cat "$out/result"
tail -1 "$out/result" | grep -q ', 0 failed$'
