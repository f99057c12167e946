#!/bin/bash
# The README's quick start on a fresh Debian 12: makes (or reuses) a `debootstrap
# --variant=minbase bookworm` root, and in a throw-away overlay of it, under systemd-nspawn with
# the host's network (it downloads its packages as a new machine would), installs git, clones
# this repository from its checkout (what is committed: uncommitted work is not in the clone),
# and runs the README's two commands as written (inside.sh): `./scripts/run` until /health
# answers 200 and one POST /enqueue 202, then Ctrl-C; and `./scripts/test` to the end.
# Prints "ok: …"/"FAIL: …" per check, the time each part took, "N passed, M failed" last.
# Everything is bounded; the overlay lives in a mount namespace of this script's own, so no
# mount outlives it, and its files are removed at exit.
# Usage: tests/fresh/run.sh [MINBASE_CACHE]   (as root; the README's ports 8080 and 3000 must
#        be free on the host; default cache /var/cache/argus-orchestrator-ci/bookworm-minbase)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cache=${1:-/var/cache/argus-orchestrator-ci/bookworm-minbase}
[ "$(id -u)" = 0 ] || { echo "FAIL: tests/fresh/run.sh needs root (debootstrap, mount, nspawn)"; exit 1; }
if [ "${ARGUS_FRESH_NS:-}" != 1 ]; then
    exec env ARGUS_FRESH_NS=1 unshare -m --propagation private "$0" "$@"
fi

passed=0 failed=0
ok() { echo "ok: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }
# shellcheck source=../../scripts/deps.sh
. "$top/scripts/deps.sh"
apt_install "${FRESH_PACKAGES[@]}" >/dev/null

tmp=$(mktemp -d /var/tmp/argus-fresh.XXXXXX)
root=$tmp/root
nspawn=
cleanup() {
    if [ -n "$nspawn" ] && kill -0 "$nspawn" 2>/dev/null; then
        kill -TERM "$nspawn" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$nspawn" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$nspawn" 2>/dev/null || true
    fi
    wait 2>/dev/null || true
    if mountpoint -q "$root"; then umount "$root" 2>/dev/null || umount -l "$root" || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# The fresh root: made once (about 30 s), then reused; never changed (this works on an overlay).
t=$SECONDS
reused=no
[ -f "$cache/.minbase-complete" ] && reused=yes
if timeout 900 "$top/tests/lib/minbase-root.sh" "$cache"; then
    echo "time: minbase root ($([ $reused = yes ] && echo reused || echo made)): $((SECONDS - t)) s"
else
    bad "tests/lib/minbase-root.sh $cache could not make the fresh root"
    echo "$passed passed, $failed failed"
    exit 1
fi
mkdir -p "$tmp/upper" "$tmp/work" "$root"
if ! mount -t overlay overlay -o "lowerdir=$cache,upperdir=$tmp/upper,workdir=$tmp/work" \
    "$root" 2>/dev/null; then
    echo "no overlayfs here: copying the root instead"
    cp -a "$cache/." "$root/"
fi

# The README's commands listen on ports 8080 and 3000, in the host's network.
for port in 8080 3000; do
    if ss -Hltn "sport = :$port" | grep -q .; then
        bad "port $port is taken on this machine, so ./scripts/run cannot be checked here:" \
            "$(ss -Hltnp "sport = :$port" | head -n 1)"
    fi
done
if [ "$failed" != 0 ]; then
    echo "$passed passed, $failed failed"
    exit 1
fi

# The checkout, read-only at its own path (and the repository it belongs to, if it is a
# worktree of one elsewhere), and inside.sh.
binds=(--bind-ro="$top" --bind-ro="$here/inside.sh:/mnt/argus-fresh-inside.sh")
common=$(git -C "$top" rev-parse --path-format=absolute --git-common-dir)
case "$common/" in "$top"/*) ;; *) binds+=(--bind-ro="$common") ;; esac

t=$SECONDS
timeout --kill-after=30 3600 systemd-nspawn -q -D "$root" --register=no --keep-unit \
    --console=pipe --resolv-conf=copy-host "${binds[@]}" \
    -- /bin/bash /mnt/argus-fresh-inside.sh "$top" </dev/null >"$tmp/inside.txt" 2>&1 &
nspawn=$!
# (less nspawn's notice about its propagation folder, and inside.sh's own closing line)
tail -f --pid=$nspawn "$tmp/inside.txt" |
    grep --line-buffered -vE '^Attempted to remove disk file system|^[0-9]+ passed, [0-9]+ failed$' &
rc=0
wait $nspawn || rc=$?
nspawn=
wait
echo "time: in the fresh root, in all: $((SECONDS - t)) s"
inside_passed=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$tmp/inside.txt" | tail -n 1)
inside_failed=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$tmp/inside.txt" | tail -n 1)
if [ -z "$inside_passed" ]; then
    bad "the fresh root's run ended with no verdict (systemd-nspawn exit status $rc)"
else
    passed=$((passed + inside_passed)) failed=$((failed + inside_failed))
fi

# Nothing of it left running: no process whose root is the fresh root.
left=
for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && left="$left ${p#/proc/}"
done
if [ -z "$left" ]; then ok "no process left in the fresh root"; else
    bad "processes left in the fresh root:$left"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
