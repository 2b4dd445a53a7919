/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The shim spawner (see shim-spawner.h): the request format, and the loop that forks a
 * shim per request. Part of corral-shim: libc only.
 */
#include "shim/shim-spawner.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "basic/macro.h"
#include "shim/shim.h"
#include "basic/fd-util.h"

int shim_spawn_request_encode(const char *cwd, char *const *argv, char *const *env, bool cgroup, char **ret_buf,
                              size_t *ret_size) {
        ShimSpawnHeader h = { .magic = SHIM_SPAWN_MAGIC, .flags = cgroup ? SHIM_SPAWN_CGROUP : 0 };
        size_t size = sizeof(h) + strlen(cwd) + 1;
        char *buf, *p;

        for (; argv[h.n_argv]; h.n_argv++)
                size += strlen(argv[h.n_argv]) + 1;
        for (; env && env[h.n_env]; h.n_env++)
                size += strlen(env[h.n_env]) + 1;
        if (size > SHIM_SPAWN_REQUEST_MAX || h.n_argv > SHIM_SPAWN_ARGV_MAX || h.n_env > SHIM_SPAWN_ENV_MAX)
                return -E2BIG;

        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, &h, sizeof(h));
        p = stpcpy(buf + sizeof(h), cwd) + 1;
        for (uint32_t i = 0; i < h.n_argv; i++)
                p = stpcpy(p, argv[i]) + 1;
        for (uint32_t i = 0; i < h.n_env; i++)
                p = stpcpy(p, env[i]) + 1;
        *ret_buf = buf;
        *ret_size = size;
        return 0;
}

void shim_spawn_request_done(ShimSpawnRequest *r) {
        free(r->argv);
        free(r->env);
        *r = (ShimSpawnRequest){};
}

/* The next NUL-terminated string at *p, which must end before end. */
static const char *take_string(char **p, const char *end) {
        char *s = *p, *nul;

        if (s >= end)
                return NULL;
        nul = memchr(s, 0, (size_t) (end - s));
        if (!nul)
                return NULL;
        *p = nul + 1;
        return s;
}

int shim_spawn_request_parse(char *buf, size_t size, ShimSpawnRequest *ret) {
        ShimSpawnRequest r = {};
        ShimSpawnHeader h;
        const char *end = buf + size;
        char *p = buf + sizeof(h);

        if (size < sizeof(h) || size > SHIM_SPAWN_REQUEST_MAX)
                return -EBADMSG;
        memcpy(&h, buf, sizeof(h));
        /* The shim's argv is at least corral-shim RUN_DIR AGENT. */
        if (h.magic != SHIM_SPAWN_MAGIC || (h.flags & ~SHIM_SPAWN_CGROUP) || h.n_argv < 3 || h.n_argv > SHIM_SPAWN_ARGV_MAX ||
            h.n_env > SHIM_SPAWN_ENV_MAX)
                return -EBADMSG;

        r.flags = h.flags;
        r.n_argv = h.n_argv;
        r.argv = calloc(h.n_argv + 1, sizeof(char *));
        r.env = calloc(h.n_env + 1, sizeof(char *));
        if (!r.argv || !r.env) {
                shim_spawn_request_done(&r);
                return -ENOMEM;
        }
        r.cwd = take_string(&p, end);
        for (uint32_t i = 0; r.cwd && i < h.n_argv; i++)
                if (!(r.argv[i] = (char *) take_string(&p, end)))
                        goto bad;
        for (uint32_t i = 0; r.cwd && i < h.n_env; i++)
                if (!(r.env[i] = (char *) take_string(&p, end)))
                        goto bad;
        /* Exactly the strings announced: no trailing bytes, a relative cwd is not ours. */
        if (!r.cwd || r.cwd[0] != '/' || p != end)
                goto bad;
        *ret = r;
        return 0;
bad:
        shim_spawn_request_done(&r);
        return -EBADMSG;
}

/* The new shim, in the spawner's forked copy: the go and report pipes on fds 3 and 4,
 * nothing else of the spawner's open, the run's environment, and then what an executed
 * shim runs. */
static _noreturn_ void become_shim(const ShimSpawnRequest *req, int go, int report) {
        extern char **environ;

        /* Moved up first: go or report may itself be 3 or 4. */
        go = fd_move_high(go);
        report = fd_move_high(report);
        if (go < 0 || report < 0 || dup2(go, SHIM_FD_GO) < 0 || dup2(report, SHIM_FD_REPORT) < 0)
                _exit(SHIM_EXIT_EXEC_FAILED);
        if (close_range(SHIM_FD_REPORT + 1, ~0U, 0) < 0)
                _exit(SHIM_EXIT_EXEC_FAILED);
        (void) prctl(PR_SET_NAME, "corral-shim");
        environ = req->env;
        /* The run directory may not exist before go: the agent enters its cwd, not we. */
        exit(shim_run((int) req->n_argv, req->argv, req->cwd));
}

static int reply(int sock, pid_t pid, int error, int pidfd) {
        ShimSpawnReply rep = { .pid = pid, .error = error };

        /* Read here, while corrald is busy elsewhere: the start time names the shim in the
         * run's row. */
        if (pid > 0 && pid_start_ticks(pid, &rep.start_ticks) < 0)
                rep.start_ticks = 0;
        ssize_t n = send_with_fds(sock, &rep, sizeof(rep), &pidfd, pidfd >= 0 ? 1 : 0, MSG_NOSIGNAL);
        return n < 0 ? (int) n : n == (ssize_t) sizeof(rep) ? 0 : -EIO;
}

/* Receive one request with its descriptors (at most three, in *fds, the rest -1). Returns
 * the request's size, 0 at EOF, or -errno. */
static ssize_t receive(int sock, char **ret_buf, int fds[static 3]) {
        ssize_t size, n;
        char *buf;

        fds[0] = fds[1] = fds[2] = -1;
        do
                size = recv(sock, NULL, 0, MSG_PEEK | MSG_TRUNC);
        while (size < 0 && errno == EINTR);
        if (size <= 0)
                return size < 0 ? -errno : 0;
        /* One byte more than announced, so that a message is never silently cut. */
        buf = malloc((size_t) size + 1);
        if (!buf) {
                char byte;
                (void) recv(sock, &byte, 1, 0); /* drop it (and its descriptors): it cannot be served */
                return -ENOMEM;
        }
        n = recv_with_fds(sock, buf, (size_t) size + 1, fds, 3, 0);
        if (n < 0) {
                free(buf);
                return n;
        }
        *ret_buf = buf;
        return n;
}

/* One request: fork a shim for it. Returns < 0 only when the socket is unusable. */
static int serve(int sock, char *buf, size_t size, const int fds[static 3]) {
        ShimSpawnRequest req = {};
        int pidfd = -1, r;
        long pid;

        r = shim_spawn_request_parse(buf, size, &req);
        if (r < 0)
                return reply(sock, 0, -r, -1);
        bool cgroup = req.flags & SHIM_SPAWN_CGROUP;
        if (fds[0] < 0 || fds[1] < 0 || (cgroup != (fds[2] >= 0))) {
                shim_spawn_request_done(&req);
                return reply(sock, 0, EBADMSG, -1);
        }

        /* A child of corrald (CLONE_PARENT: exit_signal is then corrald's SIGCHLD for the
         * spawner), in its run's cgroup from its first instruction. A plain fork, so the
         * child has its own copy of this process and may do anything. */
        struct clone_args args = {
                .flags = CLONE_PARENT | CLONE_PIDFD | (cgroup ? CLONE_INTO_CGROUP : 0),
                .pidfd = (uint64_t) (uintptr_t) &pidfd,
                .cgroup = cgroup ? (uint64_t) fds[2] : 0,
        };
        pid = syscall(SYS_clone3, &args, sizeof(args));
        if (pid == 0)
                become_shim(&req, fds[0], fds[1]);
        shim_spawn_request_done(&req);
        if (pid < 0)
                return reply(sock, 0, errno, -1);
        r = reply(sock, (pid_t) pid, 0, pidfd);
        close(pidfd);
        return r;
}

int shim_spawner_main(void) {
        int sock;

        /* Off fd 3, which each new shim needs for its go pipe. */
        sock = fd_move_high(SHIM_FD_SPAWNER);
        if (sock < 0)
                return 2;
        (void) prctl(PR_SET_NAME, "corral-spawner");
        (void) signal(SIGPIPE, SIG_IGN);
        /* Read the time zone once here, not in every shim on its first timestamp. */
        tzset();

        for (;;) {
                char *buf = NULL;
                int fds[3];
                ssize_t n = receive(sock, &buf, fds);

                if (n == 0)
                        return 0; /* corrald is gone */
                if (n == -EBADMSG || n == -ENOMEM) {
                        if (reply(sock, 0, (int) -n, -1) < 0)
                                return 1;
                } else if (n < 0)
                        return 1;
                else if (serve(sock, buf, (size_t) n, fds) < 0) {
                        free(buf);
                        return 1;
                }
                free(buf);
                for (int i = 0; i < 3; i++)
                        if (fds[i] >= 0)
                                close(fds[i]);
        }
}
