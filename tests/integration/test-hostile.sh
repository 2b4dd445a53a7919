#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Peers that try to stall the API (corrald(8), LIMITS): requests over a limit are answered at
# once, a peer that sends slowly is cut off at the deadline, one run's flood of connections
# does not keep another run from being answered, and the listener never stops accepting.
# On the cgroup backend, where the agent socket knows which run a peer belongs to.
. "$(dirname "$0")/lib.sh"
require curl jq python3

[ "$(id -u)" -eq 0 ] || skip_all "needs root: runs get cgroups of their own"
MOUNT=$(cgroup2_mount)
[ -n "$MOUNT" ] || skip_all "no cgroup v2 hierarchy is mounted"
CG=$MOUNT/corral-it-$$
CLIENT="python3 $(cd "$(dirname "$0")" && pwd)/hostile-client.py"

extra_cleanup() {
        touch "$T/release"
        remove_run_cgroups "$CG"
}

check "corrald starts on the cgroup backend" start_daemon --placement cgroup --cgroup-root "$CG"

# --- limits are answered at once, and free their connection ---
# Five requests with 600 query arguments each, held open: before, libmicrohttpd ran out of
# connection memory, answered nothing and kept the connections until their timeout.
is "600 query arguments get 431, five times" "$($CLIENT args "$SOCK" 600 5 | sort | uniq -c | sed 's/^ *//')" \
        "5 HTTP/1.1 431 Request Header Fields Too Large"
is "32 query arguments are fine" "$($CLIENT args "$SOCK" 32 1)" "HTTP/1.1 200 OK"
long=$(head -c 9000 /dev/zero | tr '\0' a)
is "a 9000-byte URL gets 414" "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" "http://corral/api/health?a=$long")" 414
big=$(head -c 40000 /dev/zero | tr '\0' a)
is "a 40 KiB header gets 431" "$(curl -s -m 20 -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -H "X-Big: $big" http://corral/api/health)" 431
head -c 1000000 /dev/zero | tr '\0' a | sed 's/^/{"name":"Big","issuePrefix":"BIG","description":"/; s/$/"}/' >"$T/big.json"
is "a valid 1 MB body is read and answered" "$(curl -s -m 20 -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" \
        -X POST -H 'Content-Type: application/json' --data-binary @"$T/big.json" http://corral/api/companies)" 201
head -c 2000000 /dev/zero | tr '\0' a >"$T/huge"
is "a chunked body over 1 MiB gets 413" "$(curl -s -m 20 -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -X POST \
        -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json' -T "$T/huge" http://corral/api/companies)" 413
head -c 20000000 /dev/zero | tr '\0' a >"$T/enormous"
like "a chunked body past 8 MiB: its connection is closed, with no answer but 100 Continue" \
        "$(curl -s -m 20 -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -X POST -H 'Transfer-Encoding: chunked' \
                -H 'Content-Type: application/json' -T "$T/enormous" http://corral/api/companies)" '^(000|100)$'

# --- the permanent stall: the recipe above, then more connections than the server serves ---
$CLIENT args "$SOCK" 600 5 >/dev/null
$CLIENT flood "$SOCK" 1100 "$T/release-stall" >"$T/stall.out" &
staller=$!
wait_for 30 test -s "$T/stall.out"
like "1,100 connections of one uid: those over its cap are closed at once" "$(cat "$T/stall.out")" \
        "^opened 1100 closed-by-peer (58[89]|59[0-9])$"
touch "$T/release-stall"
wait "$staller"
is "then corrald still answers" "$($CLIENT get "$SOCK" /api/health)" 200

# --- a slow peer is cut off at the deadline (10 s), whatever it still sends ---
$CLIENT slow "$SOCK" header >"$T/slow-header" &
slow1=$!
$CLIENT slow "$SOCK" body >"$T/slow-body" &
slow2=$!
wait "$slow1" "$slow2"
like "headers a byte a second: closed at the deadline" "$(cat "$T/slow-header")" "^closed after (9|1[0-2]) s$"
like "a body a byte a second: closed at the deadline" "$(cat "$T/slow-body")" "^closed after (9|1[0-2]) s$"

# --- one run's flood of idle connections does not shut out another run ---
company=$(api POST /api/companies '{"name":"Acme","issuePrefix":"ACME"}' | jq -r .id)
cat >"$T/flood.sh" <<EOF
#!/bin/sh
exec $CLIENT flood "\$CORRAL_SOCKET" 1100 "$T/release"
EOF
cat >"$T/ask.sh" <<EOF
#!/bin/sh
$CLIENT get "\$CORRAL_SOCKET" /api/health
EOF
chmod 755 "$T/flood.sh" "$T/ask.sh"
flooder=$(api POST "/api/companies/$company/agents" "{\"name\":\"flooder\",\"adapterConfig\":{\"command\":\"$T/flood.sh\"}}" | jq -r .id)
asker=$(api POST "/api/companies/$company/agents" "{\"name\":\"asker\",\"adapterConfig\":{\"command\":\"$T/ask.sh\"}}" | jq -r .id)
flood_run=$(api POST "/api/agents/$flooder/heartbeat/invoke" | jq -r .id)
flooding() { grep -q "opened" "$STATE/runs/$flood_run/log.ndjson" 2>/dev/null; }
check "the flooding run holds its connections" wait_for 30 flooding
like "of its 1,100 connections, all past its cap of 32 were closed at once" \
        "$(jq -r 'select(.stream == "stdout") | .chunk' "$STATE/runs/$flood_run/log.ndjson")" "^opened 1100 closed-by-peer 1068$"
ask_run=$(api POST "/api/agents/$asker/heartbeat/invoke" | jq -r .id)
check "meanwhile another run is answered" wait_run "$ask_run" 30
is "with 200" "$(jq -r 'select(.stream == "stdout") | .chunk' "$STATE/runs/$ask_run/log.ndjson" | tr -d '\n')" 200
check "corrald says it refused connections over the cap" log_has "Agent socket: refused [0-9]+ connection\(s\) of peers over their cap of 32"
touch "$T/release"
check "the flooding run ends" wait_run "$flood_run" 30
is "the board is answered all along" "$($CLIENT get "$SOCK" /api/health)" 200

# --- quotas: wakes and comments an agent may ask for in a minute, the size of a comment ---
issue=$(api POST "/api/companies/$company/issues" '{"title":"Quota target","status":"backlog"}' | jq -r .id)
head -c 300000 /dev/zero | tr '\0' x | sed 's/^/{"body":"/; s/$/"}/' >"$T/huge-comment.json"
cat >"$T/greedy.sh" <<'AGENT'
#!/bin/sh
call() { curl -s -o /dev/null -w '%{http_code} ' --unix-socket "$CORRAL_SOCKET" -X POST -H 'Content-Type: application/json' "$@"; }
for i in $(seq 70); do call -d '{"reason":"again"}' "http://corral/api/agents/$CORRAL_AGENT_ID/wakeup"; done
echo
for i in $(seq 61); do call -d '{"body":"spam"}' "http://corral/api/issues/$ISSUE/comments"; done
echo
call --data-binary @"$HUGE" "http://corral/api/issues/$ISSUE/comments"
echo
curl -s -D - -o /dev/null --unix-socket "$CORRAL_SOCKET" -X POST -H 'Content-Type: application/json' -d '{}' \
        "http://corral/api/agents/$CORRAL_AGENT_ID/wakeup" | tr -d '\r' | grep -i '^retry-after'
AGENT
chmod 755 "$T/greedy.sh"
greedy=$(api POST "/api/companies/$company/agents" "{\"name\":\"greedy\",\"adapterConfig\":{\"command\":\"$T/greedy.sh\",\"env\":{\"ISSUE\":\"$issue\",\"HUGE\":\"$T/huge-comment.json\"}}}" | jq -r .id)
greedy_run=$(api POST "/api/agents/$greedy/heartbeat/invoke" | jq -r .id)
check "the greedy run ends" wait_run "$greedy_run" 60
out=$(jq -j 'select(.stream == "stdout") | .chunk' "$STATE/runs/$greedy_run/log.ndjson" | tr -d '\r')
counts() { sed -n "${1}p" <<<"$out" | tr ' ' '\n' | grep -v '^$' | sort | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' '; }
is "of 70 wakes in a minute, 60 are taken and 10 get 429" "$(counts 1)" "202x60 429x10 "
is "of 61 comments, 60 are posted and 1 gets 429" "$(counts 2)" "201x60 429x1 "
is "a 300 KB comment gets 413" "$(sed -n 3p <<<"$out" | tr -d ' ')" 413
like "429 comes with Retry-After" "$(sed -n 4p <<<"$out")" "^[Rr]etry-[Aa]fter: [0-9]+$"
is "the board has no quota" "$(for i in $(seq 3); do api POST "/api/agents/$greedy/wakeup" '{}' >/dev/null; status; echo; done | sort -u)" 202

finish
