/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A run's git workspace (corrald(8), WORKSPACES): a checkout of its own of the repository,
 * kept per issue, made by the shim before the agent starts (inside the run's cgroup, so a
 * cancel ends a slow clone with the run, and a crash of corrald stops nothing) and removed
 * by corral-shim --workspace-remove, which corrald runs when the issue is closed.
 *
 * A workspace is a clone that borrows the repository's objects (git clone --shared) rather
 * than a worktree of it: an agent runs as a uid of its own, and writes its commits to its
 * workspace's own .git, which it owns, never to the repository's. Its branch is pushed back
 * into the repository when the workspace is removed.
 *
 * The file "workspace" in the run directory (written by corrald) says what to make:
 *   repo=PATH    the repository
 *   path=PATH    the workspace (under corrald's state directory)
 *   branch=NAME  the branch it works on; none: detached at base
 *   base=REF     where a new branch starts
 *   uid=N gid=N  whose the workspace is (the agent's); none: the shim's own
 * Git runs without a shell, with a fixed environment, and its output is appended to
 * "workspace.log" in the run directory.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SHIM_WORKSPACE_FILE "workspace"
#define SHIM_WORKSPACE_LOG_FILE "workspace.log"
/* Why the workspace could not be made; status.json then says "stopped":"workspace". */
#define SHIM_WORKSPACE_ERROR_FILE "workspace.error"
#define SHIM_WORKSPACE_REMOVE_ARG "--workspace-remove"

/* corral-shim --workspace-remove exits with these. */
#define SHIM_WORKSPACE_REMOVED 0
#define SHIM_WORKSPACE_FAILED 1
#define SHIM_WORKSPACE_KEPT 3

typedef struct ShimWorkspace {
        char *repo, *path, *branch, *base;
        bool own; /* uid and gid are set */
        uid_t uid;
        gid_t gid;
} ShimWorkspace;

/* 1 when the run directory has a workspace file (*ret filled), 0 when not, -errno. */
int shim_workspace_read(const char *run_dir, ShimWorkspace *ret);
void shim_workspace_done(ShimWorkspace *w);

/* Make w->path a checkout of w->branch, unless it is one already (a later run of its issue):
 * from the branch where the repository has it, else from w->base. Made under a temporary
 * name and renamed into place, so that a kill at any instant leaves either nothing or the
 * whole workspace. 0, or -errno with what failed (git's own words) in msg. */
int shim_workspace_prepare(const ShimWorkspace *w, int log_fd, char *msg, size_t msg_size);

/* corral-shim --workspace-remove REPO PATH [BRANCH]: remove a workspace whose issue is closed.
 * A workspace with uncommitted changes is kept (SHIM_WORKSPACE_KEPT, what is changed on
 * stdout); else its branch is pushed back into the repository (kept if that fails: the
 * repository's branch moved, say) and the workspace removed. */
int shim_workspace_remove_main(int argc, char *argv[]);
