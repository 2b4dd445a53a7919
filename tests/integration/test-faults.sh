#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A bad day for the database (corrald(8), DATABASE and LIMITS): a run's end that cannot be
# recorded in full is recorded without its output and frees its agent; another process
# holding the database stalls nothing, requests wait for it or get 503, and a run's end
# waits in memory until it can be written; the board can finish a run nothing tracks; a
# database that cannot be written is reported at start and in health.
. "$(dirname "$0")/lib.sh"
require curl jq sqlite3

DB=$STATE/corral.db
check "corrald starts" start_daemon
company=$(api POST /api/companies '{"name":"Faults","issuePrefix":"FLT"}' | jq -r .id)
agent() {
        api POST "/api/companies/$company/agents" "{\"name\":\"$1\",\"adapterConfig\":$2}" | jq -r .id
}
invoke() { api POST "/api/agents/$1/heartbeat/invoke" | jq -r .id; }

# --- a run's end that cannot be recorded in full still ends the run ---
# A trigger makes recording any success fail, as a value nobody foresaw did before (a cost of
# 1e308): the run stayed running, its agent running, its wakes queued, for good.
sqlite3 "$DB" "CREATE TRIGGER corral_test_fail BEFORE UPDATE OF status ON heartbeat_runs WHEN NEW.status = 'succeeded'
        BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
ok_agent=$(agent fine '{"command":"/bin/sh","args":["-c","echo done"]}')
first=$(invoke "$ok_agent")
second=$(invoke "$ok_agent")
final=$(wait_run "$first" 20)
is "the run ends failed" "$(jq -r .status <<<"$final")" failed
is "with finalize_failed" "$(jq -r .errorCode <<<"$final")" finalize_failed
like "saying why, with its exit code" "$(jq -r .error <<<"$final")" \
        "^Recording the end of the run failed \(Invalid argument\); it is recorded without its output. Its agent exited with code 0$"
check "the agent's next run starts and ends too" wait_run "$second" 20
check "the agent is not left running" field_is "/api/agents/$ok_agent" .status error
sqlite3 "$DB" "DROP TRIGGER corral_test_fail"
third=$(invoke "$ok_agent")
is "once recording works again, runs succeed" "$(wait_run "$third" 20 | jq -r .status)" succeeded

# --- another process holds the database ---
mkfifo "$T/sql"
sqlite3 "$DB" <"$T/sql" >/dev/null 2>&1 &
locker=$!
exec 3>"$T/sql"
extra_cleanup() {
        exec 3>&- 2>/dev/null
        kill "$locker" 2>/dev/null
        chattr -i "$DB" 2>/dev/null
}
locked() { ! sqlite3 "$DB" "BEGIN IMMEDIATE; ROLLBACK;" 2>/dev/null; }
slow=$(agent slow '{"command":"/bin/sh","args":["-c","read x <'"$T"'/go; exit 7"]}')
mkfifo "$T/go"
slow_run=$(invoke "$slow")
check "the slow run runs" wait_run_started "$slow_run"
echo "BEGIN IMMEDIATE;" >&3
check "a sqlite3 shell holds the write lock" wait_for 10 locked
is "health answers at once while it does" "$(curl -s -m 2 -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" http://corral/api/health)" 200
# The run ends meanwhile: its end waits in memory.
echo go >"$T/go"
check "corrald cannot record the run's end, and says it will try again" wait_for 10 log_has "Cannot record the end of run $slow_run now \(the database is locked\)"
is "reads go on meanwhile" "$(api GET "/api/heartbeat-runs/$slow_run" | jq -r .status)" running
# A write past the answer deadline: 503, Retry-After, and nothing done.
curl -s -D "$T/headers" -o "$T/body" -w '%{http_code}' --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
        --data-binary '{"name":"Late","issuePrefix":"LATE"}' http://corral/api/companies >"$T/status"
is "a write that finds the database locked for 3 s gets 503" "$(status)" 503
like "with Retry-After" "$(tr -d '\r' <"$T/headers")" "Retry-After: 1"
like "saying nothing was done" "$(jq -r .error "$T/body")" "locked by another process; nothing was done"
like "health says degraded, and why" "$(api GET /api/health | jq -c '[.status, .degraded]')" \
        '^\["degraded",\["the database was locked by another process within the last minute"\]\]$'
# A write the lock is released under is carried out.
(sleep 1 && echo "COMMIT;" >&3) &
released=$!
is "a write that waits less than its deadline is carried out" "$(api POST /api/companies '{"name":"Patient","issuePrefix":"PAT"}' >/dev/null; status)" 201
wait "$released"
check "the run's end is recorded once the lock is gone" wait_run "$slow_run" 20
is "with its agent's exit code" "$(api GET "/api/heartbeat-runs/$slow_run" | jq -r '[.status, .exitCode] | join(" ")')" "failed 7"
is "the late company was never made" "$(sqlite3 "$DB" "SELECT count(*) FROM companies WHERE issue_prefix = 'LATE'")" 0
is "health is ok again after a commit" "$(api GET /api/health | jq -r .status)" ok
exec 3>&-
wait "$locker"

# --- the board finishes a run that no process of is tracked ---
ghost=$(sqlite3 "$DB" "SELECT lower(hex(randomblob(4))) || '-0000-4000-8000-' || lower(hex(randomblob(6)))")
sqlite3 "$DB" "INSERT INTO heartbeat_runs (id, company_id, agent_id, invocation_source, status, created_at, updated_at, started_at)
        VALUES ('$ghost', '$company', '$ok_agent', 'on_demand', 'running', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')"
is "cancelling it is accepted" "$(api POST "/api/heartbeat-runs/$ghost/cancel" >/dev/null; status)" 202
is "and it is cancelled at once" "$(api GET "/api/heartbeat-runs/$ghost" | jq -r .status)" cancelled
check "corrald says so" log_has "Run $ghost is running but no process of it is tracked: finishing it as cancelled"

# --- a database that cannot be written ---
stop_daemon
if chattr +i "$DB" 2>"$T/chattr.err"; then
        check "corrald starts on an immutable database" start_daemon
        check "and says at once that nothing can be recorded" log_has "Database $DB is read-only: no run, wake or change can be recorded"
        like "health says degraded" "$(api GET /api/health | jq -c '[.status, .degraded[0]]')" \
                '^\["degraded","the database is read-only: nothing can be recorded"\]$'
        is "a write gets 503, not a hang" "$(api POST /api/companies '{"name":"RO","issuePrefix":"ROX"}' >/dev/null; status)" 503
        like "saying the database cannot be written" "$(jq -r .error "$T/body")" "^the database cannot be written \\(it is read-only"
        stop_daemon
        chattr -i "$DB"
else
        not_ok "chattr +i on the test's database: $(cat "$T/chattr.err")"
fi

finish
