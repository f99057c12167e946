#!/bin/bash
# The journal catalog: every MESSAGE_ID the daemon logs (the MSGID_ defines of src/log/log-fields.h)
# has an entry, every entry has its Subject, Defined-By and Support lines, and journalctl builds
# its catalog database from the file (in a scratch root, not the system's).
# Usage: test-catalog.sh LOG_FIELDS_H CATALOG
set -uo pipefail
header=$1 catalog=$2
passed=0 failed=0
ok() { echo "ok: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }

ids=$(sed -n 's/^#define \(MSGID_[A-Z_]*\) "\([0-9a-f]\{32\}\)"$/\1 \2/p' "$header")
[ "$(wc -l <<<"$ids")" -ge 12 ] && ok "$(wc -l <<<"$ids") MESSAGE_IDs in $(basename "$header")" ||
    bad "MSGID_ defines read from $header"
while read -r name id; do
    grep -qx -- "-- $id" "$catalog" && ok "$name ($id) has a catalog entry" ||
        bad "$name ($id) has no catalog entry"
done <<<"$ids"

# Each entry: "-- ID", then Subject:, Defined-By: and Support: before its text.
awk '/^-- [0-9a-f]{32}$/ { if (id != "" && n != 3) print id; id = $2; n = 0; next }
     id != "" && /^(Subject|Defined-By|Support): ./ { n++ }
     END { if (id != "" && n != 3) print id }' "$catalog" >/tmp/catalog-bad.$$
[ ! -s /tmp/catalog-bad.$$ ] && ok "every entry has Subject:, Defined-By: and Support:" ||
    bad "entries without Subject:, Defined-By: or Support: $(tr '\n' ' ' </tmp/catalog-bad.$$)"
rm -f /tmp/catalog-bad.$$

if command -v journalctl >/dev/null; then
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    mkdir -p "$root/usr/lib/systemd/catalog"
    cp "$catalog" "$root/usr/lib/systemd/catalog/"
    if journalctl --root="$root" --update-catalog 2>"$root/err" && [ ! -s "$root/err" ]; then
        listed=$(journalctl --root="$root" --list-catalog 2>/dev/null | grep -c ' argus-orchestrator: ')
        entries=$(grep -c '^-- [0-9a-f]\{32\}$' "$catalog")
        [ "$listed" = "$entries" ] && ok "journalctl --update-catalog takes all $entries entries" ||
            bad "journalctl --update-catalog took $listed of $entries entries"
    else
        bad "journalctl --update-catalog: $(cat "$root/err")"
    fi
else
    echo "(journalctl missing: the catalog database is not built)"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
