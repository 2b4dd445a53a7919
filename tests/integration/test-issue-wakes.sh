#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Issue-driven wakes through the daemon: assignment, the execution lock, harness
# checkout, comment-wake batching (reference §3.3), mentions, status changes,
# and promotion of every deferred wake on release (design §3 difference 3).
. "$(dirname "$0")/lib.sh"
require curl jq sqlite3

# Sweeps would reconcile the in_progress issues these runs leave behind (test-stranded.sh covers
# that); here only the wakes under test create runs.
check "corrald starts" start_daemon --sweep-interval-sec 86400
company=$(api POST /api/companies '{"name":"Wakes","issuePrefix":"WK"}' | jq -r .id)

# agent NAME SECONDS: an agent whose run sleeps, then prints its wake context.
agent() {
        api POST "/api/companies/$company/agents" "{\"name\":\"$1\",\"adapterConfig\":{\"command\":\"/bin/sh\",\"args\":[\"-c\",\"sleep $2; echo issue=\$CORRAL_ISSUE_ID reason=\$CORRAL_WAKE_REASON\"]}}" | jq -r .id
}

runs_of() {
        api GET "/api/companies/$company/heartbeat-runs?agentId=$1"
}

# wait_idle AGENT: until the agent has no queued or running run.
wait_idle() {
        local i
        for i in $(seq 200); do
                [ "$(runs_of "$1" | jq '[.[] | select(.status == "queued" or .status == "running")] | length')" = 0 ] && return 0
                sleep 0.05
        done
        return 1
}

# --- assignment: one run, the lock at enqueue, checkout at claim, release at the end ---
eng=$(agent eng 0.5)
issue=$(api POST /api/companies/$company/issues "{\"title\":\"Build it\",\"status\":\"todo\",\"assigneeAgentId\":\"$eng\"}")
iid=$(jq -r .id <<<"$issue")
run=$(jq -r .executionRunId <<<"$issue")
like "creating an assigned todo issue queues a run that holds its lock" "$run" '^[0-9a-f-]{36}$'
is "the lock names the agent" "$(jq -r .executionAgentId <<<"$issue")" "$eng"
wait_for 15 field_is /api/issues/$iid .status in_progress
i=$(api GET /api/issues/$iid)
is "the harness checked the issue out" "$(jq -r '.status + " " + .checkoutRunId' <<<"$i")" "in_progress $run"
final=$(wait_run "$run")
is "the run succeeded" "$(jq -r .status <<<"$final")" succeeded
is "its context names the issue and the reason" "$(jq -r '.contextSnapshot | .issueId + " " + .wakeReason + " " + (.paperclipHarnessCheckedOut|tostring)' <<<"$final")" "$iid issue_assigned true"
like "the agent saw them in its environment" "$(jq -r .stdoutExcerpt <<<"$final")" "issue=$iid reason=issue_assigned"
i=$(api GET /api/issues/$iid)
is "the lock is released at the end" "$(jq -r .executionRunId <<<"$i")" null
is "the checkout stays with the run" "$(jq -r .checkoutRunId <<<"$i")" "$run"
is "one run in all" "$(runs_of "$eng" | jq length)" 1

# --- two simultaneous assignment wakes for one issue: exactly one run ---
iid2=$(api POST /api/companies/$company/issues '{"title":"Race","status":"todo"}' | jq -r .id)
pids=()
for k in 1 2 3 4; do
        curl -sS --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
                -d "{\"source\":\"assignment\",\"reason\":\"issue_assigned\",\"payload\":{\"issueId\":\"$iid2\"}}" \
                "http://localhost/api/agents/$eng/wakeup" >"$T/race.$k" &
        pids+=($!)
done
wait "${pids[@]}"
wait_idle "$eng"
is "four concurrent wakes for one issue made one run" \
        "$(runs_of "$eng" | jq --arg i "$iid2" '[.[] | select(.contextSnapshot.issueId == $i)] | length')" 1

# --- comment-wake batching (reference §3.3) ---
slow=$(agent slow 1.5)
iid3=$(api POST /api/companies/$company/issues "{\"title\":\"Batch\",\"status\":\"todo\",\"assigneeAgentId\":\"$slow\"}" | jq -r .id)
r1=$(api GET /api/issues/$iid3 | jq -r .executionRunId)
wait_run_started "$r1"
is "the first run is running" "$(api GET /api/heartbeat-runs/$r1 | jq -r .status)" running
c1=$(api POST /api/issues/$iid3/comments '{"body":"first comment"}' | jq -r .id)
c2=$(api POST /api/issues/$iid3/comments '{"body":"second comment"}' | jq -r .id)
deferred=$(sql "SELECT payload FROM agent_wakeup_requests WHERE agent_id = '$slow' AND status = 'deferred_issue_execution'")
is "both comment wakes wait in one deferred row" "$(jq -c '._paperclipWakeContext.wakeCommentIds' <<<"$deferred")" "[\"$c1\",\"$c2\"]"
wait_run "$r1" >/dev/null
wait_idle "$slow"
runs=$(runs_of "$slow")
is "two runs in all" "$(jq length <<<"$runs")" 2
r2=$(jq -r --arg r "$r1" '[.[] | select(.id != $r)][0].id' <<<"$runs")
is "the promoted run carries both comments, in order" "$(api GET /api/heartbeat-runs/$r2 | jq -c '.contextSnapshot.wakeCommentIds')" "[\"$c1\",\"$c2\"]"
is "... and the latest as commentId" "$(api GET /api/heartbeat-runs/$r2 | jq -r '.contextSnapshot.commentId')" "$c2"
is "both runs succeeded" "$(jq -r '[.[].status] | unique | join(",")' <<<"$runs")" succeeded
is "the deferred row became the promoted run's wakeup" \
        "$(sql "SELECT status || ' ' || reason FROM agent_wakeup_requests WHERE run_id = '$r2' AND reason = 'issue_execution_promoted'")" \
        "completed issue_execution_promoted"

# --- mentions, and a deferred wake of another agent promoted on release ---
rev=$(agent reviewer 0.1)
iid4=$(api POST /api/companies/$company/issues "{\"title\":\"Mention\",\"status\":\"todo\",\"assigneeAgentId\":\"$slow\"}" | jq -r .id)
holder=$(api GET /api/issues/$iid4 | jq -r .executionRunId)
wait_run_started "$holder"
api POST /api/issues/$iid4/comments '{"body":"@Reviewer please have a look"}' >/dev/null
is "the mentioned agent waits while another agent holds the issue" \
        "$(sql "SELECT count(*) FROM agent_wakeup_requests WHERE agent_id = '$rev' AND status = 'deferred_issue_execution'")" 1
wait_run "$holder" >/dev/null
wait_idle "$rev"
wait_idle "$slow"
rrun=$(runs_of "$rev" | jq -r '.[0].id')
final=$(api GET /api/heartbeat-runs/$rrun)
is "after the release the mentioned agent ran" "$(jq -r '.status + " " + .contextSnapshot.wakeReason' <<<"$final")" "succeeded issue_comment_mentioned"
is "a mention run does not check the issue out" "$(jq -r '.contextSnapshot.paperclipHarnessCheckedOut' <<<"$final")" false

# --- status changes that resume work ---
# (The assignee is paused while the issue is made, so that wake is refused and it stays blocked.)
"$CORRALCTL" agent pause "$eng" >/dev/null
iid5=$(api POST /api/companies/$company/issues "{\"title\":\"Blocked\",\"status\":\"blocked\",\"assigneeAgentId\":\"$eng\"}" | jq -r .id)
"$CORRALCTL" agent resume "$eng" >/dev/null
before=$(runs_of "$eng" | jq length)
is "a wake for a paused agent is refused" "$(api GET /api/issues/$iid5 | jq -r '.status + " " + (.executionRunId|tostring)')" "blocked null"
api PATCH /api/issues/$iid5 '{"status":"todo"}' >/dev/null
wait_idle "$eng"
last=$(runs_of "$eng" | jq -r '.[0].contextSnapshot.wakeReason')
is "blocked -> todo wakes the assignee" "$(( $(runs_of "$eng" | jq length) - before ))/$last" "1/issue_status_changed"
iid6=$(api POST /api/companies/$company/issues "{\"title\":\"Later\",\"status\":\"backlog\",\"assigneeAgentId\":\"$eng\"}" | jq -r .id)
is "an assigned backlog issue wakes nobody" "$(api GET /api/issues/$iid6 | jq -r .executionRunId)" null

# --- a wake naming an issue of another company is skipped ---
other=$(api POST /api/companies '{"name":"Elsewhere","issuePrefix":"EL"}' | jq -r .id)
foreign=$(api POST /api/companies/$other/issues '{"title":"Not yours"}' | jq -r .id)
reply=$(api POST /api/agents/$eng/wakeup "{\"payload\":{\"issueId\":\"$foreign\"}}")
is "a wake for another company's issue is skipped" "$(jq -r '.status + " " + .reason' <<<"$reply")" "skipped issue_execution_issue_not_found"
api POST /api/agents/$eng/wakeup '{"payload":{"issueId":42}}' >/dev/null
is "payload.issueId must be a string: 400" "$(status)" 400

# --- checkout, release, active and live runs ---
quiet=$(api POST "/api/companies/$company/agents" '{"name":"quiet","adapterConfig":{"command":"/bin/true"},"runtimeConfig":{"heartbeat":{"wakeOnDemand":false}}}' | jq -r .id)
iid8=$(api POST /api/companies/$company/issues '{"title":"Check me out","status":"todo"}' | jq -r .id)
co=$(api POST /api/issues/$iid8/checkout "{\"agentId\":\"$quiet\"}")
is "the board checks an issue out for an agent" "$(jq -r '.status + " " + .assigneeAgentId' <<<"$co")" "in_progress $quiet"
conflict=$(api POST /api/issues/$iid8/checkout "{\"agentId\":\"$eng\",\"expectedStatuses\":[\"todo\"]}")
is "a second checkout conflicts: 409" "$(status) $(jq -r '.error + " " + .status' <<<"$conflict")" "409 Issue checkout conflict in_progress"
api POST /api/issues/$iid8/checkout '{"agentId":"x","expectedStatuses":["finished"]}' >/dev/null
is "unknown expected status: 400" "$(status)" 400
rel=$(api POST /api/issues/$iid8/release)
is "release: back to todo, unassigned" "$(jq -r '.status + " " + (.assigneeAgentId|tostring) + " " + (.checkoutRunId|tostring)' <<<"$rel")" "todo null null"
is "no active run on a quiet issue" "$(api GET /api/issues/$iid8/active-run)" null
iid9=$(api POST /api/companies/$company/issues "{\"title\":\"Live\",\"status\":\"todo\",\"assigneeAgentId\":\"$slow\"}")
lr=$(jq -r .executionRunId <<<"$iid9")
iid9=$(jq -r .id <<<"$iid9")
is "active-run is the lock holder" "$(api GET /api/issues/$iid9/active-run | jq -r .id)" "$lr"
is "live-runs lists it" "$(api GET /api/issues/$iid9/live-runs | jq -r '.[0].id')" "$lr"
like "the company's live runs include it" "$(api GET /api/companies/$company/live-runs | jq -r '.[].id')" "$lr"
wait_run "$lr" >/dev/null

# --- blockers hold runs; the last blocker done wakes the assignee ---
blocker=$(api POST /api/companies/$company/issues '{"title":"First this","status":"todo"}' | jq -r .id)
blocked=$(api POST /api/companies/$company/issues '{"title":"Then this","status":"todo"}' | jq -r .id)
rel=$(api POST /api/issues/$blocked/blockers "{\"blockerIssueId\":\"$blocker\"}")
is "a blocker is recorded" "$(status) $(jq -r '.issueId + " " + .relatedIssueId' <<<"$rel")" "201 $blocker $blocked"
api POST /api/issues/$blocker/blockers "{\"blockerIssueId\":\"$blocked\"}" >/dev/null
is "a cycle of blockers is refused: 422" "$(status)" 422
api POST /api/issues/$blocked/blockers "{\"blockerIssueId\":\"$blocked\"}" >/dev/null
is "an issue cannot block itself: 422" "$(status)" 422
is "the blockers of an issue" "$(api GET /api/issues/$blocked/blockers | jq -r '.[].id')" "$blocker"
api PATCH /api/issues/$blocked "{\"assigneeAgentId\":\"$eng\"}" >/dev/null
# The wake and the claim that leaves the run queued happen before the PATCH is answered.
held=$(api GET /api/issues/$blocked/live-runs | jq -r '.[0].status')
is "a run of a blocked issue stays queued" "$held" queued
api PATCH /api/issues/$blocker '{"status":"done"}' >/dev/null
wait_idle "$eng"
is "with its blocker done, the issue's run ran" "$(api GET "/api/companies/$company/heartbeat-runs?agentId=$eng" | jq -r --arg i "$blocked" '[.[] | select(.contextSnapshot.issueId == $i and .status == "succeeded")] | length')" 1

# --- timer heartbeats ---
timed=$(api POST "/api/companies/$company/agents" '{"name":"timed","adapterConfig":{"command":"/bin/sh","args":["-c","sleep 0.1"]},"runtimeConfig":{"heartbeat":{"enabled":true,"intervalSec":1}}}' | jq -r .id)
off=$(api POST "/api/companies/$company/agents" '{"name":"off","adapterConfig":{"command":"/bin/true"},"runtimeConfig":{"heartbeat":{"enabled":false,"intervalSec":1}}}' | jq -r .id)
timer_runs() { # AGENT: its runs the timer started, oldest first
        runs_of "$1" | jq '[.[] | select(.invocationSource == "timer" and .contextSnapshot.wakeReason == "heartbeat_timer")] | sort_by(.createdAt)'
}
two_timer_runs() { [ "$(timer_runs "$timed" | jq length)" -ge 2 ]; }
check "an agent with a 1 s heartbeat is woken by the timer, more than once" wait_for 15 two_timer_runs
# Whole seconds of the wakes' times: 1 s or more apart in time is 1 or more apart here.
is "... its interval apart" "$(timer_runs "$timed" | jq '(.[1].createdAt | sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601) - (.[0].createdAt | sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601) >= 1')" true
is "an agent with heartbeats disabled was not, in that time" "$(runs_of "$off" | jq length)" 0
"$CORRALCTL" agent pause "$timed" >/dev/null

# A timer wake during an issue run never starts a second concurrent run.
busy=$(api POST "/api/companies/$company/agents" '{"name":"busy","adapterConfig":{"command":"/bin/sh","args":["-c","sleep 2"]},"runtimeConfig":{"heartbeat":{"enabled":true,"intervalSec":1}}}' | jq -r .id)
iid7=$(api POST /api/companies/$company/issues "{\"title\":\"Long\",\"status\":\"todo\",\"assigneeAgentId\":\"$busy\"}" | jq -r .id)
most=0
for i in $(seq 30); do
        n=$(runs_of "$busy" | jq '[.[] | select(.status == "running")] | length')
        [ "$n" -gt "$most" ] && most=$n
        sleep 0.1
done
is "never more than one run of the agent at a time" "$most" 1
like "the timer wake waited as a queued run" "$(runs_of "$busy" | jq -r '[.[] | select(.invocationSource == "timer")] | length')" '^[1-9]'
"$CORRALCTL" agent pause "$busy" >/dev/null

# --- reopen and interrupt (reference §8) ---
closer=$(agent closer 0)
done_issue=$(api POST /api/companies/$company/issues "{\"title\":\"Closed\",\"status\":\"backlog\",\"assigneeAgentId\":\"$closer\"}" | jq -r .id)
api PATCH /api/issues/$done_issue '{"status":"done"}' >/dev/null
wait_idle "$closer"
before=$(runs_of "$closer" | jq length)
api POST /api/issues/$done_issue/comments '{"body":"Still broken on arm64.","reopen":true}' >/dev/null
is "a comment with reopen answers 201" "$(status)" 201
# Reopened to todo, and checked out by its woken assignee's run before the reply: the wake,
# its run and its claim are done within the request.
is "it reopened the closed issue, which its assignee's run took at once" "$(api GET /api/issues/$done_issue | jq -r .status)" in_progress
is "the activity says it was reopened, from done, by a comment" \
        "$(api GET "/api/companies/$company/activity" | jq -c --arg i "$done_issue" '[.[] | select(.entityId == $i and .details.reopened == true)] | .[0].details | [.reopenedFrom, .status, .source]')" \
        '["done","todo","comment"]'
wait_idle "$closer"
is "the assignee was woken once, as issue_reopened_via_comment" \
        "$(runs_of "$closer" | jq -r --argjson n "$before" '.[0:(length - $n)] | map(.contextSnapshot.wakeReason) | join(" ")')" issue_reopened_via_comment
api POST /api/issues/$done_issue/comments '{"body":"Noted.","reopen":true}' >/dev/null
is "reopen on an open issue changes nothing" \
        "$(api GET "/api/companies/$company/activity" | jq --arg i "$done_issue" '[.[] | select(.entityId == $i and .details.reopened == true)] | length')" 1
api POST /api/issues/$done_issue/comments '{"body":"x","reopen":"yes"}' >/dev/null
is "reopen must be a boolean" "$(status)" 400
api PATCH /api/issues/$done_issue '{"interrupt":1}' >/dev/null
is "interrupt must be a boolean" "$(status)" 400
api PATCH /api/issues/$done_issue '{"status":"cancelled"}' >/dev/null
wait_idle "$closer"
api PATCH /api/issues/$done_issue '{"comment":"Reopening: the fix was reverted.","reopen":true}' >/dev/null
is "PATCH with a comment and reopen reopens a cancelled issue (and its assignee's run takes it)" "$(api GET /api/issues/$done_issue | jq -r .status)" in_progress
wait_idle "$closer"

long=$(agent long 30)
long_issue=$(api POST /api/companies/$company/issues "{\"title\":\"Interrupt me\",\"status\":\"todo\",\"assigneeAgentId\":\"$long\"}")
long_run=$(jq -r .executionRunId <<<"$long_issue")
long_issue=$(jq -r .id <<<"$long_issue")
for i in $(seq 100); do [ "$(api GET /api/heartbeat-runs/$long_run | jq -r .status)" = running ] && break; sleep 0.05; done
api POST /api/issues/$long_issue/comments '{"body":"Stop, the spec changed.","interrupt":true}' >/dev/null
is "an interrupting comment answers 201" "$(status)" 201
is "the running run was cancelled" "$(wait_run "$long_run" | jq -r '.status + " " + .errorCode')" "cancelled cancelled"
is "the cancel is in the activity log as an interrupt" \
        "$(api GET "/api/companies/$company/activity" | jq -r --arg r "$long_run" '[.[] | select(.action == "heartbeat.cancelled" and .entityId == $r)] | .[0].details.source')" \
        issue_comment_interrupt
for i in $(seq 100); do [ "$(runs_of "$long" | jq length)" -ge 2 ] && break; sleep 0.05; done
next=$(runs_of "$long" | jq '.[0]')
is "the comment's wake names the interrupted run" "$(jq -r .contextSnapshot.wakeReason <<<"$next")" issue_commented
is "its wake request carries interruptedRunId" \
        "$(api GET "/api/agents/$long/wakeup-requests" | jq -r '[.[] | select(.reason == "issue_commented" or .reason == "issue_execution_promoted")] | .[0].payload.interruptedRunId')" "$long_run"
"$CORRALCTL" agent pause "$long" >/dev/null

stop_daemon
is "corrald exits 0" "$DAEMON_STATUS" 0
finish
