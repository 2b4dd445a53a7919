/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Workspaces (corrald(8), WORKSPACES): GET /api/issues/:id/workspace,
 * GET /api/companies/:id/workspaces, POST /api/workspaces/prune.
 */
#include <cjson/cJSON.h>
#include <errno.h>

#include "api/api-common.h"
#include "basic/macro.h"
#include "basic/util.h"
#include "control/workspace.h"
#include "store/queries.h"

static int handle_issue_workspace(ApiRequest *req) {
        _cleanup_(issue_donep) Issue issue = {};
        _cleanup_(workspace_donep) Workspace w = {};
        int r;

        r = api_load_issue(req, req->params[0], &issue);
        if (r <= 0)
                return r;
        r = store_get(api_store(req), &workspace_entity, issue.id, &w);
        if (r == -ENOENT)
                return api_reply_error(req, 404, "issue %s has no workspace", issue.identifier);
        return r < 0 ? r : api_reply_entity(req, 200, &workspace_entity, &w);
}

static int handle_company_workspaces(ApiRequest *req) {
        _cleanup_(company_donep) Company c = {};
        const char *status = api_query(req, "status");
        Workspace *items;
        StorePage page;
        size_t n;
        int r;

        r = api_load(req, &company_entity, req->params[0], &c);
        if (r <= 0)
                return r;
        if (status && enum_from_string(workspace_status_names, status) < 0)
                return api_reply_error(req, 400, "status must be one of active, removing, kept, removed; not '%.32s'", status);
        r = api_parse_page(req, &page);
        if (r <= 0)
                return r;
        r = store_workspaces_of_company(api_store(req), c.id, status, &page, &items, &n);
        return api_reply_page(req, &workspace_entity, r, items, n, &page);
}

static int handle_workspaces_prune(ApiRequest *req) {
        cJSON *o;
        int r;

        if (!api_require_board(req, "prune workspaces"))
                return 0;
        if (req->body && !cJSON_IsObject(req->body))
                return api_reply_error(req, 400, "request body must be a JSON object");
        r = workspace_sweep(req->ctl, true);
        if (r < 0)
                return r;
        o = cJSON_CreateObject();
        if (!o || !cJSON_AddNumberToObject(o, "removing", r)) {
                cJSON_Delete(o);
                return -ENOMEM;
        }
        return api_reply(req, 202, o);
}

const ApiRoute api_workspace_routes[] = {
        { "GET", "/api/issues/:id/workspace", handle_issue_workspace },
        { "GET", "/api/companies/:id/workspaces", handle_company_workspaces },
        { "POST", "/api/workspaces/prune", handle_workspaces_prune },
        {},
};
