#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Bad input: each case gets the right 4xx and error text, the database does
# not change at all, and corrald stays up.
. "$(dirname "$0")/lib.sh"
require curl jq sqlite3 socat

# A lease renewed every 20 minutes: the host's row changes with time (every third of its
# lease), not with input, and the dumps below must differ by input alone.
check "corrald starts" start_daemon --host-lease-sec 3600
company=$(api POST /api/companies '{"name":"Acme","issuePrefix":"ACME"}' | jq -r .id)
other=$(api POST /api/companies '{"name":"Other","issuePrefix":"OTH"}' | jq -r .id)
agent=$(api POST /api/companies/$company/agents '{"name":"eng"}' | jq -r .id)
foreign=$(api POST /api/companies/$other/agents '{"name":"spy"}' | jq -r .id)
issue=$(api POST /api/companies/$company/issues '{"title":"t"}' | jq -r .id)
missing=00000000-0000-4000-8000-000000000000

before=$(db_dump)

# bad METHOD PATH BODY CODE ERROR-PATTERN
bad() {
        local reply
        reply=$(api "$1" "$2" "$3")
        if [ "$(status)" = "$4" ] && jq -e --arg p "$5" '.error | test($p)' <<<"$reply" >/dev/null 2>&1; then
                ok "$1 $2 ${3:0:40} -> $4"
        else
                not_ok "$1 $2 ${3:0:40} -> $4"
                echo "#   got $(status): $reply"
                echo "#   expected $4 matching: $5"
        fi
}

bad POST /api/companies '{"name":' 400 "malformed JSON at byte"
bad POST /api/companies 'not json' 400 "malformed JSON"
bad POST /api/companies '{"name":"x"} trailing' 400 "malformed JSON"
bad POST /api/companies '' 400 "request body must be a JSON object"
bad POST /api/companies '[1,2,3]' 400 "request body must be a JSON object"
bad POST /api/companies '"text"' 400 "request body must be a JSON object"
bad POST /api/companies '{}' 400 "field 'name' is required"
bad POST /api/companies '{"name":""}' 400 "field 'name' must not be empty"
bad POST /api/companies '{"name":42}' 400 "field 'name' must be a string"
bad POST /api/companies '{"name":"x","status":"bankrupt"}' 400 "invalid value 'bankrupt' for field 'status'"
bad POST /api/companies '{"name":"x","issuePrefix":"acme"}' 400 "issuePrefix must be"
bad POST /api/companies '{"name":"x","issuePrefix":"ACME"}' 409 "issuePrefix 'ACME' is already used"
bad POST /api/companies '{"name":"x","budgetMonthlyCents":-1}' 400 "must be from 0 .no budget. to 1000000000000"
bad POST /api/companies '{"name":"x","budgetMonthlyCents":1e15}' 400 "must be from 0 .no budget. to 1000000000000"
bad POST /api/companies '{"name":"x","budgetMonthlyCents":"lots"}' 400 "must be an integer"
bad POST /api/companies '{"name":"x","id":"mine"}' 400 "field 'id' cannot be set"
bad POST /api/companies '{"name":"x","colour":"red"}' 400 "unknown field 'colour' for company"
# Input hygiene: before, invalid UTF-8 was stored and echoed, a NUL cut the string short and
# the last of two equal keys won.
bad POST /api/companies $'{"name":"caf\xe9"}' 400 "field 'name' is not valid UTF-8"
bad POST /api/companies '{"name":"a\u0000b"}' 400 "field 'name' holds a NUL character"
printf '{"name":"a\0b"}' >"$T/nul.json"
bad POST /api/companies @"$T/nul.json" 400 "the request body holds a NUL byte at byte 10"
bad POST /api/companies '{"name":"a","name":"b"}' 400 "the request body has the key 'name' more than once"
bad POST /api/companies/$company/agents '{"name":"x","adapterConfig":{"env":{"A":"1","A":"2"}}}' 400 \
        "field 'adapterConfig.env' has the key 'A' more than once"
bad POST /api/companies '{"name":"\ud800"}' 400 "field 'name' is not valid UTF-8 \\(a lone surrogate"
bad PATCH /api/companies/$company '{"issuePrefix":"NEW"}' 400 "field 'issuePrefix' cannot be set"
bad PATCH /api/companies/$company '{"name":null}' 400 "field 'name' must not be null"
bad GET /api/companies/$missing '' 404 "company '$missing' not found"
bad PATCH /api/companies/$missing '{"name":"x"}' 404 "company .* not found"
bad GET "/api/companies/$company/activity?limit=0" '' 400 "limit must be an integer from 1 to 1000"
bad GET "/api/companies/$company/activity?limit=abc" '' 400 "limit must be"

bad POST /api/companies/$missing/agents '{"name":"x"}' 404 "company .* not found"
bad POST /api/companies/$company/agents '{"name":"x","adapterType":"http"}' 400 "invalid value 'http' for field 'adapterType'"
bad POST /api/companies/$company/agents '{"name":"x","adapterConfig":"{}"}' 400 "field 'adapterConfig' must be a JSON object"
bad POST /api/companies/$company/agents '{"name":"x","status":"running"}' 400 "field 'status' cannot be set"
bad POST /api/companies/$company/agents "{\"name\":\"x\",\"companyId\":\"$other\"}" 400 "companyId in the body does not match"
bad POST /api/companies/$company/agents '{"name":"x","role":""}' 400 "role must not be empty"
bad POST /api/companies/$company/agents '{"name":"x","budgetMonthlyCents":-5}' 400 "budgetMonthlyCents must be from 0"
bad PATCH /api/agents/$agent '{"spentMonthlyCents":0}' 400 "field 'spentMonthlyCents' cannot be set"
bad POST /api/companies/$company/agents '{"name":"x","adapterConfig":{"maxCostCentsPerRun":5}}' 400 \
        "adapterConfig.maxCostCentsPerRun is for the coding CLIs"
bad POST /api/companies/$company/agents '{"name":"x","adapterType":"claude_local","adapterConfig":{"maxTokensPerRun":-1}}' 400 \
        "maxTokensPerRun"
bad POST /api/companies/$company/agents '{"name":"x","adapterType":"claude_local","adapterConfig":{"billingType":"free"}}' 400 \
        "billingType must be"
bad GET "/api/companies/$company/costs?month=2026-13" '' 400 "month must be a month as YYYY-MM"
bad GET "/api/companies/$company/costs?month=x" '' 400 "month must be a month as YYYY-MM"
bad GET /api/companies/$missing/costs '' 404 "company .* not found"
bad GET /api/agents/$missing/costs '' 404 "agent .* not found"
bad GET /api/agents/$missing '' 404 "agent .* not found"
bad POST /api/agents/$missing/pause '' 404 "agent .* not found"
bad POST /api/agents/$agent/resume '' 409 "agent is not paused"
bad POST /api/agents/$agent/pause '[1]' 400 "request body must be a JSON object"

bad POST /api/companies/$company/issues '{"title":"x","status":"finished"}' 400 "invalid value 'finished' for field 'status'"
bad POST /api/companies/$company/issues '{"title":"x","priority":"urgent"}' 400 "invalid value 'urgent' for field 'priority'"
bad POST /api/companies/$company/issues "{\"title\":\"x\",\"assigneeAgentId\":\"$agent\",\"assigneeUserId\":\"u1\"}" 422 "at most one assignee"
bad POST /api/companies/$company/issues "{\"title\":\"x\",\"assigneeAgentId\":\"$missing\"}" 422 "no such agent in this company"
bad POST /api/companies/$company/issues "{\"title\":\"x\",\"assigneeAgentId\":\"$foreign\"}" 422 "no such agent in this company"
bad POST /api/companies/$company/issues "{\"title\":\"x\",\"parentId\":\"$missing\"}" 422 "no such issue in this company"
bad POST /api/companies/$company/issues '{"title":"x","identifier":"ACME-99"}' 400 "field 'identifier' cannot be set"
bad PATCH /api/issues/$issue "{\"assigneeAgentId\":\"$agent\",\"assigneeUserId\":\"u1\"}" 422 "at most one assignee"
bad PATCH /api/issues/$issue "{\"parentId\":\"$issue\"}" 422 "cannot be its own parent"
bad PATCH /api/issues/$issue '{"executionRunId":"r"}' 400 "field 'executionRunId' cannot be set"
bad PATCH /api/issues/$issue '{"comment":""}' 400 "field 'comment' must be a non-empty string"
bad PATCH /api/issues/$issue '{"status":"todo","comment":7}' 400 "field 'comment' must be a non-empty string"
bad GET /api/issues/ACME-999 '' 404 "issue 'ACME-999' not found"
bad GET /api/issues/$missing/comments '' 404 "issue .* not found"
bad GET "/api/companies/$company/issues?status=nope" '' 400 "invalid status 'nope'"
bad POST /api/issues/$issue/comments '{}' 400 "field 'body' is required"
bad POST /api/issues/$issue/comments '{"body":"x","authorAgentId":"a"}' 400 "field 'authorAgentId' cannot be set"
bad GET /api/issues/$issue/comments/$missing '' 404 "comment .* not found"

bad GET /api/nothing '' 404 "no such route"
bad GET / '' 404 "no such route"
bad DELETE /api/companies '' 405 "method not allowed"
bad PUT /api/issues/$issue '{}' 405 "method not allowed"
allow=$(curl -sS --unix-socket "$SOCK" -X DELETE -D - -o /dev/null http://localhost/api/issues/$issue | tr -d '\r' |
        sed -n 's/^Allow: //Ip')
is "405 names the allowed methods" "$allow" "GET, PATCH"

# Over 1 MiB: refused whole, by Content-Length and when streamed without one.
head -c 1100000 /dev/zero | tr '\0' 'a' | sed 's/^/{"name":"/; s/$/"}/' >"$T/big.json"
bad POST /api/companies @"$T/big.json" 413 "larger than 1 MiB"
reply=$(curl -sS --unix-socket "$SOCK" -X POST -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json' \
        --data-binary @"$T/big.json" -o - -w ' %{http_code}' http://localhost/api/companies)
like "a chunked body over 1 MiB gets 413" "$reply" "larger than 1 MiB.* 413$"
# Just under the limit is fine for long text (not written: the description is checked, then a bad field fails it).
head -c 1000000 /dev/zero | tr '\0' 'a' | sed 's/^/{"name":"x","bogus":1,"description":"/; s/$/"}/' >"$T/near.json"
bad POST /api/companies @"$T/near.json" 400 "unknown field 'bogus'"

# Garbage that is not HTTP at all.
printf 'this is not http\r\n\r\n' | timeout 5 socat -t 1 - UNIX-CONNECT:"$SOCK" >/dev/null 2>&1
printf 'GET /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n' | timeout 5 socat -t 1 - UNIX-CONNECT:"$SOCK" >/dev/null 2>&1
head -c 65536 /dev/urandom | timeout 5 socat -t 1 - UNIX-CONNECT:"$SOCK" >/dev/null 2>&1
printf 'POST /api/companies HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"na' | timeout 5 socat -t 1 - UNIX-CONNECT:"$SOCK" >/dev/null 2>&1
check "corrald still answers after garbage" "$CORRALCTL" status

after=$(db_dump)
is "the database did not change" "$(md5sum <<<"$after")" "$(md5sum <<<"$before")"

# corralctl's exit codes.
"$CORRALCTL" issue show ACME-999 >/dev/null 2>&1
is "corralctl: exit 1 on an API error" "$?" 1
"$CORRALCTL" issue frob >/dev/null 2>&1
is "corralctl: exit 2 on an unknown verb" "$?" 2
"$CORRALCTL" agent create --name x >/dev/null 2>&1
is "corralctl: exit 2 on a missing option" "$?" 2
"$CORRALCTL" agent create --company "$company" --name x --config '{bad' >/dev/null 2>&1
is "corralctl: exit 2 on invalid JSON in an option" "$?" 2
"$CORRALCTL" issue show >/dev/null 2>&1
is "corralctl: exit 2 on a missing argument" "$?" 2
"$CORRALCTL" --socket "$T/nowhere.sock" status >/dev/null 2>&1
is "corralctl: exit 3 when nothing listens" "$?" 3
err=$("$CORRALCTL" issue show ACME-999 2>&1)
like "corralctl prints the API's error" "$err" "no issue is named 'ACME-999' or has an id that starts so \(HTTP 404\)"
err=$("$CORRALCTL" issue show 00000000-0000-4000-8000-000000000999 2>&1)
like "... for a whole id, the route's own" "$err" "issue '00000000-0000-4000-8000-000000000999' not found \(HTTP 404\)"

# Every verb has a --help that exits 0.
while read -r verb; do
        # shellcheck disable=SC2086
        out=$("$CORRALCTL" $verb --help 2>&1)
        rc=$?
        if [ "$rc" -eq 0 ] && grep -q "Usage: corralctl" <<<"$out"; then
                ok "corralctl $verb --help"
        else
                not_ok "corralctl $verb --help (exit $rc)"
        fi
done < <("$CORRALCTL" --help | sed -n 's/^  \([a-z]\+\)\( \(list\|create\|show\|update\|pause\|resume\|terminate\|add\|state\|reset-session\|prune\|approve\|drain\)\)\?\b.*/\1\2/p')

stop_daemon
is "corrald exits 0 after all of it" "$DAEMON_STATUS" 0
finish
