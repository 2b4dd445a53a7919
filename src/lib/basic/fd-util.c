/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Descriptors, small files, and the children behind pidfds. */
#include "basic/fd-util.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/util.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int read_full_file(const char *path, size_t max_size, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, allocated = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;

        for (;;) {
                if (allocated - size < 4096) {
                        size_t n = allocated ? allocated * 2 : 4096;
                        if (n > max_size + 1)
                                n = max_size + 1;
                        if (n <= size)
                                return -EFBIG;
                        char *t = realloc(buf, n + 1);
                        if (!t)
                                return -ENOMEM;
                        buf = t;
                        allocated = n;
                }
                ssize_t k = read(fd, buf + size, allocated - size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                size += (size_t) k;
                if (size > max_size)
                        return -EFBIG;
        }
        if (!buf) {
                buf = malloc(1);
                if (!buf)
                        return -ENOMEM;
        }
        buf[size] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = size;
        return 0;
}

int write_full(int fd, const void *data, size_t size) {
        const char *p = data;

        while (size > 0) {
                ssize_t k = write(fd, p, size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                size -= (size_t) k;
        }
        return 0;
}

static int write_file_renamed(const char *path, const void *data, size_t size, unsigned mode, bool durable) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        tmp = strprintf("%s.tmp.%d", path, (int) getpid());
        if (!tmp)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        r = write_full(fd, data, size);
        if (r >= 0 && durable && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                (void) unlink(tmp);
        return r;
}

int write_file_atomic(const char *path, const void *data, size_t size, unsigned mode) {
        return write_file_renamed(path, data, size, mode, true);
}

int write_file_replace(const char *path, const void *data, size_t size, unsigned mode) {
        return write_file_renamed(path, data, size, mode, false);
}

int mkdir_parents_and_self(const char *path, unsigned mode) {
        _cleanup_free_ char *p = NULL;

        /* Usually only the last component is missing: one mkdir, no walk from the root. */
        if (mkdir(path, mode) >= 0 || errno == EEXIST)
                return 0;
        if (errno != ENOENT)
                return -errno;
        p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* A zombie is as dead as it gets, but keeps its pid until somebody reaps it. */
int pid_start_ticks(pid_t pid, uint64_t *ret) {
        _cleanup_free_ char *path = strprintf("/proc/%d/stat", (int) pid), *text = NULL;
        char *p;
        int r;

        if (!path)
                return -ENOMEM;
        r = read_full_file(path, 4096, &text, NULL);
        if (r < 0)
                return r == -ENOENT ? -ESRCH : r;
        /* The command name may hold anything, so count fields after its closing parenthesis:
         * the state (field 3) follows it, and the start time is field 22. */
        p = strrchr(text, ')');
        if (!p || p[1] != ' ' || !p[2])
                return -EBADMSG;
        if (p[2] == 'Z' || p[2] == 'X')
                return -ESRCH;
        p++;
        for (int field = 3; field < 22; field++) {
                p = strchr(p + 1, ' ');
                if (!p)
                        return -EBADMSG;
        }
        *ret = strtoull(p + 1, NULL, 10);
        return 0;
}

int fd_move_high(int fd) {
        int r = fcntl(fd, F_DUPFD_CLOEXEC, 10);
        int e = errno;

        safe_close(fd);
        return r < 0 ? -e : r;
}

ssize_t send_with_fds(int sock, const void *buf, size_t size, const int *fds, size_t n_fds, int flags) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(FDS_MAX * sizeof(int))];
        } control = {};
        struct iovec iov = { .iov_base = (void *) buf, .iov_len = size };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n;

        if (n_fds > FDS_MAX)
                return -EINVAL;
        if (n_fds > 0) {
                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE(n_fds * sizeof(int));
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
                memcpy(CMSG_DATA(c), fds, n_fds * sizeof(int));
        }
        n = sendmsg(sock, &mh, flags);
        return n < 0 ? -errno : n;
}

ssize_t recv_with_fds(int sock, void *buf, size_t size, int *fds, size_t max_fds, int flags) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(FDS_MAX * sizeof(int))];
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = size };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.buf,
                .msg_controllen = CMSG_SPACE(max_fds * sizeof(int)),
        };
        ssize_t n;

        if (max_fds > FDS_MAX)
                return -EINVAL;
        for (size_t i = 0; i < max_fds; i++)
                fds[i] = -1;
        do
                n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        bool too_many = false;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        int got[FDS_MAX + 2];
                        /* The control buffer is rounded up, so a few more than asked may fit:
                         * those are closed here, not left open behind the caller's back. */
                        k = MIN(k, ELEMENTSOF(got));
                        memcpy(got, CMSG_DATA(c), k * sizeof(int));
                        for (size_t i = 0; i < k; i++) {
                                if (i < max_fds)
                                        fds[i] = got[i];
                                else {
                                        safe_close(got[i]);
                                        too_many = true;
                                }
                        }
                }
        return too_many || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ? -EBADMSG : n;
}

void pidfd_kill_and_reap(int pidfd) {
        (void) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
        (void) waitid((idtype_t) P_PIDFD, (id_t) pidfd, NULL, WEXITED);
}
