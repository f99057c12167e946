#!/bin/bash
# Runs inside the booted container (see run.sh) as argus-e2e.service, with systemd as PID 1.
# Writes one line per check to /out/result and "N passed, M failed" last.
set -uo pipefail
result=/out/result
: >"$result"
passed=0 failed=0
ok() { echo "ok: $1" >>"$result"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1" >>"$result"; failed=$((failed + 1)); }
check() { # check DESCRIPTION COMMAND…
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi
}
finish() {
    {
        echo "--- journal of argus-orchestrator (last 40 lines)"
        journalctl -u argus-orchestrator.service -u argus-orchestrator.socket --no-pager -n 40
        echo "$passed passed, $failed failed"
    } >>"$result"
    exit 0
}
trap finish EXIT

api=http://127.0.0.1:8080
svc=argus-orchestrator.service
sock=argus-orchestrator.socket
post() { # post PLACE_ID [CURL_ARGS…] -> prints the HTTP status
    local place=$1
    shift
    curl -s -o /tmp/body -w '%{http_code}' -m 20 "$@" -X POST "$api/enqueue" \
        -H 'Content-Type: application/json' -d "{\"placeId\":\"$place\"}"
}
state() { systemctl show -P "$1" "$2"; }
wait_for() { # wait_for SECONDS COMMAND…
    local n=$(($1 * 10))
    shift
    for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}
dropin() { # dropin NAME=VALUE…: the service's environment for the test
    mkdir -p /etc/systemd/system/$svc.d
    printf '[Service]\n' >/etc/systemd/system/$svc.d/test.conf
    for kv in "$@"; do printf 'Environment=%s\n' "$kv" >>/etc/systemd/system/$svc.d/test.conf; done
    systemctl daemon-reload
}

# run.sh gives the container a network of its own (so that ports 8080 and 3000 are free here
# whatever listens on the host's), whose loopback starts down.
ip link set lo up || bad "ip link set lo up (the container's loopback)"

# --- install
systemd-run -q --unit=argus-standin /out/argus-worker-standin 3000 127.0.0.1
check "dpkg -i installs the package" dpkg -i /out/argus-orchestrator.deb
check "the socket is enabled" systemctl is-enabled $sock
check "the socket is active after install" systemctl is-active $sock
check "the service is not started eagerly" test "$(state ActiveState $svc)" = inactive
check "systemd-analyze verify accepts the installed units" \
    systemd-analyze verify /lib/systemd/system/$sock /lib/systemd/system/$svc
check "the man page is installed" test -f /usr/share/man/man8/argus-orchestrator.8.gz
check "the environment file is a conffile" grep -qx /etc/argus-orchestrator/orchestrator.env \
    /var/lib/dpkg/info/argus-orchestrator.conffiles
dropin WORKER_NODE_URL=http://127.0.0.1:3000 WORKER_TIMEOUT_MS=5000
wait_for 5 curl -s -o /dev/null 127.0.0.1:3000/health

# --- first request starts it
place="e2e-first-$RANDOM"
code=$(post "$place" -H 'X-Request-Id: e2e-req-1')
check "POST /enqueue through port 8080 answers 202 (got $code)" test "$code" = 202
check "the first connection started the service" test "$(state ActiveState $svc)" = active
check "the service reports STATUS=" sh -c "systemctl show -P StatusText $svc | grep -q 'Serving on'"
check "the memory backstop is in force (MemoryMax=1G)" test "$(state MemoryMax $svc)" = 1073741824

# --- journal
journalctl --sync 2>/dev/null || true
entry=$(journalctl -u argus-orchestrator "PLACE_ID=$place" -o json --no-pager)
check "journalctl -u argus-orchestrator PLACE_ID= finds the job's JOB_ID" \
    grep -q "\"JOB_ID\":\"reviews:$place:start\"" <<<"$entry"
check "… with the enqueue MESSAGE_ID" grep -q '"MESSAGE_ID":"a4797921098147a0bd3f6417c42ebc5f"' <<<"$entry"
check "… with REQUEST_ID" grep -q '"REQUEST_ID":"e2e-req-1"' <<<"$entry"
check "journalctl -x shows the catalog text" sh -c \
    "journalctl -x -u argus-orchestrator PLACE_ID=$place --no-pager | grep -q 'Review job reviews:$place:start enqueued'"

# --- journald keeps every entry of a burst at full speed, and of a second one within 30 s
# (journald's default keeps 10000 per 30 s, times 1 to 4 with the space it may still use under
# its default SystemMaxUse=: at most 40000. The unit lifts it with LogRateLimitIntervalSec= and
# LogRateLimitBurst=, which systemd hands journald through /run/systemd/units/ when the service
# starts.) The 202s are counted by the service itself (/metrics), since wrk drops what is in
# flight when its time is up.
enqueued=a4797921098147a0bd3f6417c42ebc5f
burst_sec=${E2E_BURST_SEC:-3}
check "systemd passed the unit's log rate limit to journald ($(readlink /run/systemd/units/log-rate-limit-burst:$svc 2>&1) per $(readlink /run/systemd/units/log-rate-limit-interval:$svc 2>&1) µs)" \
    test -L /run/systemd/units/log-rate-limit-burst:$svc
cat >/tmp/burst.lua <<'LUA'
-- distinct placeIds: BURST-THREAD-N
local prefix, n = os.getenv("BURST"), 0
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("tid", threads)
end
function request()
    n = n + 1
    return wrk.format("POST", "/enqueue", { ["Content-Type"] = "application/json" },
        string.format('{"placeId":"%s-%d-%d"}', prefix, tid, n))
end
LUA
answered() { # the service's count of 202s
    curl -s -m 5 "$api/metrics" | sed -n 's/^argus_http_requests_total{route="enqueue",status="202"} //p'
}
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
journal_bytes() { du -sb /var/log/journal /run/log/journal 2>/dev/null | awk '{ n += $1 } END { print n }'; }
burst() { # burst NAME: wrk for burst_sec s; sets n202 and nentries, the burst's 202s and entries
    local a0 e0
    a0=$(answered) e0=$(entries)
    BURST=$1 wrk -t2 -c64 -d"${burst_sec}s" -s /tmp/burst.lua "$api" >"/tmp/wrk.$1" 2>&1
    sleep 1 # what wrk left in flight is answered or abandoned by now
    n202=$(($(answered) - a0)) nentries=$(($(entries) - e0))
    echo "info: burst $1: $n202 answered 202 ($(awk '/^Requests\/sec/ { print $2 }' "/tmp/wrk.$1") requests/s), $nentries entries" >>"$result"
}
bytes0=$(journal_bytes)
t0=$(date +%s)
burst b1
check "a burst at full speed: one journal entry per 202 ($nentries for $n202)" \
    test "$n202" -ge 10000 -a "$nentries" = "$n202"
total=$n202 kept=$nentries
burst b2
t2=$(date +%s)
total=$((total + n202)) kept=$((kept + nentries))
check "a second burst, over $((t2 - t0)) s after the first began: one entry per 202 ($nentries for $n202)" \
    test "$n202" -ge 10000 -a "$nentries" = "$n202" -a $((t2 - t0)) -lt 30
check "… the two bursts ($total jobs) are more than journald's default would keep in 30 s (40000 at most)" \
    test "$total" -gt 40000
check "journalctl PLACE_ID= finds a job of the burst" \
    test "$(journalctl -q -u argus-orchestrator PLACE_ID=b2-1-1000 -o cat --no-pager | wc -l)" = 1
grew=$(($(journal_bytes) - bytes0))
echo "info: the journal files grew by $grew bytes for $kept entries, $((grew / (kept + 1))) bytes each" \
    "(the files grow by 8 MiB at a time)" >>"$result"
# --- journald stopped under load (issue #14): the service keeps answering, the entries arrive
tag="stall-$RANDOM"
jpid=$(systemctl show -P MainPID systemd-journald.service)
seq 1 100000 | timeout 7 xargs -P 6 -I{} curl -s -o /dev/null -w '%{http_code}\n' -m 10 \
    -X POST "$api/enqueue" -H 'Content-Type: application/json' \
    -d "{\"placeId\":\"$tag-{}\"}" >/tmp/stall.codes 2>/dev/null &
load=$!
sleep 1
kill -STOP "$jpid"
slowest=0 probes=0 late=0
end=$((SECONDS + 4))
while [ $SECONDS -lt $end ]; do
    t=$(curl -s -o /dev/null -m 1 -w '%{http_code} %{time_total}' "$api/health")
    probes=$((probes + 1))
    case $t in
    "200 "*) awk -v t="${t#200 }" -v s="$slowest" 'BEGIN { exit !(t > s) }' && slowest=${t#200 } ;;
    *) late=$((late + 1)) ;;
    esac
    sleep 0.2
done
answered_during=$(grep -c '^202$' /tmp/stall.codes)
kill -CONT "$jpid"
wait $load
accepted=$(grep -c '^202$' /tmp/stall.codes)
check "with journald stopped 4 s under load, /health answered within 1 s ($probes probes, $late late, slowest ${slowest}s)" \
    test "$late" = 0
check "… and jobs kept being answered ($answered_during 202s by then, $accepted in all)" \
    test "$answered_during" -gt 0
# the entries, or the count of those dropped, arrive once journald runs again
sleep 1
journalctl --sync 2>/dev/null || true
logged=$(journalctl -u $svc MESSAGE_ID=a4797921098147a0bd3f6417c42ebc5f -o cat --output-fields=PLACE_ID --no-pager |
    grep -c "^$tag-")
dropped=$(journalctl -u $svc MESSAGE_ID=c63ae9255ddd4d18b3ae0b3e4e9e0faa -o cat --output-fields=DROPPED_ENTRIES --no-pager |
    awk '{ n += $1 } END { print n + 0 }')
check "… then every 202 has its entry, or is counted in a dropped entry ($logged entries, $dropped dropped, $accepted 202s)" \
    test $((logged + dropped)) -ge "$accepted"

# --- stop while a slow request is in flight: it completes, Result=success
slow="slow2500-e2e-$RANDOM"
post "$slow" >/tmp/slow.code &
slow_pid=$!
wait_for 5 sh -c "curl -s 127.0.0.1:3000/count?placeId=$slow | grep -q '\"count\":1'"
systemctl stop $svc
wait $slow_pid
check "systemctl stop lets the in-flight request finish with 202 (got $(cat /tmp/slow.code))" \
    test "$(cat /tmp/slow.code)" = 202
check "the stop ends with Result=success" test "$(state Result $svc)" = success
check "the stop ends with exit status 0" test "$(state ExecMainStatus $svc)" = 0
check "the socket stays active" systemctl is-active $sock

# --- a request arriving during a stop is answered by the next start, not refused
slow="slow2000-e2e-$RANDOM"
post "e2e-warm-$RANDOM" >/dev/null
post "$slow" >/tmp/slow.code &
slow_pid=$!
wait_for 5 sh -c "curl -s 127.0.0.1:3000/count?placeId=$slow | grep -q '\"count\":1'"
systemctl stop --no-block $svc
wait_for 5 sh -c "test \"\$(systemctl show -P ActiveState $svc)\" = deactivating"
during="e2e-during-stop-$RANDOM"
code=$(post "$during")
wait $slow_pid
check "a request sent during the stop is answered by the next start (got $code)" test "$code" = 202
check "… and the in-flight one still finished (got $(cat /tmp/slow.code))" test "$(cat /tmp/slow.code)" = 202
check "… by a new start of the service" test "$(state ActiveState $svc)" = active

# --- the watchdog: pinged by sd-event, so a short WatchdogSec= does not kill it
mkdir -p /etc/systemd/system/$svc.d
printf '[Service]\nWatchdogSec=1s\n' >/etc/systemd/system/$svc.d/watchdog.conf
systemctl daemon-reload
systemctl stop $svc
code=$(post "e2e-watchdog-$RANDOM")
sleep 3.5
check "with WatchdogSec=1s it answers (got $code) and is still running 3.5 s later" \
    sh -c "test $code = 202 && test \"\$(systemctl show -P ActiveState $svc)\" = active"
check "… without a watchdog timeout" sh -c \
    "! journalctl -u $svc --no-pager | grep -qi 'watchdog timeout'"
rm -f /etc/systemd/system/$svc.d/watchdog.conf
systemctl daemon-reload

# --- idle exit, and the socket brings it back
systemctl stop $svc
dropin WORKER_NODE_URL=http://127.0.0.1:3000 IDLE_EXIT_SEC=1
code=$(post "e2e-idle-$RANDOM")
check "with IDLE_EXIT_SEC the service answers (got $code)" test "$code" = 202
check "IDLE_EXIT_SEC makes it exit by itself" wait_for 10 sh -c "test \"\$(systemctl show -P ActiveState $svc)\" = inactive"
check "… cleanly (Result=success)" test "$(state Result $svc)" = success
code=$(post "e2e-after-idle-$RANDOM")
check "the socket starts it again on the next request (got $code)" test "$code" = 202

# --- a bad configuration fails once with 78 and no restart loop
systemctl stop $svc
dropin WORKER_NODE_URL=ftp://nowhere
systemctl reset-failed $svc 2>/dev/null || true
since=$(date '+%Y-%m-%d %H:%M:%S')
sleep 1
code=$(curl -s -o /tmp/body -w '%{http_code}' -m 5 "$api/health")
wait_for 10 sh -c "test \"\$(systemctl show -P Result $svc)\" = exit-code"
check "a bad WORKER_NODE_URL fails the start with exit 78" test "$(state ExecMainStatus $svc)" = 78
check "… the client is answered 503, not left hanging (got $code)" test "$code" = 503
sleep 3
check "… and is not restarted (NRestarts=0)" test "$(state NRestarts $svc)" = 0
starts=$(journalctl -u $svc --since "$since" --no-pager | grep -c 'invalid configuration: WORKER_NODE_URL=ftp://nowhere')
check "… it failed once, no start loop ($starts start(s))" test "$starts" = 1
check "… and the socket keeps listening" systemctl is-active $sock

# --- removal stops both
rm -rf /etc/systemd/system/$svc.d && systemctl daemon-reload
systemctl reset-failed $svc $sock 2>/dev/null || true
systemctl start $sock
post "e2e-before-remove-$RANDOM" >/dev/null
check "dpkg -r removes the package" dpkg -r argus-orchestrator
check "removal stops the socket" sh -c "! systemctl is-active -q $sock"
check "removal stops the service" sh -c "! systemctl is-active -q $svc"
