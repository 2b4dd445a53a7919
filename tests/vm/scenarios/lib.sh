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
# retry SECONDS COMMAND...: until the command succeeds.
retry() {
        local limit=$1 i
        shift
        for i in $(seq $((limit * 10))); do
                "$@" >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        "$@"
}
api() {
        local method=$1 path=$2 data=()
        shift 2
        [ $# -gt 0 ] && data=(-H 'Content-Type: application/json' --data-binary "$1")
        curl -sS --unix-socket /run/corral/corrald.sock -X "$method" "${data[@]}" "http://localhost$path"
}
