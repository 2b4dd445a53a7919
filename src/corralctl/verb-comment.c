/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * corralctl comment list|add
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "client.h"
#include "corralctl.h"
#include "names.h"
#include "output.h"

#define COMMENT_MAX (1024 * 1024 - 1024)

static const Column comment_columns[] = {
        { "TIME", "createdAt", 0 },
        { "AUTHOR", "authorUserId", 0 },
        { "AGENT", "authorAgentId", 24, "agent" },
        { "BODY", "body", 70 },
        {},
};

int verb_comment_list(Ctl *ctl, int argc, char *argv[]) {
        _cleanup_free_ char *issue = NULL, *path = NULL;
        cJSON *reply = NULL;
        int first, r;

        first = ctl_args(ctl, "comment", "list", argc, argv, NULL, NULL, NULL, 1);
        if (first < 0)
                return -1 - first;
        issue = names_resolve(ctl, "issue", argv[first], NULL, &r);
        if (!issue)
                return r;
        if (asprintf(&path, "/api/issues/%s/comments", issue) < 0)
                return EXIT_API_ERROR;
        r = client_list(ctl, path, 0, &reply);
        if (r == EXIT_OK)
                output_list(ctl, reply, comment_columns);
        cJSON_Delete(reply);
        return r;
}

/* The whole of stdin, up to the API's body limit. */
static char *read_stdin(void) {
        size_t size = 0, allocated = 0;
        char *buf = NULL;

        for (;;) {
                if (allocated - size < 4096) {
                        char *t = realloc(buf, allocated + 65536);
                        if (!t) {
                                free(buf);
                                return NULL;
                        }
                        buf = t;
                        allocated += 65536;
                }
                size_t n = fread(buf + size, 1, allocated - size - 1, stdin);
                size += n;
                if (size > COMMENT_MAX) {
                        fprintf(stderr, "corralctl comment add: the comment is larger than 1 MiB\n");
                        free(buf);
                        return NULL;
                }
                if (n == 0)
                        break;
        }
        buf[size] = 0;
        return buf;
}

int verb_comment_add(Ctl *ctl, int argc, char *argv[]) {
        _cleanup_free_ char *issue = NULL, *path = NULL, *text = NULL;
        cJSON *body = NULL, *reply = NULL;
        int first, r;

        first = ctl_args(ctl, "comment", "add", argc, argv, NULL, NULL, NULL, 2);
        if (first < 0)
                return -1 - first;
        text = streq(argv[first + 1], "-") ? read_stdin() : strdup(argv[first + 1]);
        if (!text)
                return EXIT_USAGE;
        issue = names_resolve(ctl, "issue", argv[first], NULL, &r);
        if (!issue)
                return r;
        body = cJSON_CreateObject();
        if (!issue || !body || !cJSON_AddStringToObject(body, "body", text) ||
            asprintf(&path, "/api/issues/%s/comments", issue) < 0) {
                cJSON_Delete(body);
                return EXIT_API_ERROR;
        }
        r = client_call(ctl, "POST", path, body, &reply);
        cJSON_Delete(body);
        if (r == EXIT_OK)
                output_reply(ctl, reply);
        cJSON_Delete(reply);
        return r;
}
