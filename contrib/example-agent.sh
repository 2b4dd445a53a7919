#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# An example corral agent for the process adapter. corrald starts it with
# CORRAL_* variables in its environment; it talks back to corrald over
# $CORRAL_SOCKET, where corrald knows it by its cgroup as its run's agent.
# It comments on the issue it was woken for and moves the issue to done.
set -eu

api() {
        # api METHOD PATH [JSON]
        if [ $# -ge 3 ]; then
                curl -sS --fail-with-body --unix-socket "$CORRAL_SOCKET" -X "$1" \
                        -H 'Content-Type: application/json' --data-binary "$3" "http://localhost$2"
        else
                curl -sS --fail-with-body --unix-socket "$CORRAL_SOCKET" -X "$1" "http://localhost$2"
        fi
}

echo "run $CORRAL_RUN_ID of agent $CORRAL_AGENT_ID, woken for: ${CORRAL_WAKE_REASON:-nothing in particular}"
if [ -z "${CORRAL_ISSUE_ID:-}" ]; then
        echo "no issue to work on"
        exit 0
fi

issue=$(api GET "/api/issues/$CORRAL_ISSUE_ID")
title=$(printf '%s' "$issue" | sed -n 's/.*"title":"\([^"]*\)".*/\1/p')
identifier=$(printf '%s' "$issue" | sed -n 's/.*"identifier":"\([^"]*\)".*/\1/p')
echo "working on $identifier: $title"
api POST "/api/issues/$CORRAL_ISSUE_ID/comments" "{\"body\":\"Hello from run $CORRAL_RUN_ID. Looking at $identifier now.\"}" >/dev/null
sleep 1
api PATCH "/api/issues/$CORRAL_ISSUE_ID" "{\"status\":\"done\",\"comment\":\"Done: said hello.\"}" >/dev/null
echo "$identifier is done"
