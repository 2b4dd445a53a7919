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
#include "control/adapter.h"
#include "store/jsonmap.h"
#include "supervise/runlog.h"

void cli_output_done(CliOutput *o) {
        free(o->session_id);
        free(o->model);
        free(o->result_text);
        free(o->error_message);
        free(o->first_malformed);
        free(o->first_invalid);
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
        const AdapterOps *ops = adapter_ops(type);
        return ops->output_line ? ops->output_line(o, j) : 0;
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
        cJSON_AddStringToObject(u, "provider", strna(adapter_ops(o->type)->provider));
        cJSON_AddNumberToObject(u, "numTurns", (double) o->num_turns);
        return cJSON_PrintUnformatted(u);
}

int cli_output_set(char **p, const char *s) {
        return s ? free_and_strdup(p, s) : 0;
}
