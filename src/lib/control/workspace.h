/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Workspaces (corrald(8), WORKSPACES): a git checkout per issue, kept across the issue's
 * runs (by any agent), made by the run's shim before its agent starts (shim-workspace.h) and
 * removed once the issue is closed; a run of no issue gets one of its own, removed when it
 * ends. The policy is the agent's adapterConfig.workspace, else its company's workspace:
 *   { "repo": PATH, "strategy": "worktree" | "shared", "baseRef": REF, "branch": TEMPLATE }
 * "shared" (or no policy) keeps the run's working directory as it is (adapterConfig.cwd).
 */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "control/control.h"
#include "store/model.h"

#define WORKSPACE_DEFAULT_BASE_REF "HEAD"
#define WORKSPACE_DEFAULT_BRANCH "corral/{identifier}"
#define WORKSPACE_DIR "workspaces"
/* Removals at once: each is a few git commands and a recursive delete. */
#define WORKSPACE_REMOVALS_MAX 2

/* Check a workspace policy (what names where it is, for the message): -EINVAL and a message. */
int workspace_policy_check(const cJSON *policy, const char *what, char **ret_error);

/* Where a run works. */
typedef struct WorkspaceLaunch {
        bool on; /* false: no workspace of corral's (no policy, or "shared") */
        char *key, *path, *branch, *repo, *base_ref;
} WorkspaceLaunch;

void workspace_launch_done(WorkspaceLaunch *w);

/* The workspace of run, by its agent's policy or its company's, its row written (active, run
 * its last): -EBUSY (and a message) while it is being removed, -EINVAL for a branch the
 * template makes that git would refuse. */
int workspace_for_run(Control *ctl, const Agent *agent, const Run *run, WorkspaceLaunch *ret, char **ret_error);

/* run's context with "workspace" in it and in its wake payload ("paperclipWake"): a new
 * string, for the launch. */
char *workspace_context(const char *context_json, const WorkspaceLaunch *w);

/* The shim's workspace file (shim-workspace.h); owner_uid < 0: the shim's own. */
char *workspace_file(const WorkspaceLaunch *w, int64_t owner_uid, int64_t owner_gid);

/* Remove the workspaces that are due (their issue closed for workspace-remove-delay-sec, or
 * their run ended); with prune, every closed issue's at once and the kept ones again. The
 * removals run as children (corral-shim --workspace-remove), at most
 * WORKSPACE_REMOVALS_MAX at once. Returns how many were started. */
int workspace_sweep(Control *ctl, bool prune);

/* A run ended: a workspace of its own is removed now. */
void workspace_run_ended(Control *ctl, const char *run_id);

/* At shutdown: the removals under way are left to finish (the next start takes up what they
 * did not). */
void workspace_done(Control *ctl);
