#!/bin/bash
# Runs inside the booted container (see bench/journald.sh) with systemd as PID 1 and journald as
# Debian configures it: installs the .deb, points the service at the worker stand-in, and drives
# it with wrk at LOG_LEVEL=info and at LOG_LEVEL=warn in turn, ROUNDS times. Per run: the jobs
# answered, the CPU time of the service and of journald over the run, the "job enqueued" entries
# journald kept. Writes one line per run to /out/runs and the table to /out/result, "done" last.
set -uo pipefail
# shellcheck disable=SC1091
. /out/params # BENCH_SECONDS, BENCH_ROUNDS
secs=$BENCH_SECONDS rounds=$BENCH_ROUNDS
result=/out/result runs=/out/runs
: >"$result"
: >"$runs"
trap 'echo "done" >>"$result"' EXIT
api=http://127.0.0.1:8080
svc=argus-orchestrator.service
enqueued=a4797921098147a0bd3f6417c42ebc5f

ip link set lo up
systemd-run -q --unit=argus-standin /out/argus-worker-standin 3000 127.0.0.1
dpkg -i /out/argus-orchestrator.deb >/out/dpkg.log 2>&1 || { echo "dpkg -i failed" >>"$result"; exit 1; }

metric() { # metric NAME{LABELS}: its value in the service's /metrics
    curl -s -m 5 "$api/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}
answered() { metric 'argus_http_requests_total{route="enqueue",status="202"}'; }
dropped() { metric 'argus_log_entries_dropped_total{sink="journal"}'; }
shed() { metric 'argus_requests_shed_total{reason="log_backlog"}'; } # 503s for the log backlog
entries() { # enqueued entries in the journal, once journald has caught up
    local a b=-1
    for _ in $(seq 40); do
        journalctl --sync 2>/dev/null
        a=$(journalctl -q -u argus-orchestrator MESSAGE_ID=$enqueued -o cat --no-pager | wc -l)
        [ "$a" = "$b" ] && break
        b=$a
        sleep 0.5
    done
    echo "$a"
}
hz=$(getconf CLK_TCK)
cpu_us() { awk -v hz="$hz" '{ printf "%d\n", ($14 + $15) * 1e6 / hz }' "/proc/$1/stat"; } # user + system
sys_us() { awk -v hz="$hz" '{ printf "%d\n", $15 * 1e6 / hz }' "/proc/$1/stat"; }              # system alone
jpid=$(systemctl show -P MainPID systemd-journald.service)
# the service runs THREADS' default (a loop a CPU): wrk gets a thread a CPU too, for its full rate
wrk_threads=$(nproc)

run() { # run ROUND LEVEL → one line in /out/runs
    local r=$1 level=$2 pid a0 e0 d0 h0 s0 k0 j0 wrk_out
    mkdir -p /etc/systemd/system/$svc.d
    printf '[Service]\nEnvironment=WORKER_NODE_URL=http://127.0.0.1:3000 LOG_LEVEL=%s\n' "$level" \
        >/etc/systemd/system/$svc.d/bench.conf
    systemctl daemon-reload
    systemctl restart $svc
    # warm-up: the worker connections opened, the code paged in; then journald catches up
    wrk -t1 -c64 -d1s -s /out/post.lua "$api/enqueue" >/dev/null 2>&1
    pid=$(systemctl show -P MainPID $svc)
    a0=$(answered) d0=$(dropped) h0=$(shed) e0=$(entries)
    s0=$(cpu_us "$pid") k0=$(sys_us "$pid") j0=$(cpu_us "$jpid")
    wrk_out=$(wrk -t"$wrk_threads" -c64 -d"${secs}s" -s /out/post.lua "$api/enqueue" 2>&1 | sed -n 's/^RESULT //p')
    sleep 1 # what wrk left in flight is answered or abandoned by now
    # journald's CPU counts until it has caught up: entries() waits for that
    local n202=$(($(answered) - a0)) ne=$(($(entries) - e0))
    local ds=$(($(cpu_us "$pid") - s0)) dk=$(($(sys_us "$pid") - k0)) dj=$(($(cpu_us "$jpid") - j0))
    local nd=$(($(dropped) - d0)) nh=$(($(shed) - h0))
    # round level jobs/s p50 p99 errors 202s entries dropped service-µs journald-µs service-sys-µs shed
    echo "$r $level $wrk_out $n202 $ne $nd $ds $dj $dk $nh" >>"$runs"
}

for r in $(seq "$rounds"); do
    for level in info warn; do run "$r" "$level"; done
done

{
    echo "wrk -t$wrk_threads -c64 -d${secs}s POST /enqueue (distinct placeIds), worker stand-in answering 201;" \
        "$rounds interleaved rounds; journald $(journalctl --version | head -1 | cut -d' ' -f2)," \
        "$(nproc) cores"
    printf '%-5s %-5s %8s %8s %7s %8s %8s %12s %11s %12s %12s %8s %8s\n' round level jobs/s p99-ms \
        errors 202s entries entries/job "service µs" "(system)" "journald µs" dropped shed/s
    awk -v secs="$secs" '{ n = $7 ? $7 : 1
        printf "%-5s %-5s %8.0f %8.2f %7d %8d %8d %12.4f %11.1f %12.1f %12.1f %8d %8.0f\n",
            $1, $2, $7 / secs, $5, $6, $7, $8, $8 / n, $10 / n, $12 / n, $11 / n, $9, $13 / secs }' "$runs"
    echo "(service µs, journald µs: CPU time, user + system, per job answered 202, jobs/s: 202s a second, (system) the" \
        "service's in the kernel; entries/job: \"job enqueued\" entries journalctl finds per 202," \
        "1.0000 at info when nothing is dropped; shed/s: jobs answered 503 for the log backlog)"
    awk -v secs="$secs" '{ cpu[$2] += $10; n[$2] += $7; rate[$2] += $7 / secs; k[$2]++ }
        END {
            printf "over the rounds: service %.1f µs per job at info, %.1f at warn: %.2fx;",
                cpu["info"] / n["info"], cpu["warn"] / n["warn"],
                (cpu["info"] / n["info"]) / (cpu["warn"] / n["warn"])
            printf " jobs/s %.0f at info, %.0f at warn\n", rate["info"] / k["info"], rate["warn"] / k["warn"]
        }' "$runs"
} >>"$result"
