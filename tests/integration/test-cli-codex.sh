#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# codex_local against the real Codex CLI from npm (tests/cli/versions), in its sandbox, with
# a stand-in of the OpenAI Responses API on 127.0.0.1 (a provider given with -c, as an
# operator's config.toml in the agent's home would): a reason given only on stderr, a tool
# call and an answer, a resumed thread (whose usage the CLI reports as running totals), an
# API error, a cancel mid-request and a thread the CLI no longer knows. What corral records
# is compared with what the CLI printed; the stand-in fails the test on any request it does
# not know.
[ "$(id -u)" -eq 0 ] && SANDBOX=${SANDBOX:-yes}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cli-lib.sh"
require curl jq python3 sqlite3
[ "$(id -u)" -eq 0 ] || skip_all "needs root: the CLI runs in corral's sandbox, as a package's corrald runs it"
CODEX=$(cli_bin codex)
extra_cleanup() { stop_stubs; }

check "corrald starts" start_daemon --sweep-interval-sec 86400
company=$(api POST /api/companies '{"name":"Codex","issuePrefix":"CX"}' | jq -r .id)

# codex_agent NAME STUB-SCRIPT [EXTRA-ARGS-JSON [BYPASS]]: an agent of the real CLI with a
# stand-in of its own; its id in AGENT. corral's sandbox contains it: the CLI's own is
# bypassed (unless BYPASS is false).
codex_agent() {
        local port
        start_stub "$1" "$2"
        port=$STUB_PORT
        AGENT=$(api POST "/api/companies/$company/agents" "$(jq -n --arg name "$1" --arg cmd "$CODEX" --arg port "$port" \
                --argjson extra "${3:-[\"--skip-git-repo-check\"]}" --argjson bypass "${4:-true}" \
                '{name: $name, adapterType: "codex_local",
                  adapterConfig: {command: $cmd, model: "gpt-5-stub", dangerouslyBypassApprovalsAndSandbox: $bypass,
                                  timeoutSec: 300, env: {STUB_API_KEY: "sk-stub"},
                                  extraArgs: (["-c", "model_provider=stub",
                                               "-c", ("model_providers.stub={name=\"stub\",base_url=\"http://127.0.0.1:" + $port
                                                      + "/v1\",wire_api=\"responses\",env_key=\"STUB_API_KEY\"}"),
                                               "-c", "check_for_update_on_startup=false"] + $extra)}}')" |
                jq -r .id)
}

# --- a reason only on stderr: not a git repository, and no --skip-git-repo-check ---
codex_agent untrusted '[]' '[]' false
final=$(wait_run "$(wake_task "$AGENT" t1)" 180)
is "a CLI that refuses to start fails the run" "$(jq -r .status <<<"$final")" failed
like "... with its reason, which it gives only on stderr" "$(jq -r .error <<<"$final")" \
        "^Process exited with code 1: .*trusted directory"

# --- a tool call, then an answer ---
codex_agent main '[
  {"tool": "exec_command", "input": {"cmd": "echo tool-ran > tool-out.txt && echo the-tool-said-hi"},
   "usage": {"input_tokens": 120, "cached_tokens": 40, "output_tokens": 15, "reasoning_tokens": 5}},
  {"expect": "the-tool-said-hi", "text": "all done", "usage": {"input_tokens": 200, "output_tokens": 25}},
  {"expect": "all done", "text": "second answer", "usage": {"input_tokens": 300, "cached_tokens": 100, "output_tokens": 35}},
  {"text": "fresh start"}
]'
a=$AGENT
run1=$(wake_task "$a" t1)
final=$(wait_run "$run1" 180)
is "the run succeeded" "$(jq -r .status <<<"$final")" succeeded
cli=$(cli_line "$run1" turn.completed)
is "its result is the CLI's last message" "$(jq -r .resultJson.result <<<"$final")" \
        "$(cli_line "$run1" item.completed | jq -r .item.text)"
is "... the answer after the tool call" "$(jq -r .resultJson.result <<<"$final")" "all done"
is "input tokens are the CLI's" "$(jq -r .usageJson.inputTokens <<<"$final")" "$(jq -r .usage.input_tokens <<<"$cli")"
is "cached input tokens are the CLI's" "$(jq -r .usageJson.cachedInputTokens <<<"$final")" \
        "$(jq -r .usage.cached_input_tokens <<<"$cli")"
is "output tokens are the CLI's" "$(jq -r .usageJson.outputTokens <<<"$final")" "$(jq -r .usage.output_tokens <<<"$cli")"
is "reasoning tokens are recorded" "$(jq -r .usageJson.reasoningOutputTokens <<<"$final")" \
        "$(jq -r .usage.reasoning_output_tokens <<<"$cli")"
is "the session is the CLI's thread" "$(jq -r .sessionIdAfter <<<"$final")" \
        "$(cli_line "$run1" thread.started | jq -r .thread_id)"
is "the model is the one it was told to run" "$(jq -r .usageJson.model <<<"$final")" gpt-5-stub
home=$STATE/homes/$a
is "the tool ran in the agent's workspace" "$(cat "$home/workspace/tool-out.txt" 2>&1)" tool-ran
check "the CLI keeps its home in the agent's home" test -d "$home/.codex"
check "... not in the workspace" test ! -e "$home/workspace/.codex"

# --- the same task again: the thread is resumed; its usage is the run's own ---
run2=$(wake_task "$a" t1)
final2=$(wait_run "$run2" 180)
is "the resumed run succeeded" "$(jq -r '.status + " " + .resultJson.result' <<<"$final2")" "succeeded second answer"
is "it resumed the first run's thread" "$(jq -r .sessionIdBefore <<<"$final2")" "$(jq -r .sessionIdAfter <<<"$final")"
cli2=$(cli_line "$run2" turn.completed)
is "the CLI reports the thread's running total" "$(jq -r .usage.input_tokens <<<"$cli2")" \
        $(($(jq -r .usage.input_tokens <<<"$cli") + 300))
is "... and the run counts only its own input" "$(jq -r .usageJson.inputTokens <<<"$final2")" 300
is "... its own cached input" "$(jq -r .usageJson.cachedInputTokens <<<"$final2")" 100
is "... its own output" "$(jq -r .usageJson.outputTokens <<<"$final2")" 35
rs=$(api GET "/api/agents/$a/runtime-state")
is "the agent's totals are the thread's, counted once" "$(jq -r '[.totalInputTokens, .totalOutputTokens] | join(" ")' \
        <<<"$rs")" "$(jq -r '[.usage.input_tokens, .usage.output_tokens] | join(" ")' <<<"$cli2")"

# --- a thread the CLI no longer knows: the task starts afresh instead of failing forever ---
check_stale_session "$a" 01a23481-0000-7000-8000-000000000000 "no rollout found for thread id"
is "the stand-in saw nothing it does not know" "$(stub_unknown main)" ""

# --- an API error ---
codex_agent failing '[{"error": 400, "message": "the stub refuses this request"}]'
final=$(wait_run "$(wake_task "$AGENT" t1)" 180)
is "an API error fails the run" "$(jq -r .status <<<"$final")" failed
like "... with the API's error" "$(jq -r .error <<<"$final")" "the stub refuses this request"

# --- cancel while the model is answering: the whole tree goes ---
codex_agent slow '[{"hang": true}]'
check_cancel slow "$AGENT"

finish
