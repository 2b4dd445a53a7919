/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* claude_local: Claude Code in print mode, its prompt on stdin, stream-json on stdout. */
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

static int claude_config(const cJSON *c, AdapterConfig *ret, char **ret_error) {
        return adapter_get_uint(c, "maxTurnsPerRun", 0, 100000, &ret->max_turns, ret_error);
}

/* claude --print --output-format stream-json --verbose [--resume S] [--model M]
 * [--max-turns N] [--dangerously-skip-permissions] EXTRA... (design §6). The prompt is on
 * stdin: --print with no prompt reads it there ("-" would be a prompt of its own, that the
 * model gets before the real one). */
static int claude_argv(const AdapterConfig *ac, const char *resume, char ***argv) {
        char turns[32];
        int r;

        if ((r = strv_push(argv, ac->command ? ac->command->valuestring : "claude")) < 0 ||
            (r = strv_push(argv, "--print")) < 0 || (r = strv_push(argv, "--output-format")) < 0 ||
            (r = strv_push(argv, "stream-json")) < 0 || (r = strv_push(argv, "--verbose")) < 0)
                return r;
        if (resume && ((r = strv_push(argv, "--resume")) < 0 || (r = strv_push(argv, resume)) < 0))
                return r;
        if (ac->model && ((r = strv_push(argv, "--model")) < 0 || (r = strv_push(argv, ac->model->valuestring)) < 0))
                return r;
        snprintf(turns, sizeof(turns), "%" PRIu64, ac->max_turns);
        if (ac->max_turns > 0 && ((r = strv_push(argv, "--max-turns")) < 0 || (r = strv_push(argv, turns)) < 0))
                return r;
        if (ac->skip_permissions && (r = strv_push(argv, "--dangerously-skip-permissions")) < 0)
                return r;
        return adapter_argv_add_all(argv, ac->extra_args);
}

/* The model as the API names it: the init line's may carry the CLI's own suffix of a variant
 * ("claude-opus-4-1[1m]" on a fresh session, and not on a resumed one). */
static int set_model(CliOutput *o, const char *model) {
        _cleanup_free_ char *name = NULL;

        if (!model)
                return 0;
        name = strndup(model, strcspn(model, "["));
        return name ? cli_output_set(&o->model, name) : -ENOMEM;
}

/* The CLI's "errors" array, joined: what it says went wrong, in its own words. NULL when
 * there is none. */
static char *claude_errors(const cJSON *j) {
        const cJSON *e;
        char *text = NULL;

        cJSON_ArrayForEach (e, cJSON_GetObjectItemCaseSensitive(j, "errors")) {
                if (!cJSON_IsString(e))
                        continue;
                char *joined = text ? strprintf("%s; %s", text, e->valuestring) : strdup(e->valuestring);
                free(text);
                if (!joined)
                        return NULL;
                text = joined;
        }
        return text;
}

/* An assistant message's usage, counted while the run streams, so that a budget can stop it
 * before its result line gives the totals (corrald(8), BUDGETS). Every line of one message
 * repeats its usage, growing as the message does: the last one counts, once. */
static int message_usage(CliOutput *o, const cJSON *message) {
        const cJSON *usage = cJSON_GetObjectItemCaseSensitive(message, "usage");
        const char *id = json_string_member(message, "id");
        int64_t input, cached, output;
        int r;

        if (!cJSON_IsObject(usage))
                return 0;
        input = cli_count_add(cli_output_count(o, usage, "input_tokens"),
                              cli_output_count(o, usage, "cache_creation_input_tokens"));
        cached = cli_output_count(o, usage, "cache_read_input_tokens");
        output = cli_output_count(o, usage, "output_tokens");
        if (id && streq_ptr(id, o->message_id)) {
                /* The same message again: its earlier count is taken back. Never below 0:
                 * the counts saturate, and a saturated one stays. */
                o->input_tokens -= MIN(o->input_tokens, o->message_input);
                o->cached_input_tokens -= MIN(o->cached_input_tokens, o->message_cached);
                o->output_tokens -= MIN(o->output_tokens, o->message_output);
        } else if ((r = free_and_strdup(&o->message_id, id)) < 0)
                return r;
        o->message_input = input;
        o->message_cached = cached;
        o->message_output = output;
        o->input_tokens = cli_count_add(o->input_tokens, input);
        o->cached_input_tokens = cli_count_add(o->cached_input_tokens, cached);
        o->output_tokens = cli_count_add(o->output_tokens, output);
        return 0;
}

/* claude --print --output-format stream-json --verbose: "system" (init), "assistant",
 * "user" (tool results) and a final "result" line with the totals. */
static int claude_line(CliOutput *o, const cJSON *j) {
        const char *type = json_string_member(j, "type");
        int r;

        if ((r = cli_output_set(&o->session_id, json_string_member(j, "session_id"))) < 0)
                return r;
        if (streq_ptr(type, "system"))
                return o->model ? 0 : set_model(o, json_string_member(j, "model"));
        if (streq_ptr(type, "assistant")) {
                const cJSON *message = cJSON_GetObjectItemCaseSensitive(j, "message");
                if ((r = set_model(o, json_string_member(message, "model"))) < 0)
                        return r;
                if (!o->saw_result && (r = message_usage(o, message)) < 0)
                        return r;
                _cleanup_free_ char *text = cli_text_blocks(message);
                if (text && !o->saw_result)
                        return cli_output_set(&o->result_text, text);
                return 0;
        }
        if (!streq_ptr(type, "result"))
                return 0;

        const char *subtype = json_string_member(j, "subtype"), *result = json_string_member(j, "result");
        const cJSON *usage = cJSON_GetObjectItemCaseSensitive(j, "usage"),
                    *cost = cJSON_GetObjectItemCaseSensitive(j, "total_cost_usd"),
                    *is_error = cJSON_GetObjectItemCaseSensitive(j, "is_error");

        o->saw_result = true;
        o->is_error = cJSON_IsTrue(is_error) || (subtype && !streq(subtype, "success"));
        /* The result line carries the invocation's totals: they replace, not add. Tokens
         * written to the prompt cache are billed as input, so they count as input here. */
        /* One statement each: the first number out of range is the one named. */
        o->input_tokens = cli_output_count(o, usage, "input_tokens");
        o->input_tokens = cli_count_add(o->input_tokens, cli_output_count(o, usage, "cache_creation_input_tokens"));
        o->cached_input_tokens = cli_output_count(o, usage, "cache_read_input_tokens");
        o->output_tokens = cli_output_count(o, usage, "output_tokens");
        o->num_turns = cli_output_count(o, j, "num_turns");
        /* A cost no run could have had (1e308, say, from a CLI that a model took over) is no
         * cost: cents of it overflow, and the run's end could not be recorded. */
        if (cJSON_IsNumber(cost) && isfinite(cost->valuedouble) && cost->valuedouble >= 0 &&
            cost->valuedouble <= CLI_COST_USD_MAX) {
                o->cost_usd = cost->valuedouble;
                o->has_cost = true;
        } else if (cost && !cJSON_IsNull(cost)) {
                r = cli_output_invalid(o, "total_cost_usd", cost);
                if (r < 0)
                        return r;
        }
        if ((r = cli_output_set(&o->result_text, result)) < 0)
                return r;
        if (!o->is_error)
                return 0;
        /* Its reason, in its own words: the "errors" it lists (a max-turns stop names the
         * limit there; the turn count does not: a tool call and its answer are two), else
         * the result text of an API error ("API Error: 400 ..."), else the subtype. */
        _cleanup_free_ char *errors = claude_errors(j);
        const cJSON *api_status = cJSON_GetObjectItemCaseSensitive(j, "api_error_status");
        if (streq_ptr(subtype, "error_max_turns"))
                o->error_code = "max_turns_exhausted";
        if (errors && strstr(errors, adapter_claude_ops.stale_session_stdout))
                return cli_output_stale_session(o, "claude", errors);
        _cleanup_free_ char *m = errors                    ? strprintf("claude: %s", errors)
                : streq_ptr(subtype, "error_max_turns")    ? strdup("claude stopped after reaching its maximum number of turns")
                : cJSON_IsNumber(api_status) && result     ? strprintf("claude: %s", result)
                : result && !streq_ptr(subtype, "success") ? strprintf("claude: %s: %s", strna(subtype), result)
                : result                                   ? strprintf("claude: %s", result)
                                                           : strprintf("claude reported %s", strna(subtype));
        return m ? cli_output_set(&o->error_message, m) : -ENOMEM;
}

const AdapterOps adapter_claude_ops = {
        .type = ADAPTER_CLAUDE_LOCAL,
        .cli = true,
        .bypass_key = "dangerouslySkipPermissions",
        .cli_name = "claude",
        .provider = "anthropic",
        .default_grace_sec = ADAPTER_CLI_DEFAULT_GRACE_SEC,
        .default_idle_timeout_sec = ADAPTER_CLI_DEFAULT_IDLE_TIMEOUT_SEC,
        .parse_config = claude_config,
        .argv = claude_argv,
        .output_line = claude_line,
        /* claude says it in its result's errors: "No conversation found with session ID: ...". */
        .stale_session_stdout = "No conversation found with session ID",
};
