#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every fuzz target over its corpus (the seeds, and every input fuzzing found, kept there as
# a regression test), built with a main() that replays files instead of libFuzzer.
set -u
BUILDDIR=${CORRAL_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
SRCDIR=${CORRAL_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
n=0 failed=0
for corpus in "$SRCDIR"/tests/fuzz/corpus/*/; do
        name=$(basename "$corpus")
        n=$((n + 1))
        if out=$("$BUILDDIR/tests/fuzz/$name" "$corpus" 2>&1) && grep -q '^ok 1 ' <<<"$out"; then
                echo "ok $n - $name: $(sed -n 's/^ok 1 - //p' <<<"$out")"
        else
                failed=$((failed + 1))
                echo "not ok $n - $name"
                sed 's/^/# /' <<<"$out" | tail -n 30
        fi
done
echo "1..$n"
[ "$n" -gt 0 ] && [ "$failed" -eq 0 ]
