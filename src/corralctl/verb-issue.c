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
        { "assignee", "assigneeAgentId", OPT_AGENT, "Assign to this agent (its name, id or a prefix of its id)" },
        { "assignee-user", "assigneeUserId", OPT_STRING, "Assign to this user" },
        { "unassign", "assigneeAgentId", OPT_NULL, "Remove the agent assignee" },
        { "parent", "parentId", OPT_ISSUE, "Parent issue (its identifier, id or a prefix of its id)" },
        { "comment", "comment", OPT_STRING, "Add this comment with the change (update only)" },
        {},
};

static const Column issue_columns[] = {
        { "ISSUE", "identifier", 0 },  { "STATUS", "status", 0 },
        { "PRIORITY", "priority", 0 }, { "ASSIGNEE", "assigneeAgentId", 24, "agent" },
        { "TITLE", "title", 48 },      {},
};

int verb_issue_list(Ctl *ctl, int argc, char *argv[]) {
        ExtraOpt filters[] = { { "company", "Company id (required)" },
                               { "status", "Only issues with this status" },
                               { "assignee", "Only issues assigned to this agent" },
                               { "limit", "At most N issues, or all (default 200)" },
                               {} };
        static const char *const params[] = { NULL, "status", "assigneeAgentId", "limit" };
        return ctl_company_list(ctl, "issue", "list", "issues", argc, argv, filters, params, issue_columns);
}

int verb_issue_create(Ctl *ctl, int argc, char *argv[]) {
        return ctl_company_create(ctl, "issue", "issues", argc, argv, issue_fields, "title");
}

int verb_issue_show(Ctl *ctl, int argc, char *argv[]) {
        return ctl_call_on_id(ctl, "issue", "show", argc, argv, "GET", "/api/issues", NULL, NULL, false);
}

int verb_issue_update(Ctl *ctl, int argc, char *argv[]) {
        return ctl_call_on_id(ctl, "issue", "update", argc, argv, "PATCH", "/api/issues", NULL, issue_fields, true);
}
