/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What adapter.c shares with the adapters of adapter-*.c. */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control/adapter.h"

/* An agent's adapterConfig, checked; the JSON values point into the parsed config. */
typedef struct AdapterConfig {
        AdapterType type;
        const cJSON *command, *args, *cwd, *env, *stdin_text;
        /* coding CLIs */
        const cJSON *model, *extra_args, *prompt_template;
        uint64_t max_turns;
        bool skip_permissions;
        AdapterBudget budget;
        uint64_t timeout_sec, grace_sec, idle_timeout_sec;
        RunLimits limits;
} AdapterConfig;

/* adapterConfig members, each checked with a message naming it. */
int adapter_get_uint(const cJSON *o, const char *name, uint64_t def, uint64_t max, uint64_t *ret, char **ret_error);
int adapter_get_bool(const cJSON *o, const char *name, bool *ret, char **ret_error);
int adapter_check_string_array(const cJSON *a, const char *name, char **ret_error);

/* Append the strings of a JSON array to a strv. */
int adapter_argv_add_all(char ***argv, const cJSON *strings);

extern const AdapterOps adapter_process_ops, adapter_claude_ops, adapter_codex_ops, adapter_gemini_ops, adapter_pi_ops,
        adapter_opencode_ops;
