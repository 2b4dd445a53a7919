#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Crash torture (issue 5): many runs in flight (short, long, chatty, double-
# forking, failing, and issue runs), corrald SIGKILLed at random instants and
# restarted, again and again. Afterwards every run reached exactly one terminal
# status, runs carry their agents' real exit codes and complete logs, no
# process or cgroup of any run is left, and no issue ever had two live runs.
. "$(dirname "$0")/lib.sh"
require curl jq sqlite3

[ "$(id -u)" -eq 0 ] || skip_all "needs root to create cgroups"
MOUNT=$(cgroup2_mount)
[ -n "$MOUNT" ] || skip_all "no cgroup v2 hierarchy is mounted"
CG=$MOUNT/corral-torture-$$
SEED=${CORRAL_TORTURE_SEED:-$RANDOM}
ROUNDS=${CORRAL_TORTURE_ROUNDS:-20}
echo "# seed $SEED, $ROUNDS rounds (CORRAL_TORTURE_SEED=$SEED to repeat)"
RANDOM=$SEED

extra_cleanup() {
        local d
        for d in "$CG"/run-*; do
                [ -d "$d" ] || continue
                echo 1 >"$d/cgroup.kill" 2>/dev/null
                for _ in $(seq 20); do rmdir "$d" 2>/dev/null && break; sleep 0.05; done
        done
        rmdir "$CG" 2>/dev/null
}

start() {
        start_daemon --placement cgroup --cgroup-root "$CG" --sweep-interval-sec 1
}

# crash: SIGKILL corrald; 0 when it was running and died of that signal.
crash() {
        local pid=$DAEMON_PID status
        DAEMON_PID=
        kill -KILL "$pid" 2>/dev/null || return 1
        wait "$pid" 2>/dev/null
        status=$?
        [ "$status" -eq $((128 + 9)) ]
}

check "corrald starts" start
company=$(api POST /api/companies '{"name":"Torture","issuePrefix":"TT"}' | jq -r .id)

declare -A expect_exit expect_out
agent() {
        local id
        id=$(api POST "/api/companies/$company/agents" \
                "{\"name\":\"$1\",\"adapterConfig\":{\"command\":\"/bin/sh\",\"args\":[\"-c\",$(jq -Rn --arg s "$2" '$s')],\"graceSec\":1},\"runtimeConfig\":{\"heartbeat\":{\"maxConcurrentRuns\":10}}}" | jq -r .id)
        echo "$id"
}
# Each agent with the exit code and the bytes of stdout a complete run of it has.
short=$(agent short 'echo short; exit 0')
long=$(agent long 'for i in $(seq 20); do echo long$i; sleep 0.05; done; exit 3')
chatty=$(agent chatty 'head -c 300000 /dev/zero | tr "\000" x; echo; exit 0')
forky=$(agent forky 'setsid sh -c "sleep 300; : corral-tdaemon-'$$'" </dev/null >/dev/null 2>&1 & echo forked; exit 0')
failing=$(agent failing 'echo failing >&2; exit 7')
expect_exit=([$short]=0 [$long]=3 [$chatty]=0 [$forky]=0 [$failing]=7)
expect_out=([$short]=6 [$long]=131 [$chatty]=300001 [$forky]=7 [$failing]=0)
agents=("$short" "$long" "$chatty" "$forky" "$failing")

wake_all() {
        local a k
        for a in "${agents[@]}"; do
                for k in $(seq "$1"); do
                        api POST "/api/agents/$a/wakeup" "{\"payload\":{\"taskKey\":\"$2-$k\"}}" >/dev/null
                done
        done
}

# Issue runs: the long agent works on five issues at once (its limit is 10).
for k in 1 2 3 4 5; do
        api POST "/api/companies/$company/issues" "{\"title\":\"Torture $k\",\"status\":\"todo\",\"assigneeAgentId\":\"$long\"}" >/dev/null
done
wake_all 10 first
crashes=0 restarts=0
# Random moments on purpose: the crashes are to land anywhere in the runs' lives.
for round in $(seq "$ROUNDS"); do
        sleep "0.$((RANDOM % 6 + 1))"
        crash && crashes=$((crashes + 1))
        # Some work arrives while corrald is down or right after it is back.
        [ $((RANDOM % 3)) -eq 0 ] && sleep "0.$((RANDOM % 5))"
        start >/dev/null || { not_ok "corrald restarts in round $round"; break; }
        restarts=$((restarts + 1))
        [ $((round % 5)) -eq 0 ] && wake_all 1 "round$round"
done
is "corrald was SIGKILLed $ROUNDS times while runs lived" "$crashes" "$ROUNDS"
is "and started again each time" "$restarts" "$ROUNDS"

# Let everything finish.
for i in $(seq 600); do
        left=$(sql "SELECT count(*) FROM heartbeat_runs WHERE status IN ('queued', 'running')")
        [ "$left" = 0 ] && break
        sleep 0.1
done
is "every run reached a terminal status" "$left" 0
total=$(sql "SELECT count(*) FROM heartbeat_runs")
like "at least 50 runs were in flight" "$total" '^([5-9][0-9]|[1-9][0-9][0-9]+)$'
echo "# $total runs: $(sql "SELECT status || '=' || count(*) FROM heartbeat_runs GROUP BY status ORDER BY status" | tr '\n' ' ')"

# Real exit codes and complete logs: every run that ran its agent to the end.
bad_exit=0 bad_log=0 lost=0 checked=0
while IFS='|' read -r id agent status exit code; do
        if [ "$code" = process_lost ] || [ "$code" = launch_failed ]; then
                lost=$((lost + 1))
                continue
        fi
        checked=$((checked + 1))
        [ "$exit" = "${expect_exit[$agent]}" ] || { bad_exit=$((bad_exit + 1)); echo "# run $id: exit '$exit', expected ${expect_exit[$agent]}"; }
        bytes=$("$CORRALCTL" logs "$id" 2>/dev/null | wc -c)
        [ "$bytes" = "${expect_out[$agent]}" ] || { bad_log=$((bad_log + 1)); echo "# run $id: $bytes bytes of stdout, expected ${expect_out[$agent]}"; }
done < <(sql "SELECT id, agent_id, status, coalesce(CAST(exit_code AS TEXT), ''), coalesce(error_code, '') FROM heartbeat_runs")
echo "# $checked runs checked, $lost lost (their launch or process was cut off by a crash, then retried)"
is "every run carries its agent's real exit code" "$bad_exit" 0
is "every log is byte-complete" "$bad_log" 0
like "most runs ended for real" "$checked" '^[1-9][0-9]+$'
is "no lost run went without its one retry" \
        "$(sql "SELECT count(*) FROM heartbeat_runs l WHERE l.error_code = 'process_lost' AND l.process_loss_retry_count = 0 AND NOT EXISTS (SELECT 1 FROM heartbeat_runs r WHERE r.retry_of_run_id = l.id)")" 0

# No issue ever had two live runs at once.
overlaps=$(sql "SELECT count(*) FROM heartbeat_runs a JOIN heartbeat_runs b ON a.id < b.id
        AND a.issue_id = b.issue_id
        WHERE a.started_at IS NOT NULL AND b.started_at IS NOT NULL
        AND a.started_at < coalesce(b.finished_at, '9') AND b.started_at < coalesce(a.finished_at, '9')")
is "no issue had two live runs" "$overlaps" 0

is "no process of any run is left" "$(marker_procs "corral-tdaemon-$$")" 0
is "no run cgroup is left" "$(find "$CG" -mindepth 1 -maxdepth 1 -type d | wc -l)" 0
stop_daemon
is "corrald exits 0" "$DAEMON_STATUS" 0
finish
