#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# gemini_local against the real Gemini CLI from npm (tests/cli/versions), in its sandbox,
# with a stand-in of the Gemini API on 127.0.0.1: a tool call and an answer, a resumed
# session, an API error, a cancel mid-request and a session the CLI no longer knows. What
# corral records is compared with what the CLI printed; the stand-in fails the test on any
# request it does not know.
[ "$(id -u)" -eq 0 ] && SANDBOX=${SANDBOX:-yes}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cli-lib.sh"
require curl jq python3 sqlite3
[ "$(id -u)" -eq 0 ] || skip_all "needs root: the CLI runs in corral's sandbox, as a package's corrald runs it"
GEMINI=$(cli_bin gemini)

# The CLI takes its way of signing in from its settings, not from GEMINI_API_KEY alone: a
# system settings file, as an operator would give it, visible in the sandbox read-only. Not
# under /tmp: the CLI skips a settings file with a world-writable directory above it.
SETTINGS=/run/corral-test-gemini-$$
extra_cleanup() {
        stop_stubs
        rm -rf "$SETTINGS"
}
mkdir -p "$SETTINGS"
cat >"$SETTINGS/settings.json" <<'EOF'
{"security": {"auth": {"selectedType": "gemini-api-key"}},
 "privacy": {"usageStatisticsEnabled": false},
 "telemetry": {"enabled": false},
 "general": {"disableAutoUpdate": true, "disableUpdateNag": true}}
EOF
chmod -R a+rX "$SETTINGS"

check "corrald starts" start_daemon --sweep-interval-sec 86400
company=$(api POST /api/companies '{"name":"Gemini","issuePrefix":"GM"}' | jq -r .id)

# gemini_agent NAME STUB-SCRIPT: an agent of the real CLI with a stand-in of its own; its id
# in AGENT.
gemini_agent() {
        local port
        start_stub "$1" "$2"
        port=$STUB_PORT
        AGENT=$(api POST "/api/companies/$company/agents" "$(jq -n --arg name "$1" --arg cmd "$GEMINI" --arg port "$port" \
                --arg settings "$SETTINGS" \
                '{name: $name, adapterType: "gemini_local",
                  adapterConfig: {command: $cmd, model: "gemini-2.5-pro", yolo: true, timeoutSec: 300,
                                  env: {GEMINI_API_KEY: "stub-key", GOOGLE_GEMINI_BASE_URL: ("http://127.0.0.1:" + $port),
                                        GEMINI_CLI_SYSTEM_SETTINGS_PATH: ($settings + "/settings.json")},
                                  sandbox: {readOnlyPaths: [$settings]}}}')" |
                jq -r .id)
}

# --- a tool call, then an answer ---
gemini_agent main '[
  {"tool": "run_shell_command", "input": {"command": "echo tool-ran > tool-out.txt && echo the-tool-said-hi"},
   "usage": {"input_tokens": 120, "cached_tokens": 40, "output_tokens": 15, "reasoning_tokens": 5}},
  {"expect": "the-tool-said-hi", "text": "all done", "usage": {"input_tokens": 200, "output_tokens": 25}},
  {"expect": "all done", "text": "second answer", "usage": {"input_tokens": 300, "output_tokens": 35}},
  {"text": "fresh start"}
]'
a=$AGENT
run1=$(wake_task "$a" t1)
final=$(wait_run "$run1" 180)
is "the run succeeded" "$(jq -r .status <<<"$final")" succeeded
cli=$(cli_line "$run1")
is "its result is the CLI's last message" "$(jq -r .resultJson.result <<<"$final")" \
        "$(cli_line "$run1" message | jq -r .content)"
is "... the answer after the tool call" "$(jq -r .resultJson.result <<<"$final")" "all done"
is "input tokens are the CLI's" "$(jq -r .usageJson.inputTokens <<<"$final")" "$(jq -r .stats.input_tokens <<<"$cli")"
is "cached input tokens are the CLI's" "$(jq -r .usageJson.cachedInputTokens <<<"$final")" "$(jq -r .stats.cached <<<"$cli")"
is "output tokens are the CLI's" "$(jq -r .usageJson.outputTokens <<<"$final")" "$(jq -r .stats.output_tokens <<<"$cli")"
is "thoughts are the rest of the CLI's total" "$(jq -r .usageJson.reasoningOutputTokens <<<"$final")" \
        "$(jq -r '.stats.total_tokens - .stats.input_tokens - .stats.output_tokens' <<<"$cli")"
is "the session is the CLI's" "$(jq -r .sessionIdAfter <<<"$final")" "$(cli_line "$run1" init | jq -r .session_id)"
is "the model is the CLI's" "$(jq -r .usageJson.model <<<"$final")" "$(cli_line "$run1" init | jq -r .model)"
home=$STATE/homes/$a
is "the tool ran in the agent's workspace" "$(cat "$home/workspace/tool-out.txt" 2>&1)" tool-ran
check "the CLI keeps its state in the agent's home" test -d "$home/.gemini"
check "... not in the workspace" test ! -e "$home/workspace/.gemini"

# --- the same task again: the session is resumed ---
run2=$(wake_task "$a" t1)
final2=$(wait_run "$run2" 180)
is "the resumed run succeeded" "$(jq -r '.status + " " + .resultJson.result' <<<"$final2")" "succeeded second answer"
is "it resumed the first run's session" "$(jq -r .sessionIdBefore <<<"$final2")" "$(jq -r .sessionIdAfter <<<"$final")"
is "its usage is its own" "$(jq -r .usageJson.inputTokens <<<"$final2")" 300

# --- a session the CLI no longer knows: retried at once in a fresh one ---
check_stale_session "$a" 00000000-1111-4222-8333-444444444444 "Invalid session identifier"
is "the stand-in saw nothing it does not know" "$(stub_unknown main)" ""

# --- an API error ---
gemini_agent failing '[{"error": 400, "message": "the stub refuses this request"}]'
final=$(wait_run "$(wake_task "$AGENT" t1)" 180)
is "an API error fails the run" "$(jq -r .status <<<"$final")" failed
like "... with the API's error" "$(jq -r .error <<<"$final")" "^gemini: .*the stub refuses this request"

# --- cancel while the model is answering: the whole tree goes ---
gemini_agent slow '[{"hang": true}]'
check_cancel slow "$AGENT"

finish
