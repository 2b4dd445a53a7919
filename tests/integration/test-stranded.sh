#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Stranded-issue reconciliation through the daemon (reference §5, the seed's
# stranded scenarios, and design §3 difference 7), driven by POST /api/sweep.
. "$(dirname "$0")/lib.sh"
require curl jq sqlite3

# No sweep runs by itself during the test: each is asked for.
check "corrald starts" start_daemon --sweep-interval-sec 86400
company=$(api POST /api/companies '{"name":"Stranded","issuePrefix":"ST"}' | jq -r .id)

agent() {
        api POST "/api/companies/$company/agents" "{\"name\":\"$1\",\"adapterConfig\":{\"command\":\"/bin/sh\",\"args\":[\"-c\",\"$2\"]}}" | jq -r .id
}
wait_idle() {
        local i
        for i in $(seq 200); do
                [ "$(api GET "/api/companies/$company/heartbeat-runs?agentId=$1" | jq '[.[] | select(.status == "queued" or .status == "running")] | length')" = 0 ] && return 0
                sleep 0.05
        done
        return 1
}
sweep() {
        api POST /api/sweep
}
runs_on() {
        api GET "/api/companies/$company/heartbeat-runs" | jq --arg i "$1" '[.[] | select(.contextSnapshot.issueId == $i)]'
}

fails=$(agent fails 'echo run failed before issue advanced >&2; exit 1')

# --- todo: one dispatch retry, then escalation ---
todo=$(api POST /api/companies/$company/issues "{\"title\":\"Todo\",\"status\":\"todo\",\"assigneeAgentId\":\"$fails\"}" | jq -r .id)
wait_idle "$fails"
api PATCH /api/issues/$todo '{"status":"todo"}' >/dev/null
first=$(runs_on "$todo" | jq -r '.[0].id')
s=$(sweep)
is "stranded todo: dispatch requeued" "$(jq -c '[.dispatchRequeued, .continuationRequeued, .escalated]' <<<"$s")" "[1,0,0]"
is "... naming the issue" "$(jq -r '.issueIds | join(",")' <<<"$s")" "$todo"
retry=$(runs_on "$todo" | jq -r --arg f "$first" '[.[] | select(.id != $f)][0]')
is "the retry says why" "$(jq -r '.contextSnapshot.retryReason + " " + .contextSnapshot.wakeReason + " " + .retryOfRunId' <<<"$retry")" "assignment_recovery issue_assignment_recovery $first"
wait_idle "$fails"
api PATCH /api/issues/$todo '{"status":"todo"}' >/dev/null
s=$(sweep)
is "after a failed dispatch retry: escalated" "$(jq -c '[.dispatchRequeued, .escalated]' <<<"$s")" "[0,1]"
is "the issue is blocked" "$(api GET /api/issues/$todo | jq -r .status)" blocked
comments=$(api GET /api/issues/$todo/comments)
is "with exactly one comment" "$(jq length <<<"$comments")" 1
like "saying it retried dispatch" "$(jq -r '.[0].body' <<<"$comments")" "retried dispatch"
like "and how the retry failed" "$(jq -r '.[0].body' <<<"$comments")" 'Latest retry failure: `adapter_failed` - Process exited with code 1: run failed before issue advanced\.'
is "a system comment has no author" "$(jq -r '.[0] | (.authorAgentId|tostring) + " " + (.authorUserId|tostring)' <<<"$comments")" "null null"
like "activity records the escalation" "$(api GET /api/companies/$company/activity | jq -r '.[] | select(.action == "issue.updated" and .details.source == "heartbeat.reconcile_stranded_assigned_issue") | .details.previousStatus')" "todo"

# --- in_progress: one continuation, then escalation ---
prog=$(api POST /api/companies/$company/issues "{\"title\":\"In progress\",\"status\":\"todo\",\"assigneeAgentId\":\"$fails\"}" | jq -r .id)
wait_idle "$fails"
is "the failed run left it in_progress" "$(api GET /api/issues/$prog | jq -r .status)" in_progress
s=$(sweep)
is "stranded in_progress: continuation requeued" "$(jq -c '[.dispatchRequeued, .continuationRequeued, .escalated]' <<<"$s")" "[0,1,0]"
is "the continuation says why" "$(runs_on "$prog" | jq -r '.[0].contextSnapshot.retryReason')" issue_continuation_needed
wait_idle "$fails"
s=$(sweep)
is "after a failed continuation: escalated" "$(jq -c '[.continuationRequeued, .escalated]' <<<"$s")" "[0,1]"
like "saying it retried continuation" "$(api GET /api/issues/$prog/comments | jq -r '.[0].body')" "retried continuation"

# --- continuations that succeed but change nothing are bounded (design §3 difference 7) ---
idle=$(agent idle 'true')
stuck=$(api POST /api/companies/$company/issues "{\"title\":\"Stuck\",\"status\":\"todo\",\"assigneeAgentId\":\"$idle\"}" | jq -r .id)
wait_idle "$idle"
for k in 1 2; do
        s=$(sweep)
        is "continuation $k without progress is requeued" "$(jq -c '[.continuationRequeued, .escalated]' <<<"$s")" "[1,0]"
        wait_idle "$idle"
done
s=$(sweep)
is "the next sweep escalates instead" "$(jq -c '[.continuationRequeued, .escalated]' <<<"$s")" "[0,1]"
like "saying it was retried without progress" "$(api GET /api/issues/$stuck/comments | jq -r '.[0].body')" "without progress"

# --- untouched: user-assigned work, work that never ran, work with a live run ---
user=$(api POST /api/companies/$company/issues '{"title":"Mine","status":"todo","assigneeUserId":"alice"}' | jq -r .id)
"$CORRALCTL" agent pause "$idle" >/dev/null
never=$(api POST /api/companies/$company/issues "{\"title\":\"Never ran\",\"status\":\"in_progress\",\"assigneeAgentId\":\"$idle\"}" | jq -r .id)
"$CORRALCTL" agent resume "$idle" >/dev/null
slow=$(agent slow 'sleep 3')
busy=$(api POST /api/companies/$company/issues "{\"title\":\"Busy\",\"status\":\"todo\",\"assigneeAgentId\":\"$slow\"}" | jq -r .id)
before=$(api GET "/api/companies/$company/heartbeat-runs" | jq length)
s=$(sweep)
is "nothing requeued or escalated" "$(jq -c '[.dispatchRequeued, .continuationRequeued, .escalated]' <<<"$s")" "[0,0,0]"
like "the in_progress issue that never ran and the busy one are skipped" "$(jq -r .skipped <<<"$s")" '^[2-9]'
is "no run was created" "$(api GET "/api/companies/$company/heartbeat-runs" | jq length)" "$before"
is "user-assigned work is untouched" "$(api GET /api/issues/$user | jq -r .status)" todo
is "work that never ran is untouched" "$(api GET /api/issues/$never | jq -r .status)" in_progress

stop_daemon
is "corrald exits 0" "$DAEMON_STATUS" 0
finish
