/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Helpers that belong to no one module: identifiers, numbers, formatted strings and
 * errors explained. They return -errno and never log.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define UUID_STRING_MAX 37 /* 36 characters and the NUL */

/* A random (version 4) UUID in its canonical lower-case text form. */
int uuid_new(char ret[static UUID_STRING_MAX]);
bool uuid_is_valid(const char *s);

/* size bytes as lower-case hex, NUL-terminated: ret holds 2 * size + 1. */
void hex_encode(const void *data, size_t size, char *ret);

int safe_atoi64(const char *s, int64_t *ret);
int safe_atou64(const char *s, uint64_t *ret);

/* Strip leading and trailing whitespace in place; returns s. */
char *strstrip(char *s);

/* A copy of s with every from replaced by to; NULL on allocation failure. */
char *strreplace(const char *s, const char *from, const char *to);

/* asprintf() that returns NULL on failure instead of leaving the pointer undefined. */
char *strprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *strvprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* A refusal explained: *ret_error gets the message (NULL when out of memory), and r, a
 * negative errno, is returned. */
int set_error(char **ret_error, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A malloc'ed copy of size bytes (NULL when out of memory). */
void *memdup(const void *p, size_t size);
