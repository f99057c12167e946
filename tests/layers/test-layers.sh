#!/bin/bash
# The layers of src/ (README.md, "Development": layers): one folder a layer, and a file includes
# only headers of its own folder or of the layers its folder is built on. meson compiles each
# folder seeing only those (meson.build, `layers`, which passes the same list here); this checks
# it from the sources, and what the compiler cannot see:
# - every file of src/ is in a listed folder, every folder is listed, after the layers below it;
# - an `#include "…"` names a file, no path: no "/" (nor ".."), which the compiler would resolve
#   from the including file's folder, past the include path;
# - no two folders hold a file of the same name;
# - the modules (NAME.c and NAME.h) have no include cycle, within a folder too (tsort(1));
# - atomics only through basic/atomics.h: no other file includes <stdatomic.h> or calls a
#   __atomic builtin (threads talk through mailboxes and those few named patterns);
# - there is something to check: no layer, no file or no include fails.
# Usage: test-layers.sh SRCDIR LAYER=BELOW,BELOW… …   (lowest layer first)
set -euo pipefail
shopt -s nullglob
src=${1:?usage: $0 SRCDIR LAYER=BELOW,… …}
shift
fail=0
bad() {
    echo "FAIL: $*" >&2
    fail=1
}

declare -A below=() folder_of=()
order=()
for arg in "$@"; do
    layer=${arg%%=*}
    [ "$layer" != "$arg" ] || { bad "not LAYER=BELOW,…: $arg"; continue; }
    [ -d "$src/$layer" ] || bad "layer $layer: no folder $src/$layer"
    IFS=, read -r -a deps <<<"${arg#*=}"
    for d in "${deps[@]}"; do
        [ -n "${below[$d]+x}" ] || bad "layer $layer is built on $d, which is not listed before it"
    done
    below[$layer]=" ${deps[*]} "
    order+=("$layer")
done
[ ${#order[@]} -gt 0 ] || bad "no layer given"

for entry in "$src"/*; do
    name=$(basename "$entry")
    if [ ! -d "$entry" ]; then
        bad "$src/$name is in no layer's folder"
    elif [ -z "${below[$name]+x}" ]; then
        bad "$src/$name/ is not a listed layer"
    fi
done

files=()
for layer in "${order[@]}"; do
    for f in "$src/$layer"/*.[ch]; do
        name=$(basename "$f")
        if [ -n "${folder_of[$name]+x}" ]; then
            bad "$name is in both $src/${folder_of[$name]}/ and $src/$layer/"
        fi
        folder_of[$name]=$layer
        files+=("$f")
    done
done
[ ${#files[@]} -gt 0 ] || bad "no .c or .h file in the layers' folders of $src"

includes=0
pairs=()
for f in "${files[@]}"; do
    layer=$(basename "$(dirname "$f")")
    name=$(basename "$f")
    module=${name%.[ch]}
    pairs+=("$module $module")
    while IFS=: read -r line inc; do
        includes=$((includes + 1))
        where="$layer/$name:$line: #include \"$inc\""
        if [[ $inc == */* ]]; then
            bad "$where: a path; name the file alone (its folder is on the include path)"
            continue
        fi
        to=${folder_of[$inc]:-}
        if [ -z "$to" ]; then
            bad "$where: no such file in the layers of $src"
        elif [ "$to" != "$layer" ] && [[ ${below[$layer]} != *" $to "* ]]; then
            bad "$where: $to/ is not below $layer/ (built on:${below[$layer]% })"
        fi
        [ "${inc%.h}" = "$module" ] || pairs+=("$module ${inc%.[ch]}")
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
        sed -E 's/^([0-9]+):[^"]*"([^"]*)".*/\1:\2/')
done
[ "$includes" -gt 0 ] || bad "no #include \"…\" found in ${#files[@]} files of $src"

[ -f "$src/basic/atomics.h" ] || bad "no $src/basic/atomics.h"
for f in "${files[@]}"; do
    [ "$f" != "$src/basic/atomics.h" ] || continue
    while IFS= read -r hit; do
        bad "${f#"$src"/}:$hit: an atomic outside basic/atomics.h (use its named patterns)"
    done < <(grep -nE '#[[:space:]]*include[[:space:]]*<stdatomic\.h>|__atomic_|__sync_' "$f" || true)
done

if ! out=$(printf '%s\n' "${pairs[@]}" | tsort 2>&1 >/dev/null) || [ -n "$out" ]; then
    bad "the include graph of $src has a cycle:"
    printf '%s\n' "$out" >&2
fi

[ "$fail" -eq 0 ] || exit 1
echo "ok: ${#files[@]} files in ${#order[@]} layers of $src (${order[*]}), $includes includes," \
    "each of its own folder or one below, no cycle"
