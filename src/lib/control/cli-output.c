/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "control/cli-output.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "store/jsonmap.h"
#include "supervise/runlog.h"

void cli_output_done(CliOutput *o) {
        free(o->session_id);
        free(o->model);
        free(o->result_text);
        free(o->error_message);
        free(o->first_malformed);
        *o = (CliOutput){};
}

/* Replace *p with a copy of s when s is set; a later line wins. */
static int set(char **p, const char *s) {
        return s ? free_and_strdup(p, s) : 0;
}

/* The text blocks of a claude assistant message, joined by newlines. */
static char *claude_message_text(const cJSON *message) {
        const cJSON *block;
        char *text = NULL;

        cJSON_ArrayForEach (block, cJSON_GetObjectItemCaseSensitive(message, "content")) {
                const char *t = streq_ptr(json_string_member(block, "type"), "text") ? json_string_member(block, "text") : NULL;
                if (!t)
                        continue;
                char *joined = text ? strprintf("%s\n%s", text, t) : strdup(t);
                free(text);
                if (!joined)
                        return NULL;
                text = joined;
        }
        return text;
}

/* claude --print --output-format stream-json --verbose: "system" (init), "assistant",
 * "user" (tool results) and a final "result" line with the totals. */
static int claude_line(CliOutput *o, const cJSON *j) {
        const char *type = json_string_member(j, "type");
        int r;

        if ((r = set(&o->session_id, json_string_member(j, "session_id"))) < 0)
                return r;
        if (streq_ptr(type, "system"))
                return set(&o->model, json_string_member(j, "model"));
        if (streq_ptr(type, "assistant")) {
                const cJSON *message = cJSON_GetObjectItemCaseSensitive(j, "message");
                if (!o->model && (r = set(&o->model, json_string_member(message, "model"))) < 0)
                        return r;
                _cleanup_free_ char *text = claude_message_text(message);
                if (text && !o->saw_result)
                        return set(&o->result_text, text);
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
        o->input_tokens = json_count_member(usage, "input_tokens") + json_count_member(usage, "cache_creation_input_tokens");
        o->cached_input_tokens = json_count_member(usage, "cache_read_input_tokens");
        o->output_tokens = json_count_member(usage, "output_tokens");
        o->num_turns = json_count_member(j, "num_turns");
        /* A cost no run could have had (1e308, say, from a CLI that a model took over) is no
         * cost: cents of it overflow, and the run's end could not be recorded. */
        if (cJSON_IsNumber(cost) && isfinite(cost->valuedouble) && cost->valuedouble >= 0 &&
            cost->valuedouble <= CLI_COST_USD_MAX) {
                o->cost_usd = cost->valuedouble;
                o->has_cost = true;
        }
        if ((r = set(&o->result_text, result)) < 0)
                return r;
        if (streq_ptr(subtype, "error_max_turns")) {
                o->error_code = "max_turns_exhausted";
                _cleanup_free_ char *m =
                        strprintf("claude stopped after reaching its maximum number of turns (%" PRIi64 ")", o->num_turns);
                return set(&o->error_message, m ?: "claude stopped after reaching its maximum number of turns");
        }
        if (o->is_error) {
                _cleanup_free_ char *m =
                        strprintf("claude reported %s%s%s", strna(subtype), result ? ": " : "", strempty(result));
                return m ? set(&o->error_message, m) : -ENOMEM;
        }
        return 0;
}

/* codex exec --json: "thread.started", "turn.started", "item.*", "turn.completed" with the
 * turn's usage, "turn.failed" and "error". */
static int codex_line(CliOutput *o, const cJSON *j) {
        const char *type = json_string_member(j, "type");

        if (streq_ptr(type, "thread.started"))
                return set(&o->session_id, json_string_member(j, "thread_id"));
        if (streq_ptr(type, "item.completed")) {
                const cJSON *item = cJSON_GetObjectItemCaseSensitive(j, "item");
                return streq_ptr(json_string_member(item, "type"), "agent_message")
                        ? set(&o->result_text, json_string_member(item, "text"))
                        : 0;
        }
        if (streq_ptr(type, "turn.completed")) {
                const cJSON *usage = cJSON_GetObjectItemCaseSensitive(j, "usage");
                /* Each turn reports its own usage: they add up over the invocation. */
                o->input_tokens += json_count_member(usage, "input_tokens");
                o->cached_input_tokens += json_count_member(usage, "cached_input_tokens");
                o->output_tokens += json_count_member(usage, "output_tokens");
                o->num_turns++;
                o->saw_result = true;
                o->is_error = false;
                return 0;
        }
        if (streq_ptr(type, "turn.failed")) {
                o->num_turns++;
                o->saw_result = true;
                o->is_error = true;
                return set(&o->error_message,
                           json_string_member(cJSON_GetObjectItemCaseSensitive(j, "error"), "message")
                                   ?: "codex reported a failed turn");
        }
        if (streq_ptr(type, "error")) /* may be followed by a retry that succeeds */
                return set(&o->error_message, json_string_member(j, "message"));
        return 0;
}

int cli_output_feed_line(CliOutput *o, AdapterType type, const char *line, size_t size) {
        _cleanup_json_ cJSON *j = NULL;

        while (size > 0 && (line[size - 1] == '\r' || line[size - 1] == ' ' || line[size - 1] == '\t'))
                size--;
        if (size == 0)
                return 0; /* blank lines are not worth a warning */
        if (size <= CLI_OUTPUT_LINE_MAX)
                j = cJSON_ParseWithLength(line, size);
        if (!cJSON_IsObject(j)) {
                if (o->malformed++ == 0) {
                        o->first_malformed = strndup(line, MIN(size, (size_t) 120));
                        if (!o->first_malformed)
                                return -ENOMEM;
                }
                return -EBADMSG;
        }
        o->lines++;
        o->type = type;
        switch (type) {
        case ADAPTER_CLAUDE_LOCAL:
                return claude_line(o, j);
        case ADAPTER_CODEX_LOCAL:
                return codex_line(o, j);
        default:
                return 0;
        }
}

typedef struct LineSplitter {
        CliOutput *out;
        AdapterType type;
        char *buf; /* the current, incomplete stdout line */
        size_t size, allocated;
        bool overlong; /* the current line is past CLI_OUTPUT_LINE_MAX: drop it */
} LineSplitter;

static int end_line(LineSplitter *s) {
        int r = 0;

        if (s->overlong) {
                s->out->malformed++;
                s->overlong = false;
        } else
                r = cli_output_feed_line(s->out, s->type, s->buf ?: "", s->size);
        s->size = 0;
        return r == -EBADMSG ? 0 : r;
}

static int on_chunk(int stream, const char *data, size_t size, void *userdata) {
        LineSplitter *s = userdata;
        int r;

        if (stream != 0)
                return 0; /* the JSON lines are on stdout; stderr is for people */
        while (size > 0) {
                const char *nl = memchr(data, '\n', size);
                size_t n = nl ? (size_t) (nl - data) : size;

                if (!s->overlong && s->size + n > CLI_OUTPUT_LINE_MAX) {
                        s->overlong = true;
                        s->size = 0;
                }
                if (!s->overlong) {
                        if (s->size + n + 1 > s->allocated) {
                                size_t a = MAX(s->allocated * 2, s->size + n + 1);
                                char *t = realloc(s->buf, a);
                                if (!t)
                                        return -ENOMEM;
                                s->buf = t;
                                s->allocated = a;
                        }
                        memcpy(s->buf + s->size, data, n);
                        s->size += n;
                }
                if (!nl)
                        break;
                r = end_line(s);
                if (r < 0)
                        return r;
                data = nl + 1;
                size -= n + 1;
        }
        return 0;
}

int cli_output_parse_log(const char *log_path, AdapterType type, CliOutput *o) {
        LineSplitter s = { .out = o, .type = type };
        int r;

        o->type = type;
        r = runlog_for_each_chunk(log_path, on_chunk, &s);
        if (r == -ENOENT)
                r = 0;
        if (r >= 0 && (s.size > 0 || s.overlong))
                r = end_line(&s); /* a last line without its newline */
        free(s.buf);
        return r;
}

char *cli_output_usage_json(const CliOutput *o) {
        _cleanup_json_ cJSON *u = cJSON_CreateObject();

        if (!u)
                return NULL;
        cJSON_AddNumberToObject(u, "inputTokens", (double) o->input_tokens);
        cJSON_AddNumberToObject(u, "cachedInputTokens", (double) o->cached_input_tokens);
        cJSON_AddNumberToObject(u, "outputTokens", (double) o->output_tokens);
        if (o->has_cost)
                cJSON_AddNumberToObject(u, "costUsd", o->cost_usd);
        if (o->model)
                cJSON_AddStringToObject(u, "model", o->model);
        cJSON_AddStringToObject(u, "provider", o->type == ADAPTER_CODEX_LOCAL ? "openai" : "anthropic");
        cJSON_AddNumberToObject(u, "numTurns", (double) o->num_turns);
        return cJSON_PrintUnformatted(u);
}
