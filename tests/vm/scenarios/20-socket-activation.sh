#!/bin/bash
# Socket activation: with corrald stopped, the first API call starts it.
. "$(dirname "$0")/lib.sh"
systemctl stop corrald.service
is "corrald is stopped" "$(systemctl is-active corrald.service)" inactive
is "its socket still listens" "$(systemctl is-active corrald.socket)" active
check "the first API call is answered" corralctl status
is "and started corrald" "$(systemctl is-active corrald.service)" active
