# SPDX-License-Identifier: LGPL-2.1-or-later
# TAP helpers for scenarios in the VM; run-in-vm.sh numbers the lines.
ok() { echo "ok 0 - $1"; }
not_ok() { echo "not ok 0 - $1"; }
is() {
        if [ "$2" = "$3" ]; then ok "$1"; else
                not_ok "$1"
                echo "#   got:      '$2'"
                echo "#   expected: '$3'"
        fi
}
like() {
        if grep -Eq -- "$3" <<<"$2"; then ok "$1"; else
                not_ok "$1"
                echo "#   got:     '$2'"
                echo "#   pattern: '$3'"
        fi
}
check() {
        local what=$1
        shift
        if "$@"; then ok "$what"; else not_ok "$what (exit $?)"; fi
}
# retry SECONDS COMMAND...: until the command succeeds. The command is run again each
# time: a "$(...)" among its words is not (use field_is for an API answer's field).
retry() {
        local limit=$1 i
        shift
        for i in $(seq $((limit * 10))); do
                "$@" >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        "$@"
}
# api METHOD PATH [BODY]: the operator socket's answer. A connection that ends without an
# answer is a fault of corrald's: it is said, with what corrald's journal says of it, and
# the request is tried again (at most twice) so that one fault is not 20 failures; the
# scenario's checks then see the answer, and a restarted corrald shows in its own checks.
api() {
        local method=$1 path=$2 data=() try rc out
        shift 2
        [ $# -gt 0 ] && data=(-H 'Content-Type: application/json' --data-binary "$1")
        for try in 1 2 3; do
                out=$(curl -sS -w '\n%{http_code}' --unix-socket /run/corral/corrald.sock -X "$method" "${data[@]}" \
                        "http://localhost$path" 2>&1)
                rc=$?
                if [ $rc -eq 0 ]; then
                        # corrald refusing for want of time or resources is worth a word too.
                        case ${out##*$'\n'} in 5*) echo "# api $method $path: ${out##*$'\n'} ${out%$'\n'*}" >&2 ;; esac
                        out=${out%$'\n'*}
                        break
                fi
                echo "# api $method $path: curl exit $rc ($out) at $(cut -d' ' -f1 /proc/uptime) s; corrald's journal:" >&2
                journalctl -u corrald -b --no-pager -n 15 -o short-monotonic 2>&1 | sed 's/^/#   /' >&2
                sleep 1
        done
        printf '%s' "$out"
        return $rc
}
# run_ended RUN: the run has its final status (an error answer is no status).
run_ended() {
        case $(api GET "/api/heartbeat-runs/$1" | jq -r .status) in
        succeeded | failed | cancelled | timed_out) return 0 ;;
        *) return 1 ;;
        esac
}
# field_is PATH JQ VALUE: the field of the answer to GET PATH is VALUE (for retry).
field_is() {
        test "$(api GET "$1" | jq -r "$2")" = "$3"
}
