/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Descriptors, small files, and the children behind pidfds. They return -errno and never log. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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
/* The same without the fsync: a reader sees the old file or the new, never part of one, but
 * a crash of the machine may leave the old. For what is rewritten often and matters only while
 * the machine is up (it costs the loop no wait on the disk). */
int write_file_replace(const char *path, const void *data, size_t size, unsigned mode);

/* mkdir -p with the given mode for every directory created. */
int mkdir_parents_and_self(const char *path, unsigned mode);
