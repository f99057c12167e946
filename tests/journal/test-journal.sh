#!/bin/bash
# The daemon's events land in the journal with their fields: a private journald in a private
# mount namespace (no PID-1 systemd needed), the daemon's stderr on a journal stream, then
# `journalctl PLACE_ID=…` must find the enqueue with JOB_ID, MESSAGE_ID, TRACE_ID and SPAN_ID,
# and a path with bytes that are not UTF-8 must reach the journal as text (U+FFFD), not as bytes.
# Usage: test-journal.sh ARGUS_BINARY STANDIN_BINARY
set -euo pipefail

# skip WHY: meson counts exit status 77 as a skipped test.
skip() {
    echo "skipped: $*"
    exit 77
}
if [ "${1:-}" != --inside ]; then
    [ "$(id -u)" = 0 ] || skip "needs root (it mounts a private /run in a mount namespace)"
    for c in /lib/systemd/systemd-journald journalctl systemd-cat systemd-socket-activate; do
        command -v "$c" >/dev/null || skip "needs $c (Debian package systemd)"
    done
    for c in curl ss; do
        command -v "$c" >/dev/null || skip "needs $c"
    done
    unshare -m --propagation private sh -c 'mount -t tmpfs tmpfs /run' 2>/dev/null ||
        skip "cannot mount a tmpfs in a new mount namespace here (no CAP_SYS_ADMIN, or" \
            "unshare is not allowed in this container)"
    exec timeout 60 unshare -m --propagation private "$0" --inside "$@"
fi
shift
argus=$1 standin=$2
msgid_enqueued=a4797921098147a0bd3f6417c42ebc5f
msgid_rejected=e2c01d17756a49f48483174d2c494213
place="journal-$$-$RANDOM"
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# A private /run for journald's sockets (/run/systemd/journal/) and its journal (/run/log/):
# made here rather than assumed, since where no systemd runs (a chroot, a container, a CI
# runner) there is no /run/systemd to mount over; nothing of it reaches the real /run.
mkdir -p /run
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd /run/log
/lib/systemd/systemd-journald &
pids+=($!)
# The socket file appears at bind(), a moment before journald listens: wait for a connection
# to go through, not for the file.
ready=
for _ in $(seq 100); do
    if systemd-cat -t probe true 2>/dev/null; then ready=1; break; fi
    sleep 0.05
done
[ -n "$ready" ] || { echo "journald did not start"; exit 1; }

"$standin" 0 127.0.0.1 >"$work/standin.out" &
pids+=($!)
for _ in $(seq 100); do grep -q PORT= "$work/standin.out" && break; sleep 0.05; done
worker_port=$(sed -n 's/^PORT=//p' "$work/standin.out")

port=
for _ in $(seq 20); do
    # below the ephemeral range (where outgoing connections take their ports), and in no use
    p=$(shuf -i 20000-$(($(cut -f1 /proc/sys/net/ipv4/ip_local_port_range) - 1)) -n 1)
    if ! ss -Htan "sport = :$p" | grep -q .; then port=$p; break; fi
done
[ -n "$port" ]

# stderr becomes a journal stream; JOURNAL_STREAM names it as systemd would ("dev:ino").
systemd-cat -t argus-orchestrator sh -c '
    js=$(stat -L -c "%d:%i" /proc/self/fd/2)
    exec systemd-socket-activate -l "127.0.0.1:$1" -E JOURNAL_STREAM="$js" \
        -E WORKER_NODE_URL="http://127.0.0.1:$2" -E LOG_LEVEL=info "$3"' \
    sh "$port" "$worker_port" "$argus" 2>"$work/cat.err" &
svc=$!
pids+=($svc)
for _ in $(seq 100); do ss -Hltn "sport = :$port" | grep -q . && break; sleep 0.05; done

code=$(curl -s -o "$work/body" -w '%{http_code}' -X POST "http://127.0.0.1:$port/enqueue" \
    -H 'Content-Type: application/json' -H 'X-Request-Id: journal-req-1' \
    -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' \
    -d "{\"placeId\":\"$place\"}") || true
if [ "$code" != 202 ]; then
    echo "POST /enqueue answered $code: $(cat "$work/body" 2>/dev/null)"
    cat "$work/cat.err"
    journalctl -D /run/log/journal --no-pager | tail -20
    exit 1
fi
curl -s -o /dev/null "http://127.0.0.1:$port/health"
# A path with bytes that are not UTF-8 (issue #9): rejected, and logged with its path.
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /journal-%s/\xff\xfe\xc3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' "$$" >&3
answer=$(timeout 5 cat <&3 | head -c 12 || true)
exec 3<&-
if [ "$answer" != "HTTP/1.1 404" ]; then
    echo "GET of a path with invalid UTF-8 answered: $answer"
    exit 1
fi

kill -TERM "$svc"
for _ in $(seq 100); do kill -0 "$svc" 2>/dev/null || break; sleep 0.05; done
journalctl --sync -D /run/log/journal 2>/dev/null || sleep 0.5

fail=0
entry=$(journalctl -D /run/log/journal -o json --no-pager "PLACE_ID=$place" MESSAGE_ID=$msgid_enqueued)
check() {
    if grep -q -- "$1" <<<"$entry"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi
}
check "\"JOB_ID\":\"reviews:$place:start\"" "JOB_ID of the enqueue"
check "\"MESSAGE_ID\":\"$msgid_enqueued\"" "MESSAGE_ID of an enqueue"
check '"SYSLOG_IDENTIFIER":"argus-orchestrator"' "SYSLOG_IDENTIFIER"
check '"REQUEST_ID":"journal-req-1"' "REQUEST_ID from X-Request-Id"
check '"TRACE_ID":"4bf92f3577b34da6a3ce929d0e0e4736"' "TRACE_ID from traceparent"
check '"SPAN_ID":"[0-9a-f]\{16\}"' "SPAN_ID, ours"
check '"PRIORITY":"6"' "info priority"
check '"HTTP_STATUS":"202"' "HTTP_STATUS"
check '"DURATION_USEC":"[0-9]' "DURATION_USEC"
check "\"WORKER_URL\":\"http://127.0.0.1:$worker_port/enqueue\"" "WORKER_URL"
check '"MESSAGE":"job enqueued successfully"' "MESSAGE"
# Fields hold text: journalctl -o json shows a field that is not UTF-8 as an array of bytes.
rejected=$(journalctl -D /run/log/journal -o json --no-pager MESSAGE_ID=$msgid_rejected)
fffd=$(printf '\xef\xbf\xbd')
if grep -qF "\"MESSAGE\":\"request rejected: GET /journal-$$/$fffd$fffd$fffd: not found\"" <<<"$rejected"; then
    echo "ok: invalid UTF-8 of a path shown as U+FFFD in MESSAGE"
else
    echo "FAIL: invalid UTF-8 of a path not shown as U+FFFD in MESSAGE: $rejected"; fail=1
fi
if journalctl -D /run/log/journal -o json --no-pager SYSLOG_IDENTIFIER=argus-orchestrator |
    grep -qE '"[A-Z_]+":\['; then
    echo "FAIL: a field is not UTF-8 text:"
    journalctl -D /run/log/journal -o json --no-pager SYSLOG_IDENTIFIER=argus-orchestrator |
        grep -E '"[A-Z_]+":\[' | head -3
    fail=1
else
    echo "ok: every field is UTF-8 text"
fi
# structured, not text on the stream: no JSON line went through stdout transport
if journalctl -D /run/log/journal -o json --no-pager _TRANSPORT=stdout | grep -q "$place"; then
    echo "FAIL: the enqueue was logged as a text line, not with fields"; fail=1
else
    echo "ok: logged through the journal API"
fi
# health probes only at debug
if journalctl -D /run/log/journal -o cat --no-pager SYSLOG_IDENTIFIER=argus-orchestrator | grep -q "health probe"; then
    echo "FAIL: a health probe was logged at info"; fail=1
else
    echo "ok: health probe not logged at info"
fi
if [ $fail = 0 ]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
exit $fail
