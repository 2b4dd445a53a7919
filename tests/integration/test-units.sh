#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The systemd units as built: systemd-analyze verify finds nothing to say about them
# (with ExecStart pointed at the corrald of this build, which is not installed here),
# and they say what corrald(8) promises: notify, watchdog, socket activation, the
# state and runtime directories, runs in corral.slice.
. "$(dirname "$0")/lib.sh"
require systemd-analyze

U="$CORRAL_BUILDDIR/units"
mkdir -p "$T/units"
sed "s|^ExecStart=.*|ExecStart=$CORRALD|; s|^ExecReload=.*|ExecReload=/bin/kill -HUP \$MAINPID|" "$U/corrald.service" >"$T/units/corrald.service"
cp "$U/corrald.socket" "$CORRAL_SRCDIR/units/corral.slice" "$T/units/"
out=$(cd "$T/units" && systemd-analyze verify --man=no ./corrald.service ./corrald.socket ./corral.slice 2>&1)
is "systemd-analyze verify has nothing to say" "$out" ""

svc=$(cat "$U/corrald.service")
like "Type=notify" "$svc" '^Type=notify$'
like "a watchdog" "$svc" '^WatchdogSec=[1-9]'
like "restarted on failure" "$svc" '^Restart=on-failure$'
like "state directory /var/lib/corral" "$svc" '^StateDirectory=corral$'
like "runtime directory kept across restarts (the socket lives there)" "$svc" '^RuntimeDirectoryPreserve=yes$'
like "socket activation" "$svc" '^Requires=corrald.socket$'
like "ExecStart is the installed corrald, an absolute path" "$(sed -n 's/^ExecStart=//p' "$U/corrald.service")" '^/.*/sbin/corrald$'
sock=$(cat "$U/corrald.socket")
like "the socket is corral's" "$sock" "^ListenStream=.*/corral/corrald.sock$"
like "for root and group corral" "$sock" '^SocketGroup=corral$'
like "mode 0660" "$sock" '^SocketMode=0660$'
like "the sysusers file makes group corral" "$(cat "$CORRAL_SRCDIR/units/corral.sysusers")" '^g corral -$'
finish
