#!/bin/bash
# The watchdog restarts a corrald whose loop is stuck (test hook: SIGUSR2 with
# CORRAL_TEST_HOOKS=1 stalls the loop).
. "$(dirname "$0")/lib.sh"
mkdir -p /run/systemd/system/corrald.service.d
printf '[Service]\nEnvironment=CORRAL_TEST_HOOKS=1\nWatchdogSec=3s\n' >/run/systemd/system/corrald.service.d/test.conf
systemctl daemon-reload
systemctl restart corrald.service
check "corrald runs with the test hook" retry 10 corralctl status
pid=$(systemctl show -p MainPID --value corrald.service)
restarts=$(systemctl show -p NRestarts --value corrald.service)
systemctl kill -s USR2 corrald.service
check "systemd replaced the stuck corrald" retry 30 sh -c "p=\$(systemctl show -p MainPID --value corrald.service); [ \"\$p\" != 0 ] && [ \"\$p\" != $pid ]"
like "because of the watchdog" "$(journalctl -b --no-pager -u corrald.service -o cat | grep -i watchdog | tail -n 3)" "[Ww]atchdog timeout"
check "NRestarts went up" test "$(systemctl show -p NRestarts --value corrald.service)" -gt "$restarts"
check "the new corrald answers" retry 20 corralctl status
rm -rf /run/systemd/system/corrald.service.d
systemctl daemon-reload
systemctl restart corrald.service
retry 10 corralctl status >/dev/null
