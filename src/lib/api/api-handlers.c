/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Route handlers of the API (SPEC §7): companies, agents, issues, comments,
 * activity, health. Every change happens in one short transaction together
 * with its activity row; bad input is refused before anything is written.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/activity.h"
#include "control/adapter.h"
#include "api/api-internal.h"
#include "basic/util.h"
#include "control/wakeup.h"
#include "control/claim.h"
#include "control/finalize.h"
#include "control/stranded.h"
#include "store/issues.h"
#include "store/jsonmap.h"
#include "basic/log.h"
#include "control/control.h"
#include "store/model.h"
#include "control/sweep.h"
#include "supervise/runlog.h"
#include "control/scheduler.h"
#include "basic/time-util.h"
#include "basic/strv.h"

#define LIST_LIMIT_DEFAULT 200
#define LIST_LIMIT_MAX 1000

/* Who is calling: a process inside a run's cgroup acts as that run's agent (SPEC §7); any
 * other peer the socket lets in is the board, recorded with its uid. */
typedef struct Actor {
        ActorType type;
        char id[UUID_STRING_MAX + 8]; /* an agent id, or "uid:N" */
} Actor;

static Actor request_actor(const ApiRequest *req) {
        Actor a = { .type = ACTOR_USER };

        if (req->caller_agent_id) {
                a.type = ACTOR_AGENT;
                snprintf(a.id, sizeof(a.id), "%s", req->caller_agent_id);
        } else if (req->peer_uid == (uid_t) -1)
                snprintf(a.id, sizeof(a.id), "board");
        else
                snprintf(a.id, sizeof(a.id), "uid:%u", (unsigned) req->peer_uid);
        return a;
}

static Store *req_store(ApiRequest *req) {
        return req->ctl->store;
}

static int reply_entity(ApiRequest *req, unsigned status, const Entity *e, const void *obj) {
        return api_reply(req, status, json_from_entity(e, obj));
}

static int reply_entities(ApiRequest *req, const Entity *e, void *items, size_t n) {
        int r = api_reply(req, 200, json_from_entities(e, items, n));
        entity_array_free(e, items, n);
        return r;
}

/* Reply with the input error from json_to_entity(), or pass on an internal one. */
static int reply_input_error(ApiRequest *req, int r, char *error) {
        _cleanup_free_ char *e = error;

        if (r == -EINVAL)
                return api_reply_error(req, 400, "%s", strna(e));
        return r;
}

static int require_body(ApiRequest *req) {
        if (!cJSON_IsObject(req->body)) {
                (void) api_reply_error(req, 400, "request body must be a JSON object");
                return 0;
        }
        return 1;
}

/* An agent may act only within its own company; replies 403 (and returns 0) otherwise. */
static int check_company(ApiRequest *req, const char *company_id) {
        if (!req->caller_agent_id || streq_ptr(company_id, req->caller_company_id))
                return 1;
        (void) api_reply_error(req, 403, "agents may act only within their own company");
        return 0;
}

/* Operator actions: a run's agent gets 403. */
static int require_board(ApiRequest *req, const char *what) {
        if (!req->caller_agent_id)
                return 1;
        (void) api_reply_error(req, 403, "only the board may %s", what);
        return 0;
}

/* Load a record by id; replies 404 (and returns 0) when it does not exist, 403 when the
 * caller is an agent of another company. */
static int load(ApiRequest *req, const Entity *e, const char *id, void *ret) {
        const Field *company = entity_field_by_column(e, "company_id");
        int r = store_get(req_store(req), e, id, ret);

        if (r == -ENOENT) {
                (void) api_reply_error(req, 404, "%s '%.64s' not found", e->name, id);
                return 0;
        }
        if (r < 0)
                return r;
        r = check_company(req,
                          e == &company_entity ? ((Company *) ret)->id
                                  : company    ? *(char *const *) field_cptr(company, ret)
                                               : NULL);
        if (r == 0)
                entity_done(e, ret);
        return r;
}

static int stamp_updated(char **updated_at) {
        char now[ISO_TIME_MAX];
        int r = iso_time_now(now);
        return r < 0 ? r : free_and_strdup(updated_at, now);
}

/* Record an action by the caller in the activity log; details (may be NULL) is consumed. */
static int add_activity(ApiRequest *req, const char *company_id, const char *action, const char *entity_type,
                        const char *entity_id, const char *agent_id, cJSON *details) {
        Actor actor = request_actor(req);
        return activity_record(req_store(req), company_id, actor.type, actor.id, action, entity_type, entity_id, agent_id, NULL,
                               details);
}

/* More to write in the same transaction as a record (an agent's secrets). */
typedef struct SaveAlso {
        int (*write)(Store *s, const void *obj, const struct SaveAlso *also);
        char **secrets; /* names and values */
        char **secret_names; /* every secret the record has */
} SaveAlso;

/* Write one record, what also says (may be NULL) and its activity row in one transaction:
 * insert when is_new, else update. details (may be NULL) is consumed. */
static int save_with_activity_also(ApiRequest *req, const Entity *e, void *obj, bool is_new, const SaveAlso *also,
                                   const char *company_id, const char *action, const char *entity_id, const char *agent_id,
                                   cJSON *details) {
        _cleanup_json_ cJSON *d = details;
        _cleanup_(store_rollbackp) Store *tx = NULL;
        Store *s = req_store(req);
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
        r = add_activity(req, company_id, action, e->name, entity_id, agent_id, TAKE_PTR(d));
        if (r < 0)
                return r;
        r = store_commit(s);
        if (r < 0)
                return r;
        tx = NULL;
        return 0;
}

static int save_with_activity(ApiRequest *req, const Entity *e, void *obj, bool is_new, const char *company_id,
                              const char *action, const char *entity_id, const char *agent_id, cJSON *details) {
        return save_with_activity_also(req, e, obj, is_new, NULL, company_id, action, entity_id, agent_id, details);
}

/* ?limit= within 1..LIST_LIMIT_MAX; replies 400 and returns 0 when invalid. */
static int parse_limit(ApiRequest *req, size_t *ret) {
        const char *s = api_query(req, "limit");
        int64_t v;

        *ret = LIST_LIMIT_DEFAULT;
        if (!s)
                return 1;
        if (safe_atoi64(s, &v) < 0 || v < 1 || v > LIST_LIMIT_MAX) {
                (void) api_reply_error(req, 400, "limit must be an integer from 1 to %d", LIST_LIMIT_MAX);
                return 0;
        }
        *ret = (size_t) v;
        return 1;
}

/* ---- health ---- */

static int count_rows(ApiRequest *req, cJSON *o, const char *name, const char *table, const char *clause) {
        int64_t n;
        int r = store_count(req_store(req), table, clause, NULL, &n);
        if (r < 0)
                return r;
        return cJSON_AddNumberToObject(o, name, (double) n) ? 0 : -ENOMEM;
}

static int handle_health(ApiRequest *req) {
        Control *ctl = req->ctl;
        _cleanup_json_ cJSON *o = cJSON_CreateObject();
        cJSON *counts;
        int r;

        /* An agent learns that corral answers, and nothing about the host or other companies. */
        if (req->caller_agent_id) {
                if (!o || !cJSON_AddStringToObject(o, "status", "ok") || !cJSON_AddStringToObject(o, "runId", req->caller_run_id))
                        return -ENOMEM;
                return api_reply(req, 200, TAKE_PTR(o));
        }
        if (!o || !cJSON_AddStringToObject(o, "status", "ok") || !cJSON_AddStringToObject(o, "version", PACKAGE_VERSION) ||
            !cJSON_AddNumberToObject(o, "schemaVersion", store_schema_version(ctl->store)) ||
            !cJSON_AddNumberToObject(o, "pid", getpid()) ||
            !cJSON_AddNumberToObject(o, "uptimeSec", (double) ((now_usec() - ctl->started_usec) / 1000000)) ||
            !cJSON_AddStringToObject(o, "placement", placement_kind_to_string(ctl->config->placement)) ||
            !cJSON_AddStringToObject(o, "stateDir", ctl->config->state_dir) ||
            !cJSON_AddBoolToObject(o, "socketActivated", ctl->socket_activated))
                return -ENOMEM;
        counts = cJSON_AddObjectToObject(o, "counts");
        if (!counts)
                return -ENOMEM;
        if ((r = count_rows(req, counts, "companies", "companies", NULL)) < 0 ||
            (r = count_rows(req, counts, "agents", "agents", NULL)) < 0 ||
            (r = count_rows(req, counts, "issues", "issues", NULL)) < 0 ||
            (r = count_rows(req, counts, "activeRuns", "heartbeat_runs", "WHERE status IN ('queued', 'running')")) < 0)
                return r;
        return api_reply(req, 200, TAKE_PTR(o));
}

/* ---- companies ---- */

static int handle_company_list(ApiRequest *req) {
        void *items;
        size_t n;
        int r;

        /* An agent's list is its own company: it learns no other's name. */
        if (req->caller_agent_id)
                r = store_list(req_store(req), &company_entity, "WHERE id = ?1",
                               (const char *const[]){ req->caller_company_id, NULL }, 0, &items, &n);
        else
                r = store_list(req_store(req), &company_entity, "ORDER BY created_at, id", NULL, 0, &items, &n);
        return r < 0 ? r : reply_entities(req, &company_entity, items, n);
}

static int handle_company_get(ApiRequest *req) {
        _cleanup_(company_donep) Company c = {};
        int r = load(req, &company_entity, req->params[0], &c);
        return r <= 0 ? r : reply_entity(req, 200, &company_entity, &c);
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
                int64_t n;
                if (!candidate)
                        return -ENOMEM;
                r = store_count(req_store(req), "companies", "WHERE issue_prefix = ?1", (const char *const[]){ candidate, NULL },
                                &n);
                if (r < 0)
                        return r;
                if (n == 0) {
                        *ret = TAKE_PTR(candidate);
                        return 0;
                }
        }
        return -EEXIST;
}

static int validate_company(ApiRequest *req, const Company *c) {
        if (c->budget_monthly_cents < 0) {
                (void) api_reply_error(req, 400, "budgetMonthlyCents must not be negative");
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
        Store *s = req_store(req);
        char *error = NULL;
        int r;

        if (!require_board(req, "create companies"))
                return 0;
        if (!require_body(req))
                return 0;
        r = entity_init(&company_entity, &c);
        if (r < 0)
                return r;
        r = json_to_entity(&company_entity, req->body, FIELD_CREATE, NULL, &c, &error);
        if (r < 0)
                return reply_input_error(req, r, error);
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
        r = add_activity(req, c.id, "company.created", "company", c.id, NULL, NULL);
        if (r < 0)
                return r;
        r = store_commit(s);
        if (r < 0)
                return r;
        tx = NULL;
        return reply_entity(req, 201, &company_entity, &c);
}

static int handle_company_patch(ApiRequest *req) {
        _cleanup_(company_donep) Company c = {};
        char *error = NULL;
        int r;

        if (!require_board(req, "change companies"))
                return 0;
        if (!require_body(req))
                return 0;
        r = load(req, &company_entity, req->params[0], &c);
        if (r <= 0)
                return r;
        r = json_to_entity(&company_entity, req->body, FIELD_PATCH, NULL, &c, &error);
        if (r < 0)
                return reply_input_error(req, r, error);
        r = validate_company(req, &c);
        if (r <= 0)
                return r;
        r = stamp_updated(&c.updated_at);
        if (r < 0)
                return r;
        r = save_with_activity(req, &company_entity, &c, false, c.id, "company.updated", c.id, NULL,
                               cJSON_Duplicate(req->body, true));
        return r < 0 ? r : reply_entity(req, 200, &company_entity, &c);
}

static int handle_company_activity(ApiRequest *req) {
        _cleanup_(company_donep) Company c = {};
        size_t limit, n;
        void *items;
        int r;

        r = load(req, &company_entity, req->params[0], &c);
        if (r <= 0)
                return r;
        r = parse_limit(req, &limit);
        if (r <= 0)
                return r;
        r = store_list(req_store(req), &activity_entity, "WHERE company_id = ?1 ORDER BY created_at DESC, rowid DESC",
                       (const char *const[]){ c.id, NULL }, limit, &items, &n);
        return r < 0 ? r : reply_entities(req, &activity_entity, items, n);
}

/* ---- agents ---- */

/* Checks of an agent record beyond the field types. */
static int validate_agent(ApiRequest *req, const Agent *a) {
        if (strlen(a->name) > 255) {
                (void) api_reply_error(req, 400, "name must be at most 255 bytes");
                return 0;
        }
        if (isempty(a->role)) {
                (void) api_reply_error(req, 400, "role must not be empty");
                return 0;
        }
        _cleanup_free_ char *error = NULL;
        int r = adapter_validate_config(a->adapter_type, a->adapter_config, &error);
        if (r == -EINVAL) {
                (void) api_reply_error(req, 400, "%s", strna(error));
                return 0;
        }
        return r < 0 ? r : 1;
}

/* Who an agent runs as (adapterConfig.sandbox.user) is root's choice alone: a member of the
 * socket's group must not get an agent to run as root or as another user. before is the
 * stored adapterConfig, NULL for a new agent. Replies 403 and returns 0 otherwise. */
static int check_sandbox_user(ApiRequest *req, const char *before, const char *after) {
        _cleanup_free_ char *old_user = NULL, *new_user = NULL;
        int r;

        if ((r = sandbox_config_user(before, &old_user)) < 0 || (r = sandbox_config_user(after, &new_user)) < 0)
                return r;
        if (streq_ptr(old_user, new_user) || req->peer_uid == 0)
                return 1;
        (void) api_reply_error(req, 403, "only root may choose the user an agent runs as (adapterConfig.sandbox.user)");
        return 0;
}

static int write_agent_secrets(Store *s, const void *obj, const SaveAlso *also) {
        const Agent *a = obj;
        int r;

        for (size_t i = 0; also->secrets && also->secrets[i]; i += 2)
                if ((r = store_agent_secret_set(s, a->id, also->secrets[i], also->secrets[i + 1])) < 0)
                        return r;
        return store_agent_secrets_retain(s, a->id, (const char *const *) also->secret_names);
}

static void save_also_done(SaveAlso *also) {
        strv_free(also->secrets);
        strv_free(also->secret_names);
}

/* Take the secret values out of the agent's adapterConfig (they are stored apart and
 * never shown); a secret kept as {"secret": true} must have a value stored already.
 * Replies 400 and returns 0 otherwise. */
static int take_agent_secrets(ApiRequest *req, Agent *a, SaveAlso *ret) {
        _cleanup_strv_free_ char **stored = NULL;
        SaveAlso also = { .write = write_agent_secrets };
        int r;

        r = adapter_take_secrets(&a->adapter_config, &also.secrets, &also.secret_names);
        if (r < 0)
                return r;
        r = store_agent_secrets(req_store(req), a->id, &stored);
        if (r < 0) {
                save_also_done(&also);
                return r;
        }
        for (size_t i = 0; also.secret_names && also.secret_names[i]; i++) {
                const char *name = also.secret_names[i];
                if (!strv_pair_value(also.secrets, name) && !strv_pair_value(stored, name)) {
                        (void) api_reply_error(req, 400,
                                               "adapterConfig.env.%s is {\"secret\": true} but no value is stored: "
                                               "give it as {\"secret\": \"VALUE\"}",
                                               name);
                        save_also_done(&also);
                        return 0;
                }
        }
        *ret = also;
        return 1;
}

/* What the activity log keeps of a change to an agent: the body with its adapterConfig as
 * stored, never a secret's value. */
static cJSON *agent_change_details(const ApiRequest *req, const Agent *a) {
        cJSON *d = cJSON_Duplicate(req->body, true);

        if (d && cJSON_GetObjectItemCaseSensitive(d, "adapterConfig"))
                (void) cJSON_ReplaceItemInObjectCaseSensitive(d, "adapterConfig", cJSON_Parse(a->adapter_config));
        return d;
}

static int handle_agent_list(ApiRequest *req) {
        _cleanup_(company_donep) Company c = {};
        size_t n;
        void *items;
        int r;

        r = load(req, &company_entity, req->params[0], &c);
        if (r <= 0)
                return r;
        r = store_list(req_store(req), &agent_entity, "WHERE company_id = ?1 ORDER BY created_at, id",
                       (const char *const[]){ c.id, NULL }, 0, &items, &n);
        return r < 0 ? r : reply_entities(req, &agent_entity, items, n);
}

static int handle_agent_get(ApiRequest *req) {
        _cleanup_(agent_donep) Agent a = {};
        int r = load(req, &agent_entity, req->params[0], &a);
        return r <= 0 ? r : reply_entity(req, 200, &agent_entity, &a);
}

static int handle_agent_create(ApiRequest *req) {
        _cleanup_(company_donep) Company c = {};
        _cleanup_(agent_donep) Agent a = {};
        char *error = NULL;
        int r;

        if (!require_board(req, "create agents"))
                return 0;
        if (!require_body(req))
                return 0;
        r = load(req, &company_entity, req->params[0], &c);
        if (r <= 0)
                return r;
        r = entity_init(&agent_entity, &a);
        if (r < 0)
                return r;
        /* The company comes from the path; a companyId in the body must agree with it. */
        const cJSON *cid = cJSON_GetObjectItemCaseSensitive(req->body, "companyId");
        if (cid && (!cJSON_IsString(cid) || !streq(cid->valuestring, c.id)))
                return api_reply_error(req, 400, "companyId in the body does not match the company in the path");
        r = json_to_entity(&agent_entity, req->body, FIELD_CREATE, (const char *const[]){ "companyId", NULL }, &a, &error);
        if (r < 0)
                return reply_input_error(req, r, error);
        r = validate_agent(req, &a);
        if (r <= 0)
                return r;
        r = check_sandbox_user(req, NULL, a.adapter_config);
        if (r <= 0)
                return r;
        r = free_and_strdup(&a.company_id, c.id);
        if (r < 0)
                return r;
        r = record_stamp(&a.id, &a.created_at, &a.updated_at, NULL);
        if (r < 0)
                return r;
        if (c.require_board_approval_for_new_agents)
                a.status = AGENT_PENDING_APPROVAL;
        _cleanup_(save_also_done) SaveAlso secrets = {};
        r = take_agent_secrets(req, &a, &secrets);
        if (r <= 0)
                return r;
        r = save_with_activity_also(req, &agent_entity, &a, true, &secrets, c.id, "agent.created", a.id, a.id, NULL);
        if (r < 0)
                return r;
        scheduler_reschedule(req->ctl->scheduler);
        return reply_entity(req, 201, &agent_entity, &a);
}

static int handle_agent_patch(ApiRequest *req) {
        _cleanup_(agent_donep) Agent a = {};
        char *error = NULL;
        int r;

        if (!require_board(req, "change agents"))
                return 0;
        if (!require_body(req))
                return 0;
        r = load(req, &agent_entity, req->params[0], &a);
        if (r <= 0)
                return r;
        _cleanup_free_ char *config_before = strdup(a.adapter_config);
        if (!config_before)
                return -ENOMEM;
        r = json_to_entity(&agent_entity, req->body, FIELD_PATCH, NULL, &a, &error);
        if (r < 0)
                return reply_input_error(req, r, error);
        r = validate_agent(req, &a);
        if (r <= 0)
                return r;
        r = check_sandbox_user(req, config_before, a.adapter_config);
        if (r <= 0)
                return r;
        r = stamp_updated(&a.updated_at);
        if (r < 0)
                return r;
        _cleanup_(save_also_done) SaveAlso secrets = {};
        r = take_agent_secrets(req, &a, &secrets);
        if (r <= 0)
                return r;
        r = save_with_activity_also(req, &agent_entity, &a, false, &secrets, a.company_id, "agent.updated", a.id, a.id,
                                    agent_change_details(req, &a));
        if (r < 0)
                return r;
        scheduler_reschedule(req->ctl->scheduler);
        return reply_entity(req, 200, &agent_entity, &a);
}

typedef enum AgentAction {
        AGENT_ACTION_PAUSE,
        AGENT_ACTION_RESUME,
        AGENT_ACTION_TERMINATE,
} AgentAction;

static int agent_transition(ApiRequest *req, AgentAction action) {
        static const char *const action_names[] = { "agent.paused", "agent.resumed", "agent.terminated" };
        _cleanup_(agent_donep) Agent a = {};
        char now[ISO_TIME_MAX];
        int r;

        if (!require_board(req, "pause, resume or terminate agents"))
                return 0;
        r = load(req, &agent_entity, req->params[0], &a);
        if (r <= 0)
                return r;
        if (req->body && !cJSON_IsObject(req->body))
                return api_reply_error(req, 400, "request body must be a JSON object");
        r = iso_time_now(now);
        if (r < 0)
                return r;

        switch (action) {
        case AGENT_ACTION_PAUSE:
                if (a.status == AGENT_TERMINATED)
                        return api_reply_error(req, 409, "agent is terminated and cannot be paused");
                if (a.status != AGENT_PAUSED) {
                        a.status = AGENT_PAUSED;
                        a.pause_reason = PAUSE_MANUAL;
                        r = free_and_strdup(&a.paused_at, now);
                }
                break;
        case AGENT_ACTION_RESUME:
                if (a.status != AGENT_PAUSED)
                        return api_reply_error(req, 409, "agent is not paused (status %s)", agent_status_to_string(a.status));
                a.status = AGENT_IDLE;
                a.pause_reason = -1;
                r = free_and_strdup(&a.paused_at, NULL);
                break;
        case AGENT_ACTION_TERMINATE:
                a.status = AGENT_TERMINATED;
                break;
        }
        if (r < 0)
                return r;
        r = free_and_strdup(&a.updated_at, now);
        if (r < 0)
                return r;
        r = save_with_activity(req, &agent_entity, &a, false, a.company_id, action_names[action], a.id, a.id, NULL);
        if (r < 0)
                return r;
        /* A paused or terminated agent keeps nothing running (reference §6.2). */
        if (action != AGENT_ACTION_RESUME)
                (void) finalize_cancel_agent_runs(req->ctl, a.id);
        else {
                claim_start_next(req->ctl, a.id);
                scheduler_reschedule(req->ctl->scheduler);
        }
        return reply_entity(req, 200, &agent_entity, &a);
}

static int handle_agent_pause(ApiRequest *req) {
        return agent_transition(req, AGENT_ACTION_PAUSE);
}

static int handle_agent_resume(ApiRequest *req) {
        return agent_transition(req, AGENT_ACTION_RESUME);
}

static int handle_agent_terminate(ApiRequest *req) {
        return agent_transition(req, AGENT_ACTION_TERMINATE);
}

/* ---- issue-driven wakes (reference §3.6) ---- */

/* Wake an agent about an issue; fire-and-forget: a wake that fails is logged, the change
 * that caused it stands. */
static void wake_for_issue(ApiRequest *req, const char *agent_id, WakeupSource source, const char *reason, const Issue *issue,
                           const char *mutation, const char *comment_id, const char *context_source) {
        _cleanup_json_ cJSON *payload = cJSON_CreateObject(), *ctx = cJSON_CreateObject();
        _cleanup_free_ char *p = NULL, *c = NULL, *run_id = NULL, *skip = NULL;
        Actor actor = request_actor(req);
        WakeOutcome outcome;
        int r;

        if (!payload || !ctx)
                return;
        cJSON_AddStringToObject(payload, "issueId", issue->id);
        if (mutation)
                cJSON_AddStringToObject(payload, "mutation", mutation);
        if (comment_id)
                cJSON_AddStringToObject(payload, "commentId", comment_id);
        if (req->interrupted_run_id)
                cJSON_AddStringToObject(payload, "interruptedRunId", req->interrupted_run_id);
        cJSON_AddStringToObject(ctx, "source", context_source);
        p = cJSON_PrintUnformatted(payload);
        c = cJSON_PrintUnformatted(ctx);
        if (!p || !c)
                return;
        WakeRequest w = { .source = source,
                          .trigger_detail = -1,
                          .reason = reason,
                          .payload_json = p,
                          .context_json = c,
                          .actor_type = actor.type,
                          .actor_id = actor.id };
        r = wakeup_request(req->ctl, agent_id, &w, &outcome, &run_id, &skip);
        if (r == -EPERM)
                log_debug("Not waking agent %s about %s: it is not invokable.", agent_id, issue->identifier);
        else if (r < 0)
                log_warning_errno(r, "Failed to wake agent %s about %s, ignoring: %m", agent_id, issue->identifier);
        else
                log_debug("Woke agent %s about %s (%s): %s.", agent_id, issue->identifier, reason,
                          wake_outcome_to_string(outcome));
}

static bool issue_closed(IssueStatus s) {
        return s == ISSUE_DONE || s == ISSUE_CANCELLED;
}

/* Whether body names the agent as "@name" (compared without case, ending at a non-name character). */
static bool mentions(const char *body, const char *name) {
        size_t len = strlen(name);

        for (const char *p = strchr(body, '@'); p; p = strchr(p + 1, '@')) {
                /* Only a full match may look at the character after it. */
                if (strncasecmp(p + 1, name, len) != 0)
                        continue;
                char after = p[1 + len];
                if (!(isalnum((unsigned char) after) || after == '_' || after == '-'))
                        return true;
        }
        return false;
}

/* Wake the agents of the company a comment mentions. */
static void wake_mentions(ApiRequest *req, const Issue *issue, const char *body, const char *comment_id,
                          const char *author_agent_id) {
        void *items;
        size_t n;

        if (!strchr(body, '@') ||
            store_list(req_store(req), &agent_entity, "WHERE company_id = ?1", (const char *const[]){ issue->company_id, NULL },
                       0, &items, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                const Agent *a = (const Agent *) items + i;
                bool mentioned = mentions(body, a->name);
                /* An agent's own comment never wakes it (SPEC §3 difference 2); the assignee got its wake. */
                if (mentioned && !streq_ptr(a->id, author_agent_id) && !streq_ptr(a->id, issue->assignee_agent_id))
                        wake_for_issue(req, a->id, WAKEUP_SOURCE_AUTOMATION, "issue_comment_mentioned", issue, "comment",
                                       comment_id, "comment.mention");
        }
        entity_array_free(&agent_entity, items, n);
}

/* The wakes an issue change causes: assignment, status changes that resume work, comments
 * and mentions. before is NULL for a new issue. */
static void issue_wakes(ApiRequest *req, const Issue *before, const Issue *after, const char *comment_id, const char *body,
                        const char *author_agent_id, bool reopened) {
        const char *assignee = after->assignee_agent_id;
        bool mentioned_assignee = false;

        /* A comment that reopened a closed issue wakes its assignee for that reason alone. */
        if (reopened && assignee && !streq_ptr(assignee, author_agent_id))
                wake_for_issue(req, assignee, WAKEUP_SOURCE_AUTOMATION, "issue_reopened_via_comment", after, "comment",
                               comment_id, "issue.comment.reopen");
        if (reopened) {
                if (body && comment_id)
                        wake_mentions(req, after, body, comment_id, author_agent_id);
                return;
        }

        if (body && assignee) {
                _cleanup_(agent_donep) Agent a = {};
                if (store_get(req_store(req), &agent_entity, assignee, &a) >= 0)
                        mentioned_assignee = mentions(body, a.name);
        }
        if (assignee && !streq_ptr(assignee, author_agent_id)) {
                bool assigned = !before || !streq_ptr(before->assignee_agent_id, assignee);
                if (assigned && after->status != ISSUE_BACKLOG)
                        wake_for_issue(req, assignee, WAKEUP_SOURCE_ASSIGNMENT, "issue_assigned", after,
                                       before ? "update" : "create", comment_id, before ? "issue.update" : "issue.create");
                else if (!assigned && before->status != after->status &&
                         ((before->status == ISSUE_BACKLOG && !issue_closed(after->status)) ||
                          (after->status == ISSUE_TODO && (before->status == ISSUE_BLOCKED || issue_closed(before->status)))))
                        wake_for_issue(req, assignee, WAKEUP_SOURCE_AUTOMATION, "issue_status_changed", after, "update",
                                       comment_id, "issue.status_change");
                else if (!assigned && comment_id && !issue_closed(after->status))
                        wake_for_issue(req, assignee, WAKEUP_SOURCE_AUTOMATION,
                                       mentioned_assignee ? "issue_comment_mentioned" : "issue_commented", after, "comment",
                                       comment_id, "issue.comment");
        }
        if (body && comment_id)
                wake_mentions(req, after, body, comment_id, author_agent_id);
}

/* An issue became done: every issue it blocked whose blockers are now all done wakes its
 * assignee (reference §3.6, issue_blockers_resolved). */
static void wake_unblocked(ApiRequest *req, const Issue *done) {
        size_t n;
        void *items;

        if (store_list(req_store(req), &issue_entity,
                       "WHERE id IN (SELECT related_issue_id FROM issue_relations WHERE issue_id = ?1 AND type = 'blocks') "
                       "AND assignee_agent_id IS NOT NULL AND status NOT IN ('backlog', 'done', 'cancelled') "
                       "AND NOT EXISTS (SELECT 1 FROM issue_relations rel JOIN issues b ON b.id = rel.issue_id "
                       "WHERE rel.related_issue_id = issues.id AND rel.type = 'blocks' AND b.status != 'done')",
                       (const char *const[]){ done->id, NULL }, 0, &items, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                const Issue *d = (const Issue *) items + i;
                wake_for_issue(req, d->assignee_agent_id, WAKEUP_SOURCE_AUTOMATION, "issue_blockers_resolved", d,
                               "blockers_resolved", NULL, "issue.blockers_resolved");
        }
        entity_array_free(&issue_entity, items, n);
}

/* ---- issues ---- */

/* An issue by id or by identifier ("ACME-12"). */
static int load_issue(ApiRequest *req, const char *key, Issue *ret) {
        void *items;
        size_t n;
        int r;

        if (uuid_is_valid(key))
                return load(req, &issue_entity, key, ret);
        r = store_list(req_store(req), &issue_entity, "WHERE identifier = ?1", (const char *const[]){ key, NULL }, 1, &items, &n);
        if (r < 0)
                return r;
        if (n == 0) {
                free(items);
                (void) api_reply_error(req, 404, "issue '%.64s' not found", key);
                return 0;
        }
        memcpy(ret, items, sizeof(Issue));
        free(items);
        return 1;
}

/* References an issue makes must stay inside its company. */
static int validate_issue(ApiRequest *req, const Issue *issue) {
        int r;

        if (issue->assignee_agent_id && issue->assignee_user_id) {
                (void) api_reply_error(req, 422,
                                       "an issue has at most one assignee: set assigneeAgentId or assigneeUserId, not both");
                return 0;
        }
        if (issue->assignee_agent_id) {
                _cleanup_(agent_donep) Agent a = {};
                r = store_get(req_store(req), &agent_entity, issue->assignee_agent_id, &a);
                if (r == -ENOENT || (r >= 0 && !streq(a.company_id, issue->company_id))) {
                        (void) api_reply_error(req, 422, "assigneeAgentId '%.64s': no such agent in this company",
                                               issue->assignee_agent_id);
                        return 0;
                }
                if (r < 0)
                        return r;
        }
        if (issue->parent_id) {
                _cleanup_(issue_donep) Issue p = {};
                if (streq_ptr(issue->parent_id, issue->id)) {
                        (void) api_reply_error(req, 422, "an issue cannot be its own parent");
                        return 0;
                }
                r = store_get(req_store(req), &issue_entity, issue->parent_id, &p);
                if (r == -ENOENT || (r >= 0 && !streq(p.company_id, issue->company_id))) {
                        (void) api_reply_error(req, 422, "parentId '%.64s': no such issue in this company", issue->parent_id);
                        return 0;
                }
                if (r < 0)
                        return r;
        }
        return 1;
}

/* The issue as it is now: a wake caused by the change may have taken its lock. */
static int reply_issue(ApiRequest *req, unsigned status, const char *id) {
        _cleanup_(issue_donep) Issue i = {};
        int r = load(req, &issue_entity, id, &i);
        return r <= 0 ? r : reply_entity(req, status, &issue_entity, &i);
}

static int handle_issue_list(ApiRequest *req) {
        _cleanup_(company_donep) Company c = {};
        const char *status = api_query(req, "status"), *assignee = api_query(req, "assigneeAgentId");
        char clause[256];
        const char *args[4] = { NULL };
        size_t n_args = 0, limit, n;
        void *items;
        int r;

        r = load(req, &company_entity, req->params[0], &c);
        if (r <= 0)
                return r;
        r = parse_limit(req, &limit);
        if (r <= 0)
                return r;
        if (!api_query(req, "limit"))
                limit = 0;
        args[n_args++] = c.id;
        snprintf(clause, sizeof(clause), "WHERE company_id = ?1");
        if (status) {
                if (issue_status_from_string(status) < 0)
                        return api_reply_error(req, 400, "invalid status '%.64s'", status);
                args[n_args++] = status;
                strcat(clause, " AND status = ?2");
        }
        if (assignee) {
                args[n_args++] = assignee;
                strcat(clause, n_args == 3 ? " AND assignee_agent_id = ?3" : " AND assignee_agent_id = ?2");
        }
        strcat(clause, " ORDER BY issue_number");
        r = store_list(req_store(req), &issue_entity, clause, args, limit, &items, &n);
        return r < 0 ? r : reply_entities(req, &issue_entity, items, n);
}

static int handle_issue_get(ApiRequest *req) {
        _cleanup_(issue_donep) Issue i = {};
        int r = load_issue(req, req->params[0], &i);
        return r <= 0 ? r : reply_entity(req, 200, &issue_entity, &i);
}

static int handle_issue_create(ApiRequest *req) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(company_donep) Company c = {};
        _cleanup_(issue_donep) Issue i = {};
        _cleanup_free_ char *prefix = NULL;
        Store *s = req_store(req);
        char *error = NULL;
        int r;

        if (!require_body(req))
                return 0;
        r = load(req, &company_entity, req->params[0], &c);
        if (r <= 0)
                return r;
        r = entity_init(&issue_entity, &i);
        if (r < 0)
                return r;
        r = json_to_entity(&issue_entity, req->body, FIELD_CREATE, NULL, &i, &error);
        if (r < 0)
                return reply_input_error(req, r, error);
        r = free_and_strdup(&i.company_id, c.id);
        if (r < 0)
                return r;
        r = record_stamp(&i.id, &i.created_at, &i.updated_at, NULL);
        if (r < 0)
                return r;
        r = validate_issue(req, &i);
        if (r <= 0)
                return r;
        r = issue_apply_create_rules(&i, i.created_at);
        if (r < 0)
                return r;

        r = store_begin(s);
        if (r < 0)
                return r;
        tx = s;
        r = store_issue_counter_next(s, c.id, &i.issue_number, &prefix);
        if (r < 0)
                return r;
        i.identifier = strprintf("%s-%" PRIi64, prefix, i.issue_number);
        if (!i.identifier)
                return -ENOMEM;
        r = store_insert(s, &issue_entity, &i);
        if (r < 0)
                return r;
        r = add_activity(req, c.id, "issue.created", "issue", i.id, i.assignee_agent_id, NULL);
        if (r < 0)
                return r;
        r = store_commit(s);
        if (r < 0)
                return r;
        tx = NULL;
        issue_wakes(req, NULL, &i, NULL, NULL, NULL, false);
        return reply_issue(req, 201, i.id);
}

static int insert_comment(ApiRequest *req, const Issue *issue, const char *body, IssueComment *ret) {
        _cleanup_(comment_donep) IssueComment c = {};
        Actor actor = request_actor(req);
        cJSON *details;
        int r;

        r = record_stamp(&c.id, &c.created_at, &c.updated_at, NULL);
        if (r < 0)
                return r;
        if (free_and_strdup(&c.company_id, issue->company_id) < 0 || free_and_strdup(&c.issue_id, issue->id) < 0 ||
            free_and_strdup(&c.body, body) < 0)
                return -ENOMEM;
        /* An agent's comment names the agent and the run that wrote it; the board's names the user. */
        if (actor.type == ACTOR_AGENT ? free_and_strdup(&c.author_agent_id, actor.id) < 0 ||
                            free_and_strdup(&c.created_by_run_id, req->caller_run_id) < 0
                                      : free_and_strdup(&c.author_user_id, actor.id) < 0)
                return -ENOMEM;
        r = store_insert(req_store(req), &comment_entity, &c);
        if (r < 0)
                return r;
        details = cJSON_CreateObject();
        if (!details || !cJSON_AddStringToObject(details, "commentId", c.id) ||
            !cJSON_AddStringToObject(details, "identifier", issue->identifier)) {
                cJSON_Delete(details);
                return -ENOMEM;
        }
        r = add_activity(req, issue->company_id, "issue.comment_added", "issue", issue->id, NULL, details);
        if (r < 0)
                return r;
        if (ret) {
                memcpy(ret, &c, sizeof(c));
                memset(&c, 0, sizeof(c));
        }
        return 0;
}

/* An issue update's activity details: the fields asked for and, for a status change, the old status. */
static cJSON *issue_update_details(const cJSON *body, const Issue *before, const Issue *after) {
        cJSON *d = cJSON_Duplicate(body, true);

        if (!d)
                return NULL;
        cJSON_DeleteItemFromObjectCaseSensitive(d, "comment");
        cJSON_AddStringToObject(d, "identifier", after->identifier);
        if (before->status != after->status) {
                cJSON_DeleteItemFromObjectCaseSensitive(d, "status");
                cJSON_AddStringToObject(d, "status", issue_status_to_string(after->status));
                cJSON_AddStringToObject(d, "previousStatus", issue_status_to_string(before->status));
        }
        return d;
}

/* The reopen and interrupt flags of a comment or an issue update (reference §8). Replies
 * and returns 0 when they are wrong. */
static int parse_comment_flags(ApiRequest *req, bool *ret_reopen, bool *ret_interrupt) {
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

/* Reopening a closed issue: back to todo, as the issue's update rules say. */
static int reopen_issue(Issue *issue, const char *now) {
        _cleanup_(issue_donep) Issue before = {};
        int r;

        r = entity_copy(&issue_entity, issue, &before);
        if (r < 0)
                return r;
        issue->status = ISSUE_TODO;
        return issue_apply_update_rules(&before, issue, true, now);
}

/* interrupt: cancel the issue's running execution run, or else its assignee's running run on
 * it (reference §6.2); the wakes of this request then name the run. */
static int interrupt_issue_run(ApiRequest *req, const Issue *issue, char run_id[static UUID_STRING_MAX]) {
        void *items;
        size_t n;
        int r;

        run_id[0] = '\0';
        r = store_list(
                req_store(req), &run_entity,
                "WHERE status = 'running' AND (id = ?1 OR (agent_id = ?2 AND json_extract(context_snapshot, '$.issueId') = ?3)) "
                "ORDER BY id = ?1 DESC, created_at",
                (const char *const[]){ strempty(issue->execution_run_id), strempty(issue->assignee_agent_id), issue->id, NULL },
                1, &items, &n);
        if (r < 0)
                return r;
        if (n > 0)
                snprintf(run_id, UUID_STRING_MAX, "%s", ((Run *) items)->id);
        entity_array_free(&run_entity, items, n);
        if (!run_id[0])
                return 0;
        r = finalize_cancel_run(req->ctl, run_id);
        if (r == -EREMCHG) {
                log_warning("Run %s is running but not tracked by this corrald: not interrupting it.", run_id);
                run_id[0] = '\0';
                return 0;
        }
        if (r < 0 && r != -ESTALE)
                return r;
        cJSON *d = cJSON_CreateObject();
        if (d) {
                cJSON_AddStringToObject(d, "source", "issue_comment_interrupt");
                cJSON_AddStringToObject(d, "issueId", issue->id);
        }
        r = add_activity(req, issue->company_id, "heartbeat.cancelled", "heartbeat_run", run_id, NULL, d);
        if (r < 0)
                return r;
        req->interrupted_run_id = run_id;
        return 0;
}

static int handle_issue_patch(ApiRequest *req) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(issue_donep) Issue before = {}, after = {};
        Store *s = req_store(req);
        const cJSON *comment;
        char *error = NULL, interrupted[UUID_STRING_MAX];
        bool reopen, interrupt;
        int r;

        if (!require_body(req))
                return 0;
        r = load_issue(req, req->params[0], &before);
        if (r <= 0)
                return r;
        comment = cJSON_GetObjectItemCaseSensitive(req->body, "comment");
        if (comment && (!cJSON_IsString(comment) || isempty(comment->valuestring)))
                return api_reply_error(req, 400, "field 'comment' must be a non-empty string");
        if (!parse_comment_flags(req, &reopen, &interrupt))
                return 0;
        r = entity_copy(&issue_entity, &before, &after);
        if (r < 0)
                return r;
        r = json_to_entity(&issue_entity, req->body, FIELD_PATCH, (const char *const[]){ "comment", "reopen", "interrupt", NULL },
                           &after, &error);
        if (r < 0)
                return reply_input_error(req, r, error);
        /* reopen with a comment moves a closed issue back to todo, unless the update sets a status. */
        bool reopened = reopen && comment && issue_closed(before.status) && !json_has_field(req->body, "status");
        if (reopened)
                after.status = ISSUE_TODO;
        r = validate_issue(req, &after);
        if (r <= 0)
                return r;
        r = stamp_updated(&after.updated_at);
        if (r < 0)
                return r;
        r = issue_apply_update_rules(&before, &after, json_has_field(req->body, "status") || reopened, after.updated_at);
        if (r < 0)
                return r;

        r = store_begin(s);
        if (r < 0)
                return r;
        tx = s;
        r = store_update(s, &issue_entity, &after);
        if (r < 0)
                return r;
        cJSON *details = issue_update_details(req->body, &before, &after);
        if (details && reopened) {
                cJSON_DeleteItemFromObjectCaseSensitive(details, "reopen");
                cJSON_AddBoolToObject(details, "reopened", true);
                cJSON_AddStringToObject(details, "reopenedFrom", issue_status_to_string(before.status));
                cJSON_DeleteItemFromObjectCaseSensitive(details, "status");
                cJSON_AddStringToObject(details, "status", "todo");
        }
        r = add_activity(req, after.company_id, "issue.updated", "issue", after.id, after.assignee_agent_id, details);
        if (r < 0)
                return r;
        _cleanup_(comment_donep) IssueComment added = {};
        if (comment) {
                r = insert_comment(req, &after, comment->valuestring, &added);
                if (r < 0)
                        return r;
        }
        r = store_commit(s);
        if (r < 0)
                return r;
        tx = NULL;
        if (interrupt) {
                r = interrupt_issue_run(req, &after, interrupted);
                if (r < 0)
                        return r;
        }
        issue_wakes(req, &before, &after, added.id, comment ? comment->valuestring : NULL, req->caller_agent_id, reopened);
        if (after.status == ISSUE_DONE && before.status != ISSUE_DONE) {
                wake_unblocked(req, &after);
                if (req->caller_agent_id) {
                        _cleanup_(agent_donep) Agent a = {};
                        if (store_get(s, &agent_entity, req->caller_agent_id, &a) >= 0)
                                telemetry_task_completed(&req->ctl->telemetry, &a, &after);
                }
        }
        return reply_issue(req, 200, after.id);
}

/* ---- blockers (issue_relations of type "blocks") ---- */

static int handle_blocker_list(ApiRequest *req) {
        _cleanup_(issue_donep) Issue i = {};
        size_t n;
        void *items;
        int r;

        r = load_issue(req, req->params[0], &i);
        if (r <= 0)
                return r;
        r = store_list(req_store(req), &issue_entity,
                       "WHERE id IN (SELECT issue_id FROM issue_relations WHERE related_issue_id = ?1 AND type = 'blocks') "
                       "ORDER BY issue_number",
                       (const char *const[]){ i.id, NULL }, 0, &items, &n);
        return r < 0 ? r : reply_entities(req, &issue_entity, items, n);
}

/* Does issue wait, directly or through other blockers, for other? */
static int waits_for(ApiRequest *req, const char *issue, const char *other, bool *ret) {
        int64_t n = 0;
        int r = store_count(req_store(req),
                            "(WITH RECURSIVE up(id) AS (SELECT ?1 UNION SELECT rel.issue_id FROM issue_relations rel "
                            "JOIN up ON rel.related_issue_id = up.id WHERE rel.type = 'blocks') SELECT id FROM up)",
                            "WHERE id = ?2", (const char *const[]){ issue, other, NULL }, &n);
        *ret = n > 0;
        return r;
}

static int handle_blocker_add(ApiRequest *req) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(issue_donep) Issue i = {}, b = {};
        _cleanup_(issue_relation_donep) IssueRelation rel = {};
        const cJSON *blocker;
        Store *s = req_store(req);
        bool cycle;
        int r;

        if (!require_body(req))
                return 0;
        blocker = cJSON_GetObjectItemCaseSensitive(req->body, "blockerIssueId");
        if (!cJSON_IsString(blocker) || cJSON_GetArraySize(req->body) != 1)
                return api_reply_error(req, 400, "the body must be {\"blockerIssueId\": \"<issue id or identifier>\"}");
        r = store_begin(s);
        if (r < 0)
                return r;
        tx = s;
        r = load_issue(req, req->params[0], &i);
        if (r <= 0)
                return r;
        r = load_issue(req, blocker->valuestring, &b);
        if (r <= 0)
                return r;
        if (!streq(i.company_id, b.company_id))
                return api_reply_error(req, 422, "blockerIssueId: no such issue in this company");
        if (streq(i.id, b.id))
                return api_reply_error(req, 422, "an issue cannot block itself");
        /* b is to block i: if b already waits for i, that closes a cycle. */
        r = waits_for(req, b.id, i.id, &cycle);
        if (r < 0)
                return r;
        if (cycle)
                return api_reply_error(req, 422, "%s already waits for %s: this would make a cycle", b.identifier, i.identifier);
        r = entity_init(&issue_relation_entity, &rel);
        if (r < 0)
                return r;
        r = record_stamp(&rel.id, &rel.created_at, NULL, NULL);
        if (r < 0)
                return r;
        if (free_and_strdup(&rel.company_id, i.company_id) < 0 || free_and_strdup(&rel.issue_id, b.id) < 0 ||
            free_and_strdup(&rel.related_issue_id, i.id) < 0)
                return -ENOMEM;
        r = store_insert(s, &issue_relation_entity, &rel);
        if (r == -EEXIST)
                return api_reply_error(req, 409, "%s already blocks %s", b.identifier, i.identifier);
        if (r < 0)
                return r;
        cJSON *d = cJSON_CreateObject();
        if (d) {
                cJSON_AddStringToObject(d, "identifier", i.identifier);
                cJSON_AddStringToObject(d, "blockedBy", b.identifier);
        }
        r = add_activity(req, i.company_id, "issue.updated", "issue", i.id, NULL, d);
        if (r < 0)
                return r;
        r = store_commit(s);
        if (r < 0)
                return r;
        tx = NULL;
        return reply_entity(req, 201, &issue_relation_entity, &rel);
}

/* ---- checkout, release, live runs (reference §8) ---- */

/* A run id in a lock field that names no active run is stale and may be taken over. */
static int held_by_other(ApiRequest *req, const char *holder, const char *run_id, bool *ret) {
        _cleanup_(run_donep) Run r = {};
        int k;

        *ret = false;
        if (!holder || streq_ptr(holder, run_id))
                return 0;
        k = store_get(req_store(req), &run_entity, holder, &r);
        if (k == -ENOENT)
                return 0;
        if (k < 0)
                return k;
        *ret = run_status_is_active(r.status);
        return 0;
}

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
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(issue_donep) Issue i = {};
        _cleanup_(agent_donep) Agent a = {};
        Store *s = req_store(req);
        const cJSON *agent_id, *expected, *e;
        const char *run_id = req->caller_run_id;
        bool status_ok = false, checkout_taken, lock_taken;
        int r;

        if (!require_body(req))
                return 0;
        agent_id = cJSON_GetObjectItemCaseSensitive(req->body, "agentId");
        expected = cJSON_GetObjectItemCaseSensitive(req->body, "expectedStatuses");
        if (!cJSON_IsString(agent_id))
                return api_reply_error(req, 400, "agentId must be a string");
        if (expected && !cJSON_IsArray(expected))
                return api_reply_error(req, 400, "expectedStatuses must be an array of issue statuses");
        cJSON_ArrayForEach (e, expected) {
                if (!cJSON_IsString(e) || issue_status_from_string(e->valuestring) < 0)
                        return api_reply_error(req, 400, "expectedStatuses must be an array of issue statuses");
        }
        if (req->caller_agent_id && !streq(req->caller_agent_id, agent_id->valuestring))
                return api_reply_error(req, 403, "an agent may check issues out only for itself");

        r = store_begin(s);
        if (r < 0)
                return r;
        tx = s;
        r = load_issue(req, req->params[0], &i);
        if (r <= 0)
                return r;
        r = load(req, &agent_entity, agent_id->valuestring, &a);
        if (r <= 0)
                return r;
        if (!streq(a.company_id, i.company_id))
                return api_reply_error(req, 422, "agentId: no such agent in this issue's company");

        if (!expected)
                status_ok = i.status == ISSUE_TODO || i.status == ISSUE_BACKLOG || i.status == ISSUE_BLOCKED;
        cJSON_ArrayForEach (e, expected)
                status_ok = status_ok || issue_status_from_string(e->valuestring) == i.status;
        /* Checking out again by the run that holds it is fine. */
        if (run_id && streq_ptr(i.checkout_run_id, run_id) && i.status == ISSUE_IN_PROGRESS)
                status_ok = true;
        r = held_by_other(req, i.checkout_run_id, run_id, &checkout_taken);
        if (r >= 0)
                r = held_by_other(req, i.execution_run_id, run_id, &lock_taken);
        if (r < 0)
                return r;
        if (!status_ok || checkout_taken || lock_taken ||
            (i.assignee_agent_id && !streq(i.assignee_agent_id, a.id) && i.status == ISSUE_IN_PROGRESS))
                return reply_conflict(req, "Issue checkout conflict", &i);

        IssueStatus previous = i.status;
        bool reassigned = !streq_ptr(i.assignee_agent_id, a.id);
        char now[ISO_TIME_MAX];
        if ((r = iso_time_now(now)) < 0)
                return r;
        i.status = ISSUE_IN_PROGRESS;
        if ((!i.started_at && free_and_strdup(&i.started_at, now) < 0) || free_and_strdup(&i.assignee_agent_id, a.id) < 0 ||
            free_and_strdup(&i.assignee_user_id, NULL) < 0 || free_and_strdup(&i.checkout_run_id, run_id) < 0 ||
            free_and_strdup(&i.updated_at, now) < 0)
                return -ENOMEM;
        if (run_id &&
            (free_and_strdup(&i.execution_run_id, run_id) < 0 || free_and_strdup(&i.execution_agent_id, a.id) < 0 ||
             free_and_strdup(&i.execution_locked_at, now) < 0))
                return -ENOMEM;
        r = store_update(s, &issue_entity, &i);
        if (r < 0)
                return r;
        cJSON *d = cJSON_CreateObject();
        if (d) {
                cJSON_AddStringToObject(d, "identifier", i.identifier);
                cJSON_AddStringToObject(d, "previousStatus", issue_status_to_string(previous));
        }
        r = add_activity(req, i.company_id, "issue.checked_out", "issue", i.id, a.id, d);
        if (r < 0)
                return r;
        r = store_commit(s);
        if (r < 0)
                return r;
        tx = NULL;
        /* Checked out on an agent's behalf: tell the agent. */
        if (!req->caller_agent_id && reassigned)
                wake_for_issue(req, a.id, WAKEUP_SOURCE_ASSIGNMENT, "issue_checked_out", &i, "checkout", NULL, "issue.checkout");
        return reply_issue(req, 200, i.id);
}

static int handle_issue_release(ApiRequest *req) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(issue_donep) Issue i = {};
        Store *s = req_store(req);
        char now[ISO_TIME_MAX];
        int r;

        r = store_begin(s);
        if (r < 0)
                return r;
        tx = s;
        r = load_issue(req, req->params[0], &i);
        if (r <= 0)
                return r;
        if (req->caller_agent_id) {
                if (!streq_ptr(i.assignee_agent_id, req->caller_agent_id))
                        return reply_conflict(req, "Only assignee can release issue", &i);
                if (i.status == ISSUE_IN_PROGRESS && i.checkout_run_id && !streq(i.checkout_run_id, req->caller_run_id))
                        return reply_conflict(req, "Only checkout run can release issue", &i);
        }
        if ((r = iso_time_now(now)) < 0)
                return r;
        i.status = ISSUE_TODO;
        i.assignee_agent_id = mfree(i.assignee_agent_id);
        i.assignee_user_id = mfree(i.assignee_user_id);
        i.checkout_run_id = mfree(i.checkout_run_id);
        i.execution_run_id = mfree(i.execution_run_id);
        i.execution_agent_id = mfree(i.execution_agent_id);
        i.execution_locked_at = mfree(i.execution_locked_at);
        i.completed_at = mfree(i.completed_at);
        i.cancelled_at = mfree(i.cancelled_at);
        if (free_and_strdup(&i.updated_at, now) < 0)
                return -ENOMEM;
        r = store_update(s, &issue_entity, &i);
        if (r < 0)
                return r;
        cJSON *d = cJSON_CreateObject();
        if (d)
                cJSON_AddStringToObject(d, "identifier", i.identifier);
        r = add_activity(req, i.company_id, "issue.released", "issue", i.id, req->caller_agent_id, d);
        if (r < 0)
                return r;
        r = store_commit(s);
        if (r < 0)
                return r;
        tx = NULL;
        return reply_issue(req, 200, i.id);
}

static int handle_issue_live_runs(ApiRequest *req) {
        _cleanup_(issue_donep) Issue i = {};
        size_t n;
        void *items;
        int r;

        r = load_issue(req, req->params[0], &i);
        if (r <= 0)
                return r;
        r = store_list(
                req_store(req), &run_entity,
                "WHERE company_id = ?1 AND status IN ('queued', 'running') AND json_extract(context_snapshot, '$.issueId') = ?2 "
                "ORDER BY created_at",
                (const char *const[]){ i.company_id, i.id, NULL }, 0, &items, &n);
        return r < 0 ? r : reply_entities(req, &run_entity, items, n);
}

/* The run holding the lock if it is active, else the assignee's running run on this
 * in_progress issue, else null. */
static int handle_issue_active_run(ApiRequest *req) {
        _cleanup_(issue_donep) Issue i = {};
        _cleanup_(run_donep) Run run = {};
        void *items;
        size_t n;
        int r;

        r = load_issue(req, req->params[0], &i);
        if (r <= 0)
                return r;
        if (i.execution_run_id && store_get(req_store(req), &run_entity, i.execution_run_id, &run) >= 0 &&
            run_status_is_active(run.status))
                return reply_entity(req, 200, &run_entity, &run);
        if (i.status == ISSUE_IN_PROGRESS && i.assignee_agent_id) {
                r = store_list(req_store(req), &run_entity,
                               "WHERE agent_id = ?1 AND status = 'running' AND json_extract(context_snapshot, '$.issueId') = ?2 "
                               "ORDER BY created_at LIMIT 1",
                               (const char *const[]){ i.assignee_agent_id, i.id, NULL }, 1, &items, &n);
                if (r < 0)
                        return r;
                if (n > 0) {
                        r = reply_entity(req, 200, &run_entity, items);
                        entity_array_free(&run_entity, items, n);
                        return r;
                }
                free(items);
        }
        return api_reply(req, 200, cJSON_CreateNull());
}

static int handle_company_live_runs(ApiRequest *req) {
        _cleanup_(company_donep) Company c = {};
        size_t n;
        void *items;
        int r;

        r = load(req, &company_entity, req->params[0], &c);
        if (r <= 0)
                return r;
        r = store_list(req_store(req), &run_entity,
                       "WHERE company_id = ?1 AND status IN ('queued', 'running') ORDER BY created_at",
                       (const char *const[]){ c.id, NULL }, 0, &items, &n);
        return r < 0 ? r : reply_entities(req, &run_entity, items, n);
}

/* ---- comments ---- */

static int handle_comment_list(ApiRequest *req) {
        _cleanup_(issue_donep) Issue i = {};
        size_t n;
        void *items;
        int r;

        r = load_issue(req, req->params[0], &i);
        if (r <= 0)
                return r;
        r = store_list(req_store(req), &comment_entity, "WHERE issue_id = ?1 ORDER BY created_at, rowid",
                       (const char *const[]){ i.id, NULL }, 0, &items, &n);
        return r < 0 ? r : reply_entities(req, &comment_entity, items, n);
}

static int handle_comment_get(ApiRequest *req) {
        _cleanup_(issue_donep) Issue i = {};
        _cleanup_(comment_donep) IssueComment c = {};
        int r;

        r = load_issue(req, req->params[0], &i);
        if (r <= 0)
                return r;
        r = load(req, &comment_entity, req->params[1], &c);
        if (r <= 0)
                return r;
        if (!streq(c.issue_id, i.id))
                return api_reply_error(req, 404, "comment '%.64s' not found on issue %s", req->params[1], i.identifier);
        return reply_entity(req, 200, &comment_entity, &c);
}

static int handle_comment_create(ApiRequest *req) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(issue_donep) Issue i = {}, before = {};
        _cleanup_(comment_donep) IssueComment c = {}, input = {};
        Store *s = req_store(req);
        char *error = NULL, interrupted[UUID_STRING_MAX];
        bool reopen, interrupt;
        int r;

        if (!require_body(req))
                return 0;
        r = load_issue(req, req->params[0], &i);
        if (r <= 0)
                return r;
        if (!parse_comment_flags(req, &reopen, &interrupt))
                return 0;
        r = json_to_entity(&comment_entity, req->body, FIELD_CREATE, (const char *const[]){ "reopen", "interrupt", NULL }, &input,
                           &error);
        if (r < 0)
                return reply_input_error(req, r, error);

        r = store_begin(s);
        if (r < 0)
                return r;
        tx = s;
        r = entity_copy(&issue_entity, &i, &before);
        if (r < 0)
                return r;
        r = insert_comment(req, &i, input.body, &c);
        if (r < 0)
                return r;
        /* A comment is activity on its issue; with reopen, a closed issue is open again. */
        bool reopened = reopen && issue_closed(i.status);
        if (reopened) {
                r = reopen_issue(&i, c.created_at);
                if (r < 0)
                        return r;
                r = add_activity(req, i.company_id, "issue.updated", "issue", i.id, i.assignee_agent_id,
                                 issue_reopen_details(&i, before.status, "comment"));
                if (r < 0)
                        return r;
        }
        r = free_and_strdup(&i.updated_at, c.created_at);
        if (r < 0)
                return r;
        r = store_update(s, &issue_entity, &i);
        if (r < 0)
                return r;
        r = store_commit(s);
        if (r < 0)
                return r;
        tx = NULL;
        if (interrupt) {
                r = interrupt_issue_run(req, &i, interrupted);
                if (r < 0)
                        return r;
        }
        issue_wakes(req, &before, &i, c.id, c.body, c.author_agent_id, reopened);
        return reply_entity(req, 201, &comment_entity, &c);
}

/* ---- wakeups and runs ---- */

static int reply_run(ApiRequest *req, unsigned status, const char *run_id) {
        _cleanup_(run_donep) Run run = {};
        int r = load(req, &run_entity, run_id, &run);
        return r <= 0 ? r : reply_entity(req, status, &run_entity, &run);
}

static int wake(ApiRequest *req, bool invoke) {
        static const char *const fields[] = { "source", "triggerDetail", "reason", "payload", "idempotencyKey", NULL };
        _cleanup_(agent_donep) Agent a = {};
        _cleanup_free_ char *run_id = NULL, *reason = NULL, *payload = NULL;
        Actor actor = request_actor(req);
        WakeRequest w = { .source = WAKEUP_SOURCE_ON_DEMAND,
                          .trigger_detail = TRIGGER_MANUAL,
                          .actor_type = actor.type,
                          .actor_id = actor.id,
                          .activity = "heartbeat.invoked" };
        WakeOutcome outcome;
        const cJSON *ctl;
        int r;

        r = load(req, &agent_entity, req->params[0], &a);
        if (r <= 0)
                return r;
        if (req->caller_agent_id && !streq(req->caller_agent_id, a.id))
                return api_reply_error(req, 403, "an agent may wake only itself");
        if (req->body && !cJSON_IsObject(req->body))
                return api_reply_error(req, 400, "request body must be a JSON object");
        /* invoke takes no options; a body, if any, is ignored like the reference does. */
        const cJSON *given = invoke ? NULL : req->body;
        cJSON_ArrayForEach (ctl, given) {
                bool known = false;
                for (size_t i = 0; fields[i]; i++)
                        known = known || streq(ctl->string, fields[i]);
                if (!known)
                        return api_reply_error(req, 400, "unknown field '%.64s' for a wakeup", ctl->string);
        }
        if (!invoke && req->body) {
                const cJSON *source = cJSON_GetObjectItemCaseSensitive(req->body, "source"),
                            *trigger = cJSON_GetObjectItemCaseSensitive(req->body, "triggerDetail"),
                            *why = cJSON_GetObjectItemCaseSensitive(req->body, "reason"),
                            *p = cJSON_GetObjectItemCaseSensitive(req->body, "payload"),
                            *key = cJSON_GetObjectItemCaseSensitive(req->body, "idempotencyKey");
                if (source && (!cJSON_IsString(source) || (int) (w.source = wakeup_source_from_string(source->valuestring)) < 0))
                        return api_reply_error(req, 400, "source must be one of timer, assignment, on_demand, automation");
                if (trigger && !cJSON_IsNull(trigger) &&
                    (!cJSON_IsString(trigger) || (w.trigger_detail = trigger_detail_from_string(trigger->valuestring)) < 0))
                        return api_reply_error(req, 400, "triggerDetail must be one of manual, ping, callback, system");
                if (cJSON_IsNull(trigger))
                        w.trigger_detail = -1;
                if (why && !cJSON_IsNull(why) && (!cJSON_IsString(why) || strlen(why->valuestring) > TEXT_MAX))
                        return api_reply_error(req, 400, "reason must be a string of at most %d bytes", TEXT_MAX);
                if (cJSON_IsString(why))
                        w.reason = why->valuestring;
                if (p && !cJSON_IsNull(p) && !cJSON_IsObject(p))
                        return api_reply_error(req, 400, "payload must be a JSON object");
                if (cJSON_IsObject(p)) {
                        payload = cJSON_PrintUnformatted(p);
                        if (!payload)
                                return -ENOMEM;
                        w.payload_json = payload;
                }
                if (key && !cJSON_IsNull(key) &&
                    (!cJSON_IsString(key) || isempty(key->valuestring) || strlen(key->valuestring) > 255))
                        return api_reply_error(req, 400, "idempotencyKey must be a non-empty string of at most 255 bytes");
                if (cJSON_IsString(key))
                        w.idempotency_key = key->valuestring;
        }

        r = wakeup_request(req->ctl, a.id, &w, &outcome, &run_id, &reason);
        if (r == -EPERM)
                return api_reply_error(req, 409, "Agent is not invokable in its current state (status %s)",
                                       agent_status_to_string(a.status));
        if (r == -EINVAL)
                return api_reply_error(req, 400, "payload.issueId must be a string");
        if (r < 0)
                return r;

        if (outcome == WAKE_SKIPPED || outcome == WAKE_DEFERRED || !run_id) {
                cJSON *o = cJSON_CreateObject();
                if (!o || !cJSON_AddStringToObject(o, "status", wake_outcome_to_string(outcome)) ||
                    (reason && !cJSON_AddStringToObject(o, "reason", reason))) {
                        cJSON_Delete(o);
                        return -ENOMEM;
                }
                return api_reply(req, 202, o);
        }
        return reply_run(req, 202, run_id);
}

static int handle_agent_wakeup(ApiRequest *req) {
        return wake(req, false);
}

static int handle_agent_invoke(ApiRequest *req) {
        return wake(req, true);
}

static int handle_run_list(ApiRequest *req) {
        _cleanup_(company_donep) Company c = {};
        const char *agent = api_query(req, "agentId");
        size_t limit, n;
        void *items;
        int r;

        r = load(req, &company_entity, req->params[0], &c);
        if (r <= 0)
                return r;
        r = parse_limit(req, &limit);
        if (r <= 0)
                return r;
        if (agent)
                r = store_list(req_store(req), &run_entity,
                               "WHERE company_id = ?1 AND agent_id = ?2 ORDER BY created_at DESC, rowid DESC",
                               (const char *const[]){ c.id, agent, NULL }, limit, &items, &n);
        else
                r = store_list(req_store(req), &run_entity, "WHERE company_id = ?1 ORDER BY created_at DESC, rowid DESC",
                               (const char *const[]){ c.id, NULL }, limit, &items, &n);
        return r < 0 ? r : reply_entities(req, &run_entity, items, n);
}

/* An agent's runtime state (reference §1.3): created at its first finished run; before
 * that, an empty one with zero counters. */
static int load_runtime_state(ApiRequest *req, const Agent *a, AgentRuntimeState *ret) {
        int r = store_get(req_store(req), &runtime_state_entity, a->id, ret);

        if (r != -ENOENT)
                return r;
        r = entity_init(&runtime_state_entity, ret);
        if (r < 0)
                return r;
        ret->adapter_type = a->adapter_type;
        if (free_and_strdup(&ret->agent_id, a->id) < 0 || free_and_strdup(&ret->company_id, a->company_id) < 0)
                return -ENOMEM;
        return 0;
}

static int handle_agent_runtime_state(ApiRequest *req) {
        _cleanup_(agent_donep) Agent a = {};
        _cleanup_(runtime_state_donep) AgentRuntimeState rs = {};
        int r;

        r = load(req, &agent_entity, req->params[0], &a);
        if (r <= 0)
                return r;
        r = load_runtime_state(req, &a, &rs);
        return r < 0 ? r : reply_entity(req, 200, &runtime_state_entity, &rs);
}

static int handle_agent_task_sessions(ApiRequest *req) {
        _cleanup_(agent_donep) Agent a = {};
        void *items;
        size_t n;
        int r;

        r = load(req, &agent_entity, req->params[0], &a);
        if (r <= 0)
                return r;
        r = store_list(req_store(req), &task_session_entity, "WHERE agent_id = ?1 ORDER BY updated_at DESC, rowid DESC",
                       (const char *const[]){ a.id, NULL }, 0, &items, &n);
        return r < 0 ? r : reply_entities(req, &task_session_entity, items, n);
}

/* Forget saved sessions so the next run starts fresh: those of one task ({"taskKey"}), or
 * all of them with the agent's session, last error and state (reference §1.3). */
static int handle_agent_reset_session(ApiRequest *req) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(agent_donep) Agent a = {};
        _cleanup_(runtime_state_donep) AgentRuntimeState rs = {};
        const cJSON *task_key = req->body ? cJSON_GetObjectItemCaseSensitive(req->body, "taskKey") : NULL;
        Store *s = req_store(req);
        void *items;
        size_t n;
        int r;

        if (req->body && !cJSON_IsObject(req->body))
                return api_reply_error(req, 400, "the body must be a JSON object");
        if (task_key && !cJSON_IsString(task_key))
                return api_reply_error(req, 400, "taskKey must be a string");
        r = load(req, &agent_entity, req->params[0], &a);
        if (r <= 0)
                return r;
        if (req->caller_agent_id && !streq(req->caller_agent_id, a.id))
                return api_reply_error(req, 403, "an agent may reset only its own sessions");

        r = store_begin(s);
        if (r < 0)
                return r;
        tx = s;
        if (task_key)
                r = store_list(s, &task_session_entity, "WHERE agent_id = ?1 AND task_key = ?2",
                               (const char *const[]){ a.id, task_key->valuestring, NULL }, 0, &items, &n);
        else
                r = store_list(s, &task_session_entity, "WHERE agent_id = ?1", (const char *const[]){ a.id, NULL }, 0, &items,
                               &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++)
                r = store_delete(s, &task_session_entity, ((AgentTaskSession *) items)[i].id);
        entity_array_free(&task_session_entity, items, n);
        if (r < 0)
                return r;
        r = load_runtime_state(req, &a, &rs);
        if (r < 0)
                return r;
        if (!task_key && rs.created_at) {
                rs.session_id = mfree(rs.session_id);
                rs.last_error = mfree(rs.last_error);
                if (free_and_strdup(&rs.state_json, "{}") < 0)
                        return -ENOMEM;
                r = stamp_updated(&rs.updated_at);
                if (r < 0)
                        return r;
                r = store_update(s, &runtime_state_entity, &rs);
                if (r < 0)
                        return r;
        }
        r = add_activity(req, a.company_id, "agent.runtime_session_reset", "agent", a.id, a.id, NULL);
        if (r < 0)
                return r;
        r = store_commit(s);
        if (r < 0)
                return r;
        tx = NULL;
        return reply_entity(req, 200, &runtime_state_entity, &rs);
}

/* The durable log of an agent's wakes, newest first; ?status= filters. */
static int handle_agent_wakeups(ApiRequest *req) {
        _cleanup_(agent_donep) Agent a = {};
        const char *status = api_query(req, "status");
        size_t limit, n;
        void *items;
        int r;

        r = load(req, &agent_entity, req->params[0], &a);
        if (r <= 0)
                return r;
        r = parse_limit(req, &limit);
        if (r <= 0)
                return r;
        if (status && wakeup_status_from_string(status) < 0)
                return api_reply_error(req, 400, "status must be a wakeup status, not '%s'", status);
        if (status)
                r = store_list(req_store(req), &wakeup_entity,
                               "WHERE agent_id = ?1 AND status = ?2 ORDER BY requested_at DESC, rowid DESC",
                               (const char *const[]){ a.id, status, NULL }, limit, &items, &n);
        else
                r = store_list(req_store(req), &wakeup_entity, "WHERE agent_id = ?1 ORDER BY requested_at DESC, rowid DESC",
                               (const char *const[]){ a.id, NULL }, limit, &items, &n);
        return r < 0 ? r : reply_entities(req, &wakeup_entity, items, n);
}

static int handle_run_get(ApiRequest *req) {
        return reply_run(req, 200, req->params[0]);
}

static int handle_run_cancel(ApiRequest *req) {
        _cleanup_(run_donep) Run run = {};
        int r;

        if (!require_board(req, "cancel runs"))
                return 0;
        r = load(req, &run_entity, req->params[0], &run);
        if (r <= 0)
                return r;
        r = finalize_cancel_run(req->ctl, run.id);
        if (r == -EREMCHG)
                return api_reply_error(req, 409, "run %s is running but not tracked by this corrald", run.id);
        if (r < 0 && r != -ESTALE)
                return r;
        if (r >= 0) {
                r = add_activity(req, run.company_id, "heartbeat.cancelled", "heartbeat_run", run.id, run.agent_id, NULL);
                if (r < 0)
                        return r;
        }
        /* A running run ends once its processes are gone; the reply shows where it is now. */
        return reply_run(req, 202, run.id);
}

static int parse_uint_query(ApiRequest *req, const char *name, int64_t def, int64_t min, int64_t max, int64_t *ret) {
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

static int handle_run_events(ApiRequest *req) {
        _cleanup_(run_donep) Run run = {};
        int64_t after, limit;
        char after_text[32];
        size_t n;
        void *items;
        int r;

        r = load(req, &run_entity, req->params[0], &run);
        if (r <= 0)
                return r;
        if ((r = parse_uint_query(req, "afterSeq", 0, 0, INT64_MAX / 2, &after)) <= 0 ||
            (r = parse_uint_query(req, "limit", 200, 1, LIST_LIMIT_MAX, &limit)) <= 0)
                return r;
        snprintf(after_text, sizeof(after_text), "%" PRIi64, after);
        r = store_list(req_store(req), &run_event_entity, "WHERE run_id = ?1 AND seq > ?2 ORDER BY seq, id",
                       (const char *const[]){ run.id, after_text, NULL }, (size_t) limit, &items, &n);
        return r < 0 ? r : reply_entities(req, &run_event_entity, items, n);
}

#define LOG_READ_DEFAULT 256000
#define LOG_READ_MAX (1024 * 1024)

static int handle_run_log(ApiRequest *req) {
        _cleanup_(run_donep) Run run = {};
        _cleanup_free_ char *path = NULL, *buf = NULL;
        int64_t offset, limit;
        size_t n, len;
        int r;

        r = load(req, &run_entity, req->params[0], &run);
        if (r <= 0)
                return r;
        if ((r = parse_uint_query(req, "offset", 0, 0, INT64_MAX / 2, &offset)) <= 0 ||
            (r = parse_uint_query(req, "limitBytes", LOG_READ_DEFAULT, 1, LOG_READ_MAX, &limit)) <= 0)
                return r;
        path = run.log_path ? strdup(run.log_path) : supervisor_log_path(req->ctl->supervisor, run.id);
        if (!path)
                return -ENOMEM;
        r = runlog_read(path, offset, (size_t) limit, &buf, &n, &len);
        if (r == -ENOENT)
                return api_reply_error(req, 404, "Run log not found");
        if (r < 0)
                return r;

        _cleanup_json_ cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddStringToObject(o, "runId", run.id) || !cJSON_AddStringToObject(o, "store", "local_file") ||
            !cJSON_AddStringToObject(o, "logRef", path) || !cJSON_AddStringToObject(o, "content", buf))
                return -ENOMEM;
        if (n > 0 && (len < n || (int64_t) len == limit))
                cJSON_AddNumberToObject(o, "nextOffset", (double) (offset + (int64_t) len));
        else if (n > 0 && !run_status_is_terminal(run.status))
                /* More may come while the run lives. */
                cJSON_AddNumberToObject(o, "nextOffset", (double) (offset + (int64_t) len));
        return api_reply(req, 200, TAKE_PTR(o));
}

static int handle_sweep(ApiRequest *req) {
        _cleanup_(stranded_counters_done) StrandedCounters c = {};
        _cleanup_json_ cJSON *o = NULL;
        cJSON *ids;
        int r;

        if (!require_board(req, "force a sweep"))
                return 0;
        r = control_sweep(req->ctl, &c);
        if (r < 0)
                return r;
        o = cJSON_CreateObject();
        if (!o || !cJSON_AddNumberToObject(o, "runsRecovered", r) ||
            !cJSON_AddNumberToObject(o, "dispatchRequeued", c.dispatch_requeued) ||
            !cJSON_AddNumberToObject(o, "continuationRequeued", c.continuation_requeued) ||
            !cJSON_AddNumberToObject(o, "escalated", c.escalated) || !cJSON_AddNumberToObject(o, "skipped", c.skipped) ||
            !(ids = cJSON_AddArrayToObject(o, "issueIds")))
                return -ENOMEM;
        for (size_t i = 0; i < c.n_issue_ids; i++)
                cJSON_AddItemToArray(ids, cJSON_CreateString(c.issue_ids[i]));
        return api_reply(req, 200, TAKE_PTR(o));
}

/* ---- metrics (Prometheus text format) ---- */

static int metric_counts(ApiRequest *req, FILE *f, const char *name, const char *help, const char *table, const char *column) {
        const char *const *names = streq(table, "heartbeat_runs") ? run_status_names
                : streq(table, "agents")                          ? agent_status_names
                                                                  : issue_status_names;
        fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
        for (size_t i = 0; names[i]; i++) {
                int64_t n;
                char clause[128];
                snprintf(clause, sizeof(clause), "WHERE %s = ?1", column);
                int r = store_count(req_store(req), table, clause, (const char *const[]){ names[i], NULL }, &n);
                if (r < 0)
                        return r;
                fprintf(f, "%s{status=\"%s\"} %" PRIi64 "\n", name, names[i], n);
        }
        return 0;
}

static int handle_metrics(ApiRequest *req) {
        Control *ctl = req->ctl;
        char *text = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f,
                "# HELP corral_telemetry_events_total Telemetry events since corrald started.\n"
                "# TYPE corral_telemetry_events_total counter\n"
                "corral_telemetry_events_total{event=\"agent.first_heartbeat\"} %" PRIu64 "\n"
                "corral_telemetry_events_total{event=\"agent.task_completed\"} %" PRIu64 "\n"
                "# HELP corral_supervised_runs Runs whose processes this corrald tracks now.\n"
                "# TYPE corral_supervised_runs gauge\n"
                "corral_supervised_runs %u\n",
                ctl->telemetry.first_heartbeat, ctl->telemetry.task_completed, supervisor_count(ctl->supervisor));
        r = metric_counts(req, f, "corral_runs", "Runs by status.", "heartbeat_runs", "status");
        if (r >= 0)
                r = metric_counts(req, f, "corral_agents", "Agents by status.", "agents", "status");
        if (r >= 0)
                r = metric_counts(req, f, "corral_issues", "Issues by status.", "issues", "status");
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0) {
                free(text);
                return r;
        }
        return api_reply_text(req, 200, text, "text/plain; version=0.0.4");
}

const ApiRoute api_routes[] = {
        { "GET", "/api/health", handle_health },
        { "POST", "/api/sweep", handle_sweep },
        { "GET", "/metrics", handle_metrics },
        { "GET", "/api/companies", handle_company_list },
        { "POST", "/api/companies", handle_company_create },
        { "GET", "/api/companies/:id", handle_company_get },
        { "PATCH", "/api/companies/:id", handle_company_patch },
        { "GET", "/api/companies/:id/activity", handle_company_activity },
        { "GET", "/api/companies/:id/agents", handle_agent_list },
        { "POST", "/api/companies/:id/agents", handle_agent_create },
        { "GET", "/api/companies/:id/issues", handle_issue_list },
        { "POST", "/api/companies/:id/issues", handle_issue_create },
        { "GET", "/api/agents/:id", handle_agent_get },
        { "PATCH", "/api/agents/:id", handle_agent_patch },
        { "POST", "/api/agents/:id/pause", handle_agent_pause },
        { "POST", "/api/agents/:id/resume", handle_agent_resume },
        { "POST", "/api/agents/:id/terminate", handle_agent_terminate },
        { "POST", "/api/agents/:id/wakeup", handle_agent_wakeup },
        { "POST", "/api/agents/:id/heartbeat/invoke", handle_agent_invoke },
        { "GET", "/api/agents/:id/runtime-state", handle_agent_runtime_state },
        { "POST", "/api/agents/:id/runtime-state/reset-session", handle_agent_reset_session },
        { "GET", "/api/agents/:id/task-sessions", handle_agent_task_sessions },
        { "GET", "/api/agents/:id/wakeup-requests", handle_agent_wakeups },
        { "GET", "/api/companies/:id/heartbeat-runs", handle_run_list },
        { "GET", "/api/heartbeat-runs/:id", handle_run_get },
        { "POST", "/api/heartbeat-runs/:id/cancel", handle_run_cancel },
        { "GET", "/api/heartbeat-runs/:id/events", handle_run_events },
        { "GET", "/api/heartbeat-runs/:id/log", handle_run_log },
        { "GET", "/api/issues/:id", handle_issue_get },
        { "PATCH", "/api/issues/:id", handle_issue_patch },
        { "GET", "/api/issues/:id/blockers", handle_blocker_list },
        { "POST", "/api/issues/:id/blockers", handle_blocker_add },
        { "POST", "/api/issues/:id/checkout", handle_issue_checkout },
        { "POST", "/api/issues/:id/release", handle_issue_release },
        { "GET", "/api/issues/:id/active-run", handle_issue_active_run },
        { "GET", "/api/issues/:id/live-runs", handle_issue_live_runs },
        { "GET", "/api/companies/:id/live-runs", handle_company_live_runs },
        { "GET", "/api/issues/:id/comments", handle_comment_list },
        { "POST", "/api/issues/:id/comments", handle_comment_create },
        { "GET", "/api/issues/:id/comments/:commentId", handle_comment_get },
        {},
};
