#!/bin/bash
# adapterConfig.limits as scope properties: memoryMax ends a hog as oom_killed,
# tasksMax holds a fork bomb, cpuWeight is set.
. "$(dirname "$0")/lib.sh"
company=$(cat /tmp/company)

hog=$(api POST /api/companies/$company/agents '{"name":"hog","adapterConfig":{"command":"/bin/sh","args":["-c","echo eating; x=$(head -c 400000000 /dev/zero | tr \"\\\\0\" a); echo survived"],"limits":{"memoryMax":67108864}}}' | jq -r .id)
run=$(api POST /api/agents/$hog/wakeup '{}' | jq -r .id)
check "the hog's run ends" retry 60 run_ended $run
final=$(api GET /api/heartbeat-runs/$run)
is "memoryMax exceeded: failed / oom_killed" "$(jq -r '.status + " " + .errorCode' <<<"$final")" "failed oom_killed"
is "it never got past the allocation" "$(api GET "/api/heartbeat-runs/$run/log" | jq -r .content | grep -c survived)" 0

# perl's fork() fails softly (undef) where a shell's would end the shell.
bomb=$(api POST /api/companies/$company/agents '{"name":"bomb","adapterConfig":{"command":"/usr/bin/perl","args":["-e","$|=1; my $n = 0; for (1..100) { my $p = fork(); next unless defined $p; if ($p == 0) { sleep 120; exit 0 } $n++ } print \"forked $n\\n\"; sleep 120"],"limits":{"tasksMax":20,"cpuWeight":50}}}' | jq -r .id)
run=$(api POST /api/agents/$bomb/wakeup '{}' | jq -r .id)
unit=corral-run-$run.scope
check "the bomb's scope is active" retry 10 systemctl is-active --quiet "$unit"
is "TasksMax of the scope" "$(systemctl show -p TasksMax --value "$unit")" 20
is "CPUWeight of the scope" "$(systemctl show -p CPUWeight --value "$unit")" 50
is "MemoryMax of the scope: the default, 8 GiB, as the run sets none" "$(systemctl show -p MemoryMax --value "$unit")" 8589934592
check "the bomb has done its forking" retry 30 sh -c "curl -s --unix-socket /run/corral/corrald.sock 'http://l/api/heartbeat-runs/$run/log' | grep -q forked"
tasks=$(cat "/sys/fs/cgroup/corral.slice/$unit/pids.current")
check "the fork bomb is held at 20 tasks ($tasks)" test "$tasks" -le 20
like "it could fork fewer than 20 children" "$(api GET "/api/heartbeat-runs/$run/log" | jq -r .content)" 'forked 1?[0-9]\\n'
api POST /api/heartbeat-runs/$run/cancel >/dev/null
check "cancelled, every process killed" retry 30 sh -c "! systemctl is-active --quiet $unit"
check "the bomb's run is cancelled" retry 10 field_is /api/heartbeat-runs/$run .status cancelled
