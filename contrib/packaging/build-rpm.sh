#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Build corral's RPM from a release tarball with rpmbuild (on Debian: the rpm package;
# build dependencies cannot be checked against dpkg's database, so --nodeps).
#   build-rpm.sh TARBALL OUTDIR
# Prints the path of the binary .rpm.
set -euo pipefail

tarball=$(realpath "$1")
out=$(realpath -m "$2")
top=$(mktemp -d /tmp/corral-rpm.XXXXXX)
trap 'rm -rf "$top"' EXIT

mkdir -p "$out" "$top/SOURCES" "$top/SPECS"
cp "$tarball" "$top/SOURCES/"
tar -C "$top/SPECS" --strip-components=2 -xf "$tarball" --wildcards '*/contrib/corral.spec'
rpmbuild -bb --nodeps --define "_topdir $top" --define 'debug_package %{nil}' \
        "$top/SPECS/corral.spec" >"$top/build.log" 2>&1 || {
        tail -n 40 "$top/build.log" >&2
        exit 1
}
rpm=$(find "$top/RPMS" -name 'corral-*.rpm' | head -n 1)
cp "$rpm" "$out/"
echo "$out/$(basename "$rpm")"
