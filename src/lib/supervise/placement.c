/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Placement backends: "cgroup" (a child cgroup per run in a cgroup v2 subtree
 * that corrald owns) and "none" (process groups only, for development); the
 * "scope" backend is in placement-scope.c. This file picks one.
 */
#include "supervise/placement.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "supervise/cgroup.h"
#include "basic/log.h"
#include "supervise/placement-scope.h"

void run_place_done(RunPlace *p) {
        scope_start_free(p->pending);
        free(p->cgroup_path);
        free(p->unit_name);
        safe_close(p->cgroup_fd);
        *p = (RunPlace){ .cgroup_fd = -EBADF };
}

/* ---- cgroup ---- */

static const char *const limit_controllers[] = { "memory", "pids", "cpu" };

/* Write the limits that the hierarchy supports; collect the names of the others. */
static int apply_limits(Placement *p, const char *path, const RunLimits *limits, char **ret_warning) {
        const struct {
                const char *controller, *attribute, *name;
                uint64_t value;
        } l[] = {
                { "memory", "memory.max", "memoryMax", limits->memory_max },
                { "pids", "pids.max", "tasksMax", limits->tasks_max },
                { "cpu", "cpu.weight", "cpuWeight", limits->cpu_weight },
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

static const PlacementOps cgroup_ops = {
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

static const PlacementOps none_ops = {
        .name = "none",
        .prepare = none_prepare,
        .kill_all = none_kill_all,
        .populated = none_populated,
        .count = none_count,
        .oom_kills = none_oom_kills,
        .remove = none_remove,
        .events_path = none_events_path,
};

/* ---- setup ---- */

int placement_default_cgroup_root(char **ret) {
        _cleanup_free_ char *mount = NULL, *self = NULL;
        int r;

        r = cgroup_find_v2_mount(&mount);
        if (r < 0)
                return r;
        r = cgroup_self_path(&self);
        if (r < 0)
                return r;
        *ret = strprintf("%s%s/corral", mount, streq(self, "/") ? "" : self);
        return *ret ? 0 : -ENOMEM;
}

/* Make sure the root exists, is a cgroup v2 directory, and enable what limits need. */
static int setup_cgroup_root(const char *root) {
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

static int new_scope_placement(sd_event *event, Placement **ret) {
        Placement *p;
        int r;

        p = calloc(1, sizeof(Placement));
        if (!p)
                return -ENOMEM;
        p->kind = PLACEMENT_SCOPE;
        p->ops = &scope_ops;
        p->event = sd_event_ref(event);
        r = cgroup_find_v2_mount(&p->cgroup_mount);
        if (r < 0) {
                placement_free(p);
                return log_error_errno(r, "Failed to find the cgroup v2 mount: %m");
        }
        r = scope_setup(p);
        if (r < 0) {
                placement_free(p);
                return r;
        }
        log_info("Runs are placed in scopes of %s.", SCOPE_SLICE);
        *ret = p;
        return 0;
}

int placement_new(PlacementKind kind, const char *cgroup_root, sd_event *event, Placement **ret) {
        _cleanup_free_ char *root = NULL;
        Placement *p;
        int r;

        if (kind == PLACEMENT_SCOPE || kind == PLACEMENT_AUTO) {
                r = scope_available();
                if (r < 0)
                        return r;
                if (r > 0)
                        return new_scope_placement(event, ret);
                if (kind == PLACEMENT_SCOPE)
                        return log_error_errno(-EOPNOTSUPP,
                                               "placement=scope needs systemd as PID 1, answering on the system bus; "
                                               "use placement=cgroup or auto here.");
        }

        if (kind == PLACEMENT_AUTO || kind == PLACEMENT_CGROUP) {
                if (cgroup_root)
                        root = strdup(cgroup_root);
                else {
                        r = placement_default_cgroup_root(&root);
                        if (r == -ENOMEDIUM)
                                return log_error_errno(r,
                                                       "No cgroup v2 hierarchy is mounted (see /proc/self/mountinfo), so runs "
                                                       "cannot get a cgroup of their own. Mount cgroup2, or set placement=none "
                                                       "explicitly to run agents in process groups only.");
                        if (r < 0)
                                return log_error_errno(r, "Failed to find corrald's cgroup: %m");
                }
                if (!root)
                        return log_oom();
                r = setup_cgroup_root(root);
                if (r < 0)
                        return log_error_errno(r, "The cgroup backend cannot use %s%s", root,
                                               kind == PLACEMENT_AUTO ? "; set placement=none explicitly to run without "
                                                                        "cgroups."
                                                                      : ".");
                kind = PLACEMENT_CGROUP;
        } else
                log_warning("placement=none: runs get no cgroup of their own. Descendants that leave the agent's process "
                            "group are not tracked or killed, and limits are not enforced. Use this for development only.");

        p = calloc(1, sizeof(Placement));
        if (!p)
                return -ENOMEM;
        p->kind = kind;
        p->ops = kind == PLACEMENT_CGROUP ? &cgroup_ops : &none_ops;
        p->cgroup_root = TAKE_PTR(root);
        if (kind == PLACEMENT_CGROUP) {
                r = cgroup_find_v2_mount(&p->cgroup_mount);
                if (r < 0) {
                        placement_free(p);
                        return log_error_errno(r, "Failed to find the cgroup v2 mount: %m");
                }
        }
        if (p->cgroup_root)
                log_info("Runs are placed in cgroups under %s.", p->cgroup_root);
        *ret = p;
        return 0;
}

Placement *placement_free(Placement *p) {
        if (!p)
                return NULL;
        /* The root stays: runs that outlive corrald still live below it. */
        if (p->kind == PLACEMENT_SCOPE)
                scope_teardown(p);
        sd_event_unref(p->event);
        free(p->cgroup_root);
        free(p->cgroup_mount);
        free(p);
        return NULL;
}

int placement_run_of_pid(Placement *p, pid_t pid, char **ret) {
        _cleanup_free_ char *cg = NULL, *full = NULL, *prefix = NULL;
        int r;

        *ret = NULL;
        if ((p->kind != PLACEMENT_CGROUP && p->kind != PLACEMENT_SCOPE) || pid <= 0)
                return 0;
        r = cgroup_pid_path(pid, &cg);
        if (r == -ENOENT || r == -ENOMEDIUM)
                return 0; /* gone, or in no cgroup v2: no run's */
        if (r < 0)
                return r;
        if (p->kind == PLACEMENT_SCOPE) {
                /* /corral.slice/corral-run-<id>.scope[/...]: only there, where no one but
                 * systemd for corrald makes units; a scope of that name under a user's own
                 * delegated cgroup is nobody's run. */
                if (!startswith(cg, "/" SCOPE_SLICE "/corral-run-"))
                        return 0;
                const char *unit = cg + strlen("/" SCOPE_SLICE);
                _cleanup_free_ char *name = strndup(unit + 1, strcspn(unit + 1, "/"));
                if (!name)
                        return -ENOMEM;
                *ret = scope_run_id(name);
                return 0;
        }
        full = strprintf("%s%s", p->cgroup_mount, cg);
        prefix = strprintf("%s/run-", p->cgroup_root);
        if (!full || !prefix)
                return -ENOMEM;
        if (strncmp(full, prefix, strlen(prefix)) != 0)
                return 0;
        const char *id = full + strlen(prefix);
        *ret = strndup(id, strcspn(id, "/"));
        return *ret ? 0 : -ENOMEM;
}
