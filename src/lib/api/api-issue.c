/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Issues: list, create, read, change; blockers; checkout and release; their live and
 * active runs.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-common.h"
#include "basic/macro.h"
#include "basic/util.h"
#include "control/issue-change.h"
#include "control/issue-lock.h"
#include "store/issues.h"
#include "store/jsonmap.h"
#include "store/queries.h"

/* The issue as it is now: a wake caused by the change may have taken its lock. */
static int reply_issue(ApiRequest *req, unsigned status, const char *id) {
        _cleanup_(issue_donep) Issue i = {};
        int r = api_load(req, &issue_entity, id, &i);
        return r <= 0 ? r : api_reply_entity(req, status, &issue_entity, &i);
}

static int handle_issue_list(ApiRequest *req) {
        _cleanup_(company_donep) Company c = {};
        const char *status = api_query(req, "status"), *assignee = api_query(req, "assigneeAgentId");
        StorePage page;
        size_t n;
        Issue *items;
        int r;

        r = api_load(req, &company_entity, req->params[0], &c);
        if (r <= 0)
                return r;
        r = api_parse_page(req, &page);
        if (r <= 0)
                return r;
        if (status && issue_status_from_string(status) < 0)
                return api_reply_error(req, 400, "invalid status '%.64s'", status);
        r = store_issues_of_company(api_store(req), c.id, status, assignee, &page, &items, &n);
        return api_reply_page(req, &issue_entity, r, items, n, &page);
}

static int handle_issue_get(ApiRequest *req) {
        _cleanup_(issue_donep) Issue i = {};
        int r = api_load_issue(req, req->params[0], &i);
        return r <= 0 ? r : api_reply_entity(req, 200, &issue_entity, &i);
}

static int handle_issue_create(ApiRequest *req) {
        _cleanup_(company_donep) Company c = {};
        _cleanup_(issue_donep) Issue i = {};
        Actor actor = api_actor(req);
        char *error = NULL;
        int r;

        if (!api_require_body(req))
                return 0;
        r = api_load(req, &company_entity, req->params[0], &c);
        if (r <= 0)
                return r;
        r = entity_init(&issue_entity, &i);
        if (r < 0)
                return r;
        r = json_to_entity(&issue_entity, req->body, FIELD_CREATE, NULL, &i, &error);
        if (r < 0)
                return api_reply_input_error(req, r, error);
        r = free_and_strdup(&i.company_id, c.id);
        if (r < 0)
                return r;
        r = record_stamp(&i.id, &i.created_at, &i.updated_at, NULL);
        if (r < 0)
                return r;
        r = issue_change_create(req->ctl, &actor, &i, &error);
        if (r < 0)
                return api_reply_refusal(req, r, error);
        return reply_issue(req, 201, i.id);
}

static int handle_issue_patch(ApiRequest *req) {
        _cleanup_(issue_donep) Issue before = {}, after = {};
        Actor actor = api_actor(req);
        const cJSON *comment;
        char *error = NULL;
        IssueUpdate u = { .fields = req->body };
        int r;

        if (!api_require_body(req))
                return 0;
        r = api_load_issue(req, req->params[0], &before);
        if (r <= 0)
                return r;
        comment = cJSON_GetObjectItemCaseSensitive(req->body, "comment");
        if (comment && (!cJSON_IsString(comment) || isempty(comment->valuestring)))
                return api_reply_error(req, 400, "field 'comment' must be a non-empty string");
        if (!api_parse_comment_flags(req, &u.reopen, &u.interrupt))
                return 0;
        r = entity_copy(&issue_entity, &before, &after);
        if (r < 0)
                return r;
        r = json_to_entity(&issue_entity, req->body, FIELD_PATCH, (const char *const[]){ "comment", "reopen", "interrupt", NULL },
                           &after, &error);
        if (r < 0)
                return api_reply_input_error(req, r, error);
        u.comment = comment ? comment->valuestring : NULL;
        if (u.comment) {
                r = api_check_comment_size(req, u.comment);
                if (r <= 0)
                        return r;
                r = api_within_quota(req, QUOTA_COMMENTS);
                if (r <= 0)
                        return r;
        }
        u.status_given = json_has_field(req->body, "status");
        r = issue_change_update(req->ctl, &actor, &before, &after, &u, &error);
        if (r < 0)
                return api_reply_refusal(req, r, error);
        return reply_issue(req, 200, after.id);
}

/* ---- blockers (issue_relations of type "blocks") ---- */

static int handle_blocker_list(ApiRequest *req) {
        _cleanup_(issue_donep) Issue i = {};
        Issue *items;
        StorePage page;
        size_t n;
        int r;

        r = api_load_issue(req, req->params[0], &i);
        if (r <= 0)
                return r;
        r = api_parse_page(req, &page);
        if (r <= 0)
                return r;
        r = store_issue_blockers(api_store(req), i.id, &page, &items, &n);
        return api_reply_page(req, &issue_entity, r, items, n, &page);
}

static int handle_blocker_add(ApiRequest *req) {
        _cleanup_(issue_donep) Issue i = {}, b = {};
        _cleanup_(issue_relation_donep) IssueRelation rel = {};
        Actor actor = api_actor(req);
        const cJSON *blocker;
        char *error = NULL;
        int r;

        if (!api_require_body(req))
                return 0;
        blocker = cJSON_GetObjectItemCaseSensitive(req->body, "blockerIssueId");
        if (!cJSON_IsString(blocker) || cJSON_GetArraySize(req->body) != 1)
                return api_reply_error(req, 400, "the body must be {\"blockerIssueId\": \"<issue id or identifier>\"}");
        r = api_load_issue(req, req->params[0], &i);
        if (r <= 0)
                return r;
        r = api_load_issue(req, blocker->valuestring, &b);
        if (r <= 0)
                return r;
        r = issue_change_block(req->ctl, &actor, &i, &b, &rel, &error);
        if (r < 0)
                return api_reply_refusal(req, r, error);
        return api_reply_entity(req, 201, &issue_relation_entity, &rel);
}

/* ---- checkout, release, live runs (reference §8) ---- */

/* 409 with who holds the issue. */
static int reply_conflict(ApiRequest *req, const char *error, const Issue *i) {
        cJSON *o = cJSON_CreateObject();

        if (!o || !cJSON_AddStringToObject(o, "error", error) ||
            !cJSON_AddStringToObject(o, "status", issue_status_to_string(i->status)) ||
            !cJSON_AddItemToObject(o, "assigneeAgentId",
                                   i->assignee_agent_id ? cJSON_CreateString(i->assignee_agent_id) : cJSON_CreateNull()) ||
            !cJSON_AddItemToObject(o, "checkoutRunId",
                                   i->checkout_run_id ? cJSON_CreateString(i->checkout_run_id) : cJSON_CreateNull()) ||
            !cJSON_AddItemToObject(o, "executionRunId",
                                   i->execution_run_id ? cJSON_CreateString(i->execution_run_id) : cJSON_CreateNull())) {
                cJSON_Delete(o);
                return -ENOMEM;
        }
        return api_reply(req, 409, o);
}

static int handle_issue_checkout(ApiRequest *req) {
        _cleanup_(issue_donep) Issue i = {}, now = {};
        _cleanup_(agent_donep) Agent a = {};
        _cleanup_free_ IssueStatus *statuses = NULL;
        _cleanup_free_ char *error = NULL;
        Actor actor = api_actor(req);
        const cJSON *agent_id, *expected, *e;
        IssueCheckout c = { .run_id = req->caller_run_id };
        int r;

        if (!api_require_body(req))
                return 0;
        agent_id = cJSON_GetObjectItemCaseSensitive(req->body, "agentId");
        expected = cJSON_GetObjectItemCaseSensitive(req->body, "expectedStatuses");
        if (!cJSON_IsString(agent_id))
                return api_reply_error(req, 400, "agentId must be a string");
        if (expected && !cJSON_IsArray(expected))
                return api_reply_error(req, 400, "expectedStatuses must be an array of issue statuses");
        statuses = calloc((size_t) cJSON_GetArraySize(expected) + 1, sizeof(IssueStatus));
        if (!statuses)
                return -ENOMEM;
        cJSON_ArrayForEach (e, expected) {
                if (!cJSON_IsString(e) || issue_status_from_string(e->valuestring) < 0)
                        return api_reply_error(req, 400, "expectedStatuses must be an array of issue statuses");
                statuses[c.n_expected++] = issue_status_from_string(e->valuestring);
        }
        c.expected = expected ? statuses : NULL;
        if (req->caller_agent_id && !streq(req->caller_agent_id, agent_id->valuestring))
                return api_reply_error(req, 403, "an agent may check issues out only for itself");
        r = api_load_issue(req, req->params[0], &i);
        if (r <= 0)
                return r;
        r = api_load(req, &agent_entity, agent_id->valuestring, &a);
        if (r <= 0)
                return r;
        c.agent_id = a.id;

        r = issue_lock_checkout(req->ctl, &actor, i.id, &c, &now, &error);
        if (r == -EBUSY)
                return reply_conflict(req, error, &now);
        if (r < 0)
                return api_reply_refusal(req, r, TAKE_PTR(error));
        return reply_issue(req, 200, now.id);
}

static int handle_issue_release(ApiRequest *req) {
        _cleanup_(issue_donep) Issue i = {}, now = {};
        _cleanup_free_ char *error = NULL;
        Actor actor = api_actor(req);
        int r;

        r = api_load_issue(req, req->params[0], &i);
        if (r <= 0)
                return r;
        r = issue_lock_release_by(req->ctl, &actor, i.id, &now, &error);
        if (r == -EBUSY)
                return reply_conflict(req, error, &now);
        if (r < 0)
                return api_reply_refusal(req, r, TAKE_PTR(error));
        return reply_issue(req, 200, now.id);
}

static int handle_issue_live_runs(ApiRequest *req) {
        _cleanup_(issue_donep) Issue i = {};
        Run *items;
        StorePage page;
        size_t n;
        int r;

        r = api_load_issue(req, req->params[0], &i);
        if (r <= 0)
                return r;
        r = api_parse_page(req, &page);
        if (r <= 0)
                return r;
        r = store_runs_active_for_issue(api_store(req), i.company_id, i.id, &page, &items, &n);
        return api_reply_run_page(req, r, items, n, &page);
}

/* The run holding the lock if it is active, else the assignee's running run on this
 * in_progress issue, else null. */
static int handle_issue_active_run(ApiRequest *req) {
        _cleanup_(issue_donep) Issue i = {};
        _cleanup_(run_donep) Run run = {};
        int r;

        r = api_load_issue(req, req->params[0], &i);
        if (r <= 0)
                return r;
        if (i.execution_run_id && store_get(api_store(req), &run_entity, i.execution_run_id, &run) >= 0 &&
            run_status_is_active(run.status))
                return api_reply_entity(req, 200, &run_entity, &run);
        entity_done(&run_entity, &run);
        if (i.status == ISSUE_IN_PROGRESS && i.assignee_agent_id) {
                r = store_run_running_of_agent_for_issue(api_store(req), i.assignee_agent_id, i.id, &run);
                if (r < 0)
                        return r;
                if (r > 0)
                        return api_reply_entity(req, 200, &run_entity, &run);
        }
        return api_reply(req, 200, cJSON_CreateNull());
}

const ApiRoute api_issue_routes[] = {
        { "GET", "/api/companies/:id/issues", handle_issue_list },
        { "POST", "/api/companies/:id/issues", handle_issue_create },
        { "GET", "/api/issues/:id", handle_issue_get },
        { "PATCH", "/api/issues/:id", handle_issue_patch },
        { "GET", "/api/issues/:id/blockers", handle_blocker_list },
        { "POST", "/api/issues/:id/blockers", handle_blocker_add },
        { "POST", "/api/issues/:id/checkout", handle_issue_checkout },
        { "POST", "/api/issues/:id/release", handle_issue_release },
        { "GET", "/api/issues/:id/active-run", handle_issue_active_run },
        { "GET", "/api/issues/:id/live-runs", handle_issue_live_runs },
        {},
};
