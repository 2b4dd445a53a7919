/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "supervise/run-workspace.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <unistd.h>

#include "basic/fd-util.h"
#include "basic/macro.h"
#include "basic/spawn.h"
#include "basic/strv.h"
#include "basic/util.h"
#include "shim/shim-workspace.h"

const char *const run_workspace_file_name = SHIM_WORKSPACE_FILE;

char *run_workspace_file(const char *repo, const char *path, const char *branch, const char *base_ref, int64_t owner_uid,
                         int64_t owner_gid) {
        _cleanup_free_ char *owner =
                owner_uid >= 0 ? strprintf("uid=%" PRIi64 "\ngid=%" PRIi64 "\n", owner_uid, owner_gid) : strdup("");

        if (!owner)
                return NULL;
        return strprintf("repo=%s\npath=%s\nbranch=%s\nbase=%s\n%s", repo, path, strempty(branch), base_ref, owner);
}

typedef struct Removal {
        RunWorkspaceRemovedFn done;
        void *userdata;
        char *log_path;
        int pidfd;
} Removal;

static void removal_free(void *p) {
        Removal *rm = p;

        if (rm) {
                safe_close(rm->pidfd);
                free(rm->log_path);
                free(rm);
        }
}

/* The pidfd is readable once the child exited (as the supervisor watches shims: sd-event's
 * child sources want SIGCHLD blocked in every thread, and corrald's API thread does not). */
static int on_exit_(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Removal *rm = userdata;
        _cleanup_free_ char *out = NULL;
        siginfo_t si = {};

        if (waitid(P_PIDFD, (id_t) rm->pidfd, &si, WEXITED) < 0)
                si.si_code = CLD_KILLED; /* reaped by someone else: say it failed */
        (void) read_full_file(rm->log_path, 4096, &out, NULL);
        (void) unlink(rm->log_path);
        RunWorkspaceRemoved outcome = si.si_code != CLD_EXITED ? RUN_WORKSPACE_FAILED
                : si.si_status == SHIM_WORKSPACE_REMOVED       ? RUN_WORKSPACE_REMOVED
                : si.si_status == SHIM_WORKSPACE_KEPT          ? RUN_WORKSPACE_KEPT
                                                               : RUN_WORKSPACE_FAILED;
        /* done() may unref this source, which frees rm: nothing of it is used after. */
        rm->done(outcome, out ? strstrip(out) : NULL, rm->userdata);
        return 0;
}

typedef struct RemoveExec {
        const char *path;
        char *const *argv;
        int devnull, out;
} RemoveExec;

/* It shares corrald's memory until execve (clone3_spawn): async-signal-safe calls only. */
static _noreturn_ void remove_child(void *userdata) {
        const RemoveExec *x = userdata;
        static char *const env[] = { (char *) "PATH=/usr/local/bin:/usr/bin:/bin", (char *) "LC_ALL=C", NULL };

        spawn_child_reset_signals(NULL);
        if (dup2(x->devnull, STDIN_FILENO) < 0 || dup2(x->out, STDOUT_FILENO) < 0 || dup2(x->out, STDERR_FILENO) < 0)
                _exit(SHIM_WORKSPACE_FAILED);
        execve(x->path, x->argv, env);
        _exit(SHIM_WORKSPACE_FAILED);
}

int run_workspace_remove(sd_event *event, const char *shim_path, const char *repo, const char *path, const char *branch,
                         const char *log_path, RunWorkspaceRemovedFn done, void *userdata, sd_event_source **ret) {
        _cleanup_close_ int devnull = -EBADF, out = -EBADF;
        _cleanup_strv_free_ char **argv = NULL;
        sd_event_source *src = NULL;
        Removal *rm;
        int pidfd = -EBADF, r;
        pid_t pid;

        if (strv_push(&argv, shim_path) < 0 || strv_push(&argv, SHIM_WORKSPACE_REMOVE_ARG) < 0 || strv_push(&argv, repo) < 0 ||
            strv_push(&argv, path) < 0 || (branch && strv_push(&argv, branch) < 0))
                return -ENOMEM;
        devnull = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (devnull < 0)
                return -errno;
        out = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (out < 0)
                return -errno;
        rm = calloc(1, sizeof(Removal));
        if (!rm)
                return -ENOMEM;
        rm->done = done;
        rm->userdata = userdata;
        rm->pidfd = -EBADF;
        rm->log_path = strdup(log_path);
        if (!rm->log_path) {
                removal_free(rm);
                return -ENOMEM;
        }
        struct clone_args args = { .flags = CLONE_PIDFD, .pidfd = (uint64_t) (uintptr_t) &pidfd, .exit_signal = SIGCHLD };
        RemoveExec x = { .path = shim_path, .argv = argv, .devnull = devnull, .out = out };
        pid = clone3_spawn(&args, remove_child, &x);
        if (pid < 0) {
                removal_free(rm);
                return pid;
        }
        rm->pidfd = pidfd;
        r = sd_event_add_io(event, &src, pidfd, EPOLLIN, on_exit_, rm);
        if (r < 0) {
                /* Not watched: it finishes alone (reaped by the subreaper above us, or as a
                 * zombie until corrald exits), and its row is taken up again later. */
                removal_free(rm);
                return r;
        }
        (void) sd_event_source_set_destroy_callback(src, removal_free);
        (void) sd_event_source_set_description(src, "workspace-remove");
        *ret = src;
        return 0;
}
