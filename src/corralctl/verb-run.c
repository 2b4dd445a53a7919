/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * corralctl wake|runs|run|events|logs|cancel
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "basic/macro.h"
#include "client.h"
#include "corralctl.h"
#include "names.h"
#include "output.h"

static const Column run_columns[] = {
        { "RUN", "id", 0 },
        { "AGENT", "agentId", 24, "agent" },
        { "STATUS", "status", 0 },
        { "EXIT", "exitCode", 0 },
        { "ERROR", "errorCode", 0 },
        { "HOST", "hostId", 0 },
        { "CREATED", "createdAt", 0 },
        {},
};

static const Column event_columns[] = {
        { "SEQ", "seq", 0 },        { "TIME", "createdAt", 0 },   { "LEVEL", "level", 0 },
        { "TYPE", "eventType", 0 }, { "MESSAGE", "message", 80 }, {},
};

static const FieldOpt wake_fields[] = {
        { "source", "source", OPT_STRING, "timer, assignment, on_demand (default) or automation" },
        { "trigger", "triggerDetail", OPT_STRING, "manual (default), ping, callback or system" },
        { "reason", "reason", OPT_STRING, "Why the agent is woken" },
        { "payload", "payload", OPT_JSON, "Wake payload, a JSON object" },
        { "idempotency-key", "idempotencyKey", OPT_STRING, "A second wake with the same key is the same wake" },
        {},
};

int verb_wake(Ctl *ctl, int argc, char *argv[]) {
        return ctl_call_on_id(ctl, NULL, "wake", argc, argv, "POST", "/api/agents", "/wakeup", wake_fields, false);
}

int verb_runs(Ctl *ctl, int argc, char *argv[]) {
        ExtraOpt filters[] = { { "company", "Company id (required)" },
                               { "agent", "Only runs of this agent" },
                               { "limit", "At most N runs, or all (default 200)" },
                               {} };
        static const char *const params[] = { NULL, "agentId", "limit" };
        return ctl_company_list(ctl, NULL, "runs", "heartbeat-runs", argc, argv, filters, params, run_columns);
}

int verb_run(Ctl *ctl, int argc, char *argv[]) {
        return ctl_call_on_id(ctl, NULL, "run", argc, argv, "GET", "/api/heartbeat-runs", NULL, NULL, false);
}

int verb_cancel(Ctl *ctl, int argc, char *argv[]) {
        return ctl_call_on_id(ctl, NULL, "cancel", argc, argv, "POST", "/api/heartbeat-runs", "/cancel", NULL, false);
}

/* One event of the stream: its JSON, or a line of id, time, type, entity and what it says. */
static int print_event(const char *type, const cJSON *e, void *userdata) {
        Ctl *ctl = userdata;
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "data");
        char b1[32], b2[64], b3[64], b4[64], b5[64];

        if (ctl->json) {
                char *s = cJSON_PrintUnformatted(e);
                if (s)
                        puts(s);
                free(s);
        } else if (streq(type, "run.log")) {
                /* A run's output, as it wrote it: prefixed by the run, line by line. */
                const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "text")) ?: "";
                const char *run = output_value(e, "runId", b1, sizeof(b1)), *stream = output_value(e, "stream", b2, sizeof(b2));
                while (*text) {
                        size_t len = strcspn(text, "\n");
                        printf("%.8s %s| %.*s\n", run, stream, (int) len, text);
                        text += len + (text[len] == '\n');
                }
        } else if (streq(type, "dropped") || streq(type, "gap"))
                printf("-- %s: %s\n", type, output_value(e, "reason", b1, sizeof(b1)));
        else
                printf("%-8s %s  %-16s %s  %s\n", output_value(e, "id", b1, sizeof(b1)),
                       output_value(e, "createdAt", b2, sizeof(b2)), output_value(e, "type", b3, sizeof(b3)),
                       output_value(e, "entityId", b4, sizeof(b4)),
                       output_value(d, cJSON_GetObjectItemCaseSensitive(d, "status") ? "status" : "identifier", b5, sizeof(b5)));
        fflush(stdout);
        return 0;
}

/* corralctl events [--follow] [--company C] [--after N] [--types T] [--logs A]: the event stream. */
static int event_stream(Ctl *ctl, bool follow, ExtraOpt *opts) {
        _cleanup_free_ char *path = NULL, *company = NULL, *after = NULL, *types = NULL, *logs = NULL;
        int r;

        if (opts[0].value) {
                company = names_resolve(ctl, "company", opts[0].value, NULL, &r);
                if (!company)
                        return r;
        }
        if (opts[3].value) {
                /* An agent (by name, too), or a run by its whole id: corrald tells them apart. */
                logs = names_resolve(ctl, "agent", opts[3].value, company, &r);
                if (!logs)
                        return r;
        }
        after = client_escape(opts[1].value ?: (follow ? "" : "0"));
        types = opts[2].value ? client_escape(opts[2].value) : NULL;
        if (!after || (opts[2].value && !types) ||
            asprintf(&path, "/api/events?follow=%s%s%s%s%s%s%s%s%s", follow ? "true" : "false", *after ? "&after=" : "", after,
                     company ? "&companyId=" : "", strempty(company), types ? "&types=" : "", strempty(types),
                     logs ? "&logs=" : "", strempty(logs)) < 0)
                return EXIT_API_ERROR;
        return client_events(ctl, path, print_event, NULL, ctl);
}

int verb_events(Ctl *ctl, int argc, char *argv[]) {
        ExtraOpt opts[] = { { "company", "Only this company's events (the stream's)" },
                            { "after", "The stream from after this event id" },
                            { "types", "Only events of these types, comma-separated (the stream's)" },
                            { "logs", "Also the output of this agent's runs, or of the run with this whole id" },
                            {} };
        _cleanup_free_ char *id = NULL, *path = NULL;
        cJSON *reply = NULL;
        bool follow = false;
        int first, r;

        for (int i = 1; i < argc; i++)
                if (streq(argv[i], "-f") || streq(argv[i], "--follow")) {
                        follow = true;
                        memmove(argv + i, argv + i + 1, (size_t) (argc - i) * sizeof(char *));
                        argc--;
                        i--;
                }
        /* Without a run: the live event stream of everything (GET /api/events). */
        first = ctl_args(ctl, NULL, "events", argc, argv, NULL, opts, NULL, -1);
        if (first < 0)
                return -1 - first;
        if (first >= argc)
                return event_stream(ctl, follow, opts);
        id = names_resolve(ctl, "run", argv[first], NULL, &r);
        if (!id)
                return r;
        if (asprintf(&path, "/api/heartbeat-runs/%s/events?limit=1000", id) < 0)
                return EXIT_API_ERROR;
        r = client_call(ctl, "GET", path, NULL, &reply);
        if (r == EXIT_OK)
                output_list(ctl, reply, event_columns);
        cJSON_Delete(reply);
        return r;
}

static const char *run_status(Ctl *ctl, const char *id_escaped, int *ret) {
        _cleanup_free_ char *path = NULL;
        static char status[32];
        cJSON *reply = NULL;
        const cJSON *s;

        *ret = EXIT_API_ERROR;
        if (asprintf(&path, "/api/heartbeat-runs/%s", id_escaped) < 0)
                return NULL;
        *ret = client_call(ctl, "GET", path, NULL, &reply);
        if (*ret != EXIT_OK)
                return NULL;
        s = cJSON_GetObjectItemCaseSensitive(reply, "status");
        snprintf(status, sizeof(status), "%s", cJSON_IsString(s) ? s->valuestring : "");
        cJSON_Delete(reply);
        return status;
}

/* Print one page of log lines: with --json as they are, else the decoded output. */
static int print_log_content(Ctl *ctl, const char *content) {
        const char *line = content;

        if (ctl->json) {
                fputs(content, stdout);
                return 0;
        }
        while (*line) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t) (nl - line) : strlen(line);
                cJSON *j = cJSON_ParseWithLength(line, len);
                const cJSON *stream = cJSON_GetObjectItemCaseSensitive(j, "stream"),
                            *chunk = cJSON_GetObjectItemCaseSensitive(j, "chunk"),
                            *encoding = cJSON_GetObjectItemCaseSensitive(j, "encoding");
                if (cJSON_IsString(chunk)) {
                        FILE *out = cJSON_IsString(stream) && streq(stream->valuestring, "stderr") ? stderr : stdout;
                        if (cJSON_IsString(encoding))
                                fprintf(out, "[%zu bytes of binary output]\n", strlen(chunk->valuestring) / 4 * 3);
                        else
                                fputs(chunk->valuestring, out);
                }
                cJSON_Delete(j);
                if (!nl)
                        break;
                line = nl + 1;
        }
        fflush(stdout);
        fflush(stderr);
        return 0;
}

int verb_logs(Ctl *ctl, int argc, char *argv[]) {
        _cleanup_free_ char *id = NULL;
        bool follow = false;
        int64_t offset = 0;
        int first, r;

        /* -f is the common spelling; turn it into the long option before parsing. */
        for (int i = 1; i < argc; i++)
                if (streq(argv[i], "-f")) {
                        follow = true;
                        memmove(argv + i, argv + i + 1, (size_t) (argc - i) * sizeof(char *));
                        argc--;
                        i--;
                }
        for (int i = 1; i < argc; i++)
                if (streq(argv[i], "--follow")) {
                        follow = true;
                        memmove(argv + i, argv + i + 1, (size_t) (argc - i) * sizeof(char *));
                        argc--;
                        i--;
                }
        first = ctl_args(ctl, NULL, "logs", argc, argv, NULL, NULL, NULL, 1);
        if (first < 0)
                return -1 - first;
        id = names_resolve(ctl, "run", argv[first], NULL, &r);
        if (!id)
                return r;

        for (;;) {
                _cleanup_free_ char *path = NULL;
                cJSON *reply = NULL;
                const cJSON *content, *next;

                if (asprintf(&path, "/api/heartbeat-runs/%s/log?offset=%" PRIi64, id, offset) < 0)
                        return EXIT_API_ERROR;
                r = client_call(ctl, "GET", path, NULL, &reply);
                if (r != EXIT_OK)
                        return r;
                content = cJSON_GetObjectItemCaseSensitive(reply, "content");
                next = cJSON_GetObjectItemCaseSensitive(reply, "nextOffset");
                if (cJSON_IsString(content))
                        print_log_content(ctl, content->valuestring);
                bool more = cJSON_IsNumber(next) && (int64_t) next->valuedouble > offset;
                if (cJSON_IsNumber(next))
                        offset = (int64_t) next->valuedouble;
                else if (cJSON_IsString(content))
                        offset += (int64_t) strlen(content->valuestring);
                cJSON_Delete(reply);
                if (more)
                        continue; /* the next page is already there */
                if (!follow)
                        return EXIT_OK;
                const char *status = run_status(ctl, id, &r);
                if (!status)
                        return r;
                if (!streq(status, "queued") && !streq(status, "running")) {
                        /* Ended: one last read catches what came before the end. */
                        follow = false;
                        continue;
                }
                usleep(200 * 1000);
        }
}

int verb_sweep(Ctl *ctl, int argc, char *argv[]) {
        cJSON *reply = NULL;
        char buf[32];
        int first, r;

        first = ctl_args(ctl, NULL, "sweep", argc, argv, NULL, NULL, NULL, 0);
        if (first < 0)
                return -1 - first;
        r = client_call(ctl, "POST", "/api/sweep", NULL, &reply);
        if (r != EXIT_OK)
                return r;
        if (ctl->json)
                output_json(reply);
        else {
                char b2[32], b3[32], b4[32], b5[32];
                printf("Sweep done: %s running run(s) taken up; stranded issues: %s dispatch requeued, %s continuation "
                       "requeued, %s escalated to blocked, %s skipped.\n",
                       output_value(reply, "runsRecovered", buf, sizeof(buf)),
                       output_value(reply, "dispatchRequeued", b2, sizeof(b2)),
                       output_value(reply, "continuationRequeued", b3, sizeof(b3)),
                       output_value(reply, "escalated", b4, sizeof(b4)), output_value(reply, "skipped", b5, sizeof(b5)));
        }
        cJSON_Delete(reply);
        return EXIT_OK;
}
