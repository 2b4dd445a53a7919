/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * corrald's side of the shim's workspaces (shim/shim-workspace.h): the file that tells a
 * run's shim which workspace to make, and corral-shim --workspace-remove run as a child.
 */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

/* The run directory's file the shim reads. */
extern const char *const run_workspace_file_name;

/* Its text; owner_uid < 0: the workspace stays the shim's own user's. */
char *run_workspace_file(const char *repo, const char *path, const char *branch, const char *base_ref, int64_t owner_uid,
                         int64_t owner_gid);

typedef enum RunWorkspaceRemoved {
        RUN_WORKSPACE_REMOVED,
        RUN_WORKSPACE_KEPT, /* uncommitted changes, or its branch could not go back */
        RUN_WORKSPACE_FAILED,
} RunWorkspaceRemoved;

/* Called once the removal ended; output is what it said (its log file's text, may be NULL). */
typedef void (*RunWorkspaceRemovedFn)(RunWorkspaceRemoved outcome, const char *output, void *userdata);

/* Start corral-shim --workspace-remove REPO PATH [BRANCH] as a child, its output in
 * log_path; done is called from the loop when it exits. *ret is the child's event source
 * (unref'ing it stops watching; the child goes on alone). */
int run_workspace_remove(sd_event *event, const char *shim_path, const char *repo, const char *path, const char *branch,
                         const char *log_path, RunWorkspaceRemovedFn done, void *userdata, sd_event_source **ret);
