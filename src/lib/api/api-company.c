/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Companies: list, create, read, change, and their activity log.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-common.h"
#include "basic/log.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "basic/time-util.h"
#include "basic/util.h"
#include "store/issues.h"
#include "store/jsonmap.h"
#include "store/model.h"
#include "store/queries.h"
#include "control/budget.h"
#include "control/workspace.h"
#include "control/activity.h"

static int handle_company_list(ApiRequest *req) {
        Company *items;
        StorePage page;
        size_t n;
        int r;

        r = api_parse_page(req, &page);
        if (r <= 0)
                return r;
        /* An agent's list is its own company: it learns no other's name. */
        r = store_companies(api_store(req), req->caller_agent_id ? req->caller_company_id : NULL, &page, &items, &n);
        return api_reply_page(req, &company_entity, r, items, n, &page);
}

static int handle_company_get(ApiRequest *req) {
        _cleanup_(company_donep) Company c = {};
        int r = api_load(req, &company_entity, req->params[0], &c);
        return r <= 0 ? r : api_reply_entity(req, 200, &company_entity, &c);
}

/* A free prefix derived from the name: "ACME", then "ACME2", "ACME3", ... */
static int pick_issue_prefix(ApiRequest *req, const char *name, char **ret) {
        _cleanup_free_ char *base = NULL;
        int r;

        r = issue_prefix_from_name(name, &base);
        if (r < 0)
                return r;
        for (int i = 1; i < 1000; i++) {
                _cleanup_free_ char *candidate = i == 1 ? strdup(base) : strprintf("%s%d", base, i);
                bool taken;
                if (!candidate)
                        return -ENOMEM;
                r = store_company_prefix_taken(api_store(req), candidate, &taken);
                if (r < 0)
                        return r;
                if (!taken) {
                        *ret = TAKE_PTR(candidate);
                        return 0;
                }
        }
        return -EEXIST;
}

static int validate_company(ApiRequest *req, const Company *c) {
        if (c->budget_monthly_cents < 0 || c->budget_monthly_cents > BUDGET_CENTS_MAX) {
                (void) api_reply_error(req, 400, "budgetMonthlyCents must be from 0 (no budget) to %" PRIi64, BUDGET_CENTS_MAX);
                return 0;
        }
        _cleanup_json_ cJSON *ws = cJSON_Parse(c->workspace ?: "{}");
        _cleanup_free_ char *error = NULL;
        if (cJSON_GetArraySize(ws) > 0 && workspace_policy_check(ws, "workspace", &error) < 0) {
                (void) api_reply_error(req, 400, "%s", strna(error));
                return 0;
        }
        if (c->issue_prefix && !issue_prefix_is_valid(c->issue_prefix)) {
                (void) api_reply_error(req, 400,
                                       "issuePrefix must be 1 to 10 upper-case letters or digits, starting with a letter");
                return 0;
        }
        return 1;
}

static int handle_company_create(ApiRequest *req) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(company_donep) Company c = {};
        Store *s = api_store(req);
        char *error = NULL;
        int r;

        if (!api_require_board(req, "create companies"))
                return 0;
        if (!api_require_body(req))
                return 0;
        r = entity_init(&company_entity, &c);
        if (r < 0)
                return r;
        r = json_to_entity(&company_entity, req->body, FIELD_CREATE, NULL, &c, &error);
        if (r < 0)
                return api_reply_input_error(req, r, error);
        r = validate_company(req, &c);
        if (r <= 0)
                return r;
        r = record_stamp(&c.id, &c.created_at, &c.updated_at, NULL);
        if (r < 0)
                return r;

        r = store_begin(s);
        if (r < 0)
                return r;
        tx = s;
        if (!c.issue_prefix) {
                r = pick_issue_prefix(req, c.name, &c.issue_prefix);
                if (r < 0)
                        return r;
        }
        r = store_insert(s, &company_entity, &c);
        if (r == -EEXIST)
                return api_reply_error(req, 409, "issuePrefix '%s' is already used by another company", c.issue_prefix);
        if (r < 0)
                return r;
        r = api_add_activity(req, c.id, "company.created", "company", c.id, NULL, NULL);
        if (r < 0)
                return r;
        r = store_commit(s);
        if (r < 0)
                return r;
        tx = NULL;
        return api_reply_entity(req, 201, &company_entity, &c);
}

static int handle_company_patch(ApiRequest *req) {
        _cleanup_(company_donep) Company c = {};
        char *error = NULL;
        int r;

        if (!api_require_board(req, "change companies"))
                return 0;
        if (!api_require_body(req))
                return 0;
        r = api_load(req, &company_entity, req->params[0], &c);
        if (r <= 0)
                return r;
        r = json_to_entity(&company_entity, req->body, FIELD_PATCH, NULL, &c, &error);
        if (r < 0)
                return api_reply_input_error(req, r, error);
        r = validate_company(req, &c);
        if (r <= 0)
                return r;
        r = api_stamp_updated(&c.updated_at);
        if (r < 0)
                return r;
        r = api_save_with_activity(req, &company_entity, &c, false, c.id, "company.updated", c.id, NULL,
                                   cJSON_Duplicate(req->body, true));
        if (r < 0)
                return r;
        if (cJSON_GetObjectItemCaseSensitive(req->body, "budgetMonthlyCents")) {
                r = budget_changed(req->ctl, c.id);
                if (r < 0)
                        return r;
        }
        return api_reply_entity(req, 200, &company_entity, &c);
}

static int handle_company_activity(ApiRequest *req) {
        _cleanup_(company_donep) Company c = {};
        StorePage page;
        size_t n;
        Activity *items;
        int r;

        r = api_load(req, &company_entity, req->params[0], &c);
        if (r <= 0)
                return r;
        r = api_parse_page(req, &page);
        if (r <= 0)
                return r;
        r = store_activity_of_company(api_store(req), c.id, &page, &items, &n);
        return api_reply_page(req, &activity_entity, r, items, n, &page);
}

const ApiRoute api_company_routes[] = {
        { "GET", "/api/companies", handle_company_list },
        { "POST", "/api/companies", handle_company_create },
        { "GET", "/api/companies/:id", handle_company_get },
        { "PATCH", "/api/companies/:id", handle_company_patch },
        { "GET", "/api/companies/:id/activity", handle_company_activity },
        {},
};
