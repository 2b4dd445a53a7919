/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Helpers that do not belong to any one module: identifiers, timestamps,
 * numbers and files. They return -errno and never log.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define UUID_STRING_MAX 37 /* 36 characters and the NUL */
#define ISO_TIME_MAX 32

/* A random (version 4) UUID in its canonical lower-case text form. */
int uuid_new(char ret[static UUID_STRING_MAX]);
bool uuid_is_valid(const char *s);

/* Wall clock in microseconds since the epoch. */
int64_t now_usec(void);
/* CLOCK_MONOTONIC in microseconds: for intervals, which the wall clock's jumps must not bend. */
uint64_t now_mono_usec(void);

/* "2026-11-25T12:00:00.123Z" (always UTC, millisecond precision), so text order is time order. */
int iso_time_format(int64_t usec, char ret[static ISO_TIME_MAX]);
int iso_time_now(char ret[static ISO_TIME_MAX]);
int iso_time_parse(const char *s, int64_t *ret_usec);

int safe_atoi64(const char *s, int64_t *ret);
int safe_atou64(const char *s, uint64_t *ret);

/* Read a whole (small) file into a NUL-terminated buffer; refuses files over max_size bytes. */
int read_full_file(const char *path, size_t max_size, char **ret, size_t *ret_size);

/* Move fd to a number of 10 or more (O_CLOEXEC), above the 0-4 that a child dups onto, so
 * that dup2 never meets itself. The original is closed either way; returns the new fd or
 * -errno. */
int fd_move_high(int fd);

/* SIGKILL the child behind pidfd and wait until it is reaped. */
void pidfd_kill_and_reap(int pidfd);

/* One message with descriptors on a Unix socket (SCM_RIGHTS), at most FDS_MAX of them. */
#define FDS_MAX 8
/* Send buf with n_fds descriptors (none when 0). Returns the bytes sent or -errno. */
ssize_t send_with_fds(int sock, const void *buf, size_t size, const int *fds, size_t n_fds, int flags);
/* Receive one message into buf and up to max_fds descriptors (O_CLOEXEC) into fds, the rest
 * of which are set to -1; more descriptors than that are dropped by the kernel. Returns the
 * message's size, 0 at EOF, -EBADMSG when the message or its descriptors were cut short
 * (what did arrive is in fds, to close), or -errno. */
ssize_t recv_with_fds(int sock, void *buf, size_t size, int *fds, size_t max_fds, int flags);

/* Start time (field 22 of /proc/PID/stat, in clock ticks since boot) of a living process:
 * with its pid it names one process. -ESRCH for one that is gone or a zombie. */
int pid_start_ticks(pid_t pid, uint64_t *ret);

/* write(2) until all of data is written, through EINTR and short writes: 0 or -errno. */
int write_full(int fd, const void *data, size_t size);
/* Write a file atomically: temporary file in the same directory, fsync, rename. */
int write_file_atomic(const char *path, const void *data, size_t size, unsigned mode);

/* mkdir -p with the given mode for every directory created. */
int mkdir_parents_and_self(const char *path, unsigned mode);

/* Strip leading and trailing whitespace in place; returns s. */
char *strstrip(char *s);

/* asprintf() that returns NULL on failure instead of leaving the pointer undefined. */
char *strprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *strvprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* A refusal explained: *ret_error gets the message (NULL when out of memory), and r, a
 * negative errno, is returned. */
int set_error(char **ret_error, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The length of the longest prefix of s of at most max bytes that does not split a UTF-8
 * sequence. */
size_t utf8_prefix_size(const char *s, size_t max);

/* A malloc'ed copy of size bytes (NULL when out of memory). */
void *memdup(const void *p, size_t size);

/* NULL-terminated lists of strings, owned with their strings. */
char **strv_free(char **l);
size_t strv_length(char *const *l);
bool strv_contains(const char *const *l, const char *s);
/* Append a copy of s. */
int strv_push(char ***l, const char *s);
/* In a list of names and values, alternating: the value of name, or NULL. */
const char *strv_pair_value(char *const *l, const char *name);
static inline void strv_freep(char ***l) {
        strv_free(*l);
}
#define _cleanup_strv_free_ __attribute__((cleanup(strv_freep)))
