#!/bin/bash
# shellcheck disable=SC2086 # PID lists split into words on purpose
# Benchmark: argus-orchestrator against nginx on this machine, side by side in one run.
#   /enqueue: the service forwarding to a worker stand-in (nginx answering 201) versus nginx as a
#             keep-alive reverse proxy to the same stand-in;
#   /health:  the service answering itself versus nginx `return 200`.
# The service runs twice, with THREADS=1 and THREADS=2 (one and two event loops), both measured
# in each round one after the other (1, 2, 1, 2, ...); the comparisons with nginx and the RSS
# use THREADS=2.
# wrk drives each (keep-alive, 64 connections), the runs interleaved ROUNDS times. Prints
# requests/s, p50/p99 latency, errors (non-2xx included), CPU time per request of the server, of
# the worker stand-in and of wrk itself (user + system, /proc/PID/stat), how the service's
# connections spread over its loops (argus_loop_connections_total), RSS, the ratios against the
# targets, and the cold start (first connection to first answer) under systemd-socket-activate.
# Each round also runs curl-floor (bench/curl-floor.c): libcurl alone
# doing the upstream half of /enqueue, the floor under any forwarder built on it; and h2o-floor
# (bench/h2o-floor.c): libh2o's own HTTP/1 client doing the same; and /enqueue through h2o's own
# reverse proxy (bench/h2o-proxy.c), a forwarder made of libh2o alone: both for comparison.
# The spool (issue #11): a third service, THREADS=1, with SPOOL_DIR on disk (under /var/tmp, not
# a tmpfs; BENCH_SPOOL_DIR to choose; SPOOL_MAX_JOBS at its highest, so that the runs never fill
# it: about 0.3 KiB of disk a job, a few GiB for long runs) and its worker down answers jobs
# `queued` (spool-queued, each round, compared with enqueue-THREADS1: target >= 0.8x); after
# the rounds the worker comes back (an nginx answering 201 on its port) and the jobs spooled are
# timed until argus_spool_jobs is 0.
# At the end, bench/spool-delivery.sh (issue #20; runnable on its own): the delivery from the
# spool to a healthy worker, with a refused job at the head, and to a 4-wide pool, each from a
# fresh spool of BENCH_DELIVERY_JOBS jobs (100000; the pool 3000), ROUNDS rounds; and the
# due-jobs query with a million waiting. BENCH_DELIVERY=0 leaves it out.
# Usage: bench/run.sh [SECONDS_PER_RUN (default 10)] [ROUNDS (default 3)]
set -euo pipefail
secs=${1:-10}
rounds=${2:-3}
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$top/bench/lib.sh"

build="$top/build-bench"
bench_build "$top" "$build"
daemon="$build/argus-orchestrator"
bench_cleanup_more() { [ -z "${spool_dir:-}" ] || rm -rf "$spool_dir"; }

worker_port=$(free_port)
worker_standin standin "$worker_port"
proxy_port=$(free_port)
nginx_conf proxy "upstream worker { server 127.0.0.1:$worker_port; keepalive 64; }
    server { listen 127.0.0.1:$proxy_port;
        location /enqueue { proxy_pass http://worker; proxy_http_version 1.1;
                            proxy_set_header Connection \"\"; }
        location /health { default_type application/json;
                           return 200 '{\"status\":\"healthy\"}'; } }"
svc_port=$(free_port) # THREADS=2: the comparisons with nginx, RSS
socket_service "$svc_port" "$daemon" WORKER_NODE_URL="http://127.0.0.1:$worker_port" LOG_LEVEL=info THREADS=2
svc_pid=$service_pid
svc1_port=$(free_port) # THREADS=1
socket_service "$svc1_port" "$daemon" WORKER_NODE_URL="http://127.0.0.1:$worker_port" LOG_LEVEL=info THREADS=1
svc1_pid=$service_pid
spool_dir=$(mktemp -d "${BENCH_SPOOL_DIR:-/var/tmp}/argus-bench-spool-XXXXXX")
spool_worker_port=$(free_port) # nothing listens there until the delivery is measured
spool_port=$(free_port) # THREADS=1, like the service it is compared with
socket_service "$spool_port" "$daemon" WORKER_NODE_URL="http://127.0.0.1:$spool_worker_port" \
    SPOOL_DIR="$spool_dir" BREAKER_COOLDOWN_SEC=1 SPOOL_MAX_JOBS=100000000 LOG_LEVEL=info THREADS=1
spool_pid=$service_pid
h2o_port=$(free_port)
"$build/h2o-proxy" "$h2o_port" "http://127.0.0.1:$worker_port/enqueue" &
h2o_pid=$!
pids+=("$h2o_pid")
wait_port "$worker_port"
wait_port "$proxy_port"
wait_port "$h2o_port"
wait_port "$svc_port"
wait_port "$svc1_port"
wait_port "$spool_port"
curl -s -o /dev/null "http://127.0.0.1:$svc_port/health" # starts the daemon
curl -s -o /dev/null "http://127.0.0.1:$svc1_port/health"
curl -s -o /dev/null "http://127.0.0.1:$spool_port/health"

proxy_pids=$(pgrep -P "${pids[1]}" | tr '\n' ' ')
standin_pids=$(pgrep -P "${pids[0]}" | tr '\n' ' ')
# loop_conns PORT → the service's argus_loop_connections_total, one figure per loop
loop_conns() {
    curl -s "http://127.0.0.1:$1/metrics" | awk '/^argus_loop_connections_total[{]/ { printf "%s ", $NF }'
}
# run NAME URL LUA SERVICE-PORT|- PID… → appends to results "NAME rps p50 p99 errors
# server-cpu-µs-per-request stand-in-µs wrk-µs busiest-loop-share loop-connections(a/b/…)"
run() {
    local name=$1 url=$2 lua=$3 port=$4 out c0 c1 s0 s1 w l0="" l1="" spread="-" share=0
    shift 4
    [ "$port" = - ] || l0=$(loop_conns "$port")
    c0=$(cpu_ticks "$@")
    s0=$(cpu_ticks $standin_pids)
    # wrk's own CPU: its shell's cutime + cstime once it has waited for it
    w=$(sh -c 'wrk -t1 -c64 -d"$1" --latency -s "$2" "$3" >"$4"; awk "{ print \$16 + \$17 }" /proc/$$/stat' \
        sh "${secs}s" "$top/bench/$lua" "$url" "$work/wrk.out")
    c1=$(cpu_ticks "$@")
    s1=$(cpu_ticks $standin_pids)
    out=$(sed -n 's/^RESULT //p' "$work/wrk.out")
    if [ "$port" != - ]; then
        l1=$(loop_conns "$port")
        spread=$(paste -d' ' <(echo "$l0" | tr ' ' '\n') <(echo "$l1" | tr ' ' '\n') |
            awk 'NF == 2 { d = $2 - $1; s = s (s == "" ? "" : "/") d } END { print s }')
        share=$(echo "$spread" | tr '/' '\n' | awk '{ t += $1; if ($1 > m) m = $1 } END { printf "%.2f", t ? m / t : 0 }')
    fi
    out="$out $(echo "$out" | awk -v t=$((c1 - c0)) -v st=$((s1 - s0)) -v wt="$w" \
        -v hz="$(getconf CLK_TCK)" -v s="$secs" \
        '{ n = $1 * s; printf "%.1f %.1f %.1f", t / hz * 1e6 / n, st / hz * 1e6 / n, wt / hz * 1e6 / n }')"
    echo "$name $out $share $spread" >>"$work/results"
    local rps p50 p99 errors cpu cpu_standin cpu_wrk
    read -r rps p50 p99 errors cpu cpu_standin cpu_wrk <<<"$out"
    printf '  %-16s %10.0f req/s  p50 %7.3f ms  p99 %7.3f ms  errors %s  CPU %5.1f us/req' "$name" \
        "$rps" "$p50" "$p99" "$errors" "$cpu"
    printf ' (stand-in %4.1f, wrk %4.1f)' "$cpu_standin" "$cpu_wrk"
    [ "$port" = - ] && echo || echo "  connections by loop $spread"
}

floor() { # floor NAME NOTE COMMAND… → appends "rps cpu-µs-per-request failed rss-KiB" to $work/NAME
    local name=$1 note=$2 out rps cpu failed
    shift 2
    out=$("$@" | sed -n 's/^FLOOR //p')
    echo "$out" >>"$work/$name"
    read -r rps cpu failed _ <<<"$out"
    printf '  %-16s %10.0f req/s  %-33s errors %s  CPU %5.1f us/req\n' "$name" "$rps" "($note)" \
        "$failed" "$cpu"
}

echo "argus-orchestrator benchmark: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
    "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
echo "wrk -t1 -c64 -d${secs}s, $rounds interleaved rounds; nginx 1 worker, access log off;" \
    "service LOG_LEVEL=info, logs to /dev/null; spool in $spool_dir ($(df --output=fstype "$spool_dir" | tail -1))"
# warm-up
wrk -t1 -c64 -d2s -s "$top/bench/post.lua" "http://127.0.0.1:$svc_port/enqueue" >/dev/null
wrk -t1 -c64 -d2s -s "$top/bench/post.lua" "http://127.0.0.1:$svc1_port/enqueue" >/dev/null
wrk -t1 -c64 -d2s -s "$top/bench/post.lua" "http://127.0.0.1:$proxy_port/enqueue" >/dev/null
svc_rss=0 svc_anon=0 # the highest, read right after each /enqueue run
for r in $(seq "$rounds"); do
    echo "round $r"
    run enqueue-THREADS1 "http://127.0.0.1:$svc1_port/enqueue" post.lua "$svc1_port" "$svc1_pid"
    run enqueue-THREADS2 "http://127.0.0.1:$svc_port/enqueue" post.lua "$svc_port" "$svc_pid"
    rss_now=$(rss_of "$svc_pid")
    if [ "$rss_now" -gt "$svc_rss" ]; then
        svc_rss=$rss_now
        svc_anon=$(awk '/^RssAnon:/ { print $2 }' "/proc/$svc_pid/status")
    fi
    BENCH_RUN="r$r" run spool-queued "http://127.0.0.1:$spool_port/enqueue" post-run.lua - "$spool_pid"
    run nginx-proxy "http://127.0.0.1:$proxy_port/enqueue" post.lua - $proxy_pids
    run h2o-proxy "http://127.0.0.1:$h2o_port/enqueue" post.lua - "$h2o_pid"
    run health-THREADS1 "http://127.0.0.1:$svc1_port/health" get.lua "$svc1_port" "$svc1_pid"
    run health-THREADS2 "http://127.0.0.1:$svc_port/health" get.lua "$svc_port" "$svc_pid"
    run nginx-return200 "http://127.0.0.1:$proxy_port/health" get.lua - $proxy_pids
    floor curl-floor "libcurl alone, no server half" \
        "$build/curl-floor" "http://127.0.0.1:$worker_port/enqueue" "$secs" 64
    floor h2o-floor "libh2o client alone, the same" "$build/h2o-floor" 127.0.0.1 "$worker_port" "$secs" 64
done
load_end=$(date +%s)

# The spool's worker comes back: jobs delivered per second, from the worker's start (and from the
# first delivery: the delivery's backoff after the failures while the worker was away comes
# first) until argus_spool_jobs is 0.
metric() { curl -s "http://127.0.0.1:$spool_port/metrics" | awk -v s="$1" '$1 == s { print $2 }'; }
spooled=$(metric argus_spool_jobs)
queued_total=$(metric 'argus_spool_jobs_total{result="queued"}')
spool_errors=$(metric 'argus_spool_jobs_total{result="error"}')
delivered0=$(metric 'argus_spool_jobs_total{result="delivered"}')
spool_bytes=$(du -sk "$spool_dir" | cut -f1)
t_back=$(now)
worker_standin standin2 "$spool_worker_port"
t_first="" t_empty=""
for _ in $(seq 6000); do # 10 minutes at most
    d=$(metric 'argus_spool_jobs_total{result="delivered"}')
    [ -n "$t_first" ] || [ "${d%.*}" = "${delivered0%.*}" ] || t_first=$(now)
    [ "$(metric argus_spool_jobs)" = 0 ] && { t_empty=$(now); break; }
    sleep 0.1
done
# shellcheck disable=SC2046 # one argument per PID
nginx_rss=$(rss_of $(pgrep -f "nginx: .*$work/proxy" || true) 2>/dev/null || echo 0)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
col() { awk -v n="$1" -v c="$2" '$1 == n { print $c }' "$work/results" | median; }
errs() { awk -v n="$1" '$1 == n { s += $5 } END { print s + 0 }' "$work/results"; }

# cold start: a fresh socket each time, the daemon not running; first connection to first answer
cold=()
for _ in $(seq 5); do
    p=$(free_port)
    systemd-socket-activate -l "127.0.0.1:$p" -E WORKER_NODE_URL="http://127.0.0.1:$worker_port" \
        "$daemon" 2>/dev/null &
    cp=$!
    wait_port "$p"
    cold+=("$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$p/health")")
    kill "$cp"
    wait "$cp" 2>/dev/null || true
done
cold_ms=$(printf '%s\n' "${cold[@]}" | awk '{ print $1 * 1000 }' | median)

# The daemon gives memory back after a status interval (5 s) without jobs: wait for two ticks.
sleep $((load_end + 11 - $(date +%s) > 0 ? load_end + 11 - $(date +%s) : 0))
quiet_rss=$(rss_of "$svc_pid")
h2o_rss=$(rss_of "$h2o_pid")
quiet_anon=$(awk '/^RssAnon:/ { print $2 }' "/proc/$svc_pid/status")

echo
echo "medians over $rounds rounds:"
printf '  %-16s %10s %10s %10s %8s %12s %10s %8s %12s\n' "" "req/s" "p50 ms" "p99 ms" "errors" \
    "CPU us/req" "stand-in" "wrk" "busiest loop"
for n in enqueue-THREADS1 enqueue-THREADS2 spool-queued nginx-proxy h2o-proxy health-THREADS1 health-THREADS2 \
    nginx-return200; do
    printf '  %-16s %10.0f %10.3f %10.3f %8s %12.1f %10.1f %8.1f %12s\n' "$n" "$(col $n 2)" "$(col $n 3)" \
        "$(col $n 4)" "$(errs $n)" "$(col $n 6)" "$(col $n 7)" "$(col $n 8)" \
        "$(case $n in *THREADS2) col $n 9 ;; *) echo - ;; esac)"
done
fcol() { awk -v c="$2" '{ print $c }' "$work/$1" | median; } # fcol FLOOR COLUMN
for n in curl-floor h2o-floor; do
    printf '  %-16s %10.0f %10s %10s %8s %12.1f\n' "$n" "$(fcol $n 1)" - - \
        "$(awk '{ s += $3 } END { print s + 0 }' "$work/$n")" "$(fcol $n 2)"
done
mib() { echo "$(($1 / 1024)).$((($1 % 1024) * 10 / 1024))"; }
echo "  RSS right after /enqueue load: service $(mib "$svc_rss") MiB (anonymous $(mib "$svc_anon") MiB);" \
    "at the end, after 10 s without jobs $(mib "$quiet_rss") MiB (anonymous $(mib "$quiet_anon") MiB);" \
    "nginx proxy (master + worker) $(mib "$nginx_rss") MiB; h2o-proxy $(mib "$h2o_rss") MiB"
echo "  cold start (first connection to first answer, median of 5): ${cold_ms} ms"
if [ -n "$t_empty" ]; then
    deliver_all=$(awk -v n="$spooled" -v a="$t_back" -v b="$t_empty" 'BEGIN { printf "%.0f", n / (b - a) }')
    deliver_run=$(awk -v n="$spooled" -v a="$t_first" -v b="$t_empty" 'BEGIN { printf "%.0f", n / (b - a) }')
    wait_first=$(awk -v a="$t_back" -v b="$t_first" 'BEGIN { printf "%.1f", b - a }')
else
    deliver_all="(not emptied in 10 min)" deliver_run=- wait_first=-
fi
echo "  spool: $queued_total answered queued with the worker down ($spool_errors not spooled)," \
    "$spooled records waiting, ${spool_bytes} KiB on disk; worker back: all delivered at" \
    "$deliver_all jobs/s from its start (the first delivery after ${wait_first} s), $deliver_run" \
    "jobs/s from the first delivery"
echo "  libcurl alone (curl-floor: the upstream half of /enqueue on a bare epoll loop) uses" \
    "$(printf %.1f "$(fcol curl-floor 2)") us of CPU per request where nginx proxies one in" \
    "$(printf %.1f "$(col nginx-proxy 6)") us: a forwarder built on libcurl reaches at most" \
    "$(ratio "$(col nginx-proxy 6)" "$(fcol curl-floor 2)") x nginx here; its RSS after" \
    "curl_global_init() alone is $(mib "$(fcol curl-floor 4)") MiB. libh2o's own HTTP/1" \
    "client (h2o-floor, the same requests) uses $(printf %.1f "$(fcol h2o-floor 2)") us per request" \
    "and starts at $(mib "$(fcol h2o-floor 4)") MiB; h2o's own reverse proxy (h2o-proxy: libh2o's server and" \
    "client on a plain libuv loop) forwards at $(ratio "$(col h2o-proxy 2)" "$(col nginx-proxy 2)") x nginx"
echo "  THREADS=2, connections accepted by each loop over the whole run (argus_loop_connections_total):" \
    "$(loop_conns "$svc_port" | sed 's/ $//; s/ /, /g'); the busiest loop's share of a run's" \
    "connections, by run: $(awk '$1 ~ /THREADS2$/ { printf "%s ", $9 }' "$work/results")"
# pairs NAME-A NAME-B COLUMN → the per-round ratios A / B (the runs of a round are next to each
# other): "median (lowest to highest)"
pairs() {
    paste <(awk -v n="$1" -v c="$3" '$1 == n { print $c }' "$work/results") \
        <(awk -v n="$2" -v c="$3" '$1 == n { print $c }' "$work/results") |
        awk '{ print $1 / $2 }' | sort -n |
        awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
                                  printf "%.2f (%.2f to %.2f)", m, a[1], a[NR] }'
}
echo
enq=$(ratio "$(col enqueue-THREADS2 2)" "$(col nginx-proxy 2)")
p99=$(ratio "$(col enqueue-THREADS2 4)" "$(col nginx-proxy 4)")
hl=$(ratio "$(col health-THREADS2 2)" "$(col nginx-return200 2)")
t_enq=$(ratio "$(col enqueue-THREADS2 2)" "$(col enqueue-THREADS1 2)")
t_enq99=$(ratio "$(col enqueue-THREADS2 4)" "$(col enqueue-THREADS1 4)")
t_hl=$(ratio "$(col health-THREADS2 2)" "$(col health-THREADS1 2)")
t_hl99=$(ratio "$(col health-THREADS2 4)" "$(col health-THREADS1 4)")
spq=$(ratio "$(col spool-queued 2)" "$(col enqueue-THREADS1 2)")
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == ">=") ? v >= t : v <= t; print ok ? "met" : "NOT met" }'; }
svc_errs=0
for n in enqueue-THREADS1 enqueue-THREADS2 health-THREADS1 health-THREADS2; do
    svc_errs=$((svc_errs + $(errs $n)))
done
echo "targets (ratios of medians; in brackets, the median and range of the per-round ratios):"
echo "  /enqueue THREADS=2 vs 1 req/s   ${t_enq}x [$(pairs enqueue-THREADS2 enqueue-THREADS1 2)] (>= 1.3: $(verdict "$t_enq" 1.3 ">="))"
echo "  /enqueue THREADS=2 vs 1 p99     ${t_enq99}x [$(pairs enqueue-THREADS2 enqueue-THREADS1 4)] (<= 1: $(verdict "$t_enq99" 1 "<="))"
echo "  /health THREADS=2 vs 1 req/s    ${t_hl}x [$(pairs health-THREADS2 health-THREADS1 2)] (>= 1.1: $(verdict "$t_hl" 1.1 ">="))"
echo "  /health THREADS=2 vs 1 p99      ${t_hl99}x [$(pairs health-THREADS2 health-THREADS1 4)] (<= 1: $(verdict "$t_hl99" 1 "<="))"
echo "  /enqueue req/s vs nginx proxy   ${enq}x (>= 0.9: $(verdict "$enq" 0.9 ">="))"
echo "  /enqueue p99 vs nginx proxy     ${p99}x (<= 1.5: $(verdict "$p99" 1.5 "<="))"
echo "  /health req/s vs nginx 200      ${hl}x (>= 0.9: $(verdict "$hl" 0.9 ">="))"
echo "  queued (worker down) vs /enqueue ${spq}x [$(pairs spool-queued enqueue-THREADS1 2)] (>= 0.8: $(verdict "$spq" 0.8 ">=")): both THREADS=1"
echo "  non-2xx or errors               $svc_errs (0: $( [ "$svc_errs" = 0 ] && echo met || echo NOT met))"
echo "  RSS after load                  $((svc_rss / 1024)) MiB (<= 8: $( [ "$svc_rss" -le 8192 ] && echo met || echo NOT met))"
echo "  cold start                      ${cold_ms} ms (< 20: $(verdict "$cold_ms" 20 "<="))"

if [ "${BENCH_DELIVERY:-1}" != 0 ]; then
    echo
    "$top/bench/spool-delivery.sh" "${BENCH_DELIVERY_JOBS:-100000}" "$rounds"
fi
