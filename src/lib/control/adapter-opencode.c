/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* opencode_local: OpenCode's run command, its prompt on stdin, JSON events on stdout. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/strv.h"
#include "basic/util.h"
#include "control/adapter-internal.h"
#include "control/cli-output.h"
#include "store/jsonmap.h"

/* opencode run --format json --title corral [--model PROVIDER/MODEL] [--session S] EXTRA...
 * With no message argument and stdin not a terminal, the message is what stdin says. A title
 * given spares a request to the model for one. In run mode OpenCode asks no permission for
 * its tools unless its configuration says so. */
static int opencode_argv(const AdapterConfig *ac, const char *resume, char ***argv) {
        int r;

        if ((r = strv_push(argv, ac->command ? ac->command->valuestring : "opencode")) < 0 || (r = strv_push(argv, "run")) < 0 ||
            (r = strv_push(argv, "--format")) < 0 || (r = strv_push(argv, "json")) < 0 || (r = strv_push(argv, "--title")) < 0 ||
            (r = strv_push(argv, "corral")) < 0)
                return r;
        if (ac->model && ((r = strv_push(argv, "--model")) < 0 || (r = strv_push(argv, ac->model->valuestring)) < 0))
                return r;
        if (resume && ((r = strv_push(argv, "--session")) < 0 || (r = strv_push(argv, resume)) < 0))
                return r;
        return adapter_argv_add_all(argv, ac->extra_args);
}

/* opencode run --format json: one object a line, each with its sessionID and a "part":
 * "step_start", "text" (part.text, the assistant's), "tool_use" (part.state), "step_finish"
 * (part.tokens and part.cost, the step's own: they add up over the run), and "error"
 * (error.name, error.data.message). */
static int opencode_line(CliOutput *o, const cJSON *j) {
        const char *type = json_string_member(j, "type");
        const cJSON *part = cJSON_GetObjectItemCaseSensitive(j, "part");
        int r;

        /* Every line names its session; the last one's is the run's (a run started again
         * afresh has a new one). */
        const char *session = json_string_member(j, "sessionID");
        if (session && !streq_ptr(session, o->session_id) && (r = cli_output_set(&o->session_id, session)) < 0)
                return r;
        if (streq_ptr(type, "text"))
                return cli_output_set(&o->result_text, json_string_member(part, "text"));
        if (streq_ptr(type, "error")) {
                const cJSON *error = cJSON_GetObjectItemCaseSensitive(j, "error");
                const char *why = json_string_member(cJSON_GetObjectItemCaseSensitive(error, "data"), "message")
                        ?: json_string_member(error, "name");
                _cleanup_free_ char *m = strprintf("opencode: %s", why ?: "it reported an error");
                o->saw_result = true;
                o->is_error = true;
                return m ? cli_output_set(&o->error_message, m) : -ENOMEM;
        }
        if (!streq_ptr(type, "step_finish"))
                return 0;

        const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(part, "tokens"),
                    *cache = cJSON_GetObjectItemCaseSensitive(tokens, "cache"),
                    *cost = cJSON_GetObjectItemCaseSensitive(part, "cost");
        /* One statement each: the first number out of range is the one named. */
        int64_t written = cli_output_count(o, cache, "write");
        int64_t input = cli_output_count(o, tokens, "input");
        int64_t cached = cli_output_count(o, cache, "read");
        int64_t output = cli_output_count(o, tokens, "output");
        int64_t reasoning = cli_output_count(o, tokens, "reasoning");
        cli_output_add_step(o, input, cached, written, output);
        o->reasoning_output_tokens = cli_count_add(o->reasoning_output_tokens, reasoning);
        if ((r = cli_output_add_cost(o, cost, "part.cost")) < 0)
                return r;
        o->num_turns++;
        /* A step that ends for another reason than a tool call is the run's last. */
        if (!streq_ptr(json_string_member(part, "reason"), "tool-calls")) {
                o->saw_result = true;
                o->is_error = false;
        }
        return 0;
}

const AdapterOps adapter_opencode_ops = {
        .type = ADAPTER_OPENCODE_LOCAL,
        .cli = true,
        .provider = NULL, /* whichever the model names */
        .default_grace_sec = ADAPTER_CLI_DEFAULT_GRACE_SEC,
        .default_idle_timeout_sec = ADAPTER_CLI_DEFAULT_IDLE_TIMEOUT_SEC,
        .argv = opencode_argv,
        .output_line = opencode_line,
        .cli_name = "opencode",
        /* opencode says on stderr alone that it has no such session: "Error: Session not found". */
        .stale_session_stderr = "Session not found",
};
