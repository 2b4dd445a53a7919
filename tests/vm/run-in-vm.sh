#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Inside the VM: run every scenario in order, numbering their TAP lines into one plan.
cd "$(dirname "$0")"
export VM_SHARE=$PWD
n=0
status=0
for s in scenarios/[0-9]*.sh; do
        echo "# --- $s"
        failed=0
        cursor=$(journalctl --show-cursor -n 0 -q 2>/dev/null | sed -n 's/^-- cursor: //p')
        while IFS= read -r line; do
                case $line in
                "ok "* | "not ok "*)
                        n=$((n + 1))
                        echo "$line" | sed -E "s/^(not )?ok [0-9]+/\1ok $n/"
                        case $line in "not ok "*) status=1 failed=1 ;; esac
                        ;;
                *) echo "$line" ;;
                esac
        done < <(bash "$s" 2>&1)
        # A failure shows, right under it, what corrald and systemd said of corrald meanwhile.
        if [ "$failed" -ne 0 ]; then
                echo "# corrald's journal during $s:"
                journalctl --no-pager -o short-monotonic ${cursor:+--after-cursor="$cursor"} -u corrald -u corrald.socket \
                        -u 'corral-run-*' 2>&1 | tail -n 150 | sed 's/^/#   /'
        fi
done
echo "1..$n"
exit $status
