#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# PostgreSQL restarted under a running corrald (make check runs this as
# tests/integration/pg/test-pg-restart.pg only): the connection is made again, a request
# that met the restart is answered, a run that ended meanwhile is recorded, and the
# health route says what happened until a write succeeds again.
. "$(dirname "$0")/lib.sh"
require curl jq psql
[ "$BACKEND" = postgresql ] || skip_all "this test is of PostgreSQL (run it as tests/integration/pg/test-pg-restart.pg)"

pg_restart() {
        runuser -u postgres -- "$("$SRCDIR/tests/pg-server.sh" bindir)/pg_ctl" -D "$PG_DIR/data" -m fast -w restart \
                >/dev/null 2>&1
}

check "corrald starts on PostgreSQL" start_daemon
is "health names the backend" "$(api GET /api/health | jq -r .database.backend)" postgresql
company=$(api POST /api/companies '{"name":"Restart","issuePrefix":"RS"}' | jq -r .id)
agent=$(api POST "/api/companies/$company/agents" \
        "{\"name\":\"sleeper\",\"adapterConfig\":{\"command\":\"/bin/sh\",\"args\":[\"-c\",\"sleep 2; echo done; exit 3\"]}}" |
        jq -r .id)
run=$(api POST "/api/agents/$agent/wakeup" '{}' | jq -r .id)
check "the run starts" wait_run_started "$run"

check "the PostgreSQL server restarts (every connection is cut)" pg_restart
api POST /api/companies '{"name":"After","issuePrefix":"AF"}' >"$T/after.json"
is "a request after the restart is answered" "$(status)" 201
is "and done" "$(api GET "/api/companies/$(jq -r .id "$T/after.json")" | jq -r .name)" After
like "corrald connected again" "$(cat "$T/corrald.log")" "connected again"

final=$(wait_run "$run")
is "the run that ran across the restart ended with its exit code" "$(jq -r '.status + " " + (.exitCode | tostring)' <<<"$final")" \
        "failed 3"
is "and its output" "$(jq -r .stdoutExcerpt <<<"$final")" done
is "health is ok once writes succeed again" "$(api GET /api/health | jq -r .status)" ok
stop_daemon
is "corrald exits 0" "$DAEMON_STATUS" 0
finish
