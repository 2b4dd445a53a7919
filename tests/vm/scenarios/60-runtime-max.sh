#!/bin/bash
# A run's timeout holds while corrald is stopped: the scope's RuntimeMaxUSec.
. "$(dirname "$0")/lib.sh"
company=$(cat /tmp/company)
agent=$(api POST /api/companies/$company/agents '{"name":"overstayer","adapterConfig":{"command":"/bin/sleep","args":["600"],"timeoutSec":3,"graceSec":1}}' | jq -r .id)
run=$(api POST /api/agents/$agent/wakeup '{}' | jq -r .id)
unit=corral-run-$run.scope
check "the run is running" retry 30 field_is /api/heartbeat-runs/$run '.processPid | type' number
is "RuntimeMaxUSec = timeout + grace" "$(systemctl show -p RuntimeMaxUSec --value "$unit")" 4s
systemctl stop corrald.socket corrald.service
check "corrald is down" test "$(systemctl is-active corrald.service)" = inactive
check "systemd ended the run without corrald" retry 15 sh -c "! systemctl is-active --quiet $unit"
check "no process of the run is left" sh -c "! pgrep -f '[s]leep 600'"
systemctl start corrald.socket corrald.service
check "corrald is back" retry 20 corralctl status
check "the run is finalized after the restart" retry 20 run_ended $run
is "as timed out: its timeout held without corrald" "$(api GET /api/heartbeat-runs/$run | jq -r '.status + " " + .errorCode')" "timed_out timeout"
