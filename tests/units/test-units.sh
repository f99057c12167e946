#!/bin/bash
# The shipped units: `systemd-analyze verify` accepts them, and the service's exposure under
# `systemd-analyze security --offline=true` is at most 1.0.
# Usage: test-units.sh SOCKET_UNIT SERVICE_UNIT DAEMON_BINARY PATH_UNIT
set -uo pipefail
socket=$1 service=$2 daemon=$3 path=$4
if ! command -v systemd-analyze >/dev/null; then
    echo "skipped: needs systemd-analyze (Debian package systemd)"
    exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
ok() { echo "ok: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }

# verify resolves ExecStart=: point it at the binary just built, in a copy.
cp "$socket" "$work/argus-orchestrator.socket"
cp "$path" "$work/argus-orchestrator.path"
sed "s|^ExecStart=.*|ExecStart=$daemon|" "$service" >"$work/argus-orchestrator.service"
if out=$(cd "$work" && systemd-analyze verify --man=no argus-orchestrator.socket \
    argus-orchestrator.service argus-orchestrator.path 2>&1) && [ -z "$out" ]; then
    ok "systemd-analyze verify"
else
    bad "systemd-analyze verify: $out"
fi

grep -q '^Type=notify$' "$service" && ok "Type=notify" || bad "Type=notify"
grep -q '^RestartPreventExitStatus=78$' "$service" && ok "no restart on exit 78" ||
    bad "RestartPreventExitStatus=78"
grep -q '^ListenStream=8080$' "$socket" && ok "ListenStream=8080" || bad "ListenStream=8080"
grep -q '^WantedBy=sockets.target$' "$socket" && ok "socket in sockets.target" ||
    bad "socket in sockets.target"
# The spool: the service's state directory is the default SPOOL_DIR, and the .path starts the
# service while the spool's marker file is there (src/spool/spool-store.h, SPOOL_MARKER).
grep -q '^StateDirectory=argus-orchestrator$' "$service" && ok "StateDirectory=argus-orchestrator" ||
    bad "StateDirectory=argus-orchestrator"
grep -q '^PathExists=/var/lib/argus-orchestrator/spool.pending$' "$path" &&
    ok "the .path watches /var/lib/argus-orchestrator/spool.pending" ||
    bad "PathExists=/var/lib/argus-orchestrator/spool.pending"
grep -q '^WantedBy=paths.target$' "$path" && ok "path in paths.target" || bad "path in paths.target"
# TimeoutStopSec must leave the drain (SHUTDOWN_TIMEOUT_SEC, 20 s by default) time to finish.
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$service")
[ -n "$stop" ] && [ "$stop" -gt 20 ] && ok "TimeoutStopSec=${stop}s above the drain" ||
    bad "TimeoutStopSec above 20s"

# The memory backstop: MemoryMax above MemoryHigh, both set.
mib() { case $1 in *G) echo $((${1%G} * 1024)) ;; *M) echo "${1%M}" ;; esac; }
high=$(mib "$(sed -n 's/^MemoryHigh=//p' "$service")")
max=$(mib "$(sed -n 's/^MemoryMax=//p' "$service")")
[ -n "$high" ] && [ -n "$max" ] && [ "$max" -gt "$high" ] &&
    ok "memory backstop MemoryHigh=${high}M MemoryMax=${max}M" || bad "MemoryHigh= and MemoryMax="

# journald's rate limit lifted for the unit: both set and non-zero, since systemd hands journald
# only non-zero values (0 leaves journald's default, which drops most jobs of a burst).
interval=$(sed -n 's/^LogRateLimitIntervalSec=//p' "$service")
burst=$(sed -n 's/^LogRateLimitBurst=//p' "$service")
[ -n "$interval" ] && [ "${interval%%[!0-9]*}" != 0 ] && [ "${burst:-0}" -gt 0 ] 2>/dev/null &&
    ok "log rate limit LogRateLimitIntervalSec=$interval LogRateLimitBurst=$burst" ||
    bad "LogRateLimitIntervalSec= and LogRateLimitBurst= set and non-zero"

report=$(systemd-analyze security --offline=true --no-pager "$service" 2>&1)
level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$report")
if [ -n "$level" ] && awk -v l="$level" 'BEGIN { exit !(l <= 1.0) }'; then
    ok "security exposure $level <= 1.0"
else
    bad "security exposure ${level:-unknown} > 1.0"
    grep '✗' <<<"$report"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
