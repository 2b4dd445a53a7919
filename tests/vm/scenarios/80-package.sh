#!/bin/bash
# Upgrade with a run in flight (it survives the restart), then purge.
. "$(dirname "$0")/lib.sh"
company=$(cat /tmp/company)
agent=$(api POST /api/companies/$company/agents '{"name":"upgrader","adapterConfig":{"command":"/bin/sh","args":["-c","sleep 5; echo done"]}}' | jq -r .id)
run=$(api POST /api/agents/$agent/wakeup '{}' | jq -r .id)
retry 30 field_is /api/heartbeat-runs/$run '.processPid | type' number
out=$(dpkg -i "$VM_SHARE/corral-upgrade.deb" 2>&1)
check "the upgrade installs" test $? = 0 || echo "$out" | sed 's/^/#   /'
like "to the new version" "$(dpkg-query -W -f='${Version}' corral)" '\+vmupgrade1$'
check "corrald answers after the upgrade" retry 20 corralctl status
check "the run in flight finished" retry 30 sh -c "curl -s --unix-socket /run/corral/corrald.sock http://l/api/heartbeat-runs/$run | jq -e '.status == \"succeeded\"' >/dev/null"
out=$(dpkg --purge corral 2>&1)
check "the package purges" test $? = 0 || echo "$out" | sed 's/^/#   /'
check "corrald is gone" sh -c "! pgrep -x corrald"
check "its units are gone" sh -c "! systemctl cat corrald.service >/dev/null 2>&1"
check "its state is gone" test ! -e /var/lib/corral
check "no run scope is left" sh -c "! systemctl list-units --all --plain --no-legend 'corral-run-*' | grep -q ."
