/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * corrald's side of the shim spawner: its process, and one request per launch. Answers
 * come back on the socket as events of corrald's loop, in the order of the requests, so
 * corrald goes on (with the HTTP reply of the wake, say) while the spawner forks; a spawner
 * that does not answer within two seconds is killed.
 */
#include "supervise/spawner.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/spawn.h"
#include "basic/log.h"
#include "shim/shim-spawner.h"
#include "basic/time-util.h"
#include "basic/fd-util.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define SPAWNER_RESTART_USEC UINT64_C(1000000)
/* A spawner that answers nothing for this long is stuck, not slow. Shorter is not safe: on a
 * machine whose cores are all taken (three hosts' hundreds of shims starting at once, on two
 * cores) a spawner was seen starved for over 2 s, and every launch it held up failed. */
#define SPAWNER_REPLY_TIMEOUT_USEC (10 * UINT64_C(1000000))

typedef struct SpawnerPending {
        SpawnerDone done; /* NULL once cancelled */
        void *userdata;
} SpawnerPending;

struct Spawner {
        sd_event *event;
        char *shim_path;
        int sock; /* our end of the socket; -EBADF while no spawner runs */
        int pidfd;
        pid_t pid;
        sd_event_source *pidfd_source, *sock_source, *timeout_source;
        uint64_t started_usec; /* CLOCK_MONOTONIC of the last start, 0 for never */
        /* Requests sent and not answered yet, oldest first: the spawner answers in order. */
        SpawnerPending *pending;
        size_t n_pending;
};

/* A shim nobody waits for any more: it never got its go, so it never started an agent. */
static void discard_shim(int pidfd) {
        pidfd_kill_and_reap(pidfd);
        safe_close(pidfd);
}

/* Hand the oldest request its answer: a shim (pid > 0, pidfd, start time), or an error. */
static void answer(Spawner *s, pid_t pid, int pidfd, uint64_t start_ticks) {
        SpawnerPending p;

        assert(s->n_pending > 0);
        p = s->pending[0];
        memmove(s->pending, s->pending + 1, --s->n_pending * sizeof(SpawnerPending));
        if (s->n_pending == 0)
                (void) sd_event_source_set_enabled(s->timeout_source, SD_EVENT_OFF);
        else
                (void) sd_event_source_set_time_relative(s->timeout_source, SPAWNER_REPLY_TIMEOUT_USEC);
        if (!p.done) {
                if (pid > 0)
                        discard_shim(pidfd);
                return;
        }
        p.done(pid, pidfd, start_ticks, p.userdata);
}

/* Forget the spawner's process: killed first if asked, and reaped. Requests it did not
 * answer fail with error: a shim may or may not exist for them. (Their callbacks may start
 * a new spawner and send it requests: those are not the old one's to fail.) */
static void spawner_stop(Spawner *s, bool kill, int error) {
        size_t unanswered = s->n_pending;
        siginfo_t si = {};

        s->sock = safe_close(s->sock);
        s->pidfd_source = sd_event_source_disable_unref(s->pidfd_source);
        s->sock_source = sd_event_source_disable_unref(s->sock_source);
        if (s->pidfd >= 0) {
                if (kill)
                        (void) syscall(SYS_pidfd_send_signal, s->pidfd, SIGKILL, NULL, 0);
                /* Without the socket it exits at once, if it had not already. */
                if (waitid((idtype_t) P_PIDFD, (id_t) s->pidfd, &si, WEXITED) < 0 && errno != ECHILD)
                        log_warning_errno(-errno, "Failed to reap the shim spawner %d, ignoring: %m", (int) s->pid);
        }
        s->pidfd = safe_close(s->pidfd);
        s->pid = 0;
        while (unanswered-- > 0 && s->n_pending > 0)
                answer(s, error, -EBADF, 0);
}

/* The spawner answered wrongly or not at all: kill it. */
static void spawner_broken(Spawner *s, int r, const char *what) {
        log_error_errno(r, "The shim spawner %d failed %s (%m); killing it.", (int) s->pid, what);
        spawner_stop(s, true, r);
}

/* Read one answer. Returns 1 if one was handed out, 0 if none is there yet, < 0 when the
 * spawner is broken (and stopped). */
static int read_answer(Spawner *s) {
        ShimSpawnReply reply = {};
        int pidfd;
        ssize_t n;

        n = recv_with_fds(s->sock, &reply, sizeof(reply), &pidfd, 1, MSG_DONTWAIT);
        if (n == -EAGAIN)
                return 0;
        if (n < 0 && n != -EBADMSG) {
                spawner_broken(s, (int) n, "to answer");
                return -EIO;
        }
        if (n == 0 && s->n_pending == 0) {
                /* Gone between requests: its pidfd tells the rest. */
                s->sock_source = sd_event_source_disable_unref(s->sock_source);
                return 0;
        }
        if (n != (ssize_t) sizeof(reply) || (reply.pid > 0) != (pidfd >= 0) || s->n_pending == 0) {
                if (pidfd >= 0)
                        discard_shim(pidfd);
                spawner_broken(s, n == 0 ? -ECONNRESET : -EBADMSG, n == 0 ? "before it answered" : "with a malformed answer");
                return -EIO;
        }
        if (reply.pid <= 0) {
                log_warning_errno(-reply.error, "The shim spawner could not start a shim: %m");
                answer(s, reply.error > 0 ? -reply.error : -EIO, -EBADF, 0);
        } else
                answer(s, (pid_t) reply.pid, pidfd, reply.start_ticks);
        return 1;
}

static int on_answer(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Spawner *s = userdata;

        while (s->sock >= 0 && read_answer(s) > 0)
                ;
        return 0;
}

static int on_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        Spawner *s = userdata;

        if (s->n_pending > 0)
                spawner_broken(s, -ETIMEDOUT, "to answer in time");
        return 0;
}

static int on_spawner_exit(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Spawner *s = userdata;
        siginfo_t si = {};

        if (waitid((idtype_t) P_PIDFD, (id_t) s->pidfd, &si, WEXITED | WNOHANG) < 0)
                log_warning_errno(-errno, "Failed to reap the shim spawner %d, ignoring: %m", (int) s->pid);
        log_warning("The shim spawner %d %s %d; shims are executed directly until it is started again.", (int) s->pid,
                    si.si_code == CLD_EXITED ? "exited with status" : "was killed by signal", si.si_status);
        s->pidfd = safe_close(s->pidfd);
        /* What it answered before it died still counts. */
        while (s->sock >= 0 && s->n_pending > 0 && read_answer(s) > 0)
                ;
        spawner_stop(s, false, -ECONNRESET);
        return 0;
}

typedef struct SpawnerExec {
        const char *path;
        char *const *argv;
        int devnull, sock;
} SpawnerExec;

/* Between clone3 and execve, sharing corrald's memory: async-signal-safe calls only. */
static _noreturn_ void spawner_child(void *userdata) {
        const SpawnerExec *x = userdata;
        char *const no_env[] = { NULL };

        spawn_child_reset_signals(NULL);
        if (dup2(x->devnull, STDIN_FILENO) < 0 || dup2(x->sock, SHIM_FD_SPAWNER) < 0)
                _exit(127);
        /* Nothing of corrald's environment: each shim gets its run's. */
        execve(x->path, x->argv, no_env);
        _exit(127);
}

static int spawner_start(Spawner *s) {
        _cleanup_close_ int devnull = -EBADF, theirs = -EBADF;
        int pair[2], pidfd = -EBADF, r;
        pid_t pid;

        s->started_usec = now_mono_usec();
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return log_warning_errno(-errno, "Failed to create the shim spawner's socket: %m");
        s->sock = pair[0];
        theirs = fd_move_high(pair[1]);
        devnull = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        devnull = devnull < 0 ? -errno : fd_move_high(devnull);
        if (theirs < 0 || devnull < 0) {
                r = theirs < 0 ? theirs : devnull;
                s->sock = safe_close(s->sock);
                return log_warning_errno(r, "Failed to set up the shim spawner's descriptors: %m");
        }
        /* A request carries a whole command line and environment: let one fit. Without
         * the privilege to exceed wmem_max, a larger one goes the direct way. */
        int sndbuf = SHIM_SPAWN_REQUEST_MAX + 65536;
        if (setsockopt(s->sock, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)) < 0)
                (void) setsockopt(s->sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));

        char *argv[] = { s->shim_path, (char *) SHIM_SPAWNER_ARG, NULL };
        SpawnerExec x = { .path = s->shim_path, .argv = argv, .devnull = devnull, .sock = theirs };
        struct clone_args args = {
                .flags = CLONE_PIDFD,
                .pidfd = (uint64_t) (uintptr_t) &pidfd,
                .exit_signal = SIGCHLD,
        };
        pid = clone3_spawn(&args, spawner_child, &x);
        if (pid < 0) {
                s->sock = safe_close(s->sock);
                return log_warning_errno(pid, "Failed to start the shim spawner %s: %m", s->shim_path);
        }
        s->pid = pid;
        s->pidfd = pidfd;
        r = sd_event_add_io(s->event, &s->pidfd_source, s->pidfd, EPOLLIN, on_spawner_exit, s);
        if (r >= 0)
                r = sd_event_add_io(s->event, &s->sock_source, s->sock, EPOLLIN, on_answer, s);
        if (r < 0) {
                spawner_stop(s, true, -ECONNRESET);
                return log_warning_errno(r, "Failed to watch the shim spawner: %m");
        }
        log_debug("Shim spawner %d started.", (int) pid);
        return 0;
}

int spawner_new(sd_event *event, const char *shim_path, Spawner **ret) {
        Spawner *s;
        int r;

        s = calloc(1, sizeof(Spawner));
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(event);
        s->sock = -EBADF;
        s->pidfd = -EBADF;
        s->shim_path = strdup(shim_path);
        if (!s->shim_path) {
                spawner_free(s);
                return -ENOMEM;
        }
        r = sd_event_add_time_relative(event, &s->timeout_source, CLOCK_MONOTONIC, SPAWNER_REPLY_TIMEOUT_USEC, 0, on_timeout, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->timeout_source, SD_EVENT_OFF);
        if (r < 0) {
                spawner_free(s);
                return r;
        }
        (void) spawner_start(s);
        *ret = s;
        return 0;
}

Spawner *spawner_free(Spawner *s) {
        if (!s)
                return NULL;
        /* Nothing may wait for an answer any more (spawner_cancel() was called for all). */
        spawner_stop(s, true, -ECANCELED);
        sd_event_source_disable_unref(s->timeout_source);
        free(s->pending);
        sd_event_unref(s->event);
        free(s->shim_path);
        free(s);
        return NULL;
}

pid_t spawner_pid(Spawner *s) {
        return s ? s->pid : 0;
}

int spawner_request(Spawner *s, const SpawnerRequest *req, SpawnerDone done, void *userdata) {
        _cleanup_free_ char *buf = NULL;
        int fds[3] = { req->go_fd, req->report_fd, req->cgroup_fd };
        size_t size, n_fds = req->cgroup_fd >= 0 ? 3 : 2;
        SpawnerPending *p;
        int r;

        if (s->sock < 0 && now_mono_usec() - s->started_usec >= SPAWNER_RESTART_USEC)
                (void) spawner_start(s);
        if (s->sock < 0)
                return -EAGAIN;

        r = shim_spawn_request_encode(req->cwd, req->argv, req->env, req->cgroup_fd >= 0, &buf, &size);
        if (r == -E2BIG)
                return -EAGAIN;
        if (r < 0)
                return r;
        p = realloc(s->pending, (s->n_pending + 1) * sizeof(SpawnerPending));
        if (!p)
                return -ENOMEM;
        s->pending = p;

        ssize_t n = send_with_fds(s->sock, buf, size, fds, n_fds, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n != (ssize_t) size) {
                /* Not sent, so nothing was started: too large for the socket, its buffer
                 * full, or the spawner is gone (its exit is handled by its pidfd). */
                log_debug_errno(n < 0 ? (int) n : -EIO,
                                "Cannot hand the launch to the shim spawner (%m), executing the shim directly.");
                return -EAGAIN;
        }
        s->pending[s->n_pending++] = (SpawnerPending){ .done = done, .userdata = userdata };
        if (s->n_pending == 1) {
                (void) sd_event_source_set_time_relative(s->timeout_source, SPAWNER_REPLY_TIMEOUT_USEC);
                (void) sd_event_source_set_enabled(s->timeout_source, SD_EVENT_ONESHOT);
        }
        return 0;
}

void spawner_cancel(Spawner *s, void *userdata) {
        for (size_t i = 0; s && i < s->n_pending; i++)
                if (s->pending[i].userdata == userdata)
                        s->pending[i].done = NULL;
}
