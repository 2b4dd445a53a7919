/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Small macros used everywhere: cleanup attributes, ownership transfer and
 * string comparison. Nothing here logs or allocates behind the caller's back.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -EBADF;
}

static inline void closep(int *fd) {
        safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* Take ownership away from a cleanup-annotated variable. */
#define TAKE_PTR(p)                          \
        ({                                   \
                __typeof__(p) _taken_ = (p); \
                (p) = NULL;                  \
                _taken_;                     \
        })
#define TAKE_FD(fd)                    \
        ({                             \
                int _taken_fd_ = (fd); \
                (fd) = -EBADF;         \
                _taken_fd_;            \
        })

/* Define a cleanup helper for a type with a foo_free() destructor. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func) \
        static inline void func##p(type *p) {   \
                if (*p)                         \
                        func(*p);               \
        }

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

#define STRINGIFY_(x) #x
/* A macro's value as a string literal. */
#define STRINGIFY(x) STRINGIFY_(x)

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}

static inline bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* What follows prefix in s, or NULL when s does not start with it. */
static inline const char *after_prefix(const char *s, const char *prefix) {
        return startswith(s, prefix) ? s + strlen(prefix) : NULL;
}

static inline bool isempty(const char *s) {
        return !s || !*s;
}

static inline const char *strempty(const char *s) {
        return s ?: "";
}

static inline const char *strna(const char *s) {
        return s ?: "n/a";
}

static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

/* Replace *p with a copy of s (NULL allowed). */
static inline int free_and_strdup(char **p, const char *s) {
        char *t = NULL;
        if (s) {
                t = strdup(s);
                if (!t)
                        return -ENOMEM;
        }
        free(*p);
        *p = t;
        return 0;
}
