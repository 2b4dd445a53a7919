/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Placement: picking a backend (placement-scope.c, placement-cgroup.c,
 * placement-none.c), and what is the same for all of them.
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
#include "supervise/placement-internal.h"

void run_place_done(RunPlace *p) {
        scope_start_free(p->pending);
        free(p->cgroup_path);
        free(p->unit_name);
        safe_close(p->cgroup_fd);
        *p = (RunPlace){ .cgroup_fd = -EBADF };
}

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

static int new_scope_placement(sd_event *event, Placement **ret) {
        Placement *p;
        int r;

        p = calloc(1, sizeof(Placement));
        if (!p)
                return -ENOMEM;
        p->kind = PLACEMENT_SCOPE;
        p->ops = &scope_ops;
        r = cgroup_find_v2_mount(&p->cgroup_mount);
        if (r < 0) {
                placement_free(p);
                return log_error_errno(r, "Failed to find the cgroup v2 mount: %m");
        }
        r = scope_setup(p, event);
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
                r = cgroup_placement_setup_root(root);
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
