/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Identifiers, timestamps, number parsing, small-file I/O, and descriptors and children
 * handed around by pidfd or socket.
 */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int uuid_new(char ret[static UUID_STRING_MAX]) {
        uint8_t b[16];
        size_t got = 0;

        while (got < sizeof(b)) {
                ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                got += (size_t) n;
        }
        b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
        b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */

        snprintf(ret, UUID_STRING_MAX, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
                 b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
        return 0;
}

bool uuid_is_valid(const char *s) {
        if (!s || strlen(s) != 36)
                return false;
        for (size_t i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return false;
                } else if (!isxdigit((unsigned char) s[i]))
                        return false;
        }
        return true;
}

int64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

uint64_t now_mono_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

int iso_time_format(int64_t usec, char ret[static ISO_TIME_MAX]) {
        time_t sec = (time_t) (usec / 1000000);
        struct tm tm;

        if (usec < 0 || !gmtime_r(&sec, &tm))
                return -EINVAL;
        if (tm.tm_year + 1900 > 9999)
                return -ERANGE;
        snprintf(ret, ISO_TIME_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
                 tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100, (int) ((usec % 1000000) / 1000));
        return 0;
}

int iso_time_now(char ret[static ISO_TIME_MAX]) {
        return iso_time_format(now_usec(), ret);
}

int iso_time_parse(const char *s, int64_t *ret_usec) {
        struct tm tm = {};
        const char *p;
        int64_t frac = 0;
        int digits = 0;

        if (!s)
                return -EINVAL;
        p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!p)
                return -EINVAL;
        if (*p == '.') {
                for (p++; isdigit((unsigned char) *p); p++, digits++)
                        if (digits < 6)
                                frac = frac * 10 + (*p - '0');
                if (digits == 0)
                        return -EINVAL;
                for (; digits < 6; digits++)
                        frac *= 10;
        }
        if (!streq(p, "Z"))
                return -EINVAL;

        time_t t = timegm(&tm);
        if (t == (time_t) -1)
                return -EINVAL;
        *ret_usec = (int64_t) t * 1000000 + frac;
        return 0;
}

int safe_atoi64(const char *s, int64_t *ret) {
        char *end = NULL;
        long long v;

        if (isempty(s) || isspace((unsigned char) *s))
                return -EINVAL;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno > 0)
                return -errno;
        if (!end || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

int safe_atou64(const char *s, uint64_t *ret) {
        int64_t v;
        int r;

        if (s && *s == '-')
                return -ERANGE;
        r = safe_atoi64(s, &v);
        if (r < 0)
                return r;
        *ret = (uint64_t) v;
        return 0;
}

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

int write_file_atomic(const char *path, const void *data, size_t size, unsigned mode) {
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
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                (void) unlink(tmp);
        return r;
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

char *strstrip(char *s) {
        char *e;

        while (isspace((unsigned char) *s))
                s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char) e[-1]))
                *--e = 0;
        return s;
}

char *strvprintf(const char *fmt, va_list ap) {
        char *s;
        return vasprintf(&s, fmt, ap) < 0 ? NULL : s;
}

char *strprintf(const char *fmt, ...) {
        va_list ap;
        char *s;

        va_start(ap, fmt);
        s = strvprintf(fmt, ap);
        va_end(ap);
        return s;
}

size_t utf8_prefix_size(const char *s, size_t max) {
        size_t n = strlen(s);

        if (n <= max)
                return n;
        n = max;
        while (n > 0 && ((unsigned char) s[n] & 0xC0) == 0x80)
                n--;
        return n;
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

int set_error(char **ret_error, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        *ret_error = strvprintf(fmt, ap);
        va_end(ap);
        return r;
}

void *memdup(const void *p, size_t size) {
        void *copy = malloc(size ?: 1);

        if (copy && size > 0)
                memcpy(copy, p, size);
        return copy;
}

char **strv_free(char **l) {
        for (size_t i = 0; l && l[i]; i++)
                free(l[i]);
        free(l);
        return NULL;
}

size_t strv_length(char *const *l) {
        size_t n = 0;

        while (l && l[n])
                n++;
        return n;
}

bool strv_contains(const char *const *l, const char *s) {
        for (size_t i = 0; l && l[i]; i++)
                if (strcmp(l[i], s) == 0)
                        return true;
        return false;
}

const char *strv_pair_value(char *const *l, const char *name) {
        for (size_t i = 0; l && l[i] && l[i + 1]; i += 2)
                if (strcmp(l[i], name) == 0)
                        return l[i + 1];
        return NULL;
}

int strv_push(char ***l, const char *s) {
        size_t n = strv_length(*l);
        char *copy = strdup(s), **t;

        if (!copy)
                return -ENOMEM;
        t = realloc(*l, (n + 2) * sizeof(char *));
        if (!t) {
                free(copy);
                return -ENOMEM;
        }
        t[n] = copy;
        t[n + 1] = NULL;
        *l = t;
        return 0;
}
