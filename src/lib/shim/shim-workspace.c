/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A run's git workspace: made before the agent starts, removed once its issue is closed. */
#define _GNU_SOURCE 1
#include "shim/shim-workspace.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/fd-util.h"
#include "basic/macro.h"
#include "basic/spawn.h"
#include "basic/util.h"

/* What git runs with: nothing of the caller's environment, no configuration but its own
 * (the repository and the workspace are not owned by who runs git, hence safe.directory). */
static char *const git_env[] = {
        (char *) "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        (char *) "LC_ALL=C",
        (char *) "HOME=/nonexistent",
        (char *) "GIT_CONFIG_NOSYSTEM=1",
        (char *) "GIT_CONFIG_GLOBAL=/dev/null",
        (char *) "GIT_TERMINAL_PROMPT=0",
        (char *) "GIT_CONFIG_COUNT=1",
        (char *) "GIT_CONFIG_KEY_0=safe.directory",
        (char *) "GIT_CONFIG_VALUE_0=*",
        NULL,
};

#define GIT_OUTPUT_MAX (64 * 1024)

/* Run git with args, its output (stdout and stderr) appended to log_fd (if >= 0) and kept in
 * *out (NUL-terminated, at most GIT_OUTPUT_MAX; may be NULL). Its exit status, or -errno. */
static int run_git(const char *const *args, int log_fd, char **out) {
        char *argv[32];
        size_t n = 0, size = 0;
        char *buf = NULL;
        int p[2], status;
        pid_t pid;

        argv[n++] = (char *) "git";
        for (size_t i = 0; args[i] && n < ELEMENTSOF(argv) - 1; i++)
                argv[n++] = (char *) args[i];
        argv[n] = NULL;
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                int e = errno;
                close(p[0]);
                close(p[1]);
                return -e;
        }
        if (pid == 0) {
                int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (null < 0 || dup2(null, 0) < 0 || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0)
                        _exit(127);
                spawn_child_reset_signals(NULL);
                /* Looked up in git_env's PATH, not in the agent's. */
                static const char *const dirs[] = { "/usr/local/bin", "/usr/bin", "/bin" };
                for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                        char exe[64];
                        snprintf(exe, sizeof(exe), "%s/git", dirs[i]);
                        execve(exe, argv, git_env);
                }
                dprintf(2, "cannot execute git: %s\n", strerror(errno));
                _exit(127);
        }
        close(p[1]);
        buf = malloc(GIT_OUTPUT_MAX + 1);
        for (;;) {
                char chunk[4096];
                ssize_t k = read(p[0], chunk, sizeof(chunk));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                if (log_fd >= 0)
                        (void) write_full(log_fd, chunk, (size_t) k);
                if (buf && size < GIT_OUTPUT_MAX) {
                        size_t take = MIN((size_t) k, (size_t) GIT_OUTPUT_MAX - size);
                        memcpy(buf + size, chunk, take);
                        size += take;
                }
        }
        close(p[0]);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR) {
                        free(buf);
                        return -errno;
                }
        if (buf)
                buf[size] = 0;
        if (out)
                *out = buf;
        else
                free(buf);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The last non-empty line of git's output, for a message. */
static void last_line(const char *text, char *ret, size_t size) {
        const char *end = text ? text + strlen(text) : NULL, *start;

        ret[0] = 0;
        if (!text)
                return;
        while (end > text && (end[-1] == '\n' || end[-1] == ' '))
                end--;
        start = end;
        while (start > text && start[-1] != '\n')
                start--;
        snprintf(ret, size, "%.*s", (int) (end - start), start);
}

/* git ARGS, failing with what git said, after what (a few words) in msg. */
static int git_or_fail(const char *const *args, int log_fd, const char *what, char *msg, size_t msg_size) {
        _cleanup_free_ char *out = NULL;
        char line[400];
        int r = run_git(args, log_fd, &out);

        if (r == 0)
                return 0;
        last_line(out, line, sizeof(line));
        if (r < 0)
                snprintf(msg, msg_size, "%s: cannot run git: %s", what, strerror(-r));
        else
                snprintf(msg, msg_size, "%s: git: %s", what, *line ? line : "failed");
        return -EIO;
}

static uid_t walk_uid;
static gid_t walk_gid;

static int own_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        if (st->st_uid != walk_uid || st->st_gid != walk_gid)
                if (lchown(path, walk_uid, walk_gid) < 0)
                        return -errno;
        return 0;
}

/* Every file below path (path too) owned by uid:gid; symlinks themselves, never followed. */
static int own_tree(const char *path, uid_t uid, gid_t gid) {
        walk_uid = uid;
        walk_gid = gid;
        int r = nftw(path, own_one, 32, FTW_PHYS | FTW_MOUNT);
        return r < 0 ? -errno : r;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        return remove(path) < 0 && errno != ENOENT ? -errno : 0;
}

static int remove_tree(const char *path) {
        struct stat st;

        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        int r = nftw(path, remove_one, 32, FTW_PHYS | FTW_DEPTH | FTW_MOUNT);
        return r < 0 ? -errno : r;
}

/* parent/.PREFIX-NAME of path, into buf. */
static int sibling(const char *path, const char *prefix, char *buf, size_t size) {
        const char *slash = strrchr(path, '/');

        if (!slash || !slash[1])
                return -EINVAL;
        int n = snprintf(buf, size, "%.*s/.%s-%s", (int) (slash - path), path, prefix, slash + 1);
        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

int shim_workspace_read(const char *run_dir, ShimWorkspace *ret) {
        _cleanup_free_ char *text = NULL;
        char path[PATH_MAX];
        ShimWorkspace w = {};
        int r;

        snprintf(path, sizeof(path), "%s/%s", run_dir, SHIM_WORKSPACE_FILE);
        r = read_full_file(path, 64 * 1024, &text, NULL);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        bool has_uid = false, has_gid = false;
        for (char *line = text, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                char *eq = strchr(line, '=');
                if (!eq)
                        continue;
                *eq++ = 0;
                char **field = streq(line, "repo") ? &w.repo
                        : streq(line, "path")      ? &w.path
                        : streq(line, "branch")    ? &w.branch
                        : streq(line, "base")      ? &w.base
                                                   : NULL;
                if (field) {
                        free(*field);
                        *field = strdup(eq);
                        if (!*field) {
                                shim_workspace_done(&w);
                                return -ENOMEM;
                        }
                } else if (streq(line, "uid")) {
                        w.uid = (uid_t) strtoul(eq, NULL, 10);
                        has_uid = true;
                } else if (streq(line, "gid")) {
                        w.gid = (gid_t) strtoul(eq, NULL, 10);
                        has_gid = true;
                }
        }
        w.own = has_uid && has_gid;
        if (!w.repo || !w.path || !w.base || w.path[0] != '/') {
                shim_workspace_done(&w);
                return -EINVAL;
        }
        *ret = w;
        return 1;
}

void shim_workspace_done(ShimWorkspace *w) {
        free(w->repo);
        free(w->path);
        free(w->branch);
        free(w->base);
        *w = (ShimWorkspace){};
}

/* Whether path is a workspace corral made: a checkout with a .git directory of its own. */
static bool is_workspace(const char *path) {
        char git[PATH_MAX];
        struct stat st;

        snprintf(git, sizeof(git), "%s/.git", path);
        return lstat(git, &st) >= 0 && S_ISDIR(st.st_mode);
}

/* The commit a new workspace starts at: its branch where the repository has it (the
 * issue's earlier workspace was removed, its branch kept), else base. */
static int start_point(const ShimWorkspace *w, int log_fd, char *ret, size_t size, char *msg, size_t msg_size) {
        _cleanup_free_ char *out = NULL, *ref = NULL;
        char line[400];
        int r;

        if (w->branch && *w->branch) {
                ref = strprintf("refs/heads/%s^{commit}", w->branch);
                if (!ref)
                        return -ENOMEM;
                r = run_git((const char *const[]){ "-C", w->repo, "rev-parse", "--verify", "--quiet", ref, NULL }, -1, &out);
                if (r == 0) {
                        last_line(out, ret, size);
                        return 0;
                }
                out = mfree(out);
        }
        ref = mfree(ref);
        ref = strprintf("%s^{commit}", w->base);
        if (!ref)
                return -ENOMEM;
        r = run_git((const char *const[]){ "-C", w->repo, "rev-parse", "--verify", ref, NULL }, log_fd, &out);
        if (r != 0) {
                last_line(out, line, sizeof(line));
                if (r < 0)
                        snprintf(msg, msg_size, "cannot run git: %s", strerror(-r));
                else if (access(w->repo, F_OK) < 0)
                        snprintf(msg, msg_size, "the workspace's repository %s does not exist", w->repo);
                else
                        snprintf(msg, msg_size, "no commit '%s' in the repository %s: git: %s", w->base, w->repo,
                                 *line ? line : "failed");
                return -EIO;
        }
        last_line(out, ret, size);
        return 0;
}

int shim_workspace_prepare(const ShimWorkspace *w, int log_fd, char *msg, size_t msg_size) {
        char tmp[PATH_MAX], sha[128];
        int r;

        if (is_workspace(w->path)) {
                /* A later run of its issue, maybe of another agent: the workspace becomes its. */
                if (w->own && own_tree(w->path, w->uid, w->gid) < 0) {
                        snprintf(msg, msg_size, "cannot give the workspace %s to uid %u: %s", w->path, (unsigned) w->uid,
                                 strerror(errno));
                        return -EIO;
                }
                return 0;
        }
        if (access(w->path, F_OK) >= 0) {
                /* Never made by corral (the rename below makes a workspace whole or not at all):
                 * not removed, as it may be someone's. */
                snprintf(msg, msg_size, "%s exists and is not a workspace corral made; remove it", w->path);
                return -EEXIST;
        }
        r = sibling(w->path, "new", tmp, sizeof(tmp));
        if (r >= 0) {
                char parent[PATH_MAX];
                snprintf(parent, sizeof(parent), "%.*s", (int) (strrchr(w->path, '/') - w->path), w->path);
                r = mkdir_parents_and_self(parent, 0755);
        }
        if (r < 0) {
                snprintf(msg, msg_size, "cannot make the directory of the workspace %s: %s", w->path, strerror(-r));
                return -EIO;
        }
        /* What a kill left of an earlier try is started over. */
        (void) remove_tree(tmp);
        r = start_point(w, log_fd, sha, sizeof(sha), msg, msg_size);
        if (r < 0)
                return r;
        r = git_or_fail((const char *const[]){ "clone", "--quiet", "--shared", "--no-checkout", w->repo, tmp, NULL }, log_fd,
                        "cannot clone the workspace's repository", msg, msg_size);
        if (r >= 0)
                r = git_or_fail(w->branch && *w->branch
                                        ? (const char *const[]){ "-C", tmp, "checkout", "--quiet", "-B", w->branch, sha, NULL }
                                        : (const char *const[]){ "-C", tmp, "checkout", "--quiet", "--detach", sha, NULL },
                                log_fd, "cannot check the workspace out", msg, msg_size);
        if (r >= 0 && w->own && own_tree(tmp, w->uid, w->gid) < 0) {
                snprintf(msg, msg_size, "cannot give the workspace to uid %u: %s", (unsigned) w->uid, strerror(errno));
                r = -EIO;
        }
        if (r >= 0 && rename(tmp, w->path) < 0) {
                snprintf(msg, msg_size, "cannot move the workspace into place at %s: %s", w->path, strerror(errno));
                r = -EIO;
        }
        if (r < 0)
                (void) remove_tree(tmp);
        return r;
}

/* The repository's own files are its owner's again after a push as root wrote to them. */
static int repo_owned_back(const char *repo) {
        char git[PATH_MAX];
        struct stat st;

        snprintf(git, sizeof(git), "%s/.git", repo);
        if (lstat(git, &st) < 0 || !S_ISDIR(st.st_mode))
                snprintf(git, sizeof(git), "%s", repo); /* a bare repository */
        if (lstat(git, &st) < 0)
                return -errno;
        return own_tree(git, st.st_uid, st.st_gid);
}

int shim_workspace_remove_main(int argc, char *argv[]) {
        _cleanup_free_ char *status = NULL, *refspec = NULL;
        const char *repo, *path, *branch;
        char trash[PATH_MAX], msg[600];
        int r;

        if (argc < 4 || argc > 5) {
                fprintf(stderr, "usage: corral-shim " SHIM_WORKSPACE_REMOVE_ARG " REPO PATH [BRANCH]\n");
                return SHIM_WORKSPACE_FAILED;
        }
        repo = argv[2];
        path = argv[3];
        branch = argc == 5 && *argv[4] ? argv[4] : NULL;
        if (sibling(path, "trash", trash, sizeof(trash)) < 0) {
                fprintf(stderr, "%s: not a workspace path\n", path);
                return SHIM_WORKSPACE_FAILED;
        }
        (void) remove_tree(trash); /* what a kill left of an earlier removal */
        if (access(path, F_OK) < 0)
                return SHIM_WORKSPACE_REMOVED;
        if (!is_workspace(path)) {
                printf("%s is not a workspace corral made\n", path);
                return SHIM_WORKSPACE_KEPT;
        }
        r = run_git((const char *const[]){ "-C", path, "status", "--porcelain", "--untracked-files=normal", NULL }, -1, &status);
        if (r != 0) {
                fprintf(stderr, "cannot read the workspace's status: %s", status ?: "git failed\n");
                return SHIM_WORKSPACE_FAILED;
        }
        if (status && *status) {
                /* Uncommitted work is never deleted: kept, and what it is said. */
                printf("uncommitted changes:\n%s", status);
                return SHIM_WORKSPACE_KEPT;
        }
        if (branch) {
                /* Pushed from the workspace, not fetched by the repository: a local fetch runs
                 * upload-pack in the workspace with an environment git cleans, where the
                 * workspace, the agent's, is not safe for root. Not forced: a branch the
                 * repository moved meanwhile is not overwritten. */
                refspec = strprintf("refs/heads/%s:refs/heads/%s", branch, branch);
                if (!refspec)
                        return SHIM_WORKSPACE_FAILED;
                r = git_or_fail((const char *const[]){ "-C", path, "push", "--quiet", repo, refspec, NULL }, -1,
                                "cannot bring the branch back into the repository", msg, sizeof(msg));
                (void) repo_owned_back(repo);
                if (r < 0) {
                        printf("%s\n", msg);
                        return SHIM_WORKSPACE_KEPT;
                }
        }
        if (rename(path, trash) < 0) {
                fprintf(stderr, "cannot move %s aside: %s\n", path, strerror(errno));
                return SHIM_WORKSPACE_FAILED;
        }
        r = remove_tree(trash);
        if (r < 0) {
                fprintf(stderr, "cannot remove %s: %s\n", trash, strerror(-r));
                return SHIM_WORKSPACE_FAILED;
        }
        return SHIM_WORKSPACE_REMOVED;
}
