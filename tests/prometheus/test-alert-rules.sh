#!/bin/bash
# The alert rules shipped beside the Kubernetes manifests: `promtool check rules` accepts them
# and their unit tests pass (`promtool test rules`), so a broken rules file fails `meson test`
# as it fails CI.
# Usage: test-alert-rules.sh RULES_FILE RULES_TEST_FILE
set -uo pipefail
rules=$1 tests=$2
if ! command -v promtool >/dev/null; then
    echo "skipped: needs promtool (Debian package prometheus)"
    exit 77
fi
passed=0 failed=0
ok() { echo "ok: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }

if out=$(promtool check rules "$rules" 2>&1); then
    ok "promtool check rules $(basename "$rules")"
else
    bad "promtool check rules $(basename "$rules"): $out"
fi
# The test file names the rules file relative to itself.
if out=$(cd "$(dirname "$tests")" && promtool test rules "$(basename "$tests")" 2>&1); then
    ok "promtool test rules $(basename "$tests")"
else
    bad "promtool test rules $(basename "$tests"): $out"
fi
for name in ArgusSpoolOldestJobTooOld ArgusSpoolDeadLetters; do
    grep -q "^ *- alert: $name\$" "$rules" && ok "alert $name is defined" ||
        bad "alert $name is not defined in $(basename "$rules")"
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
