/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Identifiers, number parsing, formatted strings.
 */
#include "basic/util.h"

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

#include "basic/macro.h"

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

void hex_encode(const void *data, size_t size, char *ret) {
        static const char digits[] = "0123456789abcdef";
        const unsigned char *p = data;

        for (size_t i = 0; i < size; i++) {
                ret[2 * i] = digits[p[i] >> 4];
                ret[2 * i + 1] = digits[p[i] & 15];
        }
        ret[2 * size] = 0;
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

char *strreplace(const char *s, const char *from, const char *to) {
        size_t nf = strlen(from), nt = strlen(to), n = 0;
        char *ret, *o;

        for (const char *p = strstr(s, from); nf > 0 && p; p = strstr(p + nf, from))
                n++;
        ret = malloc(strlen(s) + n * nt + 1);
        if (!ret)
                return NULL;
        o = ret;
        const char *p = s, *q;
        while (nf > 0 && (q = strstr(p, from))) {
                memcpy(o, p, (size_t) (q - p));
                o += q - p;
                memcpy(o, to, nt);
                o += nt;
                p = q + nf;
        }
        strcpy(o, p);
        return ret;
}
