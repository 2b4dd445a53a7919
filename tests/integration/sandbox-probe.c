/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What a hostile agent tries from inside its sandbox, one system call per probe, for
 * test-sandbox.sh. Each probe prints "NAME: ok" when the call worked, or "NAME: " and
 * the error, and the program exits 0 either way: the test reads the lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

static void report(const char *name, long r) {
        if (r < 0)
                printf("%s: %s\n", name, strerror(errno));
        else
                printf("%s: ok\n", name);
}

static long probe_pidfd_getfd(pid_t pid) {
        long fd = syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0)
                return fd;
        /* Any descriptor of the target; corrald's database is among its low ones. */
        for (int target = 3; target < 64; target++) {
                long got = syscall(SYS_pidfd_getfd, (int) fd, target, 0);
                if (got >= 0)
                        return got;
                if (errno != EBADF)
                        return got;
        }
        errno = EBADF;
        return -1;
}

static long probe_connect(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return -1;
        strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
        return connect(fd, (struct sockaddr *) &sa, sizeof(sa));
}

static long probe_perf(void) {
        struct perf_event_attr attr = { .type = PERF_TYPE_SOFTWARE, .size = sizeof(attr), .config = PERF_COUNT_SW_CPU_CLOCK };
        return syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
}

int main(int argc, char *argv[]) {
        for (int i = 1; i < argc; i++) {
                const char *p = argv[i];
                const char *arg = strchr(p, '=') ? strchr(p, '=') + 1 : "";
                pid_t pid = (pid_t) atoi(arg);

                errno = 0;
                /* kill(0) or kill(-1) would be a probe of something else. */
                if (strchr(p, '=') && strncmp(p, "connect=", 8) != 0 && pid <= 0) {
                        fprintf(stderr, "bad pid in %s\n", p);
                        return 2;
                }
                if (strncmp(p, "kill=", 5) == 0)
                        report(p, kill(pid, SIGKILL));
                else if (strncmp(p, "stop=", 5) == 0)
                        report(p, kill(pid, SIGSTOP));
                else if (strncmp(p, "ptrace=", 7) == 0)
                        report(p, ptrace(PTRACE_ATTACH, pid, NULL, NULL));
                else if (strncmp(p, "pidfd_getfd=", 12) == 0)
                        report(p, probe_pidfd_getfd(pid));
                else if (strncmp(p, "connect=", 8) == 0)
                        report(p, probe_connect(arg));
                else if (strcmp(p, "mount") == 0)
                        report(p, mount("none", "/tmp", "tmpfs", 0, NULL));
                else if (strcmp(p, "unshare_user") == 0)
                        report(p, unshare(CLONE_NEWUSER));
                else if (strcmp(p, "clone_newuser") == 0) {
                        long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, 0);
                        if (r == 0)
                                _exit(0);
                        report(p, r);
                } else if (strcmp(p, "bpf") == 0)
                        report(p, syscall(SYS_bpf, 0, NULL, 0));
                else if (strcmp(p, "perf_event_open") == 0)
                        report(p, probe_perf());
                else if (strcmp(p, "keyctl") == 0)
                        report(p, syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
                else if (strcmp(p, "setuid0") == 0)
                        report(p, setuid(0));
                else if (strcmp(p, "chroot") == 0)
                        report(p, chroot("/tmp"));
                else {
                        fprintf(stderr, "unknown probe %s\n", p);
                        return 2;
                }
                fflush(stdout);
        }
        return 0;
}
