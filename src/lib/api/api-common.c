/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The steps every route handler shares: who is calling, authorization, loading, replies. */
#include "api/api-common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/time-util.h"
#include "store/jsonmap.h"
#include "store/queries.h"
#include "control/budget.h"

Actor api_actor(const ApiRequest *req) {
        Actor a = { .type = ACTOR_USER };

        if (req->caller_agent_id) {
                a.type = ACTOR_AGENT;
                a.run_id = req->caller_run_id;
                snprintf(a.id, sizeof(a.id), "%s", req->caller_agent_id);
        } else if (req->peer_uid == (uid_t) -1)
                snprintf(a.id, sizeof(a.id), "board");
        else
                snprintf(a.id, sizeof(a.id), "uid:%u", (unsigned) req->peer_uid);
        return a;
}

Store *api_store(ApiRequest *req) {
        return req->ctl->store;
}

int api_reply_entity(ApiRequest *req, unsigned status, const Entity *e, const void *obj) {
        return api_reply(req, status, json_from_entity(e, obj));
}

int api_reply_entities(ApiRequest *req, const Entity *e, void *items, size_t n) {
        int r = api_reply(req, 200, json_from_entities(e, items, n));
        entity_array_free(e, items, n);
        return r;
}

/* Reply with the input error from json_to_entity(), or pass on an internal one. */
int api_reply_input_error(ApiRequest *req, int r, char *error) {
        _cleanup_free_ char *e = error;

        if (r == -EINVAL)
                return api_reply_error(req, 400, "%s", strna(e));
        return r;
}

int api_require_body(ApiRequest *req) {
        if (!cJSON_IsObject(req->body)) {
                (void) api_reply_error(req, 400, "request body must be a JSON object");
                return 0;
        }
        return 1;
}

/* An agent may act only within its own company; replies 403 (and returns 0) otherwise. */
int api_check_company(ApiRequest *req, const char *company_id) {
        if (!req->caller_agent_id || streq_ptr(company_id, req->caller_company_id))
                return 1;
        (void) api_reply_error(req, 403, "agents may act only within their own company");
        return 0;
}

/* Operator actions: a run's agent gets 403. */
int api_within_quota(ApiRequest *req, QuotaKind kind) {
        static const char *const what[_QUOTA_MAX] = { "wakes", "comments" };
        static const char *const key[_QUOTA_MAX] = { "quota-wakes-per-minute", "quota-comments-per-minute" };
        const Config *c = req->ctl->config;
        unsigned limit = kind == QUOTA_WAKES ? c->quota_wakes_per_minute : c->quota_comments_per_minute, wait;
        int r;

        if (!req->caller_agent_id)
                return 1; /* the board has no quota */
        r = quota_take(req->ctl->quota, kind, req->caller_agent_id, limit, now_mono_usec(), &wait);
        if (r != -EDQUOT)
                return r < 0 ? r : 1;
        req->retry_after_sec = wait;
        (void) api_reply_error(req, 429, "agent %s asked for more than %u %s in a minute (%s); try again in %u s",
                               req->caller_agent_id, limit, what[kind], key[kind], wait);
        return 0;
}

int api_check_comment_size(ApiRequest *req, const char *body) {
        unsigned kib = req->ctl->config->quota_comment_kib;

        if (kib == 0 || !body || strlen(body) <= (size_t) kib * 1024)
                return 1;
        (void) api_reply_error(req, 413, "comment body longer than %u KiB (quota-comment-kib)", kib);
        return 0;
}

int api_require_board(ApiRequest *req, const char *what) {
        if (!req->caller_agent_id)
                return 1;
        (void) api_reply_error(req, 403, "only the board may %s", what);
        return 0;
}

/* Load a record by id; replies 404 (and returns 0) when it does not exist, 403 when the
 * caller is an agent of another company. */
int api_load(ApiRequest *req, const Entity *e, const char *id, void *ret) {
        const Field *company = entity_field_by_column(e, "company_id");
        int r = store_get(api_store(req), e, id, ret);

        if (r == -ENOENT) {
                (void) api_reply_error(req, 404, "%s '%.64s' not found", e->name, id);
                return 0;
        }
        if (r < 0)
                return r;
        r = api_check_company(req,
                              e == &company_entity ? ((Company *) ret)->id
                                      : company    ? *(char *const *) field_cptr(company, ret)
                                                   : NULL);
        if (r == 0)
                entity_done(e, ret);
        return r;
}

int api_stamp_updated(char **updated_at) {
        char now[ISO_TIME_MAX];
        int r = iso_time_now(now);
        return r < 0 ? r : free_and_strdup(updated_at, now);
}

/* Record an action by the caller in the activity log; details (may be NULL) is consumed. */
int api_add_activity(ApiRequest *req, const char *company_id, const char *action, const char *entity_type, const char *entity_id,
                     const char *agent_id, cJSON *details) {
        Actor actor = api_actor(req);
        return activity_record(api_store(req), company_id, actor.type, actor.id, action, entity_type, entity_id, agent_id, NULL,
                               details);
}

/* Write one record, what also says (may be NULL) and its activity row in one transaction:
 * insert when is_new, else update. details (may be NULL) is consumed. */
int api_save_with_activity_also(ApiRequest *req, const Entity *e, void *obj, bool is_new, const SaveAlso *also,
                                const char *company_id, const char *action, const char *entity_id, const char *agent_id,
                                cJSON *details) {
        _cleanup_json_ cJSON *d = details;
        _cleanup_(store_rollbackp) Store *tx = NULL;
        Store *s = api_store(req);
        int r;

        r = store_begin(s);
        if (r < 0)
                return r;
        tx = s;
        r = is_new ? store_insert(s, e, obj) : store_update(s, e, obj);
        if (r < 0)
                return r;
        if (also && (r = also->write(s, obj, also)) < 0)
                return r;
        r = api_add_activity(req, company_id, action, e->name, entity_id, agent_id, TAKE_PTR(d));
        if (r < 0)
                return r;
        r = store_commit(s);
        if (r < 0)
                return r;
        tx = NULL;
        return 0;
}

int api_save_with_activity(ApiRequest *req, const Entity *e, void *obj, bool is_new, const char *company_id, const char *action,
                           const char *entity_id, const char *agent_id, cJSON *details) {
        return api_save_with_activity_also(req, e, obj, is_new, NULL, company_id, action, entity_id, agent_id, details);
}

/* ?limit= within 1..API_LIST_LIMIT_MAX; replies 400 and returns 0 when invalid. */
int api_parse_limit(ApiRequest *req, size_t *ret) {
        const char *s = api_query(req, "limit");
        int64_t v;

        *ret = API_LIST_LIMIT_DEFAULT;
        if (!s)
                return 1;
        if (safe_atoi64(s, &v) < 0 || v < 1 || v > API_LIST_LIMIT_MAX) {
                (void) api_reply_error(req, 400, "limit must be an integer from 1 to %d", API_LIST_LIMIT_MAX);
                return 0;
        }
        *ret = (size_t) v;
        return 1;
}

int api_parse_page(ApiRequest *req, StorePage *ret) {
        const char *after = api_query(req, "after");
        int r;

        *ret = (StorePage){};
        r = api_parse_limit(req, &ret->limit);
        if (r <= 0)
                return r;
        if (after && (isempty(after) || strlen(after) > 2 * STORE_CURSOR_MAX)) {
                (void) api_reply_error(req, 400, "after must be the nextCursor of a page of this list");
                return 0;
        }
        ret->after = after;
        return 1;
}

int api_reply_page(ApiRequest *req, const Entity *e, int r, void *items, size_t n, StorePage *page) {
        if (r == -EINVAL && page->after)
                return api_reply_error(req, 400, "after must be the nextCursor of a page of this list");
        if (r < 0)
                return r;
        free(req->next_cursor);
        req->next_cursor = TAKE_PTR(page->next);
        return api_reply_entities(req, e, items, n);
}

int api_parse_uint_query(ApiRequest *req, const char *name, int64_t def, int64_t min, int64_t max, int64_t *ret) {
        const char *s = api_query(req, name);
        int64_t v;

        *ret = def;
        if (!s)
                return 1;
        if (safe_atoi64(s, &v) < 0 || v < min || v > max) {
                (void) api_reply_error(req, 400, "%s must be an integer from %" PRIi64 " to %" PRIi64, name, min, max);
                return 0;
        }
        *ret = v;
        return 1;
}

/* An issue by id or by identifier ("ACME-12"). */
int api_load_issue(ApiRequest *req, const char *key, Issue *ret) {
        int r;

        if (uuid_is_valid(key))
                return api_load(req, &issue_entity, key, ret);
        r = store_issue_by_identifier(api_store(req), key, ret);
        if (r < 0)
                return r;
        if (r == 0) {
                (void) api_reply_error(req, 404, "issue '%.64s' not found", key);
                return 0;
        }
        /* By identifier as by id: an agent sees only its own company's issues. */
        r = api_check_company(req, ret->company_id);
        if (r == 0)
                entity_done(&issue_entity, ret);
        return r;
}

/* The reopen and interrupt flags of a comment or an issue update (reference §8). Replies
 * and returns 0 when they are wrong. */
int api_parse_comment_flags(ApiRequest *req, bool *ret_reopen, bool *ret_interrupt) {
        const cJSON *reopen = cJSON_GetObjectItemCaseSensitive(req->body, "reopen"),
                    *interrupt = cJSON_GetObjectItemCaseSensitive(req->body, "interrupt");

        if (reopen && !cJSON_IsBool(reopen))
                return api_reply_error(req, 400, "field 'reopen' must be true or false"), 0;
        if (interrupt && !cJSON_IsBool(interrupt))
                return api_reply_error(req, 400, "field 'interrupt' must be true or false"), 0;
        if (cJSON_IsTrue(interrupt) && req->caller_agent_id)
                return api_reply_error(req, 403, "only the board may interrupt a run"), 0;
        *ret_reopen = cJSON_IsTrue(reopen);
        *ret_interrupt = cJSON_IsTrue(interrupt);
        return 1;
}

int api_reply_refusal(ApiRequest *req, int r, char *error) {
        _cleanup_free_ char *e = error;
        unsigned status;

        switch (r) {
        case -EINVAL:
                status = 400;
                break;
        case -EPERM:
                status = 403;
                break;
        case -ENOENT:
                status = 404;
                break;
        case -EBUSY:
        case -EEXIST:
                status = 409;
                break;
        case -EBADR:
                status = 422;
                break;
        default:
                return r;
        }
        return api_reply_error(req, status, "%s", e ?: strerror(-r));
}

/* A running run's row holds no usage until it ends: a coding CLI's spend so far comes from
 * its output as the budget follows it. */
static int run_fill_usage(ApiRequest *req, Run *run) {
        if (run->status != RUN_RUNNING || run->usage_json)
                return 0;
        return budget_live_usage(req->ctl, run->id, &run->usage_json);
}

int api_reply_run(ApiRequest *req, unsigned status, const char *run_id) {
        _cleanup_(run_donep) Run run = {};
        int r = api_load(req, &run_entity, run_id, &run);
        if (r <= 0)
                return r;
        /* Nor excerpts: they come from its log as it is now. */
        if (run.status == RUN_RUNNING)
                (void) supervisor_live_excerpts(req->ctl->supervisor, run.id, &run.stdout_excerpt, &run.stderr_excerpt);
        r = run_fill_usage(req, &run);
        if (r < 0)
                return r;
        return api_reply_entity(req, status, &run_entity, &run);
}

int api_reply_run_page(ApiRequest *req, int r, Run *items, size_t n, StorePage *page) {
        for (size_t i = 0; r >= 0 && i < n; i++) {
                int k = run_fill_usage(req, &items[i]);
                if (k < 0) {
                        entity_array_free(&run_entity, items, n);
                        free(page->next);
                        return k;
                }
        }
        return api_reply_page(req, &run_entity, r, items, n, page);
}
