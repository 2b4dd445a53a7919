#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# A throwaway PostgreSQL server for the tests, from Debian's postgresql package: a new
# cluster in DIR, owned by the postgres user (the server refuses to run as root), that
# listens on a socket in DIR only (no TCP port), with trust authentication, and a
# database named corral.
#
#   tests/pg-server.sh start DIR   start it; prints the database's URI
#   tests/pg-server.sh stop DIR    stop it (immediately) and remove DIR
#   tests/pg-server.sh bindir      where the server's programs are, or exit 77
#
# Exit 77 when PostgreSQL's server is not installed.
set -eu

bindir() {
        for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
                [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
        done
        return 77
}

as_postgres() {
        if [ "$(id -u)" -eq 0 ]; then
                runuser -u postgres -- "$@"
        else
                "$@"
        fi
}

case "${1:-}" in
bindir)
        bindir
        ;;
start)
        dir=$2
        bin=$(bindir) || exit 77
        if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
                echo "pg-server: no postgres user to run the server as" >&2
                exit 77
        fi
        mkdir -p "$dir"
        [ "$(id -u)" -ne 0 ] || chown postgres: "$dir"
        chmod 0700 "$dir"
        as_postgres "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
                cat "$dir/initdb.log" >&2
                exit 1
        }
        # fsync off: a test's database need not survive a crash of the machine.
        as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
                -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=off -c synchronous_commit=off \
-c full_page_writes=off -c max_connections=200" start >/dev/null || {
                cat "$dir/server.log" >&2
                exit 1
        }
        as_postgres "$bin/createdb" -h "$dir" -U postgres corral
        echo "postgresql:///corral?host=$dir&user=postgres"
        ;;
stop)
        dir=$2
        [ -d "$dir/data" ] || { rm -rf "$dir"; exit 0; }
        bin=$(bindir) || exit 0
        as_postgres "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
        rm -rf "$dir"
        ;;
*)
        echo "usage: $0 start DIR | stop DIR | bindir" >&2
        exit 2
        ;;
esac
