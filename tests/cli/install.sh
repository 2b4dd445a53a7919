#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Install the coding CLIs of tests/cli/versions from the npm registry into a cache, once per
# version, and print where one is:
#   install.sh NAME     the path of NAME's binary (installing it first if needed)
# The cache is $CORRAL_CLI_CACHE, else /var/cache/corral-test-clis for root (a path that a
# sandboxed agent can read), else ~/.cache/corral-test-clis. Exit 77 without npm.
set -euo pipefail
here=$(dirname "$(realpath "$0")")
name=$1
line=$(awk -v n="$name" '$1 == n' "$here/versions")
[ -n "$line" ] || { echo "install.sh: no CLI named $name in $here/versions" >&2; exit 2; }
read -r _ package version binary <<<"$line"
if [ -z "${CORRAL_CLI_CACHE:-}" ]; then
        if [ "$(id -u)" -eq 0 ]; then
                CORRAL_CLI_CACHE=/var/cache/corral-test-clis
        else
                CORRAL_CLI_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/corral-test-clis
        fi
fi
dir=$CORRAL_CLI_CACHE/$name-$version
bin=$dir/node_modules/.bin/$binary
if [ ! -x "$bin" ]; then
        command -v npm >/dev/null || { echo "install.sh: npm is not installed" >&2; exit 77; }
        mkdir -p "$CORRAL_CLI_CACHE"
        chmod 755 "$CORRAL_CLI_CACHE"
        # Into a directory of its own, renamed into place whole: a failed or concurrent
        # install never leaves half a CLI behind.
        tmp=$(mktemp -d "$CORRAL_CLI_CACHE/.install-XXXXXX")
        trap 'rm -rf "$tmp"' EXIT
        npm_config_update_notifier=false npm install --prefix "$tmp" --no-audit --no-fund --loglevel=error \
                "$package@$version" >&2
        chmod -R a+rX "$tmp"
        mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
        trap - EXIT
fi
echo "$bin"
