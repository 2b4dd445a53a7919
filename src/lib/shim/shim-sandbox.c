/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The sandbox init and the agent's last steps before execve; see shim-sandbox.h.
 * Both are plain fork()s of the single-threaded shim, so they may call what they like,
 * but they only make system calls on what the shim prepared: an error is a fixed-size
 * record on a pipe, never a message built with stdio.
 */
#include "shim/shim-sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/spawn.h"
#include "basic/util.h"
#include "basic/fd-util.h"

static const char *const kind_names[_SANDBOX_MOUNT_KIND_MAX] = {
        [SANDBOX_TMPFS] = "tmpfs", [SANDBOX_HIDE] = "hide",       [SANDBOX_RW] = "rw",
        [SANDBOX_RO] = "ro",       [SANDBOX_BIND_RO] = "bind-ro",
};

static int parse_error(char *error, size_t size, unsigned line, const char *what) {
        snprintf(error, size, "line %u: %s", line, what);
        return -EINVAL;
}

static int parse_id(const char *s, unsigned *ret) {
        uint64_t v;

        if (safe_atou64(s, &v) < 0 || v >= UINT32_MAX)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

int sandbox_spec_parse(char *text, SandboxSpec *ret, char *error, size_t error_size) {
        SandboxSpec s = { .uid = (uid_t) -1, .gid = (gid_t) -1 };
        unsigned line = 0;
        char *p = text;

        while (*p) {
                char *end = strchr(p, '\n'), *key = p, *value, *value2;
                if (!end)
                        return parse_error(error, error_size, line + 1, "not terminated by a newline");
                *end = '\0';
                p = end + 1;
                line++;

                value = strchr(key, '\t');
                if (!value)
                        return parse_error(error, error_size, line, "no value");
                *value++ = '\0';
                value2 = strchr(value, '\t');
                if (value2)
                        *value2++ = '\0';

                if (streq(key, "uid") || streq(key, "gid")) {
                        unsigned id;
                        if (value2 || parse_id(value, &id) < 0)
                                return parse_error(error, error_size, line, "bad uid or gid");
                        if (key[0] == 'u')
                                s.uid = id;
                        else
                                s.gid = id;
                        continue;
                }
                if (streq(key, "network")) {
                        if (value2 || (!streq(value, "none") && !streq(value, "host")))
                                return parse_error(error, error_size, line, "network must be none or host");
                        s.network_none = streq(value, "none");
                        continue;
                }
                if (value[0] != '/' || (value2 && value2[0] != '/'))
                        return parse_error(error, error_size, line, "paths must be absolute");
                if (streq(key, "chdir") || streq(key, "seccomp")) {
                        if (value2)
                                return parse_error(error, error_size, line, "one path only");
                        *(key[0] == 'c' ? &s.chdir : &s.seccomp) = value;
                        continue;
                }
                SandboxMountKind kind = _SANDBOX_MOUNT_KIND_MAX;
                for (size_t k = 0; k < _SANDBOX_MOUNT_KIND_MAX; k++)
                        if (streq(key, kind_names[k]))
                                kind = (SandboxMountKind) k;
                if (kind == _SANDBOX_MOUNT_KIND_MAX)
                        return parse_error(error, error_size, line, "unknown directive");
                if ((kind == SANDBOX_BIND_RO) != !!value2)
                        return parse_error(error, error_size, line, "wrong number of paths");
                if (s.n_mounts >= SANDBOX_MOUNTS_MAX)
                        return parse_error(error, error_size, line, "too many paths");
                s.mounts[s.n_mounts++] = (SandboxMount){ .kind = kind, .src = value, .dst = value2 ?: value };
        }
        if (s.uid == (uid_t) -1 || s.gid == (gid_t) -1) {
                snprintf(error, error_size, "no uid or gid");
                return -EINVAL;
        }
        *ret = s;
        return 0;
}

/* ---- the sandbox init and the agent, after fork ---- */

/* What a failed step sends back: the errno and what was being done. */
typedef struct SandboxError {
        int error;
        char what[256];
} SandboxError;

static _noreturn_ void fail(int fd, int e, const char *what, const char *path) {
        SandboxError x = { .error = e > 0 ? e : EIO };
        size_t n = strlen(what), m = path ? strlen(path) : 0;

        n = MIN(n, sizeof(x.what) - 1);
        memcpy(x.what, what, n);
        if (path && n + 1 < sizeof(x.what) - 1) {
                x.what[n++] = ' ';
                m = MIN(m, sizeof(x.what) - 1 - n);
                memcpy(x.what + n, path, m);
        }
        (void) !write(fd, &x, sizeof(x));
        _exit(SHIM_SANDBOX_EXIT_FAILED);
}

/* An O_PATH descriptor of path, reached one component at a time, refusing a symbolic link
 * anywhere on the way: a link that an agent planted in a directory it can write must not
 * redirect a mount. (openat2's RESOLVE_NO_SYMLINKS would do it in one call, but a service's
 * RestrictSUIDSGID= makes openat2 fail with ENOSYS, corrald.service's included.) */
static int open_path(const char *path) {
        char buf[4096], *save = NULL;
        size_t n = strlen(path);
        int fd;

        if (n >= sizeof(buf))
                return -ENAMETOOLONG;
        memcpy(buf, path, n + 1);
        fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                struct stat st;
                int next = openat(fd, c, O_PATH | O_NOFOLLOW | O_CLOEXEC), r = 0;

                close(fd);
                if (next < 0)
                        return -errno;
                if (fstat(next, &st) < 0)
                        r = -errno;
                else if (S_ISLNK(st.st_mode))
                        r = -ELOOP;
                if (r < 0) {
                        close(next);
                        return r;
                }
                fd = next;
        }
        return fd;
}

/* Make path (and its parents) as a directory, or as an empty file when !dir. Only ever
 * called inside a tmpfs of the sandbox's own making, where no agent has written. */
static int make_mountpoint(const char *path, bool dir) {
        char buf[4096];
        size_t n = strlen(path);

        if (n >= sizeof(buf))
                return -ENAMETOOLONG;
        memcpy(buf, path, n + 1);
        for (char *slash = strchr(buf + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
                *slash = '\0';
                if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *slash = '/';
        }
        if (dir)
                return mkdir(buf, 0755) < 0 && errno != EEXIST ? -errno : 0;
        int fd = open(buf, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        close(fd);
        return 0;
}

/* Put the detached mount tree_fd at dst, making the mount point if it is missing. */
static int attach(int tree_fd, const char *dst) {
        struct stat st;
        int fd, r;

        if (fstat(tree_fd, &st) < 0)
                return -errno;
        fd = open_path(dst);
        if (fd == -ENOENT) {
                r = make_mountpoint(dst, S_ISDIR(st.st_mode));
                if (r < 0)
                        return r;
                fd = open_path(dst);
        }
        if (fd < 0)
                return fd;
        r = move_mount(tree_fd, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
        r = r < 0 ? -errno : 0;
        close(fd);
        return r;
}

static int set_attr(int tree_fd, uint64_t set, uint64_t clear) {
        struct mount_attr a = { .attr_set = set, .attr_clr = clear };
        return mount_setattr(tree_fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof(a)) < 0 ? -errno : 0;
}

/* A new tmpfs, detached; mode as tmpfs's mode= option. */
static int new_tmpfs(const char *mode) {
        int fs, mnt;

        fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
        if (fs < 0)
                return -errno;
        if (fsconfig(fs, FSCONFIG_SET_STRING, "mode", mode, 0) < 0 || fsconfig(fs, FSCONFIG_SET_STRING, "size", "50%", 0) < 0 ||
            fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
                int e = errno;
                close(fs);
                return -e;
        }
        mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
        mnt = mnt < 0 ? -errno : mnt;
        close(fs);
        return mnt;
}

static int loopback_up(void) {
        struct ifreq ifr = { .ifr_name = "lo" };
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = 0;

        if (fd < 0)
                return -errno;
        if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
                r = -errno;
        else {
                ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
                if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
                        r = -errno;
        }
        close(fd);
        return r;
}

/* The number of components of an absolute path: 0 for "/". */
static unsigned path_depth(const char *path) {
        unsigned n = 0;

        for (const char *c = path; *c; c++)
                if (*c == '/' && c[1] && c[1] != '/')
                        n++;
        return n;
}

/* Attach one prepared tree where it belongs, with the options its kind asks for. */
static void place(const SandboxMount *m, int tree, int err_fd) {
        int r;

        r = attach(tree, m->dst);
        if (r < 0)
                fail(err_fd, -r, "mount on", m->dst);
        if (m->kind == SANDBOX_RW)
                r = set_attr(tree, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY);
        else if (m->kind == SANDBOX_RO || m->kind == SANDBOX_BIND_RO)
                r = set_attr(tree, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0);
        if (r < 0)
                fail(err_fd, -r, "set the mount options of", m->dst);
        close(tree);
}

/* The mount namespace, in the init, which is pid 1 of the new pid namespace already. */
static void build_mounts(const SandboxSpec *spec, int err_fd) {
        int trees[SANDBOX_MOUNTS_MAX];
        struct mount_attr private = { .propagation = MS_PRIVATE };
        int r;

        /* The mount points made here have exactly the modes asked for: corrald's umask is 077. */
        umask(0);
        if (unshare(CLONE_NEWNS | (spec->network_none ? CLONE_NEWNET : 0)) < 0)
                fail(err_fd, errno, "unshare the mount namespace", NULL);
        /* Nothing done here may reach the host's mounts. */
        if (mount_setattr(AT_FDCWD, "/", AT_RECURSIVE, &private, sizeof(private)) < 0)
                fail(err_fd, errno, "make the mounts private", NULL);

        /* Take what stays visible before anything is hidden above it. */
        for (size_t i = 0; i < spec->n_mounts; i++) {
                const SandboxMount *m = spec->mounts + i;
                trees[i] = -1;
                if (m->kind == SANDBOX_TMPFS)
                        continue;
                int fd = open_path(m->kind == SANDBOX_HIDE ? m->dst : m->src);
                if (fd == -ENOENT && m->kind == SANDBOX_HIDE)
                        continue; /* nothing to hide */
                if (fd < 0)
                        fail(err_fd, -fd, "find the sandbox path", m->kind == SANDBOX_HIDE ? m->dst : m->src);
                if (m->kind == SANDBOX_HIDE) {
                        struct stat st;
                        if (fstat(fd, &st) < 0)
                                fail(err_fd, errno, "find the sandbox path", m->dst);
                        close(fd);
                        if (S_ISDIR(st.st_mode))
                                trees[i] = new_tmpfs("0711");
                        else if ((trees[i] = open_tree(AT_FDCWD, "/dev/null", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)) < 0)
                                trees[i] = -errno;
                        if (trees[i] < 0)
                                fail(err_fd, -trees[i], "make what hides", m->dst);
                        continue;
                }
                trees[i] = open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
                if (trees[i] < 0)
                        fail(err_fd, errno, "take the sandbox path", m->src);
                close(fd);
        }

        /* Everything read-only, no setuid binary worth anything. */
        struct mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID };
        if (mount_setattr(AT_FDCWD, "/", AT_RECURSIVE, &ro, sizeof(ro)) < 0)
                fail(err_fd, errno, "make the root read-only", NULL);

        /* The fresh tmpfs first. Then, from the shallowest path to the deepest, what is
         * hidden and what is shown: a path shown inside a hidden one is seen, and one hidden
         * inside a shown one stays hidden, in whatever order they were listed. At one depth,
         * hiding comes first. */
        unsigned max_depth = 0;
        for (size_t i = 0; i < spec->n_mounts; i++)
                max_depth = MAX(max_depth, path_depth(spec->mounts[i].dst));
        for (size_t i = 0; i < spec->n_mounts; i++)
                if (spec->mounts[i].kind == SANDBOX_TMPFS) {
                        trees[i] = new_tmpfs("1777");
                        if (trees[i] < 0)
                                fail(err_fd, -trees[i], "make the tmpfs", spec->mounts[i].dst);
                        place(spec->mounts + i, trees[i], err_fd);
                }
        for (unsigned depth = 0; depth <= max_depth; depth++)
                for (int hiding = 1; hiding >= 0; hiding--)
                        for (size_t i = 0; i < spec->n_mounts; i++) {
                                const SandboxMount *m = spec->mounts + i;
                                if (m->kind == SANDBOX_TMPFS || path_depth(m->dst) != depth ||
                                    (m->kind == SANDBOX_HIDE) != hiding)
                                        continue;
                                if (trees[i] >= 0) /* not a hidden path that does not exist */
                                        place(m, trees[i], err_fd);
                        }

        /* A /proc that shows the sandbox's processes only. */
        if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                fail(err_fd, errno, "mount /proc", NULL);
        if (spec->network_none && (r = loopback_up()) < 0)
                fail(err_fd, -r, "bring up the loopback device", NULL);
}

typedef struct AgentStart {
        const SandboxSpec *spec;
        char *const *argv;
        int in, out, err;
        const sigset_t *mask;
        const struct sock_fprog *filter;
} AgentStart;

/* The agent's process: the descriptors, the identity, the filter, execve. */
static _noreturn_ void agent_exec(const AgentStart *a, int err_fd) {
        struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct no_caps[_LINUX_CAPABILITY_U32S_3] = {};
        const SandboxSpec *spec = a->spec;

        if (setpgid(0, 0) < 0)
                fail(err_fd, errno, "make the agent's process group", NULL);
        if (dup2(a->in, STDIN_FILENO) < 0 || dup2(a->out, STDOUT_FILENO) < 0 || dup2(a->err, STDERR_FILENO) < 0)
                fail(err_fd, errno, "set up the agent's standard descriptors", NULL);

        /* No capability may come back through execve, not even for a uid 0 agent. */
        for (unsigned long cap = 0; cap <= 63; cap++)
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
                        fail(err_fd, errno, "drop the capability bounding set", NULL);
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                fail(err_fd, errno, "clear the ambient capabilities", NULL);
        if (setgroups(0, NULL) < 0)
                fail(err_fd, errno, "drop the supplementary groups", NULL);
        if (setresgid(spec->gid, spec->gid, spec->gid) < 0)
                fail(err_fd, errno, "set the agent's gid", NULL);
        if (setresuid(spec->uid, spec->uid, spec->uid) < 0)
                fail(err_fd, errno, "set the agent's uid", NULL);
        if (syscall(SYS_capset, &header, no_caps) < 0)
                fail(err_fd, errno, "drop the capabilities", NULL);
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                fail(err_fd, errno, "set no_new_privs", NULL);
        /* Entered as the agent: a workspace it may not enter is its operator's to fix. */
        if (spec->chdir && chdir(spec->chdir) < 0)
                fail(err_fd, errno, "enter the working directory", spec->chdir);
        umask(022);
        spawn_child_reset_signals(a->mask);
        /* Last, so that nothing above is filtered; execve itself is allowed. */
        if (a->filter && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, a->filter, 0, 0) < 0)
                fail(err_fd, errno, "install the seccomp filter", NULL);
        execvp(a->argv[0], a->argv);
        fail(err_fd, errno, "execute", a->argv[0]);
}

static void on_signal(int sig) {
}

/* Close every descriptor but the ones in keep (sorted, ascending). */
static void close_all_but(const int *keep, size_t n) {
        unsigned from = 3;

        for (size_t i = 0; i < n; i++) {
                if (keep[i] < (int) from)
                        continue;
                if ((unsigned) keep[i] > from)
                        (void) close_range(from, (unsigned) keep[i] - 1, 0);
                from = (unsigned) keep[i] + 1;
        }
        (void) close_range(from, ~0U, 0);
}

static int cmp_int(const void *a, const void *b) {
        return *(const int *) a - *(const int *) b;
}

/* pid 1 of the sandbox: set up, start the agent, then forward and reap until it is alone. */
static _noreturn_ void sandbox_init(const AgentStart *a, int err_fd, int status_fd) {
        struct sigaction sa = { .sa_handler = on_signal };
        int keep[] = { a->in, a->out, a->err, err_fd, status_fd };
        int p[2], agent_status = 0;
        bool agent_exited = false;
        SandboxError x;
        sigset_t wait_set;
        pid_t agent;
        ssize_t k;

        qsort(keep, ELEMENTSOF(keep), sizeof(int), cmp_int);
        close_all_but(keep, ELEMENTSOF(keep));
        /* Its own process group, which the shim's SIGTERM and the none backend's kill reach. */
        (void) setpgid(0, 0);
        /* A pid 1 is sent only the signals it has handlers for. */
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        sigemptyset(&wait_set);
        sigaddset(&wait_set, SIGCHLD);
        sigaddset(&wait_set, SIGTERM);
        sigaddset(&wait_set, SIGINT);
        sigaddset(&wait_set, SIGHUP);
        sigprocmask(SIG_BLOCK, &wait_set, NULL);

        build_mounts(a->spec, err_fd);

        if (pipe2(p, O_CLOEXEC) < 0)
                fail(err_fd, errno, "make the agent's error pipe", NULL);
        agent = fork();
        if (agent < 0)
                fail(err_fd, errno, "fork the agent", NULL);
        if (agent == 0) {
                close(p[0]);
                agent_exec(a, p[1]);
        }
        close(p[1]);
        close(a->in);
        close(a->out);
        close(a->err);
        /* EOF: the agent's execve closed the pipe. */
        k = read(p[0], &x, sizeof(x));
        close(p[0]);
        if (k == (ssize_t) sizeof(x)) {
                (void) !write(err_fd, &x, sizeof(x));
                _exit(SHIM_SANDBOX_EXIT_FAILED);
        }
        close(err_fd);

        for (;;) {
                siginfo_t si;
                int status;
                pid_t pid;

                if (sigwaitinfo(&wait_set, &si) < 0)
                        continue;
                if (si.si_signo != SIGCHLD) {
                        if (!agent_exited)
                                (void) kill(-agent, SIGTERM);
                        continue;
                }
                while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
                        if (pid == agent) {
                                agent_exited = true;
                                agent_status = status;
                                (void) !write(status_fd, &agent_status, sizeof(agent_status));
                                close(status_fd);
                        }
                /* Orphans of the agent keep the init (and so the sandbox) alive until they
                 * end or the run's cgroup is killed. */
                if (pid < 0 && errno == ECHILD && agent_exited)
                        _exit(0);
        }
}

/* Children of the shim are born in its own pid namespace again: only the sandbox's init
 * belongs in the new one (and a sanitizer's helper thread, say, must see the shim). */
static void restore_pid_namespace(void) {
        int fd = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);

        if (fd >= 0) {
                (void) setns(fd, CLONE_NEWPID);
                close(fd);
        }
}

int sandbox_spawn(const SandboxSpec *spec, char *const argv[], int in, int out, int err, const sigset_t *mask, pid_t *ret_pid,
                  int *ret_status_fd, char *what, size_t what_size) {
        _cleanup_free_ char *filter = NULL;
        struct sock_fprog prog = {};
        int errp[2], statusp[2], r;
        size_t size = 0;
        SandboxError x;
        pid_t pid;
        ssize_t k;

        if (spec->seccomp) {
                r = read_full_file(spec->seccomp, SANDBOX_FILTER_MAX * sizeof(struct sock_filter), &filter, &size);
                if (r < 0 || size == 0 || size % sizeof(struct sock_filter) != 0) {
                        snprintf(what, what_size, "read the seccomp filter %s", spec->seccomp);
                        return r < 0 ? -r : EINVAL;
                }
                prog = (struct sock_fprog){ .len = (unsigned short) (size / sizeof(struct sock_filter)),
                                            .filter = (struct sock_filter *) filter };
        }
        if (pipe2(errp, O_CLOEXEC) < 0 || pipe2(statusp, O_CLOEXEC) < 0) {
                snprintf(what, what_size, "make the sandbox's pipes");
                return errno;
        }
        /* The next child is pid 1 of a new pid namespace. */
        if (unshare(CLONE_NEWPID) < 0) {
                int e = errno;
                snprintf(what, what_size, "unshare the pid namespace");
                close(errp[0]), close(errp[1]), close(statusp[0]), close(statusp[1]);
                return e;
        }
        AgentStart a = {
                .spec = spec, .argv = argv, .in = in, .out = out, .err = err, .mask = mask, .filter = filter ? &prog : NULL
        };
        pid = fork();
        if (pid == 0) {
                close(errp[0]);
                close(statusp[0]);
                sandbox_init(&a, errp[1], statusp[1]);
        }
        restore_pid_namespace();
        close(errp[1]);
        close(statusp[1]);
        if (pid < 0) {
                int e = errno;
                snprintf(what, what_size, "fork the sandbox");
                close(errp[0]), close(statusp[0]);
                return e;
        }
        k = read(errp[0], &x, sizeof(x));
        close(errp[0]);
        if (k == (ssize_t) sizeof(x)) {
                x.what[sizeof(x.what) - 1] = '\0';
                snprintf(what, what_size, "%s", x.what);
                (void) waitpid(pid, NULL, 0);
                close(statusp[0]);
                return x.error;
        }
        *ret_pid = pid;
        *ret_status_fd = statusp[0];
        return 0;
}
