#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# GET /api/events: server-sent events of runs, agents, issues, comments and wakeups, in
# order; a client that reconnects with Last-Event-ID gets what it missed, also across a
# restart of corrald; an agent's stream has its own company only; idle clients and one
# that never reads do not hold up launches; corralctl events prints them. On the cgroup
# backend, where the agent socket knows which run a peer belongs to.
. "$(dirname "$0")/lib.sh"
require curl jq python3
[ "$(id -u)" -eq 0 ] || skip_all "needs root: runs get cgroups of their own"
MOUNT=$(cgroup2_mount)
[ -n "$MOUNT" ] || skip_all "no cgroup v2 hierarchy is mounted"
CG=$MOUNT/corral-it-$$

STREAM_PIDS=()
extra_cleanup() {
        local pid
        for pid in "${STREAM_PIDS[@]}"; do
                kill "$pid" 2>/dev/null
        done
        remove_run_cgroups "$CG"
}

# stream NAME [QUERY]: follow the events into $T/NAME.sse, in the background.
stream() {
        curl -sS -N --unix-socket "$SOCK" "http://localhost/api/events${2:+?$2}" >"$T/$1.sse" 2>&1 &
        STREAM_PIDS+=("$!")
}

# events NAME: the events received, one JSON a line.
events() {
        sed -n 's/^data: //p' "$T/$1.sse" | jq -c 'select(.type)' 2>/dev/null
}

check "corrald starts" start_daemon --sweep-interval-sec 86400 --placement cgroup --cgroup-root "$CG"
company=$(api POST /api/companies '{"name":"Evented","issuePrefix":"EV"}' | jq -r .id)
other=$(api POST /api/companies '{"name":"Elsewhere","issuePrefix":"EW"}' | jq -r .id)
stream all
stream mine "companyId=$company"
stream runs "types=run.status"
sleep 0.5
agent=$(api POST "/api/companies/$company/agents" '{"name":"ev","adapterConfig":{"command":"/bin/true"}}' | jq -r .id)
run=$(api POST "/api/agents/$agent/wakeup" '{"reason":"go"}' | jq -r .id)
wait_run "$run" >/dev/null
issue=$(api POST "/api/companies/$company/issues" '{"title":"evented"}' | jq -r .id)
api POST "/api/issues/$issue/comments" '{"body":"hello"}' >/dev/null
api POST "/api/companies/$other/agents" '{"name":"far","adapterConfig":{"command":"/bin/true"}}' >/dev/null
run_events() { events "$1" | jq -r --arg r "$run" 'select(.type == "run.status" and .entityId == $r) | .data.status' | tr '\n' ' '; }
done_seen() { [ "$(run_events all)" = "queued running succeeded " ]; }
check "a run's statuses arrive in order" wait_for 10 done_seen
like "each event has an id, a type and its data" "$(grep -m1 '^id: ' "$T/all.sse")" '^id: [0-9]+$'
types=$(events all | jq -r .type | sort -u | tr '\n' ' ')
like "agents, wakeups, issues and comments are told too" "$types" "agent.status comment.created issue.created run.status wakeup"
ids=$(events all | jq -r .id)
is "ids only grow" "$ids" "$(sort -n <<<"$ids")"
is "a company's stream has its own company only" "$(events mine | jq -r .companyId | sort -u)" "$company"
# Events go out within 10 ms of their change: the last one, the other company's agent, may
# come after the run's end.
other_seen() { events all | jq -r .companyId | grep -qx "$other"; }
check "... the other stream has the other company too" wait_for 10 other_seen
is "a stream of run statuses has nothing else" "$(events runs | jq -r .type | sort -u)" run.status

# --- a reconnect gets what it missed, from the id it saw ---
stored_newest() { curl -sS --unix-socket "$SOCK" "http://localhost/api/events?after=0&follow=false" | sed -n 's/^id: //p' | tail -n 1; }
caught_up() { [ "$(events all | jq -r .id | tail -n 1)" = "$(stored_newest)" ]; }
check "the stream has every stored event" wait_for 10 caught_up
last=$(events all | jq -r .id | sed -n 3p)
missed=$(events all | jq -r .id | awk -v l="$last" '$1 > l' | tr '\n' ' ')
got=$(curl -sS --unix-socket "$SOCK" -H "Last-Event-ID: $last" "http://localhost/api/events?follow=false" |
        sed -n 's/^id: //p' | tr '\n' ' ')
is "Last-Event-ID: the events after it" "$got" "$missed"
got=$(curl -sS --unix-socket "$SOCK" "http://localhost/api/events?after=$last&follow=false" | sed -n 's/^id: //p' | tr '\n' ' ')
is "?after= does the same" "$got" "$missed"
stop_daemon
check "corrald starts again" start_daemon --sweep-interval-sec 86400 --placement cgroup --cgroup-root "$CG"
got=$(curl -sS --unix-socket "$SOCK" -H "Last-Event-ID: $last" "http://localhost/api/events?follow=false" |
        sed -n 's/^id: //p' | tr '\n' ' ')
is "... across a restart of corrald" "$got" "$missed"
api GET "/api/events?after=nope" >/dev/null
is "a bad starting point is 400" "$(status)" 400
api GET "/api/events?follow=maybe" >/dev/null
is "a bad follow is 400" "$(status)" 400

# --- an agent's own stream: its company only ---
cat >"$T/agent-events.sh" <<EOF
#!/bin/sh
curl -sS -N --max-time 3 --unix-socket "\$CORRAL_SOCKET" "http://corral/api/events?after=0" >"$T/agent.sse" 2>&1
curl -sS -o /dev/null -w '%{http_code}' --unix-socket "\$CORRAL_SOCKET" "http://corral/api/events?companyId=$other" >"$T/agent-other.code"
exit 0
EOF
chmod +x "$T/agent-events.sh"
watcher=$(api POST "/api/companies/$company/agents" "{\"name\":\"watcher\",\"adapterConfig\":{\"command\":\"$T/agent-events.sh\",\"timeoutSec\":30}}" | jq -r .id)
wait_run "$(api POST "/api/agents/$watcher/wakeup" '{}' | jq -r .id)" 30 >/dev/null
is "an agent's stream has its own company's events only" "$(events agent | jq -r .companyId | sort -u)" "$company"
is "... and another company's is refused" "$(cat "$T/agent-other.code")" 403

# --- clients that do not read do not hold up the loop ---
for i in $(seq 20); do
        stream "idle$i"
done
# One that never reads: a pipe nobody drains, so its socket fills.
python3 - "$SOCK" >"$T/stuck.log" 2>&1 <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.sendall(b"GET /api/events?after=0 HTTP/1.1\r\nHost: corral\r\n\r\n")
time.sleep(60)
EOF
STREAM_PIDS+=("$!")
sleep 0.5
start=$(date +%s%N)
for i in $(seq 20); do
        r=$(api POST "/api/agents/$agent/wakeup" "{\"reason\":\"load $i\"}" | jq -r .id)
done
wait_run "$r" >/dev/null
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "# 20 wakes with 21 subscribers, one stuck: ${ms} ms"
check "wakes are answered while 21 streams are open" test "$(status)" = 200
idle_done() { [ "$(events idle1 | jq -r --arg r "$r" 'select(.entityId == $r) | .data.status' | tail -n 1)" = succeeded ]; }
check "a live stream still gets what is new" wait_for 10 idle_done

# --- corralctl events ---
out=$("$CORRALCTL" events --company Evented --after 0)
like "corralctl events prints them, a line each" "$out" "run.status +$run +succeeded"
is "--json prints the events as JSON lines" "$("$CORRALCTL" --json events --after 0 | head -n 1 | jq -r .type)" agent.status

# --- a run's output, asked for by agent or by run ---
cat >"$T/talker" <<'EOF'
#!/bin/sh
echo one
sleep 1
echo two >&2
sleep 1
printf 'caf\351\n'
EOF
chmod 755 "$T/talker"
talker=$(api POST "/api/companies/$company/agents" "{\"name\":\"talker\",\"adapterConfig\":{\"command\":\"$T/talker\"}}" | jq -r .id)
stream logs "companyId=$company&logs=$talker"
stream nologs "companyId=$company"
sleep 0.5
trun=$(api POST "/api/agents/$talker/wakeup" '{}' | jq -r .id)
wait_run "$trun" >/dev/null
log_events() { sed -n 's/^data: //p' "$T/$1.sse" | jq -c --arg r "$trun" 'select(.runId == $r and .stream)' 2>/dev/null; }
saw_all() { log_events logs | grep -q caf; }
check "the output of an agent's run comes as run.log events" wait_for 10 saw_all
is "stdout and stderr, in order" "$(log_events logs | jq -r '.stream + " " + .text' | tr '\n' ' ')" \
        "stdout one  stderr two  stdout caf$(printf '\xef\xbf\xbd')  "
is "with the run's agent and company" "$(log_events logs | jq -r '.agentId + " " + .companyId' | sort -u)" "$talker $company"
check "they have no id: a reconnect resumes the stored events" sh -c "! grep -B2 'event: run.log' '$T/logs.sse' | grep -q '^id:'"
is "a stream that did not ask has none" "$(grep -c 'event: run.log' "$T/nologs.sse")" 0
api GET "/api/events?logs=00000000-0000-4000-8000-000000000000" >/dev/null
is "an unknown id is refused" "$(status)" 404
api GET "/api/events?logs=" >/dev/null
is "an empty list is refused" "$(status)" 400
api GET "/api/events?follow=false&logs=$(printf "$talker,%.0s" $(seq 65))" >/dev/null
is "more than 64 ids are refused" "$(status)" 400
# A run asked for by its own id, while it runs.
lrun=$(api POST "/api/agents/$talker/wakeup" '{}' | jq -r .id)
wait_for 10 sh -c "curl -s --unix-socket '$SOCK' http://l/api/heartbeat-runs/$lrun | jq -e '.processPid != null' >/dev/null"
out=$(timeout 10 "$CORRALCTL" events -f --logs "$lrun" 2>&1 | grep -m1 -F "| two")
like "corralctl events --logs prints a run's output, a line each" "$out" "^${lrun:0:8} stderr\\| two$"
wait_run "$lrun" >/dev/null

# The data of every event the streams above were sent, against the document's schemas.
if py=$(openapi_python); then
        for f in "$T"/*.sse; do
                cat "$f"
                echo
        done >"$T/every.sse"
        check "every event's data validates against the OpenAPI document" \
                "$py" "$SRCDIR/tests/integration/openapi-check.py" "$SRCDIR/docs/openapi.json" --events "$T/every.sse"
else
        skip_point "python3-jsonschema is not installed: events not checked against the OpenAPI document"
fi

finish
