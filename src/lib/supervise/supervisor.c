/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Run supervision. Each tracked run moves through one state machine:
 *
 *   LAUNCHING --placed, row written, go sent--> RUNNING (the shim then starts the agent)
 *   RUNNING   --stop (cancel/timeout/idle): SIGTERM via shim--> STOPPING
 *   STOPPING  --grace elapsed: kill the cgroup--> (shim exit)
 *   any       --shim exited--> DRAINING --cgroup empty--> finished, reported, freed
 *
 * Nothing polls: the shim's pidfd, the cgroup's cgroup.events and the run's
 * log file are event sources, the deadlines are timers.
 */
#include "supervise/supervisor.h"

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
#include "supervise/spawner.h"
#include "basic/time-util.h"
#include "basic/fd-util.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* Run directories made ahead (see make_spare()). */
#define SPARE_RUN_DIRS 4
#define SPARE_PREFIX ".spare-"
/* The run's context, in its directory, for the agent. */
#define RUN_CONTEXT_FILE "context.json"

/* Ingestion progress is written to the run row at most this often. */
#define OFFSET_PERSIST_USEC (1 * USEC_PER_SEC)

typedef enum TrackState {
        TRACK_LAUNCHING,
        TRACK_RUNNING,
        TRACK_STOPPING,
        TRACK_DRAINING,
} TrackState;

typedef struct Tracked {
        Supervisor *supervisor;
        TrackState state;
        char *run_id, *agent_id, *issue_id;
        char *run_dir;
        RunPlace place;

        pid_t shim_pid;
        int pidfd;
        uint64_t shim_start_ticks;
        pid_t agent_pid;
        int go_fd, report_fd;
        bool spawning; /* the shim spawner has not answered for this run's shim yet */
        bool shim_exited;
        int shim_status; /* si_code/si_status of the shim, for a shim that died itself */

        RunEnd stop_reason; /* set when corral decided to end the run */
        bool adopted; /* taken up after a restart: the shim is not our child */
        bool rebooted; /* taken up after a reboot: its processes belonged to another boot */
        bool detached; /* the row says process_detached until the run shows life */
        bool killed; /* the cgroup was killed */
        bool sandboxed; /* the agent's tree has a sandbox init, which is not a leftover */
        unsigned leftover;

        uint64_t grace_usec, idle_usec, timeout_usec;
        int64_t deadline_usec; /* CLOCK_REALTIME, of a re-adopted run; 0 for none */
        RunLimits limits;
        char *error; /* why the run could not be launched or placed */
        uint64_t last_output; /* CLOCK_MONOTONIC */
        uint64_t last_persist;

        RunLog *log;
        int log_wd, events_wd, memory_wd;
        uint64_t oom_kills; /* seen in memory.events while the run's cgroup existed */

        sd_event_source *pidfd_source, *report_source;
        sd_event_source *deadline_timer, *grace_timer, *idle_timer, *leftover_timer;
} Tracked;

struct Supervisor {
        sd_event *event;
        Store *store;
        Placement *placement;
        char *state_dir, *shim_path;
        uint64_t leftover_grace_usec;
        char boot_id[64];
        SupervisorFinished finished;
        void *userdata;

        Spawner *spawner; /* NULL: every shim is executed directly */
        char *spares[SPARE_RUN_DIRS]; /* made run directories, each ready to be renamed into place */
        size_t n_spares;
        sd_event_source *spare_source; /* makes them, after a launch has sent its go */
        int inotify_fd;
        sd_event_source *inotify_source;
        Tracked **runs;
        size_t n_runs;
};

static const char *const run_end_names[] = {
        "exited", "cancelled", "timeout", "idle_timeout", "oom_killed", "launch_failed", "process_lost", NULL,
};

const char *run_end_to_string(RunEnd e) {
        return enum_to_string(run_end_names, (int) e);
}

/* Make the spare run directories that are missing, once the loop has nothing more urgent. */
static void want_spares(Supervisor *s) {
        if (s->n_spares < SPARE_RUN_DIRS)
                (void) sd_event_source_set_enabled(s->spare_source, SD_EVENT_ONESHOT);
}

/* Journal fields naming the run, so "journalctl CORRAL_RUN_ID=<id>" shows its life. */
#define RUN_FIELDS(t, name)                                                                          \
        char name##_run[64], name##_agent[64], name##_issue[64];                                     \
        snprintf(name##_run, sizeof(name##_run), "CORRAL_RUN_ID=%s", (t)->run_id);                   \
        snprintf(name##_agent, sizeof(name##_agent), "CORRAL_AGENT_ID=%s", strempty((t)->agent_id)); \
        snprintf(name##_issue, sizeof(name##_issue), "CORRAL_ISSUE_ID=%s", strempty((t)->issue_id)); \
        const char *const name[] = { name##_run, name##_agent, (t)->issue_id ? name##_issue : NULL, NULL }

static Tracked *find(Supervisor *s, const char *run_id) {
        for (size_t i = 0; i < s->n_runs; i++)
                if (streq(s->runs[i]->run_id, run_id))
                        return s->runs[i];
        return NULL;
}

static void tracked_free(Tracked *t) {
        if (!t)
                return;
        if (t->spawning)
                spawner_cancel(t->supervisor->spawner, t);
        if (t->supervisor && t->supervisor->inotify_fd >= 0) {
                if (t->log_wd >= 0)
                        (void) inotify_rm_watch(t->supervisor->inotify_fd, t->log_wd);
                if (t->events_wd >= 0)
                        (void) inotify_rm_watch(t->supervisor->inotify_fd, t->events_wd);
                if (t->memory_wd >= 0)
                        (void) inotify_rm_watch(t->supervisor->inotify_fd, t->memory_wd);
        }
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

static void untrack(Supervisor *s, Tracked *t) {
        for (size_t i = 0; i < s->n_runs; i++)
                if (s->runs[i] == t) {
                        s->runs[i] = s->runs[--s->n_runs];
                        break;
                }
        tracked_free(t);
}

char *supervisor_run_dir(Supervisor *s, const char *run_id) {
        return strprintf("%s/runs/%s", s->state_dir, run_id);
}

char *supervisor_log_path(Supervisor *s, const char *run_id) {
        return strprintf("%s/runs/%s/%s", s->state_dir, run_id, SHIM_LOG_FILE);
}

bool supervisor_tracks(Supervisor *s, const char *run_id) {
        return find(s, run_id) != NULL;
}

unsigned supervisor_count(Supervisor *s) {
        return (unsigned) s->n_runs;
}

/* ---- ending ---- */

static void event(Tracked *t, EventLevel level, const char *message) {
        int r = store_run_event_append(t->supervisor->store, t->run_id, "lifecycle", level, message, NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to record run event for %s, ignoring: %m", t->run_id);
}

/* Read status.json: the agent's real exit status. */
static int read_status(Tracked *t, int64_t *ret_exit, char **ret_signal, int64_t *ret_finished_usec) {
        _cleanup_free_ char *path = strprintf("%s/%s", t->run_dir, SHIM_STATUS_FILE), *text = NULL;
        cJSON *j, *code, *sig, *finished;
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
        *ret_exit = cJSON_IsNumber(code) ? (int64_t) code->valuedouble : INT_NULL;
        *ret_signal = cJSON_IsString(sig) ? strdup(sig->valuestring) : NULL;
        finished = cJSON_GetObjectItemCaseSensitive(j, "finishedAt");
        if (!cJSON_IsString(finished) || iso_time_parse(finished->valuestring, ret_finished_usec) < 0)
                *ret_finished_usec = 0;
        cJSON_Delete(j);
        return 0;
}

/* The cgroup is empty and the shim gone: report and forget the run. */
static void finish(Tracked *t) {
        Supervisor *s = t->supervisor;
        _cleanup_free_ char *signal_name = NULL;
        char exit_text[32];
        int64_t finished_usec = 0;
        RunResult result = { .run_id = t->run_id, .exit_code = INT_NULL };
        int r;

        r = read_status(t, &result.exit_code, &signal_name, &finished_usec);
        if (r < 0 && r != -ENOENT)
                log_warning_errno(r, "Run %s: unreadable %s, ignoring: %m", t->run_id, SHIM_STATUS_FILE);
        if (r < 0 && t->killed)
                /* The shim itself was killed with the cgroup: the agent died of that. */
                signal_name = strdup("SIGKILL");
        result.signal = signal_name;
        result.error = t->error;

        (void) s->placement->ops->oom_kills(s->placement, &t->place, &result.oom_kills);
        result.oom_kills = MAX(result.oom_kills, t->oom_kills);
        if (t->stop_reason >= 0)
                result.end = t->stop_reason;
        else if (t->adopted && result.signal && t->deadline_usec > 0 && finished_usec >= t->deadline_usec)
                /* Killed past its deadline while corrald was away: the scope's RuntimeMaxUSec
                 * held the run's timeout (SPEC §4.1). */
                result.end = RUN_END_TIMEOUT;
        else if (result.oom_kills > 0)
                result.end = RUN_END_OOM;
        else
                result.end = RUN_END_EXITED;
        char lost[256];
        if (r == -ENOENT && t->stop_reason < 0 && result.oom_kills == 0) {
                /* No exit status: the shim died with the agent (SPEC §5, the last two rows). */
                result.end = RUN_END_LOST;
                if (t->rebooted)
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

        /* Offset and excerpts go into the row with the run's end, in one transaction. */
        (void) runlog_ingest(t->log);
        result.log_offset = t->log->offset;
        r = runlog_digest_final(t->log, &result.log_bytes, result.log_sha256);
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
        if (s->finished)
                s->finished(s, &result, s->userdata);
        untrack(s, t);
        /* Spares a launch used without reaching its go are made again too. */
        want_spares(s);
}

static void maybe_finish(Tracked *t) {
        int r;

        if (!t->shim_exited)
                return;
        r = t->supervisor->placement->ops->populated(t->supervisor->placement, &t->place);
        if (r < 0)
                log_warning_errno(r, "Run %s: cannot read whether its cgroup is empty, assuming it is: %m", t->run_id);
        if (r > 0)
                return; /* cgroup.events will say when it empties */
        finish(t);
}

static void kill_run(Tracked *t) {
        Supervisor *s = t->supervisor;
        int r;

        t->killed = true;
        r = s->placement->ops->kill_all(s->placement, &t->place);
        if (r < 0)
                log_error_errno(r, "Run %s: failed to kill its cgroup %s: %m", t->run_id, strna(t->place.cgroup_path));
        /* The none backend has nothing that reaches the shim: take it down by its pidfd. */
        if (!t->shim_exited && t->pidfd >= 0)
                (void) syscall(SYS_pidfd_send_signal, t->pidfd, SIGKILL, NULL, 0);
}

/* How many processes the agent left in the run's cgroup. A sandbox's init stays as long as
 * they do: it is corral's, not the agent's, and not counted. */
static unsigned count_leftovers(Tracked *t) {
        Supervisor *s = t->supervisor;
        unsigned n = 0;

        (void) s->placement->ops->count(s->placement, &t->place, &n);
        return t->sandboxed && n > 0 ? n - 1 : n;
}

static int on_leftover_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Tracked *t = userdata;
        Supervisor *s = t->supervisor;
        unsigned n = 0;
        char msg[160];

        if (s->placement->ops->populated(s->placement, &t->place) <= 0) {
                maybe_finish(t);
                return 0;
        }
        n = count_leftovers(t);
        t->leftover = n;
        snprintf(msg, sizeof(msg), "The agent exited, but %u process%s it left behind in the run's cgroup %s killed.", n,
                 n == 1 ? "" : "es", n == 1 ? "was" : "were");
        event(t, LEVEL_WARN, msg);
        RUN_FIELDS(t, fields);
        log_fields(LOG_NOTICE, fields, "Run %s: %s", t->run_id, msg);
        kill_run(t);
        maybe_finish(t);
        return 0;
}

static int on_report(sd_event_source *src, int fd, uint32_t revents, void *userdata);

static int on_shim_exit(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Tracked *t = userdata;
        siginfo_t si = {};

        /* Our child: reap it. (A re-adopted shim would not be, and waitid says ECHILD.) */
        if (waitid((idtype_t) P_PIDFD, (id_t) t->pidfd, &si, WEXITED | WNOHANG) < 0 && errno != ECHILD)
                log_warning_errno(-errno, "Run %s: waitid on the shim failed, ignoring: %m", t->run_id);
        t->shim_exited = true;
        t->shim_status = si.si_status;
        /* The agent's pid, if its report is still unread (a busy loop may see both at once):
         * the run started before it ends. */
        if (t->report_source)
                (void) on_report(t->report_source, t->report_fd, EPOLLIN, t);
        if (si.si_pid > 0 && (si.si_code != CLD_EXITED || si.si_status != 0) && !t->killed)
                log_warning("Run %s: the shim %s %d.", t->run_id,
                            si.si_code == CLD_EXITED ? "exited with status" : "died of signal", si.si_status);
        t->pidfd_source = sd_event_source_disable_unref(t->pidfd_source);
        t->report_source = sd_event_source_disable_unref(t->report_source);
        t->grace_timer = sd_event_source_disable_unref(t->grace_timer);
        t->idle_timer = sd_event_source_disable_unref(t->idle_timer);
        t->deadline_timer = sd_event_source_disable_unref(t->deadline_timer);
        (void) runlog_ingest(t->log);
        t->state = TRACK_DRAINING;

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
        maybe_finish(t);
        return 0;
}

static int on_grace_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Tracked *t = userdata;

        RUN_FIELDS(t, fields);
        log_fields(LOG_NOTICE, fields, "Run %s did not stop within its grace period; killing every process in it.", t->run_id);
        event(t, LEVEL_WARN, "The run did not stop within its grace period; every process in its cgroup was killed.");
        kill_run(t);
        return 0;
}

int supervisor_stop(Supervisor *s, const char *run_id, RunEnd why) {
        Tracked *t = find(s, run_id);
        int r;

        if (!t)
                return -ENOENT;
        if (t->state == TRACK_STOPPING || t->state == TRACK_DRAINING)
                return 0;
        if (t->stop_reason < 0)
                t->stop_reason = why;
        if (t->state == TRACK_LAUNCHING) {
                /* The agent has not started: closing the go pipe makes the shim give up. */
                t->go_fd = safe_close(t->go_fd);
                t->state = TRACK_STOPPING;
                return 0;
        }
        t->state = TRACK_STOPPING;
        {
                RUN_FIELDS(t, fields);
                log_fields(LOG_INFO, fields, "Stopping run %s (%s): SIGTERM to the agent, SIGKILL to all after %" PRIu64 " s.",
                           t->run_id, run_end_to_string(why), t->grace_usec / USEC_PER_SEC);
        }
        /* The shim forwards SIGTERM to the agent's process group. */
        if (syscall(SYS_pidfd_send_signal, t->pidfd, SIGTERM, NULL, 0) < 0 && errno != ESRCH)
                log_warning_errno(-errno, "Run %s: failed to signal its shim: %m", t->run_id);
        r = sd_event_add_time_relative(s->event, &t->grace_timer, CLOCK_MONOTONIC, t->grace_usec, 0, on_grace_timer, t);
        if (r < 0) {
                log_warning_errno(r, "Run %s: failed to arm the grace timer, killing now: %m", t->run_id);
                kill_run(t);
        }
        return 0;
}

static int on_deadline(sd_event_source *src, uint64_t usec, void *userdata) {
        Tracked *t = userdata;

        event(t, LEVEL_WARN, "The run reached its timeout.");
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
        event(t, LEVEL_WARN, "The run produced no output for its idle timeout.");
        (void) supervisor_stop(t->supervisor, t->run_id, RUN_END_IDLE_TIMEOUT);
        return 0;
}

/* ---- log and cgroup events ---- */

/* Ingestion progress of a running run, at most every OFFSET_PERSIST_USEC: a corrald that
 * restarts resumes from there. */
static void persist_progress(Tracked *t) {
        _cleanup_(run_donep) Run run = {};
        uint64_t now = now_mono_usec();
        int r;

        if (now - t->last_persist < OFFSET_PERSIST_USEC)
                return;
        t->last_persist = now;
        r = store_get(t->supervisor->store, &run_entity, t->run_id, &run);
        if (r < 0)
                return;
        run.log_offset = (int64_t) t->log->offset;
        if (free_and_strdup(&run.stdout_excerpt, runlog_excerpt(t->log, 0)) < 0 ||
            free_and_strdup(&run.stderr_excerpt, runlog_excerpt(t->log, 1)) < 0)
                return;
        r = store_update(t->supervisor->store, &run_entity, &run);
        if (r < 0)
                log_warning_errno(r, "Run %s: failed to record log progress, ignoring: %m", t->run_id);
}

/* New output from a re-adopted run: it is alive, so the detached warning goes (the
 * reference's reportRunActivity). */
static void clear_detached(Tracked *t) {
        _cleanup_(run_donep) Run run = {};
        int r;

        t->detached = false;
        r = store_get(t->supervisor->store, &run_entity, t->run_id, &run);
        if (r < 0 || run.status != RUN_RUNNING || !streq_ptr(run.error_code, "process_detached"))
                return;
        run.error = mfree(run.error);
        run.error_code = mfree(run.error_code);
        r = store_update(t->supervisor->store, &run_entity, &run);
        if (r >= 0)
                event(t, LEVEL_INFO, "Detached child process reported activity; cleared detached warning");
}

void supervisor_report_activity(Supervisor *s, const char *run_id) {
        Tracked *t = find(s, run_id);

        if (t && t->detached)
                clear_detached(t);
}

static int on_inotify(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Supervisor *s = userdata;
        char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));

        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n <= 0)
                        break;
                for (char *p = buf; p < buf + n;) {
                        const struct inotify_event *e = (const struct inotify_event *) p;
                        p += sizeof(*e) + e->len;
                        for (size_t i = 0; i < s->n_runs; i++) {
                                Tracked *t = s->runs[i];
                                if (e->wd == t->log_wd) {
                                        if (runlog_ingest(t->log) > 0) {
                                                t->last_output = now_mono_usec();
                                                if (t->detached)
                                                        clear_detached(t);
                                        }
                                        persist_progress(t);
                                        break;
                                }
                                if (e->wd == t->memory_wd) {
                                        uint64_t kills = 0;
                                        if (s->placement->ops->oom_kills(s->placement, &t->place, &kills) >= 0)
                                                t->oom_kills = MAX(t->oom_kills, kills);
                                        break;
                                }
                                if (e->wd == t->events_wd) {
                                        maybe_finish(t); /* may free t */
                                        break;
                                }
                        }
                }
        }
        return 0;
}

/* ---- launching ---- */

static void on_attached(int r, const char *error, void *userdata);
static int shim_started(Tracked *t, pid_t pid, int pidfd, uint64_t start_ticks);
static void on_spawned(pid_t pid, int pidfd, uint64_t start_ticks, void *userdata);
static void start_agent(Tracked *t);
static void watch_cgroup(Tracked *t);

/* What the shim's process needs between clone3 and execve. */
typedef struct ShimExec {
        const char *path, *cwd;
        char *const *argv, *const *env;
        int devnull, go, report;
} ShimExec;

/* The shim's process. It shares corrald's memory until execve (clone3_spawn), so only
 * async-signal-safe calls that change nothing but this process's own state. corrald
 * installs no signal handlers of its own (sd-event reads signals from a signalfd), so
 * none can run here once the mask is cleared. */
static _noreturn_ void shim_child(void *userdata) {
        const ShimExec *x = userdata;

        spawn_child_reset_signals(NULL);
        if (dup2(x->devnull, STDIN_FILENO) < 0 || dup2(x->go, SHIM_FD_GO) < 0 || dup2(x->report, SHIM_FD_REPORT) < 0)
                _exit(SHIM_EXIT_EXEC_FAILED);
        if (x->cwd && chdir(x->cwd) < 0)
                _exit(SHIM_EXIT_EXEC_FAILED);
        execve(x->path, x->argv, x->env);
        _exit(SHIM_EXIT_EXEC_FAILED);
}

static int write_run_file(const char *dir, const char *name, const void *content, size_t size, unsigned mode) {
        _cleanup_free_ char *path = strprintf("%s/%s", dir, name);
        _cleanup_close_ int fd = -EBADF;

        /* Written in place, not synced: nothing reads these files before the shim starts, a
         * run does not outlive the machine, and its context is in the database too. A temp
         * file and rename, or an fsync, would cost every launch for nothing. The run
         * directory is root's only: the agent gets what it needs of these files by
         * descriptor or through its sandbox. */
        if (!path)
                return -ENOMEM;
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        if (fchmod(fd, mode) < 0)
                return -errno;
        return write_full(fd, content, size);
}

/* A launch given up after supervisor_launch() returned: said in the journal and the run's
 * events, the shim (if there is one) gets no go and gives up, and the run ends as
 * launch_failed once it has. r < 0 adds its errno to the journal's line. */
static void give_up_launch(Tracked *t, const char *error, int r) {
        RUN_FIELDS(t, fields);
        if (r < 0)
                log_fields(LOG_ERR, fields, "Run %s could not be launched: %s (%s)", t->run_id, error, strerror(-r));
        else
                log_fields(LOG_ERR, fields, "Run %s could not be launched: %s", t->run_id, error);
        event(t, LEVEL_ERROR, error);
        if (!t->error)
                t->error = strdup(error);
        t->stop_reason = RUN_END_LAUNCH_FAILED;
        t->go_fd = safe_close(t->go_fd);
}

/* Start the shim by executing it, straight into the run's cgroup: the way without the spawner. */
static pid_t exec_shim(Supervisor *s, Tracked *t, char *const *argv, char *const *env, const char *cwd, int go, int report,
                       int *ret_pidfd) {
        _cleanup_close_ int devnull = -EBADF;

        devnull = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (devnull < 0)
                return -errno;
        devnull = fd_move_high(devnull);
        if (devnull < 0)
                return devnull;

        struct clone_args args = {
                .flags = CLONE_PIDFD | (t->place.cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0),
                .pidfd = (uint64_t) (uintptr_t) ret_pidfd,
                .exit_signal = SIGCHLD,
                .cgroup = (uint64_t) (t->place.cgroup_fd >= 0 ? t->place.cgroup_fd : 0),
        };
        ShimExec x = {
                .path = s->shim_path,
                .cwd = cwd,
                .argv = argv,
                .env = env,
                .devnull = devnull,
                .go = go,
                .report = report,
        };
        return clone3_spawn(&args, shim_child, &x);
}

/* The files every run directory has from its start: a spare comes with them, empty. */
static const char *const spare_files[] = { SHIM_LOG_FILE, RUN_CONTEXT_FILE };

/* Remove a spare directory that was not used: its empty files and the directory. */
static int remove_spare(const char *dir) {
        for (size_t i = 0; i < ELEMENTSOF(spare_files); i++) {
                _cleanup_free_ char *path = strprintf("%s/%s", dir, spare_files[i]);
                if (path)
                        (void) unlink(path);
        }
        return rmdir(dir) < 0 ? -errno : 0;
}

/* A spare run directory, made ahead when a launch is through: a launch renames one into
 * place instead of allocating three inodes on its critical path, which on a busy or
 * fragmented file system can cost far more than the rest of the launch. */
static int make_spare(Supervisor *s, char **ret) {
        _cleanup_free_ char *dir = NULL;
        char id[UUID_STRING_MAX];
        int r;

        r = uuid_new(id);
        if (r < 0)
                return r;
        dir = strprintf("%s/runs/" SPARE_PREFIX "%s", s->state_dir, id);
        if (!dir)
                return -ENOMEM;
        if (mkdir(dir, 0700) < 0)
                return -errno;
        for (size_t i = 0; i < ELEMENTSOF(spare_files); i++) {
                _cleanup_close_ int fd = -EBADF;
                _cleanup_free_ char *path = strprintf("%s/%s", dir, spare_files[i]);
                fd = path ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600) : -ENOMEM;
                if (fd < 0) {
                        r = path ? -errno : -ENOMEM;
                        (void) remove_spare(dir);
                        return r;
                }
        }
        *ret = TAKE_PTR(dir);
        return 0;
}

static int on_make_spares(sd_event_source *src, void *userdata) {
        Supervisor *s = userdata;
        int r;

        while (s->n_spares < SPARE_RUN_DIRS) {
                r = make_spare(s, &s->spares[s->n_spares]);
                if (r < 0) {
                        log_debug_errno(r, "Cannot make a spare run directory, ignoring: %m");
                        break;
                }
                s->n_spares++;
        }
        return 0;
}

static int make_run_dir(Tracked *t, char **ret_error) {
        Supervisor *s = t->supervisor;
        int r;

        while (s->n_spares > 0) {
                _cleanup_free_ char *spare = s->spares[--s->n_spares];
                if (rename(spare, t->run_dir) >= 0)
                        return 0;
                log_debug_errno(-errno, "Cannot use the spare run directory %s, ignoring: %m", spare);
                (void) remove_spare(spare);
        }
        r = mkdir_parents_and_self(t->run_dir, 0700);
        if (r < 0)
                return set_error(ret_error, r, "cannot create the run directory %s: %s", t->run_dir, strerror(-r));
        return 0;
}

/* What the agent reads from the run directory: its context and its stdin. */
static int write_run_files(Tracked *t, const LaunchSpec *spec, char **ret_error) {
        int r;

        if (spec->context_json &&
            (r = write_run_file(t->run_dir, RUN_CONTEXT_FILE, spec->context_json, strlen(spec->context_json), 0600)) < 0)
                return set_error(ret_error, r, "cannot write context.json: %s", strerror(-r));
        if (!spec->context_json) {
                /* A spare directory comes with an empty one. */
                _cleanup_free_ char *path = strprintf("%s/%s", t->run_dir, RUN_CONTEXT_FILE);
                if (path)
                        (void) unlink(path);
        }
        if (spec->stdin_text &&
            (r = write_run_file(t->run_dir, SHIM_STDIN_FILE, spec->stdin_text, strlen(spec->stdin_text), 0600)) < 0)
                return set_error(ret_error, r, "cannot write the stdin file: %s", strerror(-r));
        for (size_t i = 0; i < spec->n_files; i++)
                if ((r = write_run_file(t->run_dir, spec->files[i].name, spec->files[i].data, spec->files[i].size,
                                        spec->files[i].mode)) < 0)
                        return set_error(ret_error, r, "cannot write the run's %s file: %s", spec->files[i].name, strerror(-r));
        return 0;
}

static int launch(Supervisor *s, Tracked *t, const LaunchSpec *spec, char **ret_error) {
        _cleanup_close_ int go_read = -EBADF, report_write = -EBADF;
        _cleanup_free_ char **argv = NULL;
        _cleanup_free_ char *warning = NULL;
        int go[2], report[2], pidfd = -1, r;
        size_t n_args = 0;
        pid_t pid;

        r = s->placement->ops->prepare(s->placement, t->run_id, &spec->limits, &t->place, &warning);
        if (r < 0)
                return set_error(ret_error, r, "cannot create the run's cgroup under %s: %s", strna(s->placement->cgroup_root),
                                 strerror(-r));
        if (warning) {
                event(t, LEVEL_WARN, warning);
                RUN_FIELDS(t, fields);
                log_fields(LOG_WARNING, fields, "Run %s: %s", t->run_id, warning);
        }

        while (spec->argv[n_args])
                n_args++;
        argv = calloc(n_args + 4, sizeof(char *));
        if (!argv)
                return -ENOMEM;
        size_t k = 0;
        argv[k++] = s->shim_path;
        if (spec->sandboxed)
                argv[k++] = (char *) "--sandbox";
        argv[k++] = t->run_dir;
        for (size_t i = 0; i < n_args; i++)
                argv[k++] = spec->argv[i];

        if (pipe2(go, O_CLOEXEC) < 0)
                return -errno;
        go_read = fd_move_high(go[0]);
        t->go_fd = go[1];
        if (pipe2(report, O_CLOEXEC) < 0)
                return -errno;
        report_write = fd_move_high(report[1]);
        t->report_fd = report[0];
        if (go_read < 0 || report_write < 0)
                return -EMFILE;

        /* The spawner forks the shim while corrald makes the run directory, writes the
         * run's files and goes on with its loop (the wake's HTTP reply, say): the shim
         * touches nothing of them before go, and its answer comes as an event (on_spawned). */
        const char *cwd = spec->cwd ?: t->run_dir;
        if (s->spawner) {
                SpawnerRequest req = {
                        .cwd = cwd,
                        .argv = argv,
                        .env = spec->env,
                        .go_fd = go_read,
                        .report_fd = report_write,
                        .cgroup_fd = t->place.cgroup_fd,
                };
                r = spawner_request(s->spawner, &req, on_spawned, t);
                if (r < 0 && r != -EAGAIN)
                        return set_error(ret_error, r, "cannot ask the shim spawner for the shim: %s", strerror(-r));
                if (r >= 0) {
                        _cleanup_free_ char *error = NULL;
                        t->spawning = true;
                        r = make_run_dir(t, &error);
                        if (r >= 0)
                                r = write_run_files(t, spec, &error);
                        if (r < 0) {
                                /* The shim is on its way into the run's cgroup already. */
                                give_up_launch(t, error ?: strerror(-r), 0);
                                t->state = TRACK_STOPPING;
                        }
                        return 0;
                }
        }

        r = make_run_dir(t, ret_error);
        if (r >= 0)
                r = write_run_files(t, spec, ret_error);
        if (r < 0)
                return r;
        pid = exec_shim(s, t, argv, spec->env, cwd, go_read, report_write, &pidfd);
        if (pid < 0)
                return set_error(ret_error, pid, "cannot start the shim: clone3: %s", strerror(-pid));
        return shim_started(t, pid, pidfd, 0);
}

/* The shim exists: watch it, then place and record the run, which lets the shim go on.
 * start_ticks: its start time if known (the spawner read it), else 0. */
static int shim_started(Tracked *t, pid_t pid, int pidfd, uint64_t start_ticks) {
        Supervisor *s = t->supervisor;
        int r;

        t->shim_pid = pid;
        t->pidfd = pidfd;
        t->shim_start_ticks = start_ticks;
        if (start_ticks == 0 && (r = pid_start_ticks(pid, &t->shim_start_ticks)) < 0)
                log_warning_errno(r, "Run %s: cannot read the shim's start time, ignoring: %m", t->run_id);

        r = sd_event_add_io(s->event, &t->pidfd_source, t->pidfd, EPOLLIN, on_shim_exit, t);
        if (r >= 0)
                r = sd_event_add_io(s->event, &t->report_source, t->report_fd, EPOLLIN, on_report, t);
        if (r < 0) {
                /* A half-started shim is killed and reaped on every error path. */
                pidfd_kill_and_reap(t->pidfd);
                return r;
        }
        if (t->state != TRACK_LAUNCHING)
                return 0; /* stopped meanwhile: go is closed, and the shim gives up */

        /* The shim sets itself up on another CPU meanwhile: the run is placed and recorded in
         * parallel, and the go byte is usually waiting when the shim gets to read it. */
        if (!s->placement->ops->attach) {
                start_agent(t); /* cloned into its cgroup already */
                return 0;
        }

        /* The scope backend moves the shim into the run's unit; the agent, started only
         * after go, is born there. */
        _cleanup_free_ char *description = strprintf("corral run %s of agent %s", t->run_id, strna(t->agent_id));
        PlacementAttach a = {
                .pids = &t->shim_pid,
                .n_pids = 1,
                .limits = &t->limits,
                .description = description ?: t->run_id,
                .runtime_max_usec = t->timeout_usec > 0 ? t->timeout_usec + t->grace_usec : 0,
                .done = on_attached,
                .userdata = t,
        };
        r = s->placement->ops->attach(s->placement, &t->place, &a);
        if (r < 0)
                on_attached(r, "cannot ask systemd for the run's scope", t);
        return 0;
}

/* The spawner's answer for a launch. Without a shim to wait for, the run ends here. */
static void on_spawned(pid_t pid, int pidfd, uint64_t start_ticks, void *userdata) {
        Tracked *t = userdata;
        int r;

        t->spawning = false;
        r = pid < 0 ? pid : shim_started(t, pid, pidfd, start_ticks);
        if (r >= 0)
                return;

        _cleanup_free_ char *message =
                strprintf("cannot start the shim: %s: %s", pid < 0 ? "the shim spawner failed" : "cannot watch it", strerror(-r));
        give_up_launch(t, message ?: "cannot start the shim", 0);
        t->shim_exited = true;
        t->state = TRACK_DRAINING;
        /* A shim of a spawner that failed midway may be in the cgroup: it gets no go and
         * exits, and cgroup.events says so. */
        maybe_finish(t);
}

/* The shim started the agent and says its pid: remember it, for the none backend's process
 * group kill and for the API. The agent runs already; nothing waits for this. */
static int on_report(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        static const char *const columns[] = { "process_pid", "process_group_id", NULL };
        Tracked *t = userdata;
        char buf[32] = "";
        ssize_t n;
        int64_t pid;
        int r;

        n = read(fd, buf, sizeof(buf) - 1);
        t->report_source = sd_event_source_disable_unref(t->report_source);
        t->report_fd = safe_close(t->report_fd);
        if (n <= 0 || safe_atoi64(strstrip(buf), &pid) < 0 || pid <= 0)
                /* No agent: the launch was called off, or the agent could not be executed
                 * (status.json says which). The shim's pidfd says the rest. */
                return 0;
        t->agent_pid = (pid_t) pid;
        t->place.pgid = t->agent_pid;

        /* The pid and the "run started" event in one transaction. */
        _cleanup_(store_rollbackp) Store *tx = NULL;
        Store *store = t->supervisor->store;
        Run run = { .id = t->run_id, .process_pid = pid, .process_group_id = pid };
        r = store_begin(store);
        if (r >= 0) {
                tx = store;
                r = store_update_columns(store, &run_entity, &run, columns);
        }
        if (r >= 0)
                r = store_run_event_append(store, t->run_id, "lifecycle", LEVEL_INFO, "run started", NULL);
        if (r >= 0)
                r = store_commit(store);
        if (r >= 0)
                tx = NULL;
        if (r < 0)
                log_warning_errno(r, "Run %s: failed to record its agent's pid %" PRIi64 ", ignoring: %m", t->run_id, pid);
        RUN_FIELDS(t, fields);
        log_fields(LOG_DEBUG, fields, "Run %s: agent %" PRIi64 " started.", t->run_id, pid);
        return 0;
}

/* The run's place is ready (or could not be made): start the agent, or let the shim give up. */
static void on_attached(int r, const char *error, void *userdata) {
        Tracked *t = userdata;

        if (r < 0) {
                give_up_launch(t, error, r);
                return;
        }
        if (t->state != TRACK_LAUNCHING)
                return;
        watch_cgroup(t);
        start_agent(t);
}

/* Record the run's shim and place, then let the shim start the agent. */
static void start_agent(Tracked *t) {
        static const char *const columns[] = { "shim_pid",    "shim_start_ticks",   "boot_id",
                                               "cgroup_path", "unit_name",          "log_path",
                                               "log_ref",     "process_started_at", "deadline_at",
                                               NULL };
        Supervisor *s = t->supervisor;
        char now[ISO_TIME_MAX], deadline[ISO_TIME_MAX];
        int r;

        (void) iso_time_now(now);
        Run run = {
                .id = t->run_id,
                .shim_pid = t->shim_pid,
                .shim_start_ticks = (int64_t) t->shim_start_ticks,
                .boot_id = s->boot_id,
                .cgroup_path = t->place.cgroup_path,
                .unit_name = t->place.unit_name,
                .log_path = t->log->path,
                .log_ref = t->log->path,
                .process_started_at = now,
        };
        if (t->timeout_usec > 0 && iso_time_format(now_usec() + (int64_t) t->timeout_usec, deadline) >= 0)
                run.deadline_at = deadline;

        /* One statement, on the launch's critical path: the "run started" event follows
         * with the agent's pid (on_report). */
        r = store_update_columns(s->store, &run_entity, &run, columns);
        if (r < 0) {
                /* Without the row naming its shim and place, the run must not start. */
                log_error_errno(r, "Run %s: failed to record its processes, not starting it: %m", t->run_id);
                t->stop_reason = RUN_END_LAUNCH_FAILED;
                t->go_fd = safe_close(t->go_fd);
                return;
        }

        if (write(t->go_fd, "g", 1) != 1) {
                log_error_errno(-errno, "Run %s: failed to start the agent: %m", t->run_id);
                t->stop_reason = RUN_END_LAUNCH_FAILED;
        }
        t->go_fd = safe_close(t->go_fd);
        t->state = TRACK_RUNNING;
        t->last_output = now_mono_usec();
        /* The next launch's directory, now that this one's critical path is behind it. */
        want_spares(s);

        if (t->timeout_usec > 0) {
                r = sd_event_add_time_relative(s->event, &t->deadline_timer, CLOCK_MONOTONIC, t->timeout_usec, 0, on_deadline, t);
                if (r < 0)
                        log_error_errno(r, "Run %s: failed to arm its timeout: %m", t->run_id);
        }
        if (t->idle_usec > 0) {
                r = sd_event_add_time_relative(s->event, &t->idle_timer, CLOCK_MONOTONIC, t->idle_usec, 0, on_idle_timer, t);
                if (r < 0)
                        log_error_errno(r, "Run %s: failed to arm its idle timeout: %m", t->run_id);
        }

        RUN_FIELDS(t, fields);
        log_fields(LOG_INFO, fields, "Run %s started: shim %d, %s %s.", t->run_id, (int) t->shim_pid,
                   t->place.unit_name             ? "unit"
                           : t->place.cgroup_path ? "cgroup"
                                                  : "placement",
                   t->place.unit_name ?: strna(t->place.cgroup_path));
}

/* A new tracked run, registered with the supervisor. */
static int tracked_new(Supervisor *s, const char *run_id, const char *agent_id, const char *issue_id, uint64_t log_offset,
                       Tracked **ret) {
        _cleanup_free_ char *log_path = NULL;
        Tracked *t, **runs;

        t = calloc(1, sizeof(Tracked));
        if (!t)
                return -ENOMEM;
        *t = (Tracked){
                .supervisor = s,
                .state = TRACK_LAUNCHING,
                .pidfd = -EBADF,
                .go_fd = -EBADF,
                .report_fd = -EBADF,
                .log_wd = -1,
                .events_wd = -1,
                .memory_wd = -1,
                .stop_reason = _RUN_END_INVALID,
                .place = { .cgroup_fd = -EBADF },
                .grace_usec = USEC_PER_SEC,
        };
        t->run_id = strdup(run_id);
        t->agent_id = agent_id ? strdup(agent_id) : NULL;
        t->issue_id = issue_id ? strdup(issue_id) : NULL;
        t->run_dir = supervisor_run_dir(s, run_id);
        log_path = supervisor_log_path(s, run_id);
        runs = realloc(s->runs, (s->n_runs + 1) * sizeof(Tracked *));
        if (runs)
                s->runs = runs;
        if (!t->run_id || !t->run_dir || !log_path || !runs || (agent_id && !t->agent_id) || (issue_id && !t->issue_id) ||
            runlog_new(log_path, log_offset, &t->log) < 0) {
                tracked_free(t);
                return -ENOMEM;
        }
        s->runs[s->n_runs++] = t;
        *ret = t;
        return 0;
}

/* inotify on the log (created empty if missing, so there is a file to watch) and on the cgroup. */
/* The run's cgroup.events, once the run's cgroup is known. */
static void watch_cgroup(Tracked *t) {
        Supervisor *s = t->supervisor;
        _cleanup_free_ char *events = NULL;

        if (t->events_wd >= 0)
                return;
        events = s->placement->ops->events_path(s->placement, &t->place);
        if (events) {
                t->events_wd = inotify_add_watch(s->inotify_fd, events, IN_MODIFY);
                if (t->events_wd < 0)
                        log_warning_errno(-errno, "Run %s: cannot watch %s: %m", t->run_id, events);
        }
        /* OOM kills are counted as they happen: a scope's cgroup may be gone (collected by
         * systemd) by the time the run is finalized. Without the memory controller there
         * is no such file, and no OOM kill of the run's own. */
        if (t->place.cgroup_path && t->memory_wd < 0) {
                _cleanup_free_ char *memory = strprintf("%s/memory.events", t->place.cgroup_path);
                if (memory)
                        t->memory_wd = inotify_add_watch(s->inotify_fd, memory, IN_MODIFY);
        }
}

static void watch(Tracked *t) {
        Supervisor *s = t->supervisor;
        int fd;

        fd = open(t->log->path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        safe_close(fd);
        t->log_wd = inotify_add_watch(s->inotify_fd, t->log->path, IN_MODIFY);
        if (t->log_wd < 0)
                log_warning_errno(-errno, "Run %s: cannot watch its log, output is read at the end only: %m", t->run_id);
        watch_cgroup(t);
}

int supervisor_launch(Supervisor *s, const LaunchSpec *spec) {
        _cleanup_free_ char *error = NULL;
        Tracked *t;
        int r;

        if (find(s, spec->run_id))
                return -EEXIST;
        if (!spec->argv || !spec->argv[0])
                return -EINVAL;
        r = tracked_new(s, spec->run_id, spec->agent_id, spec->issue_id, 0, &t);
        if (r < 0)
                return r;
        t->grace_usec = (spec->grace_sec ?: 1) * USEC_PER_SEC;
        t->idle_usec = spec->idle_timeout_sec * USEC_PER_SEC;
        t->timeout_usec = spec->timeout_sec * USEC_PER_SEC;
        t->limits = spec->limits;
        t->sandboxed = spec->sandboxed;

        r = launch(s, t, spec, &error);
        if (r < 0) {
                RUN_FIELDS(t, fields);
                log_fields(LOG_ERR, fields, "Run %s could not be launched: %s", t->run_id, error ?: strerror(-r));
                event(t, LEVEL_ERROR, error ?: strerror(-r));
                (void) s->placement->ops->remove(s->placement, &t->place);
                untrack(s, t);
                return r;
        }

        watch(t);
        return 0;
}

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

int supervisor_recover(Supervisor *s, const Run *run, const RecoverSpec *spec, RecoverOutcome *ret) {
        _cleanup_json_ cJSON *ctx = NULL;
        const cJSON *issue;
        Tracked *t;
        int pidfd = -EBADF, r;

        if (find(s, run->id))
                return -EEXIST;
        ctx = cJSON_Parse(run->context_snapshot ?: "{}");
        issue = cJSON_GetObjectItemCaseSensitive(ctx, "issueId");
        r = tracked_new(s, run->id, run->agent_id, cJSON_IsString(issue) ? issue->valuestring : NULL,
                        run->log_offset > 0 ? (uint64_t) run->log_offset : 0, &t);
        if (r < 0)
                return r;
        seed_excerpts(t->log, run);
        t->adopted = true;
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
                untrack(s, t);
                return -ENOMEM;
        }
        /* A crash between creating the run's place and recording it leaves the row without
         * it; the place may still exist (with a shim that gave up) and must not leak. */
        if (!t->place.cgroup_path && !t->place.unit_name && s->placement->ops->locate) {
                r = s->placement->ops->locate(s->placement, run->id, &t->place);
                if (r < 0) {
                        untrack(s, t);
                        return r;
                }
        }
        watch(t);
        (void) runlog_ingest(t->log);

        /* Pids of an earlier boot name nothing of this one: the run's processes died with it,
         * and only what it wrote to disk (its log, perhaps its status.json) is left. */
        t->rebooted = !streq_ptr(run->boot_id, s->boot_id);
        r = t->rebooted ? -ESRCH : open_shim(run, &pidfd);
        if (r >= 0) {
                RUN_FIELDS(t, fields);
                t->pidfd = pidfd;
                t->state = TRACK_RUNNING;
                t->detached = true;
                r = sd_event_add_io(s->event, &t->pidfd_source, t->pidfd, EPOLLIN, on_shim_exit, t);
                if (r < 0) {
                        untrack(s, t);
                        return r;
                }
                /* The deadline holds across restarts (SPEC §3 difference 5). */
                int64_t deadline;
                if (run->deadline_at && iso_time_parse(run->deadline_at, &deadline) >= 0) {
                        int64_t left = deadline - now_usec();
                        r = sd_event_add_time_relative(s->event, &t->deadline_timer, CLOCK_MONOTONIC,
                                                       left > 0 ? (uint64_t) left : 0, 0, on_deadline, t);
                        if (r < 0)
                                log_error_errno(r, "Run %s: failed to arm its timeout: %m", t->run_id);
                }
                if (t->idle_usec > 0) {
                        r = sd_event_add_time_relative(s->event, &t->idle_timer, CLOCK_MONOTONIC, t->idle_usec, 0, on_idle_timer,
                                                       t);
                        if (r < 0)
                                log_error_errno(r, "Run %s: failed to arm its idle timeout: %m", t->run_id);
                }
                log_fields(LOG_NOTICE, fields, "Run %s re-adopted: its shim %d is alive.", t->run_id, (int) t->shim_pid);
                *ret = RECOVER_ADOPTED;
                return 0;
        }

        /* The shim is gone: finish from what it left (status.json, the log, the cgroup). */
        t->shim_exited = true;
        t->state = TRACK_DRAINING;
        *ret = t->rebooted ? RECOVER_REBOOTED : RECOVER_FINISHING;
        {
                RUN_FIELDS(t, fields);
                log_fields(LOG_NOTICE, fields, "Run %s: its shim %d is gone; finishing it from what it left.", t->run_id,
                           (int) t->shim_pid);
        }
        if (s->placement->ops->populated(s->placement, &t->place) > 0) {
                _cleanup_free_ char *status = strprintf("%s/%s", t->run_dir, SHIM_STATUS_FILE);
                /* Without the shim nothing else will end these processes. */
                t->leftover = count_leftovers(t);
                if (status && access(status, F_OK) < 0) {
                        char msg[160];
                        snprintf(msg, sizeof(msg), "The shim is gone; %u process%s left in the run's cgroup %s killed.",
                                 t->leftover, t->leftover == 1 ? "" : "es", t->leftover == 1 ? "was" : "were");
                        event(t, LEVEL_WARN, msg);
                }
                kill_run(t);
        }
        maybe_finish(t); /* may report and free t at once */
        return 0;
}

/* ---- setup ---- */

/* The runs directory, without the spares an earlier corrald left, and the source that makes
 * new ones (its first round right after startup). */
static int setup_spares(Supervisor *s) {
        _cleanup_free_ char *runs = strprintf("%s/runs", s->state_dir);
        DIR *d;
        int r;

        if (!runs)
                return -ENOMEM;
        r = mkdir_parents_and_self(runs, 0700);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", runs);
        d = opendir(runs);
        if (!d)
                return log_error_errno(-errno, "Failed to open %s: %m", runs);
        for (struct dirent *de; (de = readdir(d));) {
                if (strncmp(de->d_name, SPARE_PREFIX, strlen(SPARE_PREFIX)) != 0)
                        continue;
                _cleanup_free_ char *dir = strprintf("%s/%s", runs, de->d_name);
                if (dir && (r = remove_spare(dir)) < 0)
                        log_warning_errno(r, "Failed to remove the spare run directory %s, ignoring: %m", dir);
        }
        closedir(d);
        r = sd_event_add_defer(s->event, &s->spare_source, on_make_spares, s);
        if (r >= 0)
                r = sd_event_source_set_priority(s->spare_source, SD_EVENT_PRIORITY_IDLE);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->spare_source, SD_EVENT_ONESHOT);
        if (r < 0)
                return log_error_errno(r, "Failed to set up spare run directories: %m");
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
        s->leftover_grace_usec = config->leftover_grace_usec ?: USEC_PER_SEC;
        s->state_dir = strdup(config->state_dir);
        s->shim_path = strdup(config->shim_path);
        if (!s->state_dir || !s->shim_path) {
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
        if (access(s->shim_path, X_OK) < 0) {
                r = -errno;
                supervisor_free(s);
                return log_error_errno(r, "The shim %s cannot be executed: %m", config->shim_path);
        }
        r = setup_spares(s);
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
                untrack(s, s->runs[0]);
        free(s->runs);
        spawner_free(s->spawner);
        sd_event_source_disable_unref(s->spare_source);
        while (s->n_spares > 0) {
                _cleanup_free_ char *spare = s->spares[--s->n_spares];
                (void) remove_spare(spare);
        }
        sd_event_source_disable_unref(s->inotify_source);
        safe_close(s->inotify_fd);
        sd_event_unref(s->event);
        free(s->state_dir);
        free(s->shim_path);
        free(s);
        return NULL;
}

pid_t supervisor_spawner_pid(Supervisor *s) {
        return spawner_pid(s->spawner);
}
