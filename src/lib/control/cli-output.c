/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "control/cli-output.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/utf8.h"
#include "basic/util.h"
#include "control/adapter.h"
#include "store/jsonmap.h"
#include "supervise/runlog.h"

void cli_output_done(CliOutput *o) {
        free(o->session_id);
        free(o->model);
        free(o->provider);
        free(o->result_text);
        free(o->error_message);
        free(o->first_malformed);
        free(o->first_invalid);
        free(o->stderr_last);
        free(o->message_id);
        *o = (CliOutput){};
}

int cli_output_invalid(CliOutput *o, const char *name, const cJSON *v) {
        _cleanup_free_ char *text = NULL;

        if (o->invalid_numbers++ > 0)
                return 0;
        text = v ? cJSON_PrintUnformatted(v) : NULL;
        o->first_invalid = strprintf("%s=%.40s", name, text ?: "?");
        return o->first_invalid ? 0 : -ENOMEM;
}

int64_t cli_output_count(CliOutput *o, const cJSON *obj, const char *name) {
        int64_t v;

        if (json_count_member_checked(obj, name, &v) < 0)
                (void) cli_output_invalid(o, name, cJSON_GetObjectItemCaseSensitive(obj, name));
        return v;
}

int64_t cli_count_add(int64_t a, int64_t b) {
        return b > 0 && a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* size without the line's trailing blanks (and a \r). */
static size_t trim_end(const char *line, size_t size) {
        while (size > 0 && (line[size - 1] == '\r' || line[size - 1] == ' ' || line[size - 1] == '\t'))
                size--;
        return size;
}

int cli_output_feed_line(CliOutput *o, AdapterType type, const char *line, size_t size) {
        _cleanup_json_ cJSON *j = NULL;

        size = trim_end(line, size);
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
        const AdapterOps *ops = adapter_ops(type);
        return ops->output_line ? ops->output_line(o, j) : 0;
}

int cli_output_feed_stderr_line(CliOutput *o, AdapterType type, const char *line, size_t size) {
        const AdapterOps *ops = adapter_ops(type);
        _cleanup_free_ char *text = NULL;

        size = trim_end(line, size);
        if (size == 0)
                return 0;
        /* Bounded, cut on a character: it becomes part of the run's error. */
        size = utf8_complete_prefix(line, MIN(size, (size_t) CLI_STDERR_LINE_MAX));
        text = strndup(line, size);
        if (!text)
                return -ENOMEM;
        /* The shim started the CLI again, afresh: what the first start said is no more the
         * run's (a stale session's refusal, above all). */
        if (streq(text, CLI_AGAIN_NOTE)) {
                cli_output_done(o);
                o->type = type;
                return 0;
        }
        /* It is shown as the run's error: redacted as an excerpt is. */
        (void) runlog_redact(text, size);
        free(o->stderr_last);
        o->stderr_last = TAKE_PTR(text);
        if (ops->stale_session_stderr && strstr(o->stderr_last, ops->stale_session_stderr))
                return cli_output_stale_session(o, ops->cli_name, o->stderr_last);
        return 0;
}

void cli_output_session_delta(CliOutput *o, int64_t input, int64_t cached, int64_t output) {
        o->total_input_tokens = o->input_tokens;
        o->total_cached_input_tokens = o->cached_input_tokens;
        o->total_output_tokens = o->output_tokens;
        if (input <= o->input_tokens && cached <= o->cached_input_tokens && output <= o->output_tokens) {
                o->input_tokens -= input;
                o->cached_input_tokens -= cached;
                o->output_tokens -= output;
        }
}

static int end_line(CliLines *s, int stream) {
        int r = 0;

        if (s->overlong[stream]) {
                if (stream == 0)
                        s->out->malformed++;
                s->overlong[stream] = false;
        } else if (stream == 0)
                r = cli_output_feed_line(s->out, s->type, s->buf[0] ?: "", s->size[0]);
        else
                r = cli_output_feed_stderr_line(s->out, s->type, s->buf[1] ?: "", s->size[1]);
        s->size[stream] = 0;
        return r == -EBADMSG ? 0 : r;
}

/* The JSON lines are on stdout; stderr is for people, but its last line is often the only
 * reason a CLI gives for failing. */
int cli_lines_feed(CliLines *s, int stream, const char *data, size_t size) {
        int r;

        while (size > 0) {
                const char *nl = memchr(data, '\n', size);
                size_t n = nl ? (size_t) (nl - data) : size;

                if (!s->overlong[stream] && s->size[stream] + n > CLI_OUTPUT_LINE_MAX) {
                        s->overlong[stream] = true;
                        s->size[stream] = 0;
                }
                if (!s->overlong[stream]) {
                        if (s->size[stream] + n + 1 > s->allocated[stream]) {
                                size_t a = MAX(s->allocated[stream] * 2, s->size[stream] + n + 1);
                                char *t = realloc(s->buf[stream], a);
                                if (!t)
                                        return -ENOMEM;
                                s->buf[stream] = t;
                                s->allocated[stream] = a;
                        }
                        memcpy(s->buf[stream] + s->size[stream], data, n);
                        s->size[stream] += n;
                }
                if (!nl)
                        break;
                r = end_line(s, stream);
                if (r < 0)
                        return r;
                data = nl + 1;
                size -= n + 1;
        }
        return 0;
}

int cli_lines_finish(CliLines *s) {
        int r = 0;

        /* A last line without its newline. */
        for (int i = 0; i < 2 && r >= 0; i++)
                if (s->size[i] > 0 || s->overlong[i])
                        r = end_line(s, i);
        return r;
}

void cli_lines_done(CliLines *s) {
        free(s->buf[0]);
        free(s->buf[1]);
        s->buf[0] = s->buf[1] = NULL;
        s->size[0] = s->size[1] = s->allocated[0] = s->allocated[1] = 0;
}

static int on_chunk(int stream, const char *data, size_t size, void *userdata) {
        return cli_lines_feed(userdata, stream, data, size);
}

int cli_output_parse_log(const char *log_path, AdapterType type, CliOutput *o) {
        CliLines s = { .out = o, .type = type };
        int r;

        o->type = type;
        r = runlog_for_each_chunk(log_path, on_chunk, &s);
        if (r == -ENOENT)
                r = 0;
        if (r >= 0)
                r = cli_lines_finish(&s);
        cli_lines_done(&s);
        return r;
}

char *cli_output_usage_json(const CliOutput *o) {
        _cleanup_json_ cJSON *u = cJSON_CreateObject();

        if (!u)
                return NULL;
        cJSON_AddNumberToObject(u, "inputTokens", (double) o->input_tokens);
        cJSON_AddNumberToObject(u, "cachedInputTokens", (double) o->cached_input_tokens);
        cJSON_AddNumberToObject(u, "outputTokens", (double) o->output_tokens);
        if (o->cache_write_input_tokens > 0)
                cJSON_AddNumberToObject(u, "cacheWriteInputTokens", (double) o->cache_write_input_tokens);
        if (o->reasoning_output_tokens > 0)
                cJSON_AddNumberToObject(u, "reasoningOutputTokens", (double) o->reasoning_output_tokens);
        if (o->cumulative) {
                /* What the session had reached: the next run of it counts from there. */
                cJSON *t = cJSON_AddObjectToObject(u, "sessionTotals");
                if (!t)
                        return NULL;
                cJSON_AddNumberToObject(t, "inputTokens", (double) o->total_input_tokens);
                cJSON_AddNumberToObject(t, "cachedInputTokens", (double) o->total_cached_input_tokens);
                cJSON_AddNumberToObject(t, "outputTokens", (double) o->total_output_tokens);
        }
        if (o->has_cost)
                cJSON_AddNumberToObject(u, "costUsd", o->cost_usd);
        if (o->priced) {
                cJSON_AddNumberToObject(u, "costCents", (double) o->cost_cents);
                cJSON_AddStringToObject(u, "priceSource", o->price_source);
                cJSON_AddStringToObject(u, "billingType", o->billing_type);
        }
        if (o->model)
                cJSON_AddStringToObject(u, "model", o->model);
        cJSON_AddStringToObject(u, "provider", o->provider ?: strna(adapter_ops(o->type)->provider));
        cJSON_AddNumberToObject(u, "numTurns", (double) o->num_turns);
        return cJSON_PrintUnformatted(u);
}

int cli_output_stale_session(CliOutput *o, const char *cli, const char *line) {
        _cleanup_free_ char *m = strprintf("%s: %s", cli, line);

        o->error_code = "session_not_found";
        o->stale_session = true;
        return m ? cli_output_set(&o->error_message, m) : -ENOMEM;
}

char *cli_text_blocks(const cJSON *message) {
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

void cli_output_add_step(CliOutput *o, int64_t input, int64_t cached, int64_t written, int64_t output) {
        o->input_tokens = cli_count_add(o->input_tokens, cli_count_add(input, written));
        o->cache_write_input_tokens = cli_count_add(o->cache_write_input_tokens, written);
        o->cached_input_tokens = cli_count_add(o->cached_input_tokens, cached);
        o->output_tokens = cli_count_add(o->output_tokens, output);
}

int cli_output_add_cost(CliOutput *o, const cJSON *cost, const char *name) {
        if (cJSON_IsNumber(cost) && isfinite(cost->valuedouble) && cost->valuedouble >= 0 &&
            o->cost_usd + cost->valuedouble <= CLI_COST_USD_MAX) {
                o->cost_usd += cost->valuedouble;
                o->has_cost = true;
                return 0;
        }
        return cost && !cJSON_IsNull(cost) ? cli_output_invalid(o, name, cost) : 0;
}

int cli_output_set(char **p, const char *s) {
        return s ? free_and_strdup(p, s) : 0;
}
