/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * corralctl issue list|create|show|update
 */
#include <stdio.h>
#include <stdlib.h>

#include "basic/macro.h"
#include "client.h"
#include "corralctl.h"
#include "output.h"

static const FieldOpt issue_fields[] = {
        { "title", "title", OPT_STRING, "Title" },
        { "description", "description", OPT_STRING, "Description" },
        { "status", "status", OPT_STRING, "backlog, todo, in_progress, in_review, blocked, done or cancelled" },
        { "priority", "priority", OPT_STRING, "critical, high, medium or low" },
        { "assignee", "assigneeAgentId", OPT_STRING, "Assign to this agent (id)" },
        { "assignee-user", "assigneeUserId", OPT_STRING, "Assign to this user" },
        { "unassign", "assigneeAgentId", OPT_NULL, "Remove the agent assignee" },
        { "parent", "parentId", OPT_STRING, "Parent issue id" },
        { "comment", "comment", OPT_STRING, "Add this comment with the change (update only)" },
        {},
};

static const Column issue_columns[] = {
        { "ISSUE", "identifier", 0 },         { "STATUS", "status", 0 }, { "PRIORITY", "priority", 0 },
        { "ASSIGNEE", "assigneeAgentId", 0 }, { "TITLE", "title", 48 },  {},
};

int verb_issue_list(Ctl *ctl, int argc, char *argv[]) {
        ExtraOpt extra[] = { { "company", "Company id (required)" },
                             { "status", "Only issues with this status" },
                             { "assignee", "Only issues assigned to this agent" },
                             {} };
        _cleanup_free_ char *company = NULL, *status = NULL, *assignee = NULL, *path = NULL;
        cJSON *reply = NULL;
        int first, r;

        first = ctl_args(ctl, "issue", "list", argc, argv, NULL, extra, NULL, 0);
        if (first < 0)
                return -1 - first;
        if (!extra[0].value) {
                fprintf(stderr, "corralctl issue list: --company is required\n");
                return EXIT_USAGE;
        }
        company = client_escape(extra[0].value);
        status = client_escape(extra[1].value ?: "");
        assignee = client_escape(extra[2].value ?: "");
        if (!company || !status || !assignee ||
            asprintf(&path, "/api/companies/%s/issues?%s%s%s%s", company, extra[1].value ? "status=" : "",
                     extra[1].value ? status : "", extra[2].value ? "&assigneeAgentId=" : "", extra[2].value ? assignee : "") < 0)
                return EXIT_API_ERROR;
        r = client_call(ctl, "GET", path, NULL, &reply);
        if (r == EXIT_OK)
                output_list(ctl, reply, issue_columns);
        cJSON_Delete(reply);
        return r;
}

int verb_issue_create(Ctl *ctl, int argc, char *argv[]) {
        ExtraOpt extra[] = { { "company", "Company id (required)" }, {} };
        _cleanup_free_ char *company = NULL, *path = NULL;
        cJSON *body = NULL, *reply = NULL;
        int first, r;

        first = ctl_args(ctl, "issue", "create", argc, argv, issue_fields, extra, &body, 0);
        if (first < 0)
                return -1 - first;
        if (!ctl_require("issue create", extra) || !cJSON_GetObjectItemCaseSensitive(body, "title")) {
                if (extra[0].value)
                        fprintf(stderr, "corralctl issue create: --title is required\n");
                cJSON_Delete(body);
                return EXIT_USAGE;
        }
        company = client_escape(extra[0].value);
        if (!company || asprintf(&path, "/api/companies/%s/issues", company) < 0) {
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

int verb_issue_show(Ctl *ctl, int argc, char *argv[]) {
        return ctl_call_on_id(ctl, "issue", "show", argc, argv, "GET", "/api/issues", NULL, NULL, false);
}

int verb_issue_update(Ctl *ctl, int argc, char *argv[]) {
        return ctl_call_on_id(ctl, "issue", "update", argc, argv, "PATCH", "/api/issues", NULL, issue_fields, true);
}
