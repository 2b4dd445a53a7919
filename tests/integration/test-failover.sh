#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Three corrald hosts on one PostgreSQL database (make check runs this as
# tests/integration/pg/test-failover.pg only), each with its own state directory, cgroup
# root, sockets and host id:
# - 600 trivial runs over 20 agents, woken through all three APIs: each runs exactly once,
#   and maxConcurrentRuns and the issue execution lock hold across the hosts; idle hosts
#   hear of work by NOTIFY (the safety sweep is 10 minutes here);
# - host death: a corrald SIGKILLed and its runs' cgroups killed (the machine is gone):
#   after its lease, its run is process_lost, naming the host, retried once elsewhere, and
#   the issue's lock moves with it;
# - zombie host: a corrald SIGSTOPped past its lease, the others take over, SIGCONT: it
#   kills its stale run, writes nothing of it, and rejoins with a new epoch;
# - a corrald SIGKILLed with its runs alive, and left down: its shims kill their agents by
#   the lease, before the others retry them.
. "$(dirname "$0")/lib.sh"
require curl jq psql
[ "$BACKEND" = postgresql ] || skip_all "this test is of PostgreSQL (run it as tests/integration/pg/test-failover.pg)"
[ "$(id -u)" -eq 0 ] || skip_all "needs root to create cgroups"
MOUNT=$(cgroup2_mount)
[ -n "$MOUNT" ] || skip_all "no cgroup v2 hierarchy is mounted"
LEASE=3
PER_HOST=${CORRAL_FAILOVER_PER_HOST:-200} # wakes through each host: 600 runs
MARK=corral-failover-$$

. "$(dirname "$0")/hosts-lib.sh"
HOST_OPTIONS=(--host-lease-sec $LEASE --sweep-interval-sec 600)

host_field() { api GET /api/hosts | jq -r --arg h "$1" ".[] | select(.id == \$h) | $2"; }

for n in 1 2 3; do check "host $n starts" host_start $n; done
SOCK=$T/c1.sock
is "three live hosts" "$(on 2 GET /api/hosts | jq -r '[.[] | select(.status == "live") | .id] | sort | join(" ")')" \
        "host-1 host-2 host-3"

# ---- 600 runs over 20 agents, through the three APIs ----
company=$(on 1 POST /api/companies '{"name":"Failover","issuePrefix":"FO"}' | jq -r .id)
EXEC=$T/executed
agents=()
for i in $(seq 20); do
        agents+=("$(on $((i % 3 + 1)) POST "/api/companies/$company/agents" \
                "{\"name\":\"a$i\",\"adapterConfig\":{\"command\":\"/bin/sh\",\"args\":[\"-c\",\"echo \$CORRAL_RUN_ID >>$EXEC; sleep 0.02\"]},\"runtimeConfig\":{\"heartbeat\":{\"maxConcurrentRuns\":2}}}" |
                jq -r .id)")
done
wake_through() {
        local n=$1 k a
        for k in $(seq "$PER_HOST"); do
                a=${agents[$(((k + n) % 20))]}
                wake "$n" "$a" "{\"payload\":{\"taskKey\":\"h$n-$k\"}}"
        done
}
start=$(date +%s%N)
wake_through 1 &
w1=$!
wake_through 2 &
w2=$!
wake_through 3 &
w3=$!
wait $w1 $w2 $w3
all_done() { [ "$(sql "SELECT count(*) FROM heartbeat_runs WHERE company_id = '$company' AND status IN ('queued', 'running')")" = 0 ]; }
check "all runs end" wait_for 120 all_done
echo "# $((PER_HOST * 3)) runs through three hosts in $((($(date +%s%N) - start) / 1000000)) ms"
is "$((PER_HOST * 3)) wakes made as many runs" "$(sql "SELECT count(*) FROM heartbeat_runs WHERE company_id = '$company'")" $((PER_HOST * 3))
is "each succeeded" "$(sql "SELECT count(*) FROM heartbeat_runs WHERE company_id = '$company' AND status = 'succeeded'")" $((PER_HOST * 3))
is "each executed exactly once" "$(sort "$EXEC" | uniq | wc -l) $(wc -l <"$EXEC")" "$((PER_HOST * 3)) $((PER_HOST * 3))"
is "what executed is what the database has" \
        "$(sort "$EXEC" | comm -3 - <(sql "SELECT id FROM heartbeat_runs WHERE company_id = '$company'" | sort) | wc -l)" 0
echo "# per host: $(sql "SELECT host_id || '=' || count(*) FROM heartbeat_runs WHERE company_id = '$company' GROUP BY host_id ORDER BY host_id" | tr '\n' ' ')"
is "all three hosts ran some" "$(sql "SELECT count(DISTINCT host_id) FROM heartbeat_runs WHERE company_id = '$company'")" 3
# At the instant each run started, how many runs of its agent were running (itself too).
most=$(sql "SELECT coalesce(max(n), 0) FROM (SELECT a.id, count(*) AS n FROM heartbeat_runs a JOIN heartbeat_runs b
        ON b.agent_id = a.agent_id AND b.started_at <= a.started_at AND a.started_at < b.finished_at
        WHERE a.company_id = '$company' GROUP BY a.id) c")
like "maxConcurrentRuns 2 held across the hosts (at most $most at once)" "$most" '^[12]$'

# An agent that may run only on host 3 (its repository lives there), woken through host 1.
homed=$(on 1 POST "/api/companies/$company/agents" \
        '{"name":"homed","adapterConfig":{"command":"/bin/true"},"runtimeConfig":{"hosts":["host-3"]}}' | jq -r .id)
r=$(on 1 POST "/api/agents/$homed/wakeup" '{}' | jq -r .id)
is "an agent of host 3 woken through host 1 runs on host 3" "$(wait_run "$r" | jq -r '.status + " " + .hostId')" \
        "succeeded host-3"

# A run's log through another host than its own: read by its own host, through the database.
talker=$(on 1 POST "/api/companies/$company/agents" \
        '{"name":"talker","adapterConfig":{"command":"/bin/sh","args":["-c","for i in 1 2 3; do echo line-$i; sleep 0.3; done"]},"runtimeConfig":{"hosts":["host-3"]}}' |
        jq -r .id)
r=$(on 1 POST "/api/agents/$talker/wakeup" '{}' | jq -r .id)
check "a run of host 3 starts" wait_run_started "$r"
out=$(CORRAL_SOCKET=$T/c1.sock timeout 20 "$CORRALCTL" logs -f "$r" 2>&1)
is "corralctl logs -f through host 1 follows it to its end" "$?" 0
like "... with all it printed" "$(tr '\n' ' ' <<<"$out")" "line-1 .*line-2 .*line-3"
is "the run is host 3's" "$(wait_run "$r" | jq -r '.status + " " + .hostId')" "succeeded host-3"
on 3 GET "/api/heartbeat-runs/$r/log" >"$T/own.json"
on 2 GET "/api/heartbeat-runs/$r/log" >"$T/forwarded.json"
is "host 2 serves it" "$(status)" 200
is "... as host 3 read it" "$(jq -r .hostId "$T/forwarded.json")" host-3
is "... the same as host 3 serves it" "$(jq -c '[.content, .logRef, .nextOffset]' "$T/forwarded.json")" \
        "$(jq -c '[.content, .logRef, .nextOffset]' "$T/own.json")"
is "from an offset too" "$(on 2 GET "/api/heartbeat-runs/$r/log?offset=1&limitBytes=4096" | jq -r .content)" \
        "$(on 3 GET "/api/heartbeat-runs/$r/log?offset=1&limitBytes=4096" | jq -r .content)"
log=$(jq -r .logRef "$T/own.json")
mv "$log" "$log.away"
code=$(curl -s -o "$T/log.json" -w '%{http_code}' --unix-socket "$T/c2.sock" "http://localhost/api/heartbeat-runs/$r/log")
is "a log its host has no more is 404 through another" "$code" 404
like "... naming the host" "$(jq -r .error "$T/log.json")" "not found on host host-3"
mv "$log.away" "$log"
is "no log read is left behind" "$(sql "SELECT count(*) FROM log_reads")" 0

# Issue runs: three issues, each woken 12 times through the three APIs.
worker=${agents[0]}
api PATCH "/api/agents/$worker" '{"runtimeConfig":{"heartbeat":{"maxConcurrentRuns":3}}}' >/dev/null
issues=()
for k in 1 2 3; do
        issues+=("$(on 1 POST "/api/companies/$company/issues" "{\"title\":\"Shared $k\",\"status\":\"todo\"}" | jq -r .id)")
done
# A round wakes each issue three times at once, through the three hosts (the first through
# another host for each issue and round), one issue after the other, and ends when the
# issues' runs have. The host whose run holds an issue also claims the wakes deferred
# behind it when that run ends, so rounds that overlap (runs slower than wakes: agents at
# their low CPU weight beside three corralds under ASan) left every run to one host.
for round in $(seq 4); do
        for k in 0 1 2; do
                wakers=()
                for n in 1 2 3; do
                        wake $(((n + k + round) % 3 + 1)) "$worker" \
                                "{\"source\":\"assignment\",\"reason\":\"issue_assigned\",\"payload\":{\"issueId\":\"${issues[$k]}\"}}" &
                        wakers+=($!)
                done
                wait "${wakers[@]}" # not the corralds
        done
        wait_for 60 all_done || echo "# round $round: the issue runs did not end within 60 s"
done
check "the issue runs end" wait_for 60 all_done
no_deferred() { [ "$(sql "SELECT count(*) FROM agent_wakeup_requests WHERE company_id = '$company' AND status IN ('queued', 'deferred_issue_execution')")" = 0 ]; }
check "no wake is left deferred or queued" wait_for 30 no_deferred
overlaps=$(sql "SELECT count(*) FROM heartbeat_runs a JOIN heartbeat_runs b ON a.id < b.id AND a.issue_id = b.issue_id
        WHERE a.company_id = '$company' AND a.started_at < b.finished_at AND b.started_at < a.finished_at")
is "no issue had two live runs, across the hosts" "$overlaps" 0
like "the issues ran on several hosts" "$(sql "SELECT count(DISTINCT host_id) FROM heartbeat_runs WHERE issue_id IS NOT NULL AND company_id = '$company'")" '^[23]$'

# ---- host death ----
# A run that sleeps until it is retried: the retry ends at once.
script='[ "$CORRAL_WAKE_REASON" = process_lost_retry ] && exit 0; sleep 300; : '$MARK
sleeper=$(on 1 POST "/api/companies/$company/agents" "$(jq -cn --arg s "$script" \
        '{name: "sleeper", adapterConfig: {command: "/bin/sh", args: ["-c", $s], graceSec: 1}}')" | jq -r .id)
issue=$(on 1 POST "/api/companies/$company/issues" "{\"title\":\"Sleep on it\",\"status\":\"todo\",\"assigneeAgentId\":\"$sleeper\"}" | jq -r .id)
wait_for 15 field_is "/api/issues/$issue" '.executionRunId != null' true
doomed=$(api GET "/api/issues/$issue" | jq -r .executionRunId)
check "the issue's run starts" wait_run_started "$doomed"
dead=$(api GET "/api/heartbeat-runs/$doomed" | jq -r .hostId)
dn=${dead#host-}
survivor=$((dn % 3 + 1))
SOCK=$T/c$survivor.sock
echo "# run $doomed on $dead; it dies"
killed_at=$(date +%s%N)
host_kill "$dn"
for d in "$MOUNT/$MARK-$dn"/run-*; do echo 1 >"$d/cgroup.kill"; done
check "its run is finalized after the lease" wait_run_status "$doomed" failed 30
echo "# failover took $((($(date +%s%N) - killed_at) / 1000000)) ms (lease ${LEASE} s)"
final=$(api GET "/api/heartbeat-runs/$doomed")
is "as process_lost" "$(jq -r .errorCode <<<"$final")" process_lost
like "its error names the dead host" "$(jq -r .error <<<"$final")" "host $dead stopped renewing its lease at .*; retrying once"
is "the host is dead" "$(host_field "$dead" .status)" dead
api POST "/api/hosts/$dead/resume" >/dev/null
is "a dead host cannot be resumed" "$(status)" 409
retry=$(sql "SELECT id FROM heartbeat_runs WHERE retry_of_run_id = '$doomed'")
is "one retry" "$(wc -w <<<"$retry")" 1
final=$(wait_run "$retry")
is "the retry succeeds" "$(jq -r .status <<<"$final")" succeeded
like "on a live host" "$(jq -r .hostId <<<"$final")" "^host-[123]$"
[ "$(jq -r .hostId <<<"$final")" != "$dead" ] && ok "not on the dead one" || not_ok "not on the dead one"
# The log of the dead host's run: its host cannot read it for another, so the survivor reads
# the file itself (here all three share one file system); with the file out of its reach
# (another machine), it says where the log is.
is "a dead host's log is read from the shared file system" \
        "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$T/c$survivor.sock" "http://localhost/api/heartbeat-runs/$doomed/log")" 200
log=$(curl -s --unix-socket "$T/c$survivor.sock" "http://localhost/api/heartbeat-runs/$doomed/log" | jq -r .logRef)
mv "$log" "$log.away"
code=$(curl -s -o "$T/log.json" -w '%{http_code}' --unix-socket "$T/c$survivor.sock" "http://localhost/api/heartbeat-runs/$doomed/log")
is "without the file, 409" "$code" 409
like "... naming the dead host that has it" "$(jq -r .error "$T/log.json")" "is on host $dead \\(.*\\), which ran it and is dead"
out=$(CORRAL_SOCKET=$T/c$survivor.sock "$CORRALCTL" logs "$doomed" 2>&1)
like "corralctl logs there says the same" "$out" "is on host $dead"
mv "$log.away" "$log"
is "the issue's lock moved to the retry, then was released" \
        "$(sql "SELECT count(*) FROM heartbeat_runs WHERE id = '$retry' AND issue_id = '$issue'")/$(api GET "/api/issues/$issue" | jq -r .executionRunId)" "1/null"
check "the dead host comes back" host_start "$dn"
is "with a new epoch" "$(host_field "$dead" '.status + "/" + (.epoch | tostring)')" "live/2"
is "nothing of the dead run is left" "$(procs_of "$dn" "$doomed")" 0

# ---- zombie host ----
api PATCH "/api/agents/$sleeper" '{"runtimeConfig":{"heartbeat":{"maxConcurrentRuns":3}}}' >/dev/null
r=$(api POST "/api/agents/$sleeper/wakeup" '{"payload":{"taskKey":"zombie"}}' | jq -r .id)
check "a run to freeze starts" wait_run_started "$r"
stale=$r
zombie=$(api GET "/api/heartbeat-runs/$stale" | jq -r .hostId)
zn=${zombie#host-}
SOCK=$T/c$((zn % 3 + 1)).sock
epoch=$(host_field "$zombie" .epoch)
echo "# run $stale on $zombie, which freezes"
kill -STOP "${HPID[$zn]}"
check "the others take its run over" wait_run_status "$stale" failed 30
is "the frozen host is dead" "$(host_field "$zombie" .status)" dead
before=$(sql "SELECT status, error, updated_at, finished_at FROM heartbeat_runs WHERE id = '$stale'")
events=$(sql "SELECT count(*) FROM heartbeat_run_events WHERE run_id = '$stale'")
kill -CONT "${HPID[$zn]}"
rejoined() { [ "$(host_field "$zombie" '.status + "/" + (.epoch | tostring)')" = "live/$((epoch + 1))" ]; }
check "it rejoins with a new epoch" wait_for 15 rejoined
stale_gone() { [ "$(procs_of "$zn" "$stale")" = 0 ]; }
check "it killed its stale run's processes" wait_for 15 stale_gone
grep -q "killed unrecorded" "$T/corrald$zn.log" && ok "its journal says why" || not_ok "its journal says why"
is "it wrote nothing of the run" "$(sql "SELECT status, error, updated_at, finished_at FROM heartbeat_runs WHERE id = '$stale'")" "$before"
is "not even an event" "$(sql "SELECT count(*) FROM heartbeat_run_events WHERE run_id = '$stale'")" "$events"
retry=$(sql "SELECT id FROM heartbeat_runs WHERE retry_of_run_id = '$stale'")
is "its retry succeeded elsewhere" "$(wait_run "$retry" | jq -r '.status + " " + (.hostId != "'"$zombie"'" | tostring)')" \
        "succeeded true"
r=$(on "$zn" POST "/api/agents/${agents[1]}/wakeup" '{"payload":{"taskKey":"after"}}' | jq -r .id)
is "the host that came back takes work again" "$(wait_run "$r" | jq -r .status)" succeeded

# ---- a corrald that crashed and stays down, its runs alive ----
# Its shims kill their agents by the lease (and what the agents left in their cgroups), before
# another host can take the runs over: the retry never runs beside the first.
script='if [ "$CORRAL_WAKE_REASON" = process_lost_retry ]; then date +%s%N >'$T'/retry.start; exit 0; fi
setsid sleep 300 </dev/null >/dev/null 2>&1 &
while :; do date +%s%N >'$T'/beat.new; mv '$T'/beat.new '$T'/beat; sleep 0.05; done; : '$MARK
beater=$(on 1 POST "/api/companies/$company/agents" "$(jq -cn --arg s "$script" \
        '{name: "beater", adapterConfig: {command: "/bin/sh", args: ["-c", $s], graceSec: 1}}')" | jq -r .id)
r=$(on 1 POST "/api/agents/$beater/wakeup" '{}' | jq -r .id)
check "a run that beats starts" wait_run_started "$r"
crashed=$(api GET "/api/heartbeat-runs/$r" | jq -r .hostId)
cn=${crashed#host-}
SOCK=$T/c$((cn % 3 + 1)).sock
beating() { [ -s "$T/beat" ] && [ "$(procs_of "$cn" "$r")" -ge 3 ]; }
check "... with a daemon beside it in its cgroup" wait_for 10 beating
host_kill "$cn"
stopped_by_shim() { [ "$(procs_of "$cn" "$r")" = 0 ]; }
check "with corrald down, the shim ends the run's processes by the lease" wait_for 15 stopped_by_shim
check "the others take the run over" wait_run_status "$r" failed 30
retry=$(sql "SELECT id FROM heartbeat_runs WHERE retry_of_run_id = '$r'")
is "its retry succeeds" "$(wait_run "$retry" | jq -r .status)" succeeded
last_beat=$(cat "$T/beat")
retry_start=$(cat "$T/retry.start")
[ "$last_beat" -lt "$retry_start" ] && ok "the first was dead before its retry started ($(((retry_start - last_beat) / 1000000)) ms)" ||
        not_ok "the first was dead before its retry started (last beat $last_beat, retry at $retry_start)"
grep -q "the host's lease ran out" "$T/corrald$cn.log" && ok "the shim said why in its host's journal" ||
        not_ok "the shim said why in its host's journal"
before=$(sql "SELECT status, error, updated_at, finished_at FROM heartbeat_runs WHERE id = '$r'")
events=$(sql "SELECT count(*) FROM heartbeat_run_events WHERE run_id = '$r'")
check "the crashed host comes back" host_start "$cn"
is "... and writes nothing of the run the others took over" \
        "$(sql "SELECT status, error, updated_at, finished_at FROM heartbeat_runs WHERE id = '$r'")/$(sql "SELECT count(*) FROM heartbeat_run_events WHERE run_id = '$r'")" \
        "$before/$events"

# ---- a cancel through another host than the run's ----
# Also what is still live (a continuation a host's return requeued for an issue left in
# progress) is cancelled so, and the hosts stop with nothing running.
r=$(on 1 POST "/api/agents/$sleeper/wakeup" '{"payload":{"taskKey":"cancel-elsewhere"}}' | jq -r .id)
check "a run to cancel starts" wait_run_started "$r"
owner=$(api GET "/api/heartbeat-runs/$r" | jq -r .hostId)
other=$((${owner#host-} % 3 + 1))
for id in $(sql "SELECT id FROM heartbeat_runs WHERE status IN ('queued', 'running')"); do
        on "$other" POST "/api/heartbeat-runs/$id/cancel" >/dev/null
done
is "cancelled through host $other, the run of $owner ends cancelled" "$(wait_run "$r" | jq -r .status)" cancelled
grep -q "Run $r: stopping it, as another host was asked (cancelled)" "$T/corrald${owner#host-}.log" &&
        ok "... stopped by its own host" || not_ok "... stopped by its own host"
is "... whose processes are gone" "$(procs_of "${owner#host-}" "$r")" 0
check "nothing is left running" wait_for 30 all_done

hosts_stop
left=$(find "$MOUNT/$MARK-1" "$MOUNT/$MARK-2" "$MOUNT/$MARK-3" -mindepth 1 -maxdepth 1 -type d)
is "no run cgroup is left" "$(printf '%s' "$left" | grep -c .)" 0
[ -z "$left" ] || echo "# left: $left"
finish
