#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Run an integration test on PostgreSQL: tests/integration/pg/NAME.pg names
# tests/integration/NAME.sh, which lib.sh then runs against a PostgreSQL server of its own
# (CORRAL_TEST_BACKEND=postgresql). make check runs each .pg as a test of its own; as in
# tests/run-tap.sh, a skip (77, its plan "1..0 # SKIP why") is passed on as success.
pg=$1
name=$(basename "$pg" .pg)
CORRAL_TEST_BACKEND=postgresql bash "$(dirname "$pg")/../$name.sh"
rc=$?
[ "$rc" -eq 77 ] && exit 0
exit "$rc"
