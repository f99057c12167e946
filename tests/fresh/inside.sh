#!/bin/bash
# Runs inside the fresh root (see run.sh), as root, with the host's network: installs git as a
# new user would, clones the repository from SRC, and runs the README's two commands exactly as
# written. One "ok: …" or "FAIL: …" line per check, "time: …" lines, "N passed, M failed" last.
# Usage: inside.sh SRC   (the checkout's path, bound read-only at the same path)
set -uo pipefail
src=$1
passed=0 failed=0
ok() { echo "ok: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }
finish() {
    echo "$passed passed, $failed failed"
    exit $((failed > 0))
}
# show LOG: its last lines, after a failure
show() { tail -n "${2:-40}" "$1" | sed 's/^/    | /'; }
# procs NAME…: the ids of this container's processes with one of these names (the kernel keeps
# the first 15 characters of a name)
procs() {
    local p c n
    for p in /proc/[0-9]*; do
        c=$(cat "$p/comm" 2>/dev/null) || continue
        for n in "$@"; do [ "$c" = "${n:0:15}" ] && echo "${p#/proc/}"; done
    done
}
start=$SECONDS
lap() { # lap WHAT: how long WHAT took since the last lap
    echo "time: $1: $((SECONDS - start)) s"
    start=$SECONDS
}

# --- what a new user has: Debian 12 and git (installed the strictest way, without recommends:
# a clone over https would also bring ca-certificates, which nothing here needs)
if timeout 600 sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends git' >/root/git.log 2>&1; then
    ok "a fresh minbase root with git only ($(dpkg-query -W -f='${binary:Package}\n' | wc -l) packages)"
else
    bad "apt-get install git in the fresh root"
    show /root/git.log
    finish
fi
lap "installing git"
if timeout 300 git clone -q "$src" /root/argus-orchestrator >/root/clone.log 2>&1; then
    ok "git clone of the checkout ($(git -C /root/argus-orchestrator log -1 --format=%h))"
else
    bad "git clone $src"
    show /root/clone.log
    finish
fi
cd /root/argus-orchestrator || finish
lap "cloning"

# --- ./scripts/run, in a session of its own so that Ctrl-C can be sent as a terminal would:
# SIGINT to its whole process group.
setsid ./scripts/run >/root/run.log 2>&1 </dev/null &
run=$!
code=
deadline=$((SECONDS + 1500)) # the packages and the build, on a loaded machine
while [ $SECONDS -lt $deadline ] && kill -0 $run 2>/dev/null; do
    if command -v curl >/dev/null; then
        code=$(curl -s -o /root/health.json -w '%{http_code}' -m 10 http://localhost:8080/health)
        [ "$code" = 200 ] && break
    fi
    sleep 2
done
if [ "$code" = 200 ]; then
    ok "./scripts/run: curl http://localhost:8080/health answers 200 ($(cat /root/health.json))"
    lap "./scripts/run until /health answered"
    # The README's example, word for word.
    code=$(curl -X POST http://localhost:8080/enqueue \
        -H 'Content-Type: application/json' \
        -d '{"placeId": "ChIJN1t_tDeuEmsRUsoyG83frY4"}' \
        -s -o /root/enqueue.json -w '%{http_code}' -m 30)
    if [ "$code" = 202 ] && grep -q '"status":"enqueued"' /root/enqueue.json; then
        ok "./scripts/run: the README's POST /enqueue answers 202 ($(cat /root/enqueue.json))"
    else
        bad "./scripts/run: the README's POST /enqueue answered $code: $(cat /root/enqueue.json)"
    fi
elif kill -0 $run 2>/dev/null; then
    bad "./scripts/run: no 200 from /health within 1500 s (last: ${code:-no curl yet})"
else
    wait $run
    bad "./scripts/run exited with status $? before /health answered"
fi

if kill -0 $run 2>/dev/null; then
    kill -INT -- -$run # Ctrl-C
    for _ in $(seq 300); do kill -0 $run 2>/dev/null || break; sleep 0.2; done
    if kill -0 $run 2>/dev/null; then
        bad "./scripts/run still runs 60 s after Ctrl-C"
        kill -KILL -- -$run 2>/dev/null
    fi
    wait $run
    rc=$?
    if [ $rc = 0 ]; then ok "Ctrl-C stops ./scripts/run (exit status 0)"; else
        bad "./scripts/run exited with status $rc after Ctrl-C"
    fi
fi
left=$(procs argus-orchestrator argus-worker-standin | paste -sd' ')
if [ -z "$left" ]; then
    ok "no daemon or stand-in left running after ./scripts/run"
else
    bad "processes left after ./scripts/run: $left"
    # shellcheck disable=SC2086 # one id a word
    kill -KILL $left 2>/dev/null
fi
[ "$failed" = 0 ] || show /root/run.log
lap "stopping ./scripts/run"

# --- ./scripts/test, to the end
timeout 2400 ./scripts/test >/root/test.log 2>&1
rc=$?
summary=$(grep -E '^(Ok|Fail|Skipped|Timeout): ' /root/test.log | tr -s ' ' | paste -sd, -)
if [ $rc = 0 ]; then ok "./scripts/test passes ($summary)"; else
    bad "./scripts/test exited with status $rc ($summary)"
    grep -E '^ *[0-9]+/[0-9]+ .* (FAIL|TIMEOUT|SKIP) ' /root/test.log
    show /root/test.log 60
fi
# Every test can run here but the two that need promtool, which ./scripts/test does not install
# (README, "Quick start"): another skipped one would mean a package missing from scripts/deps.sh.
skips=$(grep -E '^ *[0-9]+/[0-9]+ .* SKIP ' /root/test.log || true)
others=$(printf '%s\n' "$skips" | grep -vE 'prometheus / (alert-rules|metrics-lint) ' | grep . || true)
if grep -qE '^Skipped: ' /root/test.log && [ -z "$others" ]; then
    ok "./scripts/test skipped no test but the two that need promtool"
else
    bad "./scripts/test skipped test(s) it should run:"
    printf '%s\n' "$others"
fi
lap "./scripts/test"
finish
