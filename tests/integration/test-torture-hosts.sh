#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Crash torture across hosts (make check runs this as tests/integration/pg/test-torture-hosts.pg
# only): three corrald hosts on one PostgreSQL database, runs woken through all three, and at
# random instants one host is
# - crashed: corrald SIGKILLed and started again at once (its runs live on, re-adopted);
# - crashed and left down past its lease (its shims kill their agents, the others take over);
# - gone with its machine: corrald SIGKILLed and its runs' cgroups killed, back after the lease;
# - frozen: SIGSTOPped past its lease, then SIGCONTinued (a zombie).
# Afterwards: every run reached one terminal status; 0 runs lost (each lost run has its one
# retry); 0 duplicate executions (no run started twice, no retry started before the run it
# retries had stopped); 0 exit codes lost (every run that ran to its end carries its agent's
# exit code and its whole log); no process or cgroup of any run is left.
. "$(dirname "$0")/lib.sh"
require curl jq psql
[ "$BACKEND" = postgresql ] || skip_all "this test is of PostgreSQL (run it as tests/integration/pg/test-torture-hosts.pg)"
[ "$(id -u)" -eq 0 ] || skip_all "needs root to create cgroups"
MOUNT=$(cgroup2_mount)
[ -n "$MOUNT" ] || skip_all "no cgroup v2 hierarchy is mounted"
LEASE=3
SEED=${CORRAL_TORTURE_SEED:-$RANDOM}
ROUNDS=${CORRAL_TORTURE_ROUNDS:-10}
# CORRAL_TORTURE_KINDS="down freeze": only those failures.
echo "# seed $SEED, $ROUNDS rounds (CORRAL_TORTURE_SEED=$SEED to repeat)"
RANDOM=$SEED
MARK=corral-thosts-$$

. "$(dirname "$0")/hosts-lib.sh"
HOST_OPTIONS=(--host-lease-sec $LEASE --sweep-interval-sec 2)

for n in 1 2 3; do check "host $n starts" host_start $n; done
SOCK=$T/c1.sock
company=$(api POST /api/companies '{"name":"Hosts torture","issuePrefix":"HT"}' | jq -r .id)
# Each run says when it starts, beats while it lives, and ends with exit code 3 after 30
# lines, 3 s: longer than the lease, so that a run that outlived its host's lease would be
# seen beating beside its retry. A run that ran to its end has that exit code and that log. A
# daemon it leaves in its cgroup must go with it.
script='echo "$CORRAL_RUN_ID $(date +%s%N)" >>'$T'/started
setsid sleep 300 </dev/null >/dev/null 2>&1 &
for i in $(seq 30); do echo "line $i"; date +%s%N >'$T'/beat-$CORRAL_RUN_ID; sleep 0.1; done
kill $! 2>/dev/null; exit 3; : '$MARK
agents=()
for i in 1 2 3 4; do
        agents+=("$(api POST "/api/companies/$company/agents" "$(jq -cn --arg s "$script" --arg n "w$i" \
                '{name: $n, adapterConfig: {command: "/bin/bash", args: ["-c", $s], graceSec: 1},
                  runtimeConfig: {heartbeat: {maxConcurrentRuns: 3}}}')" | jq -r .id)")
done
wake_some() {
        local k a
        for k in $(seq "$1"); do
                a=${agents[$((RANDOM % 4))]}
                wake $((RANDOM % 3 + 1)) "$a" "{\"payload\":{\"taskKey\":\"$2-$k\"}}"
        done
}

wake_some 12 first
read -r -a kinds <<<"${CORRAL_TORTURE_KINDS:-crash down machine freeze}"
declare -A done_kinds
for round in $(seq "$ROUNDS"); do
        sleep "0.$((RANDOM % 8 + 1))"
        n=$((RANDOM % 3 + 1))
        kind=${kinds[$((RANDOM % ${#kinds[@]}))]}
        done_kinds[$kind]=1
        echo "# round $round: host $n, $kind"
        case $kind in
        crash)
                host_kill "$n"
                sleep "0.$((RANDOM % 5))"
                ;;
        down)
                host_kill "$n"
                sleep $((LEASE + 2))
                ;;
        machine)
                host_kill "$n"
                for d in "$MOUNT/$MARK-$n"/run-*; do [ -d "$d" ] && echo 1 >"$d/cgroup.kill"; done
                sleep $((LEASE + 2))
                ;;
        freeze)
                kill -STOP "${HPID[$n]}"
                sleep $((LEASE + 2))
                kill -CONT "${HPID[$n]}"
                ;;
        esac
        if [ "$kind" != freeze ]; then
                host_start "$n" || { not_ok "host $n restarts in round $round"; break; }
        fi
        wake_some 6 "round$round"
done
echo "# kinds of host failure: ${!done_kinds[*]}"

SOCK=$T/c1.sock
all_done() { [ "$(sql "SELECT count(*) FROM heartbeat_runs WHERE status IN ('queued', 'running')")" = 0 ]; }
check "every run reached a terminal status" wait_for 120 all_done
total=$(sql "SELECT count(*) FROM heartbeat_runs")
echo "# $total runs: $(sql "SELECT status || '/' || coalesce(error_code, '-') || '=' || count(*) FROM heartbeat_runs GROUP BY status, error_code ORDER BY status, error_code" | tr '\n' ' ')"
echo "# per host: $(sql "SELECT coalesce(host_id, '-') || '=' || count(*) FROM heartbeat_runs GROUP BY host_id ORDER BY host_id" | tr '\n' ' ')"
like "a good many runs were in flight" "$total" '^([3-9][0-9]|[1-9][0-9][0-9]+)$'

# 0 runs lost: each lost run was retried once (a retry lost in its turn is not retried again).
is "every lost run has its retry" \
        "$(sql "SELECT count(*) FROM heartbeat_runs l WHERE l.error_code = 'process_lost' AND l.process_loss_retry_count = 0
                AND NOT EXISTS (SELECT 1 FROM heartbeat_runs r WHERE r.retry_of_run_id = l.id)")" 0
is "no run failed for another reason than its host's" \
        "$(sql "SELECT count(*) FROM heartbeat_runs WHERE status <> 'succeeded' AND coalesce(error_code, '') NOT IN ('process_lost', 'adapter_failed')")" 0

# 0 duplicate executions.
is "no run was started twice" "$(awk '{ print $1 }' "$T/started" | sort | uniq -d | wc -l)" 0
overlaps=0 pairs=0
while IFS='|' read -r lost retry; do
        pairs=$((pairs + 1))
        [ -s "$T/beat-$lost" ] || continue # killed before it beat once
        first_end=$(cat "$T/beat-$lost")
        retry_start=$(awk -v r="$retry" '$1 == r { print $2 }' "$T/started")
        [ -n "$retry_start" ] || continue # the retry never started (lost at its launch)
        if [ "$first_end" -ge "$retry_start" ]; then
                overlaps=$((overlaps + 1))
                echo "# run $lost beat at $first_end, after its retry $retry started at $retry_start"
        fi
done < <(sql "SELECT retry_of_run_id, id FROM heartbeat_runs WHERE retry_of_run_id IS NOT NULL")
echo "# $pairs runs retried after their host's failure"
is "no retry ran while the run it retries still did" "$overlaps" 0

# 0 exit codes lost: every run that ran its agent to the end.
bad_exit=0 bad_log=0 checked=0
while IFS='|' read -r id host exit; do
        checked=$((checked + 1))
        [ "$exit" = 3 ] || { bad_exit=$((bad_exit + 1)); echo "# run $id: exit '$exit', expected 3"; }
        lines=$(CORRAL_SOCKET=$T/c${host#host-}.sock "$CORRALCTL" logs "$id" 2>/dev/null | grep -c '^line ')
        [ "$lines" = 30 ] || { bad_log=$((bad_log + 1)); echo "# run $id on $host: $lines lines, expected 30"; }
done < <(sql "SELECT id, host_id, coalesce(CAST(exit_code AS TEXT), '') FROM heartbeat_runs WHERE coalesce(error_code, '') <> 'process_lost'")
echo "# $checked runs ran to their end"
like "most runs ran to their end" "$checked" '^[1-9][0-9]+$'
is "each carries its agent's exit code" "$bad_exit" 0
is "each has its whole log" "$bad_log" 0

hosts_stop
is "no process of any run is left" "$(marker_procs "$MARK")" 0
is "no run cgroup is left" "$(find "$MOUNT/$MARK-1" "$MOUNT/$MARK-2" "$MOUNT/$MARK-3" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l)" 0
finish
