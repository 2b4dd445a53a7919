/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* codex_local: Codex in exec mode, its prompt on stdin, JSON events on stdout. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/strv.h"
#include "basic/util.h"
#include "control/adapter-internal.h"
#include "control/cli-output.h"
#include "store/jsonmap.h"

static int codex_argv(const AdapterConfig *ac, const char *resume, char ***argv) {
        int r;

        /* codex exec [OPTIONS] [resume SESSION] -: options come before the subcommand. */
        if ((r = strv_push(argv, ac->command ? ac->command->valuestring : "codex")) < 0 || (r = strv_push(argv, "exec")) < 0 ||
            (r = strv_push(argv, "--json")) < 0)
                return r;
        if (ac->model && ((r = strv_push(argv, "--model")) < 0 || (r = strv_push(argv, ac->model->valuestring)) < 0))
                return r;
        if (ac->skip_permissions && (r = strv_push(argv, "--dangerously-bypass-approvals-and-sandbox")) < 0)
                return r;
        if ((r = adapter_argv_add_all(argv, ac->extra_args)) < 0)
                return r;
        if (resume && ((r = strv_push(argv, "resume")) < 0 || (r = strv_push(argv, resume)) < 0))
                return r;
        return strv_push(argv, "-");
}

/* codex exec --json: "thread.started", "turn.started", "item.*", "turn.completed" with the
 * turn's usage, "turn.failed" and "error". */
static int codex_line(CliOutput *o, const cJSON *j) {
        const char *type = json_string_member(j, "type");

        if (streq_ptr(type, "thread.started"))
                return cli_output_set(&o->session_id, json_string_member(j, "thread_id"));
        if (streq_ptr(type, "item.completed")) {
                const cJSON *item = cJSON_GetObjectItemCaseSensitive(j, "item");
                return streq_ptr(json_string_member(item, "type"), "agent_message")
                        ? cli_output_set(&o->result_text, json_string_member(item, "text"))
                        : 0;
        }
        if (streq_ptr(type, "turn.completed")) {
                const cJSON *usage = cJSON_GetObjectItemCaseSensitive(j, "usage");
                /* The thread's running totals, not the turn's (a resumed thread starts from
                 * where it was): the last one counts, and finalize takes away what the
                 * session had before this run. One statement each: the first number out of
                 * range is the one named. */
                o->cumulative = true;
                o->input_tokens = cli_output_count(o, usage, "input_tokens");
                o->cached_input_tokens = cli_output_count(o, usage, "cached_input_tokens");
                o->output_tokens = cli_output_count(o, usage, "output_tokens");
                o->cache_write_input_tokens = cli_output_count(o, usage, "cache_write_input_tokens");
                o->reasoning_output_tokens = cli_output_count(o, usage, "reasoning_output_tokens");
                o->num_turns++;
                o->saw_result = true;
                o->is_error = false;
                return 0;
        }
        if (streq_ptr(type, "turn.failed")) {
                o->num_turns++;
                o->saw_result = true;
                o->is_error = true;
                return cli_output_set(&o->error_message,
                                      json_string_member(cJSON_GetObjectItemCaseSensitive(j, "error"), "message")
                                              ?: "codex reported a failed turn");
        }
        if (streq_ptr(type, "error")) /* may be followed by a retry that succeeds */
                return cli_output_set(&o->error_message, json_string_member(j, "message"));
        return 0;
}

const AdapterOps adapter_codex_ops = {
        .type = ADAPTER_CODEX_LOCAL,
        .cli = true,
        .bypass_key = "dangerouslyBypassApprovalsAndSandbox",
        .provider = "openai",
        .input_includes_cached = true,
        .default_grace_sec = ADAPTER_CLI_DEFAULT_GRACE_SEC,
        .default_idle_timeout_sec = ADAPTER_CLI_DEFAULT_IDLE_TIMEOUT_SEC,
        .argv = codex_argv,
        .output_line = codex_line,
        .cli_name = "codex",
        /* codex says on stderr alone that it cannot resume a thread:
         * "Error: thread/resume: thread/resume failed: no rollout found for thread id ...". */
        .stale_session_stderr = "no rollout found for thread id",
};
