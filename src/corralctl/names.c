/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "client.h"

char *names_resolve(Ctl *ctl, const char *kind, const char *arg, const char *company_id, int *ret_exit) {
        _cleanup_free_ char *q = NULL, *company = NULL, *path = NULL;
        cJSON *reply = NULL;
        char *id;

        *ret_exit = EXIT_API_ERROR;
        if (uuid_is_valid(arg))
                return client_escape(arg);
        q = client_escape(arg);
        company = company_id ? client_escape(company_id) : NULL;
        if (!q || (company_id && !company) ||
            asprintf(&path, "/api/lookup?kind=%s&q=%s%s%s", kind, q, company ? "&companyId=" : "", strempty(company)) < 0)
                return NULL;
        *ret_exit = client_call(ctl, "GET", path, NULL, &reply);
        if (*ret_exit != EXIT_OK)
                return NULL;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(reply, "id");
        id = cJSON_IsString(v) ? client_escape(v->valuestring) : NULL;
        cJSON_Delete(reply);
        if (!id)
                *ret_exit = EXIT_API_ERROR;
        return id;
}

/* ids looked up, and what they are called. */
typedef struct Label {
        char *id, *label;
} Label;

static Label *labels;
static size_t n_labels;

void names_done(void) {
        for (size_t i = 0; i < n_labels; i++) {
                free(labels[i].id);
                free(labels[i].label);
        }
        free(labels);
        labels = NULL;
        n_labels = 0;
}

/* What id (of kind) is called: cached; NULL when it cannot be said. */
static const char *label_of(Ctl *ctl, const char *kind, const char *id) {
        _cleanup_free_ char *path = NULL, *e = NULL;
        const char *member = streq(kind, "issue") ? "identifier" : "name";
        cJSON *reply = NULL;
        char *label = NULL;

        for (size_t i = 0; i < n_labels; i++)
                if (streq(labels[i].id, id))
                        return labels[i].label;
        e = client_escape(id);
        if (!e || asprintf(&path, "/api/%s/%s", streq(kind, "issue") ? "issues" : "agents", e) < 0)
                return NULL;
        /* A record the caller may not see, or one gone, keeps its id: no error for it. */
        ctl->quiet_errors = true;
        if (client_call(ctl, "GET", path, NULL, &reply) == EXIT_OK) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(reply, member);
                label = cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
        }
        ctl->quiet_errors = false;
        cJSON_Delete(reply);
        Label *t = reallocarray(labels, n_labels + 1, sizeof(Label));
        if (!t) {
                free(label);
                return NULL;
        }
        labels = t;
        labels[n_labels] = (Label){ .id = strdup(id), .label = label };
        if (!labels[n_labels].id) {
                free(label);
                return NULL;
        }
        return labels[n_labels++].label;
}

void names_label(Ctl *ctl, cJSON *rows, const Column *columns) {
        cJSON *row;

        for (const Column *c = columns; c->header; c++) {
                if (!c->kind)
                        continue;
                cJSON_ArrayForEach (row, rows) {
                        const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, c->field);
                        if (!cJSON_IsString(v) || !uuid_is_valid(v->valuestring))
                                continue;
                        const char *label = label_of(ctl, c->kind, v->valuestring);
                        if (label)
                                (void) cJSON_ReplaceItemInObjectCaseSensitive(row, c->field, cJSON_CreateString(label));
                }
        }
}
