#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The API end to end: corralctl and curl against a real corrald on a temporary
# state dir; then a restart, after which every row is still there.
. "$(dirname "$0")/lib.sh"
require curl jq sqlite3

check "corrald starts and answers" start_daemon
out=$("$CORRALCTL" status)
like "corralctl status reports the daemon" "$out" "corrald .* is ok"
like "status shows the schema version" "$out" "schema version 11"

# --- companies ---
company=$("$CORRALCTL" company create --name "Acme Robotics" --description "Robots" --quiet)
like "company create prints the new id" "$company" '^[0-9a-f-]{36}$'
is "prefix derived from the name" "$(api GET /api/companies/$company | jq -r .issuePrefix)" "ACME"
other=$(api POST /api/companies '{"name":"Other","issuePrefix":"OTH","requireBoardApprovalForNewAgents":true}' | jq -r .id)
is "POST /api/companies answers 201" "$(status)" 201
is "two companies listed" "$(api GET /api/companies | jq length)" 2
api PATCH /api/companies/$company '{"budgetMonthlyCents":5000,"status":"active"}' >/dev/null
is "PATCH company answers 200" "$(status)" 200
is "budget changed" "$(api GET /api/companies/$company | jq .budgetMonthlyCents)" 5000
second=$(api POST /api/companies '{"name":"Acme Industries"}' | jq -r .issuePrefix)
is "derived prefix avoids a taken one" "$second" "ACME2"

# --- agents ---
agent=$("$CORRALCTL" agent create --company "$company" --name eng --role engineer \
        --config '{"command":"/bin/true","timeoutSec":60}' --runtime-config '{"heartbeat":{"enabled":false,"wakeOnDemand":false}}' --quiet)
like "agent create prints the new id" "$agent" '^[0-9a-f-]{36}$'
a=$(api GET /api/agents/$agent)
is "agent is idle" "$(jq -r .status <<<"$a")" idle
is "agent role" "$(jq -r .role <<<"$a")" engineer
is "adapter config kept as JSON" "$(jq -c .adapterConfig <<<"$a")" '{"command":"/bin/true","timeoutSec":60}'
hire=$(api POST /api/companies/$other/agents '{"name":"new-hire","adapterConfig":{"command":"/bin/true"}}')
is "agents of a company that requires approval start pending_approval" "$(jq -r .status <<<"$hire")" pending_approval
hire=$(jq -r .id <<<"$hire")
api POST /api/agents/$hire/wakeup '{}' >/dev/null
is "... and cannot be woken" "$(status)" 409
api POST /api/agents/$hire/resume >/dev/null
is "... nor resumed" "$(status)" 409
is "corralctl agent approve approves it" "$("$CORRALCTL" --json agent approve "$hire" | jq -r .status)" idle
is "... with an activity row" "$(api GET /api/companies/$other/activity | jq -r '.[0] | "\(.action) \(.entityId)"')" \
        "agent.approved $hire"
api POST /api/agents/$hire/approve >/dev/null
is "an approved agent cannot be approved again" "$(status) $(jq -r .error "$T/body")" \
        "409 agent is not pending approval (status idle)"
run=$(api POST /api/agents/$hire/wakeup '{}' | jq -r .id)
is "... and it runs" "$(wait_run "$run" | jq -r .status)" succeeded
is "agent list has one agent" "$("$CORRALCTL" --json agent list --company "$company" | jq length)" 1
"$CORRALCTL" agent update "$agent" --title "Staff engineer" >/dev/null
is "agent update" "$(api GET /api/agents/$agent | jq -r .title)" "Staff engineer"
# The hosts an agent may run on (runtimeConfig.hosts).
api PATCH /api/agents/$hire '{"runtimeConfig":{"hosts":"everywhere"}}' >/dev/null
is "hosts that are not a list: 400" "$(status) $(jq -r .error "$T/body")" \
        "400 runtimeConfig.hosts must be a list of 1 to 64 host ids, or null for any host"
api PATCH /api/agents/$hire '{"runtimeConfig":{"hosts":["no spaces"]}}' >/dev/null
like "a host id that cannot be one: 400" "$(status) $(jq -r .error "$T/body")" "^400 runtimeConfig.hosts: a host id is"
self=$(api GET /api/health | jq -r .host.id)
api PATCH /api/agents/$hire '{"runtimeConfig":{"hosts":["another-host"]}}' >/dev/null
run=$(api POST /api/agents/$hire/wakeup '{}' | jq -r .id)
sleep 0.5
is "an agent of another host stays queued here" "$(api GET /api/heartbeat-runs/$run | jq -r .status)" queued
api PATCH /api/agents/$hire "{\"runtimeConfig\":{\"hosts\":[\"another-host\",\"$self\"]}}" >/dev/null
is "... and runs once this host is among its hosts" "$(wait_run "$run" | jq -r '.status + " " + .hostId')" "succeeded $self"
is "pause" "$("$CORRALCTL" --json agent pause "$agent" | jq -r .status)" paused
is "pause reason" "$(api GET /api/agents/$agent | jq -r .pauseReason)" manual
is "resume" "$("$CORRALCTL" --json agent resume "$agent" | jq -r .status)" idle
api POST /api/agents/$agent/resume >/dev/null
is "resume of an agent that is not paused: 409" "$(status)" 409
doomed=$(api POST /api/companies/$company/agents '{"name":"temp"}' | jq -r .id)
is "terminate" "$("$CORRALCTL" --json agent terminate "$doomed" | jq -r .status)" terminated
api POST /api/agents/$doomed/pause >/dev/null
is "a terminated agent cannot be paused: 409" "$(status)" 409

# --- issues ---
i1=$("$CORRALCTL" --json issue create --company "$company" --title "Build the arm" --assignee "$agent" --status todo --priority high)
is "first issue is ACME-1" "$(jq -r .identifier <<<"$i1")" ACME-1
i1id=$(jq -r .id <<<"$i1")
i2=$(api POST /api/companies/$company/issues '{"title":"Second","description":"two"}')
is "second issue is ACME-2 in backlog" "$(jq -r '.identifier + " " + .status' <<<"$i2")" "ACME-2 backlog"
is "issue by identifier" "$(api GET /api/issues/ACME-1 | jq -r .id)" "$i1id"
is "issue by id" "$(api GET /api/issues/$i1id | jq -r .identifier)" ACME-1
is "list filtered by status" "$(api GET "/api/companies/$company/issues?status=todo" | jq -r '.[].identifier')" ACME-1
is "list filtered by assignee" "$(api GET "/api/companies/$company/issues?assigneeAgentId=$agent" | jq length)" 1
p=$(api PATCH /api/issues/ACME-1 '{"status":"in_progress"}')
like "in_progress sets startedAt" "$(jq -r .startedAt <<<"$p")" '^20[0-9-]+T'
p=$(api PATCH /api/issues/ACME-1 '{"status":"done","comment":"Shipped."}')
like "done sets completedAt" "$(jq -r .completedAt <<<"$p")" '^20[0-9-]+T'
is "PATCH with a comment adds it" "$(api GET /api/issues/ACME-1/comments | jq -r '.[0].body')" "Shipped."
p=$(api PATCH /api/issues/ACME-1 '{"status":"todo"}')
is "reopening clears completedAt" "$(jq -r .completedAt <<<"$p")" null
p=$(api PATCH /api/issues/ACME-1 '{"status":"in_progress"}')
p=$(api PATCH /api/issues/ACME-1 '{"assigneeAgentId":null}')
is "unassigning an in_progress issue moves it to todo" "$(jq -r .status <<<"$p")" todo
"$CORRALCTL" issue update ACME-2 --status cancelled >/dev/null
like "cancelled sets cancelledAt" "$(api GET /api/issues/ACME-2 | jq -r .cancelledAt)" '^20[0-9-]+T'

# --- comments ---
c=$("$CORRALCTL" --json comment add ACME-2 "Why was this cancelled?")
cid=$(jq -r .id <<<"$c")
echo "Because." | "$CORRALCTL" comment add ACME-2 - >/dev/null
is "two comments on ACME-2" "$(api GET /api/issues/ACME-2/comments | jq length)" 2
is "comment body from stdin" "$(api GET /api/issues/ACME-2/comments | jq -r '.[1].body')" "Because."
is "comment by id" "$(api GET /api/issues/ACME-2/comments/$cid | jq -r .body)" "Why was this cancelled?"
is "comment author is the local user" "$(jq -r .authorUserId <<<"$c")" "uid:$(id -u)"
api GET /api/issues/ACME-1/comments/$cid >/dev/null
is "a comment of another issue is not found there" "$(status)" 404

# --- activity ---
acts=$(api GET /api/companies/$company/activity)
for action in company.created company.updated agent.created agent.updated agent.paused agent.resumed agent.terminated \
        issue.created issue.updated issue.comment_added; do
        is "activity has $action" "$(jq -r --arg a "$action" '[.[] | select(.action == $a)] | length > 0' <<<"$acts")" true
done
is "status change recorded with the previous status" \
        "$(jq -r '[.[] | select(.action == "issue.updated" and .details.status == "done")][0].details.previousStatus' <<<"$acts")" in_progress
is "activity limit" "$(api GET "/api/companies/$company/activity?limit=2" | jq length)" 2
like "corralctl activity prints a table" "$("$CORRALCTL" activity --company "$company" --limit 3)" "issue.comment_added"

# --- every list has a limit (default 200, at most 1000), applied in SQL ---
is "comments: ?limit" "$(api GET "/api/issues/ACME-2/comments?limit=1" | jq -r 'length, .[0].body')" "1
Why was this cancelled?"
is "issues: ?limit" "$(api GET "/api/companies/$company/issues?limit=1" | jq -r '.[].identifier')" ACME-1
is "issues: without it, the default" "$(api GET "/api/companies/$company/issues" | jq length)" 2
is "companies: ?limit" "$(api GET "/api/companies?limit=1" | jq length)" 1
is "agents: ?limit" "$(api GET "/api/companies/$company/agents?limit=1" | jq length)" 1
for route in /api/companies /api/companies/$company/agents /api/companies/$company/issues /api/issues/ACME-2/comments \
        /api/issues/ACME-2/blockers /api/issues/ACME-2/live-runs /api/companies/$company/live-runs \
        /api/agents/$agent/task-sessions; do
        api GET "$route?limit=1001" >/dev/null
        is "a limit past 1000 is refused: $route" "$(status) $(jq -r .error <"$T/body")" "400 limit must be an integer from 1 to 1000"
done

# --- tables ---
like "issue list table" "$("$CORRALCTL" issue list --company "$company")" "ACME-1 +todo +high"
like "company list table" "$("$CORRALCTL" company list)" "Acme Robotics +ACME"

# --- restart: everything is still there ---
before=$(for p in /api/companies /api/companies/$company/agents /api/companies/$company/issues \
        /api/issues/ACME-2/comments /api/companies/$company/activity; do api GET "$p"; echo; done)
stop_daemon
is "corrald exits 0 on SIGTERM" "$DAEMON_STATUS" 0
check "socket removed on exit" test ! -e "$SOCK"
"$CORRALCTL" status >/dev/null 2>&1
is "corralctl: exit 3 when corrald is down" "$?" 3
check "corrald starts again on the same state" start_daemon
after=$(for p in /api/companies /api/companies/$company/agents /api/companies/$company/issues \
        /api/issues/ACME-2/comments /api/companies/$company/activity; do api GET "$p"; echo; done)
is "every row survives the restart" "$(md5sum <<<"$after")" "$(md5sum <<<"$before")"
i3=$(api POST /api/companies/$company/issues '{"title":"After restart"}' | jq -r .identifier)
is "the issue counter continues after a restart" "$i3" ACME-3

# Health's counts are each their own (they were read one field late: an argument order bug).
is "health counts companies, agents, issues, active runs" "$(api GET /api/health | jq -c '[.counts.companies, .counts.agents, .counts.issues, .counts.activeRuns]')" \
        "$(sql "SELECT '[' || (SELECT count(*) FROM companies) || ',' || (SELECT count(*) FROM agents) || ',' ||
                (SELECT count(*) FROM issues) || ',' || (SELECT count(*) FROM heartbeat_runs WHERE status IN ('queued', 'running')) || ']'")"

# --- lists page with a cursor ---
pager=$(api POST /api/companies '{"name":"Pager","issuePrefix":"PG"}' | jq -r .id)
for t in one two three four five; do api POST "/api/companies/$pager/issues" "{\"title\":\"$t\"}" >/dev/null; done
# page PATH: the reply's titles on one line, its Next-Cursor in $T/cursor.
page() {
        curl -s -D "$T/headers" --unix-socket "$SOCK" "http://localhost$1" | jq -r '[.[].title] | join(" ")'
        tr -d '\r' <"$T/headers" | sed -n 's/^[Nn]ext-[Cc]ursor: //p' >"$T/cursor"
}
is "a first page of 2" "$(page "/api/companies/$pager/issues?limit=2")" "one two"
cursor=$(cat "$T/cursor")
like "it names the next page's cursor" "$cursor" '^[0-9a-f]+$'
like "and links to it, keeping the query" "$(tr -d '\r' <"$T/headers" | grep -i '^link:')" \
        "^[Ll]ink: </api/companies/$pager/issues\\?limit=2&after=$cursor>; rel=\"next\"$"
is "the page after the cursor" "$(page "/api/companies/$pager/issues?limit=2&after=$cursor")" "three four"
is "the last page" "$(page "/api/companies/$pager/issues?limit=2&after=$(cat "$T/cursor")")" "five"
is "it has no next cursor" "$(cat "$T/cursor")" ""
api POST "/api/companies/$pager/issues" '{"title":"six"}' >/dev/null
is "a row added meanwhile comes on the page after the old cursor" \
        "$(page "/api/companies/$pager/issues?limit=2&after=$cursor")" "three four"
is "a filter holds across pages" "$(page "/api/companies/$pager/issues?limit=1&status=backlog&after=$cursor")" "three"
is "runs page newest first, like their list" "$(api GET "/api/companies/$company/heartbeat-runs?limit=1" >/dev/null; status)" 200
bad_cursor() { api GET "/api/companies/$pager/issues?after=$1" >/dev/null; status; }
is "a cursor that is not one gets 400" "$(bad_cursor zz)" 400
is "so does a cursor of nonsense in hex" "$(bad_cursor 6869)" 400
like "saying what after must be" "$(api GET "/api/companies/$pager/issues?after=zz" | jq -r .error)" "after must be the nextCursor"
# corralctl follows the pages: more than the API's largest page of 1000.
pad="printf('00000000-0000-4000-8000-%012d', i)"
[ "$BACKEND" = sqlite ] || pad="'00000000-0000-4000-8000-' || lpad(i::text, 12, '0')"
sql "WITH RECURSIVE n(i) AS (SELECT 7 UNION ALL SELECT i + 1 FROM n WHERE i < 1206)
        INSERT INTO issues (id, company_id, title, issue_number, identifier, created_at, updated_at)
        SELECT $pad, '$pager', 'bulk ' || i, i, 'PG-' || i,
               '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z' FROM n;
        UPDATE companies SET issue_counter = 1206 WHERE id = '$pager'"
is "corralctl issue list --limit all follows every page" "$("$CORRALCTL" --json issue list --company "$pager" --limit all | jq length)" 1206
is "--limit 1100 takes two pages and stops" "$("$CORRALCTL" --json issue list --company "$pager" --limit 1100 | jq -r '[length, .[-1].identifier] | join(" ")')" \
        "1100 PG-1100"
is "by default a list shows 200" "$("$CORRALCTL" --json issue list --company "$pager" | jq length)" 200
is "--limit must be a number or all" "$("$CORRALCTL" issue list --company "$pager" --limit lots >/dev/null 2>&1; echo $?)" 2

# --- names: what corralctl takes and shows instead of UUIDs ---
named=$("$CORRALCTL" -q company create --name "Named Co" --prefix NAMED)
ann=$("$CORRALCTL" -q agent create --company "Named Co" --name ann --config '{"command":"/bin/true"}')
is "a company by its name" "$(api GET "/api/agents/$ann" | jq -r .companyId)" "$named"
"$CORRALCTL" -q agent create --company NAMED --name anna --config '{"command":"/bin/true"}' >/dev/null
is "a company by its issue prefix" "$?" 0
"$CORRALCTL" -q issue create --company NAMED --title "named work" --assignee ann >/dev/null
is "an agent by its name" "$(api GET "/api/companies/$named/issues" | jq -r '.[0].assigneeAgentId')" "$ann"
is "an issue by its identifier, in any case" "$("$CORRALCTL" --json issue show named-1 | jq -r .title)" "named work"
is "an agent by a prefix of its id" "$("$CORRALCTL" --json agent show "${ann:0:8}" | jq -r .name)" ann
out=$("$CORRALCTL" issue list --company NAMED)
like "tables show an agent's name, not its id" "$out" "NAMED-1 +backlog +medium +ann +named work"
api GET "/api/lookup?kind=agent&q=${ann:0:1}" >/dev/null
is "a prefix shorter than 4 names nothing" "$(status)" 404
out=$(api GET "/api/lookup?kind=agent&q=nobody")
is "an unknown name is 404" "$(status) $(jq -r .error <<<"$out")" "404 no agent is named 'nobody' or has an id that starts so"
# Two agents of the same name, in two companies: ambiguous, unless the company is given.
"$CORRALCTL" -q agent create --company "$company" --name ann --config '{"command":"/bin/true"}' >/dev/null
out=$("$CORRALCTL" agent show ann 2>&1)
is "an ambiguous name fails" "$?" 1
like "... listing the candidates" "$out" "'ann' names 2 agents: ann \\([0-9a-f-]+\\), ann \\([0-9a-f-]+\\); give more of the id"
is "... and the API lists them" "$(api GET "/api/lookup?kind=agent&q=ann" | jq -r '.candidates | length')" 2
is "within a company the name is one agent" "$(api GET "/api/lookup?kind=agent&q=ann&companyId=$named" | jq -r .id)" "$ann"
is "a run by a prefix of its id" "$("$CORRALCTL" --json run "${run:0:13}" | jq -r .id)" "$run"
api GET "/api/lookup?kind=planet&q=x" >/dev/null
is "an unknown kind is 400" "$(status)" 400

# --- the OpenAPI document ---
api GET /api/openapi.json >"$T/openapi.json"
is "GET /api/openapi.json answers 200" "$(status)" 200
check "... with docs/openapi.json, as it is installed" cmp "$T/openapi.json" "$SRCDIR/docs/openapi.json"
is "... which is OpenAPI 3.1 of this version" "$(jq -r '.openapi + " " + .info.version' "$T/openapi.json")" \
        "3.1.0 $("$CORRALD" --version | awk '{print $2}')"
# The check of every answer (finish) fails on an answer the document does not describe.
if py=$(openapi_python); then
        mkdir "$T/wrong"
        printf 'GET /api/agents/%s 200 application/json\n' "$ann" >"$T/wrong/member"
        api GET "/api/agents/$ann" | jq -c '.+{nickname: "x"}' >>"$T/wrong/member"
        printf 'GET /api/agents/%s 200 application/json\n' "$ann" >"$T/wrong/type"
        api GET "/api/agents/$ann" | jq -c '.id = 1' >>"$T/wrong/type"
        printf 'GET /api/agents/%s 418 application/json\n{"error": "x"}' "$ann" >"$T/wrong/status"
        printf 'GET /api/planets 200 application/json\n[]' >"$T/wrong/path"
        out=$("$py" "$SRCDIR/tests/integration/openapi-check.py" "$SRCDIR/docs/openapi.json" "$T"/wrong/* 2>&1)
        is "the check refuses what the document does not say" "$?" 1
        like "... a member it does not have" "$out" "Additional properties are not allowed \('nickname' was unexpected\)"
        like "... a member of another type" "$out" "id: 1 is not of type 'string'"
        like "... a status it does not list" "$out" "status 418 is not among those of GET /api/agents/\{id\}"
        like "... a path it does not have" "$out" "GET /api/planets -> 200: the document has no such path"
else
        skip_point "python3-jsonschema is not installed: the OpenAPI check is not checked"
fi

finish
