#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Workspaces end to end, on a real git repository made here: two agents on two issues of one
# repository at once each see only their own changes; a second run of an issue finds the
# first run's uncommitted work; closing an issue removes its workspace and keeps its branch,
# a dirty one is kept and reported; a bad repository or ref fails the launch in git's words;
# a crash of corrald while workspaces are made, and what a killed creation leaves, are
# repaired by the next launch; a run of no issue gets a workspace of its own for its time.
[ "$(id -u)" -eq 0 ] && SANDBOX=${SANDBOX:-yes}
. "$(dirname "$0")/lib.sh"
require curl jq git sqlite3

repo=$T/repo
git init -q -b main "$repo"
echo hello >"$repo/README"
git -C "$repo" add README
git -C "$repo" -c user.name=test -c user.email=test@example.com commit -qm "the start"
base=$(git -C "$repo" rev-parse HEAD)

check "corrald starts" start_daemon --sweep-interval-sec 86400 --workspace-remove-delay-sec 0
company=$(api POST /api/companies "$(jq -n --arg repo "$repo" \
        '{name: "Builders", issuePrefix: "WS", workspace: {repo: $repo, baseRef: "main"}}')" | jq -r .id)
is "the company's workspace policy is kept" "$(api GET "/api/companies/$company" | jq -r .workspace.repo)" "$repo"

# An agent that writes a file of its own in its workspace, commits it when told to, and says
# what it sees there.
SCRIPT='set -e
echo "cwd $(pwd)"
echo "env $CORRAL_WORKSPACE_PATH $CORRAL_WORKSPACE_BRANCH $CORRAL_WORKSPACE_REPO"
echo "payload $(printf %s "$CORRAL_WAKE_PAYLOAD_JSON" | tr -d "\n")"
echo "before $(ls | tr "\n" " ")"
echo "status $(git status --porcelain | tr "\n" ";")"
echo "$CORRAL_AGENT_ID" >"mine-$NAME.txt"
sleep "${PAUSE:-0}"
if [ -n "${COMMIT:-}" ]; then
        git add "mine-$NAME.txt"
        git -c user.name=agent -c user.email=agent@example.com commit -qm "work of $NAME"
fi
echo "after $(ls | tr "\n" " ")"
echo "owner $(stat -c %u .)"'

agent() {
        api POST "/api/companies/$company/agents" "$(jq -n --arg name "$1" --arg script "$SCRIPT" --argjson env "${2:-{\}}" \
                --argjson extra "${3:-{\}}" \
                '{name: $name, adapterConfig: ({command: "/bin/sh", args: ["-c", $script], env: ({NAME: $name} + $env)} + $extra)}')" |
                jq -r .id
}

issue() {
        api POST "/api/companies/$company/issues" "{\"title\":\"$1\",\"status\":\"todo\",\"assigneeAgentId\":\"$2\"}"
}

out_of() {
        "$CORRALCTL" logs "$1" 2>&1
}

a=$(agent alice '{"PAUSE":"2"}')
b=$(agent bob '{"PAUSE":"2","COMMIT":"1"}')
i1=$(issue one "$a")
i2=$(issue two "$b")
r1=$(jq -r .executionRunId <<<"$i1")
r2=$(jq -r .executionRunId <<<"$i2")
i1=$(jq -r .id <<<"$i1")
i2=$(jq -r .id <<<"$i2")
f1=$(wait_run "$r1" 60)
f2=$(wait_run "$r2" 60)
is "two issues' runs at once succeed" "$(jq -r .status <<<"$f1") $(jq -r .status <<<"$f2")" "succeeded succeeded"
o1=$(out_of "$r1")
o2=$(out_of "$r2")
ws1=$STATE/workspaces/$i1
ws2=$STATE/workspaces/$i2
like "the first works in its issue's workspace" "$o1" "cwd $ws1"
like "... the second in its own" "$o2" "cwd $ws2"
like "... each named in the environment" "$o1" "env $ws1 corral/WS-1 $repo"
like "... and in the wake payload" "$o1" "payload .*\"workspace\":\\{\"path\":\"$ws1\",\"repo\":\"$repo\",\"branch\":\"corral/WS-1\""
like "each sees only its own change" "$o1" "after README mine-alice.txt $"
like "... the other too" "$o2" "after README mine-bob.txt $"
like "a workspace starts at the base ref" "$(git -c safe.directory='*' -C "$ws1" log --format=%H -1 HEAD 2>&1)" "$base"
if [ "$SANDBOX" = yes ]; then
        uid=$(api GET "/api/agents/$a" | jq -r .sandboxUid)
        like "it belongs to the agent's uid" "$o1" "owner $uid"
fi
w=$(api GET "/api/issues/$i1/workspace")
is "the issue's workspace is active" "$(jq -r '"\(.status) \(.branch) \(.path) \(.runId)"' <<<"$w")" "active corral/WS-1 $ws1 $r1"

# A second run of the issue finds the first one's uncommitted work.
r3=$(api POST "/api/agents/$a/wakeup" "{\"reason\":\"again\",\"payload\":{\"issueId\":\"$i1\"}}" | jq -r .id)
wait_run "$r3" 60 >/dev/null
o3=$(out_of "$r3")
like "a second run of the issue works in the same workspace" "$o3" "cwd $ws1"
like "... and finds the first run's uncommitted work" "$o3" "status \\?\\? mine-alice.txt;"

# --- closing an issue: a clean workspace goes, its branch stays; a dirty one is kept ---
api PATCH "/api/issues/$i2" '{"status":"done"}' >/dev/null
api PATCH "/api/issues/$i1" '{"status":"done"}' >/dev/null
"$CORRALCTL" sweep >/dev/null
check "the clean workspace of a closed issue is removed" wait_for 20 field_is "/api/issues/$i2/workspace" .status removed
check "... its directory is gone" test ! -e "$ws2"
is "... its branch is in the repository with the agent's commit" \
        "$(git -C "$repo" log --format=%s -1 corral/WS-2 2>&1)" "work of bob"
check "the dirty workspace of a closed issue is kept" wait_for 20 field_is "/api/issues/$i1/workspace" .status kept
is "... saying what is uncommitted" "$(api GET "/api/issues/$i1/workspace" | jq -r .statusReason)" \
        "uncommitted changes:
?? mine-alice.txt"
check "... and its directory is there" test -f "$ws1/mine-alice.txt"
like "corralctl workspace list shows it, by its issue's identifier" \
        "$("$CORRALCTL" workspace list --company "$company" --status kept)" "WS-1 +kept +corral/WS-1"
acts=$(api GET "/api/companies/$company/activity" | jq -r '.[] | select(.entityType == "workspace") | "\(.action) \(.entityId)"')
like "activity says what was removed" "$acts" "workspace.removed $i2"
like "... and what was kept" "$acts" "workspace.kept $i1"
rm "$ws1/mine-alice.txt"
out=$("$CORRALCTL" workspace prune)
like "corralctl workspace prune tries it again" "$out" "Removing 1 workspace"
check "... and removes it once it is clean" wait_for 20 field_is "/api/issues/$i1/workspace" .status removed

# A reopened issue gets its workspace again, from its branch.
api PATCH "/api/issues/$i2" '{"status":"todo"}' >/dev/null
r4=$(api POST "/api/agents/$b/wakeup" "{\"reason\":\"reopened\",\"payload\":{\"issueId\":\"$i2\"}}" | jq -r .id)
wait_run "$r4" 60 >/dev/null
like "a reopened issue's workspace starts from its branch" "$(out_of "$r4")" "before README mine-bob.txt"

# --- a bad repository or ref fails the launch in git's words ---
bad=$(agent badrepo '{}' '{"workspace":{"repo":"/nonexistent/repo"}}')
f=$(wait_run "$(api POST "/api/agents/$bad/wakeup" '{}' | jq -r .id)")
is "a missing repository fails the launch" "$(jq -r '"\(.status) \(.errorCode)"' <<<"$f")" "failed launch_failed"
like "... saying so" "$(jq -r .error <<<"$f")" "repository /nonexistent/repo does not exist"
badref=$(agent badref '{}' "$(jq -n --arg repo "$repo" '{workspace: {repo: $repo, baseRef: "no-such-branch"}}')")
f=$(wait_run "$(api POST "/api/agents/$badref/wakeup" '{}' | jq -r .id)")
is "an unknown base ref fails the launch" "$(jq -r '"\(.status) \(.errorCode)"' <<<"$f")" "failed launch_failed"
like "... in git's words" "$(jq -r .error <<<"$f")" "no commit 'no-such-branch' in the repository $repo: git: fatal: "
api POST "/api/companies/$company/agents" '{"name":"x","adapterConfig":{"workspace":{"repo":"relative"}}}' >/dev/null
is "a relative repository is refused" "$(status) $(jq -r .error "$T/body")" "400 adapterConfig.workspace.repo must be an absolute path"
api POST "/api/companies/$company/agents" '{"name":"x","adapterConfig":{"workspace":{"repo":"/r","baseRef":"--upload-pack=x"}}}' >/dev/null
is "an option as a ref is refused" "$(status)" 400
api POST "/api/companies/$company/agents" '{"name":"x","adapterConfig":{"workspace":{"repo":"/r","branch":"a..b"}}}' >/dev/null
is "a branch git refuses is refused" "$(status)" 400

# --- a run of no issue: a workspace of its own, detached, removed when it ends ---
r5=$(api POST "/api/agents/$b/wakeup" '{"reason":"no issue"}' | jq -r .id)
wait_run "$r5" 60 >/dev/null
like "a run of no issue works in a workspace of its own" "$(out_of "$r5")" "cwd $STATE/workspaces/run-$r5"
check "... which is removed when it ends" wait_for 20 field_is "/api/companies/$company/workspaces?status=removed" \
        "[.[] | select(.key == \"run-$r5\")] | length" 1

# --- crashes: corrald killed while workspaces are made; what a killed creation leaves ---
c=$(agent crash '{"PAUSE":"1"}')
i3=$(issue three "$c")
r6=$(jq -r .executionRunId <<<"$i3")
i3=$(jq -r .id <<<"$i3")
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
check "corrald starts after its crash" start_daemon --sweep-interval-sec 86400 --workspace-remove-delay-sec 0
f=$(wait_run "$r6" 60)
is "the run whose workspace was being made succeeds" "$(jq -r .status <<<"$f")" succeeded
like "... in a whole workspace" "$(out_of "$r6")" "before README $"
# A creation killed half way leaves its temporary directory; a removal, its row "removing".
mkdir -p "$STATE/workspaces/.new-$i3" && echo half >"$STATE/workspaces/.new-$i3/junk"
sql "UPDATE workspaces SET status = 'removing' WHERE key = '$i3'"
rm -rf "$STATE/workspaces/$i3"
r7=$(api POST "/api/agents/$c/wakeup" "{\"reason\":\"after\",\"payload\":{\"issueId\":\"$i3\"}}" | jq -r .id)
f=$(wait_run "$r7" 60)
is "the next launch repairs what a killed creation and removal left" "$(jq -r .status <<<"$f")" succeeded
like "... with a whole workspace" "$(out_of "$r7")" "before README $"
check "... and nothing of the killed creation" test ! -e "$STATE/workspaces/.new-$i3"

# --- strategy shared: the agent's own working directory, as without a policy ---
sh=$(agent shared '{}' '{"workspace":{"strategy":"shared"}}')
r8=$(api POST "/api/agents/$sh/wakeup" '{}' | jq -r .id)
wait_run "$r8" 60 >/dev/null
unlike_ws=$(out_of "$r8" | grep '^cwd ')
is "a shared strategy keeps the agent's working directory" "$unlike_ws" "cwd $STATE/homes/$sh"

finish
