#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The include rule of src/lib (docs/design.md, "Layers"): a file may include headers of its
# own layer and of the layers listed for it below, never of a layer above. The shim is
# linked statically on libc and libcrypto's SHA-256 alone: it may include no other
# library's header, and of basic all but the two helpers that need libsystemd or the
# daemon (log, config).
#
#   check-layers.sh [SRCDIR]    prints each violation as FILE:LINE: ... and exits 1 if any
#
# Every quoted include under src/lib must name its layer ("store/model.h"); programs in
# src/<program>/ may include their own headers unqualified.
set -u
root=${1:-.}
cd "$root" || exit 2

# layer: the layers it may include besides itself
allowed() {
        case $1 in
        basic) echo "" ;;
        shim) echo "" ;;
        store) echo "basic" ;;
        supervise) echo "basic shim store" ;;
        control) echo "basic store supervise" ;;
        api) echo "basic store supervise control" ;;
        daemon) echo "basic store supervise control api" ;;
        corrald) echo "basic daemon" ;;
        corral-shim) echo "shim" ;;
        corralctl) echo "basic" ;;
        *) echo "?" ;;
        esac
}

# A third-party library's types stay inside the module that wraps it (CONVENTIONS.md):
# header pattern, then the files (shell patterns) that may include it.
wrapped() {
        case $1 in
        sqlite3.h) echo "src/lib/store/*" ;;
        systemd/sd-bus.h) echo "src/lib/supervise/placement-scope.c" ;;
        microhttpd.h) echo "src/lib/api/api.c" ;;
        seccomp.h) echo "src/lib/supervise/sandbox.c" ;;
        curl/*) echo "src/corralctl/*" ;;
        *) echo "*" ;;
        esac
}

# The libraries the shim must not reach (it has no dynamic loader to find them).
shim_forbidden='^(systemd/|sqlite3\.h|cjson/|microhttpd\.h|seccomp\.h|curl/|openssl/)'

status=0
files=$(find src -name '*.[ch]' | LC_ALL=C sort)
[ -n "$files" ] || {
        echo "check-layers: no sources under $root/src" >&2
        exit 2
}
for f in $files; do
        case $f in
        src/lib/*/*) layer=${f#src/lib/} layer=${layer%%/*} ;;
        src/lib/*)
                echo "$f: a file of src/lib belongs in a layer's folder"
                status=1
                continue
                ;;
        src/*/*) layer=${f#src/} layer=${layer%%/*} ;;
        *) continue ;;
        esac
        ok=$(allowed "$layer")
        if [ "$ok" = "?" ]; then
                echo "$f: '$layer' is not a layer this check knows"
                status=1
                continue
        fi
        # LINE<TAB>"name" or LINE<TAB><name>
        grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]' "$f" |
                sed 's/^\([0-9]*\):[[:space:]]*#[[:space:]]*include[[:space:]]*\([<"][^>"]*[>"]\).*/\1	\2/' >"${TMPDIR:-/tmp}/check-layers.$$"
        while IFS='	' read -r line name; do
                inner=${name#?}
                inner=${inner%?}
                case $name in
                \<*)
                        # shellcheck disable=SC2254 # the owner is a pattern
                        owner=$(wrapped "$inner")
                        case $f in
                        $owner) ;;
                        *)
                                echo "$f:$line: <$inner> belongs to $owner alone"
                                status=1
                                ;;
                        esac
                        if [ "$layer" = shim ] || [ "$layer" = corral-shim ]; then
                                if [ "$inner" != openssl/sha.h ] && printf '%s\n' "$inner" | grep -Eq "$shim_forbidden"; then
                                        echo "$f:$line: the shim has only libc and SHA-256 but includes <$inner>"
                                        status=1
                                fi
                        fi
                        continue
                        ;;
                esac
                case $inner in
                */*) target=${inner%%/*} ;;
                *)
                        # A program's own header, beside it.
                        if [ "${f#src/lib/}" = "$f" ] && [ -e "$(dirname "$f")/$inner" ]; then
                                continue
                        fi
                        echo "$f:$line: \"$inner\" does not name its layer"
                        status=1
                        continue
                        ;;
                esac
                [ "$target" = "$layer" ] && continue
                case " $ok " in
                *" $target "*) continue ;;
                esac
                if [ "$layer" = shim ] || [ "$layer" = corral-shim ]; then
                        case $inner in
                        basic/log.h | basic/config.h) ;;
                        basic/*) continue ;;
                        esac
                fi
                echo "$f:$line: layer '$layer' may not include \"$inner\" (allowed: ${ok:-its own})"
                status=1
        done <"${TMPDIR:-/tmp}/check-layers.$$"
        rm -f "${TMPDIR:-/tmp}/check-layers.$$"
done
exit $status
