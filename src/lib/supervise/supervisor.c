/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Run supervision. Each tracked run moves through one state machine, whose only writer is
 * tracked_set_state() (it arms and disarms the timers each state needs):
 *
 *   LAUNCHING --placed, row written, go sent--> RUNNING (the shim then starts the agent)
 *   LAUNCHING --stop: go closed, the shim gives up--> STOPPING
 *   RUNNING   --stop (cancel/timeout/idle): SIGTERM via shim, grace timer--> STOPPING
 *   STOPPING  --grace elapsed: kill the cgroup--> (shim exit)
 *   any       --shim exited--> DRAINING --cgroup empty--> finished, reported, freed
 *
 * Nothing polls: the shim's pidfd, the cgroup's cgroup.events and the run's
 * log file are event sources, the deadlines are timers.
 */
#include "supervise/supervisor.h"
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "basic/macro.h"
#include "store/queries.h"
#include "basic/spawn.h"
#include "basic/util.h"
#include "store/jsonmap.h"
#include "basic/log.h"
#include "store/model.h"
#include "supervise/runlog.h"
#include "store/queries.h"
#include "shim/shim-sandbox.h"
#include "shim/shim.h"
#include "shim/shim-workspace.h"
#include "supervise/spawner.h"
#include "basic/time-util.h"
#include "basic/fd-util.h"

#include "supervise/supervisor-internal.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static const char *const run_end_names[] = {
        "exited",       "cancelled", "timeout", "idle_timeout",  "oom_killed", "launch_failed",
        "process_lost", "log_limit", "budget",  "budget_paused", NULL,
};

const char *run_end_to_string(RunEnd e) {
        return enum_to_string(run_end_names, (int) e);
}

RunEnd run_end_from_string(const char *s) {
        return (RunEnd) enum_from_string(run_end_names, s);
}

/* Make the spare run directories that are missing, once the loop has nothing more urgent. */
void supervisor_want_spares(Supervisor *s) {
        if (s->n_spares < SPARE_RUN_DIRS)
                (void) sd_event_source_set_enabled(s->spare_source, SD_EVENT_ONESHOT);
}

Tracked *supervisor_find(Supervisor *s, const char *run_id) {
        return hashmap_get(s->by_id, run_id);
}

int tracked_add_watch(Tracked *t, const char *path, const char *what) {
        Supervisor *s = t->supervisor;
        int wd = inotify_add_watch(s->inotify_fd, path, IN_MODIFY);

        if (wd < 0) {
                if (what)
                        log_warning_errno(-errno, "Run %s: cannot watch %s: %m", t->run_id, what);
                return -1;
        }
        if (hashmap_put(s->by_wd, HASHMAP_INT_KEY(wd), t) < 0) {
                /* Out of memory, or a watch of another run's (one file for two runs, which
                 * is never meant to be): not this run's to follow. */
                log_warning("Run %s: cannot follow %s, ignoring.", t->run_id, path);
                if (hashmap_get(s->by_wd, HASHMAP_INT_KEY(wd)) != t)
                        return -1;
        }
        return wd;
}

static void remove_watch(Tracked *t, int wd) {
        Supervisor *s = t->supervisor;

        if (wd < 0 || !s || s->inotify_fd < 0)
                return;
        if (hashmap_get(s->by_wd, HASHMAP_INT_KEY(wd)) == t)
                (void) hashmap_remove(s->by_wd, HASHMAP_INT_KEY(wd));
        (void) inotify_rm_watch(s->inotify_fd, wd);
}

static void follow_dequeue(Tracked *t) {
        Supervisor *s = t->supervisor;

        if (!t->follow_prev)
                return;
        *t->follow_prev = t->follow_next;
        if (t->follow_next)
                t->follow_next->follow_prev = t->follow_prev;
        else
                s->follow_tail = t->follow_prev;
        t->follow_next = NULL;
        t->follow_prev = NULL;
}

void tracked_follow(Tracked *t) {
        Supervisor *s = t->supervisor;

        if (!t->watched || t->follow_prev || s->follow_fd < 0)
                return;
        if (!s->follow_head)
                (void) eventfd_write(s->follow_fd, 1);
        t->follow_prev = s->follow_tail;
        *s->follow_tail = t;
        s->follow_tail = &t->follow_next;
}

static int on_watched_chunk(int stream, const char *data, size_t size, void *userdata) {
        Tracked *t = userdata;
        Supervisor *s = t->supervisor;

        if (s->output)
                s->output(s, t->run_id, stream, data, size, s->output_userdata);
        return 0;
}

void supervisor_set_output_watcher(Supervisor *s, SupervisorOutputFn fn, void *userdata) {
        s->output = fn;
        s->output_userdata = userdata;
}

const Histogram *supervisor_launch_latency(Supervisor *s) {
        return &s->launch_latency;
}

int supervisor_watch_output(Supervisor *s, const char *run_id) {
        Tracked *t = supervisor_find(s, run_id);

        if (!t)
                return -ENOENT;
        t->watched = true;
        tracked_follow(t); /* what it wrote before it was watched */
        return 0;
}

/* Slices of each queued run's new output to its watcher, round robin, within a budget per
 * dispatch: a request, an exit or a timer waits for one dispatch at most. The queue is an
 * eventfd, readable while it holds a run, not a defer source: sd-event does not poll while
 * a source is pending, and a defer source always is, which would hide every request until
 * the flood's end. */
static int on_follow(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Supervisor *s = userdata;
        size_t budget = FOLLOW_BUDGET;

        while (s->follow_head && budget > 0) {
                Tracked *t = s->follow_head;
                size_t slice = MIN(budget, FOLLOW_SLICE);
                int r;

                follow_dequeue(t);
                r = runlog_watch(t->log, slice, on_watched_chunk, t);
                if (r < 0)
                        log_warning_errno(r, "Run %s: failed to read its log for its watcher: %m", t->run_id);
                if (r > 0)
                        tracked_follow(t); /* more: to the back of the queue */
                budget -= slice;
        }
        if (!s->follow_head) {
                eventfd_t n;
                (void) eventfd_read(fd, &n);
        }
        return 0;
}

void tracked_free(Tracked *t) {
        if (!t)
                return;
        follow_dequeue(t);
        if (t->spawning)
                spawner_cancel(t->supervisor->spawner, t);
        remove_watch(t, t->log_wd);
        remove_watch(t, t->events_wd);
        remove_watch(t, t->memory_wd);
        sd_event_source_disable_unref(t->pidfd_source);
        sd_event_source_disable_unref(t->report_source);
        sd_event_source_disable_unref(t->deadline_timer);
        sd_event_source_disable_unref(t->grace_timer);
        sd_event_source_disable_unref(t->idle_timer);
        sd_event_source_disable_unref(t->leftover_timer);
        safe_close(t->pidfd);
        safe_close(t->go_fd);
        safe_close(t->report_fd);
        runlog_free(t->log);
        run_place_done(&t->place);
        free(t->run_id);
        free(t->agent_id);
        free(t->issue_id);
        free(t->run_dir);
        free(t->error);
        free(t);
}

void supervisor_untrack(Supervisor *s, Tracked *t) {
        assert(t->slot < s->n_runs && s->runs[t->slot] == t);
        s->runs[t->slot] = s->runs[--s->n_runs];
        s->runs[t->slot]->slot = t->slot;
        (void) hashmap_remove(s->by_id, t->run_id);
        tracked_free(t);
}

char *supervisor_run_dir(Supervisor *s, const char *run_id) {
        return strprintf("%s/runs/%s", s->state_dir, run_id);
}

char *supervisor_log_path(Supervisor *s, const char *run_id) {
        return strprintf("%s/runs/%s/%s", s->state_dir, run_id, SHIM_LOG_FILE);
}

bool supervisor_tracks(Supervisor *s, const char *run_id) {
        return supervisor_find(s, run_id) != NULL;
}

bool supervisor_run_ending(Supervisor *s, const char *run_id) {
        Tracked *t = supervisor_find(s, run_id);
        return !t || t->state == TRACK_DRAINING;
}

unsigned supervisor_count(Supervisor *s) {
        return (unsigned) s->n_runs;
}

/* ---- ending ---- */

void tracked_event(Tracked *t, EventLevel level, const char *message) {
        if (t->fenced)
                return;
        int r = store_run_event_append(t->supervisor->store, t->run_id, "lifecycle", level, message, NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to record run event for %s, ignoring: %m", t->run_id);
}

/* What status.json says beyond the exit status. */
typedef struct ShimStatus {
        int64_t finished_usec;
        RunEnd stopped; /* _RUN_END_INVALID: the shim stopped nothing */
        uint64_t dropped_bytes;
        bool tails; /* the shim wrote each stream's tail, of these sizes */
        size_t tail_sizes[2];
        bool again; /* the agent could not resume its session and ran once more, afresh */
        bool log_digest; /* the shim hashed the log it wrote: its size and SHA-256 */
        uint64_t log_file_bytes;
        char log_sha256[65];
} ShimStatus;

/* The excerpts from the tail files, which must have the sizes status.json gives (a file cut
 * short by a crash is not a tail). */
static int set_tails(Tracked *t, const size_t sizes[2]) {
        static const char *const files[2] = { SHIM_STDOUT_TAIL_FILE, SHIM_STDERR_TAIL_FILE };

        for (int i = 0; i < 2; i++) {
                _cleanup_free_ char *path = strprintf("%s/%s", t->run_dir, files[i]), *data = NULL;
                size_t size = 0;
                int r;

                if (!path)
                        return -ENOMEM;
                if (sizes[i] > 0) {
                        r = read_full_file(path, SHIM_TAIL_MAX, &data, &size);
                        if (r < 0)
                                return r;
                        if (size != sizes[i])
                                return -EBADMSG;
                }
                r = runlog_set_tail(t->log, i, data ?: "", size);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Read status.json: the agent's real exit status. */
static int read_status(Tracked *t, int64_t *ret_exit, char **ret_signal, ShimStatus *ret) {
        _cleanup_free_ char *path = strprintf("%s/%s", t->run_dir, SHIM_STATUS_FILE), *text = NULL;
        cJSON *j, *code, *sig, *finished, *stopped, *dropped, *tails, *file_bytes, *sha256;
        int r;

        if (!path)
                return -ENOMEM;
        r = read_full_file(path, 64 * 1024, &text, NULL);
        if (r < 0)
                return r;
        j = cJSON_Parse(text);
        if (!j)
                return -EBADMSG;
        code = cJSON_GetObjectItemCaseSensitive(j, "exitCode");
        sig = cJSON_GetObjectItemCaseSensitive(j, "signal");
        /* An exit code is 0..255; anything else in the file is no exit code (never cast). */
        *ret_exit = cJSON_IsNumber(code) && code->valuedouble >= 0 && code->valuedouble <= 255 &&
                        code->valuedouble == (double) (int) code->valuedouble
                ? (int64_t) code->valuedouble
                : INT_NULL;
        *ret_signal = cJSON_IsString(sig) ? strdup(sig->valuestring) : NULL;
        finished = cJSON_GetObjectItemCaseSensitive(j, "finishedAt");
        if (!cJSON_IsString(finished) || iso_time_parse(finished->valuestring, &ret->finished_usec) < 0)
                ret->finished_usec = 0;
        /* The limits the shim enforces itself (shim.h). */
        stopped = cJSON_GetObjectItemCaseSensitive(j, "stopped");
        ret->stopped = !cJSON_IsString(stopped)            ? _RUN_END_INVALID
                : streq(stopped->valuestring, "timeout")   ? RUN_END_TIMEOUT
                : streq(stopped->valuestring, "log_limit") ? RUN_END_LOG_LIMIT
                : streq(stopped->valuestring, "fenced")    ? RUN_END_LOST /* the host's lease ran out */
                : streq(stopped->valuestring, "workspace") ? RUN_END_LAUNCH_FAILED /* workspace.error says why */
                                                           : _RUN_END_INVALID;
        tails = cJSON_GetObjectItemCaseSensitive(j, "tails");
        ret->tails = cJSON_GetArraySize(tails) == 2;
        for (int i = 0; ret->tails && i < 2; i++) {
                const cJSON *n = cJSON_GetArrayItem(tails, i);
                ret->tails = cJSON_IsNumber(n) && n->valuedouble >= 0 && n->valuedouble <= SHIM_TAIL_MAX;
                ret->tail_sizes[i] = ret->tails ? (size_t) n->valuedouble : 0;
        }
        ret->again = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "again"));
        dropped = cJSON_GetObjectItemCaseSensitive(j, "logDroppedBytes");
        ret->dropped_bytes = cJSON_IsNumber(dropped) && dropped->valuedouble > 0 && dropped->valuedouble < 1e18
                ? (uint64_t) dropped->valuedouble
                : 0;
        file_bytes = cJSON_GetObjectItemCaseSensitive(j, "logFileBytes");
        sha256 = cJSON_GetObjectItemCaseSensitive(j, "logSha256");
        ret->log_digest = cJSON_IsNumber(file_bytes) && file_bytes->valuedouble >= 0 && file_bytes->valuedouble < 1e15 &&
                cJSON_IsString(sha256) && strlen(sha256->valuestring) == 64 &&
                strspn(sha256->valuestring, "0123456789abcdef") == 64;
        if (ret->log_digest) {
                ret->log_file_bytes = (uint64_t) file_bytes->valuedouble;
                memcpy(ret->log_sha256, sha256->valuestring, sizeof(ret->log_sha256));
        }
        cJSON_Delete(j);
        return 0;
}

/* The log's size and digest: the shim's, for the file as it is now; else from reading it
 * (a shim that died, or one that did not hash it). */
static int log_digest(Tracked *t, const ShimStatus *st, uint64_t *ret_size, char ret_sha256[static 65]) {
        struct stat file;

        if (st->log_digest && stat(t->log->path, &file) >= 0 && (uint64_t) file.st_size == st->log_file_bytes) {
                *ret_size = st->log_file_bytes;
                memcpy(ret_sha256, st->log_sha256, 65);
                return 0;
        }
        return runlog_digest_final(t->log, ret_size, ret_sha256);
}

/* The cgroup is empty and the shim gone: report and forget the run. */
static void finish(Tracked *t) {
        Supervisor *s = t->supervisor;
        _cleanup_free_ char *signal_name = NULL;
        char exit_text[32];
        ShimStatus st = { .stopped = _RUN_END_INVALID };
        RunResult result = { .run_id = t->run_id, .exit_code = INT_NULL };
        int r;

        /* What a watcher has not been given yet goes to it before the run's end is told: the
         * follow queue may not have reached the last of the output. */
        while (t->watched && (r = runlog_watch(t->log, FOLLOW_SLICE, on_watched_chunk, t)) > 0)
                ;
        if (t->watched && r < 0)
                log_warning_errno(r, "Run %s: failed to read the end of its log for its watcher: %m", t->run_id);

        r = read_status(t, &result.exit_code, &signal_name, &st);
        result.log_dropped_bytes = st.dropped_bytes;
        result.session_retried = st.again;
        if (st.dropped_bytes > 0) {
                RUN_FIELDS(t, fields);
                log_fields(LOG_WARNING, fields,
                           "Run %s: %" PRIu64 " byte(s) of its output were lost: the file system of %s was full.", t->run_id,
                           st.dropped_bytes, t->run_dir);
        }
        if (r < 0 && r != -ENOENT)
                log_warning_errno(r, "Run %s: unreadable %s, ignoring: %m", t->run_id, SHIM_STATUS_FILE);
        if (r < 0 && t->killed)
                /* The shim itself was killed with the cgroup: the agent died of that. */
                signal_name = strdup("SIGKILL");
        result.signal = signal_name;
        result.error = t->error;
        _cleanup_free_ char *workspace_error = NULL;
        if (st.stopped == RUN_END_LAUNCH_FAILED) {
                /* The shim could not make the run's workspace: git's words are in the file. */
                _cleanup_free_ char *path = strprintf("%s/%s", t->run_dir, SHIM_WORKSPACE_ERROR_FILE);
                if (path && read_full_file(path, 4096, &workspace_error, NULL) >= 0)
                        result.error = strstrip(workspace_error);
                else
                        result.error = "The run's workspace could not be made";
        }

        (void) s->placement->ops->oom_kills(s->placement, &t->place, &result.oom_kills);
        result.oom_kills = MAX(result.oom_kills, t->oom_kills);
        if (t->stop_reason >= 0)
                result.end = t->stop_reason;
        else if (st.stopped >= 0) {
                /* The shim stopped it: its timeout (while corrald could not), its log limit,
                 * the host's lease that ran out while corrald was away. */
                result.end = st.stopped;
                if (st.stopped == RUN_END_LOST && !result.error)
                        result.error = "Process lost -- this host's lease ran out while corrald was not there to renew "
                                       "it, so its shim killed the agent before another host could take the run over";
        } else if (t->origin != TRACK_LAUNCHED && result.signal && t->deadline_usec > 0 && st.finished_usec >= t->deadline_usec)
                /* Killed past its deadline while corrald was away: the scope's RuntimeMaxUSec
                 * held the run's timeout (design §4.1). */
                result.end = RUN_END_TIMEOUT;
        else if (result.oom_kills > 0)
                result.end = RUN_END_OOM;
        else
                result.end = RUN_END_EXITED;
        char lost[256];
        if (r == -ENOENT && t->stop_reason < 0 && result.oom_kills == 0) {
                /* No exit status: the shim died with the agent (design §5, the last two rows). */
                result.end = RUN_END_LOST;
                if (t->origin == TRACK_AFTER_REBOOT)
                        snprintf(lost, sizeof(lost), "Process lost -- the machine rebooted while the run was running");
                else if (t->leftover > 0)
                        snprintf(lost, sizeof(lost),
                                 "Process lost -- shim pid %d exited, but %u descendant process%s of the run %s still alive in "
                                 "its "
                                 "cgroup and %s killed",
                                 (int) t->shim_pid, t->leftover, t->leftover == 1 ? "" : "es", t->leftover == 1 ? "was" : "were",
                                 t->leftover == 1 ? "was" : "were");
                else
                        snprintf(lost, sizeof(lost), "Process lost -- child pid %d is no longer running",
                                 (int) (t->agent_pid > 0 ? t->agent_pid : t->shim_pid));
                result.error = lost;
        }

        /* Excerpts go into the row with the run's end, in one transaction: from the tails the
         * shim kept, or (a shim that died, or could not write them) from the whole log. */
        if (!st.tails || set_tails(t, st.tail_sizes) < 0)
                (void) runlog_ingest_all(t->log);
        r = log_digest(t, &st, &result.log_bytes, result.log_sha256);
        result.log_offset = r >= 0 ? result.log_bytes : 0;
        if (r < 0 && r != -ENOENT)
                log_warning_errno(r, "Run %s: failed to hash its log, ignoring: %m", t->run_id);
        result.stdout_excerpt = runlog_excerpt(t->log, 0);
        result.stderr_excerpt = runlog_excerpt(t->log, 1);
        result.leftover = t->leftover;

        r = s->placement->ops->remove(s->placement, &t->place);
        if (r < 0)
                log_warning_errno(r, "Run %s: failed to remove %s, ignoring: %m", t->run_id, strna(t->place.cgroup_path));

        if (result.exit_code == INT_NULL)
                snprintf(exit_text, sizeof(exit_text), "%s", result.signal ? result.signal : "no exit status");
        else
                snprintf(exit_text, sizeof(exit_text), "exit code %" PRIi64, result.exit_code);
        {
                RUN_FIELDS(t, fields);
                log_fields(LOG_INFO, fields, "Run %s finished (%s, %s), log %" PRIu64 " bytes.", t->run_id,
                           run_end_to_string(result.end), exit_text, result.log_bytes);
        }
        if (s->finished && !t->fenced)
                s->finished(s, &result, s->userdata);
        supervisor_untrack(s, t);
        /* Spares a launch used without reaching its go are made again too. */
        supervisor_want_spares(s);
}

void tracked_maybe_finish(Tracked *t) {
        int r;

        if (t->state != TRACK_DRAINING)
                return;
        r = t->supervisor->placement->ops->populated(t->supervisor->placement, &t->place);
        if (r < 0)
                log_warning_errno(r, "Run %s: cannot read whether its cgroup is empty, assuming it is: %m", t->run_id);
        if (r > 0)
                return; /* cgroup.events will say when it empties */
        finish(t);
}

void tracked_kill(Tracked *t) {
        Supervisor *s = t->supervisor;
        int r;

        t->killed = true;
        r = s->placement->ops->kill_all(s->placement, &t->place);
        if (r < 0)
                log_error_errno(r, "Run %s: failed to kill its cgroup %s: %m", t->run_id, strna(t->place.cgroup_path));
        /* The none backend has nothing that reaches the shim: take it down by its pidfd. */
        if (t->state != TRACK_DRAINING && t->pidfd >= 0)
                (void) syscall(SYS_pidfd_send_signal, t->pidfd, SIGKILL, NULL, 0);
}

/* How many processes the agent left in the run's cgroup. A sandbox's init stays as long as
 * they do: it is corral's, not the agent's, and not counted. */
unsigned tracked_count_leftovers(Tracked *t) {
        Supervisor *s = t->supervisor;
        unsigned n = 0;

        (void) s->placement->ops->count(s->placement, &t->place, &n);
        return t->sandboxed && n > 0 ? n - 1 : n;
}

static const char *const track_state_names[] = { "launching", "running", "stopping", "draining", NULL };

static int on_deadline(sd_event_source *src, uint64_t usec, void *userdata);
static int on_idle_timer(sd_event_source *src, uint64_t usec, void *userdata);
static int on_grace_timer(sd_event_source *src, uint64_t usec, void *userdata);

static void arm(Tracked *t, sd_event_source **source, uint64_t usec, sd_event_time_handler_t handler, const char *what) {
        int r = sd_event_add_time_relative(t->supervisor->event, source, CLOCK_MONOTONIC, usec, 0, handler, t);
        if (r < 0)
                log_error_errno(r, "Run %s: failed to arm its %s: %m", t->run_id, what);
}

/* The one writer of t->state. What each state needs starts with it:
 *   RUNNING:  the run's deadline (an adopted run's from its row) and its idle timer;
 *   STOPPING: from RUNNING, the grace period (SIGTERM went to the agent), killing the
 *             cgroup at once when no timer can be had;
 *   DRAINING: the shim is gone, and so are its event sources and every timer but the
 *             leftover grace. */
void tracked_set_state(Tracked *t, TrackState state) {
        TrackState from = t->state;

        if (from == state)
                return;
        log_debug("Run %s: %s -> %s", t->run_id, track_state_names[from], track_state_names[state]);
        t->state = state;
        switch (state) {
        case TRACK_LAUNCHING:
                break;
        case TRACK_RUNNING:
                if (t->deadline_usec > 0) {
                        /* The deadline holds across restarts (design §3 difference 5). */
                        int64_t left = t->deadline_usec - now_usec();
                        arm(t, &t->deadline_timer, left > 0 ? (uint64_t) left : 0, on_deadline, "timeout");
                } else if (t->timeout_usec > 0)
                        arm(t, &t->deadline_timer, t->timeout_usec, on_deadline, "timeout");
                if (t->idle_usec > 0)
                        arm(t, &t->idle_timer, t->idle_usec, on_idle_timer, "idle timeout");
                break;
        case TRACK_STOPPING:
                if (from == TRACK_RUNNING &&
                    sd_event_add_time_relative(t->supervisor->event, &t->grace_timer, CLOCK_MONOTONIC, t->grace_usec, 0,
                                               on_grace_timer, t) < 0) {
                        log_warning("Run %s: failed to arm the grace timer, killing now.", t->run_id);
                        tracked_kill(t);
                }
                break;
        case TRACK_DRAINING:
                t->pidfd_source = sd_event_source_disable_unref(t->pidfd_source);
                t->report_source = sd_event_source_disable_unref(t->report_source);
                t->grace_timer = sd_event_source_disable_unref(t->grace_timer);
                t->idle_timer = sd_event_source_disable_unref(t->idle_timer);
                t->deadline_timer = sd_event_source_disable_unref(t->deadline_timer);
                break;
        }
}

static int on_leftover_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Tracked *t = userdata;
        Supervisor *s = t->supervisor;
        unsigned n = 0;
        char msg[160];

        if (s->placement->ops->populated(s->placement, &t->place) <= 0) {
                tracked_maybe_finish(t);
                return 0;
        }
        n = tracked_count_leftovers(t);
        t->leftover = n;
        snprintf(msg, sizeof(msg), "The agent exited, but %u process%s it left behind in the run's cgroup %s killed.", n,
                 n == 1 ? "" : "es", n == 1 ? "was" : "were");
        tracked_event(t, LEVEL_WARN, msg);
        RUN_FIELDS(t, fields);
        log_fields(LOG_NOTICE, fields, "Run %s: %s", t->run_id, msg);
        tracked_kill(t);
        tracked_maybe_finish(t);
        return 0;
}

int tracked_on_shim_exit(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Tracked *t = userdata;
        siginfo_t si = {};

        /* Our child: reap it. (A re-adopted shim would not be, and waitid says ECHILD.) */
        if (waitid((idtype_t) P_PIDFD, (id_t) t->pidfd, &si, WEXITED | WNOHANG) < 0 && errno != ECHILD)
                log_warning_errno(-errno, "Run %s: waitid on the shim failed, ignoring: %m", t->run_id);
        t->shim_status = si.si_status;
        /* The agent's pid, if its report is still unread (a busy loop may see both at once):
         * the run started before it ends. */
        if (t->report_source)
                (void) tracked_on_report(t->report_source, t->report_fd, EPOLLIN, t);
        if (si.si_pid > 0 && (si.si_code != CLD_EXITED || si.si_status != 0) && !t->killed)
                log_warning("Run %s: the shim %s %d.", t->run_id,
                            si.si_code == CLD_EXITED ? "exited with status" : "died of signal", si.si_status);
        tracked_set_state(t, TRACK_DRAINING);

        if (t->supervisor->placement->ops->populated(t->supervisor->placement, &t->place) > 0 && !t->killed) {
                /* Processes the agent left behind get a short grace, then the cgroup is killed. */
                int r = sd_event_add_time_relative(t->supervisor->event, &t->leftover_timer, CLOCK_MONOTONIC,
                                                   t->supervisor->leftover_grace_usec, 0, on_leftover_timer, t);
                if (r < 0) {
                        log_warning_errno(r, "Run %s: failed to arm the leftover timer, killing now: %m", t->run_id);
                        (void) on_leftover_timer(NULL, 0, t);
                }
                return 0;
        }
        tracked_maybe_finish(t);
        return 0;
}

static int on_grace_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Tracked *t = userdata;

        RUN_FIELDS(t, fields);
        log_fields(LOG_NOTICE, fields, "Run %s did not stop within its grace period; killing every process in it.", t->run_id);
        tracked_event(t, LEVEL_WARN, "The run did not stop within its grace period; every process in its cgroup was killed.");
        tracked_kill(t);
        return 0;
}

int supervisor_stop(Supervisor *s, const char *run_id, RunEnd why) {
        Tracked *t = supervisor_find(s, run_id);

        if (!t)
                return -ENOENT;
        if (t->state == TRACK_STOPPING || t->state == TRACK_DRAINING)
                return 0;
        if (t->stop_reason < 0)
                t->stop_reason = why;
        if (t->state == TRACK_LAUNCHING) {
                /* The agent has not started: closing the go pipe makes the shim give up. */
                t->go_fd = safe_close(t->go_fd);
                tracked_set_state(t, TRACK_STOPPING);
                return 0;
        }
        {
                RUN_FIELDS(t, fields);
                log_fields(LOG_INFO, fields, "Stopping run %s (%s): SIGTERM to the agent, SIGKILL to all after %" PRIu64 " s.",
                           t->run_id, run_end_to_string(why), t->grace_usec / USEC_PER_SEC);
        }
        /* The shim forwards SIGTERM to the agent's process group. */
        if (syscall(SYS_pidfd_send_signal, t->pidfd, SIGTERM, NULL, 0) < 0 && errno != ESRCH)
                log_warning_errno(-errno, "Run %s: failed to signal its shim: %m", t->run_id);
        tracked_set_state(t, TRACK_STOPPING);
        return 0;
}

int supervisor_set_lease(Supervisor *s, uint64_t until_usec) {
        char text[64];
        int n, r;

        if (!s->lease_path) {
                s->lease_path = strprintf("%s/%s", s->state_dir, SUPERVISOR_LEASE_FILE);
                if (!s->lease_path)
                        return -ENOMEM;
        }
        n = snprintf(text, sizeof(text), "until_mono_ms=%" PRIu64 "\n", until_usec / 1000);
        /* Renamed into place, not synced: a shim never reads half of it, and a crash of the
         * machine ends the shims with it; an fsync every renewal would stall the loop behind
         * the disk (the runs' logs) for nothing. */
        r = write_file_replace(s->lease_path, text, (size_t) n, 0600);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s, which tells the shims how long this host's lease lasts: %m",
                                       s->lease_path);
        return 0;
}

unsigned supervisor_fence(Supervisor *s) {
        unsigned n = 0;

        for (size_t i = 0; i < s->n_runs; i++) {
                Tracked *t = s->runs[i];

                if (t->fenced)
                        continue;
                t->fenced = true;
                n++;
                {
                        RUN_FIELDS(t, fields);
                        log_fields(LOG_WARNING, fields,
                                   "Run %s: killing every process in it, unrecorded: this host may have been declared dead.",
                                   t->run_id);
                }
                if (t->stop_reason < 0)
                        t->stop_reason = RUN_END_LOST;
                if (t->state == TRACK_LAUNCHING) {
                        /* The agent has not started: closing the go pipe makes the shim give up. */
                        t->go_fd = safe_close(t->go_fd);
                        tracked_set_state(t, TRACK_STOPPING);
                }
                tracked_kill(t);
        }
        return n;
}

static int on_deadline(sd_event_source *src, uint64_t usec, void *userdata) {
        Tracked *t = userdata;

        tracked_event(t, LEVEL_WARN, "The run reached its timeout.");
        (void) supervisor_stop(t->supervisor, t->run_id, RUN_END_TIMEOUT);
        return 0;
}

static int on_idle_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Tracked *t = userdata;
        uint64_t now = now_mono_usec();

        if (now - t->last_output < t->idle_usec) {
                /* Output arrived since the timer was armed: wait for the rest of the interval. */
                (void) sd_event_source_set_time(src, t->last_output + t->idle_usec);
                (void) sd_event_source_set_enabled(src, SD_EVENT_ONESHOT);
                return 0;
        }
        tracked_event(t, LEVEL_WARN, "The run produced no output for its idle timeout.");
        (void) supervisor_stop(t->supervisor, t->run_id, RUN_END_IDLE_TIMEOUT);
        return 0;
}

/* ---- log and cgroup events ---- */

/* A live run's excerpts are made when it is read, from its log's tail, and are not
 * written to its row while it runs: under a flood of output every write to the disk the
 * logs are on waits, and the loop must not. */
int supervisor_live_excerpts(Supervisor *s, const char *run_id, char **ret_stdout, char **ret_stderr) {
        Tracked *t = supervisor_find(s, run_id);
        int r;

        if (!t)
                return -ESRCH;
        r = runlog_refresh_tail(t->log);
        if (r < 0)
                return r;
        if (free_and_strdup(ret_stdout, runlog_excerpt(t->log, 0)) < 0 ||
            free_and_strdup(ret_stderr, runlog_excerpt(t->log, 1)) < 0)
                return -ENOMEM;
        return 0;
}

/* New output from a re-adopted run: it is alive, so the detached warning goes (the
 * reference's reportRunActivity). */
static void clear_detached(Tracked *t) {
        _cleanup_(run_donep) Run run = {};
        int r;

        t->detached = false;
        if (t->fenced)
                return;
        r = store_get(t->supervisor->store, &run_entity, t->run_id, &run);
        if (r < 0 || run.status != RUN_RUNNING || !streq_ptr(run.error_code, "process_detached"))
                return;
        run.error = mfree(run.error);
        run.error_code = mfree(run.error_code);
        r = store_update(t->supervisor->store, &run_entity, &run);
        if (r >= 0)
                tracked_event(t, LEVEL_INFO, "Detached child process reported activity; cleared detached warning");
}

void supervisor_report_activity(Supervisor *s, const char *run_id) {
        Tracked *t = supervisor_find(s, run_id);

        if (t && t->detached)
                clear_detached(t);
}

static int on_inotify(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Supervisor *s = userdata;
        char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));

        /* A few reads per dispatch, not until there is nothing more: under a flood of output
         * the events come as fast as they are read, and the loop would never leave. */
        for (int k = 0; k < INOTIFY_READS_MAX; k++) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n <= 0)
                        break;
                for (char *p = buf; p < buf + n;) {
                        const struct inotify_event *e = (const struct inotify_event *) p;
                        p += sizeof(*e) + e->len;
                        Tracked *t = hashmap_get(s->by_wd, HASHMAP_INT_KEY(e->wd));
                        if (!t)
                                continue; /* a watch removed with its run */
                        if (e->wd == t->log_wd) {
                                /* Only the shim writes the log: a change is output. */
                                t->last_output = now_mono_usec();
                                if (t->detached)
                                        clear_detached(t);
                                tracked_follow(t);
                        } else if (e->wd == t->memory_wd) {
                                uint64_t kills = 0;
                                if (s->placement->ops->oom_kills(s->placement, &t->place, &kills) >= 0)
                                        t->oom_kills = MAX(t->oom_kills, kills);
                        } else if (e->wd == t->events_wd)
                                tracked_maybe_finish(t); /* may free t */
                }
        }
        return 0;
}

int supervisor_new(sd_event *event, Store *store, Placement *placement, const SupervisorConfig *config,
                   SupervisorFinished finished, void *userdata, Supervisor **ret) {
        _cleanup_free_ char *boot_id = NULL;
        Supervisor *s;
        int r;

        s = calloc(1, sizeof(Supervisor));
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(event);
        s->store = store;
        s->placement = placement;
        s->finished = finished;
        s->userdata = userdata;
        s->inotify_fd = -EBADF;
        s->follow_fd = -EBADF;
        s->leftover_grace_usec = config->leftover_grace_usec ?: USEC_PER_SEC;
        static const double launch_bounds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
        s->launch_latency = (Histogram){ .bounds = launch_bounds, .n_bounds = ELEMENTSOF(launch_bounds) };
        s->state_dir = strdup(config->state_dir);
        s->shim_path = strdup(config->shim_path);
        if (!s->state_dir || !s->shim_path || hashmap_new(HASHMAP_STRING, &s->by_id) < 0 ||
            hashmap_new(HASHMAP_INT, &s->by_wd) < 0) {
                supervisor_free(s);
                return -ENOMEM;
        }
        const char *boot_id_path = config->boot_id_path ?: "/proc/sys/kernel/random/boot_id";
        r = read_full_file(boot_id_path, 128, &boot_id, NULL);
        if (r < 0) {
                supervisor_free(s);
                return log_error_errno(r, "Failed to read the boot id from %s: %m", boot_id_path);
        }
        snprintf(s->boot_id, sizeof(s->boot_id), "%s", strstrip(boot_id));

        s->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (s->inotify_fd < 0) {
                r = -errno;
                supervisor_free(s);
                return log_error_errno(r, "Failed to create an inotify instance: %m");
        }
        r = sd_event_add_io(event, &s->inotify_source, s->inotify_fd, EPOLLIN, on_inotify, s);
        if (r < 0) {
                supervisor_free(s);
                return log_error_errno(r, "Failed to watch inotify: %m");
        }
        s->follow_tail = &s->follow_head;
        /* At the priority of everything else, not idle: under a flood the log's watch is
         * always pending, and idle work would wait for the flood's end, then hold the loop. */
        s->follow_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        r = s->follow_fd < 0 ? -errno : sd_event_add_io(event, &s->follow_source, s->follow_fd, EPOLLIN, on_follow, s);
        if (r < 0) {
                supervisor_free(s);
                return log_error_errno(r, "Failed to set up log following: %m");
        }
        if (access(s->shim_path, X_OK) < 0) {
                r = -errno;
                supervisor_free(s);
                return log_error_errno(r, "The shim %s cannot be executed: %m", config->shim_path);
        }
        r = supervisor_setup_spares(s);
        if (r < 0) {
                supervisor_free(s);
                return r;
        }
        if (!config->exec_shims) {
                r = spawner_new(event, s->shim_path, &s->spawner);
                if (r < 0) {
                        supervisor_free(s);
                        return log_error_errno(r, "Failed to set up the shim spawner: %m");
                }
        }
        *ret = s;
        return 0;
}

Supervisor *supervisor_free(Supervisor *s) {
        if (!s)
                return NULL;
        /* Runs are not stopped: their shims live on and a restarted corrald adopts them. */
        while (s->n_runs > 0)
                supervisor_untrack(s, s->runs[0]);
        free(s->runs);
        hashmap_free(s->by_id);
        hashmap_free(s->by_wd);
        spawner_free(s->spawner);
        sd_event_source_disable_unref(s->spare_source);
        supervisor_remove_spares(s);
        sd_event_source_disable_unref(s->follow_source);
        safe_close(s->follow_fd);
        sd_event_source_disable_unref(s->inotify_source);
        safe_close(s->inotify_fd);
        sd_event_unref(s->event);
        free(s->state_dir);
        free(s->shim_path);
        free(s->lease_path);
        free(s);
        return NULL;
}

pid_t supervisor_spawner_pid(Supervisor *s) {
        return spawner_pid(s->spawner);
}
