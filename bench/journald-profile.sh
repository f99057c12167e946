#!/bin/bash
# What one job's entry costs journald: a private journald (in a mount namespace of its own, as
# tests/journal/ does, journald as Debian ships it), the daemon's entries to it, a burst of
# distinct jobs from wrk at LOG_LEVEL=info, and journald's CPU time per entry it stored; with
# PERF=1, where that time goes (perf record on journald, the top symbols). Quick and rough
# (beside the service on the same cores); bench/journald.sh is the measurement under a real
# systemd. Needs root.
# Usage: bench/journald-profile.sh ARGUS_BINARY STANDIN_BINARY [SECONDS (default 5)]
set -euo pipefail
if [ "${1:-}" != --inside ]; then
    [ "$(id -u)" = 0 ] || { echo "needs root"; exit 1; }
    exec unshare -m --propagation private "$0" --inside "$@"
fi
shift
argus=$(readlink -f "$1") standin=$(readlink -f "$2") secs=${3:-5}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd /run/log
# the journal in /run (our tmpfs), and no rate limit: every entry is stored (the shipped unit
# lifts it as well, see README "journald's rate limit")
printf '[Journal]\nStorage=volatile\nRateLimitIntervalSec=0\n' >"$work/journald.conf"
mount --bind "$work/journald.conf" /etc/systemd/journald.conf
/lib/systemd/systemd-journald &
jpid=$!
pids+=("$jpid")
for _ in $(seq 100); do systemd-cat -t probe true 2>/dev/null && break; sleep 0.05; done
"$standin" 0 127.0.0.1 >"$work/standin.out" &
pids+=($!)
for _ in $(seq 100); do grep -q PORT= "$work/standin.out" && break; sleep 0.05; done
wport=$(sed -n 's/^PORT=//p' "$work/standin.out")
port=$(shuf -i 20000-29999 -n 1)
# shellcheck disable=SC2016 # expanded by the inner sh
systemd-cat -t argus-orchestrator sh -c '
    js=$(stat -L -c "%d:%i" /proc/self/fd/2)
    exec systemd-socket-activate -l "127.0.0.1:$1" -E JOURNAL_STREAM="$js" \
        -E WORKER_NODE_URL="http://127.0.0.1:$2" -E LOG_LEVEL=info "$3"' \
    sh "$port" "$wport" "$argus" 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "127.0.0.1:$port/health" && break; sleep 0.05; done
api="http://127.0.0.1:$port"
metric() { curl -s "$api/metrics" | awk -v m="$1" '$1 == m { print $2 + 0 }'; }
hz=$(getconf CLK_TCK)
cpu_us() { awk -v hz="$hz" '{ printf "%d\n", ($14 + $15) * 1e6 / hz }' "/proc/$1/stat"; }
entries() { journalctl -q MESSAGE_ID=a4797921098147a0bd3f6417c42ebc5f -o cat --no-pager | wc -l; }
wrk -t1 -c32 -d1s -s "$here/post.lua" "$api/enqueue" >/dev/null 2>&1 # warm-up
sleep 2
spid=$(pgrep -f -n "^$argus" || true)
e0=$(entries) a0=$(metric 'argus_http_requests_total{route="enqueue",status="202"}')
h0=$(metric 'argus_requests_shed_total{reason="log_backlog"}') j0=$(cpu_us "$jpid")
s0=$([ -n "$spid" ] && cpu_us "$spid" || echo 0)
if [ "${PERF:-0}" = 1 ]; then
    perf record -q -g -o "$work/perf.data" -p "$jpid" -- sleep "$secs" 2>/dev/null &
    perf_pid=$!
fi
wrk -t"$(nproc)" -c64 -d"${secs}s" -s "$here/post.lua" "$api/enqueue" >/dev/null 2>&1
[ "${PERF:-0}" = 1 ] && wait "$perf_pid"
# journald catches up
b=-1
for _ in $(seq 40); do a=$(entries); [ "$a" = "$b" ] && break; b=$a; sleep 0.5; done
n=$((a - e0)) n202=$(($(metric 'argus_http_requests_total{route="enqueue",status="202"}') - a0))
shed=$(($(metric 'argus_requests_shed_total{reason="log_backlog"}') - h0))
dj=$(($(cpu_us "$jpid") - j0)) ds=$([ -n "$spid" ] && echo $(($(cpu_us "$spid") - s0)) || echo 0)
echo "$n202 jobs answered 202 in ${secs} s ($((n202 / secs))/s), $n entries, $shed shed;" \
    "journald $((dj / (n + 1))) µs CPU per entry, the service $((ds / (n202 + 1))) µs per job;" \
    "dropped $(metric 'argus_log_entries_dropped_total{sink="journal"}')"
if [ "${PERF:-0}" = 1 ]; then
    perf report -i "$work/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null |
        grep -v '^#' | grep '%' | head -40
fi
