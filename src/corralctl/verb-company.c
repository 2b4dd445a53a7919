/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * corralctl company list|create|show|update, corralctl activity
 */
#include <stdio.h>
#include <stdlib.h>

#include "basic/macro.h"
#include "client.h"
#include "corralctl.h"
#include "output.h"

static const FieldOpt company_fields[] = {
        { "name", "name", OPT_STRING, "Company name" },
        { "description", "description", OPT_STRING, "What the company works on" },
        { "prefix", "issuePrefix", OPT_STRING, "Issue identifier prefix, e.g. ACME for ACME-1 (create only)" },
        { "status", "status", OPT_STRING, "active, paused or archived" },
        { "require-approval", "requireBoardApprovalForNewAgents", OPT_TRUE, "New agents start pending approval" },
        { "no-require-approval", "requireBoardApprovalForNewAgents", OPT_FALSE, "New agents start idle" },
        { "budget-cents", "budgetMonthlyCents", OPT_INT, "Monthly budget in cents" },
        { "workspace", "workspace", OPT_JSON, "Workspace policy of its agents, a JSON object (corrald(8), WORKSPACES)" },
        {},
};

static const Column company_columns[] = {
        { "ID", "id", 0 },
        { "NAME", "name", 32 },
        { "PREFIX", "issuePrefix", 0 },
        { "STATUS", "status", 0 },
        { "ISSUES", "issueCounter", 0 },
        { "CREATED", "createdAt", 0 },
        {},
};

int verb_company_list(Ctl *ctl, int argc, char *argv[]) {
        cJSON *reply = NULL;
        int first, r;

        first = ctl_args(ctl, "company", "list", argc, argv, NULL, NULL, NULL, 0);
        if (first < 0)
                return -1 - first;
        r = client_list(ctl, "/api/companies", 0, &reply);
        if (r == EXIT_OK)
                output_list(ctl, reply, company_columns);
        cJSON_Delete(reply);
        return r;
}

int verb_company_create(Ctl *ctl, int argc, char *argv[]) {
        cJSON *body = NULL, *reply = NULL;
        int first, r;

        first = ctl_args(ctl, "company", "create", argc, argv, company_fields, NULL, &body, 0);
        if (first < 0)
                return -1 - first;
        if (!cJSON_GetObjectItemCaseSensitive(body, "name")) {
                fprintf(stderr, "corralctl company create: --name is required\n");
                cJSON_Delete(body);
                return EXIT_USAGE;
        }
        r = client_call(ctl, "POST", "/api/companies", body, &reply);
        cJSON_Delete(body);
        if (r == EXIT_OK)
                output_reply(ctl, reply);
        cJSON_Delete(reply);
        return r;
}

int verb_company_show(Ctl *ctl, int argc, char *argv[]) {
        return ctl_call_on_id(ctl, "company", "show", argc, argv, "GET", "/api/companies", NULL, NULL, false);
}

int verb_company_update(Ctl *ctl, int argc, char *argv[]) {
        return ctl_call_on_id(ctl, "company", "update", argc, argv, "PATCH", "/api/companies", NULL, company_fields, true);
}

static const Column activity_columns[] = {
        { "TIME", "createdAt", 0 },
        { "ACTOR", "actorId", 24, "agent" },
        { "ACTION", "action", 0 },
        { "ENTITY", "entityType", 0 },
        { "ENTITY ID", "entityId", 0 },
        { "DETAILS", "details", 60 },
        {},
};

int verb_activity(Ctl *ctl, int argc, char *argv[]) {
        ExtraOpt filters[] = { { "company", "Company id (required)" },
                               { "limit", "At most N entries, or all (default 200)" },
                               {} };
        static const char *const params[] = { NULL, "limit" };
        return ctl_company_list(ctl, NULL, "activity", "activity", argc, argv, filters, params, activity_columns);
}
