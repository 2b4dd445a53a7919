#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Stands in for the claude or codex CLI in tests: records its command line and the
# prompt it got on stdin, prints a fixture of recorded-style JSON lines, and exits
# with FAKE_EXIT. FAKE_DIR and FAKE_FIXTURE come from the agent's adapterConfig.env.
n=$(ls "$FAKE_DIR" | grep -c '^argv\.' || true)
n=$((n + 1))
printf '%s\n' "$@" >"$FAKE_DIR/argv.$n"
cat >"$FAKE_DIR/stdin.$n"
cat "$FAKE_FIXTURE"
echo "fake cli: done" >&2
exit "${FAKE_EXIT:-0}"
