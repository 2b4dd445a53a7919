#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# corrald as a daemon: configuration file and flags, readiness notification,
# SIGHUP reload, SIGTERM shutdown, socket handling, socket activation, and the
# refusal of a database written by a newer corral.
. "$(dirname "$0")/lib.sh"
require curl jq sqlite3 socat systemd-socket-activate

# --- flags and configuration errors ---
"$CORRALD" --help >"$T/help" 2>&1
is "--help exits 0" "$?" 0
like "--help lists the options" "$(cat "$T/help")" "--state-dir=DIR"
"$CORRALD" --frobnicate >/dev/null 2>&1
is "unknown flag: exit 2" "$?" 2
err=$("$CORRALD" --placement=somewhere 2>&1)
is "bad flag value: exit 2" "$?" 2
like "bad flag value is explained" "$err" "placement must be one of auto, scope, cgroup, none"
err=$("$CORRALD" --config "$T/missing.conf" --state-dir "$STATE" --socket "$SOCK" 2>&1)
is "missing --config file: exit 1" "$?" 1
like "missing --config file is named" "$err" "Failed to read configuration file $T/missing.conf"
printf 'state-dir = %s\nplacement = sideways\n' "$STATE" >"$T/bad.conf"
err=$("$CORRALD" --config "$T/bad.conf" --socket "$SOCK" 2>&1)
is "bad config value: exit 1" "$?" 1
like "bad config value names file and line" "$err" "bad.conf:2: placement must be one of"

# Without systemd as PID 1 there are no scopes: an explicit placement=scope is refused.
if [ ! -d /run/systemd/system ]; then
        err=$("$CORRALD" --state-dir "$STATE" --socket "$SOCK" --placement scope 2>&1)
        is "placement=scope without systemd: exit 1" "$?" 1
        like "and says why" "$err" "placement=scope needs systemd as PID 1"
fi

# --- configuration file plus flags, readiness ---
printf '# test\n[corrald]\nstate-dir = %s\nlog-level = info\nplacement = cgroup\nunknown-key = 1\n' "$STATE" >"$T/corrald.conf"
rm -f "$T/notify.sock"
socat -u UNIX-RECV:"$T/notify.sock",unlink-early - >"$T/notify.out" 2>/dev/null &
socat_pid=$!
for i in $(seq 50); do [ -S "$T/notify.sock" ] && break; sleep 0.05; done
NOTIFY_SOCKET=$T/notify.sock "$CORRALD" --config "$T/corrald.conf" --socket "$SOCK" --placement none >"$T/corrald.log" 2>&1 &
DAEMON_PID=$!
for i in $(seq 100); do "$CORRALCTL" status >/dev/null 2>&1 && break; sleep 0.05; done
h=$(api GET /api/health)
is "the file's state-dir is used" "$(jq -r .stateDir <<<"$h")" "$STATE"
is "a flag wins over the file" "$(jq -r .placement <<<"$h")" none
like "unknown keys are warned about" "$(cat "$T/corrald.log")" "corrald.conf:6: unknown key 'unknown-key', ignoring"
for i in $(seq 50); do grep -q READY=1 "$T/notify.out" && break; sleep 0.05; done
like "READY=1 sent to the notify socket" "$(cat "$T/notify.out")" "READY=1"
like "STATUS= sent with it" "$(cat "$T/notify.out")" "STATUS=Running, API on $SOCK"
is "socket mode is 0660" "$(stat -c %a "$SOCK")" 660

# --- SIGHUP reloads ---
sed -i 's/log-level = info/log-level = debug/' "$T/corrald.conf"
kill -HUP "$DAEMON_PID"
for i in $(seq 50); do grep -q "Configuration reloaded" "$T/corrald.log" && break; sleep 0.05; done
like "SIGHUP reloads the configuration" "$(cat "$T/corrald.log")" "Configuration reloaded \(log level debug\)"
api GET /api/health >/dev/null
like "the new log level applies" "$(cat "$T/corrald.log")" "GET /api/health -> 200"
like "RELOADING=1 then READY=1 sent" "$(tr '\n' ' ' <"$T/notify.out")" "RELOADING=1.*READY=1"
check "still serving after SIGHUP" "$CORRALCTL" status

# --- a second corrald does not steal the socket ---
err=$("$CORRALD" --state-dir "$T/state2" --socket "$SOCK" --placement none 2>&1)
is "second instance on a live socket: exit 1" "$?" 1
like "second instance says why" "$err" "Another corrald is already listening on $SOCK"
check "the first one still answers" "$CORRALCTL" status

# --- SIGTERM ---
stop_daemon
is "SIGTERM: exit 0" "$DAEMON_STATUS" 0
# corrald sent it before exiting; socat may not have written it out yet.
for i in $(seq 50); do grep -q STOPPING=1 "$T/notify.out" && break; sleep 0.05; done
like "STOPPING=1 sent" "$(cat "$T/notify.out")" "STOPPING=1"
check "socket file removed" test ! -e "$SOCK"
kill "$socat_pid" 2>/dev/null
wait "$socat_pid" 2>/dev/null

# --- a stale socket file from a crash is replaced; something else is not ---
check "start after SIGTERM" start_daemon
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
check "a SIGKILLed corrald leaves its socket file" test -S "$SOCK"
ino=$(stat -c %i "$SOCK")
check "start over a stale socket file" start_daemon
# Put in its place by a rename, so that the path never went missing meanwhile.
[ "$(stat -c %i "$SOCK")" != "$ino" ] && [ ! -e "$SOCK.new" ] && ok "... a new socket in its place, under its name alone" ||
        not_ok "... a new socket in its place, under its name alone"
stop_daemon
touch "$SOCK"
err=$("$CORRALD" --state-dir "$STATE" --socket "$SOCK" --placement none 2>&1)
like "a regular file at the socket path is not replaced" "$err" "exists and is not a socket"
rm -f "$SOCK"
err=$("$CORRALD" --state-dir "$STATE" --socket "$T/no/such/dir/and/a/file/x.sock" --placement none 2>&1 &
        sleep 1; kill $! 2>/dev/null)
check "the socket directory is created" test -d "$T/no/such/dir/and/a/file"

# --- socket activation ---
systemd-socket-activate -l "$SOCK" "$CORRALD" --state-dir "$STATE" --socket "$T/unused.sock" --placement none \
        >>"$T/corrald.log" 2>&1 &
DAEMON_PID=$!
for i in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
h=$(api GET /api/health)
is "socket activation: the first request starts corrald" "$(status)" 200
is "socket activation: corrald uses the passed socket" "$(jq -r .socketActivated <<<"$h")" true
check "socket activation: --socket is not created" test ! -e "$T/unused.sock"
stop_daemon

# --- a database from a newer corral is refused ---
sql 'PRAGMA user_version = 999'
err=$("$CORRALD" --state-dir "$STATE" --socket "$SOCK" --placement none 2>&1)
is "newer schema: exit 1" "$?" 1
like "newer schema is explained" "$err" "schema version 999, but this corrald only knows versions up to 11"
is "the newer database is left untouched" "$(sql 'PRAGMA user_version')" 999

finish
