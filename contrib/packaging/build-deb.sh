#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Build corral's Debian package from a release tarball and check it with lintian.
#   build-deb.sh TARBALL OUTDIR
# Prints the path of the .deb. Fails on a build failure or a lintian error.
set -euo pipefail

tarball=$(realpath "$1")
out=$(realpath -m "$2")
work=$(mktemp -d /tmp/corral-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT

mkdir -p "$out"
tar -C "$work" -xf "$tarball"
src=$(echo "$work"/corral-*)
cp -r "$src/contrib/debian" "$src/debian"
(cd "$src" && dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1) || {
        tail -n 40 "$work/build.log" >&2
        exit 1
}
deb=$(echo "$work"/corral_*.deb)
# Errors fail the build; warnings are shown.
lintian --fail-on error --suppress-tags initial-upload-closes-no-bugs "$deb" >&2
cp "$deb" "$out/"
echo "$out/$(basename "$deb")"
