#!/bin/bash
# Benchmark under a real journald: the .deb installed in a container booted with systemd as PID 1
# (scripts/in-container), the service socket-activated as shipped and forwarding to the worker
# stand-in, driven by wrk (a thread a CPU, as THREADS' default; 64 connections, distinct jobs) at
# LOG_LEVEL=info (one journal entry per job) and at LOG_LEVEL=warn (none), the runs interleaved
# ROUNDS times (bench/journald-inside.sh). Prints, per run, jobs answered 202 a second, the
# service's and journald's CPU time per job, the "job enqueued" entries journalctl finds per 202
# (1.0000 when none is dropped), the entries dropped and the jobs shed (503 for the log backlog) a
# second; then the service's CPU per job at info against warn. Needs root, systemd-nspawn and wrk (tests/e2e/'s packages).
# Usage: bench/journald.sh ARGUS_DEB STANDIN_BINARY [SECONDS_PER_RUN (default 8)] [ROUNDS (default 2)]
set -euo pipefail
deb=$(readlink -f "$1") standin=$(readlink -f "$2") secs=${3:-8} rounds=${4:-2}
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 1; }

out=$(mktemp -d /tmp/argus-bench-journald.XXXXXX)
trap 'rm -rf "$out"' EXIT
chmod 755 "$out"
cp "$deb" "$out/argus-orchestrator.deb"
cp "$standin" "$out/argus-worker-standin"
cp "$here/post.lua" "$out/post.lua"
chmod +x "$out/argus-worker-standin"
printf 'BENCH_SECONDS=%d\nBENCH_ROUNDS=%d\n' "$secs" "$rounds" >"$out/params"
echo "argus-orchestrator under journald: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
    "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
# each run: a restart, 1 s of warm-up, SECONDS of load, journald catching up (up to 20 s)
"$here/../scripts/in-container" bench-journald "$out" "$here/journald-inside.sh" \
    $((rounds * 2 * (secs + 30) + 60))

if [ "$(tail -1 "$out/result" 2>/dev/null)" != "done" ] || [ ! -s "$out/runs" ]; then
    echo "the container left no result; its console:"
    cat "$out/result" 2>/dev/null || true
    tail -50 "$out/console.log"
    exit 1
fi
sed '$d' "$out/result"
