/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Taking up a run after corrald restarted: re-adopted when its shim is the process that was
 * launched, else finished from what it left (status.json, its log, its cgroup).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "basic/fd-util.h"
#include "basic/log.h"
#include "basic/macro.h"
#include "basic/spawn.h"
#include "basic/time-util.h"
#include "basic/util.h"
#include "shim/shim-sandbox.h"
#include "shim/shim.h"
#include "store/jsonmap.h"
#include "store/queries.h"
#include "supervise/supervisor-internal.h"

/* ---- recovery ---- */

/* The shim of a run as a pidfd, only if it is the same process that was launched. */
static int open_shim(const Run *run, int *ret_pidfd) {
        uint64_t ticks;
        int fd, r;

        if (run->shim_pid == INT_NULL || run->shim_pid <= 0 || run->shim_start_ticks == INT_NULL)
                return -ESRCH;
        fd = (int) syscall(SYS_pidfd_open, (pid_t) run->shim_pid, 0);
        if (fd < 0)
                return -errno;
        /* A pid alone never identifies a process: its start time must match too. */
        r = pid_start_ticks((pid_t) run->shim_pid, &ticks);
        if (r < 0 || ticks != (uint64_t) run->shim_start_ticks) {
                safe_close(fd);
                return -ESRCH;
        }
        *ret_pidfd = fd;
        return 0;
}

/* Seed the excerpts with what the row kept, so a restart does not empty them. */
static void seed_excerpts(RunLog *l, const Run *run) {
        if (run->stdout_excerpt)
                (void) runlog_seed_excerpt(l, 0, run->stdout_excerpt);
        if (run->stderr_excerpt)
                (void) runlog_seed_excerpt(l, 1, run->stderr_excerpt);
}

/* Long because taking up a run is one decision made in order: the place it had, then
 * whether this boot knows its shim, then adopt or finish; every step can end the take-up. */
int supervisor_recover(Supervisor *s, const Run *run, const RecoverSpec *spec, RecoverOutcome *ret) {
        _cleanup_json_ cJSON *ctx = NULL;
        const cJSON *issue;
        Tracked *t;
        int pidfd = -EBADF, r;

        if (supervisor_find(s, run->id))
                return -EEXIST;
        ctx = cJSON_Parse(run->context_snapshot ?: "{}");
        issue = cJSON_GetObjectItemCaseSensitive(ctx, "issueId");
        r = tracked_new(s, run->id, run->agent_id, cJSON_IsString(issue) ? issue->valuestring : NULL, &t);
        if (r < 0)
                return r;
        seed_excerpts(t->log, run);
        t->origin = TRACK_ADOPTED;
        t->fenced = spec->stale;
        {
                _cleanup_free_ char *policy = strprintf("%s/%s", t->run_dir, SHIM_SANDBOX_FILE);
                t->sandboxed = policy && access(policy, F_OK) >= 0;
        }
        t->shim_pid = run->shim_pid != INT_NULL ? (pid_t) run->shim_pid : 0;
        t->agent_pid = run->process_pid != INT_NULL ? (pid_t) run->process_pid : 0;
        t->place.pgid = t->agent_pid;
        t->grace_usec = (spec->grace_sec ?: 1) * USEC_PER_SEC;
        t->idle_usec = spec->idle_timeout_sec * USEC_PER_SEC;
        t->last_output = now_mono_usec();
        if (run->deadline_at && iso_time_parse(run->deadline_at, &t->deadline_usec) < 0)
                t->deadline_usec = 0;
        if ((run->cgroup_path && !(t->place.cgroup_path = strdup(run->cgroup_path))) ||
            (run->unit_name && !(t->place.unit_name = strdup(run->unit_name)))) {
                supervisor_untrack(s, t);
                return -ENOMEM;
        }
        /* A crash between creating the run's place and recording it leaves the row without
         * it; the place may still exist (with a shim that gave up) and must not leak. */
        if (!t->place.cgroup_path && !t->place.unit_name && s->placement->ops->locate) {
                r = s->placement->ops->locate(s->placement, run->id, &t->place);
                if (r < 0) {
                        supervisor_untrack(s, t);
                        return r;
                }
        }
        tracked_watch(t);

        /* Pids of an earlier boot name nothing of this one: the run's processes died with it,
         * and only what it wrote to disk (its log, perhaps its status.json) is left. */
        if (!streq_ptr(run->boot_id, s->boot_id))
                t->origin = TRACK_AFTER_REBOOT;
        r = t->origin == TRACK_AFTER_REBOOT ? -ESRCH : open_shim(run, &pidfd);
        if (r >= 0) {
                RUN_FIELDS(t, fields);
                t->pidfd = pidfd;
                t->detached = true;
                r = sd_event_add_io(s->event, &t->pidfd_source, t->pidfd, EPOLLIN, tracked_on_shim_exit, t);
                if (r < 0) {
                        supervisor_untrack(s, t);
                        return r;
                }
                tracked_set_state(t, TRACK_RUNNING);
                *ret = RECOVER_ADOPTED;
                if (t->fenced) {
                        log_fields(
                                LOG_WARNING, fields,
                                "Run %s was taken over by another host, yet its shim %d is alive: killing every process in it.",
                                t->run_id, (int) t->shim_pid);
                        tracked_kill(t);
                        return 0;
                }
                log_fields(LOG_NOTICE, fields, "Run %s re-adopted: its shim %d is alive.", t->run_id, (int) t->shim_pid);
                return 0;
        }

        /* The shim is gone: finish from what it left (status.json, the log, the cgroup). */
        tracked_set_state(t, TRACK_DRAINING);
        *ret = t->origin == TRACK_AFTER_REBOOT ? RECOVER_REBOOTED : RECOVER_FINISHING;
        {
                RUN_FIELDS(t, fields);
                log_fields(LOG_NOTICE, fields, "Run %s: its shim %d is gone; finishing it from what it left.", t->run_id,
                           (int) t->shim_pid);
        }
        if (s->placement->ops->populated(s->placement, &t->place) > 0) {
                _cleanup_free_ char *status = strprintf("%s/%s", t->run_dir, SHIM_STATUS_FILE);
                /* Without the shim nothing else will end these processes. */
                t->leftover = tracked_count_leftovers(t);
                if (status && access(status, F_OK) < 0) {
                        char msg[160];
                        snprintf(msg, sizeof(msg), "The shim is gone; %u process%s left in the run's cgroup %s killed.",
                                 t->leftover, t->leftover == 1 ? "" : "es", t->leftover == 1 ? "was" : "were");
                        tracked_event(t, LEVEL_WARN, msg);
                }
                tracked_kill(t);
        }
        tracked_maybe_finish(t); /* may report and free t at once */
        return 0;
}
