#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Two corralds on one PostgreSQL database, as two hosts (make check runs this as
# tests/integration/pg/test-hosts.pg only): each has its row and lease, each run records
# the host that claimed it, wakes through either API run once each, and a drained host
# claims nothing new while the other takes its work.
. "$(dirname "$0")/lib.sh"
require curl jq psql
[ "$BACKEND" = postgresql ] || skip_all "this test is of PostgreSQL (run it as tests/integration/pg/test-hosts.pg)"

SOCK2=$T/corrald2.sock
PID2=
extra_cleanup() {
        if [ -n "$PID2" ]; then
                kill -TERM "$PID2" 2>/dev/null
                wait "$PID2" 2>/dev/null
        fi
}
api2() { SOCK=$SOCK2 api "$@"; }

check "host one starts" start_daemon --host-id host-one --host-lease-sec 3 --sweep-interval-sec 1
"$CORRALD" --state-dir "$T/state2" --database "$DATABASE" --socket "$SOCK2" --agent-socket "$T/agent2.sock" --placement none \
        --sandbox no --log-level debug --host-id host-two --host-lease-sec 3 --sweep-interval-sec 1 >>"$T/corrald2.log" 2>&1 &
PID2=$!
up2() { CORRAL_SOCKET=$SOCK2 "$CORRALCTL" status >/dev/null 2>&1; }
check "host two starts on the same database" wait_for 10 up2

hosts=$(api GET /api/hosts)
is "both hosts are listed" "$(jq -r '[.[].id] | sort | join(" ")' <<<"$hosts")" "host-one host-two"
is "each is live, at its first epoch" "$(jq -r '[.[] | .status + "/" + (.epoch | tostring)] | join(" ")' <<<"$hosts")" \
        "live/1 live/1"
is "the answering host says it is itself" "$(jq -r '.[] | select(.self) | .id' <<<"$hosts")" host-one
is "health names this host" "$(api2 GET /api/health | jq -r .host.id)" host-two
CORRAL_SOCKET=$SOCK2 "$CORRALCTL" host list >"$T/hosts.txt"
is "corralctl host list shows them, live, the answering one marked" \
        "$(awk 'NR > 1 { print $1, $3, $NF }' "$T/hosts.txt" | tr '\n' ' ')" "host-one live no host-two live yes "
lease1=$(jq -r '.[] | select(.id == "host-one") | .leaseExpiresAt' <<<"$hosts")
renewed() { [ "$(api GET /api/hosts | jq -r '.[] | select(.id == "host-one") | .leaseExpiresAt')" != "$lease1" ]; }
check "a host renews its lease" wait_for 10 renewed

company=$(api POST /api/companies '{"name":"Hosts","issuePrefix":"HO"}' | jq -r .id)
agents=()
for i in 1 2 3 4; do
        agents+=("$(api POST "/api/companies/$company/agents" \
                "{\"name\":\"a$i\",\"adapterConfig\":{\"command\":\"/bin/sh\",\"args\":[\"-c\",\"echo hello\"]}}" | jq -r .id)")
done
runs=()
for round in 1 2 3; do
        for i in 0 1 2 3; do
                if [ $((i % 2)) -eq 0 ]; then
                        runs+=("$(api POST "/api/agents/${agents[$i]}/wakeup" '{}' | jq -r .id)")
                else
                        runs+=("$(api2 POST "/api/agents/${agents[$i]}/wakeup" '{}' | jq -r .id)")
                fi
        done
        for r in "${runs[@]}"; do wait_run "$r" >/dev/null; done
done
is "12 wakes through both APIs made 12 runs" "$(printf '%s\n' "${runs[@]}" | sort -u | wc -l)" 12
is "each succeeded once" "$(sql "SELECT count(*) FROM heartbeat_runs WHERE company_id = '$company' AND status = 'succeeded'")" 12
is "each records the host that claimed it" \
        "$(sql "SELECT count(*) FROM heartbeat_runs WHERE company_id = '$company' AND host_id IN ('host-one', 'host-two')")" 12
is "both hosts ran some" "$(sql "SELECT count(DISTINCT host_id) FROM heartbeat_runs WHERE company_id = '$company'")" 2

# A drained host claims nothing; the other takes what it is woken for.
is "host one drains" "$(CORRAL_SOCKET=$SOCK "$CORRALCTL" --json host drain host-one | jq -r .status)" draining
api POST /api/hosts/no-such-host/drain >/dev/null
is "an unknown host is 404" "$(status)" 404
late=$(api POST "/api/agents/${agents[0]}/wakeup" '{}' | jq -r .id)
final=$(wait_run "$late")
is "a wake through the drained host's API still runs" "$(jq -r .status <<<"$final")" succeeded
is "on the other host" "$(jq -r .hostId <<<"$final")" host-two

# With both drained nothing is claimed; host two resumed through host one's API claims it.
api2 POST /api/hosts/host-two/drain >/dev/null
is "host two drains through its own API" "$(status)" 200
held=$(api POST "/api/agents/${agents[1]}/wakeup" '{}' | jq -r .id)
sleep 2.5 # two sweeps of each
is "no drained host claims a run" "$(api GET "/api/heartbeat-runs/$held" | jq -r .status)" queued
is "host two is resumed through host one's API" \
        "$(CORRAL_SOCKET=$SOCK "$CORRALCTL" --json host resume host-two | jq -r .status)" live
final=$(wait_run "$held")
is "... and runs what was queued" "$(jq -r '.status + "/" + .hostId' <<<"$final")" succeeded/host-two
is "resuming a live host changes nothing" "$(api POST /api/hosts/host-two/resume | jq -r '.status + "/" + (.epoch | tostring)')" live/1
api POST /api/hosts/no-such-host/resume >/dev/null
is "resuming an unknown host is 404" "$(status)" 404
is "host one is resumed by its own API" "$(api POST /api/hosts/host-one/resume | jq -r .status)" live

kill -TERM "$PID2"
wait "$PID2"
is "host two exits 0" "$?" 0
PID2=
stop_daemon
is "host one exits 0" "$DAEMON_STATUS" 0
finish
