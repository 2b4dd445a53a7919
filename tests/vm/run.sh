#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Boot the VM image with a real systemd as PID 1, install corral's .deb in it, run the
# scenarios of tests/vm/scenarios there, and print their TAP.
#   run.sh --deb PATH [--cache DIR] [--timeout SECONDS] [--bench DIR] [--probe PATH]
# CORRAL_VM_SCENARIOS, a list of scenario numbers ("10 35"), runs only those.
# --bench DIR: the built tests/bench programs, for the scope launch benchmark; its table
# is left in bench-scope.txt beside --deb.
# --probe PATH: the built tests/integration/sandbox-probe, for the hostile agents of the
# sandbox scenario.
# Exits 0 when every scenario passed, 1 otherwise.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${CORRAL_VM_CACHE:-/var/tmp/corral-vm-cache}
deb=
bench=
probe=
limit=1200
while [ $# -gt 0 ]; do
        case $1 in
        --deb) deb=$(realpath "$2"); shift 2 ;;
        --cache) cache=$2; shift 2 ;;
        --timeout) limit=$2; shift 2 ;;
        --bench) bench=$(realpath "$2"); shift 2 ;;
        --probe) probe=$(realpath "$2"); shift 2 ;;
        *) echo "usage: $0 --deb PATH [--cache DIR] [--timeout SECONDS] [--bench DIR] [--probe PATH]" >&2; exit 2 ;;
        esac
done
[ -f "$deb" ] || { echo "run.sh: --deb must name corral's .deb" >&2; exit 2; }

"$here/build-image.sh" "$cache"
# Absolute: the overlay below names it as its backing file, from another directory.
cache=$(realpath "$cache")

share=$(mktemp -d /tmp/corral-vm-share.XXXXXX)
overlay=$share.qcow2
cleanup() { rm -rf "$share" "$overlay"; }
trap cleanup EXIT

# The scenarios, the package, and a second build of it with a higher version for the
# upgrade scenario (same files, repacked).
# CORRAL_VM_SCENARIOS="10 35", for a developer's quicker boot: only those scenarios.
mkdir "$share/scenarios"
cp "$here/scenarios/lib.sh" "$share/scenarios/"
for s in "$here"/scenarios/[0-9]*.sh; do
        n=$(basename "$s")
        if [ -z "${CORRAL_VM_SCENARIOS:-}" ] || grep -qw -- "${n%%-*}" <<<"$CORRAL_VM_SCENARIOS"; then
                cp "$s" "$share/scenarios/"
        fi
done
cp "$here/run-in-vm.sh" "$share/"
cp "$deb" "$share/corral.deb"
if [ -n "$bench" ]; then
        mkdir -p "$share/bench"
        cp "$bench/bench" "$bench/bench-agent" "$share/bench/"
fi
[ -z "$probe" ] || cp "$probe" "$share/sandbox-probe"
repack=$(mktemp -d /tmp/corral-vm-repack.XXXXXX)
dpkg-deb -R "$deb" "$repack/pkg"
sed -i 's/^Version: \(.*\)$/Version: \1+vmupgrade1/' "$repack/pkg/DEBIAN/control"
dpkg-deb -b -Zxz "$repack/pkg" "$share/corral-upgrade.deb" >/dev/null
rm -rf "$repack"

# A copy-on-write layer over the cached image: every boot starts from a clean system.
qemu-img create -q -f qcow2 -F raw -b "$cache/rootfs.img" "$overlay"

boot() {
        set +e
        timeout --foreground "$limit" qemu-system-x86_64 "$@" -m 2048 -smp 2 -nographic -no-reboot \
                -kernel "$cache/vmlinuz" -initrd "$cache/initrd.img" \
                -append "root=/dev/vda rw console=ttyS0 panic=-1 systemd.show_status=0 quiet" \
                -drive "file=$overlay,if=virtio,format=qcow2" \
                -virtfs "local,path=$share,mount_tag=host,security_model=none,id=host" \
                -netdev user,id=net0 -device virtio-net-pci,netdev=net0 \
                -serial "file:$share/console.log" -monitor none -display none 2>"$share/qemu.err"
        qemu_rc=$?
        set -e
}

echo "# booting the VM (console: $share/console.log)" >&2
qemu_rc=1
# /dev/kvm may exist where the CPU offers no virtualization (a nested guest without it):
# KVM is used only when the CPU says vmx or svm.
if [ -r /dev/kvm ] && [ -w /dev/kvm ] && grep -qw -e vmx -e svm /proc/cpuinfo; then
        # Nested KVM may refuse the host's ARCH_CAPABILITIES MSR: leave it out.
        boot -machine q35,accel=kvm -cpu host,-arch-capabilities
        if [ ! -f "$share/results.tap" ] && [ "$qemu_rc" != 124 ]; then
                echo "# KVM did not run the VM ($(head -c 200 "$share/qemu.err")); software emulation" >&2
                qemu-img create -q -f qcow2 -F raw -b "$cache/rootfs.img" "$overlay"
                boot -machine q35,accel=tcg
        fi
else
        echo "# no usable KVM here: software emulation (TCG)" >&2
        boot -machine q35,accel=tcg
fi

if [ ! -f "$share/results.tap" ]; then
        echo "not ok 1 - the VM ran its scenarios (qemu exit $qemu_rc, no results)"
        echo "# last lines of the console:"
        tail -n 40 "$share/console.log" | sed 's/^/#   /'
        exit 1
fi
cat "$share/results.tap"
[ -f "$share/bench-scope.txt" ] && cp "$share/bench-scope.txt" "$(dirname "$deb")/"
if [ -s "$share/results.err" ]; then
        echo "# scenario stderr:"
        tail -n 40 "$share/results.err" | sed 's/^/#   /'
fi
[ "$(cat "$share/results.rc" 2>/dev/null)" = 0 ] && ! grep -q '^not ok' "$share/results.tap"
