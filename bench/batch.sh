#!/bin/bash
# Benchmark (issue #23): jobs per second into the spool with the worker down, through
# POST /enqueue/batch (batches of BENCH_BATCH, default 100) versus single POST /enqueue requests;
# target: batches at least 5x. One service, THREADS=1, LOG_LEVEL=warn, SPOOL_DIR on disk (under
# /var/tmp, not a tmpfs; BENCH_SPOOL_DIR to choose), its worker a port nothing listens on. wrk
# drives it (keep-alive, CONNECTIONS connections, default 64), single and batch runs interleaved
# ROUNDS times, every placeId new. Prints each run's requests/s, jobs/s, p50/p99 latency and
# errors (non-2xx included), whether every batch was answered 200 (argus_batches_total), and the
# ratio of the medians of jobs/s.
# Usage: bench/batch.sh [SECONDS_PER_RUN (default 10)] [ROUNDS (default 3)] [CONNECTIONS (64)]
# Uses the build in build/ (meson setup build && ninja -C build) or ARGUS_BINARY.
set -euo pipefail
secs=${1:-10}
rounds=${2:-3}
conns=${3:-64}
size=${BENCH_BATCH:-100}
top=$(cd "$(dirname "$0")/.." && pwd)
daemon=${ARGUS_BINARY:-$top/build/argus-orchestrator}
[ -x "$daemon" ] || { echo "no $daemon: build it first (meson setup build && ninja -C build)" >&2; exit 1; }
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$top/bench/lib.sh"

spool_dir=$(mktemp -d "${BENCH_SPOOL_DIR:-/var/tmp}/argus-bench-batch-XXXXXX")
bench_cleanup_more() { rm -rf "$spool_dir"; }

port=$(free_port)
down=$(free_port) # nothing listens there: the worker is down
PORT=$port WORKER_NODE_URL="http://127.0.0.1:$down" SPOOL_DIR="$spool_dir" LOG_LEVEL=warn \
    THREADS=1 SPOOL_MAX_JOBS=100000000 BREAKER_COOLDOWN_SEC=1 "$daemon" 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/health" && break
    sleep 0.05
done
metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v s="$1" '$1 == s { print $2 }'; }

run() { # run NAME LUA → prints NAME req/s jobs/s p50 p99 errors
    local out r
    out=$(BENCH_RUN="$1-$RANDOM$RANDOM" BENCH_BATCH=$size wrk -t2 -c"$conns" -d"${secs}s" \
        -s "$top/bench/$2" "http://127.0.0.1:$port/" 2>&1)
    r=$(sed -n 's/^RESULT //p' <<<"$out")
    [ -n "$r" ] || { echo "wrk failed: $out" >&2; exit 1; }
    read -r rps p50 p99 errors <<<"$r"
    local per=1
    [ "$1" = single ] || per=$size
    printf '%-8s %10.0f req/s %10.0f jobs/s  p50 %7.2f ms  p99 %7.2f ms  errors %s\n' \
        "$1" "$rps" "$(awk -v r="$rps" -v n="$per" 'BEGIN { print r * n }')" "$p50" "$p99" "$errors"
}

echo "== $(nproc) CPUs; THREADS=1, LOG_LEVEL=warn, worker down, spool in $spool_dir" \
    "($(df --output=fstype "$spool_dir" | tail -1)); $conns connections, ${secs}s runs," \
    "batches of $size"
results=$(for r in $(seq "$rounds"); do
    run single post-run.lua
    run batch post-batch.lua
done | tee /dev/stderr)
s=$(grep "^single " <<<"$results" | awk '{ print $4 }' | median)
b=$(grep "^batch " <<<"$results" | awk '{ print $4 }' | median)
echo "batches: $(metric 'argus_batches_total{outcome="accepted"}') answered 200," \
    "$(metric 'argus_batches_total{outcome="partial"}') 207," \
    "$(metric 'argus_batches_total{outcome="rejected"}') refused; spool:" \
    "$(metric 'argus_spool_jobs_total{result="queued"}') queued," \
    "$(metric 'argus_spool_jobs_total{result="error"}') not spooled"
echo "jobs/s, medians: single $s, batch $b: $(awk -v a="$b" -v b="$s" 'BEGIN { printf "%.1f", a / b }')x (target >= 5x)"
