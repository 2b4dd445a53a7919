/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Launching a run: its directory (from a spare made ahead), its files, its shim (cloned
 * here or forked by the spawner), its place, its row, and the go that starts the agent.
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
#include <sys/resource.h>
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
        tracked_event(t, LEVEL_ERROR, error);
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
        dir = strprintf("%s/" SPARE_DIR "/" SPARE_PREFIX "%s", s->state_dir, id);
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
        /* What the shim enforces itself, so that a stopped corrald lifts nothing (shim.h). */
        _cleanup_free_ char *limits = strprintf(
                "timeout_ms=%" PRIu64 "\ngrace_ms=%" PRIu64 "\nlog_bytes_max=%" PRIu64 "\n%s%s%s%s%s%s", spec->timeout_sec * 1000,
                MAX(spec->grace_sec, UINT64_C(1)) * 1000, spec->log_bytes_max, t->supervisor->lease_path ? "lease_file=" : "",
                strempty(t->supervisor->lease_path), t->supervisor->lease_path ? "\n" : "", t->place.cgroup_path ? "cgroup=" : "",
                strempty(t->place.cgroup_path), t->place.cgroup_path ? "\n" : "");
        if (!limits)
                return set_error(ret_error, -ENOMEM, "cannot write the limits file: %s", strerror(ENOMEM));
        if ((r = write_run_file(t->run_dir, SHIM_LIMITS_FILE, limits, strlen(limits), 0600)) < 0)
                return set_error(ret_error, r, "cannot write the limits file: %s", strerror(-r));
        if (spec->again && (r = write_run_file(t->run_dir, SHIM_AGAIN_FILE, spec->again, spec->again_size, 0600)) < 0)
                return set_error(ret_error, r, "cannot write the again file: %s", strerror(-r));
        for (size_t i = 0; i < spec->n_files; i++)
                if ((r = write_run_file(t->run_dir, spec->files[i].name, spec->files[i].data, spec->files[i].size,
                                        spec->files[i].mode)) < 0)
                        return set_error(ret_error, r, "cannot write the run's %s file: %s", spec->files[i].name, strerror(-r));
        return 0;
}

/* Long because the two ways of starting the shim (asked of the spawner, or cloned here)
 * share the pipes and the run directory, and what a failure must undo differs between them. */
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
                tracked_event(t, LEVEL_WARN, warning);
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
        /* Read when it says something, and again at the shim's end: never waited on. */
        (void) fcntl(t->report_fd, F_SETFL, O_NONBLOCK);
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
                        /* The message holds its own copy of the cgroup's fd: a run keeps one
                         * descriptor (its shim's pidfd), not two, so that 10,000 runs fit. */
                        t->place.cgroup_fd = safe_close(t->place.cgroup_fd);
                        t->spawning = true;
                        r = make_run_dir(t, &error);
                        if (r >= 0)
                                r = write_run_files(t, spec, &error);
                        if (r < 0) {
                                /* The shim is on its way into the run's cgroup already. */
                                give_up_launch(t, error ?: strerror(-r), 0);
                                tracked_set_state(t, TRACK_STOPPING);
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
        t->place.cgroup_fd = safe_close(t->place.cgroup_fd); /* the shim is born in it, or not at all */
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

        r = sd_event_add_io(s->event, &t->pidfd_source, t->pidfd, EPOLLIN, tracked_on_shim_exit, t);
        if (r >= 0)
                r = sd_event_add_io(s->event, &t->report_source, t->report_fd, EPOLLIN, tracked_on_report, t);
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
        tracked_set_state(t, TRACK_DRAINING);
        /* A shim of a spawner that failed midway may be in the cgroup: it gets no go and
         * exits, and cgroup.events says so. */
        tracked_maybe_finish(t);
}

/* The shim started the agent and says its pid: remember it, for the none backend's process
 * group kill and for the API. The agent runs already; nothing waits for this. A second pid
 * is the agent started once more, afresh (shim.h, again); EOF, that there will be no more. */
int tracked_on_report(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        static const char *const columns[] = { "process_pid", "process_group_id", NULL };
        Tracked *t = userdata;
        char buf[64] = "", *text, *line;
        bool again = t->agent_pid > 0;
        ssize_t n;
        int64_t pid;
        int r;

        /* What is there, to EOF if it came too: a shim that cannot start the agent again
         * closes the pipe right after the pid, and its descriptor goes at once. */
        bool eof = false;
        n = 0;
        while ((size_t) n < sizeof(buf) - 1) {
                ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - (size_t) n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno != EAGAIN)
                        eof = true; /* nothing more will come of it */
                eof = eof || k == 0;
                if (k <= 0)
                        break;
                n += k;
        }
        if (eof) {
                t->report_source = sd_event_source_disable_unref(t->report_source);
                t->report_fd = safe_close(t->report_fd);
        }
        if (n == 0)
                /* No pid (yet, or at all: the launch called off or the agent not executable,
                 * status.json says which). The shim's pidfd says the rest. */
                return 0;
        /* Both pids may come in one read: the last one is the agent now. */
        text = strstrip(buf);
        line = strrchr(text, '\n');
        if (safe_atoi64(line ? line + 1 : text, &pid) < 0 || pid <= 0)
                return 0;
        t->agent_pid = (pid_t) pid;
        t->place.pgid = t->agent_pid;
        /* From supervisor_launch() to the agent's first instruction: what the launch costs. */
        if (t->launched_usec > 0 && !again)
                histogram_observe(&t->supervisor->launch_latency, (double) (now_mono_usec() - t->launched_usec) / 1e6);

        if (t->fenced)
                return 0; /* nothing of a fenced run is written */
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
                r = store_run_event_append(store, t->run_id, "lifecycle", LEVEL_INFO,
                                           again ? "run started again, afresh: its session could not be resumed" : "run started",
                                           NULL);
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
         * with the agent's pid (tracked_on_report). */
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
        t->last_output = now_mono_usec();
        tracked_set_state(t, TRACK_RUNNING);
        /* The next launch's directory, now that this one's critical path is behind it. */
        supervisor_want_spares(s);

        RUN_FIELDS(t, fields);
        log_fields(LOG_INFO, fields, "Run %s started: shim %d, %s %s.", t->run_id, (int) t->shim_pid,
                   t->place.unit_name             ? "unit"
                           : t->place.cgroup_path ? "cgroup"
                                                  : "placement",
                   t->place.unit_name ?: strna(t->place.cgroup_path));
}

/* A new tracked run, registered with the supervisor. */
int tracked_new(Supervisor *s, const char *run_id, const char *agent_id, const char *issue_id, Tracked **ret) {
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
            runlog_new(log_path, 0, &t->log) < 0) {
                tracked_free(t);
                return -ENOMEM;
        }
        if (hashmap_put(s->by_id, t->run_id, t) < 0) {
                tracked_free(t);
                return -ENOMEM;
        }
        t->slot = s->n_runs;
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
        if (events)
                t->events_wd = tracked_add_watch(t, events, events);
        /* OOM kills are counted as they happen: a scope's cgroup may be gone (collected by
         * systemd) by the time the run is finalized. Without the memory controller there
         * is no such file, and no OOM kill of the run's own. */
        if (t->place.cgroup_path && t->memory_wd < 0) {
                _cleanup_free_ char *memory = strprintf("%s/memory.events", t->place.cgroup_path);
                if (memory && access(memory, F_OK) >= 0)
                        t->memory_wd = tracked_add_watch(t, memory, NULL);
        }
}

void tracked_watch(Tracked *t) {
        int fd;

        fd = open(t->log->path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        safe_close(fd);
        t->log_wd = tracked_add_watch(t, t->log->path, "its log, so its output is read at the end only");
        watch_cgroup(t);
}

int supervisor_launch(Supervisor *s, const LaunchSpec *spec) {
        _cleanup_free_ char *error = NULL;
        Tracked *t;
        int r;

        if (supervisor_find(s, spec->run_id))
                return -EEXIST;
        if (!spec->argv || !spec->argv[0])
                return -EINVAL;
        r = tracked_new(s, spec->run_id, spec->agent_id, spec->issue_id, &t);
        if (r < 0)
                return r;
        t->launched_usec = now_mono_usec();
        t->grace_usec = (spec->grace_sec ?: 1) * USEC_PER_SEC;
        t->idle_usec = spec->idle_timeout_sec * USEC_PER_SEC;
        t->timeout_usec = spec->timeout_sec * USEC_PER_SEC;
        t->limits = spec->limits;
        t->sandboxed = spec->sandboxed;

        r = launch(s, t, spec, &error);
        if (r == -EMFILE || r == -ENFILE) {
                /* Whichever step ran out, the limit is what the operator needs to know. */
                struct rlimit nofile = {};
                (void) getrlimit(RLIMIT_NOFILE, &nofile);
                free(error);
                error = r == -EMFILE ? strprintf("corrald has reached its limit of %llu open files (RLIMIT_NOFILE: LimitNOFILE= "
                                                 "in corrald.service) with %zu runs live",
                                                 (unsigned long long) nofile.rlim_cur, s->n_runs - 1)
                                     : strdup("the system's limit of open files (fs.file-max) is reached");
        }
        if (r < 0) {
                RUN_FIELDS(t, fields);
                log_fields(LOG_ERR, fields, "Run %s could not be launched: %s", t->run_id, error ?: strerror(-r));
                tracked_event(t, LEVEL_ERROR, error ?: strerror(-r));
                (void) s->placement->ops->remove(s->placement, &t->place);
                supervisor_untrack(s, t);
                return r;
        }

        tracked_watch(t);
        return 0;
}

/* Remove the spare directories in dir (an earlier corrald's). */
static void remove_spares_in(const char *dir) {
        DIR *d = opendir(dir);
        int r;

        if (!d)
                return;
        for (struct dirent *de; (de = readdir(d));) {
                if (strncmp(de->d_name, SPARE_PREFIX, strlen(SPARE_PREFIX)) != 0)
                        continue;
                _cleanup_free_ char *spare = strprintf("%s/%s", dir, de->d_name);
                if (spare && (r = remove_spare(spare)) < 0)
                        log_warning_errno(r, "Failed to remove the spare run directory %s, ignoring: %m", spare);
        }
        closedir(d);
}

/* The runs directory and the spares' own, without the spares an earlier corrald left, and
 * the source that makes new ones (its first round right after startup). The spares live
 * beside runs/, not in it, so that startup never reads the directory of every run ever. */
int supervisor_setup_spares(Supervisor *s) {
        _cleanup_free_ char *runs = strprintf("%s/runs", s->state_dir), *spares = strprintf("%s/" SPARE_DIR, s->state_dir);
        bool first;
        int r;

        if (!runs || !spares)
                return -ENOMEM;
        r = mkdir_parents_and_self(runs, 0700);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", runs);
        first = access(spares, F_OK) < 0;
        r = mkdir_parents_and_self(spares, 0700);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", spares);
        remove_spares_in(spares);
        /* Once, the first time: a corrald before 0.2 made its spares in runs/. */
        if (first)
                remove_spares_in(runs);
        r = sd_event_add_defer(s->event, &s->spare_source, on_make_spares, s);
        if (r >= 0)
                r = sd_event_source_set_priority(s->spare_source, SD_EVENT_PRIORITY_IDLE);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->spare_source, SD_EVENT_ONESHOT);
        if (r < 0)
                return log_error_errno(r, "Failed to set up spare run directories: %m");
        return 0;
}

void supervisor_remove_spares(Supervisor *s) {
        while (s->n_spares > 0) {
                _cleanup_free_ char *spare = s->spares[--s->n_spares];
                (void) remove_spare(spare);
        }
}
