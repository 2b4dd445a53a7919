/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * corralctl workspace list|show|prune: the git workspaces corral made for issues.
 */
#include <stdio.h>
#include <stdlib.h>

#include "basic/macro.h"
#include "client.h"
#include "corralctl.h"
#include "output.h"

static const Column workspace_columns[] = {
        { "ISSUE", "issueId", 0, "issue" },
        { "STATUS", "status", 0 },
        { "BRANCH", "branch", 32 },
        { "PATH", "path", 0 },
        { "UPDATED", "updatedAt", 0 },
        { "REASON", "statusReason", 40 },
        {},
};

int verb_workspace_list(Ctl *ctl, int argc, char *argv[]) {
        ExtraOpt filters[] = { { "company", "Company id (required)" },
                               { "status", "Only workspaces in this status: active, removing, kept, removed" },
                               { "limit", "At most N workspaces, or all (default 200)" },
                               {} };
        static const char *const params[] = { NULL, "status", "limit" };
        return ctl_company_list(ctl, "workspace", "list", "workspaces", argc, argv, filters, params, workspace_columns);
}

int verb_workspace_show(Ctl *ctl, int argc, char *argv[]) {
        return ctl_call_on_id(ctl, "workspace", "show", argc, argv, "GET", "/api/issues", "/workspace", NULL, false);
}

int verb_workspace_prune(Ctl *ctl, int argc, char *argv[]) {
        cJSON *reply = NULL;
        char buf[32];
        int first, r;

        first = ctl_args(ctl, "workspace", "prune", argc, argv, NULL, NULL, NULL, 0);
        if (first < 0)
                return -1 - first;
        r = client_call(ctl, "POST", "/api/workspaces/prune", NULL, &reply);
        if (r != EXIT_OK)
                return r;
        if (ctl->json)
                output_json(reply);
        else
                printf("Removing %s workspace(s) of closed issues and ended runs; `corralctl workspace list --status kept` "
                       "shows the ones kept.\n",
                       output_value(reply, "removing", buf, sizeof(buf)));
        cJSON_Delete(reply);
        return EXIT_OK;
}
