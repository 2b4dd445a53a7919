#!/bin/bash
# The sandbox under the scope backend, as the package configures it: a hostile agent in
# its scope cannot reach corrald, another run, the host or the board (see test-sandbox.sh
# for the whole suite on the cgroup backend).
. "$(dirname "$0")/lib.sh"
if [ ! -x "$VM_SHARE/sandbox-probe" ]; then
        echo "# no sandbox probe in the share (run.sh --probe PATH): skipped"
        exit 0
fi
install -m 0755 "$VM_SHARE/sandbox-probe" /usr/local/bin/corral-sandbox-probe

company=$(api POST /api/companies '{"name":"Sandbox","issuePrefix":"SBX"}' | jq -r .id)
victim=$(api POST /api/companies/$company/agents '{"name":"victim","adapterConfig":{"command":"/bin/sleep","args":["60"]}}' | jq -r .id)
vrun=$(api POST /api/agents/$victim/wakeup '{}' | jq -r .id)
check "the victim runs" retry 30 field_is /api/heartbeat-runs/$vrun '.processPid | type' number
vpid=$(api GET /api/heartbeat-runs/$vrun | jq -r .processPid)
corrald=$(systemctl show -p MainPID --value corrald)
other=$(api POST /api/companies '{"name":"Elsewhere","issuePrefix":"ELS"}' | jq -r .id)

cat >/usr/local/bin/corral-attacker <<EOF
#!/bin/bash
corral-sandbox-probe kill=$corrald ptrace=$vpid kill=$vpid mount unshare_user connect=/run/corral/corrald.sock
try() { local what=\$1; shift; if out=\$("\$@" 2>&1); then echo "\$what: ok \$out"; else echo "\$what: denied \$out"; fi; }
try join-victim sh -c "echo \\\$\\\$ >/sys/fs/cgroup/corral.slice/corral-run-$vrun.scope/cgroup.procs"
try leave sh -c "echo \\\$\\\$ >/sys/fs/cgroup/cgroup.procs"
try read-db head -c 16 /var/lib/corral/corral.db
try write-etc touch /etc/corral-escaped
echo "uid: \$(id -u)"
echo "caps: \$(grep CapEff /proc/self/status | cut -f2)"
echo "companies: \$(curl -s --unix-socket "\$CORRAL_SOCKET" http://corral/api/companies | jq -r '.[].name' | tr '\n' ' ')"
echo "create: \$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "\$CORRAL_SOCKET" -X POST -H 'Content-Type: application/json' --data-binary '{"name":"Evil"}' http://corral/api/companies)"
EOF
chmod 755 /usr/local/bin/corral-attacker
attacker=$(api POST /api/companies/$company/agents '{"name":"attacker","adapterConfig":{"command":"/usr/local/bin/corral-attacker"}}' | jq -r .id)
run=$(api POST /api/agents/$attacker/wakeup '{}' | jq -r .id)
retry 30 run_ended $run
final=$(api GET /api/heartbeat-runs/$run)
is "the attacker's run succeeded" "$(jq -r .status <<<"$final")" succeeded || echo "# $final"
out=$(jq -r .stdoutExcerpt <<<"$final")
line() { grep -E "^$1: " <<<"$out" | head -n 1 | cut -d' ' -f2-; }
like "its run is a scope" "$(jq -r .unitName <<<"$final")" "^corral-run-$run.scope$"
like "it cannot kill corrald" "$(line "kill=$corrald")" "No such process"
like "it cannot kill another run's agent" "$(line "kill=$vpid")" "No such process"
like "it cannot ptrace it" "$(line "ptrace=$vpid")" "No such process"
like "mount is denied" "$(line mount)" "Operation not permitted"
like "a user namespace is denied" "$(line unshare_user)" "Operation not permitted"
like "the operator socket is out of reach" "$(line connect=/run/corral/corrald.sock)" "refused|No such file|denied"
like "it cannot join the victim's scope" "$(line join-victim)" "^denied"
like "it cannot leave its scope" "$(line leave)" "^denied"
like "the database is out of reach" "$(line read-db)" "^denied"
like "/etc is read-only" "$(line write-etc)" "^denied"
is "it runs as the uid corral gave it" "$(line uid)" "$(api GET /api/agents/$attacker | jq -r .sandboxUid)"
is "with no capabilities" "$(line caps)" 0000000000000000
is "it sees its own company only" "$(line companies)" "Sandbox "
is "it cannot create a company" "$(line create)" 403
check "corrald still runs, the same process" test "$(systemctl show -p MainPID --value corrald)" = "$corrald"
is "the victim still runs" "$(api GET /api/heartbeat-runs/$vrun | jq -r .status)" running
check "nothing was written to /etc" test ! -e /etc/corral-escaped
is "the state directory is root's only" "$(stat -c %a /var/lib/corral)" 700
is "the database is root's only" "$(stat -c %a /var/lib/corral/corral.db)" 600

# An address allowlist, enforced by the scope (IPAddressAllow=): 127.0.0.1 is allowed, 127.0.0.2
# (loopback too, the same listener) is not.
perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalAddr => "0.0.0.0", LocalPort => 7777, Listen => 5, ReuseAddr => 1)
        or die; while ($c = $s->accept) { print $c "hello\n"; close $c }' &
listener=$!
cat >/usr/local/bin/corral-netcheck <<'AGENT'
#!/bin/bash
for a in 127.0.0.1 127.0.0.2; do
        if out=$(timeout 5 bash -c "exec 3<>/dev/tcp/$a/7777 && head -n 1 <&3" 2>&1); then echo "$a: $out"; else echo "$a: denied $out"; fi
done
AGENT
chmod 755 /usr/local/bin/corral-netcheck
netagent=$(api POST /api/companies/$company/agents '{"name":"allowlisted","adapterConfig":{"command":"/usr/local/bin/corral-netcheck","sandbox":{"network":{"allow":["127.0.0.1/32"]}}}}' | jq -r .id)
netrun=$(api POST /api/agents/$netagent/wakeup '{}' | jq -r .id)
retry 30 run_ended $netrun
out=$(api GET /api/heartbeat-runs/$netrun | jq -r .stdoutExcerpt)
like "an allowed address answers" "$out" "127.0.0.1: hello"
like "another is denied by the scope's IPAddressAllow=" "$out" "127.0.0.2: denied"
kill $listener 2>/dev/null

code() { curl -s -o /dev/null -w '%{http_code}' --unix-socket /run/corral/agent.sock http://corral/api/companies; }
is "the agent socket refuses a process outside every run" "$(code)" 403
# A scope with a run's name outside corral.slice (a user can make one in their own
# delegated tree) is nobody's run.
fake=corral-run-00000000-0000-4000-8000-00000000beef
is "and one in a look-alike scope outside corral.slice" \
        "$(systemd-run --quiet --scope --slice=user.slice --unit=$fake curl -s -o /dev/null -w '%{http_code}' \
                --unix-socket /run/corral/agent.sock http://corral/api/companies)" 403
api POST /api/heartbeat-runs/$vrun/cancel >/dev/null
check "the victim ends when cancelled" retry 20 field_is /api/heartbeat-runs/$vrun .status cancelled
