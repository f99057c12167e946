#!/bin/bash
# The container image and the Kubernetes manifests, checked with podman: builds the image from the
# top-level Dockerfile as it is, runs it (read-only, no capabilities) against the worker stand-in
# on this host's loopback, and plays deploy/kubernetes/ with `podman kube play`.
# Usage: tests/container/run.sh STANDIN_BINARY    (as root; CONTAINER_PACKAGES in scripts/deps.sh)
# One "ok: …" or "FAIL: …" line a check, then "N passed, M failed"; exit status 1 on a failure.
# Every container, pod and secret it makes is removed on exit; the image and the base stay.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
standin=$(readlink -f "${1:?usage: tests/container/run.sh STANDIN_BINARY}")
[ "$(id -u)" = 0 ] || { echo "FAIL: needs root (rootful podman)"; exit 1; }
py=/usr/bin/python3 # Debian's, which has python3-prometheus-client and python3-yaml

# One run at a time on a machine: the pods' names come from the manifests.
exec 9>/run/lock/argus-orchestrator-container-test.lock
flock -w 900 9 || { echo "FAIL: another run of this test holds its lock"; exit 1; }

tmp=$(mktemp -d /tmp/argus-container.XXXXXX)
name=argus-ct-run-$$
standin_pid=
passed=0 failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() { # check DESCRIPTION COMMAND…: ok when the command succeeds
    local what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}

cleanup() {
    set +e
    podman rm -f -t 0 "$name" >/dev/null 2>&1
    [ -f "$tmp/play.yaml" ] && podman kube down "$tmp/play.yaml" >/dev/null 2>&1
    [ -f "$tmp/worker.yaml" ] && podman kube down "$tmp/worker.yaml" >/dev/null 2>&1
    # what podman kube play made of the Secret and kube down leaves (the names are this test's
    # on this machine, under its lock)
    podman secret rm argus-orchestrator >/dev/null 2>&1
    podman volume rm argus-orchestrator >/dev/null 2>&1
    if [ -n "$standin_pid" ]; then
        kill "$standin_pid" 2>/dev/null
        wait "$standin_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# The podman settings this kind of machine needs: limits within the shell's hard limits (the
# runtime may not raise them), and runc (crun 1.8 refuses a mixed cgroup layout).
nofile=$(ulimit -Hn) nproc=$(ulimit -Hu)
[ "$nofile" = unlimited ] && nofile=1048576
{ [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
cat >"$tmp/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF="$tmp/containers.conf"
# podman's own complaints (no systemd to run health-check timers here) go to this file.
plog=$tmp/podman.log
pm() { podman "$@" 2>>"$plog"; }

free_port() {
    "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# http METHOD URL [curl options…]: prints the status code (000 when there is no answer), the
# body goes to $tmp/body.
http() {
    local method=$1 url=$2
    shift 2
    curl -sS -m 10 -o "$tmp/body" -w '%{http_code}' -X "$method" "$@" "$url" 2>/dev/null || true
}
# wait_health URL SECONDS: until GET URL answers 200, bounded.
wait_health() {
    local deadline=$((SECONDS + $2))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(http GET "$1")" = 200 ] && return 0
        sleep 0.05
    done
    return 1
}
enqueue() { # enqueue BASE PLACE [curl options…]: the status
    local base=$1 place=$2
    shift 2
    http POST "$base/enqueue" -H 'Content-Type: application/json' -d "{\"placeId\":\"$place\"}" "$@"
}
worker_count() { # worker_count WORKER_BASE PLACE
    curl -sS -m 10 "$1/count?placeId=$2" 2>/dev/null | sed -n 's/.*"count":\([0-9]*\).*/\1/p'
}
# metrics_ok URL: /metrics read by prometheus_client's parser, with the process metrics and at
# least one enqueue answered 202.
metrics_ok() {
    curl -sS -m 10 "$1" >"$tmp/metrics" 2>/dev/null || return 1
    "$py" - "$tmp/metrics" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
families = list(text_string_to_metric_families(open(sys.argv[1]).read()))
types = {f.name: f.type for f in families}
samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}
def value(name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))
want = {"process_cpu_seconds": "counter", "process_resident_memory_bytes": "gauge",
        "process_virtual_memory_bytes": "gauge", "process_open_fds": "gauge",
        "process_max_fds": "gauge", "process_start_time_seconds": "gauge"}
bad = [n for n, t in want.items() if types.get(n) != t]
bad += [n for n in ("process_resident_memory_bytes", "process_virtual_memory_bytes",
                    "process_open_fds", "process_max_fds") if not value(n) or value(n) <= 0]
if value("process_cpu_seconds_total") is None or value("process_cpu_seconds_total") < 0:
    bad.append("process_cpu_seconds_total")
if not value("process_start_time_seconds") or value("process_start_time_seconds") < 1e9:
    bad.append("process_start_time_seconds")
if not value("argus_http_requests_total", route="enqueue", status="202"):
    bad.append('argus_http_requests_total{route="enqueue",status="202"}')
if bad:
    print("metrics missing or wrong: " + ", ".join(bad), file=sys.stderr)
    sys.exit(1)
PY
}

# --- the base images: pulled where a registry is reachable; made with debootstrap here -----
if pm image exists docker.io/library/debian:bookworm-slim &&
    pm image exists docker.io/library/debian:bookworm; then
    ok "base images debian:bookworm and debian:bookworm-slim are there"
else
    cache=${ARGUS_CI_CACHE:-/var/cache/argus-orchestrator-ci}/bookworm-minbase
    "$top/tests/lib/minbase-root.sh" "$cache"
    tar --numeric-owner -C "$cache" -c . |
        pm import --change 'CMD ["bash"]' - docker.io/library/debian:bookworm-slim >/dev/null
    pm tag docker.io/library/debian:bookworm-slim docker.io/library/debian:bookworm
    ok "base images made from a debootstrap minbase root (no registry reachable)"
fi

# --- the image ---------------------------------------------------------------------------------
t0=$(date +%s)
if ! pm build --format docker -t argus-orchestrator "$top" >"$tmp/build.log" 2>&1; then
    tail -30 "$tmp/build.log"
    fail "podman build --format docker -t argus-orchestrator ."
    echo "$passed passed, $failed failed"
    exit 1
fi
ok "podman build -t argus-orchestrator . ($(($(date +%s) - t0)) s, the Dockerfile as it is)"

size=$(pm image inspect argus-orchestrator --format '{{.Size}}')
base_size=$(pm image inspect docker.io/library/debian:bookworm-slim --format '{{.Size}}')
added=$(((size - base_size) / 1000000))
if [ "$added" -le 40 ]; then
    ok "image $((size / 1000000)) MB, $added MB on top of debian:bookworm-slim"
else
    fail "image $((size / 1000000)) MB: $added MB on top of debian:bookworm-slim (over 40)"
fi

version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$top/meson.build" | head -1)
inspect() { pm image inspect argus-orchestrator --format "$1"; }
check "label org.opencontainers.image.version is meson.build's $version" \
    [ "$(inspect '{{index .Config.Labels "org.opencontainers.image.version"}}')" = "$version" ]
labels_ok() {
    [ "$(inspect '{{index .Config.Labels "org.opencontainers.image.licenses"}}')" = MIT ] &&
        [ -n "$(inspect '{{index .Config.Labels "org.opencontainers.image.source"}}')" ]
}
check "labels org.opencontainers.image.licenses (MIT) and .source" labels_ok
user=$(inspect '{{.Config.User}}')
check "runs as a numeric non-root user ($user)" grep -Eq '^[1-9][0-9]*(:[0-9]+)?$' <<<"$user"
ports_signal_ok() {
    # shellcheck disable=SC2016 # a Go template, not a shell expansion
    [ "$(inspect '{{range $p, $v := .Config.ExposedPorts}}{{$p}} {{end}}')" = "8080/tcp " ] &&
        [ "$(inspect '{{.Config.StopSignal}}')" = SIGTERM ]
}
check "EXPOSE 8080, STOPSIGNAL SIGTERM" ports_signal_ok
check "HEALTHCHECK runs argus-orchestrator --probe" \
    grep -q -- '--probe' <<<"$(inspect '{{json .Config.Healthcheck}}')"

# --- run it: the stand-in on this host's loopback, reached through slirp4netns -----------------
"$standin" 0 127.0.0.1 >"$tmp/standin.out" &
standin_pid=$!
for _ in $(seq 100); do
    grep -q '^PORT=' "$tmp/standin.out" && break
    sleep 0.05
done
sport=$(sed -n 's/^PORT=//p' "$tmp/standin.out")
[ -n "$sport" ] || { fail "the worker stand-in did not start"; exit 1; }
worker=http://127.0.0.1:$sport

token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
mkdir -p "$tmp/secrets"
printf '%s\n' "$token" >"$tmp/secrets/api-token"
chmod 444 "$tmp/secrets/api-token"

# Read-only root, no /tmp either, no capabilities; the api-token in /run/secrets (the image's
# CREDENTIALS_DIRECTORY) as the README says. 10.0.2.2 is the host's loopback.
for attempt in 1 2 3; do
    port=$(free_port)
    base=http://127.0.0.1:$port
    t0=$(date +%s%N)
    pm run -d --name "$name" --read-only --read-only-tmpfs=false --cap-drop=ALL \
        --security-opt=no-new-privileges \
        --network slirp4netns:allow_host_loopback=true -p "127.0.0.1:$port:8080" \
        -e WORKER_NODE_URL="http://10.0.2.2:$sport" -e SHUTDOWN_TIMEOUT_SEC=20 \
        -v "$tmp/secrets/api-token:/run/secrets/api-token:ro" argus-orchestrator >/dev/null &&
        break
    pm rm -f -t 0 "$name" >/dev/null || true # the port was taken meanwhile: another
    [ "$attempt" = 3 ] && { fail "podman run"; tail -5 "$plog"; exit 1; }
done
if wait_health "$base/health" 30; then
    ok "podman run -p 127.0.0.1:$port:8080: /health 200 after $((($(date +%s%N) - t0) / 1000000)) ms"
else
    fail "podman run: no /health 200 within 30 s"
    pm logs "$name" 2>&1 | tail -5
fi
check "GET /health: {\"status\":\"healthy\",…}" grep -q "\"status\":\"healthy\"" "$tmp/body"
check "GET /ready 200" [ "$(http GET "$base/ready")" = 200 ]

# confined CONTAINER: uid 10001, no capabilities, a read-only root file system (no /tmp either)
confined() {
    [ "$(pm exec "$1" id -u)" = 10001 ] &&
        [ "$(pm inspect "$1" --format '{{.HostConfig.ReadonlyRootfs}} {{len .EffectiveCaps}}')" = "true 0" ] &&
        ! pm exec "$1" touch /tmp/x 2>/dev/null && ! pm exec "$1" touch /x 2>/dev/null
}
check "runs as uid 10001, no capabilities, read-only root file system (no /tmp either)" \
    confined "$name"

place=ctrun-$$
check "POST /enqueue without the token: 401 (api-token read from /run/secrets)" \
    [ "$(enqueue "$base" "$place")" = 401 ]
check "POST /enqueue with the token: 202" \
    [ "$(enqueue "$base" "$place" -H "Authorization: Bearer $token")" = 202 ]
check "the stand-in on the host got the job once" [ "$(worker_count "$worker" "$place")" = 1 ]

check "podman healthcheck run: healthy" pm healthcheck run "$name"

if metrics_ok "$base/metrics" 2>"$tmp/metrics.err"; then
    ok "/metrics parsed by prometheus_client, process metrics present"
else
    fail "/metrics: $(cat "$tmp/metrics.err")"
fi

# A request in flight (the stand-in answers after 4 s) when podman stop sends SIGTERM: it is
# answered 202, then the process exits 0.
slow=slow4000-ctdrain-$$
(enqueue "$base" "$slow" -H "Authorization: Bearer $token" >"$tmp/slow.status") &
slow_pid=$!
for _ in $(seq 200); do
    [ "$(worker_count "$worker" "$slow")" = 1 ] && break
    sleep 0.05
done
t0=$(date +%s%N)
pm stop -t 30 "$name" >/dev/null
stop_ms=$((($(date +%s%N) - t0) / 1000000))
wait "$slow_pid" || true
check "podman stop with a request in flight: it got 202 ($stop_ms ms to stop)" \
    [ "$(cat "$tmp/slow.status")" = 202 ]
check "exit status 0 after the drain" [ "$(pm inspect "$name" --format '{{.State.ExitCode}}')" = 0 ]

podman logs "$name" >"$tmp/logs" 2>&1 || true
if "$py" - "$tmp/logs" <<'PY'; then
import json, re, sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip()]
# podman itself may complain on these lines (no systemd for health-check timers)
ours = [l for l in lines if not re.match(r'^time="[^"]*" level=', l)]
objs = [json.loads(l) for l in ours]  # raises on any line that is not JSON
assert all(isinstance(o, dict) and {"level", "time", "msg"} <= o.keys() for o in objs)
msgs = " | ".join(o["msg"] for o in objs)
for want in ("listening", "job enqueued", "draining 1 in-flight", "stopped"):
    assert want in msgs, want + " not in " + msgs
PY
    ok "every log line is a JSON object (listening, enqueued, draining 1 in-flight, stopped)"
else
    fail "log lines: $(head -c 2000 "$tmp/logs")"
fi
pm rm -f -t 0 "$name" >/dev/null

# --- deploy/kubernetes/ with podman kube play ---------------------------------------------------
# A pod has no way to the host's loopback, so the stand-in runs in a pod of its own (the host
# binary, on the image's libraries), listening in that pod's network namespace.
standin_dir=$tmp/standin
mkdir -p "$standin_dir"
cp "$standin" "$standin_dir/argus-worker-standin"
chmod 755 "$standin_dir" "$standin_dir/argus-worker-standin"
cat >"$tmp/worker.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: argus-ct-worker-$$
spec:
  containers:
    - name: standin
      image: localhost/argus-orchestrator:latest
      command: ["/standin/argus-worker-standin", "3000", "0.0.0.0"]
      volumeMounts:
        - {name: standin, mountPath: /standin, readOnly: true}
  volumes:
    - name: standin
      hostPath: {path: "$standin_dir", type: Directory}
EOF
pm kube play "$tmp/worker.yaml" >/dev/null
wip=$(pm inspect "argus-ct-worker-$$-standin" \
    --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}')
kworker=http://$wip:3000
wait_health "$kworker/health" 30 || { fail "the stand-in's pod did not answer"; exit 1; }

# The manifests as they are, with the test's own: WORKER_NODE_URL in the ConfigMap points at the
# stand-in's pod, and a Secret with a token. Two changes for podman 4.3's kube play: no
# containerPort lines (it publishes each on the host's 0.0.0.0, where two replicas collide;
# Kubernetes and podman >= 4.5 do not), and the Secret's volume not optional (4.3 mounts
# nothing of an optional secret volume when the Secret exists, and fails when it does not).
"$py" - "$top/deploy/kubernetes" "$kworker" "$token" >"$tmp/play.yaml" <<'PY'
import base64, glob, sys, yaml
folder, worker, token = sys.argv[1:]
# "data", as kubectl create secret makes it (podman 4.3 mounts nothing of "stringData")
docs = [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "argus-orchestrator"},
         "data": {"api-token": base64.b64encode(token.encode()).decode()}}]
for path in sorted(glob.glob(folder + "/*.yaml")):
    docs += [d for d in yaml.safe_load_all(open(path)) if d]
for d in docs:
    if d["kind"] == "ConfigMap":
        d["data"]["WORKER_NODE_URL"] = worker
    if d["kind"] == "Deployment":
        for c in d["spec"]["template"]["spec"]["containers"]:
            c.pop("ports", None)
        for v in d["spec"]["template"]["spec"]["volumes"]:
            if "secret" in v:
                v["secret"]["optional"] = False
print(yaml.safe_dump_all(docs))
PY
replicas=$("$py" -c 'import sys, yaml; print([d for d in yaml.safe_load_all(open(sys.argv[1])) if d["kind"] == "Deployment"][0]["spec"]["replicas"])' \
    "$top/deploy/kubernetes/deployment.yaml")
grace=$("$py" -c 'import sys, yaml; print([d for d in yaml.safe_load_all(open(sys.argv[1])) if d["kind"] == "Deployment"][0]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"])' \
    "$top/deploy/kubernetes/deployment.yaml")
shutdown=$("$py" -c 'import sys, yaml; print([d for d in yaml.safe_load_all(open(sys.argv[1])) if d["kind"] == "ConfigMap"][0]["data"]["SHUTDOWN_TIMEOUT_SEC"])' \
    "$top/deploy/kubernetes/configmap.yaml")
check "terminationGracePeriodSeconds $grace > SHUTDOWN_TIMEOUT_SEC $shutdown" [ "$grace" -gt "$shutdown" ]

if pm kube play "$tmp/play.yaml" >"$tmp/play.out"; then
    ok "podman kube play deploy/kubernetes/ (Deployment, ConfigMap, Service) with a Secret"
else
    fail "podman kube play: $(tail -3 "$plog")"
fi
containers=()
for i in $(seq 0 $((replicas - 1))); do
    containers+=("argus-orchestrator-pod-$i-argus-orchestrator")
done
kplace=ctkube-$$
for c in "${containers[@]}"; do
    ip=$(pm inspect "$c" --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' || true)
    kbase=http://$ip:8080
    if [ -n "$ip" ] && wait_health "$kbase/health" 30; then
        ok "$c answers /health"
    else
        fail "$c does not answer /health"
        continue
    fi
    check "$c: /ready 200" [ "$(http GET "$kbase/ready")" = 200 ]
    # The Secret's file where CREDENTIALS_DIRECTORY says (podman 4.3 writes a Secret's data
    # without decoding its base64; Kubernetes decodes it): the service uses what is there.
    # shellcheck disable=SC2016 # expanded in the container
    mounted=$(pm exec "$c" sh -c 'cat "$CREDENTIALS_DIRECTORY/api-token"' || true)
    check "$c: the Secret is mounted in \$CREDENTIALS_DIRECTORY" \
        grep -qxF -e "$token" -e "$(printf '%s' "$token" | base64 -w0)" <<<"$mounted"
    st=$(enqueue "$kbase" "$kplace")
    check "$c: POST /enqueue without the token: 401 (got $st)" [ "$st" = 401 ]
    st=$(enqueue "$kbase" "$kplace" -H "Authorization: Bearer $mounted")
    check "$c: POST /enqueue with the Secret's token: 202 (got $st)" [ "$st" = 202 ]
    check "$c: uid 10001, no capabilities, read-only root file system" confined "$c"
done
check "the stand-in got the job from each of the $replicas replicas" \
    [ "$(worker_count "$kworker" "$kplace")" = "$replicas" ]
if metrics_ok "http://$(pm inspect "${containers[0]}" \
    --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}'):8080/metrics" \
    2>"$tmp/metrics.err"; then
    ok "/metrics of a pod parsed by prometheus_client, process metrics present"
else
    fail "/metrics of a pod: $(cat "$tmp/metrics.err")"
fi

# SIGTERM within the grace period, as the kubelet does: each exits 0.
pm stop -t "$grace" "${containers[@]}" >/dev/null || true
for c in "${containers[@]}"; do
    check "$c exits 0 on SIGTERM" [ "$(pm inspect "$c" --format '{{.State.ExitCode}}')" = 0 ]
done
pm kube down "$tmp/play.yaml" >/dev/null && pm kube down "$tmp/worker.yaml" >/dev/null
rm -f "$tmp/play.yaml" "$tmp/worker.yaml"
check "podman kube down leaves no pod behind" \
    [ -z "$(pm pod ps -q --filter name=argus-orchestrator-pod --filter name=argus-ct-worker-$$)" ]

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
