#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# make bench: corral's benchmarks, each beside its reference, printed as a table.
#   run.sh BUILDDIR [bench options...]
# The cgroup backend needs root and a cgroup v2 hierarchy; elsewhere placement=none.
set -euo pipefail
b=$(realpath "$1")
shift
placement=none
if [ "$(id -u)" -eq 0 ] && grep -q ' - cgroup2 ' /proc/self/mountinfo; then
        placement=cgroup
fi
ulimit -n 65536 2>/dev/null || true
"$b/tests/bench/bench" --corrald "$b/corrald" --agent "$b/tests/bench/bench-agent" --placement "$placement" "$@"
# The same launch with every agent in its sandbox (the default of a package's corrald):
# namespaces, mounts, a uid and a seccomp filter on the critical path. Needs root.
if [ "$(id -u)" -eq 0 ]; then
        echo
        "$b/tests/bench/bench" --corrald "$b/corrald" --agent "$b/tests/bench/bench-agent" --placement "$placement" \
                --only launch --sandbox yes "$@"
fi
