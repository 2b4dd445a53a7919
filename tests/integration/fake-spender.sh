#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Stands in for the claude CLI in the budget tests: prints claude's stream-json, FAKE_MESSAGES
# assistant messages FAKE_INTERVAL seconds apart, each with FAKE_INPUT input and FAKE_OUTPUT
# output tokens of FAKE_MODEL and each printed twice, its usage growing as claude's does; then
# its result with the totals (and total_cost_usd when FAKE_COST_USD is set). The file
# FAKE_MARK, when set, gets a line per message printed. With FAKE_IGNORE_TERM set, it (and
# its sleeps) ignore SIGTERM, as a CLI busy in a tool might for a while.
[ -n "${FAKE_IGNORE_TERM:-}" ] && trap '' TERM
cat >/dev/null
model=${FAKE_MODEL:-fake-model}
session=${FAKE_SESSION:-sess-fake}
input=${FAKE_INPUT:-1000}
output=${FAKE_OUTPUT:-1000}
n=${FAKE_MESSAGES:-3}
printf '{"type":"system","subtype":"init","session_id":"%s","model":"%s"}\n' "$session" "$model"
i=1
while [ "$i" -le "$n" ]; do
        for out in 1 "$output"; do
                printf '{"type":"assistant","session_id":"%s","message":{"id":"msg_%s_%s","model":"%s","content":[{"type":"text","text":"step %s"}],"usage":{"input_tokens":%s,"output_tokens":%s}}}\n' \
                        "$session" "$session" "$i" "$model" "$i" "$input" "$out"
        done
        [ -n "${FAKE_MARK:-}" ] && echo "$i" >>"$FAKE_MARK"
        sleep "${FAKE_INTERVAL:-0}"
        i=$((i + 1))
done
cost=
[ -n "${FAKE_COST_USD:-}" ] && cost=",\"total_cost_usd\":$FAKE_COST_USD"
printf '{"type":"result","subtype":"success","is_error":false,"result":"spent","session_id":"%s","num_turns":%s,"usage":{"input_tokens":%s,"output_tokens":%s}%s}\n' \
        "$session" "$n" "$((input * n))" "$((output * n))" "$cost"
