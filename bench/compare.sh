#!/bin/bash
# Benchmark: two revisions of this repository against each other on this machine. Each is built
# in release mode (a git worktree of its own in a temporary folder, removed at the end; no
# tests) and runs with THREADS=2, LOG_LEVEL=info and its logs on /dev/null, both forwarding to
# the same worker stand-in (nginx answering 201, as in bench/run.sh). wrk (keep-alive, 64
# connections, SECONDS a run) drives POST /enqueue, then GET /health, on A then B, ROUNDS
# times: the runs interleaved (A, B, A, B, ...) so that what else the machine does (other
# builds, a noisy neighbour) falls on both alike. Prints each run's requests/s, p99 latency,
# errors and the service's CPU time (user + system, /proc/PID/stat) per request; then per
# revision and endpoint the median, the spread over the rounds (lowest to highest, and its
# width against the median), and B against A round by round.
# Usage: bench/compare.sh REV_A REV_B [SECONDS (default 10)] [ROUNDS (default 3)]
set -euo pipefail
rev_a=${1:?usage: $0 REV_A REV_B [SECONDS] [ROUNDS]}
rev_b=${2:?usage: $0 REV_A REV_B [SECONDS] [ROUNDS]}
secs=${3:-10}
rounds=${4:-3}
top=$(cd "$(dirname "$0")/.." && pwd)
# resolved before anything is built: HEAD is this checkout's
commit_a=$(git -C "$top" rev-parse --verify "$rev_a^{commit}")
commit_b=$(git -C "$top" rev-parse --verify "$rev_b^{commit}")
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$top/bench/lib.sh"
bench_cleanup_more() {
    for l in A B; do
        [ ! -d "$work/src-$l" ] || git -C "$top" worktree remove --force "$work/src-$l"
    done
}

declare -A commit=([A]=$commit_a [B]=$commit_b) daemon=() port=() pid=()
for l in A B; do
    git -C "$top" worktree add --detach "$work/src-$l" "${commit[$l]}" >/dev/null 2>&1
    echo "building $l: $(git -C "$top" log -1 --format='%h %s' "${commit[$l]}" | cut -c1-90)"
    bench_build "$work/src-$l" "$work/build-$l"
    daemon[$l]="$work/build-$l/argus-orchestrator"
done

worker_port=$(free_port)
worker_standin standin "$worker_port"
for l in A B; do
    port[$l]=$(free_port)
    socket_service "${port[$l]}" "${daemon[$l]}" WORKER_NODE_URL="http://127.0.0.1:$worker_port" \
        LOG_LEVEL=info THREADS=2
    pid[$l]=$service_pid
done
wait_port "$worker_port"
for l in A B; do
    wait_port "${port[$l]}"
    curl -s -o /dev/null "http://127.0.0.1:${port[$l]}/health" # starts the daemon
done

# measure LABEL ENDPOINT ROUND → appends "LABEL ENDPOINT ROUND rps p50 p99 errors cpu-µs/req"
# to results, and prints it
measure() {
    local l=$1 what=$2 r=$3 lua=post.lua c0 c1 rps p50 p99 errors cpu
    [ "$what" = enqueue ] || lua=get.lua
    c0=$(cpu_ticks "${pid[$l]}")
    wrk -t1 -c64 -d"${secs}s" --latency -s "$top/bench/$lua" \
        "http://127.0.0.1:${port[$l]}/$what" >"$work/wrk.out"
    c1=$(cpu_ticks "${pid[$l]}")
    read -r rps p50 p99 errors <<<"$(sed -n 's/^RESULT //p' "$work/wrk.out")"
    cpu=$(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v n="$rps" -v s="$secs" \
        'BEGIN { printf "%.1f", t / hz * 1e6 / (n * s) }')
    echo "$l $what $r $rps $p50 $p99 $errors $cpu" >>"$work/results"
    printf '  %s %-8s %10.0f req/s  p50 %7.3f ms  p99 %7.3f ms  errors %s  CPU %5.1f us/req\n' \
        "$l" "/$what" "$rps" "$p50" "$p99" "$errors" "$cpu"
}

echo "compare: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
    "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "A = $rev_a (${commit_a:0:7}), B = $rev_b (${commit_b:0:7}); THREADS=2, LOG_LEVEL=info;" \
    "wrk -t1 -c64 -d${secs}s, $rounds rounds, A and B interleaved"
for l in A B; do # warm-up
    wrk -t1 -c64 -d2s -s "$top/bench/post.lua" "http://127.0.0.1:${port[$l]}/enqueue" >/dev/null
done
for r in $(seq "$rounds"); do
    echo "round $r"
    for what in enqueue health; do
        for l in A B; do
            measure "$l" "$what" "$r"
        done
    done
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

# col LABEL ENDPOINT COLUMN → that column over the rounds, one a line
col() { awk -v l="$1" -v w="$2" -v c="$3" '$1 == l && $2 == w { print $c }' "$work/results"; }
# spread → "median (lowest to highest, width W % of the median)" of the numbers on stdin
spread() {
    sort -n | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
        printf "%.6g (%.6g to %.6g, %.1f %%)", m, a[1], a[NR], m ? 100 * (a[NR] - a[1]) / m : 0 }'
}
# ratio ENDPOINT COLUMN → B / A round by round, as spread()
ratio() { paste <(col B "$1" "$2") <(col A "$1" "$2") | awk '{ print $1 / $2 }' | spread; }
echo
echo "medians over $rounds rounds (in brackets: lowest to highest, and that width against the median)"
for what in enqueue health; do
    for l in A B; do
        echo "  $l /$what: req/s $(col "$l" "$what" 4 | spread); p99 ms $(col "$l" "$what" 6 | spread);" \
            "CPU us/req $(col "$l" "$what" 8 | spread); errors $(col "$l" "$what" 7 | awk '{ s += $1 } END { print s + 0 }')"
    done
    echo "  B/A /$what, round by round: req/s $(ratio "$what" 4); p99 $(ratio "$what" 6); CPU/req $(ratio "$what" 8)"
done
