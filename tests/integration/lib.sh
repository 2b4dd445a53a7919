# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared helpers of the integration tests: TAP output, a private corrald on a
# temporary state dir and socket (always stopped and removed on exit), and
# HTTP calls over the socket with curl.

set -u

BUILDDIR=${CORRAL_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
CORRALD=$BUILDDIR/corrald
CORRALCTL=$BUILDDIR/corralctl
SRCDIR=${CORRAL_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}

tap_n=0
tap_failed=0

skip_all() {
        echo "1..0 # SKIP $*"
        exit 77
}

require() {
        local cmd
        for cmd in "$@"; do
                command -v "$cmd" >/dev/null 2>&1 || skip_all "$cmd is not installed"
        done
}

ok() {
        tap_n=$((tap_n + 1))
        echo "ok $tap_n - $*"
}

not_ok() {
        tap_n=$((tap_n + 1))
        tap_failed=$((tap_failed + 1))
        echo "not ok $tap_n - $*"
}

# skip_point WHY: one test point skipped (on CI nothing should be missing: a skip there is a bug).
skip_point() {
        tap_n=$((tap_n + 1))
        echo "ok $tap_n # SKIP $*"
}

# check DESCRIPTION COMMAND...: one test point from a command's success.
check() {
        local desc=$1
        shift
        if "$@" >"$T/check.out" 2>&1; then
                ok "$desc"
        else
                not_ok "$desc"
                sed 's/^/# /' "$T/check.out" | head -n 20
        fi
}

# is DESCRIPTION GOT EXPECTED
is() {
        if [ "$2" = "$3" ]; then
                ok "$1"
        else
                not_ok "$1"
                echo "#   got:      '$2'"
                echo "#   expected: '$3'"
        fi
}

# like DESCRIPTION GOT PATTERN (grep -E)
like() {
        if printf '%s' "$2" | grep -Eq -- "$3"; then
                ok "$1"
        else
                not_ok "$1"
                echo "#   got:     '$2'"
                echo "#   pattern: '$3'"
        fi
}

finish() {
        check_answers
        echo "1..$tap_n"
        [ "$tap_failed" -eq 0 ]
}

T=$(mktemp -d /tmp/corral-it.XXXXXX)
STATE=$T/state
SOCK=$T/corrald.sock
DAEMON_PID=
export CORRAL_SOCKET=$SOCK
# What corrald answers api() and corralctl is kept here, for check_answers().
mkdir -p "$T/answers"
export CORRAL_RECORD_ANSWERS=$T/answers

# CORRAL_TEST_BACKEND=postgresql (tests/integration/run-pg.sh sets it): corrald keeps its
# state in a PostgreSQL server of this test's own, started here and stopped on exit, in a
# directory of its own (the server runs as the postgres user, which cannot enter $T).
BACKEND=${CORRAL_TEST_BACKEND:-sqlite}
PG_DIR=
DATABASE=$STATE/corral.db
if [ "$BACKEND" = postgresql ]; then
        "$SRCDIR/tests/pg-server.sh" bindir >/dev/null || skip_all "PostgreSQL's server (Debian package postgresql) is not installed"
        PG_DIR=$(mktemp -d /tmp/corral-itpg.XXXXXX)
        DATABASE=$("$SRCDIR/tests/pg-server.sh" start "$PG_DIR") || {
                echo "1..1"
                echo "not ok 1 - a PostgreSQL server starts"
                "$SRCDIR/tests/pg-server.sh" stop "$PG_DIR"
                rm -rf "$T"
                exit 1
        }
fi

# only_sqlite WHAT: skip the whole test on PostgreSQL, saying why.
only_sqlite() {
        if [ "$BACKEND" != sqlite ]; then
                "$SRCDIR/tests/pg-server.sh" stop "$PG_DIR"
                rm -rf "$T"
                skip_all "$* (SQLite only)"
        fi
}

# sql QUERY: what the database answers, rows on lines, columns separated by |, as
# sqlite3 prints them, on either backend.
sql() {
        if [ "$BACKEND" = postgresql ]; then
                psql -X -A -t -q -v ON_ERROR_STOP=1 "$DATABASE" -c "$1"
        else
                sqlite3 "$DATABASE" "$1"
        fi
}

cleanup() {
        stop_daemon
        if declare -F extra_cleanup >/dev/null; then
                extra_cleanup
        fi
        [ -z "$PG_DIR" ] || "$SRCDIR/tests/pg-server.sh" stop "$PG_DIR"
        # A failed test shows the end of corrald's log; CORRAL_KEEP=1 keeps the whole directory.
        if [ "$tap_failed" -gt 0 ] && [ -f "$T/corrald.log" ]; then
                echo "# last lines of corrald's log:"
                tail -n 30 "$T/corrald.log" | sed 's/^/#   /'
        fi
        [ -n "${CORRAL_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# The agent socket (every run's CORRAL_SOCKET), beside the operator socket.
AGENT_SOCK=$T/agent.sock
# The sandbox needs root and hides /tmp, where these tests keep their agents' scripts and
# the files they write: off unless a test asks for it (test-sandbox.sh does).
SANDBOX=${SANDBOX:-no}

# Sandboxed agents get uids of this test's own, so that tests running at once (make -j)
# never share an agent uid, nor count each other's processes as their own.
SANDBOX_UIDS=$((1880000000 + $$ % 100000 * 100))-$((1880000000 + $$ % 100000 * 100 + 99))

# start_daemon [EXTRA ARGS...]: start corrald, wait until it answers.
start_daemon() {
        "$CORRALD" --state-dir "$STATE" --database "$DATABASE" --socket "$SOCK" --placement none --sandbox "$SANDBOX" \
                --sandbox-uids "$SANDBOX_UIDS" --log-level debug "$@" \
                >>"$T/corrald.log" 2>&1 &
        DAEMON_PID=$!
        local i
        for i in $(seq 200); do
                if "$CORRALCTL" status >/dev/null 2>&1; then
                        return 0
                fi
                if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
                        echo "# corrald exited during startup:"
                        sed 's/^/#   /' "$T/corrald.log" | tail -n 20
                        DAEMON_PID=
                        return 1
                fi
                sleep 0.05
        done
        echo "# corrald did not answer within 10 s"
        return 1
}

# stop_daemon: SIGTERM, wait; SIGKILL if it does not stop within 10 s. Sets DAEMON_STATUS.
stop_daemon() {
        DAEMON_STATUS=
        [ -n "$DAEMON_PID" ] || return 0
        kill -TERM "$DAEMON_PID" 2>/dev/null
        local i
        for i in $(seq 200); do
                kill -0 "$DAEMON_PID" 2>/dev/null || break
                sleep 0.05
        done
        if kill -0 "$DAEMON_PID" 2>/dev/null; then
                echo "# corrald ignored SIGTERM, killing it"
                kill -KILL "$DAEMON_PID" 2>/dev/null
        fi
        wait "$DAEMON_PID" 2>/dev/null
        DAEMON_STATUS=$?
        DAEMON_PID=
}

# api METHOD PATH [BODY|@FILE]: the reply body goes to stdout, the status code to $T/status.
# Every answer is also kept in $T/answers, for finish() to check against the OpenAPI document.
api() {
        local method=$1 path=$2
        shift 2
        local data=() code ctype
        [ $# -gt 0 ] && data=(--data-binary "$1" -H 'Content-Type: application/json')
        curl -sS --unix-socket "$SOCK" -X "$method" "${data[@]}" -o "$T/body" -w '%{http_code} %{content_type}' \
                "http://localhost$path" >"$T/answer"
        read -r code ctype <"$T/answer"
        printf '%s' "$code" >"$T/status"
        record_answer "$method" "$path" "$code" "$ctype" "$T/body"
        cat "$T/body"
}

# record_answer METHOD PATH STATUS CONTENT-TYPE BODY-FILE: keep an answer for the OpenAPI check.
record_answer() {
        local f
        f=$(mktemp "$T/answers/api.XXXXXXXX") || return 0
        { printf '%s %s %s %s\n' "$1" "$2" "$3" "$4"; cat "$5" 2>/dev/null; } >"$f"
}

# The Python that has jsonschema: Debian's (python3-jsonschema), else the first python3.
openapi_python() {
        local py
        for py in /usr/bin/python3 python3; do
                if "$py" -c 'import jsonschema' 2>/dev/null; then
                        echo "$py"
                        return 0
                fi
        done
        return 1
}

# One test point: every answer this test was given validates against docs/openapi.json.
check_answers() {
        local py doc=$SRCDIR/docs/openapi.json
        [ -n "$(ls "$T/answers")" ] || return 0
        if ! py=$(openapi_python); then
                skip_point "python3-jsonschema is not installed: answers not checked against the OpenAPI document"
                return 0
        fi
        if "$py" "$SRCDIR/tests/integration/openapi-check.py" "$doc" "$T"/answers/* >"$T/openapi.out" 2>&1; then
                ok "every answer validates against the OpenAPI document ($(tail -n 1 "$T/openapi.out"))"
        else
                not_ok "every answer validates against the OpenAPI document"
                sed 's/^/# /' "$T/openapi.out" | tail -n 40
        fi
}

status() {
        cat "$T/status"
}

# The database's content, for "nothing changed" comparisons.
db_dump() {
        if [ "$BACKEND" = postgresql ]; then
                # Without the sequences' positions: a refused insert uses up a number too.
                # pg_dump's \restrict lines hold a key of each dump's own.
                pg_dump -d "$DATABASE" --data-only --no-owner 2>/dev/null | grep -Ev 'pg_catalog\.setval|^\\(un)?restrict '
        else
                sqlite3 "$DATABASE" .dump
        fi
}

# wait_for SECONDS CMD [ARGS...]: until CMD succeeds (0), or 1 after SECONDS. Tests wait for
# the state they then assert on, never for a time.
wait_for() {
        local limit=$1 i
        shift
        for i in $(seq $((limit * 20))); do
                "$@" && return 0
                sleep 0.05
        done
        return 1
}

# run_is RUN STATUS: whether the run is in STATUS now.
run_is() {
        [ "$(api GET "/api/heartbeat-runs/$1" | jq -r .status)" = "$2" ]
}

# run_started RUN: whether the run's agent is running (its pid is recorded).
run_started() {
        [ "$(api GET "/api/heartbeat-runs/$1" | jq -r '.status + " " + (.processPid != null | tostring)')" = "running true" ]
}

# wait_run_status RUN STATUS [SECONDS]: until the run is in STATUS.
wait_run_status() {
        wait_for "${3:-15}" run_is "$1" "$2"
}

# wait_run_started RUN [SECONDS]: until the run's agent runs.
wait_run_started() {
        wait_for "${2:-15}" run_started "$1"
}

# field_is PATH JQ VALUE: whether GET PATH, through jq -r JQ, is VALUE.
field_is() {
        [ "$(api GET "$1" | jq -r "$2")" = "$3" ]
}

# log_has PATTERN: whether corrald's log has a line matching PATTERN (grep -E).
log_has() {
        grep -Eq "$1" "$T/corrald.log"
}

# size_and_sha256 FILE: "SIZE SHA256" of a file, as a run's logBytes and logSha256 give it.
size_and_sha256() {
        echo "$(stat -c %s "$1") $(sha256sum "$1" | cut -d' ' -f1)"
}

# gone PID: whether the process is gone.
gone() {
        ! kill -0 "$1" 2>/dev/null
}

# wait_run RUN [SECONDS]: until the run is terminal; prints its final JSON.
wait_run() {
        local run=$1 limit=${2:-30} i status
        for i in $(seq $((limit * 20))); do
                status=$(api GET "/api/heartbeat-runs/$run" | jq -r .status)
                case "$status" in
                succeeded | failed | cancelled | timed_out)
                        api GET "/api/heartbeat-runs/$run"
                        return 0
                        ;;
                esac
                sleep 0.05
        done
        echo "# run $run still $status after $limit s" >&2
        api GET "/api/heartbeat-runs/$run"
        return 1
}

# The cgroup v2 mount point, from mountinfo (never assumed).
cgroup2_mount() {
        awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' /proc/self/mountinfo | head -n 1
}

# remove_run_cgroups ROOT: kill what is left in each run cgroup under ROOT and remove them
# and ROOT (a test's extra_cleanup, for the cgroup backend).
remove_run_cgroups() {
        local d
        for d in "$1"/run-*; do
                [ -d "$d" ] || continue
                echo 1 >"$d/cgroup.kill" 2>/dev/null
                for _ in $(seq 20); do rmdir "$d" 2>/dev/null && break; sleep 0.05; done
        done
        rmdir "$1" 2>/dev/null
}

# Processes whose command line holds a marker (tests only: corrald never scans pids).
marker_procs() {
        local f n=0
        # "[c]orral-..." matches the marker but not grep's own command line.
        for f in $(grep -l -a -- "[${1:0:1}]${1:1}" /proc/[0-9]*/cmdline 2>/dev/null | grep -v "/proc/$$/"); do
                n=$((n + 1))
                echo "# left: ${f%/cmdline} $(tr '\0' ' ' <"$f" 2>/dev/null) in $(tail -n 1 "${f%/cmdline}/cgroup" 2>/dev/null)" >&2
        done
        echo "$n"
}
