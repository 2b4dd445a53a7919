#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# pi_local against the real pi coding agent from npm (tests/cli/versions), in its sandbox,
# with a stand-in of the OpenAI Responses API on 127.0.0.1 as a provider of the agent's
# ~/.pi/agent/models.json, seeded by the operator between runs: a first run before it is
# there, a tool call and an answer, a resumed session, an API error, a cancel mid-request and
# a session the CLI no longer knows. What corral records is compared with what the CLI
# printed; the stand-in fails the test on any request it does not know.
[ "$(id -u)" -eq 0 ] && SANDBOX=${SANDBOX:-yes}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cli-lib.sh"
require curl jq python3 sqlite3
[ "$(id -u)" -eq 0 ] || skip_all "needs root: the CLI runs in corral's sandbox, as a package's corrald runs it"
PI=$(cli_bin pi)
extra_cleanup() { stop_stubs; }

check "corrald starts" start_daemon --sweep-interval-sec 86400
company=$(api POST /api/companies '{"name":"Pi","issuePrefix":"PI"}' | jq -r .id)

# pi_agent NAME STUB-SCRIPT: an agent of the real CLI with a stand-in of its own (its id in
# AGENT), whose first run, before its home has the stand-in as a provider, fails saying so
# (in FIRST); then its home is seeded.
pi_agent() {
        local port home
        start_stub "$1" "$2"
        port=$STUB_PORT
        AGENT=$(api POST "/api/companies/$company/agents" "$(jq -n --arg name "$1" --arg cmd "$PI" \
                '{name: $name, adapterType: "pi_local",
                  adapterConfig: {command: $cmd, model: "stub/stub-model", timeoutSec: 300,
                                  env: {STUB_API_KEY: "sk-stub", PI_OFFLINE: "1", PI_SKIP_VERSION_CHECK: "1"}}}')" |
                jq -r .id)
        FIRST=$(wait_run "$(wake_task "$AGENT" first)" 120)
        home=$STATE/homes/$AGENT
        mkdir -p "$home/.pi/agent"
        cat >"$home/.pi/agent/models.json" <<EOF
{"providers": {"stub": {"baseUrl": "http://127.0.0.1:$port/v1", "api": "openai-responses", "apiKey": "STUB_API_KEY",
  "models": [{"id": "stub-model", "name": "Stub", "cost": {"input": 3, "output": 15, "cacheRead": 0.3, "cacheWrite": 3.75}}]}}}
EOF
        chown -R "$(stat -c %u:%g "$home")" "$home/.pi"
}

# --- before the home is seeded; then a tool call, then an answer ---
pi_agent main '[
  {"tool": "bash", "input": {"command": "echo tool-ran > tool-out.txt && echo the-tool-said-hi"},
   "usage": {"input_tokens": 120, "cached_tokens": 40, "output_tokens": 15}},
  {"expect": "the-tool-said-hi", "text": "all done", "usage": {"input_tokens": 200, "output_tokens": 25}},
  {"expect": "all done", "text": "second answer", "usage": {"input_tokens": 300, "output_tokens": 35}},
  {"text": "fresh start"}
]'
a=$AGENT
is "a run before its provider is there fails" "$(jq -r .status <<<"$FIRST")" failed
like "... with the CLI's reason, which it gives only on stderr" "$(jq -r .error <<<"$FIRST")" \
        '^Process exited with code 1: Error: Model "stub/stub-model" not found'
run1=$(wake_task "$a" t1)
final=$(wait_run "$run1" 180)
is "the run succeeded" "$(jq -r .status <<<"$final")" succeeded
ends=$("$CORRALCTL" logs "$run1" 2>/dev/null | jq -c 'select(.type == "message_end" and .message.role == "assistant") | .message')
is "its result is the CLI's last message" "$(jq -r .resultJson.result <<<"$final")" \
        "$(tail -n 1 <<<"$ends" | jq -r '.content | map(select(.type == "text") | .text) | join("\n")')"
is "... the answer after the tool call" "$(jq -r .resultJson.result <<<"$final")" "all done"
is "input tokens are the CLI's messages' (cache writes included)" "$(jq -r .usageJson.inputTokens <<<"$final")" \
        "$(jq -s 'map(.usage.input + .usage.cacheWrite) | add' <<<"$ends")"
is "cached input tokens are the CLI's" "$(jq -r .usageJson.cachedInputTokens <<<"$final")" \
        "$(jq -s 'map(.usage.cacheRead) | add' <<<"$ends")"
is "output tokens are the CLI's" "$(jq -r .usageJson.outputTokens <<<"$final")" "$(jq -s 'map(.usage.output) | add' <<<"$ends")"
like "the cost is the CLI's" "$(jq -r .usageJson.costUsd <<<"$final")" \
        "^$(jq -s 'map(.usage.cost.total) | add | . * 1e9 | round / 1e9 | tostring | .[0:7]' -r <<<"$ends")"
is "the session is the CLI's" "$(jq -r .sessionIdAfter <<<"$final")" "$(cli_line "$run1" session | jq -r .id)"
is "the model and provider are the CLI's" "$(jq -r '.usageJson.model + " " + .usageJson.provider' <<<"$final")" \
        "$(tail -n 1 <<<"$ends" | jq -r '.model + " " + .provider')"
home=$STATE/homes/$a
is "the tool ran in the agent's workspace" "$(cat "$home/workspace/tool-out.txt" 2>&1)" tool-ran
check "the CLI keeps its sessions in the agent's home" test -d "$home/.pi/agent/sessions"
check "... not in the workspace" test ! -e "$home/workspace/.pi"

# --- the same task again: the session is resumed ---
run2=$(wake_task "$a" t1)
final2=$(wait_run "$run2" 180)
is "the resumed run succeeded" "$(jq -r '.status + " " + .resultJson.result' <<<"$final2")" "succeeded second answer"
is "it resumed the first run's session" "$(jq -r .sessionIdBefore <<<"$final2")" "$(jq -r .sessionIdAfter <<<"$final")"
is "its usage is its own" "$(jq -r .usageJson.outputTokens <<<"$final2")" 35

# --- a session the CLI no longer knows: retried at once in a fresh one ---
check_stale_session "$a" 00000000-1111-4222-8333-444444444444 "No session found matching"
is "the stand-in saw nothing it does not know" "$(stub_unknown main)" ""

# --- an API error: pi exits 0, and says so on its last message ---
pi_agent failing '[{"error": 400, "message": "the stub refuses this request"}]'
final=$(wait_run "$(wake_task "$AGENT" t1)" 180)
is "an API error fails the run" "$(jq -r '.status + " " + (.exitCode | tostring)' <<<"$final")" "failed 0"
like "... with the API's error" "$(jq -r .error <<<"$final")" "^pi: 400 the stub refuses this request"

# --- cancel while the model is answering: the whole tree goes ---
pi_agent slow '[{"hang": true}]'
check_cancel slow "$AGENT"

finish
