# shellcheck shell=bash
# What the bench scripts share (bench/run.sh, bench/spool-delivery.sh, bench/compare.sh): the
# packages, a release build, a work folder and the processes to stop at exit, free ports, nginx
# on a config of its own (the worker stand-in answering 201 among others), the service
# socket-activated, and the figures read from /proc. Sourced; `top` names the repository.

: "${top:?the script that sources bench/lib.sh sets top}"
# shellcheck source-path=SCRIPTDIR source=../scripts/deps.sh
. "$top/scripts/deps.sh"
apt_install "${BUILD_PACKAGES[@]}" "${RUN_PACKAGES[@]}" "${BENCH_PACKAGES[@]}"

# bench_build SRCDIR BUILDDIR → a release build of SRCDIR in BUILDDIR, without the tests; when it
# fails, the end of what ninja said
bench_build() {
    [ -f "$2/build.ninja" ] || meson setup "$2" "$1" -Dbuildtype=release -Dtests=false >/dev/null
    ninja -C "$2" >"$2/bench-build.log" 2>&1 || { tail -n 20 "$2/bench-build.log" >&2; return 1; }
}

# The work folder, and the processes started (pids) that the EXIT trap stops; a script adds
# what else it leaves behind in bench_cleanup_more.
work=$(mktemp -d)
pids=()
bench_cleanup_more() { :; }
bench_cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    bench_cleanup_more
    rm -rf "$work"
}
trap bench_cleanup EXIT

free_port() {
    local p
    for _ in $(seq 50); do
        p=$(shuf -i 20000-30000 -n 1)
        ss -Htan "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
    echo "no free port" >&2
    exit 1
}
wait_port() { for _ in $(seq 100); do ss -Hltn "sport = :$1" | grep -q . && return; sleep 0.05; done; }
rss_of() { local t=0; for p in "$@"; do t=$((t + $(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status"))); done; echo $t; }
# cpu_ticks PID… → their user + system time so far, in clock ticks
cpu_ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done; echo $t; }
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
now() { date +%s.%N; }

# nginx_conf NAME BODY → starts nginx with one worker on a config of its own in $work/NAME, BODY
# inside its http block; its PID in nginx_pid, also in pids
nginx_conf() {
    local dir="$work/$1"
    mkdir -p "$dir/logs"
    cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    keepalive_requests 1000000;
    $2
}
CONF
    nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' &
    nginx_pid=$!
    pids+=("$nginx_pid")
}

# worker_standin NAME PORT → the worker stand-in: nginx answering every POST /enqueue 201
worker_standin() {
    nginx_conf "$1" "server { listen 127.0.0.1:$2;
        location /enqueue { default_type application/json; return 201 '{\"queued\":true}'; } }"
}

# socket_service PORT BINARY NAME=VALUE… → the service socket-activated on 127.0.0.1:PORT (it
# starts on the first connection) with that environment, its logs to /dev/null; its PID in
# service_pid, also in pids
socket_service() {
    local port=$1 bin=$2 env=()
    shift 2
    for e in "$@"; do env+=(-E "$e"); done
    systemd-socket-activate -l "127.0.0.1:$port" "${env[@]}" "$bin" 2>/dev/null &
    service_pid=$!
    pids+=("$service_pid")
}
