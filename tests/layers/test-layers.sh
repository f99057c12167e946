#!/bin/bash
# The include graph of src/ has no cycle (README.md, "Development": layers). A module is a
# src/NAME.c and its src/NAME.h; it depends on every module whose header one of them includes.
# tsort(1) orders the modules, and says so when they contain a loop.
# Usage: test-layers.sh SRCDIR
set -euo pipefail
src=${1:?usage: $0 SRCDIR}
pairs=$(
    for f in "$src"/*.[ch]; do
        m=$(basename "$f")
        m=${m%.[ch]}
        echo "$m $m"
        sed -n 's/^#include "\([^"/]*\)\.h".*/\1/p' "$f" | while read -r h; do
            [ "$h" = "$m" ] || echo "$m $h"
        done
    done
)
if ! out=$(printf '%s\n' "$pairs" | tsort 2>&1 >/dev/null) || [ -n "$out" ]; then
    echo "FAIL: the include graph of $src has a cycle:" >&2
    printf '%s\n' "$out" >&2
    exit 1
fi
echo "ok: the include graph of $src has no cycle ($(printf '%s\n' "$pairs" | cut -d' ' -f1 | sort -u | wc -l) modules)"
