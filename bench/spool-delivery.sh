#!/bin/bash
# shellcheck disable=SC2086 # PID lists split into words on purpose
# Benchmark: delivery from the spool (issue #20), on its own or from bench/run.sh. Each row fills
# a fresh spool (SPOOL_DIR under /var/tmp, or BENCH_SPOOL_DIR: on disk, not a tmpfs) through the
# service with its worker down, stops it, brings the worker up, starts the service again on that
# spool (THREADS=1, LOG_LEVEL=info, logs to /dev/null, as bench/run.sh's spool service) and times
# it from its start until the jobs are delivered:
#   healthy     JOBS jobs to nginx answering 201 (bench/run.sh's stand-in);
#   head503     one job the worker refuses (nginx answers 503 to its Idempotency-Key), first in
#               arrival order, then JOBS jobs: the others' rate, and how often the refused one was
#               tried meanwhile;
#   pool4x20    POOL_JOBS jobs to tests/worker-standin.c's pool4x20- (4 calls at once, 20 ms
#               each, 503 at once past 4: 200 jobs a second at most): the rate against that
#               capacity (target >= 80 %), and the share of attempts refused (target <= 10 %).
# The rows are interleaved over ROUNDS rounds; medians. With BENCH_BEFORE_DAEMON=PATH (another
# build's argus-orchestrator, say main's) each row runs with it too, in the same round; a row
# that does not finish within BENCH_ROW_MAX_SEC (120) reports what was delivered by then.
# Then, once, bench/spool-due.c (when this build has it): the due-jobs query with DUE_JOBS
# (1,000,000) waiting and the oldest in backoff.
# Usage: bench/spool-delivery.sh [JOBS (default 100000)] [ROUNDS (default 3)] [POOL_JOBS (3000)]
set -euo pipefail
jobs=${1:-100000}
rounds=${2:-3}
pool_jobs=${3:-3000}
row_max=${BENCH_ROW_MAX_SEC:-120}
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$top/bench/lib.sh"

build="$top/build-bench"
bench_build "$top" "$build"
after="$build/argus-orchestrator"
before=${BENCH_BEFORE_DAEMON:-}
standin="$build/tests/argus-worker-standin"
spool_base=${BENCH_SPOOL_DIR:-/var/tmp}
bench_cleanup_more() { rm -rf "$spool_base"/argus-bench-delivery-$$-*; }

metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v s="$2" '$1 == s { print $2 }'; }
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# daemon BINARY PORT WORKER-PORT DIR → starts it socket-activated (the first connection starts
# it); sets daemon_pid
daemon() {
    socket_service "$2" "$1" WORKER_NODE_URL="http://127.0.0.1:$3" SPOOL_DIR="$4" \
        BREAKER_COOLDOWN_SEC=1 SPOOL_MAX_JOBS=100000000 LOG_LEVEL=info THREADS=1
    daemon_pid=$service_pid
    wait_port "$2"
}

# worker KIND PORT → nginx (healthy, head503: 503 for the placeIds status503-…, logged) or the
# stand-in (pool4x20); sets worker_pid
worker() {
    if [ "$1" = pool4x20 ]; then
        "$standin" "$2" 127.0.0.1 >/dev/null &
        worker_pid=$!
        pids+=("$worker_pid")
    else
        nginx_conf "nginx-$2" "map \$http_idempotency_key \$refuse { ~^reviews:status503- 1; default 0; }
    log_format refused '\$msec';
    server { listen 127.0.0.1:$2;
        location /enqueue {
            access_log $work/nginx-$2/logs/refused.log refused if=\$refuse;
            default_type application/json;
            if (\$refuse) { return 503 '{\"error\":\"refused\"}'; }
            return 201 '{\"queued\":true}';
        } }"
        worker_pid=$nginx_pid
    fi
    wait_port "$2"
}

# fill PORT PREFIX N TOTAL: N jobs PREFIX1…PREFIXN into the spool (the worker down), until it
# holds TOTAL
fill() {
    BENCH_PREFIX=$2 BENCH_LIMIT=$3 wrk -t1 -c32 -d600s -s "$top/bench/spool-fill.lua" \
        "http://127.0.0.1:$1" >/dev/null &
    local wrk_pid=$!
    pids+=("$wrk_pid")
    for _ in $(seq 6000); do
        [ "$(metric "$1" argus_spool_jobs)" -lt "$4" ] || break
        kill -0 "$wrk_pid" 2>/dev/null || { echo "wrk ended before the spool held $4 jobs" >&2; break; }
        sleep 0.1
    done
    stop "$wrk_pid"
}

# row NAME BINARY LABEL ROUND → appends "NAME LABEL jobs seconds jobs/s extra…" to results
row() {
    local name=$1 bin=$2 label=$3 r=$4 n target
    n=$([ "$name" = pool4x20 ] && echo "$pool_jobs" || echo "$jobs")
    local dir down port head=0
    [ "$name" != head503 ] || head=1
    dir=$(mktemp -d "$spool_base/argus-bench-delivery-$$-XXXXXX")
    down=$(free_port)
    port=$(free_port)
    daemon "$bin" "$port" "$down" "$dir"
    curl -s -o /dev/null "http://127.0.0.1:$port/health"
    [ "$name" != head503 ] || curl -s -o /dev/null -H 'Content-Type: application/json' \
        -d "{\"placeId\":\"status503-head-$label-$r\"}" "http://127.0.0.1:$port/enqueue"
    local prefix="$name-$label-$r-"
    [ "$name" != pool4x20 ] || prefix="pool4x20-$label-$r-"
    fill "$port" "$prefix" "$n" $((n + head))
    local spooled
    spooled=$(metric "$port" argus_spool_jobs)
    stop "$daemon_pid"

    worker "$name" "$down"
    port=$(free_port)
    daemon "$bin" "$port" "$down" "$dir"
    target=$((spooled - head))
    local t0 t1 d=0
    t0=$(now)
    curl -s -o /dev/null "http://127.0.0.1:$port/health"
    local deadline=$(($(date +%s) + row_max))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        d=$(metric "$port" 'argus_spool_jobs_total{result="delivered"}')
        [ "${d%.*}" -lt "$target" ] || break
        sleep 0.05
    done
    t1=$(now)
    local extra=""
    case $name in
    head503) extra="$(wc -l <"$work/nginx-$down/logs/refused.log" 2>/dev/null || echo 0)" ;;
    pool4x20) extra=$(curl -s "http://127.0.0.1:$down/stats" | sed -n \
        's/.*"pool4x20":{"accepted":\([0-9]*\),"refused":\([0-9]*\),"peak":\([0-9]*\)}.*/\1 \2 \3/p') ;;
    esac
    stop "$daemon_pid"
    stop "$worker_pid"
    rm -rf "$dir"
    local secs rate
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    rate=$(awk -v n="${d%.*}" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
    echo "$name $label ${d%.*} $secs $rate $extra" >>"$work/results"
    printf '  %-9s %-7s %8s of %-8s delivered in %7s s: %7s jobs/s' "$name" "$label" "${d%.*}" \
        "$target" "$secs" "$rate"
    case $name in
    head503) printf ', the refused job tried %s times' "$extra" ;;
    pool4x20) read -r acc ref peak <<<"$extra"
        printf ' (%s %% of the pool'"'"'s 200/s), %s of %s attempts refused (%s %%), at most %s at once' \
            "$(awk -v r="$rate" 'BEGIN { printf "%.0f", r / 200 * 100 }')" "$ref" "$((acc + ref))" \
            "$(awk -v a="$acc" -v b="$ref" 'BEGIN { printf "%.1f", a + b ? 100 * b / (a + b) : 0 }')" "$peak" ;;
    esac
    echo
}

echo "spool delivery benchmark: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
    "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
echo "THREADS=1, LOG_LEVEL=info to /dev/null; $jobs jobs (pool: $pool_jobs), $rounds interleaved" \
    "rounds; spool in $spool_base ($(df --output=fstype "$spool_base" | tail -1))"
labels=(after)
[ -z "$before" ] || labels=(before after)
for r in $(seq "$rounds"); do
    echo "round $r"
    for name in healthy head503 pool4x20; do
        for label in "${labels[@]}"; do
            row "$name" "$([ "$label" = before ] && echo "$before" || echo "$after")" "$label" "$r"
        done
    done
done

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
col() { awk -v n="$1" -v l="$2" -v c="$3" '$1 == n && $2 == l { print $c }' "$work/results" | median; }
echo
echo "medians over $rounds rounds (jobs a second from the service's start until delivered):"
echo "  healthy worker:        before 10.1k (0.1.0, README \"Performance\")$([ -z "$before" ] ||
    echo ", measured $(col healthy before 5)"), after $(col healthy after 5)"
echo "  refused job at head:   $([ -z "$before" ] || echo "before $(col head503 before 5)" \
    "(tried $(col head503 before 6) times), ")after $(col head503 after 5) (the refused job" \
    "tried $(col head503 after 6) times)"
for label in "${labels[@]}"; do
    rate=$(col pool4x20 "$label" 5) acc=$(col pool4x20 "$label" 6) ref=$(col pool4x20 "$label" 7)
    echo "  4-wide pool (200/s):   $label $rate ($(awk -v r="$rate" 'BEGIN { printf "%.0f", r / 200 * 100 }') %" \
        "of capacity, target >= 80), refused $(awk -v a="$acc" -v b="$ref" \
        'BEGIN { printf "%.1f", a + b ? 100 * b / (a + b) : 0 }') % of attempts (target <= 10)"
done
if [ -x "$build/spool-due" ]; then
    echo
    echo "the due-jobs query (bench/spool-due.c), ${DUE_JOBS:-1000000} jobs waiting:"
    "$build/spool-due" "${DUE_JOBS:-1000000}" "$spool_base" | sed 's/^/  /'
fi
