#!/bin/bash
# A run is a transient scope in corral.slice; its history is in the journal.
. "$(dirname "$0")/lib.sh"
company=$(api POST /api/companies '{"name":"VM","issuePrefix":"VM"}' | jq -r .id)
echo "$company" >/tmp/company
agent=$(api POST /api/companies/$company/agents \
        '{"name":"sleeper","adapterConfig":{"command":"/bin/sh","args":["-c","echo hello; sleep 4; echo bye"]}}' | jq -r .id)
run=$(api POST /api/agents/$agent/wakeup '{}' | jq -r .id)
check "the run is running" retry 30 field_is /api/heartbeat-runs/$run '.processPid | type' number
unit=corral-run-$run.scope
is "the run's unitName" "$(api GET /api/heartbeat-runs/$run | jq -r .unitName)" "$unit"
check "its scope is active" retry 10 systemctl is-active --quiet "$unit"
is "in corral.slice" "$(systemctl show -p Slice --value "$unit")" corral.slice
like "described by run and agent" "$(systemctl show -p Description --value "$unit")" "corral run $run of agent $agent"
like "systemctl status shows its processes" "$(systemctl status --no-pager "$unit" 2>&1)" 'sleep 4'
like "the run's cgroup is the scope's" "$(api GET /api/heartbeat-runs/$run | jq -r .cgroupPath)" "/sys/fs/cgroup/corral.slice/$unit$"
retry 30 run_ended $run
final=$(api GET /api/heartbeat-runs/$run)
is "the run succeeded" "$(jq -r '.status + " " + (.exitCode | tostring)' <<<"$final")" "succeeded 0" || echo "# $final"
check "its scope is gone" retry 10 sh -c "! systemctl is-active --quiet $unit"
journal=$(journalctl -b --no-pager -o cat CORRAL_RUN_ID=$run)
like "journalctl CORRAL_RUN_ID shows the start" "$journal" "Run $run started"
like "and the end" "$journal" "Run $run finished \\(exited, exit code 0\\)"
like "the log is complete" "$(api GET "/api/heartbeat-runs/$run/log" | jq -r .content)" 'bye'
