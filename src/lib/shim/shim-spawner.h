/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The shim spawner: one long-lived corral-shim (`corral-shim --spawner`, started by
 * corrald) that starts the shims of runs by forking itself instead of executing the shim
 * anew each time. An execve costs far more than a fork of a small static process, and it
 * was the longest step between a wake and the agent's first instruction.
 *
 * corrald sends one request per run on a SOCK_SEQPACKET socket (the spawner's fd 3): the
 * header below, then NUL-terminated strings (the working directory, the shim's argv as
 * it would be executed, the agent's environment), with the shim's go and report pipes
 * and optionally the run's cgroup as SCM_RIGHTS. The spawner answers each request, in order,
 * with a ShimSpawnReply (the new shim's pid and start time) and, on success, its pidfd. The shim is created with
 * clone3(CLONE_PARENT | CLONE_PIDFD | CLONE_INTO_CGROUP): a child of corrald, born in its
 * run's cgroup, exactly as if corrald had cloned and executed it. EOF on the socket (corrald
 * gone) ends the spawner; the shims it started do not depend on it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHIM_SPAWNER_ARG "--spawner"
#define SHIM_FD_SPAWNER 3

#define SHIM_SPAWN_MAGIC UINT32_C(0x31505343) /* "CSP1" */
/* One request at most: a launch whose command line and environment need more is executed
 * by corrald directly. */
#define SHIM_SPAWN_REQUEST_MAX (1024 * 1024)
#define SHIM_SPAWN_ARGV_MAX 8192
#define SHIM_SPAWN_ENV_MAX 4096

/* flags */
#define SHIM_SPAWN_CGROUP UINT32_C(1) /* a third descriptor: the cgroup to clone into */

typedef struct ShimSpawnHeader {
        uint32_t magic;
        uint32_t flags;
        uint32_t n_argv; /* corral-shim RUN_DIR AGENT [ARGS...] */
        uint32_t n_env;
} ShimSpawnHeader;

typedef struct ShimSpawnReply {
        int32_t pid; /* > 0 with the pidfd attached; 0 on failure */
        int32_t error; /* errno of a failure, 0 on success */
        uint64_t start_ticks; /* the shim's start time (pid_start_ticks()), 0 if unknown */
} ShimSpawnReply;

typedef struct ShimSpawnRequest {
        uint32_t flags;
        const char *cwd;
        char **argv; /* NULL-terminated, pointing into the request's buffer */
        char **env;
        size_t n_argv;
} ShimSpawnRequest;

/* Encode a request into a new buffer. -E2BIG when it exceeds SHIM_SPAWN_REQUEST_MAX or the
 * counts above. */
int shim_spawn_request_encode(const char *cwd, char *const *argv, char *const *env, bool cgroup, char **ret_buf,
                              size_t *ret_size);

/* Parse a received request in place: ret points into buf, which must stay alive. -EBADMSG
 * for anything malformed. Free with shim_spawn_request_done(). */
int shim_spawn_request_parse(char *buf, size_t size, ShimSpawnRequest *ret);
void shim_spawn_request_done(ShimSpawnRequest *r);

/* The spawner's loop; returns the exit status once corrald closes the socket. */
int shim_spawner_main(void);
