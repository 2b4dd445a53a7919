#!/bin/bash
# Runs outlive corrald: a restart, and a SIGKILL of corrald, mid-run. The run is
# re-adopted and finishes with its real exit code and its whole log.
. "$(dirname "$0")/lib.sh"
company=$(cat /tmp/company)
agent=$(api POST /api/companies/$company/agents \
        '{"name":"survivor","adapterConfig":{"command":"/bin/sh","args":["-c","echo start; sleep 6; echo end; exit 7"]}}' | jq -r .id)

survive() {
        local how=$1 run unit pid
        run=$(api POST /api/agents/$agent/wakeup '{}' | jq -r .id)
        unit=corral-run-$run.scope
        retry 30 field_is /api/heartbeat-runs/$run '.processPid | type' number
        pid=$(systemctl show -p MainPID --value corrald.service)
        case $how in
        restart) systemctl restart corrald.service ;;
        kill) systemctl kill -s KILL corrald.service ;;
        esac
        check "$how: the scope lives on" systemctl is-active --quiet "$unit"
        check "$how: corrald is back" retry 20 corralctl status
        like "$how: a new corrald" "$(systemctl show -p MainPID --value corrald.service)" "^[1-9][0-9]*$"
        [ "$(systemctl show -p MainPID --value corrald.service)" != "$pid" ] || not_ok "$how: corrald was not replaced"
        check "$how: the run finishes" retry 30 sh -c "curl -s --unix-socket /run/corral/corrald.sock http://l/api/heartbeat-runs/$run | jq -e '.status == \"failed\"' >/dev/null"
        final=$(api GET /api/heartbeat-runs/$run)
        is "$how: with the agent's exit code" "$(jq -r .exitCode <<<"$final")" 7
        log=$(api GET "/api/heartbeat-runs/$run/log" | jq -r .content)
        like "$how: its log has the start" "$log" start
        like "$how: and the end" "$log" '"end\\n"'
        like "$how: the run was re-adopted" "$(journalctl -b --no-pager -o cat CORRAL_RUN_ID=$run)" "re-adopted"
}
survive restart
survive kill
