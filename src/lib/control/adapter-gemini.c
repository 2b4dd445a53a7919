/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gemini_local: Gemini CLI headless, its prompt on stdin, stream-json events on stdout. */
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

/* gemini --output-format stream-json --skip-trust [--model M] [--resume S] [--yolo] EXTRA...
 * With no prompt argument and stdin not a terminal, the CLI runs headless on what stdin says.
 * --skip-trust: the working directory is the one its operator gave the agent, and a headless
 * run in an untrusted one stops at once. */
static int gemini_argv(const AdapterConfig *ac, const char *resume, char ***argv) {
        int r;

        if ((r = strv_push(argv, ac->command ? ac->command->valuestring : "gemini")) < 0 ||
            (r = strv_push(argv, "--output-format")) < 0 || (r = strv_push(argv, "stream-json")) < 0 ||
            (r = strv_push(argv, "--skip-trust")) < 0)
                return r;
        if (ac->model && ((r = strv_push(argv, "--model")) < 0 || (r = strv_push(argv, ac->model->valuestring)) < 0))
                return r;
        if (resume && ((r = strv_push(argv, "--resume")) < 0 || (r = strv_push(argv, resume)) < 0))
                return r;
        if (ac->skip_permissions && (r = strv_push(argv, "--yolo")) < 0)
                return r;
        return adapter_argv_add_all(argv, ac->extra_args);
}

/* gemini --output-format stream-json: "init" (session and model), "message" (the user's, then
 * the assistant's in deltas), "tool_use", "tool_result", and a final "result" with the status
 * and the invocation's stats. */
static int gemini_line(CliOutput *o, const cJSON *j) {
        const char *type = json_string_member(j, "type");
        int r;

        if (streq_ptr(type, "init")) {
                if ((r = cli_output_set(&o->session_id, json_string_member(j, "session_id"))) < 0)
                        return r;
                /* "auto" names no model: the result's stats do. */
                const char *model = json_string_member(j, "model");
                return model && !streq(model, "auto") ? cli_output_set(&o->model, model) : 0;
        }
        if (streq_ptr(type, "message")) {
                const char *content = json_string_member(j, "content");
                if (!streq_ptr(json_string_member(j, "role"), "assistant") || !content) {
                        o->continues_text = false;
                        return 0;
                }
                /* Deltas of one message add up; a message after a tool call starts anew. */
                _cleanup_free_ char *text =
                        o->continues_text && o->result_text ? strprintf("%s%s", o->result_text, content) : strdup(content);
                if (!text)
                        return -ENOMEM;
                o->continues_text = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "delta"));
                return cli_output_set(&o->result_text, text);
        }
        if (streq_ptr(type, "tool_use") || streq_ptr(type, "tool_result")) {
                o->continues_text = false;
                if (streq_ptr(type, "tool_use"))
                        o->num_turns++;
                return 0;
        }
        if (!streq_ptr(type, "result"))
                return 0;

        const cJSON *stats = cJSON_GetObjectItemCaseSensitive(j, "stats"), *error = cJSON_GetObjectItemCaseSensitive(j, "error"),
                    *models = cJSON_GetObjectItemCaseSensitive(stats, "models");
        o->saw_result = true;
        o->is_error = !streq_ptr(json_string_member(j, "status"), "success");
        /* The invocation's totals. Input includes what came from the cache; the thoughts are
         * what the total holds beyond input and output. One statement each: the first number
         * out of range is the one named. */
        o->input_tokens = cli_output_count(o, stats, "input_tokens");
        o->cached_input_tokens = cli_output_count(o, stats, "cached");
        o->output_tokens = cli_output_count(o, stats, "output_tokens");
        int64_t total = cli_output_count(o, stats, "total_tokens");
        if (total > o->input_tokens && total - o->input_tokens > o->output_tokens)
                o->reasoning_output_tokens = total - o->input_tokens - o->output_tokens;
        o->num_turns++;
        /* The model that answered, when one did ("auto" routes between several). */
        if (!o->model && cJSON_GetArraySize(models) == 1 && (r = cli_output_set(&o->model, models->child->string)) < 0)
                return r;
        if (!o->is_error)
                return 0;
        _cleanup_free_ char *m = json_string_member(error, "message")
                ? strprintf("gemini: %s", json_string_member(error, "message"))
                : strprintf("gemini reported %s", strna(json_string_member(j, "status")));
        return m ? cli_output_set(&o->error_message, m) : -ENOMEM;
}

const AdapterOps adapter_gemini_ops = {
        .type = ADAPTER_GEMINI_LOCAL,
        .cli = true,
        .bypass_key = "yolo",
        .input_includes_cached = true,
        .provider = "google",
        .default_grace_sec = ADAPTER_CLI_DEFAULT_GRACE_SEC,
        .default_idle_timeout_sec = ADAPTER_CLI_DEFAULT_IDLE_TIMEOUT_SEC,
        .argv = gemini_argv,
        .output_line = gemini_line,
        .cli_name = "gemini",
        /* The CLI says on stderr alone that it cannot resume a session:
         * "Error resuming session: Invalid session identifier "...".", and only then how to list them. */
        .stale_session_stderr = "Error resuming session",
};
