#!/bin/bash
# The VM is what the tests need: systemd as PID 1, its bus, cgroup v2.
. "$(dirname "$0")/lib.sh"
is "systemd is PID 1" "$(cat /proc/1/comm)" systemd
is "the system reached multi-user.target" "$(systemctl is-active multi-user.target)" active
like "cgroup v2 is mounted at /sys/fs/cgroup" "$(awk '$5 == "/sys/fs/cgroup" {print $9}' /proc/self/mountinfo)" '^cgroup2$'
