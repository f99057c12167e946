#!/bin/bash
# Builds the binary RPM of argus-orchestrator on Debian 12 with Debian's rpmbuild: the source
# tarball is made from the working tree (tracked and untracked-not-ignored files), the spec is
# built with the macro shims of rpm/macros.shim in place of Fedora's meson and systemd macros and
# with --nodeps (the BuildRequires name Fedora packages). %check runs the whole test suite. This
# checks the spec; it is not a Fedora build.
# Usage: rpm/build.sh OUTDIR   (as root, or with sudo for apt-get)
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
mkdir -p "$1"
outdir=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
spec=$here/argus-orchestrator.spec
shims=$here/macros.shim

# rpmbuild, the build dependencies, and what %check runs (the tests): scripts/deps.sh.
# shellcheck source=../scripts/deps.sh
. "$top/scripts/deps.sh"
apt_install "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}" "${RPM_PACKAGES[@]}"

name=$(rpmspec --load "$shims" -q --srpm --qf '%{name}' "$spec")
version=$(rpmspec --load "$shims" -q --srpm --qf '%{version}' "$spec")
meson_version=$(sed -n "s/^[[:space:]]*version[[:space:]]*:[[:space:]]*'\([^']*\)'.*/\1/p" \
    "$top/meson.build" | head -n 1)
if [ "$version" != "$meson_version" ]; then
    echo "build.sh: Version $version in $spec differs from version '$meson_version' in" \
        "meson.build: keep them in step" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/argus-rpm.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/rpmbuild/SOURCES" "$tmp/tmp"

# The source tarball: the files git knows of or would add (tracked, and untracked but not
# ignored), as they are in the working tree, under $name-$version/. Tracked files deleted from
# the working tree are left out.
(cd "$top" && git ls-files -z --cached --others --exclude-standard) |
    while IFS= read -r -d '' f; do
        if [ -e "$top/$f" ] || [ -L "$top/$f" ]; then printf '%s\0' "$f"; fi
    done >"$tmp/files"
tarball=$tmp/rpmbuild/SOURCES/$name-$version.tar.gz
tar -C "$top" --null --no-recursion -T "$tmp/files" --sort=name --owner=0 --group=0 \
    --numeric-owner --transform "s,^,$name-$version/,S" -czf "$tarball"
echo "Source: $name-$version.tar.gz, $(tr -cd '\0' <"$tmp/files" | wc -c) files"

if ! rpmbuild -bb --nodeps --load "$shims" \
    --define "_topdir $tmp/rpmbuild" --define "_tmppath $tmp/tmp" "$spec"; then
    echo "build.sh: rpmbuild failed" >&2
    exit 1
fi

shopt -s nullglob
rpms=("$tmp"/rpmbuild/RPMS/*/*.rpm)
if [ ${#rpms[@]} -eq 0 ]; then
    echo "build.sh: rpmbuild made no binary RPM" >&2
    exit 1
fi

# The package must hold what the spec promises, and carry the scriptlets.
main=$(printf '%s\n' "${rpms[@]}" | grep "/$name-$version-[^/]*\.rpm$" | head -n 1)
listing=$(rpm -qlp "$main")
for f in /usr/bin/argus-orchestrator \
    /usr/lib/systemd/system/argus-orchestrator.socket \
    /usr/lib/systemd/system/argus-orchestrator.service \
    /usr/lib/systemd/catalog/argus-orchestrator.catalog \
    /etc/argus-orchestrator \
    /etc/argus-orchestrator/orchestrator.env \
    "/usr/share/doc/$name/README.md"; do
    grep -qxF "$f" <<<"$listing" || { echo "build.sh: $f missing from $main" >&2; exit 1; }
done
grep -q '^/usr/share/man/man8/argus-orchestrator\.8' <<<"$listing" ||
    { echo "build.sh: man page missing from $main" >&2; exit 1; }
scripts=$(rpm -qp --scripts "$main")
for s in postinstall preuninstall postuninstall; do
    grep -q "^$s scriptlet" <<<"$scripts" || { echo "build.sh: no $s scriptlet" >&2; exit 1; }
done
rpm -qp --configfiles "$main" | grep -qxF /etc/argus-orchestrator/orchestrator.env ||
    { echo "build.sh: orchestrator.env is not a config file" >&2; exit 1; }

for r in "${rpms[@]}"; do
    cp "$r" "$outdir/"
    echo "$outdir/$(basename "$r")"
done
