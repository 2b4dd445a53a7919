/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Adapters turn an agent's adapterConfig and a run into what the supervisor
 * launches (design §6): command line, environment, working directory, stdin,
 * timeouts and limits.
 */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/model.h"
#include "supervise/supervisor.h"

/* Defaults (design §3 difference 6: a run never holds its agent's slot forever). */
#define ADAPTER_DEFAULT_TIMEOUT_SEC 3600
#define ADAPTER_DEFAULT_GRACE_SEC 15
#define ADAPTER_CLI_DEFAULT_GRACE_SEC 20
#define ADAPTER_CLI_DEFAULT_IDLE_TIMEOUT_SEC 900
#define ADAPTER_ARGS_MAX 4096
#define ADAPTER_ENV_MAX 1024

typedef struct AdapterLaunch {
        LaunchSpec spec; /* points into the fields below */
        char **argv;
        char **env;
        char *cwd;
        char *stdin_text;
        char *context_json;
        char *issue_id;
        /* A coding CLI that resumes a session: what it says on stderr when it cannot, and
         * its command line afresh, each NUL-terminated (the shim's again file); else NULL. */
        char *again;
        size_t again_size;
} AdapterLaunch;

void adapter_launch_done(AdapterLaunch *l);

typedef struct AdapterConfig AdapterConfig;

/* What a coding CLI's runs may spend (corrald(8), BUDGETS). */
typedef struct AdapterBudget {
        uint64_t max_cost_cents_per_run; /* adapterConfig.maxCostCentsPerRun; 0: no cap */
        uint64_t max_tokens_per_run; /* adapterConfig.maxTokensPerRun; 0: no cap */
        bool subscription; /* billingType "subscription_included": its runs cost nothing */
} AdapterBudget;

/* The caps and billing of an agent's runs; all 0 for the process adapter. */
int adapter_budget(const Agent *agent, AdapterBudget *ret);
typedef struct CliOutput CliOutput;

/* What makes one adapter type what it is; everything else is the same for all. */
typedef struct AdapterOps {
        AdapterType type;
        bool cli; /* a coding CLI: its prompt on stdin, JSON lines on stdout, resumable sessions */
        const char *bypass_key; /* the adapterConfig key that skips the CLI's permission prompts */
        const char *provider; /* whose model the CLI calls, for usageJson */
        uint64_t default_grace_sec, default_idle_timeout_sec;
        /* The adapter's own adapterConfig keys, past the common ones; may be NULL. */
        int (*parse_config)(const cJSON *c, AdapterConfig *ret, char **ret_error);
        /* A coding CLI's command line, resuming session resume (may be NULL). */
        int (*argv)(const AdapterConfig *ac, const char *resume, char ***argv);
        /* One JSON line of a coding CLI's stdout, into what the run reports. */
        int (*output_line)(CliOutput *o, const cJSON *line);
        /* Its inputTokens count the cached ones too (OpenAI's and Gemini's way), rather than
         * those sent anew alone (Anthropic's): what pricing takes apart. */
        bool input_includes_cached;
        /* The CLI's name in the errors it is quoted in ("codex: ..."). */
        const char *cli_name;
        /* What the CLI prints on stderr, alone, when it cannot resume the session it was
         * given; NULL when it says so elsewhere, or never. */
        const char *stale_session_stderr;
        /* The same, said on stdout (in its result); NULL when it says so on stderr, or never. */
        const char *stale_session_stdout;
} AdapterOps;

/* Never NULL: an unknown type gets the process adapter's. */
const AdapterOps *adapter_ops(AdapterType type);

/* Build the launch of run for agent; a coding CLI resumes run->session_id_before when set.
 * socket_path is the run's CORRAL_SOCKET, home its HOME and, without adapterConfig.cwd, its
 * working directory; secrets (names and values alternating, may be NULL) give the values
 * of the environment's secret variables. Invalid configuration: -EINVAL and a message. */
int adapter_build_launch(const Agent *agent, const Run *run, const char *socket_path, const char *home, char *const *secrets,
                         AdapterLaunch *ret, char **ret_error);

/* Take the secret values out of an adapterConfig about to be stored: every
 * env.NAME = {"secret": "VALUE"} becomes {"secret": true}, and NAME, VALUE are appended to
 * *ret_secrets; *ret_names gets the name of every secret variable the config has, new or
 * kept. A {"secret": true} that keeps a value is fine only where one is stored: the caller
 * checks that against its store. *config_json is replaced. */
int adapter_take_secrets(char **config_json, char ***ret_secrets, char ***ret_names);

/* Check an adapterConfig when an agent is created or changed; -EINVAL and a message. */
int adapter_validate_config(AdapterType type, const char *config_json, char **ret_error);
