/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The none backend of placement, for development: process groups only. Descendants that
 * leave the agent's process group escape it, and no limit is enforced.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/log.h"
#include "basic/macro.h"
#include "basic/util.h"
#include "supervise/cgroup.h"
#include "supervise/placement-internal.h"

static int none_prepare(Placement *p, const char *run_id, const RunLimits *limits, RunPlace *ret, char **ret_warning) {
        if (limits->memory_max || limits->tasks_max || limits->cpu_weight) {
                *ret_warning = strdup("limits not enforced: placement=none gives runs no cgroup");
                if (!*ret_warning)
                        return -ENOMEM;
        }
        ret->cgroup_fd = -EBADF;
        return 0;
}

static int none_kill_all(Placement *p, const RunPlace *place) {
        /* Without a cgroup the agent's process group is all there is to kill; descendants
         * that left it escape. That is why placement=none is for development only. */
        if (place->pgid > 0 && kill(-place->pgid, SIGKILL) < 0 && errno != ESRCH)
                return -errno;
        return 0;
}

/* Without a cgroup nothing tells whether descendants live on: the shim, a subreaper,
 * reaps what stays in its session, and whatever escaped it is not tracked. */
static int none_populated(Placement *p, const RunPlace *place) {
        return 0;
}

static int none_count(Placement *p, const RunPlace *place, unsigned *ret) {
        *ret = 0;
        return 0;
}

static int none_oom_kills(Placement *p, const RunPlace *place, uint64_t *ret) {
        *ret = 0;
        return 0;
}

static int none_remove(Placement *p, const RunPlace *place) {
        return 0;
}

static char *none_events_path(Placement *p, const RunPlace *place) {
        return NULL;
}

const PlacementOps none_ops = {
        .name = "none",
        .prepare = none_prepare,
        .kill_all = none_kill_all,
        .populated = none_populated,
        .count = none_count,
        .oom_kills = none_oom_kills,
        .remove = none_remove,
        .events_path = none_events_path,
};
