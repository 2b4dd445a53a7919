/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* pi_local: the pi coding agent in print mode, its prompt on stdin, JSON events on stdout. */
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

/* pi --print --mode json [--model M] [--session S] EXTRA... The model may name its provider
 * ("anthropic/claude-sonnet-4-5"); pi asks no permission for its tools. */
static int pi_argv(const AdapterConfig *ac, const char *resume, char ***argv) {
        int r;

        if ((r = strv_push(argv, ac->command ? ac->command->valuestring : "pi")) < 0 || (r = strv_push(argv, "--print")) < 0 ||
            (r = strv_push(argv, "--mode")) < 0 || (r = strv_push(argv, "json")) < 0)
                return r;
        if (ac->model && ((r = strv_push(argv, "--model")) < 0 || (r = strv_push(argv, ac->model->valuestring)) < 0))
                return r;
        if (resume && ((r = strv_push(argv, "--session")) < 0 || (r = strv_push(argv, resume)) < 0))
                return r;
        return adapter_argv_add_all(argv, ac->extra_args);
}

/* pi --mode json: a "session" header (its id), then the agent's events; each assistant
 * message ends with "message_end", carrying its own usage and cost, its model and why it
 * stopped ("stop", "toolUse", "error" with errorMessage, "aborted"). */
static int pi_line(CliOutput *o, const cJSON *j) {
        const char *type = json_string_member(j, "type");
        int r;

        if (streq_ptr(type, "session"))
                return cli_output_set(&o->session_id, json_string_member(j, "id"));
        if (streq_ptr(type, "turn_end")) {
                o->num_turns++;
                return 0;
        }
        if (streq_ptr(type, "agent_end")) {
                o->saw_result = true;
                return 0;
        }
        const cJSON *message = cJSON_GetObjectItemCaseSensitive(j, "message");
        if (!streq_ptr(type, "message_end") || !streq_ptr(json_string_member(message, "role"), "assistant"))
                return 0;

        const cJSON *usage = cJSON_GetObjectItemCaseSensitive(message, "usage"),
                    *cost = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(usage, "cost"), "total");
        const char *stop = json_string_member(message, "stopReason");
        /* Each message's own usage: they add up over the invocation. One statement each: the
         * first number out of range is the one named. */
        int64_t written = cli_output_count(o, usage, "cacheWrite");
        int64_t input = cli_output_count(o, usage, "input");
        int64_t cached = cli_output_count(o, usage, "cacheRead");
        int64_t output = cli_output_count(o, usage, "output");
        cli_output_add_step(o, input, cached, written, output);
        if ((r = cli_output_add_cost(o, cost, "usage.cost.total")) < 0)
                return r;
        if ((r = cli_output_set(&o->model, json_string_member(message, "model"))) < 0 ||
            (r = cli_output_set(&o->provider, json_string_member(message, "provider"))) < 0)
                return r;
        _cleanup_free_ char *text = cli_text_blocks(message);
        if (text && (r = cli_output_set(&o->result_text, text)) < 0)
                return r;
        /* The last message decides: an error a retry got past is no failure. */
        o->is_error = streq_ptr(stop, "error") || streq_ptr(stop, "aborted");
        if (!o->is_error)
                return 0;
        const char *why = json_string_member(message, "errorMessage");
        _cleanup_free_ char *m = why ? strprintf("pi: %s", why) : strprintf("pi stopped: %s", stop);
        return m ? cli_output_set(&o->error_message, m) : -ENOMEM;
}

const AdapterOps adapter_pi_ops = {
        .type = ADAPTER_PI_LOCAL,
        .cli = true,
        .provider = NULL, /* whichever the model names */
        .default_grace_sec = ADAPTER_CLI_DEFAULT_GRACE_SEC,
        .default_idle_timeout_sec = ADAPTER_CLI_DEFAULT_IDLE_TIMEOUT_SEC,
        .argv = pi_argv,
        .output_line = pi_line,
        .cli_name = "pi",
        /* pi says on stderr alone that it has no such session: "No session found matching '...'". */
        .stale_session_stderr = "No session found matching",
};
