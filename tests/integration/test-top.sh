#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# corralctl top, driven in tmux as a user would: a run appears, changes status and leaves
# once it is no longer recent; keys sort it and q quits; without a terminal it prints plain
# tables. On the cgroup backend, where each run's cgroup has its CPU figures.
. "$(dirname "$0")/lib.sh"
require curl jq tmux
[ "$(id -u)" -eq 0 ] || skip_all "needs root: runs get cgroups of their own"
MOUNT=$(cgroup2_mount)
[ -n "$MOUNT" ] || skip_all "no cgroup v2 hierarchy is mounted"
CG=$MOUNT/corral-it-$$
TMUX_SOCKET=corral-top-$$

extra_cleanup() {
        tmux -L "$TMUX_SOCKET" kill-server 2>/dev/null
        remove_run_cgroups "$CG"
}

screen() {
        tmux -L "$TMUX_SOCKET" capture-pane -p -t top
}
shows() {
        screen | grep -Eq -- "$1"
}

check "corrald starts" start_daemon --sweep-interval-sec 86400 --placement cgroup --cgroup-root "$CG"
company=$(api POST /api/companies '{"name":"Topped","issuePrefix":"TOP"}' | jq -r .id)
# Sleeps, so that it is seen running, then spins, so that it uses CPU.
cat >"$T/worker" <<'AGENT'
#!/bin/bash
sleep 2
end=$((SECONDS + 3))
while [ $SECONDS -lt $end ]; do :; done
echo done
AGENT
chmod 755 "$T/worker"
agent=$(api POST "/api/companies/$company/agents" "{\"name\":\"worker\",\"adapterConfig\":{\"command\":\"$T/worker\"}}" | jq -r .id)
issue=$(api POST "/api/companies/$company/issues" '{"title":"spin"}' | jq -r .id)

tmux -L "$TMUX_SOCKET" new-session -d -s top -x 120 -y 20 \
        "CORRAL_SOCKET='$SOCK' '$CORRALCTL' top --recent 3; sleep 30"
check "top draws its screen" wait_for 10 shows "^corral top: 0 active"
like "with its columns" "$(screen)" "RUN +AGENT +ISSUE +STATUS +DURATION +CPU% +MEMORY +LOG +COST"
run=$(api POST "/api/agents/$agent/wakeup" "{\"payload\":{\"issueId\":\"$issue\"}}" | jq -r .id)
check "the run appears, running, by its agent's name and its issue's identifier" wait_for 10 shows "^${run:0:8} +worker +TOP-1 +running "
check "its CPU is shown while it spins" wait_for 10 shows "^${run:0:8} .* running +[0-9.]+s +[1-9][0-9]*\\.[0-9] "
tmux -L "$TMUX_SOCKET" send-keys -t top c
check "c sorts by CPU" wait_for 5 shows "sorted by cpu"
check "it changes to succeeded" wait_for 15 shows "^${run:0:8} +worker .* succeeded "
like "with its log's size" "$(screen | grep "^${run:0:8}")" " [1-9][0-9]*B "
check "it leaves once it is not recent" wait_for 10 sh -c "! tmux -L '$TMUX_SOCKET' capture-pane -p -t top | grep -q '^${run:0:8}'"
tmux -L "$TMUX_SOCKET" send-keys -t top q
check "q quits" wait_for 5 sh -c "tmux -L '$TMUX_SOCKET' list-panes -t top -F '#{pane_current_command}' | grep -qx sleep"

# --- without a terminal ---
out=$(CORRAL_SOCKET=$SOCK "$CORRALCTL" top --recent 60)
like "without a terminal: one plain table" "$out" "^corral top: 0 active, 1 recent runs; sorted by start$"
like "... with the run" "$out" "${run:0:8} +worker"
is "... and no escape sequences" "$(grep -c $'\033' <<<"$out")" 0
is "--iterations 2 prints two" "$(CORRAL_SOCKET=$SOCK "$CORRALCTL" top --iterations 2 --delay 0.2 | grep -c '^corral top')" 2
for bad in "--sort speed" "--delay 0" "--iterations 0" "--recent soon"; do
        # shellcheck disable=SC2086
        out=$(CORRAL_SOCKET=$SOCK "$CORRALCTL" top $bad 2>&1)
        is "top $bad is a usage error" "$?" 2
        like "... that says what is wrong" "$out" "^corralctl: ${bad%% *} must"
done
finish
