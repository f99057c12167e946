#!/bin/bash
# Makes DIR a fresh Debian 12 root (debootstrap --variant=minbase bookworm) from the mirror apt
# already uses on this machine, or reuses DIR when an earlier run finished one there. The root
# is a cache: callers copy or overlay it and never change it.
# Usage: tests/lib/minbase-root.sh DIR
set -euo pipefail
dir=${1:?usage: minbase-root.sh DIR}
[ "$(id -u)" = 0 ] || { echo "minbase-root.sh: needs root (debootstrap)" >&2; exit 1; }
[ -f "$dir/.minbase-complete" ] && exit 0

top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../scripts/deps.sh
. "$top/scripts/deps.sh"
apt_install debootstrap

# The first deb URI apt uses (deb822 sources first, then the one-line format).
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -v -- '-security' | head -1)
if [ -z "$mirror" ]; then
    mirror=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit } }' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -1)
fi
mirror=${mirror:-http://deb.debian.org/debian}

rm -rf "$dir.tmp"
mkdir -p "$dir.tmp"
debootstrap --variant=minbase bookworm "$dir.tmp" "$mirror" >"$dir.tmp.log" 2>&1 ||
    { tail -20 "$dir.tmp.log" >&2; exit 1; }
# No package lists or downloaded .debs in the cache: a user's fresh machine has none either.
rm -rf "$dir.tmp"/var/cache/apt/archives/*.deb "$dir.tmp"/var/lib/apt/lists/*
rm -f "$dir.tmp.log"
touch "$dir.tmp/.minbase-complete"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
