/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The cgroup backend of placement: a child cgroup per run in a cgroup v2 subtree that
 * corrald owns, the shim cloned straight into it (CLONE_INTO_CGROUP), limits written to
 * its files where the controllers are enabled.
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

static const char *const limit_controllers[] = { "memory", "pids", "cpu" };

/* Write the limits that the hierarchy supports; collect the names of the others. */
static int apply_limits(Placement *p, const char *path, const RunLimits *limits, char **ret_warning) {
        const struct {
                const char *controller, *attribute, *name;
                uint64_t value;
                bool is_default; /* the operator's default: no warning where it cannot be set */
        } l[] = {
                { "memory", "memory.max", "memoryMax", limits->memory_max ?: limits->default_memory_max,
                  limits->memory_max == 0 },
                { "pids", "pids.max", "tasksMax", limits->tasks_max ?: limits->default_tasks_max, limits->tasks_max == 0 },
                { "cpu", "cpu.weight", "cpuWeight", limits->cpu_weight, false },
        };
        char skipped[128] = "";

        for (size_t i = 0; i < ELEMENTSOF(l); i++) {
                char value[32];
                int r;

                if (l[i].value == 0)
                        continue;
                snprintf(value, sizeof(value), "%" PRIu64, l[i].value);
                r = cgroup_write(path, l[i].attribute, value);
                if (r < 0) {
                        log_debug("Could not set %s=%s on %s: %s", l[i].attribute, value, path, strerror(-r));
                        if (l[i].is_default)
                                continue;
                        if (*skipped)
                                strcat(skipped, ", ");
                        strcat(skipped, l[i].name);
                }
        }
        if (*skipped) {
                *ret_warning = strprintf("limits not enforced (their cgroup controllers are not available under %s): %s",
                                         p->cgroup_root, skipped);
                if (!*ret_warning)
                        return -ENOMEM;
        }
        return 0;
}

static int cgroup_prepare(Placement *p, const char *run_id, const RunLimits *limits, RunPlace *ret, char **ret_warning) {
        _cleanup_free_ char *path = strprintf("%s/run-%s", p->cgroup_root, run_id);
        int fd, r;

        if (!path)
                return -ENOMEM;
        r = cgroup_create(path);
        if (r == -EEXIST)
                /* Left over from an earlier attempt of the same run: reuse only if empty. */
                r = cgroup_is_populated(path) == 0 ? 0 : -EBUSY;
        if (r < 0)
                return r;
        r = apply_limits(p, path, limits, ret_warning);
        if (r >= 0)
                r = cgroup_open(path, &fd);
        if (r < 0) {
                (void) cgroup_remove(path);
                return r;
        }
        ret->cgroup_fd = fd;
        ret->cgroup_path = TAKE_PTR(path);
        return 0;
}

static int cgroup_kill_all(Placement *p, const RunPlace *place) {
        return cgroup_kill(place->cgroup_path);
}

static int cgroup_populated(Placement *p, const RunPlace *place) {
        int r = cgroup_is_populated(place->cgroup_path);
        /* A cgroup that is gone holds nobody. */
        return cgroup_gone(r) ? 0 : r;
}

static int cgroup_count(Placement *p, const RunPlace *place, unsigned *ret) {
        return cgroup_count_procs(place->cgroup_path, ret);
}

static int cgroup_oom_kills(Placement *p, const RunPlace *place, uint64_t *ret) {
        int r = cgroup_read_key(place->cgroup_path, "memory.events", "oom_kill", ret);
        if (cgroup_gone(r)) {
                *ret = 0;
                return 0;
        }
        return r;
}

static int cgroup_remove_place(Placement *p, const RunPlace *place) {
        /* A launch that failed before its cgroup was made has nothing to remove. */
        if (!place->cgroup_path)
                return 0;
        int r = cgroup_remove(place->cgroup_path);
        return cgroup_gone(r) ? 0 : r;
}

static char *cgroup_events_path(Placement *p, const RunPlace *place) {
        return strprintf("%s/cgroup.events", place->cgroup_path);
}

static int cgroup_locate(Placement *p, const char *run_id, RunPlace *ret) {
        _cleanup_free_ char *path = strprintf("%s/run-%s", p->cgroup_root, run_id);

        if (!path)
                return -ENOMEM;
        if (access(path, F_OK) < 0)
                return 0;
        ret->cgroup_path = TAKE_PTR(path);
        return 0;
}

const PlacementOps cgroup_ops = {
        .name = "cgroup",
        .prepare = cgroup_prepare,
        .kill_all = cgroup_kill_all,
        .populated = cgroup_populated,
        .count = cgroup_count,
        .oom_kills = cgroup_oom_kills,
        .remove = cgroup_remove_place,
        .events_path = cgroup_events_path,
        .locate = cgroup_locate,
};

/* ---- none: process groups only ---- */

/* Make sure the root exists, is a cgroup v2 directory, and enable what limits need. */
int cgroup_placement_setup_root(const char *root) {
        _cleanup_free_ char *parent = NULL;
        struct stat st;
        int r;

        r = mkdir(root, 0755) < 0 && errno != EEXIST ? -errno : 0;
        if (r < 0)
                return log_error_errno(r, "Failed to create the cgroup root %s: %m", root);
        if (stat(root, &st) < 0 || cgroup_is_populated(root) < 0)
                return log_error_errno(-ENOTDIR, "%s is not a cgroup v2 directory.", root);

        /* Limits need their controllers enabled down to the run cgroups; where that is not
         * possible each run says which limits were not enforced. */
        parent = strdup(root);
        if (!parent)
                return -ENOMEM;
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent)
                *slash = 0;
        for (size_t i = 0; i < ELEMENTSOF(limit_controllers); i++) {
                if (cgroup_controller_available(parent, limit_controllers[i]) > 0)
                        (void) cgroup_enable_controller(parent, limit_controllers[i]);
                if (cgroup_controller_available(root, limit_controllers[i]) > 0)
                        (void) cgroup_enable_controller(root, limit_controllers[i]);
        }
        return 0;
}
