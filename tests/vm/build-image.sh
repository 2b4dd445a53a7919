#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Build (or reuse) the VM image the systemd tests boot: Debian 12 with systemd as PID 1,
# a kernel and initrd to boot it directly, and what corral's package depends on.
#   build-image.sh CACHE_DIR
# Leaves CACHE_DIR/{rootfs.img,vmlinuz,initrd.img}; rebuilt only when this script changes.
set -euo pipefail

cache=$(realpath -m "$1")
# The mirror this machine's apt uses (it may be the only one reachable), else Debian's.
host_mirror() {
        { sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null
          sed -n 's/^deb \+\(\[[^]]*\] \+\)\?\([^ ]*\) \+bookworm .*/\2/p' /etc/apt/sources.list 2>/dev/null; } |
                grep -v -e security -e '^$' | grep '/debian/\?$' | head -n 1 || true
}
mirror=${CORRAL_VM_MIRROR:-$(host_mirror)}
mirror=${mirror:-http://deb.debian.org/debian}
key=$(sha256sum "$0" | cut -c1-16)

if [ -f "$cache/$key.done" ] && [ -f "$cache/rootfs.img" ]; then
        exit 0
fi
mkdir -p "$cache"
rm -f "$cache"/*.done "$cache/rootfs.img"
root=$(mktemp -d /tmp/corral-vm-root.XXXXXX)
trap 'rm -rf "$root"' EXIT

packages=(
        systemd systemd-sysv dbus udev linux-image-amd64 kmod e2fsprogs
        procps curl jq ca-certificates
        # corral's runtime dependencies (its .deb is installed in the test, offline)
        libsystemd0 libsqlite3-0 libpq5 libcjson1 libmicrohttpd12 libcurl4 libssl3
)
echo "building the VM image in $cache (Debian bookworm from $mirror)" >&2
mmdebstrap --quiet --variant=minbase --include="$(
        IFS=,
        echo "${packages[*]}"
)" --customize-hook='cp "'"$(dirname "$0")"'/guest/corral-vm-test" "$1/usr/local/sbin/corral-vm-test"' \
        --customize-hook='cp "'"$(dirname "$0")"'/guest/corral-vm-test.service" "$1/etc/systemd/system/"' \
        --customize-hook='chroot "$1" systemctl enable corral-vm-test.service' \
        --customize-hook='echo corral-vm > "$1/etc/hostname"' \
        --customize-hook='echo "/dev/vda / ext4 rw,errors=remount-ro 0 1" > "$1/etc/fstab"' \
        --customize-hook='passwd --root "$1" -d root' \
        bookworm "$root" "$mirror"

cp "$root"/boot/vmlinuz-* "$cache/vmlinuz"
cp "$root"/boot/initrd.img-* "$cache/initrd.img"
# An ext4 image made from the tree, no loop mount needed; room for the tests' runs.
mke2fs -q -t ext4 -d "$root" -L corral-vm "$cache/rootfs.img" 3G
touch "$cache/$key.done"
