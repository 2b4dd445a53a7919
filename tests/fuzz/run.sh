#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The fuzz stage of contrib/dev.sh check: each libFuzzer target of a --enable-fuzz build for
# SECONDS (default 60), from its seed corpus. A finding fails the stage; the input is copied
# into tests/fuzz/corpus/TARGET/, where make check replays it from then on.
#   tests/fuzz/run.sh BUILDDIR [SECONDS]
set -eu
builddir=$1
seconds=${2:-60}
top=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "$builddir/fuzz-run.XXXXXX")
trap 'rm -rf "$work"' EXIT
status=0
for corpus in "$top"/tests/fuzz/corpus/*/; do
        name=$(basename "$corpus")
        mkdir -p "$work/$name"
        echo "==> fuzzing $name for $seconds s"
        # New inputs go to a scratch corpus; the seeds are only read.
        if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
                "$builddir/tests/fuzz/$name" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
                -artifact_prefix="$work/$name/" -print_final_stats=1 "$work/$name" "$corpus" >"$work/$name.log" 2>&1; then
                status=1
                echo "!!! $name: a finding"
                grep -E "ERROR|runtime error|SUMMARY|Test unit written" "$work/$name.log" | head -n 20
                for f in "$work/$name"/crash-* "$work/$name"/leak-* "$work/$name"/timeout-* "$work/$name"/oom-*; do
                        [ -f "$f" ] || continue
                        cp "$f" "$top/tests/fuzz/corpus/$name/"
                        echo "    kept as tests/fuzz/corpus/$name/$(basename "$f")"
                done
        else
                grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$work/$name.log" | tr '\n' ' '
                echo
        fi
done
exit $status
