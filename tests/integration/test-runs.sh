#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs through the daemon with the cgroup backend: wakes, the process adapter,
# logs, timeouts, cancel, concurrency, and corrald killed while runs live.
. "$(dirname "$0")/lib.sh"
require curl jq sqlite3 sha256sum

[ "$(id -u)" -eq 0 ] || skip_all "needs root to create cgroups"
MOUNT=$(cgroup2_mount)
[ -n "$MOUNT" ] || skip_all "no cgroup v2 hierarchy is mounted"
CG=$MOUNT/corral-it-$$

extra_cleanup() {
        remove_run_cgroups "$CG"
}

# The boot id comes from a file the test controls, so a reboot can be simulated.
cat /proc/sys/kernel/random/boot_id >"$T/boot_id"
start() {
        start_daemon --placement cgroup --cgroup-root "$CG" --sweep-interval-sec 1 --boot-id-file "$T/boot_id"
}

check "corrald starts with the cgroup backend" start
# corrald's session as it started: the session of whatever started it, at whatever weight,
# or none at all (a daemon in PID 1's session reads an empty /proc/PID/autogroup).
daemon_session=$(cat "/proc/$DAEMON_PID/autogroup" 2>/dev/null)
like "the cgroup root is used" "$(cat "$T/corrald.log")" "Runs are placed in cgroups under $CG"
company=$(api POST /api/companies '{"name":"Runs","issuePrefix":"RUN"}' | jq -r .id)

# agent NAME CONFIG-JSON [RUNTIME-JSON]
agent() {
        api POST "/api/companies/$company/agents" \
                "{\"name\":\"$1\",\"adapterConfig\":$2,\"runtimeConfig\":${3:-{\}}}" | jq -r .id
}

# --- a run from wake to end ---
a=$(agent hello '{"command":"/bin/sh","args":["-c","echo run=$CORRAL_RUN_ID agent=$CORRAL_AGENT_ID; cat; echo to-stderr >&2"],"stdin":"from stdin\n","timeoutSec":60}')
run=$("$CORRALCTL" wake "$a" --reason "test wake" --quiet)
like "corralctl wake prints the run id" "$run" '^[0-9a-f-]{36}$'
final=$(wait_run "$run")
is "the run succeeded" "$(jq -r .status <<<"$final")" succeeded
is "exit code 0" "$(jq -r .exitCode <<<"$final")" 0
out=$("$CORRALCTL" logs "$run" 2>/dev/null)
is "corralctl logs prints stdout" "$out" "$(printf 'run=%s agent=%s\nfrom stdin' "$run" "$a")"
like "stderr is in the excerpt" "$(jq -r .stderrExcerpt <<<"$final")" "to-stderr"
log=$STATE/runs/$run/log.ndjson
is "logBytes is the file's size" "$(jq -r .logBytes <<<"$final")" "$(stat -c %s "$log")"
is "logSha256 is the file's digest" "$(jq -r .logSha256 <<<"$final")" "$(sha256sum "$log" | cut -d' ' -f1)"
check "context.json is in the run directory" test -s "$STATE/runs/$run/context.json"
is "the wake reason reached the context" "$(jq -r .wakeReason "$STATE/runs/$run/context.json")" "test wake"
check "the run's cgroup is gone" test ! -e "$CG/run-$run"
a_json=$(api GET /api/agents/$a)
is "the agent is idle again" "$(jq -r .status <<<"$a_json")" idle
like "lastHeartbeatAt is set" "$(jq -r .lastHeartbeatAt <<<"$a_json")" '^20'
ev=$(api GET /api/heartbeat-runs/$run/events)
is "events: started, then succeeded" "$(jq -r '[.[].message] | join(",")' <<<"$ev")" "run started,run succeeded"
page=$(api GET "/api/heartbeat-runs/$run/log?offset=0&limitBytes=10")
like "a log page holds whole lines or is cut on a character" "$(jq -r .nextOffset <<<"$page")" '^[0-9]+$'
like "corralctl runs lists it, by its agent's name" "$("$CORRALCTL" runs --company "$company")" "$run +hello +succeeded"

# --- the run's session weighs the least (where the kernel shares the CPU by session) ---
if [ -e /proc/self/autogroup ]; then
        a=$(agent session '{"command":"/bin/sh","args":["-c","cat /proc/self/autogroup; ps -o sid= -p $$"]}')
        run=$(api POST /api/agents/$a/heartbeat/invoke | jq -r .id)
        final=$(wait_run "$run")
        like "the agent's session is at nice 19" "$(jq -r .stdoutExcerpt <<<"$final")" '^/autogroup-[0-9]+ nice 19'
        sid=$(jq -r .stdoutExcerpt <<<"$final" | awk 'NR == 2 { print $1 }')
        check "in a session of its own ($sid), not corrald's" test "$sid" != "$(ps -o sid= -p "$DAEMON_PID" | tr -d ' ')"
        is "corrald's own session keeps its weight" "$(cat "/proc/$DAEMON_PID/autogroup")" "$daemon_session"
else
        skip_point "the kernel has no autogroup (/proc/self/autogroup): sessions do not share the CPU"
fi

# --- excerpts: a reason on stderr, then a flood on stdout; a live run's excerpt ---
a=$(agent flood '{"command":"/bin/sh","args":["-c","echo the-reason >&2; head -c 3000000 /dev/zero | tr \"\\0\" x; echo; echo last-line"]}')
run=$(api POST /api/agents/$a/heartbeat/invoke | jq -r .id)
final=$(wait_run "$run")
is "a reason printed before 3 MB of stdout is the stderr excerpt" "$(jq -r .stderrExcerpt <<<"$final")" "the-reason"
like "the stdout excerpt is the output's end" "$(jq -r .stdoutExcerpt <<<"$final")" 'xxx
last-line$'
is "the shim kept both tails" "$(jq -c .tails "$STATE/runs/$run/status.json")" "[36864,11]"
is "... exactly" "$(cat "$STATE/runs/$run/stderr.tail")" "the-reason"
is "logSha256 is the file's digest after a flood" "$(jq -r .logSha256 <<<"$final")" \
        "$(sha256sum "$STATE/runs/$run/log.ndjson" | cut -d' ' -f1)"
a=$(agent live '{"command":"/bin/sh","args":["-c","echo live-output; echo live-error >&2; exec sleep 300"]}')
run=$(api POST /api/agents/$a/heartbeat/invoke | jq -r .id)
for _ in $(seq 100); do
        live=$(api GET /api/heartbeat-runs/$run)
        [ "$(jq -r .stdoutExcerpt <<<"$live")" = live-output ] && break
        sleep 0.1
done
is "a live run's excerpts come from its log" "$(jq -r '[.status, .stdoutExcerpt, .stderrExcerpt] | map(rtrimstr("\n")) | join(" ")' <<<"$live")" \
        "running live-output live-error"
is "... and are not written to its row while it runs" \
        "$(sql "SELECT coalesce(stdout_excerpt, '') FROM heartbeat_runs WHERE id = '$run'")" ""
api POST /api/heartbeat-runs/$run/cancel >/dev/null
final=$(wait_run "$run")
is "... and are written with its end" "$(jq -r .stdoutExcerpt <<<"$final")" "live-output"

# --- failures ---
a=$(agent fails '{"command":"/bin/sh","args":["-c","exit 3"]}')
final=$(wait_run "$(api POST /api/agents/$a/heartbeat/invoke | jq -r .id)")
is "exit 3: failed/adapter_failed" "$(jq -r '.status + "/" + .errorCode + "/" + (.exitCode|tostring)' <<<"$final")" "failed/adapter_failed/3"
is "the agent is in error" "$(api GET /api/agents/$a | jq -r .status)" error
a=$(agent missing '{"command":"/nonexistent/agent"}')
final=$(wait_run "$(api POST /api/agents/$a/heartbeat/invoke | jq -r .id)")
is "a command that does not exist exits 127" "$(jq -r .exitCode <<<"$final")" 127
a=$(agent unset '{}')
final=$(wait_run "$(api POST /api/agents/$a/heartbeat/invoke | jq -r .id)")
is "no command: launch_failed" "$(jq -r .errorCode <<<"$final")" launch_failed
like "... saying why" "$(jq -r .error <<<"$final")" "adapterConfig.command must be a non-empty string"

# --- timeout, with an agent that ignores SIGTERM and leaves a child ---
a=$(agent stubborn '{"command":"/bin/sh","args":["-c","trap \"\" TERM; sh -c \"sleep 300; : corral-it-timeout-'$$'\" & while :; do sleep 0.1; done"],"timeoutSec":1,"graceSec":1}')
final=$(wait_run "$(api POST /api/agents/$a/heartbeat/invoke | jq -r .id)")
is "timeout: timed_out/timeout" "$(jq -r '.status + "/" + .errorCode' <<<"$final")" "timed_out/timeout"
is "killed after the grace period" "$(jq -r .signal <<<"$final")" SIGKILL
is "no process of the run is left" "$(marker_procs "corral-it-timeout-$$")" 0

# --- idle timeout ---
a=$(agent quiet '{"command":"/bin/sh","args":["-c","echo hi; exec sleep 300"],"idleTimeoutSec":1,"graceSec":1}')
final=$(wait_run "$(api POST /api/agents/$a/heartbeat/invoke | jq -r .id)")
is "idle: timed_out/idle_timeout" "$(jq -r '.status + "/" + .errorCode' <<<"$final")" "timed_out/idle_timeout"

# --- cancel, concurrency, coalescing, policy ---
a=$(agent sleeper '{"command":"/bin/sleep","args":["300"],"graceSec":1}')
r1=$(api POST /api/agents/$a/heartbeat/invoke | jq -r .id)
r2=$(api POST /api/agents/$a/heartbeat/invoke | jq -r .id)
r3=$(api POST /api/agents/$a/heartbeat/invoke | jq -r .id)
is "second wake queues a run" "$(api GET /api/heartbeat-runs/$r2 | jq -r .status)" queued
is "third wake coalesces into the queued run" "$r3" "$r2"
wait_run_started "$r1"
is "one run at a time (maxConcurrentRuns 1)" "$(api GET /api/heartbeat-runs/$r1 | jq -r .status)" running
"$CORRALCTL" cancel "$r1" >/dev/null
final=$(wait_run "$r1")
is "cancelled" "$(jq -r '.status + "/" + .errorCode' <<<"$final")" "cancelled/cancelled"
wait_run_status "$r2" running
is "the queued run starts when the slot frees" "$(api GET /api/heartbeat-runs/$r2 | jq -r .status)" running
"$CORRALCTL" agent pause "$a" >/dev/null
final=$(wait_run "$r2")
is "pausing the agent cancels its run" "$(jq -r .status <<<"$final")" cancelled
api POST /api/agents/$a/heartbeat/invoke >/dev/null
is "a paused agent cannot be woken: 409" "$(status)" 409
a=$(agent nodemand '{"command":"/bin/true"}' '{"heartbeat":{"wakeOnDemand":false}}')
is "wakeOnDemand false: skipped" "$(api POST /api/agents/$a/wakeup '{}' | jq -r '.status + " " + .reason')" "skipped heartbeat.wakeOnDemand.disabled"
a=$(agent idem '{"command":"/bin/sh","args":["-c","sleep 0.5"]}')
k1=$(api POST /api/agents/$a/wakeup '{"idempotencyKey":"k-1"}' | jq -r .id)
k2=$(api POST /api/agents/$a/wakeup '{"idempotencyKey":"k-1"}' | jq -r .id)
is "the same idempotency key gives the same run" "$k2" "$k1"
wait_run "$k1" >/dev/null
invoked=$(api GET "/api/companies/$company/activity?limit=200" |
        jq -r --arg a "$a" '[.[] | select(.action == "heartbeat.invoked" and .entityId == $a) | .details.outcome + " " + (.details.runId // "")] | sort | join(",")')
is "each wake is in the activity log with its outcome and run" "$invoked" "coalesced $k1,queued $k1"

# --- corrald SIGKILLed while an agent writes: the run is re-adopted and ends for real ---
# The agent writes half its lines, waits for the test to let it go on, writes the rest, and
# waits again before it exits, so that its output is seen while it still runs.
a=$(agent chatty '{"command":"/bin/sh","args":["-c","for i in $(seq 20); do echo line $i; done; while [ ! -e '"$T"'/chatty.go ]; do sleep 0.05; done; for i in $(seq 21 40); do echo line $i; done; while [ ! -e '"$T"'/chatty.end ]; do sleep 0.05; done; exit 7"]}')
run=$(api POST /api/agents/$a/heartbeat/invoke | jq -r .id)
twenty_lines() { [ "$(jq -r .chunk "$STATE/runs/$run/log.ndjson" 2>/dev/null | grep -c '^line ')" -ge 20 ]; }
check "the agent wrote its first half" wait_for 15 twenty_lines
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
check "corrald starts again" start
touch "$T/chatty.go"
cleared() { api GET "/api/heartbeat-runs/$run/events" | jq -r '.[].message' | grep -q 'cleared detached warning'; }
check "its new output clears the detached mark while it runs" wait_for 15 cleared
touch "$T/chatty.end"
final=$(wait_run "$run")
is "the re-adopted run ends with its real exit code" "$(jq -r '.status + "/" + (.exitCode|tostring)' <<<"$final")" "failed/7"
is "every line is in the log" "$("$CORRALCTL" logs "$run" | grep -c '^line ')" 40
log=$STATE/runs/$run/log.ndjson
is "its digest covers the whole log, both sides of the restart" "$(jq -r '.logBytes|tostring' <<<"$final") $(jq -r .logSha256 <<<"$final")" \
        "$(size_and_sha256 "$log")"
ev=$(api GET /api/heartbeat-runs/$run/events | jq -r '[.[].message] | join("|")')
like "it was marked detached, then cleared by its output" "$ev" "still alive.*cleared detached warning"

# --- the run ended while corrald was down: finalized from status.json, no retry ---
# Two runs: corrald takes the log's size and digest from the first one's status.json,
# which the test changes (so corrald cannot have read the log for it), and hashes the
# second one's log itself, whose status.json gives a size the file does not have.
a=$(agent short '{"command":"/bin/sh","args":["-c","while [ ! -e '"$T"'/short.go ]; do sleep 0.05; done; echo done; exit 5"]}')
b=$(agent short2 '{"command":"/bin/sh","args":["-c","while [ ! -e '"$T"'/short.go ]; do sleep 0.05; done; echo done too"]}')
run=$(api POST /api/agents/$a/heartbeat/invoke | jq -r .id)
run2=$(api POST /api/agents/$b/heartbeat/invoke | jq -r .id)
wait_run_started "$run"
wait_run_started "$run2"
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
touch "$T/short.go"
check "the run ends while corrald is down" wait_for 15 test -e "$STATE/runs/$run/status.json"
check "... and the other" wait_for 15 test -e "$STATE/runs/$run2/status.json"
log=$STATE/runs/$run/log.ndjson
is "the shim gave its log's size and digest" "$(jq -r '"\(.logFileBytes) \(.logSha256)"' "$STATE/runs/$run/status.json")" \
        "$(size_and_sha256 "$log")"
fake=$(printf 'f%.0s' $(seq 64))
jq -c --arg d "$fake" '.logSha256 = $d' "$STATE/runs/$run/status.json" >"$T/status.json" && mv "$T/status.json" "$STATE/runs/$run/status.json"
jq -c '.logFileBytes += 1' "$STATE/runs/$run2/status.json" >"$T/status.json" && mv "$T/status.json" "$STATE/runs/$run2/status.json"
check "corrald starts after the run ended" start
final=$(wait_run "$run")
is "finalized with its true exit code" "$(jq -r '.status + "/" + (.exitCode|tostring)' <<<"$final")" "failed/5"
is "... and no retry" "$(api GET "/api/companies/$company/heartbeat-runs?agentId=$a" | jq length)" 1
is "its digest is the shim's, the log not read for it" "$(jq -r '"\(.logBytes) \(.logSha256)"' <<<"$final")" \
        "$(stat -c %s "$log") $fake"
final=$(wait_run "$run2")
log=$STATE/runs/$run2/log.ndjson
is "a digest for another size is not taken: corrald hashed the log" "$(jq -r '"\(.logBytes) \(.logSha256)"' <<<"$final")" \
        "$(size_and_sha256 "$log")"

# --- the shim killed while corrald was down: process lost, one retry ---
a=$(agent lost '{"command":"/bin/sh","args":["-c","sleep 1; echo hi"]}')
run=$(api POST /api/agents/$a/heartbeat/invoke | jq -r .id)
wait_run_started "$run"
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
shim=$(sql "SELECT shim_pid FROM heartbeat_runs WHERE id = '$run'")
kill -KILL "$shim"
check "the shim is gone" wait_for 10 gone "$shim"
check "corrald starts after the shim died" start
final=$(wait_run "$run")
is "process lost" "$(jq -r '.status + "/" + .errorCode' <<<"$final")" "failed/process_lost"
like "the error says a retry follows" "$(jq -r .error <<<"$final")" "Process lost -- .*; retrying once"
runs=$(api GET "/api/companies/$company/heartbeat-runs?agentId=$a")
retry=$(jq -r --arg r "$run" '.[] | select(.retryOfRunId == $r) | .id' <<<"$runs")
like "exactly one retry was queued" "$retry" '^[0-9a-f-]{36}$'
is "the retry counts the loss" "$(api GET /api/heartbeat-runs/$retry | jq -r .processLossRetryCount)" 1
final=$(wait_run "$retry")
is "the retry runs and succeeds" "$(jq -r .status <<<"$final")" succeeded

# --- an issue run lost twice: the lock follows the one retry, the checkout stays (seed scenarios 2 and 4) ---
# As in the reference's fixture the agent is paused while corrald is down, so what recovery
# did can be seen before anything else runs.
a=$(agent issuelost '{"command":"/bin/sh","args":["-c","exec sleep 300"],"graceSec":1}')
issue=$(api POST /api/companies/$company/issues "{\"title\":\"Lost twice\",\"status\":\"todo\",\"assigneeAgentId\":\"$a\"}" | jq -r .id)
first=$(api GET /api/issues/$issue | jq -r .executionRunId)
wait_run_started "$first"
lose() { # kill corrald and the run's shim and agent, pause the agent, start again
        kill -KILL "$DAEMON_PID"
        wait "$DAEMON_PID" 2>/dev/null
        DAEMON_PID=
        read -r s p < <(sql "SELECT shim_pid, process_pid FROM heartbeat_runs WHERE id = '$1'" | tr "|" " ")
        kill -KILL "$s" "$p" 2>/dev/null
        sql "UPDATE agents SET status = 'paused' WHERE id = '$a'"
        wait_for 10 gone "$s"
        start >/dev/null
}
lose "$first"
wait_run "$first" >/dev/null
i=$(api GET /api/issues/$issue)
second=$(jq -r .executionRunId <<<"$i")
is "the lost run's retry holds the lock" "$(api GET /api/heartbeat-runs/$second | jq -r '.retryOfRunId + " " + .status')" "$first queued"
is "the checkout stayed with the lost run" "$(jq -r .checkoutRunId <<<"$i")" "$first"
"$CORRALCTL" agent resume "$a" >/dev/null
wait_run_started "$second"
is "the retry adopts the stale checkout when it starts" "$(api GET /api/issues/$issue | jq -r .checkoutRunId)" "$second"
lose "$second"
final=$(wait_run "$second")
is "the retry lost too: no second retry" "$(jq -r '.status + "/" + .errorCode + " " + (.error | test("retrying") | tostring)' <<<"$final")" "failed/process_lost false"
is "nothing retries the retry" "$(api GET "/api/companies/$company/heartbeat-runs?agentId=$a" | jq --arg r "$second" '[.[] | select(.retryOfRunId == $r)] | length')" 0
i=$(api GET /api/issues/$issue)
is "the lock is released" "$(jq -r .executionRunId <<<"$i")" null
is "the checkout is unchanged" "$(jq -r .checkoutRunId <<<"$i")" "$second"

# --- shim and agent gone, a descendant still in the cgroup: killed through it, lost, retried ---
a=$(agent orphan '{"command":"/bin/sh","args":["-c","setsid sh -c \"sleep 300; : corral-it-orphan-'$$'\" </dev/null >/dev/null 2>&1 & sleep 300"],"graceSec":1}')
run=$(api POST /api/agents/$a/heartbeat/invoke | jq -r .id)
wait_run_started "$run"
orphan_started() { [ "$(marker_procs "corral-it-orphan-$$")" -ge 1 ]; }
wait_for 15 orphan_started
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
read -r shim agentpid < <(sql "SELECT shim_pid, process_pid FROM heartbeat_runs WHERE id = '$run'" | tr "|" " ")
kill -KILL "$shim" "$agentpid"
wait_for 10 gone "$shim"
wait_for 10 gone "$agentpid"
like "the descendant outlived shim and agent" "$(marker_procs "corral-it-orphan-$$")" '^[1-9]$'
check "corrald starts" start
final=$(wait_run "$run")
is "the run is lost" "$(jq -r '.status + "/" + .errorCode' <<<"$final")" "failed/process_lost"
like "the error names the descendants killed" "$(jq -r .error <<<"$final")" "descendant process.* killed; retrying once"
check "its cgroup is gone" test ! -e "$CG/run-$run"
retry=$(api GET "/api/companies/$company/heartbeat-runs?agentId=$a" | jq -r --arg r "$run" '.[] | select(.retryOfRunId == $r) | .id')
like "and retried once" "$retry" '^[0-9a-f-]{36}$'
"$CORRALCTL" agent pause "$a" >/dev/null
wait_run "$retry" >/dev/null
is "with the retry cancelled, every process of both is gone" "$(marker_procs "corral-it-orphan-$$")" 0

# --- a simulated reboot: the run's processes belong to another boot ---
a=$(agent rebooted '{"command":"/bin/sh","args":["-c","echo up; sh -c \"sleep 300; : corral-it-reboot-'$$'\"; echo again"]}')
run=$(api POST /api/agents/$a/heartbeat/invoke | jq -r .id)
wait_run_started "$run"
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
echo 00000000-0000-4000-8000-000000000001 >"$T/boot_id"
check "corrald starts in the new boot" start
final=$(wait_run "$run")
is "a run of an earlier boot is lost" "$(jq -r '.status + "/" + .errorCode' <<<"$final")" "failed/process_lost"
like "... because of the reboot" "$(jq -r .error <<<"$final")" "the machine rebooted"
check "its cgroup is gone" test ! -e "$CG/run-$run"
retry=$(api GET "/api/companies/$company/heartbeat-runs?agentId=$a" | jq -r --arg r "$run" '.[] | select(.retryOfRunId == $r) | .id')
like "it gets its one retry" "$retry" '^[0-9a-f-]{36}$'
api POST /api/heartbeat-runs/$retry/cancel >/dev/null
wait_run "$retry" >/dev/null
is "with the retry cancelled, nothing of either is left" "$(marker_procs "corral-it-reboot-$$")" 0

# --- agents calling back: a run's process acts as its agent ---
cat >"$T/callback.sh" <<'AGENT'
#!/bin/sh
call() { curl -s --unix-socket "$CORRAL_SOCKET" -o /dev/null -w '%{http_code}\n' -X "$1" -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "http://localhost$2"; }
echo "comment $(call POST "/api/issues/$CORRAL_ISSUE_ID/comments" '{"body":"on it, @caller"}')"
echo "pause $(call POST "/api/agents/$CORRAL_AGENT_ID/pause")"
echo "wake-other $(call POST "/api/agents/$OTHER_AGENT/wakeup" '{}')"
echo "other-company $(call GET "/api/companies/$OTHER_COMPANY")"
echo "done $(call PATCH "/api/issues/$CORRAL_ISSUE_ID" '{"status":"done"}')"
AGENT
chmod +x "$T/callback.sh"
other_company=$(api POST /api/companies '{"name":"Other","issuePrefix":"OTHER"}' | jq -r .id)
other_agent=$(agent bystander '{"command":"/bin/true"}')
cb=$(agent caller "{\"command\":\"$T/callback.sh\",\"env\":{\"OTHER_AGENT\":\"$other_agent\",\"OTHER_COMPANY\":\"$other_company\"}}")
issue=$(api POST /api/companies/$company/issues "{\"title\":\"Call back\",\"status\":\"todo\",\"assigneeAgentId\":\"$cb\"}")
run=$(jq -r .executionRunId <<<"$issue")
final=$(wait_run "$run")
out=$(jq -r .stdoutExcerpt <<<"$final")
like "the agent may comment on its issue" "$out" "comment 201"
like "the agent may not pause itself (board only)" "$out" "pause 403"
like "the agent may wake only itself" "$out" "wake-other 403"
like "the agent stays within its company" "$out" "other-company 403"
like "the agent may close its issue" "$out" "done 200"
c=$(api GET "/api/issues/$(jq -r .id <<<"$issue")/comments" | jq '.[0]')
is "the comment names the agent and its run" "$(jq -r '.authorAgentId + " " + .createdByRunId' <<<"$c")" "$cb $run"
is "its own comment (even mentioning itself) did not wake it" "$(api GET "/api/companies/$company/heartbeat-runs?agentId=$cb" | jq length)" 1
is "the issue is done" "$(api GET "/api/issues/$(jq -r .id <<<"$issue")" | jq -r .status)" done

metrics=$(curl -sS --unix-socket "$SOCK" http://localhost/metrics)
like "metrics: first heartbeats counted" "$metrics" 'corral_telemetry_events_total\{event="agent.first_heartbeat"\} [1-9]'
like "metrics: the callback agent's done issue counted" "$metrics" 'corral_telemetry_events_total\{event="agent.task_completed"\} 1'
like "metrics: runs by status" "$metrics" 'corral_runs\{status="succeeded"\} [1-9]'
# Counted by triggers (migration 5): each the table's own count.
metric_counts() {
        grep -E '^corral_(runs|agents|issues)\{status=' <<<"$metrics" | grep -v ' 0$' | sed 's/^corral_//; s/{status="/ /; s/"} / /' | sort
}
table_counts() {
        sql "SELECT 'runs', status, count(*) FROM heartbeat_runs GROUP BY status
                UNION ALL SELECT 'agents', status, count(*) FROM agents GROUP BY status
                UNION ALL SELECT 'issues', status, count(*) FROM issues GROUP BY status" | tr '|' ' ' | sort
}
is "metrics: every status count is the table's" "$(metric_counts)" "$(table_counts)"
like "telemetry went to the log with the agent's role" "$(cat "$T/corrald.log")" "Telemetry agent.first_heartbeat: agent .* \(role general\)"

is "POST /api/sweep answers" "$(api POST /api/sweep | jq -r '.runsRecovered | type')" number

# --- one descriptor a live run (its shim's pidfd), so that 10,000 runs fit ---
fds() { find "/proc/$DAEMON_PID/fd" -mindepth 1 2>/dev/null | wc -l; }
before=$(fds)
many=()
for i in $(seq 20); do
        id=$(agent "idle-$i" '{"command":"sleep","args":["600"],"timeoutSec":0}')
        many+=("$(api POST "/api/agents/$id/heartbeat/invoke" | jq -r .id)")
done
all_running() {
        local r
        for r in "${many[@]}"; do run_started "$r" || return 1; done
}
check "20 idle runs run" wait_for 60 all_running
after=$(fds)
check "corrald holds at most one more descriptor a run ($before before, $after with 20 runs)" test $((after - before)) -le 22
for r in "${many[@]}"; do api POST "/api/heartbeat-runs/$r/cancel" >/dev/null; done
for r in "${many[@]}"; do wait_run "$r" 30 >/dev/null; done
stop_daemon
is "corrald exits 0" "$DAEMON_STATUS" 0
is "no run cgroup is left" "$(find "$CG" -mindepth 1 -maxdepth 1 -type d | wc -l)" 0
finish
