# SPDX-License-Identifier: LGPL-2.1-or-later
# For the tests of the real coding CLIs (test-cli-*.sh), after lib.sh: the CLI from npm
# (tests/cli/install.sh) and a stand-in of its model API (tests/cli/model-stub.py).

bail() {
        echo "Bail out! $*"
        exit 1
}

# cli_bin NAME: the path of the CLI, installed at its pinned version if it is not yet.
cli_bin() {
        local bin rc=0
        bin=$("$CORRAL_SRCDIR/tests/cli/install.sh" "$1") || rc=$?
        [ "$rc" -eq 77 ] && skip_all "npm is not installed: cannot install the $1 CLI"
        [ "$rc" -eq 0 ] || bail "cannot install the $1 CLI from npm"
        echo "$bin"
}

STUB_PIDS=()

# start_stub NAME SCRIPT-JSON: a model API stand-in for one agent, its port in STUB_PORT (not
# printed: a command substitution's subshell would lose its pid, and it would outlive the
# test). Its requests are logged to $T/stub-NAME.log.
start_stub() {
        local port_file=$T/stub-$1.port
        printf '%s\n' "$2" >"$T/stub-$1.json"
        python3 "$CORRAL_SRCDIR/tests/cli/model-stub.py" --port-file "$port_file" --log "$T/stub-$1.log" \
                --script "$T/stub-$1.json" >>"$T/stub-$1.err" 2>&1 &
        STUB_PIDS+=("$!")
        for _ in $(seq 100); do
                [ -s "$port_file" ] && break
                sleep 0.05
        done
        [ -s "$port_file" ] || bail "the model stub for $1 did not start"
        touch "$T/stub-$1.log"
        STUB_PORT=$(cat "$port_file")
}

stop_stubs() {
        local pid
        for pid in "${STUB_PIDS[@]}"; do
                kill "$pid" 2>/dev/null || true
        done
}

# stub_unknown NAME: what the stand-in of NAME was asked and does not know (empty: nothing).
stub_unknown() {
        jq -c 'select(.unknown) | {path, why}' "$T/stub-$1.log"
}

# stub_requests NAME: the requests for a model turn that the stand-in of NAME answered.
stub_requests() {
        jq -s '[.[] | select(.step)] | length' "$T/stub-$1.log"
}

# cli_result RUN: the CLI's own last line of the given type ($2, default "result") on stdout.
cli_line() {
        "$CORRALCTL" logs "$1" 2>/dev/null | jq -c --arg t "${2:-result}" 'select(.type == $t)' 2>/dev/null | tail -n 1
}

# wake_task AGENT TASK-KEY: a wake of the agent for a task; prints the run id.
wake_task() {
        api POST "/api/agents/$1/wakeup" "{\"payload\":{\"taskKey\":\"$2\"}}" | jq -r .id
}

# procs_of_uid UID: how many processes that uid has (a sandboxed agent's are only its runs').
procs_of_uid() {
        local n=0 f
        for f in /proc/[0-9]*/status; do
                awk -v u="$1" '/^Uid:/ { exit ($2 == u ? 0 : 1) }' "$f" 2>/dev/null && n=$((n + 1))
        done
        echo "$n"
}

# retry_of RUN: the automatic retry of RUN, if there is one yet (of $company's runs).
retry_of() {
        api GET "/api/companies/$company/heartbeat-runs" | jq -r --arg r "$1" '.[] | select(.retryOfRunId == $r) | .id'
}

# check_stale_session AGENT BOGUS-ID WORDS: task t1's session is made one the CLI does not
# know; the task's next run finds the CLI refusing it in its WORDS, and starts it again at
# once, in the same run, in a fresh session (the stand-in answers "fresh start"), which is
# the task's from then on. No other run is queued for it.
check_stale_session() {
        local agent=$1 run final
        sql "UPDATE agent_task_sessions SET session_display_id = '$2' WHERE agent_id = '$agent' \
                AND task_key = 't1'"
        run=$(wake_task "$agent" t1)
        final=$(wait_run "$run" 180)
        is "a run whose session the CLI no longer knows succeeds, in a fresh session, in the same run" \
                "$(jq -r '"\(.status) \(.sessionIdBefore) \(.resultJson.sessionRetried) \(.resultJson.result)"' <<<"$final")" \
                "succeeded $2 true fresh start"
        like "... the CLI refused it in its words" "$(api GET "/api/heartbeat-runs/$run/log?limitBytes=1048576" | jq -r .content)" "$3"
        is "... which the run's events say" "$(api GET "/api/heartbeat-runs/$run/events" |
                jq -r '.[] | select(.eventType == "session_not_found") | .message')" \
                "session_not_found: the CLI could not resume session $2; it ran again, in a fresh one"
        is "... and that its agent started again (the second start reported, as the first)" "$(api GET "/api/heartbeat-runs/$run/events" |
                jq -r '[.[] | select(.eventType == "lifecycle" and (.message | startswith("run started"))) | .message] | join("; ")')" \
                "run started; run started again, afresh: its session could not be resumed"
        is "... and no other run was queued for it" "$(retry_of "$run")" ""
        is "... and its session is the task's from now on" "$(api GET "/api/agents/$agent/task-sessions" |
                jq -r '.[] | select(.taskKey == "t1") | .sessionDisplayId')" "$(jq -r .sessionIdAfter <<<"$final")"
        check "... a new one" test "$(jq -r .sessionIdAfter <<<"$final")" != "$2"
}

# check_cancel NAME AGENT: a run of AGENT, whose stand-in NAME never answers, is cancelled
# while the CLI waits for the model, and every process of it goes.
check_cancel() {
        local name=$1 agent=$2 run uid final
        run=$(wake_task "$agent" t1)
        asked() { [ "$(stub_requests "$name")" -ge 1 ]; }
        wait_for 120 asked
        check "the CLI is waiting for the model" asked
        uid=$(api GET "/api/agents/$agent" | jq -r .sandboxUid)
        like "the agent has processes" "$(procs_of_uid "$uid")" '^[1-9]'
        api POST "/api/heartbeat-runs/$run/cancel" >/dev/null
        final=$(wait_run "$run" 60)
        is "the cancelled run is cancelled" "$(jq -r .status <<<"$final")" cancelled
        # The pid namespace's processes die with its init; the last may still be exiting.
        # Under the sanitizers on a loaded machine that takes seconds more.
        gone() { [ "$(procs_of_uid "$uid")" -eq 0 ]; }
        wait_for 30 gone
        is "no process of it is left" "$(procs_of_uid "$uid")" 0
        gone || ps -o pid,ppid,stat,etime,args -u "$uid" 2>&1 | sed 's/^/#   /'
}
