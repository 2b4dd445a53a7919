# SPDX-License-Identifier: LGPL-2.1-or-later
# Several corrald hosts on one PostgreSQL database, for the tests of hosts (sourced after
# lib.sh). A test sets MOUNT (the cgroup v2 mount), MARK (its cgroup roots' name) and
# HOST_OPTIONS (what its hosts run with: the lease, the sweep); host N is host-N, with its own
# state directory, sockets, cgroup root $MOUNT/$MARK-N and log $T/corraldN.log.

declare -A HPID
HOST_OPTIONS=()

# The test's end, whatever it was: every host stopped (thawed first), their cgroups removed.
extra_cleanup() {
        local n
        for n in "${!HPID[@]}"; do
                kill -CONT "${HPID[$n]}" 2>/dev/null
                kill -TERM "${HPID[$n]}" 2>/dev/null
                wait "${HPID[$n]}" 2>/dev/null
        done
        for n in 1 2 3; do remove_run_cgroups "$MOUNT/$MARK-$n"; done
        if [ "$tap_failed" -gt 0 ]; then
                for n in 1 2 3; do
                        echo "# last lines of host $n's log:"
                        tail -n 20 "$T/corrald$n.log" 2>/dev/null | sed 's/^/#   /'
                done
        fi
}

# host_start N: corrald as host-N; waits until it answers.
host_start() {
        local n=$1
        "$CORRALD" --state-dir "$T/state$n" --database "$DATABASE" --socket "$T/c$n.sock" --agent-socket "$T/a$n.sock" \
                --placement cgroup --cgroup-root "$MOUNT/$MARK-$n" --sandbox no --log-level debug --host-id "host-$n" \
                "${HOST_OPTIONS[@]}" >>"$T/corrald$n.log" 2>&1 &
        HPID[$n]=$!
        wait_for 10 host_up "$n"
}
host_up() { CORRAL_SOCKET=$T/c$1.sock "$CORRALCTL" status >/dev/null 2>&1; }
# host_kill N: SIGKILL host N's corrald (its runs live on).
host_kill() {
        kill -KILL "${HPID[$1]}"
        wait "${HPID[$1]}" 2>/dev/null
        unset "HPID[$1]"
}
# on N METHOD PATH [BODY]: api() through host N.
on() {
        local n=$1
        shift
        SOCK=$T/c$n.sock api "$@"
}
# wake N AGENT BODY: a wake through host N, from any number of shells at once (api() keeps
# its answer in one file).
wake() {
        curl -sS --fail --max-time 30 --unix-socket "$T/c$1.sock" -X POST --data-binary "$3" -H 'Content-Type: application/json' \
                -o /dev/null "http://localhost/api/agents/$2/wakeup" || echo "# wake of $2 through host $1 failed"
}
# procs_of N RUN: the processes in the cgroup of one run of host N. A host may run others
# meanwhile (the continuation of an issue left in progress, which the sweep queues).
procs_of() { cat "$MOUNT/$MARK-$1/run-$2/cgroup.procs" 2>/dev/null | wc -l; }
# hosts_stop: SIGTERM every host still running; each is to exit 0.
hosts_stop() {
        local n
        for n in "${!HPID[@]}"; do
                kill -TERM "${HPID[$n]}"
                wait "${HPID[$n]}"
                is "host $n exits 0" "$?" 0
                unset "HPID[$n]"
        done
}
