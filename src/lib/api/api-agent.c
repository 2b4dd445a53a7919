/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Agents: create, change (with their secrets), pause, resume, terminate, wake; their runtime
 * state, task sessions and wakeups.
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
#include "control/adapter.h"
#include "control/agent-state.h"
#include "control/claim-pump.h"
#include "control/finalize.h"
#include "control/policy.h"
#include "control/scheduler.h"
#include "control/wakeup.h"

/* Checks of an agent record beyond the field types. */
static int validate_agent(ApiRequest *req, const Agent *a) {
        if (a->budget_monthly_cents < 0 || a->budget_monthly_cents > BUDGET_CENTS_MAX) {
                (void) api_reply_error(req, 400, "budgetMonthlyCents must be from 0 (no budget) to %" PRIi64, BUDGET_CENTS_MAX);
                return 0;
        }
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
        if (r < 0)
                return r;
        _cleanup_free_ char *policy_error = NULL;
        r = policy_validate(a->runtime_config, &policy_error);
        if (r == -EINVAL) {
                (void) api_reply_error(req, 400, "%s", strna(policy_error));
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
        r = store_agent_secrets(api_store(req), a->id, &stored);
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
        StorePage page;
        size_t n;
        Agent *items;
        int r;

        r = api_load(req, &company_entity, req->params[0], &c);
        if (r <= 0)
                return r;
        r = api_parse_page(req, &page);
        if (r <= 0)
                return r;
        r = store_agents_of_company(api_store(req), c.id, &page, &items, &n);
        return api_reply_page(req, &agent_entity, r, items, n, &page);
}

static int handle_agent_get(ApiRequest *req) {
        _cleanup_(agent_donep) Agent a = {};
        int r = api_load(req, &agent_entity, req->params[0], &a);
        return r <= 0 ? r : api_reply_entity(req, 200, &agent_entity, &a);
}

static int handle_agent_create(ApiRequest *req) {
        _cleanup_(company_donep) Company c = {};
        _cleanup_(agent_donep) Agent a = {};
        char *error = NULL;
        int r;

        if (!api_require_board(req, "create agents"))
                return 0;
        if (!api_require_body(req))
                return 0;
        r = api_load(req, &company_entity, req->params[0], &c);
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
                return api_reply_input_error(req, r, error);
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
                agent_set_status(&a, AGENT_PENDING_APPROVAL);
        _cleanup_(save_also_done) SaveAlso secrets = {};
        r = take_agent_secrets(req, &a, &secrets);
        if (r <= 0)
                return r;
        r = api_save_with_activity_also(req, &agent_entity, &a, true, &secrets, c.id, "agent.created", a.id, a.id, NULL);
        if (r < 0)
                return r;
        scheduler_reschedule(req->ctl->scheduler);
        return api_reply_entity(req, 201, &agent_entity, &a);
}

static int handle_agent_patch(ApiRequest *req) {
        _cleanup_(agent_donep) Agent a = {};
        char *error = NULL;
        int r;

        if (!api_require_board(req, "change agents"))
                return 0;
        if (!api_require_body(req))
                return 0;
        r = api_load(req, &agent_entity, req->params[0], &a);
        if (r <= 0)
                return r;
        _cleanup_free_ char *config_before = strdup(a.adapter_config);
        if (!config_before)
                return -ENOMEM;
        r = json_to_entity(&agent_entity, req->body, FIELD_PATCH, NULL, &a, &error);
        if (r < 0)
                return api_reply_input_error(req, r, error);
        r = validate_agent(req, &a);
        if (r <= 0)
                return r;
        r = check_sandbox_user(req, config_before, a.adapter_config);
        if (r <= 0)
                return r;
        r = api_stamp_updated(&a.updated_at);
        if (r < 0)
                return r;
        _cleanup_(save_also_done) SaveAlso secrets = {};
        r = take_agent_secrets(req, &a, &secrets);
        if (r <= 0)
                return r;
        r = api_save_with_activity_also(req, &agent_entity, &a, false, &secrets, a.company_id, "agent.updated", a.id, a.id,
                                        agent_change_details(req, &a));
        if (r < 0)
                return r;
        scheduler_reschedule(req->ctl->scheduler);
        /* A limit raised, or this host added to its hosts, starts what waits now. */
        if (cJSON_GetObjectItemCaseSensitive(req->body, "runtimeConfig"))
                claim_start_next(req->ctl, a.id);
        if (cJSON_GetObjectItemCaseSensitive(req->body, "budgetMonthlyCents")) {
                /* A budget raised resumes the agent, one lowered below its spend pauses it. */
                r = budget_changed(req->ctl, a.company_id);
                if (r < 0)
                        return r;
                entity_done(&agent_entity, &a);
                r = api_load(req, &agent_entity, req->params[0], &a);
                if (r <= 0)
                        return r;
        }
        return api_reply_entity(req, 200, &agent_entity, &a);
}

static int agent_transition(ApiRequest *req, AgentAction action) {
        _cleanup_(agent_donep) Agent a = {}, now = {};
        Actor actor = api_actor(req);
        char *error = NULL;
        int r;

        if (!api_require_board(req, "pause, resume, terminate or approve agents"))
                return 0;
        r = api_load(req, &agent_entity, req->params[0], &a);
        if (r <= 0)
                return r;
        if (req->body && !cJSON_IsObject(req->body))
                return api_reply_error(req, 400, "request body must be a JSON object");
        r = agent_state_apply(req->ctl, &actor, a.id, action, &now, &error);
        if (r < 0)
                return api_reply_refusal(req, r, error);
        return api_reply_entity(req, 200, &agent_entity, &now);
}

static int handle_agent_approve(ApiRequest *req) {
        return agent_transition(req, AGENT_ACTION_APPROVE);
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

/* 409 with the budget that is spent (reference §3.2 step 6); the wake is recorded skipped. */
static int reply_budget_blocked(ApiRequest *req, const Agent *a) {
        BudgetBlock b = {};
        cJSON *o;
        int r;

        r = budget_blocked(req->ctl, a, &b);
        if (r < 0)
                return r;
        o = cJSON_CreateObject();
        if (!o)
                return -ENOMEM;
        _cleanup_free_ char *msg = strprintf("Budget spent: the %s monthly budget of %" PRIi64 " cents is spent (%" PRIi64
                                             " cents this month); the wake is skipped",
                                             b.agent ? "agent's" : "company's", b.budget_cents, b.spent_cents);
        if (!msg || !cJSON_AddStringToObject(o, "error", msg) || !cJSON_AddStringToObject(o, "status", "skipped") ||
            !cJSON_AddStringToObject(o, "reason", "budget.blocked") ||
            !cJSON_AddStringToObject(o, "scopeType", b.agent ? "agent" : "company") ||
            !cJSON_AddStringToObject(o, "scopeId", b.agent ? a->id : a->company_id) ||
            !cJSON_AddNumberToObject(o, "budgetMonthlyCents", (double) b.budget_cents) ||
            !cJSON_AddNumberToObject(o, "spentMonthlyCents", (double) b.spent_cents)) {
                cJSON_Delete(o);
                return -ENOMEM;
        }
        return api_reply(req, 409, o);
}

static int wake(ApiRequest *req, bool invoke) {
        static const char *const fields[] = { "source", "triggerDetail", "reason", "payload", "idempotencyKey", NULL };
        _cleanup_(agent_donep) Agent a = {};
        _cleanup_free_ char *run_id = NULL, *reason = NULL, *payload = NULL;
        Actor actor = api_actor(req);
        WakeRequest w = { .source = WAKEUP_SOURCE_ON_DEMAND,
                          .trigger_detail = TRIGGER_MANUAL,
                          .actor_type = actor.type,
                          .actor_id = actor.id,
                          .activity = "heartbeat.invoked" };
        WakeOutcome outcome;
        const cJSON *ctl;
        int r;

        r = api_load(req, &agent_entity, req->params[0], &a);
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

        r = api_within_quota(req, QUOTA_WAKES);
        if (r <= 0)
                return r;
        r = wakeup_request(req->ctl, a.id, &w, &outcome, &run_id, &reason);
        if (r >= 0 && outcome == WAKE_SKIPPED && streq_ptr(reason, "budget.blocked"))
                return reply_budget_blocked(req, &a);
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
        return api_reply_run(req, 202, run_id);
}

static int handle_agent_wakeup(ApiRequest *req) {
        return wake(req, false);
}

static int handle_agent_invoke(ApiRequest *req) {
        return wake(req, true);
}

/* An agent's runtime state (reference §1.3): created at its first finished run; before
 * that, an empty one with zero counters. */
static int load_runtime_state(ApiRequest *req, const Agent *a, AgentRuntimeState *ret) {
        int r = store_get(api_store(req), &runtime_state_entity, a->id, ret);

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

        r = api_load(req, &agent_entity, req->params[0], &a);
        if (r <= 0)
                return r;
        r = load_runtime_state(req, &a, &rs);
        return r < 0 ? r : api_reply_entity(req, 200, &runtime_state_entity, &rs);
}

static int handle_agent_task_sessions(ApiRequest *req) {
        _cleanup_(agent_donep) Agent a = {};
        AgentTaskSession *items;
        size_t limit, n;
        int r;

        r = api_load(req, &agent_entity, req->params[0], &a);
        if (r <= 0)
                return r;
        r = api_parse_limit(req, &limit);
        if (r <= 0)
                return r;
        r = store_task_sessions_of_agent(api_store(req), a.id, limit, &items, &n);
        return r < 0 ? r : api_reply_entities(req, &task_session_entity, items, n);
}

/* Forget saved sessions so the next run starts fresh: those of one task ({"taskKey"}), or
 * all of them with the agent's session, last error and state (reference §1.3). */
static int handle_agent_reset_session(ApiRequest *req) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(agent_donep) Agent a = {};
        _cleanup_(runtime_state_donep) AgentRuntimeState rs = {};
        const cJSON *task_key = req->body ? cJSON_GetObjectItemCaseSensitive(req->body, "taskKey") : NULL;
        Store *s = api_store(req);
        int r;

        if (req->body && !cJSON_IsObject(req->body))
                return api_reply_error(req, 400, "the body must be a JSON object");
        if (task_key && !cJSON_IsString(task_key))
                return api_reply_error(req, 400, "taskKey must be a string");
        r = api_load(req, &agent_entity, req->params[0], &a);
        if (r <= 0)
                return r;
        if (req->caller_agent_id && !streq(req->caller_agent_id, a.id))
                return api_reply_error(req, 403, "an agent may reset only its own sessions");

        r = store_begin(s);
        if (r < 0)
                return r;
        tx = s;
        r = store_task_sessions_delete(s, a.id, task_key ? task_key->valuestring : NULL);
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
                r = api_stamp_updated(&rs.updated_at);
                if (r < 0)
                        return r;
                r = store_update(s, &runtime_state_entity, &rs);
                if (r < 0)
                        return r;
        }
        r = api_add_activity(req, a.company_id, "agent.runtime_session_reset", "agent", a.id, a.id, NULL);
        if (r < 0)
                return r;
        r = store_commit(s);
        if (r < 0)
                return r;
        tx = NULL;
        return api_reply_entity(req, 200, &runtime_state_entity, &rs);
}

/* The durable log of an agent's wakes, newest first; ?status= filters. */
static int handle_agent_wakeups(ApiRequest *req) {
        _cleanup_(agent_donep) Agent a = {};
        const char *status = api_query(req, "status");
        StorePage page;
        size_t n;
        WakeupRequest *items;
        int r;

        r = api_load(req, &agent_entity, req->params[0], &a);
        if (r <= 0)
                return r;
        r = api_parse_page(req, &page);
        if (r <= 0)
                return r;
        if (status && wakeup_status_from_string(status) < 0)
                return api_reply_error(req, 400, "status must be a wakeup status, not '%s'", status);
        r = store_wakeups_of_agent(api_store(req), a.id, status, &page, &items, &n);
        return api_reply_page(req, &wakeup_entity, r, items, n, &page);
}

const ApiRoute api_agent_routes[] = {
        { "GET", "/api/companies/:id/agents", handle_agent_list },
        { "POST", "/api/companies/:id/agents", handle_agent_create },
        { "GET", "/api/agents/:id", handle_agent_get },
        { "PATCH", "/api/agents/:id", handle_agent_patch },
        { "POST", "/api/agents/:id/pause", handle_agent_pause },
        { "POST", "/api/agents/:id/approve", handle_agent_approve },
        { "POST", "/api/agents/:id/resume", handle_agent_resume },
        { "POST", "/api/agents/:id/terminate", handle_agent_terminate },
        { "POST", "/api/agents/:id/wakeup", handle_agent_wakeup },
        { "POST", "/api/agents/:id/heartbeat/invoke", handle_agent_invoke },
        { "GET", "/api/agents/:id/runtime-state", handle_agent_runtime_state },
        { "POST", "/api/agents/:id/runtime-state/reset-session", handle_agent_reset_session },
        { "GET", "/api/agents/:id/task-sessions", handle_agent_task_sessions },
        { "GET", "/api/agents/:id/wakeup-requests", handle_agent_wakeups },
        {},
};
