/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * corrald's side of the shim spawner (shim-spawner.h): starts `corral-shim --spawner`,
 * watches it through its pidfd, asks it for each run's shim, and starts it again (at most
 * once a second) after it died. While no spawner runs, spawner_request() says so and the
 * caller executes the shim itself, so a launch never depends on the spawner being there.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
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

/* The answer to a request: the shim's pid with its pidfd (now the callee's) and its start
 * time (0 if the spawner could not read it), or
 *   -ETIMEDOUT, -ECONNRESET, -EBADMSG, ... the spawner failed in the middle of the request
 *            (it is killed and will be started again): a shim may exist, so the launch
 *            must fail, not be retried (a shim that got no go exits by itself);
 *   other    the spawner could not fork (the errno of its clone3): nothing was started. */
typedef void (*SpawnerDone)(pid_t pid, int pidfd, uint64_t start_ticks, void *userdata);

/* Ask for a shim for a run. The spawner forks while corrald goes on with its loop; done is
 * called from it once, in the order of the requests. Returns 0 once the request went out,
 * or -EAGAIN: no spawner runs, or the request cannot go through it (too large, the socket
 * full), nothing was started, and the caller executes the shim itself. */
int spawner_request(Spawner *s, const SpawnerRequest *req, SpawnerDone done, void *userdata);
/* Nobody waits for the answer to userdata's request any more: done is not called, and a
 * shim that comes with the answer is killed. */
void spawner_cancel(Spawner *s, void *userdata);

/* The spawner's pid, 0 while none runs (for tests and status). */
pid_t spawner_pid(Spawner *s);
