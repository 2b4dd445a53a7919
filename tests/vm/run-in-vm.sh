#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Inside the VM: run every scenario in order, numbering their TAP lines into one plan.
cd "$(dirname "$0")"
export VM_SHARE=$PWD
n=0
status=0
for s in scenarios/[0-9]*.sh; do
        echo "# --- $s"
        while IFS= read -r line; do
                case $line in
                "ok "* | "not ok "*)
                        n=$((n + 1))
                        echo "$line" | sed -E "s/^(not )?ok [0-9]+/\1ok $n/"
                        case $line in "not ok "*) status=1 ;; esac
                        ;;
                *) echo "$line" ;;
                esac
        done < <(bash "$s" 2>&1)
done
echo "1..$n"
# A failure shows what corrald said meanwhile.
if [ "$status" -ne 0 ]; then
        echo "# corrald's journal, last 200 lines:"
        journalctl -u corrald --no-pager -n 200 -o short-monotonic 2>&1 | sed 's/^/#   /'
fi
exit $status
