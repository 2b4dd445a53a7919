#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The include rule of src/lib holds for the tree, and the check fails when a lower layer
# includes a higher one, when the shim reaches a library, or when an include names no layer.
set -u
srcdir=${CORRAL_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
check="$srcdir/tests/lint/check-layers.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/corral-layers.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
n=0 failed=0
ok() {
        n=$((n + 1))
        if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; fi
}

echo "1..9"
out=$(sh "$check" "$srcdir" 2>&1)
ok $? "the tree keeps the include rule"
[ -z "$out" ]
ok $? "and says nothing about it"

# A copy of the tree, broken one way at a time.
broken() {
        rm -rf "$work/t" && mkdir -p "$work/t" && cp -R "$srcdir/src" "$work/t/src"
}
expect_violation() { # what FILE TEXT
        out=$(sh "$check" "$work/t" 2>&1)
        rc=$?
        [ "$rc" -eq 1 ] && printf '%s\n' "$out" | grep -q "$2"
        ok $? "$1 is refused, naming $2"
        [ "$rc" -eq 1 ] || printf '# exit %s, output: %s\n' "$rc" "$out"
}

broken
printf '#include "daemon/manager.h"\n' >>"$work/t/src/lib/store/model.h"
expect_violation "the store including the daemon" "src/lib/store/model.h:.*daemon/manager.h"

broken
printf '#include "control/wakeup.h"\n' >>"$work/t/src/lib/supervise/cgroup.c"
expect_violation "supervise including control" "src/lib/supervise/cgroup.c:.*control/wakeup.h"

broken
printf '#include <systemd/sd-event.h>\n' >>"$work/t/src/lib/shim/shim.c"
expect_violation "the shim including libsystemd" "src/lib/shim/shim.c:.*has only libc and SHA-256"

broken
printf '#include <openssl/evp.h>\n' >>"$work/t/src/lib/shim/shim.c"
expect_violation "the shim including more of OpenSSL than SHA-256" "src/lib/shim/shim.c:.*includes <openssl/evp.h>"

broken
printf '#include "model.h"\n' >>"$work/t/src/lib/control/activity.c"
expect_violation "an include without its layer" "src/lib/control/activity.c:.*does not name its layer"

broken
printf '#include <sqlite3.h>\n' >>"$work/t/src/lib/control/claim.c"
expect_violation "sqlite3 outside the store" "src/lib/control/claim.c:.*sqlite3.h> belongs to src/lib/store"

broken
printf '/* x */\n' >"$work/t/src/lib/loose.c"
expect_violation "a file outside every layer" "src/lib/loose.c: a file of src/lib belongs"
exit $failed
