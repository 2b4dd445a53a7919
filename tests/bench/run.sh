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
# The launch and throughput figures again on PostgreSQL (a server of the bench's own, on
# its socket, started and stopped here), beside those above of the same run on SQLite.
srcdir=$(dirname "$(realpath "$0")")/../..
if [ $# -gt 0 ]; then
        : # a stage chosen by hand: that one alone
elif "$srcdir/tests/pg-server.sh" bindir >/dev/null 2>&1; then
        pgdir=$(mktemp -d /tmp/corral-bench-pg.XXXXXX)
        trap '"$srcdir/tests/pg-server.sh" stop "$pgdir"' EXIT
        uri=$("$srcdir/tests/pg-server.sh" start "$pgdir")
        for stage in launch throughput; do
                echo
                echo "On PostgreSQL (one host):"
                "$b/tests/bench/bench" --corrald "$b/corrald" --agent "$b/tests/bench/bench-agent" --placement "$placement" \
                        --only "$stage" --database "$uri"
        done
        # Three hosts on the database: launch and throughput with wakes through the three in
        # turn, claims across them, and the failover after one's death.
        echo
        echo "On PostgreSQL (three hosts):"
        "$b/tests/bench/bench" --corrald "$b/corrald" --agent "$b/tests/bench/bench-agent" --placement "$placement" \
                --only hosts --database "$uri"
else
        echo
        echo "PostgreSQL stage not run: PostgreSQL's server (Debian package postgresql) is not installed."
fi
