#!/bin/bash
# Installing the package: group, units enabled and started, units verified.
. "$(dirname "$0")/lib.sh"
out=$(dpkg -i "$VM_SHARE/corral.deb" 2>&1)
check "dpkg -i corral.deb" test $? = 0 || echo "$out" | sed 's/^/#   /'
check "group corral exists" getent group corral
check "systemctl enable --now corrald" systemctl enable --now corrald.service
is "corrald.socket is enabled" "$(systemctl is-enabled corrald.socket)" enabled
is "corrald.service is enabled" "$(systemctl is-enabled corrald.service)" enabled
is "corrald.socket is listening" "$(systemctl is-active corrald.socket)" active
like "the socket belongs to root:corral, mode 0660" "$(stat -c '%U:%G %a' /run/corral/corrald.sock)" '^root:corral 660$'
# The image has no man-db to look up Documentation=; the pages themselves are checked below.
is "systemd-analyze verify has nothing to say" "$(systemd-analyze verify --man=no corrald.service corrald.socket corral.slice 2>&1)" ""
for page in man1/corralctl.1 man5/corrald.conf.5 man8/corrald.8; do
        check "the unit's documentation $page is installed" test -f /usr/share/man/$page.gz
done
echo "# systemd-analyze security: $(systemd-analyze security corrald.service 2>/dev/null | tail -n 1)"
check "corralctl status answers" retry 10 corralctl status
is "corrald runs under systemd" "$(systemctl is-active corrald.service)" active
like "it placed runs in scopes" "$(journalctl -u corrald.service -b --no-pager -o cat | grep -m1 'Runs are placed')" "scopes of corral.slice"
