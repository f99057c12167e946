#!/bin/bash
# End-to-end test under a real systemd as PID 1: boots a throw-away overlay of / with
# systemd-nspawn, in a network namespace of its own (port 8080 need not be free on the host),
# installs the .deb inside with dpkg, and runs inside.sh there as a oneshot unit that powers the
# container off when done (scripts/in-container). Its verdict comes back through /out.
# Usage: tests/e2e/run.sh ARGUS_DEB STANDIN_BINARY
set -euo pipefail
deb=$(readlink -f "$1") standin=$(readlink -f "$2")
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 1; }

out=$(mktemp -d /tmp/argus-e2e.XXXXXX)
trap 'rm -rf "$out"' EXIT
chmod 755 "$out"

cp "$deb" "$out/argus-orchestrator.deb"
cp "$standin" "$out/argus-worker-standin"
chmod +x "$out/argus-worker-standin"
"$here/../../scripts/in-container" e2e "$out" "$here/inside.sh" 300

if [ ! -f "$out/result" ]; then
    echo "the container left no verdict; its console:"
    tail -50 "$out/console.log"
    exit 1
fi
cat "$out/result"
tail -1 "$out/result" | grep -q ', 0 failed$'
