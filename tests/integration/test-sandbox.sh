#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The hostile-agent suite (corrald(8), SECURITY), on the cgroup backend: agents in their
# sandboxes try to reach corrald, the spawner, other agents and the host, to act as the
# board, and to leave; every attempt fails, and corrald goes on serving the other runs.
. "$(dirname "$0")/lib.sh"
require curl jq sqlite3 setpriv socat

[ "$(id -u)" -eq 0 ] || skip_all "needs root: the sandbox gives agents users and namespaces of their own"
MOUNT=$(cgroup2_mount)
[ -n "$MOUNT" ] || skip_all "no cgroup v2 hierarchy is mounted"
CG=$MOUNT/corral-it-$$
PROBE=$BUILDDIR/tests/integration/sandbox-probe
[ -x "$PROBE" ] || skip_all "$PROBE is not built"
# A workspace outside /tmp (which every sandbox has a private copy of), so that hiding
# one agent's workspace from another is what is tested.
WS=$BUILDDIR/tests/sandbox-ws-$$
SANDBOX=yes

extra_cleanup() {
        local d
        for d in "$CG"/run-* "$CG"/fake-*; do
                [ -d "$d" ] || continue
                echo 1 >"$d/cgroup.kill" 2>/dev/null
                for _ in $(seq 20); do rmdir "$d" 2>/dev/null && break; sleep 0.05; done
        done
        rmdir "$CG" 2>/dev/null
        [ -n "${LISTENER:-}" ] && kill "$LISTENER" 2>/dev/null
        rm -rf "$WS"
}

# The agents' programs: visible to them read-only (readOnlyPaths), as a host's tools are.
BIN=$T/bin
mkdir -p "$BIN" "$WS/victim" "$WS/outside"
chmod 755 "$T" "$BIN"
cp "$PROBE" "$BIN/probe"
# A setuid-root program: in a sandbox it must give nothing (nosuid, no_new_privs).
cp /usr/bin/id "$BIN/suid-id"
chmod 4755 "$BIN/suid-id"
chmod 777 "$WS/victim"

start() {
        start_daemon --placement cgroup --cgroup-root "$CG" --sandbox-uids 1879100000-1879100099
}
check "corrald starts with the sandbox and the cgroup backend" start
check "the agent socket exists, for everyone" test "$(stat -c %a "$AGENT_SOCK")" = 666
is "the operator socket is root's and group's" "$(stat -c %a "$SOCK")" 660
is "the state directory is root's only" "$(stat -c %a "$STATE")" 700
# (On PostgreSQL the database is the server's, not a file.)
[ "$BACKEND" != sqlite ] || is "the database is root's only" "$(stat -c %a "$DATABASE")" 600

# company NAME PREFIX; agent COMPANY NAME CONFIG-JSON
company() { api POST /api/companies "{\"name\":\"$1\",\"issuePrefix\":\"$2\"}" | jq -r .id; }
agent() { api POST "/api/companies/$1/agents" "{\"name\":\"$2\",\"adapterConfig\":$3}" | jq -r .id; }
invoke() { api POST "/api/agents/$1/heartbeat/invoke" | jq -r .id; }
# ro_config COMMAND [EXTRA SANDBOX MEMBERS] [EXTRA CONFIG MEMBERS]
config() {
        printf '{"command":"%s","timeoutSec":60%s,"sandbox":{"readOnlyPaths":["%s"]%s}}' "$1" "${3:+,$3}" "$BIN" "${2:+,$2}"
}
# wait_running RUN: until the run is running with its agent started.
wait_running() {
        local i
        for i in $(seq 200); do
                [ "$(api GET "/api/heartbeat-runs/$1" | jq -r '.status + " " + (.processPid | type)')" = "running number" ] &&
                        return 0
                sleep 0.05
        done
        return 1
}
# unlike DESCRIPTION GOT PATTERN: GOT must not match
unlike() {
        if printf '%s' "$2" | grep -Eq -- "$3"; then
                not_ok "$1"
                echo "#   got: '$2'"
        else
                ok "$1"
        fi
}

# --- the victim: another company's agent, running, with a workspace and a secret ---
victim_co=$(company Victim VIC)
cat >"$BIN/victim.sh" <<'AGENT'
#!/bin/sh
echo "victim working in $(pwd)"
echo "private notes" >notes.txt
exec sleep 600
AGENT
chmod 755 "$BIN/victim.sh"
victim=$(agent "$victim_co" victim "$(config "$BIN/victim.sh" "" "\"cwd\":\"$WS/victim\",\"env\":{\"VICTIM_TOKEN\":{\"secret\":\"victim-s3cret\"}}")")
victim_issue=$(api POST "/api/companies/$victim_co/issues" '{"title":"Private plans","status":"backlog"}' | jq -r .identifier)
victim_run=$(invoke "$victim")
check "the victim runs" wait_running "$victim_run"
vr=$(api GET "/api/heartbeat-runs/$victim_run")
victim_shim=$(jq -r .shimPid <<<"$vr")
victim_pid=$(jq -r .processPid <<<"$vr")
for _ in $(seq 100); do [ -f "$WS/victim/notes.txt" ] && break; sleep 0.05; done
check "the victim wrote in its workspace" test -f "$WS/victim/notes.txt"
like "the shim spawner runs" "$(pgrep -x -P "$DAEMON_PID" corral-spawner)" "^[0-9]+"
victim_log_before=$(sha256sum <"$STATE/runs/$victim_run/log.ndjson")
# This corrald's spawner (other tests run theirs at the same time).
spawner=$(pgrep -x -P "$DAEMON_PID" corral-spawner | head -n 1)
corrald_pid=$DAEMON_PID

# --- the attacker: everything listed in the issue, from inside its sandbox ---
attacker_co=$(company Attacker ATK)
peer=$(agent "$attacker_co" peer "$(config /bin/true "" "\"env\":{\"PEER_TOKEN\":{\"secret\":\"peer-s3cret\"}}")")
cat >"$BIN/attacker.sh" <<'AGENT'
#!/bin/bash
P=$BIN/probe
$P kill=$CORRALD_PID stop=$CORRALD_PID pidfd_getfd=$CORRALD_PID kill=$SPAWNER_PID kill=$VICTIM_SHIM \
        kill=$VICTIM_PID ptrace=$VICTIM_PID mount unshare_user clone_newuser bpf perf_event_open keyctl setuid0 \
        chroot connect=$OPERATOR_SOCK
try() { local what=$1; shift; if out=$("$@" 2>&1); then echo "$what: ok $out"; else echo "$what: denied $out"; fi; }
try environ cat /proc/$VICTIM_PID/environ
try leave-cgroup sh -c "echo \$\$ >$CGMOUNT/cgroup.procs"
try join-victim sh -c "echo \$\$ >$CG/run-$VICTIM_RUN/cgroup.procs"
try pull-corrald sh -c "echo $CORRALD_PID >$CG/run-$CORRAL_RUN_ID/cgroup.procs"
try read-db head -c 16 $STATE/corral.db
try read-victim-log cat $STATE/runs/$VICTIM_RUN/log.ndjson
try forge-victim-log sh -c "echo forged >>$STATE/runs/$VICTIM_RUN/log.ndjson"
try read-victim-context cat $STATE/runs/$VICTIM_RUN/context.json
try read-victim-ws cat $VICTIM_WS/notes.txt
try list-homes sh -c "ls $STATE/homes | wc -l"
try write-usr touch /usr/corral-escaped
try write-outside touch $OUTSIDE/escaped
try write-home touch $HOME/mine
try write-tmp touch /tmp/mine
echo "suid: $($BIN/suid-id -u)"
echo "uid: $(id -u) $(id -G) $(whoami)"
grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status | tr -s '\t' ' '
echo "pids: $(ls /proc | grep -c '^[0-9]')"
api() { curl -s --unix-socket "$CORRAL_SOCKET" -o /tmp/body -w '%{http_code}' -X "$1" -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "http://corral$2"; echo " $(cat /tmp/body)"; }
echo "companies: $(api GET /api/companies)"
echo "create-company: $(api POST /api/companies '{"name":"Evil"}')"
echo "other-company: $(api GET /api/companies/$VICTIM_COMPANY)"
echo "victim-issue-by-identifier: $(api GET /api/issues/$VICTIM_ISSUE)"
echo "victim-agent: $(api GET /api/agents/$VICTIM_AGENT)"
echo "wake-victim: $(api POST /api/agents/$VICTIM_AGENT/wakeup '{}')"
echo "cancel-victim: $(api POST /api/heartbeat-runs/$VICTIM_RUN/cancel)"
# (a run's log excerpts redact what looks like a credential, so the reply is taken apart here)
echo "peer-agent: $(curl -s --unix-socket "$CORRAL_SOCKET" http://corral/api/agents/$PEER_AGENT | jq -c '[.adapterConfig.env.PEER_TOKEN | keys[], .[]]')"
echo "peer-agent-value: $(curl -s --unix-socket "$CORRAL_SOCKET" http://corral/api/agents/$PEER_AGENT | grep -c peer-s3cret)"
echo "health: $(api GET /api/health)"
echo "board-socket: $(curl -s --unix-socket "$OPERATOR_SOCK" http://corral/api/companies 2>&1; echo " exit $?")"
AGENT
chmod 755 "$BIN/attacker.sh"
env_json=$(jq -nc --arg bin "$BIN" --arg corrald "$corrald_pid" --arg spawner "$spawner" --arg shim "$victim_shim" \
        --arg vpid "$victim_pid" --arg vrun "$victim_run" --arg vco "$victim_co" --arg vagent "$victim" --arg vissue "$victim_issue" --arg peer "$peer" \
        --arg op "$SOCK" --arg state "$STATE" --arg cg "$CG" --arg mount "$MOUNT" --arg ws "$WS/victim" --arg out "$WS/outside" \
        '{BIN:$bin, CORRALD_PID:$corrald, SPAWNER_PID:$spawner, VICTIM_SHIM:$shim, VICTIM_PID:$vpid, VICTIM_RUN:$vrun,
          VICTIM_COMPANY:$vco, VICTIM_AGENT:$vagent, VICTIM_ISSUE:$vissue, PEER_AGENT:$peer, OPERATOR_SOCK:$op, STATE:$state, CG:$cg,
          CGMOUNT:$mount, VICTIM_WS:$ws, OUTSIDE:$out}')
attacker=$(agent "$attacker_co" attacker "$(config "$BIN/attacker.sh" "" "\"env\":$env_json")")
run=$(invoke "$attacker")
final=$(wait_run "$run")
is "the attacker's run ends as it chose" "$(jq -r .status <<<"$final")" succeeded
out=$(jq -r .stdoutExcerpt <<<"$final")
line() { grep -E "^$1: " <<<"$out" | head -n 1 | cut -d' ' -f2-; }

like "it cannot kill corrald" "$(line "kill=$corrald_pid")" "No such process"
like "it cannot stop corrald" "$(line "stop=$corrald_pid")" "No such process"
like "it cannot copy corrald's descriptors" "$(line "pidfd_getfd=$corrald_pid")" "No such process|Operation not permitted"
like "it cannot kill the spawner" "$(line "kill=$spawner")" "No such process"
like "it cannot kill the victim's shim" "$(line "kill=$victim_shim")" "No such process"
like "it cannot kill the victim's agent" "$(line "kill=$victim_pid")" "No such process"
like "it cannot ptrace the victim" "$(line "ptrace=$victim_pid")" "No such process"
like "it cannot read the victim's environment" "$(line environ)" "^denied"
like "mount is denied" "$(line mount)" "Operation not permitted"
like "a user namespace is denied (unshare)" "$(line unshare_user)" "Operation not permitted"
like "a user namespace is denied (clone)" "$(line clone_newuser)" "Operation not permitted"
like "bpf is denied" "$(line bpf)" "Operation not permitted"
like "perf_event_open is denied" "$(line perf_event_open)" "Operation not permitted"
like "keyctl is denied" "$(line keyctl)" "Operation not permitted"
like "setuid(0) is denied" "$(line setuid0)" "Operation not permitted"
like "chroot is denied" "$(line chroot)" "Operation not permitted"
like "the operator socket is out of reach" "$(line "connect=$SOCK")" "Connection refused|No such file|Permission denied"
like "it cannot leave its cgroup" "$(line leave-cgroup)" "^denied"
like "it cannot join the victim's cgroup" "$(line join-victim)" "^denied"
like "it cannot pull corrald into its cgroup" "$(line pull-corrald)" "^denied"
like "the database is out of reach" "$(line read-db)" "^denied"
like "the victim's log is out of reach" "$(line read-victim-log)" "^denied"
like "the victim's log cannot be forged" "$(line forge-victim-log)" "^denied"
like "the victim's context is out of reach" "$(line read-victim-context)" "^denied"
like "the victim's workspace is hidden" "$(line read-victim-ws)" "^denied"
is "of the agents' homes it sees its own" "$(line list-homes)" "ok 1"
like "the root file system is read-only" "$(line write-usr)" "^denied.*Read-only"
like "nothing outside its workspace is writable" "$(line write-outside)" "^denied"
check "and nothing was written there" test ! -e "$WS/outside/escaped"
like "its home is writable" "$(line write-home)" "^ok"
like "its /tmp is writable" "$(line write-tmp)" "^ok"
check "and private: the host's /tmp has none of it" test ! -e /tmp/mine
attacker_uid=$(api GET "/api/agents/$attacker" | jq -r .sandboxUid)
like "the agent has a uid of its own from the range" "$attacker_uid" "^18791000[0-9][0-9]$"
is "it runs as that uid, with no other group" "$(line uid)" "$attacker_uid $attacker_uid corral-agent"
is "a setuid-root binary gives nothing" "$(line suid)" "$attacker_uid"
is "no effective capabilities" "$(line CapEff)" 0000000000000000
is "no permitted capabilities" "$(line CapPrm)" 0000000000000000
is "an empty bounding set" "$(line CapBnd)" 0000000000000000
is "no_new_privs" "$(line NoNewPrivs)" 1
is "under a seccomp filter" "$(line Seccomp)" 2
like "its /proc shows its own processes only" "$(line pids)" "^[1-9]$"
like "it sees only its own company" "$(line companies)" "^200 \[\{\"id\":\"$attacker_co\""
like "it cannot create a company" "$(line create-company)" "^403"
like "another company is closed to it" "$(line other-company)" "^403"
like "another company's agent is closed to it" "$(line victim-agent)" "^403"
like "another company's issue is closed to it by identifier as by id" "$(line victim-issue-by-identifier)" "^403"
like "it cannot wake another agent" "$(line wake-victim)" "^403"
like "it cannot cancel another company's run" "$(line cancel-victim)" "^403"
is "its peer's secret is shown as a secret" "$(line peer-agent)" '["secret",true]'
is "and never with its value" "$(line peer-agent-value)" 0
like "health tells it nothing about the host" "$(line health)" '^200 \{"status":"ok","runId":"'
unlike "not the state directory" "$(line health)" "$STATE|pid"
like "the board's socket does not answer it" "$(line board-socket)" "exit [1-9]"

# --- corrald and the victim came through it all ---
check "corrald still runs" kill -0 "$corrald_pid"
check "the spawner still runs" kill -0 "$spawner"
is "the victim still runs" "$(api GET "/api/heartbeat-runs/$victim_run" | jq -r .status)" running
is "the victim's log is its own" "$(sha256sum <"$STATE/runs/$victim_run/log.ndjson")" "$victim_log_before"
is "no company was created" "$(api GET /api/companies | jq length)" 2
check "nothing was written to /usr" test ! -e /usr/corral-escaped

# --- who may speak on the agent socket ---
code() { curl -s -o /dev/null -w '%{http_code}' --unix-socket "$AGENT_SOCK" "$@"; }
is "a process outside every run is refused on the agent socket" "$(code http://corral/api/companies)" 403
is "so is uid 65534" "$(setpriv --reuid=65534 --regid=65534 --clear-groups curl -s -o /dev/null -w '%{http_code}' \
        --unix-socket "$AGENT_SOCK" http://corral/api/companies)" 403
fake=$CG/run-00000000-0000-4000-8000-00000000beef
mkdir "$fake"
is "a process in a made-up run cgroup is refused" "$(sh -c "echo \$\$ >$fake/cgroup.procs; exec curl -s -o /dev/null -w '%{http_code}' --unix-socket $AGENT_SOCK http://corral/api/companies")" 403
rmdir "$fake"
# A peer that is gone when corrald accepts it: corrald is stopped while a process of the
# victim's run connects, sends a comment and dies.
issue=$(api POST "/api/companies/$victim_co/issues" '{"title":"Forgery target","status":"backlog"}' | jq -r .id)
kill -STOP "$corrald_pid"
sh -c "echo \$\$ >$CG/run-$victim_run/cgroup.procs; exec curl -s --unix-socket $AGENT_SOCK -X POST -H 'Content-Type: application/json' --data-binary '{\"body\":\"forged\"}' http://corral/api/issues/$issue/comments" >/dev/null 2>&1 &
forger=$!
# The forger has connected (into the listen queue of the stopped corrald) and sent its request.
connected() { ss -xp 2>/dev/null | grep -q "pid=$forger,"; }
wait_for 15 connected
kill -KILL "$forger" 2>/dev/null
wait "$forger" 2>/dev/null
kill -CONT "$corrald_pid"
check "corrald refuses the peer it cannot identify" wait_for 15 log_has "peer $forger .*refusing it"
is "a peer gone before it was identified posts nothing" "$(api GET "/api/issues/$issue/comments" | jq length)" 0

# --- secrets ---
is "a secret is shown as {\"secret\": true}" "$(api GET "/api/agents/$victim" | jq -c .adapterConfig.env.VICTIM_TOKEN)" '{"secret":true}'
unlike "no secret value is in the agents' table" "$(sql 'SELECT adapter_config FROM agents')" s3cret
unlike "nor in the activity log" "$(sql 'SELECT details FROM activity_log')" s3cret
is "the value is stored apart" "$(sql "SELECT value FROM agent_secrets WHERE agent_id = '$victim'")" victim-s3cret
cat >"$BIN/secret.sh" <<'AGENT'
#!/bin/sh
[ "$VICTIM_TOKEN" = victim-s3cret ] && echo "token-check: right" || echo "token-check: wrong"
AGENT
chmod 755 "$BIN/secret.sh"
api PATCH "/api/agents/$victim" "{\"adapterConfig\":$(config "$BIN/secret.sh" "" "\"env\":{\"VICTIM_TOKEN\":{\"secret\":true}}")}" >/dev/null
is "a secret kept as {\"secret\": true} stays" "$(status)" 200
api POST "/api/heartbeat-runs/$victim_run/cancel" >/dev/null
wait_run "$victim_run" >/dev/null
final=$(wait_run "$(invoke "$victim")")
like "the run gets the secret's value" "$(jq -r .stdoutExcerpt <<<"$final")" "token-check: right"
api PATCH "/api/agents/$victim" "{\"adapterConfig\":$(config "$BIN/secret.sh")}" >/dev/null
is "a secret dropped from the config is forgotten" "$(sql "SELECT count(*) FROM agent_secrets WHERE agent_id = '$victim'")" 0
body=$(api POST "/api/companies/$victim_co/agents" '{"name":"x","adapterConfig":{"command":"/bin/true","env":{"T":{"secret":true}}}}')
is "a secret kept without a value is refused" "$(status)" 400
like "... saying why" "$(jq -r .error <<<"$body")" "no value is stored"

# --- the network: none means loopback only, and the agent socket still works ---
port=$((20000 + $$ % 20000))
socat TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork SYSTEM:'echo hello' >/dev/null 2>&1 &
LISTENER=$!
for _ in $(seq 50); do socat -u OPEN:/dev/null TCP:127.0.0.1:$port 2>/dev/null && break; sleep 0.05; done
cat >"$BIN/net.sh" <<AGENT
#!/bin/sh
echo "tcp: \$(socat -T2 - TCP:127.0.0.1:$port </dev/null 2>&1 | head -n 1)"
echo "links: \$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
echo "api: \$(curl -s --unix-socket "\$CORRAL_SOCKET" http://corral/api/health | jq -r .status)"
AGENT
chmod 755 "$BIN/net.sh"
netco=$(company Net NET)
out=$(jq -r .stdoutExcerpt <<<"$(wait_run "$(invoke "$(agent "$netco" host "$(config "$BIN/net.sh")")")")")
like "with network host the host's loopback answers" "$out" "tcp: hello"
out=$(jq -r .stdoutExcerpt <<<"$(wait_run "$(invoke "$(agent "$netco" isolated "$(config "$BIN/net.sh" '"network":"none"')")")")")
like "with network none it does not" "$out" "tcp: .*(refused|unreachable)"
like "only loopback is there" "$out" "links: lo $"
like "and the agent socket still answers" "$out" "api: ok"
allowed=$(agent "$netco" allowlisted '{"command":"/bin/true","sandbox":{"network":{"allow":["10.0.0.0/8","::1"]}}}')
like "an address allowlist is taken" "$allowed" "^[0-9a-f-]{36}$"
final=$(wait_run "$(invoke "$allowed")")
is "but the cgroup backend cannot enforce it: the launch fails" "$(jq -r '.status + "/" + .errorCode' <<<"$final")" \
        "failed/launch_failed"
like "... saying so" "$(jq -r .error <<<"$final")" "enforced by the scope backend only .* placement=cgroup"
body=$(api POST "/api/companies/$netco/agents" '{"name":"x","adapterConfig":{"command":"/bin/true","sandbox":{"network":{"allow":["10.0.0.0/99"]}}}}')
is "a bad address is refused" "$(status)" 400
like "... naming it" "$(jq -r .error <<<"$body")" "'10.0.0.0/99' is not an IPv4 or IPv6 address"

# --- the policy: overrides, root, leftovers, bad input ---
cat >"$BIN/ns.sh" <<'AGENT'
#!/bin/sh
$BIN/probe unshare_user mount
AGENT
chmod 755 "$BIN/ns.sh"
polco=$(company Policy POL)
out=$(jq -r .stdoutExcerpt <<<"$(wait_run "$(invoke "$(agent "$polco" userns "$(config "$BIN/ns.sh" '"syscallAllow":["unshare","clone3"]' "\"env\":{\"BIN\":\"$BIN\"}")")")")")
like "syscallAllow lifts a default denial" "$out" "unshare_user: ok"
final=$(wait_run "$(invoke "$(agent "$polco" nomkdir "$(config /bin/mkdir '"syscallDeny":["mkdir","mkdirat"]' '"args":["x"]')")")")
like "syscallDeny adds one" "$(jq -r .stderrExcerpt <<<"$final")" "Operation not permitted"
cat >"$BIN/whoami.sh" <<'AGENT'
#!/bin/sh
echo "uid=$(id -u) caps=$(grep CapEff /proc/self/status | cut -f2) state=$(ls "$STATE_DIR/runs" 2>&1)"
AGENT
chmod 755 "$BIN/whoami.sh"
rootrun=$(invoke "$(agent "$polco" rooted "$(config "$BIN/whoami.sh" '"user":"root"' "\"env\":{\"STATE_DIR\":\"$STATE\"}")")")
out=$(jq -r .stdoutExcerpt <<<"$(wait_run "$rootrun")")
like "an agent set to run as root does, without capabilities" "$out" "uid=0 caps=0000000000000000"
like "and still in its sandbox" "$out" "state=.*(Permission denied|No such file)"
like "it is warned about at its launch" "$(api GET "/api/heartbeat-runs/$rootrun/events" | jq -r '.[].message')" "runs as root"
like "and in the journal" "$(cat "$T/corrald.log")" "Run $rootrun of agent .*: the agent runs as root"
body=$(api POST "/api/companies/$polco/agents" '{"name":"x","adapterConfig":{"command":"/bin/true","sandbox":{"readWritePaths":["relative"]}}}')
is "a relative sandbox path is refused" "$(status)" 400
body=$(api POST "/api/companies/$polco/agents" '{"name":"x","adapterConfig":{"command":"/bin/true","sandbox":{"syscallDeny":["no_such_call"]}}}')
like "an unknown system call is refused" "$(jq -r .error <<<"$body")" "not a system call"
body=$(api POST "/api/companies/$polco/agents" '{"name":"x","adapterConfig":{"command":"/bin/true","sandbox":{"privileged":true}}}')
like "an unknown sandbox key is refused" "$(jq -r .error <<<"$body")" "unknown key 'privileged'"
# Who an agent runs as is root's choice: a member of the operator socket's group may not pick it.
chmod 666 "$SOCK"
# as_nobody METHOD PATH BODY: "CODE BODY" of a request by uid 65534 on the operator socket.
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups curl -s -w ' %{http_code}' --unix-socket "$SOCK" \
        -X "$1" -H 'Content-Type: application/json' --data-binary "$3" "http://localhost$2" | sed -E 's/^(.*) ([0-9]+)$/\2 \1/'; }
reply=$(as_nobody POST "/api/companies/$polco/agents" '{"name":"r2","adapterConfig":{"command":"/bin/true","sandbox":{"user":"root"}}}')
like "a non-root board may not make a root agent" "$reply" "^403 "
like "... saying so" "$reply" "only root may choose the user an agent runs as"
rooted=$(api GET "/api/companies/$polco/agents" | jq -r '.[] | select(.name == "rooted") | .id')
like "nor change which user one runs as" \
        "$(as_nobody PATCH "/api/agents/$rooted" '{"adapterConfig":{"command":"/bin/true","sandbox":{"user":"nobody"}}}')" "^403 "
like "but may change the rest of an agent" \
        "$(as_nobody PATCH "/api/agents/$rooted" "{\"adapterConfig\":$(api GET "/api/agents/$rooted" | jq -c .adapterConfig)}")" "^200 "
chmod 660 "$SOCK"
nouser=$(agent "$polco" nouser '{"command":"/bin/true","sandbox":{"user":"corral-no-such-user"}}')
final=$(wait_run "$(invoke "$nouser")")
like "a named user that does not exist fails the launch, saying so" "$(jq -r .error <<<"$final")" "corral-no-such-user' does not exist"

# A hidden path inside a shown one stays hidden, and a shown one inside a hidden one is seen,
# whichever order the policy lists them in.
mkdir -p "$WS/shared/secret" "$WS/shared/secret/open"
chmod 777 "$WS/shared" "$WS/shared/secret/open"
echo classified >"$WS/shared/secret/file"
echo public >"$WS/shared/secret/open/file"
cat >"$BIN/nested.sh" <<'AGENT'
#!/bin/sh
echo "write-shared: $(touch "$SHARED/mine" 2>&1 && echo ok)"
echo "read-secret: $(cat "$SHARED/secret/file" 2>&1)"
echo "read-open: $(cat "$SHARED/secret/open/file" 2>&1)"
AGENT
chmod 755 "$BIN/nested.sh"
nested=$(jq -nc --arg bin "$BIN" --arg shared "$WS/shared" \
        '{command: ($bin + "/nested.sh"), env: {SHARED: $shared},
          sandbox: {readOnlyPaths: [($shared + "/secret/open"), $bin], inaccessiblePaths: [($shared + "/secret")],
                    readWritePaths: [$shared]}}')
out=$(jq -r .stdoutExcerpt <<<"$(wait_run "$(invoke "$(agent "$polco" nested "$nested")")")")
is "a read-write path is writable" "$(grep '^write-shared:' <<<"$out")" "write-shared: ok"
like "an inaccessible path inside it is hidden" "$(grep '^read-secret:' <<<"$out")" "No such file"
is "a read-only path inside that is seen" "$(grep '^read-open:' <<<"$out")" "read-open: public"

# A symbolic link on a policy's path (one an agent could have planted) is refused, not followed.
ln -s /etc "$WS/link"
final=$(wait_run "$(invoke "$(agent "$polco" linked "$(config /bin/true "\"readWritePaths\":[\"$WS/link\"]")")")")
like "a symbolic link in a sandbox path fails the run" "$(jq -r .stderrExcerpt <<<"$final")" \
        "cannot find the sandbox path $WS/link: Too many levels of symbolic links"

cat >"$BIN/leaver.sh" <<'AGENT'
#!/bin/sh
sleep 600 &
echo left one behind
AGENT
chmod 755 "$BIN/leaver.sh"
leaver_run=$(invoke "$(agent "$polco" leaver "$(config "$BIN/leaver.sh")")")
wait_run "$leaver_run" >/dev/null
like "a process left behind is counted alone, the sandbox's init not with it" \
        "$(api GET "/api/heartbeat-runs/$leaver_run/events" | jq -r '.[].message')" "but 1 process it left behind"
check "and its cgroup is gone" test ! -e "$CG/run-$leaver_run"

cat >"$BIN/killall.sh" <<'AGENT'
#!/bin/sh
sleep 600 &
kill -9 -1
wait
echo "survived: its sleep was killed"
AGENT
chmod 755 "$BIN/killall.sh"
final=$(wait_run "$(invoke "$(agent "$polco" killall "$(config "$BIN/killall.sh")")")")
like "kill -9 -1 reaches only the agent's own processes" "$(jq -r .stdoutExcerpt <<<"$final")" "survived"
check "corrald came through it" kill -0 "$corrald_pid"
check "so did the spawner" kill -0 "$spawner"

# --- files ---
is "a run directory is root's only" "$(stat -c %a "$STATE/runs/$run")" 700
is "a run's log is root's only" "$(stat -c %a "$STATE/runs/$run/log.ndjson")" 600
is "an agent's home is its own" "$(stat -c '%u %a' "$STATE/homes/$attacker")" "$attacker_uid 700"

stop_daemon
is "corrald exits 0" "$DAEMON_STATUS" 0
is "no run cgroup is left" "$(find "$CG" -mindepth 1 -maxdepth 1 -type d | wc -l)" 0
finish
