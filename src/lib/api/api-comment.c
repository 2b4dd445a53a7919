/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Comments on issues: list, read, add. */
#include <cjson/cJSON.h>
#include <errno.h>

#include "api/api-common.h"
#include "basic/macro.h"
#include "control/issue-change.h"
#include "store/jsonmap.h"
#include "store/queries.h"

static int handle_comment_list(ApiRequest *req) {
        _cleanup_(issue_donep) Issue i = {};
        IssueComment *items;
        StorePage page;
        size_t n;
        int r;

        r = api_load_issue(req, req->params[0], &i);
        if (r <= 0)
                return r;
        r = api_parse_page(req, &page);
        if (r <= 0)
                return r;
        r = store_comments_of_issue(api_store(req), i.id, &page, &items, &n);
        return api_reply_page(req, &comment_entity, r, items, n, &page);
}

static int handle_comment_get(ApiRequest *req) {
        _cleanup_(issue_donep) Issue i = {};
        _cleanup_(comment_donep) IssueComment c = {};
        int r;

        r = api_load_issue(req, req->params[0], &i);
        if (r <= 0)
                return r;
        r = api_load(req, &comment_entity, req->params[1], &c);
        if (r <= 0)
                return r;
        if (!streq(c.issue_id, i.id))
                return api_reply_error(req, 404, "comment '%.64s' not found on issue %s", req->params[1], i.identifier);
        return api_reply_entity(req, 200, &comment_entity, &c);
}

static int handle_comment_create(ApiRequest *req) {
        _cleanup_(issue_donep) Issue i = {};
        _cleanup_(comment_donep) IssueComment c = {}, input = {};
        Actor actor = api_actor(req);
        char *error = NULL;
        bool reopen, interrupt;
        int r;

        if (!api_require_body(req))
                return 0;
        r = api_load_issue(req, req->params[0], &i);
        if (r <= 0)
                return r;
        if (!api_parse_comment_flags(req, &reopen, &interrupt))
                return 0;
        r = json_to_entity(&comment_entity, req->body, FIELD_CREATE, (const char *const[]){ "reopen", "interrupt", NULL }, &input,
                           &error);
        if (r < 0)
                return api_reply_input_error(req, r, error);
        r = api_check_comment_size(req, input.body);
        if (r <= 0)
                return r;
        r = api_within_quota(req, QUOTA_COMMENTS);
        if (r <= 0)
                return r;
        r = issue_change_comment(req->ctl, &actor, &i, input.body, reopen, interrupt, &c);
        if (r < 0)
                return r;
        return api_reply_entity(req, 201, &comment_entity, &c);
}

const ApiRoute api_comment_routes[] = {
        { "GET", "/api/issues/:id/comments", handle_comment_list },
        { "POST", "/api/issues/:id/comments", handle_comment_create },
        { "GET", "/api/issues/:id/comments/:commentId", handle_comment_get },
        {},
};
