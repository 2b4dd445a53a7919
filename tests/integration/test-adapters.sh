#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The coding-CLI adapters end to end: a stand-in CLI prints recorded-style output;
# corrald builds the command line and prompt, reads session, usage, cost and result
# back from the run's log, resumes the session on the next wake of the same task,
# posts the result on the issue, maps max-turns and CLI-reported failures, and warns
# about (but survives) lines that are not JSON.
# As root, the stand-in CLIs run in their sandboxes, as real ones do in a package's corrald.
[ "$(id -u)" -eq 0 ] && SANDBOX=${SANDBOX:-yes}
. "$(dirname "$0")/lib.sh"
require curl jq

FIXTURES="$CORRAL_SRCDIR/tests/fixtures"
FAKE="$CORRAL_SRCDIR/tests/integration/fake-cli.sh"

check "corrald starts" start_daemon --sweep-interval-sec 86400
company=$(api POST /api/companies '{"name":"CLIs","issuePrefix":"CL"}' | jq -r .id)

# agent NAME TYPE FIXTURE [EXIT] [EXTRA-CONFIG]: a CLI agent with its own record directory.
agent() {
        # The record directory is the one place outside its home that the CLI's sandbox writes.
        mkdir -p "$T/$1"
        chmod 777 "$T/$1"
        api POST "/api/companies/$company/agents" "$(jq -n --arg name "$1" --arg type "$2" --arg fake "$FAKE" \
                --arg dir "$T/$1" --arg fixture "$FIXTURES/$3" --arg exit "${4:-0}" --argjson extra "${5:-{\}}" \
                '{name: $name, adapterType: $type,
                  adapterConfig: ({command: $fake, env: {FAKE_DIR: $dir, FAKE_FIXTURE: $fixture, FAKE_EXIT: $exit},
                                   sandbox: {readWritePaths: [$dir]}} + $extra)}')" |
                jq -r .id
}

# code METHOD PATH [BODY]: the status code of a request.
code() {
        api "$@" >/dev/null
        status
}

issue() {
        api POST "/api/companies/$company/issues" "{\"title\":\"$1\",\"status\":\"todo\",\"assigneeAgentId\":\"$2\"}" | jq -r .executionRunId
}

# --- claude_local, success: session, usage, cost, result comment, runtime state ---
claude=$(agent claude claude_local claude-success.jsonl 0 '{"model":"claude-sonnet-4-5","maxTurnsPerRun":30}')
run=$(issue "Fix the store" "$claude")
final=$(wait_run "$run")
iid=$(jq -r .contextSnapshot.issueId <<<"$final")
is "the claude run succeeded" "$(jq -r .status <<<"$final")" succeeded
is "its command line is claude's print mode with the model and turn limit" "$(tr '\n' ' ' <"$T/claude/argv.1")" \
        "--print --output-format stream-json --verbose --model claude-sonnet-4-5 --max-turns 30 "
like "its prompt names the agent and the issue" "$(tr '\n' ' ' <"$T/claude/stdin.1")" "^You are claude .*Issue: CL-1 Fix the store"
like "its prompt carries the wake payload" "$(cat "$T/claude/stdin.1")" '"reason":"issue_assigned"'
is "sessionIdAfter is claude's session" "$(jq -r .sessionIdAfter <<<"$final")" 5b0f7d1e-2c3a-4f1e-9d3b-7a1c2e4f6a80
is "usage: input, cached, output tokens" "$(jq -c '.usageJson | [.inputTokens, .cachedInputTokens, .outputTokens, .provider, .model]' <<<"$final")" \
        '[5444,38180,173,"anthropic","claude-sonnet-4-5-20250929"]'
is "usage: cost" "$(jq -r .usageJson.costUsd <<<"$final")" 0.0431475
is "resultJson has the result text and stop reason" "$(jq -r '.resultJson | .result + " | " + .stopReason' <<<"$final")" \
        "Fixed the off-by-one in store_list and the suite passes. | completed"
comments=$(api GET "/api/issues/$iid/comments")
is "the result was posted on the issue as the agent, by the run" \
        "$(jq -r --arg run "$run" '[.[] | select(.createdByRunId == $run)] | .[0] | .authorAgentId + " " + .body' <<<"$comments")" \
        "$claude Fixed the off-by-one in store_list and the suite passes."
rs=$(api GET "/api/agents/$claude/runtime-state")
is "runtime state: session, counters, cost in cents" \
        "$(jq -c '[.sessionId, .totalInputTokens, .totalCachedInputTokens, .totalOutputTokens, .totalCostCents, .lastRunId == "'"$run"'"]' <<<"$rs")" \
        '["5b0f7d1e-2c3a-4f1e-9d3b-7a1c2e4f6a80",5444,38180,173,4,true]'
is "the task session is kept under the issue" "$(api GET "/api/agents/$claude/task-sessions" | jq -r '.[0] | .taskKey + " " + .sessionDisplayId')" \
        "$iid 5b0f7d1e-2c3a-4f1e-9d3b-7a1c2e4f6a80"

# A comment on the issue wakes the agent again: same task, so the session is resumed, and
# the prompt carries the comment.
api POST "/api/issues/$iid/comments" '{"body":"Please also add a test for the empty list."}' >/dev/null
for i in $(seq 100); do [ -e "$T/claude/stdin.2" ] && break; sleep 0.05; done
run2=$(api GET "/api/companies/$company/heartbeat-runs?agentId=$claude" | jq -r '.[0].id')
final2=$(wait_run "$run2")
is "the comment wake succeeded" "$(jq -r .status <<<"$final2")" succeeded
like "it resumed the task's session" "$(tr '\n' ' ' <"$T/claude/argv.2")" "--resume 5b0f7d1e-2c3a-4f1e-9d3b-7a1c2e4f6a80"
is "sessionIdBefore says so" "$(jq -r .sessionIdBefore <<<"$final2")" 5b0f7d1e-2c3a-4f1e-9d3b-7a1c2e4f6a80
like "the prompt carries the comment that woke it" "$(cat "$T/claude/stdin.2")" "Please also add a test for the empty list."
is "the wake payload counts the comment window" \
        "$(jq -c '.contextSnapshot.paperclipWake.commentWindow' <<<"$final2")" '{"requestedCount":1,"includedCount":1,"missingCount":0}'
is "usage adds up in the runtime state" "$(api GET "/api/agents/$claude/runtime-state" | jq .totalOutputTokens)" 346
is "the wakeups list shows both wakes, newest first" \
        "$(api GET "/api/agents/$claude/wakeup-requests" | jq -r '[.[] | .reason] | join(" ")')" "issue_commented issue_assigned"
is "a bad wakeup status filter is refused" "$(code GET "/api/agents/$claude/wakeup-requests?status=bogus")" 400

is "corralctl agent state shows the totals" "$("$CORRALCTL" --json agent state "$claude" | jq -c '[.totalInputTokens, .totalCostCents]')" "[10888,8]"
like "and as a table" "$("$CORRALCTL" agent state "$claude")" "5b0f7d1e-2c3a-4f1e-9d3b-7a1c2e4f6a80"

# Resetting the session makes the next run start fresh.
is "reset-session answers 200" "$(code POST "/api/agents/$claude/runtime-state/reset-session" '{"taskKey":"nothing"}')" 200
is "a reset of another task keeps the issue's session" "$(api GET "/api/agents/$claude/task-sessions" | jq length)" 1
is "corralctl agent reset-session forgets them all" "$("$CORRALCTL" --json agent reset-session "$claude" | jq -r .agentId)" "$claude"
is "the session is forgotten" "$(api GET "/api/agents/$claude/runtime-state" | jq -r .sessionId)" null
is "so are the task sessions" "$(api GET "/api/agents/$claude/task-sessions" | jq length)" 0
is "a bad taskKey is refused" "$(code POST "/api/agents/$claude/runtime-state/reset-session" '{"taskKey":5}')" 400

# --- claude_local, max turns: failed with max_turns_exhausted ---
turns=$(agent turns claude_local claude-max-turns.jsonl 1)
final=$(wait_run "$(issue "Endless" "$turns")")
is "a max-turns run failed with max_turns_exhausted" "$(jq -r '.status + " " + .errorCode + " " + .resultJson.stopReason' <<<"$final")" \
        "failed max_turns_exhausted max_turns_exhausted"
like "its error says why" "$(jq -r .error <<<"$final")" "maximum number of turns \\(3\\)"
is "no result comment for a failed run" "$(api GET "/api/issues/$(jq -r .contextSnapshot.issueId <<<"$final")/comments" | jq length)" 0

# --- claude_local, malformed lines: skipped with a warning event ---
noisy=$(agent noisy claude_local claude-malformed.jsonl)
run=$(issue "Noisy" "$noisy")
final=$(wait_run "$run")
is "a run with malformed lines still succeeds" "$(jq -r '.status + " " + .resultJson.result' <<<"$final")" "succeeded Done despite the noise."
like "a warning event counts the skipped lines" \
        "$(api GET "/api/heartbeat-runs/$run/events" | jq -r '.[] | select(.eventType == "adapter.output") | .level + " " + .message')" \
        "^warn 4 line\\(s\\) of claude_local output were not JSON"

# --- claude_local, numbers out of range: not recorded, named in an event, and the run ends ---
# A cost of 1e308 once made the run's end impossible to record: it stayed running for good.
hostile=$(agent hostile claude_local claude-hostile-numbers.jsonl)
run=$(issue "Hostile numbers" "$hostile")
final=$(wait_run "$run")
is "a run whose CLI printed a cost of 1e308 succeeds" "$(jq -r '.status + " " + .resultJson.result' <<<"$final")" \
        "succeeded Numbers a model chose."
is "no cost and no count out of range was kept" "$(jq -c '.usageJson | [.costUsd, .inputTokens, .cachedInputTokens, .outputTokens]' <<<"$final")" \
        '[null,0,0,12]'
like "a warning event names the first of them" \
        "$(api GET "/api/heartbeat-runs/$run/events" | jq -r '.[] | select(.eventType == "adapter.output") | .level + " " + .message')" \
        "^warn 5 number\\(s\\) in claude_local output were out of range and not recorded \\(the first: input_tokens=1e\\+300\\)"
check "its agent is idle again" field_is "/api/agents/$hostile" .status idle

# --- codex_local: thread id as session, usage without cost, CLI-reported failure ---
codex=$(agent codex codex_local codex-success.jsonl 0 '{"model":"gpt-5-codex"}')
final=$(wait_run "$(issue "Build" "$codex")")
is "the codex run succeeded" "$(jq -r .status <<<"$final")" succeeded
is "codex's command line" "$(tr '\n' ' ' <"$T/codex/argv.1")" "exec --json --model gpt-5-codex - "
is "the thread id is the session" "$(jq -r .sessionIdAfter <<<"$final")" 0199a213-81c0-7800-8aa1-bbab2a035a53
is "codex usage" "$(jq -c '.usageJson | [.inputTokens, .cachedInputTokens, .outputTokens, .provider]' <<<"$final")" '[24763,24448,122,"openai"]'
failing=$(agent failing codex_local codex-failed.jsonl 0)
final=$(wait_run "$(issue "Rate limited" "$failing")")
is "a failed turn fails the run even with exit code 0" "$(jq -r '.status + " " + .errorCode + " " + (.exitCode|tostring)' <<<"$final")" \
        "failed adapter_failed 0"
is "with codex's message as the error" "$(jq -r .error <<<"$final")" "exceeded retry limit, last status: 429 Too Many Requests"

# --- bad configurations are refused at creation ---
is "claude_local refuses args" "$(code POST "/api/companies/$company/agents" '{"name":"x","adapterType":"claude_local","adapterConfig":{"args":["a"]}}')" 400
like "with a message that says what to use" \
        "$(api POST "/api/companies/$company/agents" '{"name":"x","adapterType":"claude_local","adapterConfig":{"args":["a"]}}' | jq -r .error)" \
        "takes extraArgs"

stop_daemon
finish
