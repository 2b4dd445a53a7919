#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The control plane's unit tests again, on PostgreSQL: a server of Debian's postgresql
# package started for them (tests/pg-server.sh) and stopped after, and each test program
# run with CORRAL_TEST_DATABASE naming its database, which each test empties first. The
# programs' TAP lines are numbered again as one plan. (test-store opens its own SQLite
# files but for its write lock test, which takes CORRAL_TEST_DATABASE.)
set -u

srcdir=${CORRAL_SRCDIR:-.}
builddir=${CORRAL_BUILDDIR:-.}
programs="test-store test-recovery test-adapters test-wakeup test-claim test-log-forward test-finalize test-budget test-issue-lock test-scheduler test-wake-payload"

if ! "$srcdir/tests/pg-server.sh" bindir >/dev/null; then
        echo "1..0 # SKIP PostgreSQL's server (Debian package postgresql) is not installed"
        exit 77
fi
dir=$(mktemp -d /tmp/corral-pg.XXXXXX)
trap '"$srcdir/tests/pg-server.sh" stop "$dir"' EXIT INT TERM
if ! CORRAL_TEST_DATABASE=$("$srcdir/tests/pg-server.sh" start "$dir"); then
        echo "1..1"
        echo "not ok 1 - a PostgreSQL server starts"
        exit 1
fi
export CORRAL_TEST_DATABASE CMOCKA_MESSAGE_OUTPUT=TAP

n=0
failed=0
for p in $programs; do
        out=$("$builddir/tests/unit/$p" 2>&1)
        rc=$?
        points=$(printf '%s\n' "$out" | grep -E '^(not )?ok ' || true)
        if [ -z "$points" ]; then
                n=$((n + 1))
                echo "not ok $n - $p on PostgreSQL ran no test (exit $rc)"
                printf '%s\n' "$out" | sed 's/^/# /'
                failed=1
                continue
        fi
        # Each point as "ok N - <program>: <test> on PostgreSQL"; what a program printed
        # around a failure, as comments.
        printf '%s\n' "$out" | grep -vE '^(not )?ok |^1\.\.' | sed 's/^/# /'
        while IFS= read -r line; do
                n=$((n + 1))
                status=${line%% [0-9]*}
                name=$(printf '%s' "$line" | sed -E 's/^(not )?ok [0-9]+ ?-? ?//')
                echo "$status $n - $p: $name on PostgreSQL"
                [ "$status" = ok ] || failed=1
        done <<EOF
$points
EOF
        [ "$rc" -eq 0 ] || failed=1
done
echo "1..$n"
exit $failed
