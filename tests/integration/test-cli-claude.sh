#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# claude_local against the real Claude Code CLI from npm (tests/cli/versions), in its
# sandbox, with a stand-in of the Anthropic Messages API on 127.0.0.1: a tool call and an
# answer, a resumed session, an API error, a max-turns stop, a cancel mid-request, a session
# the CLI no longer knows, and root. What corral records is compared with what the CLI
# printed; the stand-in fails the test on any request it does not know.
[ "$(id -u)" -eq 0 ] && SANDBOX=${SANDBOX:-yes}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cli-lib.sh"
require curl jq python3 sqlite3
[ "$(id -u)" -eq 0 ] || skip_all "needs root: the CLI runs in corral's sandbox, as a package's corrald runs it"
CLAUDE=$(cli_bin claude)
extra_cleanup() { stop_stubs; }

# The price of the stand-in's model, for what a run that ends before its result costs.
check "corrald starts" start_daemon --sweep-interval-sec 86400 --price "claude-sonnet-4-5 3 0.3 15"
company=$(api POST /api/companies '{"name":"Claude","issuePrefix":"CC"}' | jq -r .id)

# claude_agent NAME STUB-SCRIPT [EXTRA-CONFIG]: an agent of the real CLI with a stand-in of its
# own; its id in AGENT.
claude_agent() {
        local port
        start_stub "$1" "$2"
        port=$STUB_PORT
        AGENT=$(api POST "/api/companies/$company/agents" "$(jq -n --arg name "$1" --arg cmd "$CLAUDE" --arg port "$port" \
                --argjson extra "${3:-{\}}" \
                '{name: $name, adapterType: "claude_local",
                  adapterConfig: ({command: $cmd, model: "claude-sonnet-4-5", dangerouslySkipPermissions: true,
                                   timeoutSec: 300,
                                   env: {ANTHROPIC_BASE_URL: ("http://127.0.0.1:" + $port), ANTHROPIC_API_KEY: "sk-stub",
                                         CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1", DISABLE_AUTOUPDATER: "1",
                                         DISABLE_TELEMETRY: "1", DISABLE_ERROR_REPORTING: "1"}} + $extra)}')" |
                jq -r .id)
}

# --- a tool call, then an answer ---
claude_agent main '[
  {"tool": "Bash", "input": {"command": "echo tool-ran > tool-out.txt && echo the-tool-said-hi", "description": "write a file"},
   "usage": {"input_tokens": 120, "output_tokens": 15, "cache_creation_input_tokens": 30, "cache_read_input_tokens": 40}},
  {"expect": "the-tool-said-hi", "text": "all done", "usage": {"input_tokens": 200, "output_tokens": 25}},
  {"expect": "all done", "text": "second answer", "usage": {"input_tokens": 300, "output_tokens": 35}},
  {"text": "fresh start"}
]'
a=$AGENT
run1=$(wake_task "$a" t1)
final=$(wait_run "$run1" 180)
is "the run succeeded" "$(jq -r .status <<<"$final")" succeeded
cli=$(cli_line "$run1")
is "its result is the CLI's" "$(jq -r .resultJson.result <<<"$final")" "$(jq -r .result <<<"$cli")"
is "... the answer after the tool call" "$(jq -r .resultJson.result <<<"$final")" "all done"
is "input tokens are the CLI's, cache writes included" "$(jq -r .usageJson.inputTokens <<<"$final")" \
        "$(jq -r '.usage.input_tokens + .usage.cache_creation_input_tokens' <<<"$cli")"
is "cached input tokens are the CLI's" "$(jq -r .usageJson.cachedInputTokens <<<"$final")" \
        "$(jq -r .usage.cache_read_input_tokens <<<"$cli")"
is "output tokens are the CLI's" "$(jq -r .usageJson.outputTokens <<<"$final")" "$(jq -r .usage.output_tokens <<<"$cli")"
is "the cost is the CLI's" "$(jq -r .usageJson.costUsd <<<"$final")" "$(jq -r .total_cost_usd <<<"$cli")"
is "the session is the CLI's" "$(jq -r .sessionIdAfter <<<"$final")" "$(jq -r .session_id <<<"$cli")"
is "the model is the API's" "$(jq -r .usageJson.model <<<"$final")" \
        "$(jq -r .message.model <<<"$(cli_line "$run1" assistant)")"
home=$STATE/homes/$a
is "the tool ran in the agent's workspace" "$(cat "$home/workspace/tool-out.txt" 2>&1)" tool-ran
check "the CLI keeps its configuration in the agent's home" test -d "$home/.claude"
check "... not in the workspace" test ! -e "$home/workspace/.claude" -a ! -e "$home/workspace/.claude.json"
first=$(jq -c 'select(.step)' "$T/stub-main.log" | head -n 1)
like "the prompt reached the model" "$first" "woken by corral for run $run1"
if jq -e '.body | fromjson | .messages[0].content | map(select(.type == "text") | .text) | any(startswith("-\n"))' \
        <<<"$first" >/dev/null; then
        not_ok "the prompt is not preceded by a stray \"-\""
else
        ok "the prompt is not preceded by a stray \"-\""
fi

# --- the same task again: the session is resumed, its earlier turns reach the model ---
run2=$(wake_task "$a" t1)
final2=$(wait_run "$run2" 180)
is "the resumed run succeeded" "$(jq -r '.status + " " + .resultJson.result' <<<"$final2")" "succeeded second answer"
is "it resumed the first run's session" "$(jq -r .sessionIdBefore <<<"$final2")" "$(jq -r .sessionIdAfter <<<"$final")"
is "... whose turns reached the model" "$(stub_unknown main)" ""
is "one agent, one model" "$(jq -r .usageJson.model <<<"$final2")" "$(jq -r .usageJson.model <<<"$final")"
is "the resumed run's usage is its own" "$(jq -r .usageJson.inputTokens <<<"$final2")" \
        "$(jq -r '.usage.input_tokens + .usage.cache_creation_input_tokens' <<<"$(cli_line "$run2")")"

# --- a session the CLI no longer knows: the task starts afresh instead of failing forever ---
check_stale_session "$a" 00000000-1111-4222-8333-444444444444 "No conversation found with session ID"
is "the stand-in saw nothing it does not know" "$(stub_unknown main)" ""
rs=$(api GET "/api/agents/$a/runtime-state")
is "the agent's input tokens add up over its runs" "$(jq -r .totalInputTokens <<<"$rs")" \
        "$(api GET "/api/companies/$company/heartbeat-runs?agentId=$a" | jq '[.[] | .usageJson.inputTokens // 0] | add')"

# --- an API error: the CLI says "success" with is_error; corral says what failed ---
claude_agent failing '[{"error": 400, "message": "the stub refuses this request"}]'
b=$AGENT
final=$(wait_run "$(wake_task "$b" t1)" 180)
is "an API error fails the run" "$(jq -r '.status + " " + .errorCode' <<<"$final")" "failed adapter_failed"
is "... with the API's error" "$(jq -r .error <<<"$final")" "claude: API Error: 400 the stub refuses this request"

# --- max turns ---
claude_agent turns '[{"tool": "Bash", "input": {"command": "true", "description": "nothing"}}, {"text": "never"}]' \
        '{"maxTurnsPerRun": 1}'
c=$AGENT
final=$(wait_run "$(wake_task "$c" t1)" 180)
is "a max-turns stop is max_turns_exhausted" "$(jq -r '.status + " " + .errorCode' <<<"$final")" \
        "failed max_turns_exhausted"
like "... naming the limit that was set" "$(jq -r .error <<<"$final")" "maximum number of turns \\(1\\)"

# --- cancel while the model is answering: the whole tree goes ---
claude_agent slow '[{"hang": true}]'
check_cancel slow "$AGENT"

# --- budgets: the CLI's costs add up; a run is stopped mid-stream by its cap, another by what
# is left of its agent's budget, and the agent is paused ---
runs=$(api GET "/api/companies/$company/heartbeat-runs?agentId=$a")
is "a finished run costs what the CLI reported" "$(jq -r .usageJson.costCents <<<"$final2")" \
        "$(jq -r '.usageJson.costUsd * 100 | round' <<<"$final2")"
is "the agent's spend is its runs' costs, exactly" "$(api GET "/api/agents/$a" | jq -r .spentMonthlyCents)" \
        "$(jq '[.[] | .usageJson.costCents // 0] | add' <<<"$runs")"
is "... and so are the month's costs" "$(api GET "/api/agents/$a/costs" | jq -r .totals.costCents)" \
        "$(api GET "/api/agents/$a" | jq -r .spentMonthlyCents)"
# Twelve tool calls, each a turn of 100,000 input tokens: 30 cents and more a turn at the price.
tools=$(jq -nc '[range(12) | {tool: "Bash", input: {command: "sleep 0.3; echo turn", description: "a turn"},
                               usage: {input_tokens: 100000, output_tokens: 1000}}] + [{text: "never reached"}]')
claude_agent capped "$tools" '{"maxCostCentsPerRun": 100}'
capped=$AGENT
final=$(wait_run "$(wake_task "$capped" t1)" 180)
is "a run past its maxCostCentsPerRun fails" "$(jq -r '.status + " " + .errorCode' <<<"$final")" "failed budget_exceeded"
is "... stopped by its cap" "$(jq -r .resultJson.budget.limit <<<"$final")" maxCostCentsPerRun
check "... once it had spent 100 cents" test "$(jq -r .resultJson.budget.spentCents <<<"$final")" -ge 100
check "... long before its 12 turns" test "$(stub_requests capped)" -lt 8
is "... and nothing of it is left" "$(procs_of_uid "$(api GET "/api/agents/$capped" | jq -r .sandboxUid)")" 0
is "what it spent counts" "$(api GET "/api/agents/$capped" | jq -r .spentMonthlyCents)" "$(jq -r .usageJson.costCents <<<"$final")"

claude_agent thrifty "$tools"
thrifty=$AGENT
api PATCH "/api/agents/$thrifty" '{"budgetMonthlyCents":50}' >/dev/null
final=$(wait_run "$(wake_task "$thrifty" t1)" 180)
is "a run that reaches its agent's budget fails" "$(jq -r '.errorCode + " " + .resultJson.budget.limit' <<<"$final")" \
        "budget_exceeded the agent's monthly budget"
is "... and the agent is paused by it" "$(api GET "/api/agents/$thrifty" | jq -r '.status + " " + .pauseReason')" "paused budget"
api POST "/api/agents/$thrifty/wakeup" '{}' >/dev/null
is "... its wakes get 409" "$(status)" 409

# --- an issue's run in a git workspace: the CLI works in the issue's checkout ---
repo=$T/repo
git init -q -b main "$repo"
echo start >"$repo/README"
git -C "$repo" add README
git -C "$repo" -c user.name=test -c user.email=test@example.com commit -qm start
claude_agent worker '[
  {"tool": "Bash", "input": {"command": "echo from-claude > claude.txt && git status --porcelain && git branch --show-current",
                             "description": "work"}},
  {"expect": "corral/CC-1", "text": "worked in the workspace"}
]' "$(jq -n --arg repo "$repo" '{workspace: {repo: $repo, baseRef: "main"}}')"
worker=$AGENT
issue=$(api POST "/api/companies/$company/issues" "{\"title\":\"in a workspace\",\"status\":\"todo\",\"assigneeAgentId\":\"$worker\"}")
final=$(wait_run "$(jq -r .executionRunId <<<"$issue")" 180)
is "a run in a workspace succeeded" "$(jq -r '.status + " " + .resultJson.result' <<<"$final")" "succeeded worked in the workspace"
is "... the CLI's tool wrote in the issue's workspace" \
        "$(cat "$STATE/workspaces/$(jq -r .id <<<"$issue")/claude.txt" 2>&1)" from-claude
is "... on the issue's branch (the model saw it)" "$(stub_unknown worker)" ""

# --- root: the CLI refuses to skip permissions, and the run says why ---
claude_agent root '[{"text": "never"}]' '{"sandbox": {"user": "root"}}'
e=$AGENT
final=$(wait_run "$(wake_task "$e" t1)" 180)
is "as root, the run fails" "$(jq -r .status <<<"$final")" failed
like "... with the CLI's reason, not only its exit code" "$(jq -r .error <<<"$final")" \
        "cannot be used with root/sudo privileges"

finish
