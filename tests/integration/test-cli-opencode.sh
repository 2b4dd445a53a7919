#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# opencode_local against the real OpenCode from npm (tests/cli/versions), in its sandbox, with
# a stand-in of the Anthropic Messages API on 127.0.0.1 as its anthropic provider: a tool call
# and an answer, a resumed session, a session the CLI no longer knows, an API error and a
# cancel mid-request. What corral records is compared with what the CLI printed; the
# stand-in fails the test on any request it does not know. OpenCode fetches its plugin SDK
# from the npm registry at its first start: the registry is a closed port on 127.0.0.1 here,
# so nothing leaves the machine.
[ "$(id -u)" -eq 0 ] && SANDBOX=${SANDBOX:-yes}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cli-lib.sh"
require curl jq python3 sqlite3
[ "$(id -u)" -eq 0 ] || skip_all "needs root: the CLI runs in corral's sandbox, as a package's corrald runs it"
OPENCODE=$(cli_bin opencode)
extra_cleanup() { stop_stubs; }

check "corrald starts" start_daemon --sweep-interval-sec 86400
company=$(api POST /api/companies '{"name":"OpenCode","issuePrefix":"OC"}' | jq -r .id)

# oc_agent NAME STUB-SCRIPT: an agent of the real CLI with a stand-in of its own (its id in
# AGENT). Its provider comes in OPENCODE_CONFIG_CONTENT, as an operator may give it instead
# of seeding ~/.config/opencode/opencode.json in the agent's home.
oc_agent() {
        start_stub "$1" "$2"
        AGENT=$(api POST "/api/companies/$company/agents" "$(jq -n --arg name "$1" --arg cmd "$OPENCODE" --arg port "$STUB_PORT" \
                '{name: $name, adapterType: "opencode_local",
                  adapterConfig: {command: $cmd, model: "anthropic/claude-sonnet-4-5", timeoutSec: 300,
                                  env: {OPENCODE_CONFIG_CONTENT: ({provider: {anthropic: {options:
                                          {baseURL: ("http://127.0.0.1:" + $port + "/v1"), apiKey: "sk-stub"}}},
                                          autoupdate: false, share: "disabled"} | tostring),
                                        OPENCODE_DISABLE_AUTOUPDATE: "1", OPENCODE_DISABLE_MODELS_FETCH: "1",
                                        npm_config_registry: "http://127.0.0.1:9/"}}}')" | jq -r .id)
}

# --- a tool call, then an answer ---
oc_agent main '[
  {"tool": "bash", "input": {"command": "echo tool-ran > tool-out.txt && echo the-tool-said-hi", "description": "write a file"},
   "usage": {"input_tokens": 120, "cache_read_input_tokens": 40, "output_tokens": 15}},
  {"expect": "the-tool-said-hi", "text": "all done", "usage": {"input_tokens": 200, "output_tokens": 25}},
  {"expect": "all done", "text": "second answer", "usage": {"input_tokens": 300, "output_tokens": 35}},
  {"text": "fresh start"}
]'
a=$AGENT
run1=$(wake_task "$a" t1)
final=$(wait_run "$run1" 180)
is "the run succeeded" "$(jq -r .status <<<"$final")" succeeded
steps=$("$CORRALCTL" logs "$run1" 2>/dev/null | jq -c 'select(.type == "step_finish") | .part')
is "its result is the CLI's last text" "$(jq -r .resultJson.result <<<"$final")" \
        "$(cli_line "$run1" text | jq -r .part.text)"
is "... the answer after the tool call" "$(jq -r .resultJson.result <<<"$final")" "all done"
is "input tokens are the CLI's steps' (cache writes included)" "$(jq -r .usageJson.inputTokens <<<"$final")" \
        "$(jq -s 'map(.tokens.input + .tokens.cache.write) | add' <<<"$steps")"
is "cached input tokens are the CLI's" "$(jq -r .usageJson.cachedInputTokens <<<"$final")" \
        "$(jq -s 'map(.tokens.cache.read) | add' <<<"$steps")"
is "output tokens are the CLI's" "$(jq -r .usageJson.outputTokens <<<"$final")" "$(jq -s 'map(.tokens.output) | add' <<<"$steps")"
is "... as the stand-in counted them" "$(jq -r '[.usageJson.inputTokens, .usageJson.cachedInputTokens, .usageJson.outputTokens] | join(" ")' <<<"$final")" \
        "320 40 40"
like "the cost is the CLI's" "$(jq -r .usageJson.costUsd <<<"$final")" \
        "^$(jq -s 'map(.cost) | add | . * 1e9 | round / 1e9 | tostring | .[0:7]' -r <<<"$steps")"
is "... priced by the CLI" "$(jq -r .usageJson.priceSource <<<"$final")" cli
is "the session is the CLI's" "$(jq -r .sessionIdAfter <<<"$final")" "$(cli_line "$run1" text | jq -r .sessionID)"
is "the model and provider are the configured ones" "$(jq -r '.usageJson.model + " " + .usageJson.provider' <<<"$final")" \
        "claude-sonnet-4-5 anthropic"
is "... which is the model the stand-in was asked for" "$(jq -r 'select(.step) | .model' "$T/stub-main.log" | sort -u)" \
        claude-sonnet-4-5
is "two steps: the tool call's and the answer's" "$(jq -r .usageJson.numTurns <<<"$final")" 2
home=$STATE/homes/$a
is "the tool ran in the agent's workspace" "$(cat "$home/workspace/tool-out.txt" 2>&1)" tool-ran
check "the CLI keeps its sessions in the agent's home" test -d "$home/.local/share/opencode"
check "... not in the workspace" test ! -e "$home/workspace/.opencode"

# --- the same task again: the session is resumed ---
run2=$(wake_task "$a" t1)
final2=$(wait_run "$run2" 180)
is "the resumed run succeeded" "$(jq -r '.status + " " + .resultJson.result' <<<"$final2")" "succeeded second answer"
is "it resumed the first run's session" "$(jq -r .sessionIdBefore <<<"$final2")" "$(jq -r .sessionIdAfter <<<"$final")"
is "... which it kept" "$(jq -r .sessionIdAfter <<<"$final2")" "$(jq -r .sessionIdAfter <<<"$final")"
is "its usage is its own" "$(jq -r .usageJson.outputTokens <<<"$final2")" 35

# --- a session the CLI no longer knows: retried at once in a fresh one ---
check_stale_session "$a" ses_00000000000000000000bogus "Session not found"
is "the stand-in saw nothing it does not know" "$(stub_unknown main)" ""

# --- an API error ---
oc_agent failing '[{"error": 400, "message": "the stub refuses this request"}]'
final=$(wait_run "$(wake_task "$AGENT" t1)" 180)
is "an API error fails the run" "$(jq -r .status <<<"$final")" failed
is "... with the API's error" "$(jq -r .error <<<"$final")" "opencode: the stub refuses this request"

# --- cancel while the model is answering: the whole tree goes ---
oc_agent slow '[{"hang": true}]'
check_cancel slow "$AGENT"

finish
