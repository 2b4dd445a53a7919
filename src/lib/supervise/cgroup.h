/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cgroup v2 helpers. The hierarchy is found from /proc/self/mountinfo, never
 * assumed at /sys/fs/cgroup. Paths are absolute filesystem paths of cgroup
 * directories. These return -errno and never log.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Mount point of the cgroup v2 hierarchy; -ENOMEDIUM when there is none. */
int cgroup_find_v2_mount(char **ret);
/* This process's cgroup v2 path relative to the hierarchy ("/" or "/system.slice/x.service"). */
int cgroup_self_path(char **ret);
/* The same for process pid (0: this process); -ENOENT when it is gone. */
int cgroup_pid_path(pid_t pid, char **ret);

int cgroup_create(const char *path);
/* O_PATH descriptor of the cgroup directory, for CLONE_INTO_CGROUP. */
int cgroup_open(const char *path, int *ret_fd);
/* 1 when any process is in the cgroup or below, 0 when empty (cgroup.events). */
int cgroup_is_populated(const char *path);
/* SIGKILL every process in the cgroup and below (cgroup.kill). */
int cgroup_kill(const char *path);
/* Number of processes directly in the cgroup (cgroup.procs). */
int cgroup_count_procs(const char *path, unsigned *ret);
/* rmdir; -EBUSY while populated. */
int cgroup_remove(const char *path);

/* Whether a controller ("memory", "pids", "cpu") can be used by children of path. */
int cgroup_controller_available(const char *path, const char *controller);
/* Enable a controller for path's children (cgroup.subtree_control). */
int cgroup_enable_controller(const char *path, const char *controller);

int cgroup_write(const char *path, const char *attribute, const char *value);
/* The value of "key N" in a flat-keyed file such as memory.events; -ENOENT without it. */
int cgroup_read_key(const char *path, const char *attribute, const char *key, uint64_t *ret);

/* A cgroup that was removed answers ENOENT, or ENODEV through a file opened before. */
static inline bool cgroup_gone(int r) {
        return r == -ENOENT || r == -ENODEV;
}
