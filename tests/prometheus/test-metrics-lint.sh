#!/bin/bash
# GET /metrics of the daemon with a spool, read as Prometheus reads it: `promtool check metrics`
# has nothing to say (names, types, HELP lines, suffixes); every metric and spool result the
# alert rules use is exported, so that no rule watches a series that does not exist; and the
# metrics exported are those the README's "GET /metrics" table documents, no more, no fewer.
# The daemon runs socket-activated on loopback with a spool in a scratch directory, a job
# spooled (the stand-in answers 503 for it), and is stopped with SIGTERM.
# Usage: test-metrics-lint.sh ARGUS_BINARY STANDIN_BINARY RULES_FILE README
set -uo pipefail
argus=$1 standin=$2 rules=$3 readme=$4
skip() {
    echo "skipped: $*"
    exit 77
}
command -v promtool >/dev/null || skip "needs promtool (Debian package prometheus)"
command -v systemd-socket-activate >/dev/null ||
    skip "needs systemd-socket-activate (Debian package systemd)"
for c in curl ss shuf; do
    command -v "$c" >/dev/null || skip "needs $c"
done
passed=0 failed=0
ok() { echo "ok: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

"$standin" 0 127.0.0.1 >"$work/standin.out" &
pids+=($!)
for _ in $(seq 100); do grep -q PORT= "$work/standin.out" && break; sleep 0.05; done
worker_port=$(sed -n 's/^PORT=//p' "$work/standin.out")
[ -n "$worker_port" ] || { echo "FAIL: the stand-in did not start"; exit 1; }

# A port below the ephemeral range and free when chosen; systemd-socket-activate exits when it
# was taken meanwhile, and another is tried.
svc= port=
for _ in 1 2 3 4 5; do
    p=$(shuf -i 20000-$(($(cut -f1 /proc/sys/net/ipv4/ip_local_port_range) - 1)) -n 1)
    ss -Htan "sport = :$p" | grep -q . && continue
    systemd-socket-activate -l "127.0.0.1:$p" -E WORKER_NODE_URL="http://127.0.0.1:$worker_port" \
        -E SPOOL_DIR="$work/spool" -E LOG_LEVEL=warn "$argus" 2>"$work/stderr" &
    svc=$!
    for _ in $(seq 100); do
        ss -Hltn "sport = :$p" | grep -q . && { port=$p; break; }
        kill -0 "$svc" 2>/dev/null || break
        sleep 0.05
    done
    [ -n "$port" ] && break
    kill -9 "$svc" 2>/dev/null
    wait "$svc" 2>/dev/null
done
[ -n "$port" ] || { echo "FAIL: systemd-socket-activate could not listen on five ports in a row"; exit 1; }
pids+=("$svc")
base="http://127.0.0.1:$port"

post() {
    curl -s -m 10 -o "$work/body" -w '%{http_code}' -X POST "$base/enqueue" \
        -H 'Content-Type: application/json' -d "{\"placeId\":\"$1\"}"
}
code=$(post "metrics-$$")
[ "$code" = 202 ] && grep -q '"status":"enqueued"' "$work/body" && ok "a job enqueued" ||
    bad "a job: $code $(cat "$work/body")"
code=$(post "status503-metrics-$$")
[ "$code" = 202 ] && grep -q '"status":"queued"' "$work/body" && ok "a job the worker refuses spooled" ||
    bad "a job the worker refuses: $code $(cat "$work/body") $(tail -3 "$work/stderr")"

if curl -s -m 10 -o "$work/metrics" "$base/metrics" && [ -s "$work/metrics" ]; then
    if out=$(promtool check metrics <"$work/metrics" 2>&1) && [ -z "$out" ]; then
        ok "promtool check metrics: clean ($(grep -c '^# TYPE ' "$work/metrics") metrics)"
    else
        bad "promtool check metrics: $out"
    fi
    grep -qx 'argus_spool_up 1' "$work/metrics" && ok "argus_spool_up 1" ||
        bad "argus_spool_up 1 missing: $(grep '^argus_spool_up' "$work/metrics")"
    # Every argus_ name in the rules' expressions, and every result a rule selects
    # (result=~"a|b" or result="a"), is a series of /metrics.
    exprs=$(sed -n 's/^ *expr: //p' "$rules")
    for name in $(grep -o 'argus_[a-z_]*' <<<"$exprs" | sort -u); do
        grep -q "^$name[{ ]" "$work/metrics" && ok "$name, used by the alert rules, is exported" ||
            bad "$name, used by the alert rules, is not in /metrics"
    done
    while read -r name values; do
        for v in ${values//|/ }; do
            grep -q "^$name{.*result=\"$v\"" "$work/metrics" &&
                ok "$name{result=\"$v\"}, selected by an alert rule, is exported" ||
                bad "$name{result=\"$v\"}, selected by an alert rule, is not in /metrics"
        done
    done < <(sed -n 's/.*\(argus_[a-z_]*\){result=~*"\([^"]*\)"}.*/\1 \2/p' <<<"$exprs")
    # The README's table: every `argus_…` or `process_…` name between "### GET /metrics" and the
    # next heading of its level or above.
    sed -n 's/^# TYPE \([a-z_]*\) .*/\1/p' "$work/metrics" | sort -u >"$work/live"
    awk '/^### GET \/metrics/ { on = 1; next } on && /^##? / { on = 0 } on' "$readme" |
        grep -o '`\(argus\|process\)_[a-z_]*' | tr -d '`' | sort -u >"$work/documented"
    if [ ! -s "$work/documented" ]; then
        bad "no metric found in the README's \"GET /metrics\" section"
    else
        missing=$(comm -23 "$work/documented" "$work/live" | tr '\n' ' ')
        undocumented=$(comm -13 "$work/documented" "$work/live" | tr '\n' ' ')
        [ -z "$missing" ] && ok "every metric the README documents is exported ($(wc -l <"$work/documented"))" ||
            bad "documented in the README but not in /metrics: $missing"
        [ -z "$undocumented" ] && ok "every metric exported is documented in the README" ||
            bad "in /metrics but not in the README's table: $undocumented"
    fi
else
    bad "GET /metrics answered nothing"
fi

kill -TERM "$svc"
st=
for _ in $(seq 200); do
    kill -0 "$svc" 2>/dev/null || { wait "$svc"; st=$?; break; }
    sleep 0.05
done
[ "$st" = 0 ] && ok "SIGTERM: exit 0" || bad "SIGTERM: exit status ${st:-none within 10 s}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
