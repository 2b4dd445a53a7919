#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Developer entry point for a fresh Debian 12 machine:
#   contrib/dev.sh run     install what is missing, build, run corrald on ./.dev-state and show it working
#   contrib/dev.sh check   install what is missing, build, run the whole test suite
#   contrib/dev.sh deps    only install what is missing
#   contrib/dev.sh build   install what is missing and build
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${CORRAL_BUILDDIR:-$top/build}

# Build and test dependencies, all from Debian 12's archive.
packages=(
        build-essential autoconf automake libtool pkg-config
        libsystemd-dev libsqlite3-dev libcjson-dev libcmocka-dev
        libmicrohttpd-dev libcurl4-openssl-dev libssl-dev libseccomp-dev libpq-dev
        curl sqlite3 jq procps iproute2 socat systemd clang-format python3 python3-jsonschema git tmux
)

# What only the full check needs: package builds and the VM with a real systemd.
check_packages=(
        debhelper dpkg-dev fakeroot lintian bash-completion rpm
        mmdebstrap qemu-system-x86 qemu-utils e2fsprogs
        clang libclang-rt-14-dev
        prometheus postgresql
)

log() { printf '==> %s\n' "$*" >&2; }

install_deps() {
        local missing=() p
        for p in "${packages[@]}" "$@"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
        done
        [ ${#missing[@]} -eq 0 ] && return 0
        log "installing: ${missing[*]}"
        local sudo=
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        $sudo apt-get update -qq
        # A package's service (prometheus's) is not started: the tests start what they need
        # themselves, and stop it.
        local guard=
        if [ ! -e /usr/sbin/policy-rc.d ]; then
                printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
                $sudo chmod +x /usr/sbin/policy-rc.d
                guard=1
        fi
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" || {
                [ -z "$guard" ] || $sudo rm -f /usr/sbin/policy-rc.d
                return 1
        }
        [ -z "$guard" ] || $sudo rm -f /usr/sbin/policy-rc.d
}

build() {
        install_deps
        cd "$top"
        if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
                log "autoreconf"
                autoreconf -fi
        fi
        mkdir -p "$builddir"
        cd "$builddir"
        if [ ! -f Makefile ] || [ "$top/configure" -nt config.status ]; then
                log "configure"
                "$top/configure" --enable-werror ${CORRAL_CONFIGURE_FLAGS:-}
        fi
        log "make"
        make -j"$(nproc)"
}

# Print the logs of failed tests so CI output says what went wrong.
show_failures() {
        find "$1" -name '*.log' -path '*tests*' -print0 |
                xargs -0 grep -l -E '^(not ok|Bail out|# (FAIL|ERROR): *[1-9])' 2>/dev/null |
                while read -r f; do
                        echo "---- $f"
                        tail -n 80 "$f"
                done
}

format_check() {
        cd "$top"
        local files
        if git rev-parse --git-dir >/dev/null 2>&1; then
                files=$(git ls-files '*.c' '*.h')
        else
                files=$(find src tests -name '*.[ch]')
        fi
        log "clang-format check"
        # shellcheck disable=SC2086
        clang-format --dry-run -Werror $files
}

# The coding CLIs that tests/integration/test-cli-*.sh drive, from the npm registry at the
# versions in tests/cli/versions (the tests install them too; here a failure shows first).
install_clis() {
        command -v npm >/dev/null || install_deps nodejs npm
        local name
        for name in $(awk '!/^#/ && NF { print $1 }' "$top/tests/cli/versions"); do
                log "coding CLI: $name"
                "$top/tests/cli/install.sh" "$name" >/dev/null
        done
}

cmd_check() {
        install_deps "${check_packages[@]}"
        install_clis
        build
        format_check
        cd "$builddir"
        log "make check"
        make -j"$(nproc)" check || { show_failures "$builddir"; exit 1; }

        # The same suite under AddressSanitizer and UndefinedBehaviorSanitizer.
        local asan=$top/build-asan
        mkdir -p "$asan"
        cd "$asan"
        if [ ! -f Makefile ] || [ "$top/configure" -nt config.status ]; then
                log "configure (sanitizers)"
                "$top/configure" --enable-werror --enable-sanitizers
        fi
        log "make check (ASan/UBSan)"
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
                make -j"$(nproc)" check || { show_failures "$asan"; exit 1; }

        # libFuzzer targets (tests/fuzz), each for a bounded time; a finding fails the check
        # and its input is kept in tests/fuzz/corpus/, which make check replays.
        local fuzz=$top/build-fuzz
        mkdir -p "$fuzz"
        cd "$fuzz"
        if [ ! -f Makefile ] || [ "$top/configure" -nt config.status ]; then
                log "configure (libFuzzer, clang)"
                CC=clang "$top/configure" --enable-fuzz
        fi
        log "fuzzing (${CORRAL_FUZZ_SECONDS:-60} s a target)"
        make -j"$(nproc)" tests/fuzz/fuzz-api-request tests/fuzz/fuzz-adapter-config tests/fuzz/fuzz-spawner-request \
                tests/fuzz/fuzz-runlog tests/fuzz/fuzz-cli-output >/dev/null
        "$top/tests/fuzz/run.sh" "$fuzz" "${CORRAL_FUZZ_SECONDS:-60}"

        cd "$builddir"
        log "make distcheck"
        make -j"$(nproc)" distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror || { show_failures "$builddir"; exit 1; }

        # Packages from the release tarball distcheck just approved.
        local tarball packages=$builddir/packages deb rpm
        tarball=$(ls "$builddir"/corral-*.tar.xz)
        rm -rf "$packages"
        log "Debian package (dpkg-buildpackage, lintian)"
        deb=$("$top/contrib/packaging/build-deb.sh" "$tarball" "$packages")
        log "RPM package (rpmbuild)"
        rpm=$("$top/contrib/packaging/build-rpm.sh" "$tarball" "$packages")
        log "built $deb and $rpm"
        rm -f "$tarball"

        # The scope backend, limits, units and the package under a real systemd.
        log "VM with systemd as PID 1 (tests/vm)"
        make -C "$builddir" -j"$(nproc)" tests/bench/bench tests/bench/bench-agent tests/integration/sandbox-probe >/dev/null
        "$top/tests/vm/run.sh" --deb "$deb" --cache "${CORRAL_VM_CACHE:-$builddir/vm-cache}" --bench "$builddir/tests/bench" \
                --probe "$builddir/tests/integration/sandbox-probe"
}

cmd_run() {
        build
        local state=$top/.dev-state sock=$top/.dev-state/corrald.sock
        local corrald=$builddir/corrald corralctl=$builddir/corralctl
        mkdir -p "$state"
        export CORRAL_SOCKET=$sock
        # Runs get cgroups of their own where that is possible; elsewhere process groups.
        local placement=${CORRAL_PLACEMENT:-}
        if [ -z "$placement" ]; then
                if [ "$(id -u)" -eq 0 ] && grep -q ' - cgroup2 ' /proc/self/mountinfo; then
                        placement=cgroup
                else
                        placement=none
                fi
        fi
        # Agents get their sandboxes when corrald can give them (as root); otherwise they run as you.
        local sandbox=no
        [ "$(id -u)" -eq 0 ] && sandbox=yes
        log "starting corrald --state-dir $state --socket $sock --placement $placement --sandbox $sandbox"
        "$corrald" --state-dir "$state" --socket "$sock" --placement "$placement" --sandbox "$sandbox" &
        local pid=$!
        # shellcheck disable=SC2064 # expand $pid now: the trap may run after this function returned
        trap "kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null" EXIT INT TERM
        local i
        for i in $(seq 100); do
                "$corralctl" status >/dev/null 2>&1 && break
                kill -0 $pid 2>/dev/null || { log "corrald exited"; exit 1; }
                sleep 0.1
        done
        log "corralctl status"
        "$corralctl" status
        log "a company, an agent and an issue assigned to it"
        local company agent
        company=$("$corralctl" --json company list | jq -r '[.[] | select(.issuePrefix == "DEMO")][0].id // empty')
        if [ -z "$company" ]; then
                company=$("$corralctl" company create --name Demo --prefix DEMO --quiet)
                agent=$("$corralctl" agent create --company "$company" --name demo-agent --role engineer \
                        --adapter process --quiet --config "{\"command\":\"$top/contrib/example-agent.sh\",\"timeoutSec\":60}")
                # Assigning a todo issue wakes the agent: it comments and moves the issue to done.
                "$corralctl" issue create --company "$company" --title "Say hello" --assignee "$agent" --status todo >/dev/null
        fi
        "$corralctl" company list
        "$corralctl" agent list --company "$company"
        "$corralctl" issue list --company "$company"
        "$corralctl" activity --company "$company" --limit 5
        local run
        run=$("$corralctl" --json runs --company "$company" --limit 1 | jq -r '.[0].id // empty')
        if [ -n "$run" ]; then
                log "the agent's run $run"
                "$corralctl" logs -f "$run"
                "$corralctl" runs --company "$company" --limit 3
        fi
        log "the issue and its comments"
        "$corralctl" issue list --company "$company"
        "$corralctl" comment list DEMO-1
        log "corrald is running (pid $pid, socket $sock); try: CORRAL_SOCKET=$sock $corralctl status"
        log "press Ctrl-C to stop"
        wait $pid
}

case "${1:-}" in
deps) install_deps ;;
build) build ;;
check) cmd_check ;;
run) cmd_run ;;
*)
        echo "usage: $0 run|check|build|deps" >&2
        exit 2
        ;;
esac
