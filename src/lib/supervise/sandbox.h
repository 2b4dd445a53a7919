/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * corrald's half of the agent sandbox (corrald(8), SECURITY): who an agent runs as,
 * what it sees, which system calls it may make. It turns an agent's
 * adapterConfig.sandbox into the policy file the shim enforces (shim-sandbox.h) and
 * the seccomp program beside it, and owns the agents' home directories.
 */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/macro.h"
#include "store/model.h"
#include "store/store.h"
#include "supervise/supervisor.h"

typedef struct SandboxSettings {
        bool enabled; /* false: agents run unconfined, as corrald does */
        uint32_t uid_min, uid_max;
        const char *state_dir; /* hidden; homes/<agent> below it */
        const char *operator_socket; /* hidden */
        const char *agent_socket; /* shown */
        const char *config_dir; /* hidden */
} SandboxSettings;

typedef struct Sandbox Sandbox;

int sandbox_new(const SandboxSettings *settings, Sandbox **ret);
Sandbox *sandbox_free(Sandbox *sb);
DEFINE_TRIVIAL_CLEANUP_FUNC(Sandbox *, sandbox_free);

/* Check adapterConfig.sandbox (policy may be NULL: the defaults). -EINVAL and a message. */
int sandbox_validate_policy(const cJSON *policy, char **ret_error);

/* The user an adapterConfig names in sandbox.user (NULL: corral's own uid for the agent).
 * Only root may choose it: it decides whose files the agent can write. */
int sandbox_config_user(const char *adapter_config_json, char **ret_user);

/* The agent's home: its HOME and, without a cwd, its working directory. A new string. */
char *sandbox_home_path(Sandbox *sb, const char *agent_id);
/* In every home: the default working directory of a coding CLI, which keeps its own
 * configuration and sessions in the home (~/.claude, ~/.codex), out of what it works on. */
#define SANDBOX_WORKSPACE_DIR "workspace"

#define SANDBOX_RUN_FILES_MAX 4

typedef struct SandboxLaunch {
        bool confined; /* the shim is told to read the policy file */
        uint32_t uid, gid; /* whom the agent runs as, when confined */
        RunFile files[SANDBOX_RUN_FILES_MAX]; /* point into the fields below */
        size_t n_files;
        char *policy;
        void *filter;
        size_t filter_size;
        char *passwd, *group;
        char *warning; /* to say at this launch, in the journal and the run's events */
        IpPrefix ip_allow[RUN_IP_ALLOW_MAX]; /* the run's only IP peers, when n_ip_allow > 0 */
        size_t n_ip_allow;
} SandboxLaunch;

void sandbox_launch_done(SandboxLaunch *l);

/* Make the agent's home (its own, when confined) and, unless the sandbox is off, the
 * policy for one run of agent in run_dir with working directory cwd. The agent's uid is
 * allocated on its first run. Failures that are the configuration's: -EINVAL and a
 * message (the run fails as launch_failed with it). */
int sandbox_prepare(Sandbox *sb, Store *store, const Agent *agent, const char *run_dir, const char *cwd,
                    const char *const *read_only, SandboxLaunch *ret, char **ret_error);
