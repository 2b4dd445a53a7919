#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Budgets end to end, with a stand-in of claude that streams its usage message by message
# (fake-spender.sh; test-cli-claude.sh does the same with the real CLI): what runs cost adds
# up exactly across runs and restarts of corrald; a wake over budget is skipped with 409; a
# budget spent pauses its agents, cancels their runs and queued work; caps of a run's tokens
# and cents and the budgets left stop a run while it streams, across a crash of corrald; a
# budget raised and a new month lift the pause.
[ "$(id -u)" -eq 0 ] && SANDBOX=${SANDBOX:-yes}
. "$(dirname "$0")/lib.sh"
require curl jq sqlite3

SPENDER="$CORRAL_SRCDIR/tests/integration/fake-spender.sh"
echo 2026-12 >"$T/month"
# Each message of the stand-in: 1000 input tokens at 10 USD and 1000 output tokens at 40 USD
# a million, 5 cents.
PRICES=(--price "fake-model 10 1 40" --month-file "$T/month" --sweep-interval-sec 86400)
check "corrald starts" start_daemon "${PRICES[@]}"
company=$(api POST /api/companies '{"name":"Spenders","issuePrefix":"SP"}' | jq -r .id)

# agent NAME ENV-JSON [EXTRA-CONFIG] [COMPANY]: a claude_local agent of the stand-in.
agent() {
        mkdir -p "$T/$1"
        chmod 777 "$T/$1"
        api POST "/api/companies/${4:-$company}/agents" "$(jq -n --arg name "$1" --arg cmd "$SPENDER" --arg dir "$T/$1" \
                --argjson env "$2" --argjson extra "${3:-{\}}" \
                '{name: $name, adapterType: "claude_local",
                  runtimeConfig: {heartbeat: {maxConcurrentRuns: 3}},
                  adapterConfig: ({command: $cmd, env: ({FAKE_MARK: ($dir + "/marks")} + $env),
                                   sandbox: {readWritePaths: [$dir]}} + $extra)}')" | jq -r .id
}

wake() {
        api POST "/api/agents/$1/wakeup" "{\"reason\":\"${2:-spend}\"}" | jq -r .id
}

marks() {
        wc -l <"$T/$1/marks" 2>/dev/null || echo 0
}

marked() {
        [ "$(marks "$1")" -ge "$2" ]
}

spent() {
        api GET "/api/agents/$1" | jq -r .spentMonthlyCents
}

# --- what runs cost adds up ---
a=$(agent priced '{"FAKE_MESSAGES":"3"}')
r1=$(wake "$a")
f1=$(wait_run "$r1")
is "a run of 3 messages succeeded" "$(jq -r .status <<<"$f1")" succeeded
is "its tokens are the CLI's" "$(jq -r '[.usageJson.inputTokens, .usageJson.outputTokens] | join(" ")' <<<"$f1")" "3000 3000"
is "it cost its tokens at the model's price" "$(jq -r '.usageJson | "\(.costCents) \(.priceSource) \(.billingType)"' <<<"$f1")" \
        "15 price api"
# While it runs, a run shows what it has spent so far, though nothing limits it (in a
# company of its own: its spend is not in the sums below).
watchers=$(api POST /api/companies '{"name":"Watchers","issuePrefix":"WA"}' | jq -r .id)
live=$(agent live '{"FAKE_MESSAGES":"30","FAKE_INTERVAL":"0.2"}' '{}' "$watchers")
lr=$(wake "$live")
wait_for 20 marked live 2
got=$(api GET "/api/heartbeat-runs/$lr")
is "a running run shows its spend so far" "$(jq -r '"\(.status) \(.usageJson.live) \(.usageJson.model) \(.usageJson.priceSource)"' <<<"$got")" \
        "running true fake-model price"
check "... in cents and tokens of the messages printed" test "$(jq -r '.usageJson.costCents >= 10 and .usageJson.outputTokens >= 2000' <<<"$got")" = true
is "... and so does the list of live runs" \
        "$(api GET "/api/companies/$watchers/live-runs" | jq -r --arg r "$lr" '.[] | select(.id == $r) | .usageJson.live')" true
api POST "/api/heartbeat-runs/$lr/cancel" >/dev/null
ended=$(wait_run "$lr")
is "an ended run has its end's figures only" "$(jq -r '"\(.status) \(.usageJson.live)"' <<<"$ended")" "cancelled null"

api PATCH "/api/agents/$a" '{"adapterConfig":{"command":"'"$SPENDER"'","env":{"FAKE_MESSAGES":"1","FAKE_COST_USD":"0.07"},
        "sandbox":{"readWritePaths":["'"$T/priced"'"]}}}' >/dev/null
r2=$(wake "$a")
f2=$(wait_run "$r2")
is "a CLI's own cost wins over the price" "$(jq -r '.usageJson | "\(.costCents) \(.priceSource)"' <<<"$f2")" "7 cli"
is "the agent spent both runs this month" "$(spent "$a")" 22
is "... in this month" "$(api GET "/api/agents/$a" | jq -r .spentMonth)" 2026-12
is "the company spent as much" "$(api GET "/api/companies/$company" | jq -r .spentMonthlyCents)" 22
costs=$(api GET "/api/companies/$company/costs")
is "costs of the month: totals" "$(jq -c .totals <<<"$costs")" \
        '{"runs":2,"inputTokens":4000,"cachedInputTokens":0,"outputTokens":4000,"costCents":22}'
is "... by agent" "$(jq -r '.agents[] | "\(.name) \(.runs) \(.costCents)"' <<<"$costs")" "priced 2 22"
is "... by model" "$(jq -r '.models[] | "\(.model) \(.runs) \(.costCents)"' <<<"$costs")" "fake-model 2 22"
is "... no budget, nothing remains" "$(jq -r .remainingCents <<<"$costs")" null
is "the agent's costs" "$(api GET "/api/agents/$a/costs" | jq -r '.totals.costCents')" 22
is "another month cost nothing" "$(api GET "/api/companies/$company/costs?month=2026-11" | jq -r .totals.costCents)" 0
is "the runtime state adds the same cents" "$(api GET "/api/agents/$a/runtime-state" | jq -r .totalCostCents)" 22
is "a cost event per run" "$(sql "SELECT count(*), sum(cost_cents) FROM cost_events WHERE agent_id = '$a'")" "2|22"
metrics=$(curl -sS --unix-socket "$SOCK" http://localhost/metrics)
like "metrics: the cents spent by company, agent and model" "$metrics" \
        "corral_cost_cents_total\\{company=\"$company\",agent=\"$a\",model=\"fake-model\"\\} 22"
out=$("$CORRALCTL" costs --company "$company")
like "corralctl costs: the month's spend" "$out" "Company $company, 2026-12: spent 22 cents, no monthly budget"
like "... a line per agent" "$out" "priced +$a +2 +4000 +0 +4000 +22"
like "... and per model" "$out" "fake-model +2 +4000 +0 +4000 +22"

# A model without a price is priced at price-default (15, 1.5, 75 USD), and flagged.
u=$(agent unpriced '{"FAKE_MESSAGES":"1","FAKE_MODEL":"mystery-model"}')
f=$(wait_run "$(wake "$u")")
is "an unknown model is priced at the default" "$(jq -r '.usageJson | "\(.costCents) \(.priceSource)"' <<<"$f")" "9 default"
like "... and the run says so" "$(api GET "/api/heartbeat-runs/$(jq -r .id <<<"$f")/events" | jq -r '.[].message')" \
        "model 'mystery-model' has no price in corrald.conf"

# A subscription's runs cost nothing; their tokens still count.
s=$(agent subscribed '{"FAKE_MESSAGES":"2"}' '{"billingType":"subscription_included"}')
f=$(wait_run "$(wake "$s")")
is "a subscription's run costs 0" "$(jq -r '.usageJson | "\(.costCents) \(.priceSource) \(.billingType) \(.inputTokens)"' <<<"$f")" \
        "0 subscription subscription_included 2000"

# The spend survives corrald.
stop_daemon
check "corrald starts again" start_daemon "${PRICES[@]}"
is "the spend is kept across a restart" "$(spent "$a") $(api GET "/api/companies/$company/costs" | jq -r .totals.costCents)" \
        "22 31"

# --- caps of one run, while it streams ---
t=$(agent tokens '{"FAKE_MESSAGES":"40","FAKE_INTERVAL":"0.2"}' '{"maxTokensPerRun":4500}')
f=$(wait_run "$(wake "$t")")
is "a run past maxTokensPerRun fails" "$(jq -r '"\(.status) \(.errorCode) \(.resultJson.stopReason)"' <<<"$f")" \
        "failed budget_exceeded budget_exceeded"
# Its third message reached the cap: its first line (1000 input tokens, 1 output token so far)
# or, when both lines came in one chunk of output, its second.
is "... stopped at its third message" "$(jq -c '.resultJson.budget | del(.spentCents, .spentTokens)' <<<"$f")" \
        '{"limit":"maxTokensPerRun","limitValue":4500}'
like "... having spent" "$(jq -r '.resultJson.budget | "\(.spentCents) \(.spentTokens)"' <<<"$f")" "^(11 5001|15 6000)$"
like "... its error says so" "$(jq -r .error <<<"$f")" \
        "spent (11 cents and 5001|15 cents and 6000) tokens, reaching maxTokensPerRun of 4500 tokens"
check "... long before its 40 messages" test "$(marks tokens)" -lt 10
# What it printed before the SIGTERM took: the line that reached the cap at least, 11 cents
# (a loaded machine lets it print more), and the agent's spend is the run's cost.
cost=$(jq -r .usageJson.costCents <<<"$f")
is "... and what it spent counts" "$(spent "$t")" "$cost"
check "... all of it: $cost cents" test "$cost" -ge 11

c=$(agent cents '{"FAKE_MESSAGES":"40","FAKE_INTERVAL":"0.2"}' '{"maxCostCentsPerRun":12}')
f=$(wait_run "$(wake "$c")")
is "a run past maxCostCentsPerRun fails" "$(jq -r '"\(.status) \(.errorCode)"' <<<"$f")" "failed budget_exceeded"
is "... at the message that reached it" "$(jq -r '"\(.resultJson.budget.limit) \(.resultJson.budget.spentCents)"' <<<"$f")" \
        "maxCostCentsPerRun 15"

# --- an agent's budget: a run stopped by what is left of it, its other run stopped at its
# next message, the agent paused, its queued run cancelled, its wakes refused ---
# The first run writes a message every 2 s, the second (configured after the first started)
# every 0.1 s: the second reaches the 12 cents left first, with what the first has spent.
b=$(agent budgeted '{"FAKE_MESSAGES":"40","FAKE_INTERVAL":"2"}')
api PATCH "/api/agents/$b" '{"budgetMonthlyCents":12,"runtimeConfig":{"heartbeat":{"maxConcurrentRuns":2}}}' >/dev/null
slow=$(wake "$b" slow)
wait_run_started "$slow"
wait_for 20 marked budgeted 1
# A wake of it on an issue another agent's run holds waits, deferred, for the issue; made
# before the fast run starts, which soon pauses the agent.
holder=$(agent holder '{"FAKE_MESSAGES":"200","FAKE_INTERVAL":"0.5"}')
held=$(api POST "/api/companies/$company/issues" "{\"title\":\"held\",\"status\":\"todo\",\"assigneeAgentId\":\"$holder\"}" |
        jq -r .id)
wait_for 20 field_is "/api/issues/$held" '.executionRunId != null' true
out=$(api POST "/api/agents/$b/wakeup" "{\"reason\":\"help\",\"payload\":{\"issueId\":\"$held\"}}")
is "a wake on the held issue is deferred" "$(jq -r .status <<<"$out")" deferred
api PATCH "/api/agents/$b" '{"adapterConfig":{"command":"'"$SPENDER"'","env":{"FAKE_MESSAGES":"40","FAKE_INTERVAL":"0.1"},
        "sandbox":{"readWritePaths":["'"$T/budgeted"'"]}}}' >/dev/null
fast=$(wake "$b" fast)
queued=$(wake "$b" queued)
check "a third run waits for a slot" run_is "$queued" queued
first=$(wait_run "$fast" 60)
second=$(wait_run "$slow" 60)
is "the run that reached the agent's budget failed" "$(jq -r '"\(.errorCode) \(.resultJson.budget.limit)"' <<<"$first")" \
        "budget_exceeded the agent's monthly budget"
is "the agent is paused by its budget" "$(api GET "/api/agents/$b" | jq -r '"\(.status) \(.pauseReason)"')" "paused budget"
# Whichever message reached it (the slow run's may come first) counted the other run's spend.
is "... counting what its other run had spent" \
        "$(jq -s -r 'any(.[]; .resultJson.budget.otherRunsCents > 0)' <<<"$first$second")" true
is "its other run was stopped at its next message" "$(jq -r '"\(.errorCode) \(.resultJson.budget.limit)"' <<<"$second")" \
        "budget_exceeded the agent's monthly budget"
fq=$(wait_run "$queued")
is "... and its queued run" "$(jq -r '"\(.status) \(.resultJson.stopReason)"' <<<"$fq")" "cancelled budget_paused"
is "... and its deferred wake" \
        "$(api GET "/api/agents/$b/wakeup-requests" | jq -r --arg i "$held" \
                '.[] | select(.payload | tostring | contains($i)) | "\(.status) \(.error)"')" \
        "cancelled Cancelled due to budget pause"
api POST "/api/heartbeat-runs/$(api GET "/api/issues/$held" | jq -r .executionRunId)/cancel" >/dev/null
sum=$(($(jq -r .usageJson.costCents <<<"$first") + $(jq -r '.usageJson.costCents // 0' <<<"$second")))
is "the agent spent what its runs cost" "$(spent "$b")" "$sum"
pause=$(api GET "/api/companies/$company/activity" | jq -c "[.[] | select(.action == \"agent.paused\" and .entityId == \"$b\")][0].details")
is "an activity row says which budget paused it" "$(jq -r '"\(.reason) \(.scope) \(.budgetMonthlyCents)"' <<<"$pause")" "budget agent 12"
out=$(api POST "/api/agents/$b/wakeup" '{"reason":"more"}')
is "a wake over budget gets 409" "$(status)" 409
is "... naming the budget" "$(jq -r '"\(.reason) \(.scopeType) \(.scopeId) \(.budgetMonthlyCents)"' <<<"$out")" \
        "budget.blocked agent $b 12"
like "... and why" "$(jq -r .error <<<"$out")" "agent's monthly budget of 12 cents is spent"
is "... and is recorded skipped" \
        "$(api GET "/api/agents/$b/wakeup-requests?status=skipped" | jq -r '.[0] | "\(.status) \(.reason)"')" "skipped budget.blocked"
is "the agent's costs show the budget" "$(api GET "/api/agents/$b/costs" | jq -r '"\(.budgetMonthlyCents) \(.remainingCents)"')" "12 0"

# A budget raised lifts the pause.
out=$(api PATCH "/api/agents/$b" '{"budgetMonthlyCents":1000,"adapterConfig":{"command":"'"$SPENDER"'","env":{"FAKE_MESSAGES":"1"},"sandbox":{"readWritePaths":["'"$T/budgeted"'"]}}}')
is "a budget raised resumes the agent" "$(jq -r '"\(.status) \(.pauseReason)"' <<<"$out")" "idle null"
resume=$(api GET "/api/companies/$company/activity" | jq -c "[.[] | select(.action == \"agent.resumed\" and .entityId == \"$b\")][0].details")
is "... and says why" "$(jq -r .reason <<<"$resume")" budget_raised
is "... and it runs again" "$(wait_run "$(wake "$b")" | jq -r .status)" succeeded

# --- a company's budget pauses every agent of it ---
co2=$(api POST /api/companies '{"name":"Thrifty","issuePrefix":"TH","budgetMonthlyCents":10}' | jq -r .id)
e1=$(agent e1 '{"FAKE_MESSAGES":"40","FAKE_INTERVAL":"0.2"}' '{}' "$co2")
e2=$(agent e2 '{"FAKE_MESSAGES":"1"}' '{}' "$co2")
f=$(wait_run "$(wake "$e1")")
is "a run that reached its company's budget failed" "$(jq -r '"\(.errorCode) \(.resultJson.budget.limit)"' <<<"$f")" \
        "budget_exceeded the company's monthly budget"
is "every agent of the company is paused" "$(api GET "/api/agents/$e1" | jq -r .status) $(api GET "/api/agents/$e2" | jq -r .status)" \
        "paused paused"
out=$(api POST "/api/agents/$e2/wakeup" '{}')
is "a wake of another agent of it gets 409" "$(status) $(jq -r '"\(.scopeType) \(.scopeId)"' <<<"$out")" "409 company $co2"
is "metrics: what is left of the company's budget" \
        "$(curl -sS --unix-socket "$SOCK" http://localhost/metrics | grep "corral_budget_remaining_cents{scope=\"company\",company=\"$co2\"")" \
        "corral_budget_remaining_cents{scope=\"company\",company=\"$co2\",agent=\"\"} 0"

# --- runs that stream at once spend one budget together ---
# Two agents of a company with 40 cents, each run at 5 cents every 0.5 s: alone, each would
# take 4 s to spend it. Together they reach it in half that, and the run whose message does
# is stopped there, though it spent less than 40 alone.
co3=$(api POST /api/companies '{"name":"Pooled","issuePrefix":"PO","budgetMonthlyCents":40}' | jq -r .id)
p1=$(agent p1 '{"FAKE_MESSAGES":"40","FAKE_INTERVAL":"0.5"}' '{}' "$co3")
p2=$(agent p2 '{"FAKE_MESSAGES":"40","FAKE_INTERVAL":"0.5"}' '{}' "$co3")
rp1=$(wake "$p1")
rp2=$(wake "$p2")
fp1=$(wait_run "$rp1" 60)
fp2=$(wait_run "$rp2" 60)
pooled=$(jq -s -c '[.[] | select(.resultJson.budget.otherRunsCents > 0)][0]' <<<"$fp1$fp2")
is "a run is stopped when the company's runs together reach its budget" \
        "$(jq -r '"\(.errorCode) \(.resultJson.budget.limit) \(.resultJson.budget.spentCents < 40)"' <<<"$pooled")" \
        "budget_exceeded the company's monthly budget true"
like "... and its error says what the other run spent" "$(jq -r .error <<<"$pooled")" \
        "reaching the company's monthly budget of 40 cents with the [0-9]+ cents of its other runs still running"
is "the other run is stopped at its next message" "$(jq -r '"\(.errorCode) \(.resultJson.budget.limit)"' <<<"$fp1$fp2" | sort -u)" \
        "budget_exceeded the company's monthly budget"
spent_pooled=$(api GET "/api/companies/$co3" | jq -r .spentMonthlyCents)
# Each run may print what follows the message that stopped it before its SIGTERM lands, and a
# loaded machine reads the logs late: two messages of each at most (checked each alone, the two
# runs spent 80).
check "the company spent its budget and at most two messages of each run more ($spent_pooled cents)" \
        test "$spent_pooled" -ge 40 -a "$spent_pooled" -le 60
is "... and is paused" "$(api GET "/api/agents/$p1" | jq -r .status) $(api GET "/api/agents/$p2" | jq -r .status)" "paused paused"

# --- what a live run has spent counts for a wake: a run stopped at its budget that has
# not ended yet (the stand-in ignores SIGTERM for the grace period) ---
st=$(agent stubborn '{"FAKE_MESSAGES":"20","FAKE_INTERVAL":"0.2","FAKE_IGNORE_TERM":"1"}')
api PATCH "/api/agents/$st" '{"budgetMonthlyCents":10}' >/dev/null
rst=$(wake "$st")
wait_for 20 field_is "/api/heartbeat-runs/$rst/events" '[.[].eventType] | index("budget.exceeded") != null' true
out=$(api POST "/api/agents/$st/wakeup" '{"reason":"more"}')
is "a wake while a live run has spent the budget gets 409" "$(status) $(jq -r '"\(.reason) \(.spentMonthlyCents)"' <<<"$out")" \
        "409 budget.blocked 10"
check "... though that run has not ended" run_is "$rst" running
is "the run ends stopped by the budget" "$(wait_run "$rst" 60 | jq -r .errorCode)" budget_exceeded

# --- a new month lifts the pauses of the last one ---
echo 2027-01 >"$T/month"
api POST /api/sweep >/dev/null
is "a new month resumes the company's agents" "$(api GET "/api/agents/$e1" | jq -r .status) $(api GET "/api/agents/$e2" | jq -r .status)" \
        "idle idle"
resume=$(api GET "/api/companies/$co2/activity" | jq -c "[.[] | select(.action == \"agent.resumed\")][0].details")
is "... saying why" "$(jq -r '"\(.reason) \(.month)"' <<<"$resume")" "budget_new_month 2027-01"
is "the company spent nothing this month" "$(api GET "/api/companies/$co2" | jq -r '"\(.spentMonthlyCents) \(.spentMonth)"')" "0 2027-01"
is "... and what it spent last month is kept" "$(api GET "/api/companies/$co2/costs?month=2026-12" | jq -r .totals.costCents)" \
        "$(jq -r .usageJson.costCents <<<"$f")"
is "... and its agents run" "$(wait_run "$(wake "$e2")" | jq -r .status)" succeeded

# --- a crash of corrald mid-run loses no cost, and a cap still holds after it ---
g=$(agent crash '{"FAKE_MESSAGES":"30","FAKE_INTERVAL":"0.3"}' '{"maxCostCentsPerRun":20}')
h=$(agent nolimit '{"FAKE_MESSAGES":"6","FAKE_INTERVAL":"0.3"}')
rg=$(wake "$g")
rh=$(wake "$h")
wait_for 20 marked crash 1
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
check "corrald starts after its crash" start_daemon "${PRICES[@]}"
f=$(wait_run "$rg" 60)
is "the capped run is stopped at its cap after the crash" "$(jq -r '"\(.errorCode) \(.resultJson.budget.limit) \(.resultJson.budget.spentCents)"' <<<"$f")" \
        "budget_exceeded maxCostCentsPerRun 20"
fh=$(wait_run "$rh" 60)
is "the other run's cost is kept across the crash" "$(jq -r '"\(.status) \(.usageJson.costCents)"' <<<"$fh")" "succeeded 30"
is "... and counted once" "$(api GET "/api/agents/$h/costs" | jq -r '"\(.spentMonthlyCents) \(.totals.runs)"')" "30 1"

finish
