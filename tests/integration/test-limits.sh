#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# What holds a run without corrald (corrald(8), RUNS and LIMITS), on the cgroup backend
# with the state directory on a small tmpfs: the shim enforces the run's timeout while
# corrald is stopped, stops a run whose output passes the log quota, and when the disk
# is full keeps the agent's output flowing, counts what it lost and keeps the exit status.
. "$(dirname "$0")/lib.sh"
require curl jq sqlite3 fallocate

[ "$(id -u)" -eq 0 ] || skip_all "needs root: a tmpfs for the state directory, cgroups for the runs"
MOUNT=$(cgroup2_mount)
[ -n "$MOUNT" ] || skip_all "no cgroup v2 hierarchy is mounted"
CG=$MOUNT/corral-it-$$

mkdir -p "$STATE"
mount -t tmpfs -o size=24m,mode=0700 corral-test "$STATE" || skip_all "cannot mount a tmpfs"
extra_cleanup() {
        remove_run_cgroups "$CG"
        umount "$STATE" 2>/dev/null
}

check "corrald starts with a 1 MiB log quota" start_daemon --placement cgroup --cgroup-root "$CG" --quota-log-mib 1
company=$(api POST /api/companies '{"name":"Limits","issuePrefix":"LIM"}' | jq -r .id)
agent() {
        api POST "/api/companies/$company/agents" "{\"name\":\"$1\",\"adapterConfig\":$2}" | jq -r .id
}
invoke() { api POST "/api/agents/$1/heartbeat/invoke" | jq -r .id; }

# --- the timeout holds while corrald is stopped ---
sleeper=$(agent sleeper '{"command":"sleep","args":["600"],"timeoutSec":3,"graceSec":1}')
run=$(invoke "$sleeper")
check "the sleeper runs" wait_run_started "$run"
pid=$(api GET "/api/heartbeat-runs/$run" | jq -r .processPid)
kill -STOP "$DAEMON_PID"
check "with corrald stopped, the shim stops the agent at its timeout" wait_for 20 gone "$pid"
kill -CONT "$DAEMON_PID"
final=$(wait_run "$run" 20)
is "the run timed out" "$(jq -r '[.status, .errorCode] | join(" ")' <<<"$final")" "timed_out timeout"

# --- the log quota ---
talker=$(agent talker '{"command":"/bin/sh","args":["-c","yes corral | head -c 20000000; exit 0"]}')
run=$(invoke "$talker")
final=$(wait_run "$run" 30)
is "a run writing 20 MB against a 1 MiB quota is stopped" "$(jq -r '[.status, .errorCode] | join(" ")' <<<"$final")" \
        "failed log_limit"
is "saying why" "$(jq -r .error <<<"$final")" "Stopped: its output passed the log quota of a run (quota-log-mib)"
log_size=$(stat -c %s "$STATE/runs/$run/log.ndjson")
check "its log stops near the quota ($log_size bytes)" test "$log_size" -lt 2000000

# --- a full disk ---
mkfifo "$T/go1" "$T/go2"
writer=$(agent writer "{\"command\":\"/bin/sh\",\"args\":[\"-c\",\"echo before; read x <$T/go1; yes y | head -c 600000; touch $T/wrote; read x <$T/go2; exit 7\"]}")
run=$(invoke "$writer")
check "the writer runs" wait_run_started "$run"
check "and wrote its first line" wait_for 10 grep -q before "$STATE/runs/$run/log.ndjson"
fill() { fallocate -l "$(($(stat -f -c '%a * %S' "$STATE")))" "$STATE/filler" 2>/dev/null || true; }
fill
is "the state directory is full" "$(stat -f -c %a "$STATE")" 0
like "health says so" "$(api GET /api/health | jq -c .degraded)" "the state directory's file system is full"
# 600 kB while the disk is full: held in memory, the agent never blocks.
echo go >"$T/go1"
check "the agent writes all of it with the disk full" wait_for 10 test -e "$T/wrote"
rm -f "$STATE/filler"
ys() { jq -r 'select(.stream == "stdout") | .chunk' "$STATE/runs/$run/log.ndjson" 2>/dev/null | tr -cd y | wc -c; }
all_ys() { [ "$(ys)" -eq 300000 ]; }
check "once there is room, what was held back is written, all of it" wait_for 10 all_ys
# Full again when the agent exits: its output after this is lost, its exit status is not.
fill
echo go >"$T/go2"
# (Whether the database can take the run's end meanwhile depends on room SQLite's WAL kept;
# when it cannot, the end waits in memory: test-faults.sh shows that with a lock.)
gone_agent() { ! pgrep -f "read x <$T/go2" >/dev/null; }
check "the agent exited with the disk full" wait_for 20 gone_agent
rm -f "$STATE/filler"
final=$(wait_run "$run" 40)
is "the run's exit status survived the full disk" "$(jq -r '[.status, .exitCode] | join(" ")' <<<"$final")" "failed 7"
is "nothing was lost this time" "$(jq -r '.resultJson.logTruncatedBytes // 0' <<<"$final")" 0
# The shim hashed what it wrote in pieces around the full disk: the digest is the file's.
log=$STATE/runs/$run/log.ndjson
is "its log's size and digest are the file's" "$(jq -r '"\(.logBytes) \(.logSha256)"' <<<"$final")" \
        "$(size_and_sha256 "$log")"
is "... as the shim gave them" "$(jq -r '"\(.logFileBytes) \(.logSha256)"' "$STATE/runs/$run/status.json")" \
        "$(jq -r '"\(.logBytes) \(.logSha256)"' <<<"$final")"

# Output while the disk stays full past the agent's end is counted as lost.
loser=$(agent loser "{\"command\":\"/bin/sh\",\"args\":[\"-c\",\"read x <$T/go1; yes z | head -c 900000; exit 3\"]}")
run=$(invoke "$loser")
check "the loser runs" wait_run_started "$run"
fill
echo go >"$T/go1"
check "corrald says output was lost" wait_for 30 log_has "Run $run: [0-9]+ byte\\(s\\) of its output were lost"
rm -f "$STATE/filler"
final=$(wait_run "$run" 40)
is "its exit status survived" "$(jq -r '[.status, .exitCode] | join(" ")' <<<"$final")" "failed 3"
lost=$(jq -r '.resultJson.logTruncatedBytes // 0' <<<"$final")
is "logTruncatedBytes counts what was lost" "$lost" 900000
log=$STATE/runs/$run/log.ndjson
is "its log's size and digest are those of what was written" "$(jq -r '"\(.logBytes) \(.logSha256)"' <<<"$final")" \
        "$(size_and_sha256 "$log")"
is "... as the shim gave them" "$(jq -r '"\(.logFileBytes) \(.logSha256)"' "$STATE/runs/$run/status.json")" \
        "$(jq -r '"\(.logBytes) \(.logSha256)"' <<<"$final")"
like "and an event says so" "$(api GET "/api/heartbeat-runs/$run/events" | jq -r '.[] | select(.eventType == "log_truncated") | .message')" \
        "^log_truncated: [0-9]+ byte\\(s\\) of output were lost"

finish
