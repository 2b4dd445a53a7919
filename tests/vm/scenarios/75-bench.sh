#!/bin/bash
# Benchmark 2 (not a test of speed: nothing here fails on a figure): launch latency of
# the scope backend beside systemd-run --scope of the same binary, under this VM's systemd.
. "$(dirname "$0")/lib.sh"
b=$VM_SHARE/bench
if [ ! -x "$b/bench" ]; then
        echo "# no benchmark binaries in the share (run.sh --bench DIR): skipped"
        exit 0
fi
out=$("$b/bench" --corrald /usr/sbin/corrald --agent "$b/bench-agent" --placement scope --only launch \
        --runs "${CORRAL_VM_BENCH_RUNS:-200}" --reference-scope 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
echo "$out" >"$VM_SHARE/bench-scope.txt"
check "the scope launch benchmark ran" test $rc = 0
