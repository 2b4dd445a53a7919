/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * corrald's side of the shim spawner (shim-spawner.h): starts `corral-shim --spawner`,
 * watches it through its pidfd, asks it for each run's shim, and starts it again (at most
 * once a second) after it died. While no spawner runs, spawner_spawn() says so and the
 * caller executes the shim itself, so a launch never depends on the spawner.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "basic/macro.h"

typedef struct Spawner Spawner;

/* Start the spawner. A spawner that cannot be started is logged, not fatal: *ret is still
 * set, and spawner_spawn() tries again later. */
int spawner_new(sd_event *event, const char *shim_path, Spawner **ret);
/* Ends the spawner (the shims it started live on). */
Spawner *spawner_free(Spawner *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Spawner *, spawner_free);

typedef struct SpawnerRequest {
        const char *cwd;
        char *const *argv; /* the shim's: corral-shim RUN_DIR AGENT [ARGS...] */
        char *const *env; /* the agent's */
        int go_fd, report_fd; /* the shim's fds 3 and 4 */
        int cgroup_fd; /* for CLONE_INTO_CGROUP, or -1 */
} SpawnerRequest;

/* Ask for a shim for a run, in two steps so that corrald can do other work of the launch
 * while the spawner forks. spawner_request() returns 0 once the request went out, or
 * -EAGAIN: no spawner runs, or the request cannot go through it (too large), nothing was
 * started, and the caller executes the shim itself. */
int spawner_request(Spawner *s, const SpawnerRequest *req);
/* After a request went out: the shim's pid, with *ret_pidfd set; or
 *   -EAGAIN  the spawner refused the request (nothing was started): execute the shim;
 *   other    the spawner failed in the middle of it (it is killed and will be started
 *            again): a shim may exist, so the launch must fail, not be retried. */
pid_t spawner_receive(Spawner *s, int *ret_pidfd);

/* The spawner's pid, 0 while none runs (for tests and status). */
pid_t spawner_pid(Spawner *s);
