/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Wakeups, claiming, launching and finalizing runs. Every state change is one
 * short transaction that commits before the side effect that depends on it
 * (a launch, a signal).
 */
#include "control/heartbeat.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/activity.h"
#include "control/adapter.h"
#include "control/agent-session.h"
#include "basic/macro.h"
#include "store/queries.h"
#include "basic/util.h"
#include "control/cli-output.h"
#include "store/issues.h"
#include "store/jsonmap.h"
#include "basic/log.h"
#include "control/runs.h"
#include "control/wake-payload.h"
#include "basic/time-util.h"
#include "basic/strv.h"

const char *wake_outcome_to_string(WakeOutcome o) {
        static const char *const names[] = { "queued", "coalesced", "skipped", "deferred" };
        return o >= 0 && (size_t) o < ELEMENTSOF(names) ? names[o] : NULL;
}

/* runtimeConfig.heartbeat, with the reference's defaults (§7). */
typedef struct HeartbeatPolicy {
        bool enabled;
        bool wake_on_demand;
        int max_concurrent;
} HeartbeatPolicy;

static HeartbeatPolicy policy_of(const Agent *a) {
        HeartbeatPolicy p = { .enabled = false, .wake_on_demand = true, .max_concurrent = HEARTBEAT_MAX_CONCURRENT_DEFAULT };
        _cleanup_json_ cJSON *rc = cJSON_Parse(a->runtime_config ?: "{}");
        const cJSON *hb = cJSON_GetObjectItemCaseSensitive(rc, "heartbeat"), *v;

        if (!cJSON_IsObject(hb))
                return p;
        v = cJSON_GetObjectItemCaseSensitive(hb, "enabled");
        if (cJSON_IsBool(v))
                p.enabled = cJSON_IsTrue(v);
        v = cJSON_GetObjectItemCaseSensitive(hb, "wakeOnDemand");
        if (cJSON_IsBool(v))
                p.wake_on_demand = cJSON_IsTrue(v);
        v = cJSON_GetObjectItemCaseSensitive(hb, "maxConcurrentRuns");
        if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
                double d = floor(v->valuedouble);
                p.max_concurrent = d < 1 ? 1 : d > HEARTBEAT_MAX_CONCURRENT_MAX ? HEARTBEAT_MAX_CONCURRENT_MAX : (int) d;
        }
        return p;
}

/* The run's context: the wake's reason, source, trigger and task key (reference §3.2 step 1). */
static cJSON *parse_object(const char *text) {
        cJSON *o = cJSON_Parse(text ?: "{}");
        if (cJSON_IsObject(o))
                return o;
        cJSON_Delete(o);
        return cJSON_CreateObject();
}

/* Add id to an array of comment ids unless it is there (order kept). */
static void add_comment_id(cJSON *ids, const char *id) {
        const cJSON *e;

        cJSON_ArrayForEach (e, ids) {
                if (cJSON_IsString(e) && streq(e->valuestring, id))
                        return;
        }
        cJSON_AddItemToArray(ids, cJSON_CreateString(id));
}

/* Merge from into into: incoming keys win, comment id lists are unioned in order and the
 * latest comment id follows them (reference §3.2, coalescing and deferral). */
static void merge_context(cJSON *into, const cJSON *from) {
        cJSON *ids = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(into, "wakeCommentIds"), true);
        const cJSON *ctl, *e;

        if (!cJSON_IsArray(ids)) {
                cJSON_Delete(ids);
                ids = cJSON_CreateArray();
        }
        if (!ids)
                return;
        cJSON_ArrayForEach (ctl, from) {
                if (streq(ctl->string, "wakeCommentIds")) {
                        cJSON_ArrayForEach (e, ctl) {
                                if (cJSON_IsString(e))
                                        add_comment_id(ids, e->valuestring);
                        }
                        continue;
                }
                cJSON_DeleteItemFromObjectCaseSensitive(into, ctl->string);
                cJSON_AddItemToObject(into, ctl->string, cJSON_Duplicate(ctl, true));
        }
        cJSON_DeleteItemFromObjectCaseSensitive(into, "wakeCommentIds");
        if (cJSON_GetArraySize(ids) == 0) {
                cJSON_Delete(ids);
                return;
        }
        const char *last = cJSON_GetArrayItem(ids, cJSON_GetArraySize(ids) - 1)->valuestring;
        cJSON_DeleteItemFromObjectCaseSensitive(into, "commentId");
        cJSON_DeleteItemFromObjectCaseSensitive(into, "wakeCommentId");
        cJSON_AddStringToObject(into, "commentId", last);
        cJSON_AddStringToObject(into, "wakeCommentId", last);
        cJSON_AddItemToObject(into, "wakeCommentIds", ids);
}

/* The run's context: the wake's reason, source, trigger, issue, task key and comment ids
 * (reference §3.2 step 1), over the caller's extra keys. */
static cJSON *wake_context(const WakeRequest *req, const cJSON *payload) {
        cJSON *ctx = parse_object(req->context_json);
        const cJSON *task = cJSON_GetObjectItemCaseSensitive(payload, "taskKey"),
                    *issue = cJSON_GetObjectItemCaseSensitive(payload, "issueId"),
                    *comment = cJSON_GetObjectItemCaseSensitive(payload, "commentId");

        if (!ctx)
                return NULL;
        if (req->reason)
                cJSON_AddStringToObject(ctx, "wakeReason", req->reason);
        cJSON_AddStringToObject(ctx, "wakeSource", wakeup_source_to_string(req->source));
        if (req->trigger_detail >= 0)
                cJSON_AddStringToObject(ctx, "wakeTriggerDetail", trigger_detail_to_string(req->trigger_detail));
        if (cJSON_IsString(issue)) {
                cJSON_AddStringToObject(ctx, "issueId", issue->valuestring);
                cJSON_AddStringToObject(ctx, "taskId", issue->valuestring);
        }
        if (cJSON_IsString(task))
                cJSON_AddStringToObject(ctx, "taskKey", task->valuestring);
        else if (cJSON_IsString(issue))
                cJSON_AddStringToObject(ctx, "taskKey", issue->valuestring);
        if (cJSON_IsString(comment)) {
                cJSON *ids = cJSON_AddArrayToObject(ctx, "wakeCommentIds");
                cJSON_AddItemToArray(ids, cJSON_CreateString(comment->valuestring));
                cJSON_AddStringToObject(ctx, "commentId", comment->valuestring);
                cJSON_AddStringToObject(ctx, "wakeCommentId", comment->valuestring);
        }
        return ctx;
}

static bool context_has_comment(const cJSON *ctx) {
        return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ctx, "wakeCommentIds")) > 0;
}

static int insert_wakeup(Control *ctl, const Agent *agent, const WakeRequest *req, WakeupStatus status, const char *reason,
                         const char *run_id, const char *now, WakeupRequest *ret) {
        _cleanup_(wakeup_donep) WakeupRequest w = {};
        int r;

        r = entity_init(&wakeup_entity, &w);
        if (r < 0)
                return r;
        r = record_stamp(&w.id, &w.created_at, &w.updated_at, now);
        if (r < 0)
                return r;
        w.source = req->source;
        w.trigger_detail = req->trigger_detail;
        w.status = status;
        w.requested_by_actor_type = req->actor_type;
        if (status == WAKEUP_COALESCED)
                w.coalesced_count = 1;
        if (free_and_strdup(&w.company_id, agent->company_id) < 0 || free_and_strdup(&w.agent_id, agent->id) < 0 ||
            free_and_strdup(&w.reason, reason) < 0 || free_and_strdup(&w.requested_by_actor_id, req->actor_id) < 0 ||
            free_and_strdup(&w.idempotency_key, req->idempotency_key) < 0 || free_and_strdup(&w.run_id, run_id) < 0 ||
            free_and_strdup(&w.requested_at, now) < 0 ||
            (req->payload_json && free_and_strdup(&w.payload, req->payload_json) < 0) ||
            ((status == WAKEUP_SKIPPED || status == WAKEUP_COALESCED) && free_and_strdup(&w.finished_at, now) < 0))
                return -ENOMEM;
        r = store_insert(ctl->store, &wakeup_entity, &w);
        if (r < 0)
                return r;
        if (ret) {
                *ret = w;
                w = (WakeupRequest){};
        }
        return 0;
}

/* ---- issue execution locks (reference §3.2 step 9, §3.4; SPEC §3 differences 1-3) ---- */

/* The lock fields are bookkeeping, not a change of the issue: updatedAt stays, so it keeps
 * telling when the issue last moved (stranded-issue reconciliation reads it). */
static int stamp_lock(Control *ctl, Issue *issue, const char *run_id, const char *agent_id, const char *now) {
        if (free_and_strdup(&issue->execution_run_id, run_id) < 0 ||
            free_and_strdup(&issue->execution_agent_id, run_id ? agent_id : NULL) < 0 ||
            free_and_strdup(&issue->execution_locked_at, run_id ? now : NULL) < 0)
                return -ENOMEM;
        return store_update(ctl->store, &issue_entity, issue);
}

/* The run holding the issue's lock, if it is still queued or running. A pointer to a run
 * that ended is cleared; an issue without one adopts an active run of it (running first,
 * then the oldest), so runs queued before locks existed are respected. */
static int lock_holder(Control *ctl, Issue *issue, const char *now, Run *ret, bool *ret_found) {
        void *items;
        size_t n;
        int r;

        *ret_found = false;
        if (issue->execution_run_id) {
                r = store_get(ctl->store, &run_entity, issue->execution_run_id, ret);
                if (r >= 0 && run_status_is_active(ret->status)) {
                        *ret_found = true;
                        return 0;
                }
                if (r >= 0)
                        entity_done(&run_entity, ret);
                if (r < 0 && r != -ENOENT)
                        return r;
                r = stamp_lock(ctl, issue, NULL, NULL, now);
                if (r < 0)
                        return r;
        }
        r = store_list(
                ctl->store, &run_entity,
                "WHERE company_id = ?1 AND status IN ('queued', 'running') AND json_extract(context_snapshot, '$.issueId') = ?2 "
                "ORDER BY status = 'running' DESC, created_at LIMIT 1",
                (const char *const[]){ issue->company_id, issue->id, NULL }, 1, &items, &n);
        if (r < 0)
                return r;
        if (n > 0) {
                memcpy(ret, items, sizeof(Run));
                free(items);
                *ret_found = true;
                return stamp_lock(ctl, issue, ret->id, ret->agent_id, now);
        }
        free(items);
        return 0;
}

/* Park a wake behind the lock: one deferred row per agent and issue, later wakes merged in. */
static int defer_wake(Control *ctl, const Agent *agent, const Issue *issue, const WakeRequest *req, const cJSON *ctx,
                      const char *now) {
        _cleanup_json_ cJSON *payload = NULL, *stored = NULL;
        void *items;
        size_t n;
        int r;

        r = store_list(ctl->store, &wakeup_entity,
                       "WHERE company_id = ?1 AND agent_id = ?2 AND status = 'deferred_issue_execution' "
                       "AND json_extract(payload, '$.issueId') = ?3 ORDER BY requested_at LIMIT 1",
                       (const char *const[]){ agent->company_id, agent->id, issue->id, NULL }, 1, &items, &n);
        if (r < 0)
                return r;
        if (n > 0) {
                WakeupRequest *w = items;
                payload = parse_object(w->payload);
                stored = cJSON_DetachItemFromObjectCaseSensitive(payload, "_paperclipWakeContext");
                if (!cJSON_IsObject(stored)) {
                        cJSON_Delete(stored);
                        stored = cJSON_CreateObject();
                }
                merge_context(stored, ctx);
                _cleanup_json_ cJSON *incoming = parse_object(req->payload_json);
                merge_context(payload, incoming);
                cJSON_AddItemToObject(payload, "_paperclipWakeContext", TAKE_PTR(stored));
                char *text = cJSON_PrintUnformatted(payload);
                if (!text) {
                        entity_array_free(&wakeup_entity, items, n);
                        return -ENOMEM;
                }
                free(w->payload);
                w->payload = text;
                w->coalesced_count++;
                r = free_and_strdup(&w->updated_at, now);
                if (r >= 0)
                        r = store_update(ctl->store, &wakeup_entity, w);
                entity_array_free(&wakeup_entity, items, n);
                return r;
        }
        free(items);

        payload = parse_object(req->payload_json);
        if (!payload)
                return -ENOMEM;
        cJSON_DeleteItemFromObjectCaseSensitive(payload, "issueId");
        cJSON_AddStringToObject(payload, "issueId", issue->id);
        cJSON_AddItemToObject(payload, "_paperclipWakeContext", cJSON_Duplicate(ctx, true));
        _cleanup_free_ char *text = cJSON_PrintUnformatted(payload);
        if (!text)
                return -ENOMEM;
        WakeRequest deferred = *req;
        deferred.payload_json = text;
        return insert_wakeup(ctl, agent, &deferred, WAKEUP_DEFERRED_ISSUE_EXECUTION, "issue_execution_deferred", NULL, now, NULL);
}

/* A queued run for a wakeup, linked both ways. */
static int queue_run(Control *ctl, const Agent *agent, const WakeRequest *req, WakeupStatus wstatus, const char *context,
                     const char *now, WakeupRequest *wakeup, Run *ret) {
        _cleanup_(run_donep) Run run = {};
        int r;

        r = entity_init(&run_entity, &run);
        if (r < 0)
                return r;
        r = record_stamp(&run.id, &run.created_at, &run.updated_at, now);
        if (r < 0)
                return r;
        run.invocation_source = req->source;
        run.trigger_detail = req->trigger_detail;
        if (free_and_strdup(&run.context_snapshot, context) < 0 || free_and_strdup(&run.company_id, agent->company_id) < 0 ||
            free_and_strdup(&run.agent_id, agent->id) < 0 || free_and_strdup(&run.wakeup_request_id, wakeup->id) < 0)
                return -ENOMEM;
        r = store_insert(ctl->store, &run_entity, &run);
        if (r < 0)
                return r;
        wakeup->status = wstatus;
        if (free_and_strdup(&wakeup->run_id, run.id) < 0 || free_and_strdup(&wakeup->updated_at, now) < 0)
                return -ENOMEM;
        r = store_update(ctl->store, &wakeup_entity, wakeup);
        if (r < 0)
                return r;
        if (ret) {
                *ret = run;
                run = (Run){};
        }
        return 0;
}

/* An issue-scoped wake inside the caller's transaction. */
static int wake_issue(Control *ctl, const Agent *agent, Issue *issue, const WakeRequest *req, cJSON *ctx, const char *now,
                      WakeOutcome *ret_outcome, char **ret_run_id) {
        _cleanup_(run_donep) Run holder = {}, run = {};
        _cleanup_(wakeup_donep) WakeupRequest w = {};
        _cleanup_free_ char *context = NULL;
        bool found;
        int r;

        r = lock_holder(ctl, issue, now, &holder, &found);
        if (r < 0)
                return r;
        if (found) {
                /* Lock identity is the agent id, not its name (SPEC §3 difference 1). */
                bool same = streq(issue->execution_agent_id ?: holder.agent_id, agent->id);
                bool follow_up = (context_has_comment(ctx) || streq_ptr(req->reason, "approval_approved")) &&
                        holder.status == RUN_RUNNING && same;

                if (same && !follow_up) {
                        /* Join the run that will do the work anyway. */
                        _cleanup_json_ cJSON *hctx = parse_object(holder.context_snapshot);
                        merge_context(hctx, ctx);
                        char *text = cJSON_PrintUnformatted(hctx);
                        if (!text)
                                return -ENOMEM;
                        free(holder.context_snapshot);
                        holder.context_snapshot = text;
                        if (free_and_strdup(&holder.updated_at, now) < 0)
                                return -ENOMEM;
                        r = store_update(ctl->store, &run_entity, &holder);
                        if (r < 0)
                                return r;
                        r = insert_wakeup(ctl, agent, req, WAKEUP_COALESCED, "issue_execution_same_name", holder.id, now, NULL);
                        if (r < 0)
                                return r;
                        *ret_outcome = WAKE_COALESCED;
                        *ret_run_id = strdup(holder.id);
                        return *ret_run_id ? 0 : -ENOMEM;
                }
                r = defer_wake(ctl, agent, issue, req, ctx, now);
                if (r < 0)
                        return r;
                *ret_outcome = WAKE_DEFERRED;
                *ret_run_id = NULL;
                return 0;
        }

        /* Nobody holds the issue: a new run takes the lock in this same transaction, so a
         * second wake can never start a second run (SPEC §3 difference 1). */
        context = cJSON_PrintUnformatted(ctx);
        if (!context)
                return -ENOMEM;
        r = insert_wakeup(ctl, agent, req, WAKEUP_QUEUED, req->reason, NULL, now, &w);
        if (r < 0)
                return r;
        r = queue_run(ctl, agent, req, WAKEUP_QUEUED, context, now, &w, &run);
        if (r < 0)
                return r;
        r = stamp_lock(ctl, issue, run.id, agent->id, now);
        if (r < 0)
                return r;
        *ret_outcome = WAKE_QUEUED;
        *ret_run_id = strdup(run.id);
        return *ret_run_id ? 0 : -ENOMEM;
}

static int claim_startable(Control *ctl, Agent *agent, bool in_tx, Run **ret, size_t *ret_n);
static void launch_claimed(Control *ctl, const Agent *agent, Run *claimed, size_t n);

/* The wake's own activity, if it asked for one, just before its transaction commits. */
static int record_wake(Control *ctl, const Agent *agent, const WakeRequest *req, WakeOutcome outcome, const char *run_id) {
        cJSON *details;

        if (!req->activity)
                return 0;
        details = cJSON_CreateObject();
        if (!details || !cJSON_AddStringToObject(details, "source", wakeup_source_to_string(req->source)) ||
            !cJSON_AddStringToObject(details, "outcome", wake_outcome_to_string(outcome)) ||
            (run_id && !cJSON_AddStringToObject(details, "runId", run_id))) {
                cJSON_Delete(details);
                return -ENOMEM;
        }
        return activity_record(ctl->store, agent->company_id, req->actor_type, req->actor_id, req->activity, "agent", agent->id,
                               agent->id, NULL, details);
}

int heartbeat_wakeup(Control *ctl, const char *agent_id, const WakeRequest *req, WakeOutcome *ret_outcome, char **ret_run_id,
                     char **ret_reason) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(agent_donep) Agent agent = {};
        _cleanup_(wakeup_donep) WakeupRequest w = {};
        _cleanup_(run_donep) Run run = {};
        _cleanup_json_ cJSON *payload = NULL;
        _cleanup_free_ char *context = NULL;
        _cleanup_json_ cJSON *ctx = NULL;
        char now[ISO_TIME_MAX];
        const char *skip = NULL, *task_key, *clause;
        void *items;
        size_t n;
        int r;

        r = store_get(ctl->store, &agent_entity, agent_id, &agent);
        if (r < 0)
                return r;
        if (!agent_status_is_invokable(agent.status))
                return -EPERM;
        payload = parse_object(req->payload_json);
        if (!payload)
                return -ENOMEM;
        const cJSON *issue_id = cJSON_GetObjectItemCaseSensitive(payload, "issueId");
        if (issue_id && !cJSON_IsString(issue_id))
                return -EINVAL;
        r = iso_time_now(now);
        if (r < 0)
                return r;

        HeartbeatPolicy p = policy_of(&agent);
        if (req->source == WAKEUP_SOURCE_TIMER && !p.enabled)
                skip = "heartbeat.disabled";
        else if (req->source != WAKEUP_SOURCE_TIMER && !p.wake_on_demand)
                skip = "heartbeat.wakeOnDemand.disabled";

        r = store_begin(ctl->store);
        if (r < 0)
                return r;
        tx = ctl->store;

        /* The same idempotency key twice is the same wake. */
        if (req->idempotency_key) {
                r = store_list(ctl->store, &wakeup_entity,
                               "WHERE agent_id = ?1 AND idempotency_key = ?2 ORDER BY created_at LIMIT 1",
                               (const char *const[]){ agent.id, req->idempotency_key, NULL }, 1, &items, &n);
                if (r < 0)
                        return r;
                if (n > 0) {
                        WakeupRequest *prev = items;
                        WakeOutcome outcome = prev->status == WAKEUP_SKIPPED ? WAKE_SKIPPED : WAKE_COALESCED;
                        r = record_wake(ctl, &agent, req, outcome, prev->run_id);
                        if (r >= 0)
                                r = store_commit(ctl->store);
                        if (r >= 0) {
                                tx = NULL;
                                *ret_outcome = outcome;
                                *ret_run_id = prev->run_id ? strdup(prev->run_id) : NULL;
                                *ret_reason = prev->reason ? strdup(prev->reason) : NULL;
                        }
                        entity_array_free(&wakeup_entity, items, n);
                        return r;
                }
                free(items);
        }

        if (skip) {
                r = insert_wakeup(ctl, &agent, req, WAKEUP_SKIPPED, skip, NULL, now, NULL);
                if (r >= 0)
                        r = record_wake(ctl, &agent, req, WAKE_SKIPPED, NULL);
                if (r < 0)
                        return r;
                r = store_commit(ctl->store);
                if (r < 0)
                        return r;
                tx = NULL;
                *ret_outcome = WAKE_SKIPPED;
                *ret_run_id = NULL;
                *ret_reason = strdup(skip);
                return 0;
        }

        ctx = wake_context(req, payload);
        context = ctx ? cJSON_PrintUnformatted(ctx) : NULL;
        if (!context)
                return -ENOMEM;

        if (issue_id) {
                _cleanup_(issue_donep) Issue issue = {};
                WakeOutcome outcome;

                r = store_get(ctl->store, &issue_entity, issue_id->valuestring, &issue);
                if (r == -ENOENT || (r >= 0 && !streq(issue.company_id, agent.company_id))) {
                        r = insert_wakeup(ctl, &agent, req, WAKEUP_SKIPPED, "issue_execution_issue_not_found", NULL, now, NULL);
                        if (r >= 0)
                                r = record_wake(ctl, &agent, req, WAKE_SKIPPED, NULL);
                        if (r >= 0)
                                r = store_commit(ctl->store);
                        if (r < 0)
                                return r;
                        tx = NULL;
                        *ret_outcome = WAKE_SKIPPED;
                        *ret_run_id = NULL;
                        *ret_reason = strdup("issue_execution_issue_not_found");
                        return 0;
                }
                if (r < 0)
                        return r;
                r = wake_issue(ctl, &agent, &issue, req, ctx, now, &outcome, ret_run_id);
                if (r >= 0)
                        r = record_wake(ctl, &agent, req, outcome, *ret_run_id);
                if (r < 0) {
                        *ret_run_id = mfree(*ret_run_id);
                        return r;
                }
                r = store_commit(ctl->store);
                if (r < 0) {
                        *ret_run_id = mfree(*ret_run_id);
                        return r;
                }
                tx = NULL;
                *ret_outcome = outcome;
                *ret_reason = outcome == WAKE_DEFERRED ? strdup("issue_execution_deferred") : NULL;
                /* A joined run may have become startable too (its blockers resolved, say). */
                if (outcome == WAKE_QUEUED || outcome == WAKE_COALESCED)
                        heartbeat_start_next(ctl, agent.id);
                return 0;
        }
        /* A queued run of the same task absorbs the wake (reference §3.2 step 10): the newest
         * queued run whose taskKey (a string, or none) is the wake's. Without a key the
         * argument list ends before ?2, which the clause then does not use. */
        task_key = json_string_member(ctx, "taskKey");
#define QUEUED_TASK_KEY                                                                                    \
        "CASE WHEN json_type(context_snapshot, '$.taskKey') = 'text' THEN json_extract(context_snapshot, " \
        "'$.taskKey') END"
        clause = task_key ? "WHERE agent_id = ?1 AND status = 'queued' AND " QUEUED_TASK_KEY " = ?2 "
                            "ORDER BY created_at DESC, rowid DESC"
                          : "WHERE agent_id = ?1 AND status = 'queued' AND " QUEUED_TASK_KEY " IS NULL "
                            "ORDER BY created_at DESC, rowid DESC";
#undef QUEUED_TASK_KEY
        r = store_list(ctl->store, &run_entity, clause, (const char *const[]){ agent.id, task_key, NULL }, 1, &items, &n);
        if (r < 0)
                return r;
        if (n > 0) {
                Run *q = items;
                r = insert_wakeup(ctl, &agent, req, WAKEUP_COALESCED, req->reason, q->id, now, NULL);
                if (r >= 0)
                        r = record_wake(ctl, &agent, req, WAKE_COALESCED, q->id);
                if (r >= 0)
                        r = store_commit(ctl->store);
                if (r >= 0) {
                        tx = NULL;
                        *ret_outcome = WAKE_COALESCED;
                        *ret_run_id = strdup(q->id);
                        *ret_reason = NULL;
                }
                entity_array_free(&run_entity, items, n);
                return r;
        }
        entity_array_free(&run_entity, items, n);

        /* A new queued run, linked both ways with its wakeup. */
        r = insert_wakeup(ctl, &agent, req, WAKEUP_QUEUED, req->reason, NULL, now, &w);
        if (r < 0)
                return r;
        r = queue_run(ctl, &agent, req, WAKEUP_QUEUED, context, now, &w, &run);
        if (r >= 0)
                r = record_wake(ctl, &agent, req, WAKE_QUEUED, run.id);
        /* The claim in the same transaction: the run's row is written once, and the agent
         * starts one commit sooner. */
        Run *claimed = NULL;
        size_t n_claimed = 0;
        if (r >= 0)
                r = claim_startable(ctl, &agent, true, &claimed, &n_claimed);
        if (r < 0)
                return r;
        r = store_commit(ctl->store);
        if (r < 0) {
                entity_array_free(&run_entity, claimed, n_claimed);
                return r;
        }
        tx = NULL;

        *ret_outcome = WAKE_QUEUED;
        *ret_run_id = strdup(run.id);
        *ret_reason = NULL;
        launch_claimed(ctl, &agent, claimed, n_claimed);
        return *ret_run_id ? 0 : -ENOMEM;
}

/* Only the columns that change, so that nothing else of the row needs reading first. */
static int set_wakeup_status(Control *ctl, const char *wakeup_id, WakeupStatus status, const char *error, const char *now) {
        static const char *const claimed[] = { "status", "updated_at", "claimed_at", NULL };
        static const char *const finished[] = { "status", "updated_at", "finished_at", NULL };
        static const char *const failed[] = { "status", "updated_at", "finished_at", "error", NULL };
        int r;

        if (!wakeup_id)
                return 0;
        WakeupRequest w = {
                .id = (char *) wakeup_id,
                .status = status,
                .updated_at = (char *) now,
                .claimed_at = (char *) now,
                .finished_at = (char *) now,
                .error = (char *) error,
        };
        r = store_update_columns(ctl->store, &wakeup_entity, &w, status == WAKEUP_CLAIMED ? claimed : error ? failed : finished);
        return r == -ENOENT ? 0 : r;
}

/* Finalize a run that never reached the supervisor (launch refused or failed). */
static void fail_launch(Control *ctl, const char *run_id, const char *agent_id, const char *error) {
        RunResult result = { .run_id = run_id, .end = RUN_END_LAUNCH_FAILED, .exit_code = INT_NULL, .error = error };

        log_error("Run %s could not be launched: %s", run_id, error);
        heartbeat_run_finished(ctl->supervisor, &result, ctl);
}

/* An issue's blockers that are not done (reference §1.8: dependency readiness). */
static int unresolved_blockers(Control *ctl, const char *issue_id, int64_t *ret) {
        return store_count(ctl->store, "issue_relations r JOIN issues b ON b.id = r.issue_id",
                           "WHERE r.related_issue_id = ?1 AND r.type = 'blocks' AND b.status != 'done'",
                           (const char *const[]){ issue_id, NULL }, ret);
}

/* The issue side of claiming an issue run, inside the claim's transaction: it stays queued
 * while blockers are open or another active run holds the issue; otherwise it holds the
 * lock, and the harness checks the issue out for it when it is the assignee's work
 * (reference §2.3 step 2). Returns 1 to go on, 0 to leave the run queued. */
static int claim_issue(Control *ctl, Run *run, const Agent *agent, const char *now) {
        _cleanup_json_ cJSON *ctx = parse_object(run->context_snapshot);
        _cleanup_(issue_donep) Issue issue = {};
        const char *issue_id = json_string_member(ctx, "issueId"), *reason = json_string_member(ctx, "wakeReason");
        int64_t blockers;
        int r;

        if (!issue_id)
                return 1;
        r = store_get(ctl->store, &issue_entity, issue_id, &issue);
        if (r == -ENOENT)
                return 1;
        if (r < 0)
                return r;
        r = unresolved_blockers(ctl, issue.id, &blockers);
        if (r < 0)
                return r;
        if (blockers > 0)
                return 0;
        if (issue.execution_run_id && !streq(issue.execution_run_id, run->id)) {
                _cleanup_(run_donep) Run holder = {};
                r = store_get(ctl->store, &run_entity, issue.execution_run_id, &holder);
                if (r >= 0 && run_status_is_active(holder.status))
                        return 0;
                if (r < 0 && r != -ENOENT)
                        return r;
        }

        bool checkout = streq_ptr(issue.assignee_agent_id, agent->id) &&
                (issue.status == ISSUE_TODO || issue.status == ISSUE_BACKLOG || issue.status == ISSUE_BLOCKED ||
                 issue.status == ISSUE_IN_PROGRESS) &&
                reason && !streq(reason, "issue_comment_mentioned") && strncmp(reason, "execution_", 10) != 0;
        if (checkout) {
                IssueStatus previous = issue.status;
                issue.status = ISSUE_IN_PROGRESS;
                if ((!issue.started_at && free_and_strdup(&issue.started_at, now) < 0) ||
                    free_and_strdup(&issue.checkout_run_id, run->id) < 0 ||
                    (previous != ISSUE_IN_PROGRESS && free_and_strdup(&issue.updated_at, now) < 0))
                        return -ENOMEM;
                cJSON *details = cJSON_CreateObject();
                if (details) {
                        cJSON_AddStringToObject(details, "identifier", issue.identifier);
                        cJSON_AddStringToObject(details, "previousStatus", issue_status_to_string(previous));
                        cJSON_AddStringToObject(details, "source", "heartbeat.harness_checkout");
                }
                r = activity_record(ctl->store, issue.company_id, ACTOR_AGENT, agent->id, "issue.checked_out", "issue", issue.id,
                                    agent->id, run->id, details);
                if (r < 0)
                        return r;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(ctx, "paperclipHarnessCheckedOut");
        cJSON_AddBoolToObject(ctx, "paperclipHarnessCheckedOut", checkout);
        cJSON *wake = NULL;
        r = wake_payload_build(ctl->store, ctx, &issue, checkout, &wake);
        if (r < 0)
                return r;
        cJSON_DeleteItemFromObjectCaseSensitive(ctx, "paperclipWake");
        if (wake)
                cJSON_AddItemToObject(ctx, "paperclipWake", wake);
        char *text = cJSON_PrintUnformatted(ctx);
        if (!text)
                return -ENOMEM;
        free(run->context_snapshot);
        run->context_snapshot = text;
        r = stamp_lock(ctl, &issue, run->id, agent->id, now);
        return r < 0 ? r : 1;
}

/* Move one queued run to running (guarded: only if it is still queued), in a transaction of
 * its own, or in the caller's when in_tx. */
static int claim(Control *ctl, Run *run, Agent *agent, bool in_tx, bool *ret_claimed) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        char now[ISO_TIME_MAX];
        int r;

        *ret_claimed = false;
        r = iso_time_now(now);
        if (r < 0)
                return r;
        if (!in_tx) {
                r = store_begin(ctl->store);
                if (r < 0)
                        return r;
                tx = ctl->store;
        }
        /* Re-read inside the transaction: the run may have changed since it was listed. */
        _cleanup_free_ char *id = strdup(run->id);
        if (!id)
                return -ENOMEM;
        entity_done(&run_entity, run);
        r = store_get(ctl->store, &run_entity, id, run);
        if (r < 0)
                return r;
        if (run->status != RUN_QUEUED)
                return 0;
        r = claim_issue(ctl, run, agent, now);
        if (r <= 0)
                return r; /* stays queued (blocked, or another run holds the issue) */
        run->status = RUN_RUNNING;
        run->session_id_before = mfree(run->session_id_before);
        r = agent_session_resume_id(ctl->store, agent, run->context_snapshot, &run->session_id_before);
        if (r < 0)
                return r;
        if ((!run->started_at && free_and_strdup(&run->started_at, now) < 0) || free_and_strdup(&run->updated_at, now) < 0)
                return -ENOMEM;
        static const char *const run_columns[] = { "status",     "session_id_before", "started_at",
                                                   "updated_at", "context_snapshot",  NULL };
        static const char *const agent_columns[] = { "status", "updated_at", NULL };
        r = store_update_columns(ctl->store, &run_entity, run, run_columns);
        if (r < 0)
                return r;
        r = set_wakeup_status(ctl, run->wakeup_request_id, WAKEUP_CLAIMED, NULL, now);
        if (r < 0)
                return r;
        if (agent->status != AGENT_RUNNING) {
                agent->status = AGENT_RUNNING;
                if (free_and_strdup(&agent->updated_at, now) < 0)
                        return -ENOMEM;
                r = store_update_columns(ctl->store, &agent_entity, agent, agent_columns);
                if (r < 0)
                        return r;
        }
        if (!in_tx) {
                r = store_commit(ctl->store);
                if (r < 0)
                        return r;
                tx = NULL;
        }
        *ret_claimed = true;
        return 0;
}

/* Claim what can start of an agent's queued runs, within its free slots: each in a
 * transaction of its own, or all in the caller's when in_tx. The claimed runs are moved to
 * *ret (n of them), to be launched once their transaction has committed. */
static int claim_startable(Control *ctl, Agent *agent, bool in_tx, Run **ret, size_t *ret_n) {
        Run *claimed = NULL;
        size_t n_claimed = 0;
        int64_t running;
        void *items;
        size_t n;
        int r;

        *ret = NULL;
        *ret_n = 0;
        r = store_count(ctl->store, "heartbeat_runs", "WHERE agent_id = ?1 AND status = 'running'",
                        (const char *const[]){ agent->id, NULL }, &running);
        if (r < 0)
                return r;
        int slots = policy_of(agent).max_concurrent - (int) running;
        if (slots <= 0)
                return 0;
        /* Claim order (reference §3.7): runs on in_progress issues first, then other issue runs,
         * then runs without an issue, and runs whose issue has open blockers last; within a rank
         * by issue priority, then oldest first. A run that stays queued makes room for the next. */
        r = store_list(ctl->store, &run_entity,
                       "WHERE agent_id = ?1 AND status = 'queued' ORDER BY "
                       "CASE WHEN json_extract(context_snapshot, '$.issueId') IS NULL THEN 2 "
                       "WHEN EXISTS (SELECT 1 FROM issue_relations rel JOIN issues b ON b.id = rel.issue_id "
                       "WHERE rel.related_issue_id = json_extract(heartbeat_runs.context_snapshot, '$.issueId') "
                       "AND rel.type = 'blocks' AND b.status != 'done') THEN 3 "
                       "WHEN (SELECT status FROM issues WHERE id = json_extract(heartbeat_runs.context_snapshot, '$.issueId')) "
                       "= 'in_progress' THEN 0 ELSE 1 END, "
                       "CASE (SELECT priority FROM issues WHERE id = json_extract(heartbeat_runs.context_snapshot, '$.issueId')) "
                       "WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 WHEN 'low' THEN 3 ELSE 4 END, "
                       "created_at, rowid",
                       (const char *const[]){ agent->id, NULL }, 0, &items, &n);
        if (r < 0)
                return log_error_errno(r, "Failed to list queued runs of agent %s: %m", agent->id);
        if (n > 0) {
                claimed = calloc(MIN(n, (size_t) slots), sizeof(Run));
                if (!claimed) {
                        entity_array_free(&run_entity, items, n);
                        return -ENOMEM;
                }
        }
        for (size_t i = 0; i < n && slots > 0; i++) {
                Run *run = (Run *) items + i;
                bool ok;

                r = claim(ctl, run, agent, in_tx, &ok);
                if (r < 0) {
                        log_error_errno(r, "Failed to claim run %s: %m", strna(run->id));
                        if (in_tx) {
                                /* The caller's transaction is rolled back: nothing was claimed. */
                                entity_array_free(&run_entity, claimed, n_claimed);
                                entity_array_free(&run_entity, items, n);
                                return r;
                        }
                        break;
                }
                if (!ok)
                        continue;
                slots--;
                claimed[n_claimed++] = *run;
                *run = (Run){}; /* moved */
        }
        entity_array_free(&run_entity, items, n);
        *ret = claimed;
        *ret_n = n_claimed;
        return 0;
}

/* One claimed run: its command line and environment, its sandbox, its shim. */
static int launch_one(Control *ctl, const Agent *agent, const Run *run, char **ret_error) {
        _cleanup_(adapter_launch_done) AdapterLaunch launch = {};
        _cleanup_(sandbox_launch_done) SandboxLaunch sandbox = {};
        _cleanup_strv_free_ char **secrets = NULL;
        _cleanup_free_ char *home = sandbox_home_path(ctl->sandbox, agent->id), *run_dir = NULL;
        int r;

        if (!home)
                return -ENOMEM;
        r = store_agent_secrets(ctl->store, agent->id, &secrets);
        if (r < 0)
                return r;
        r = adapter_build_launch(agent, run, ctl->agent_socket_path, home, secrets, &launch, ret_error);
        if (r < 0)
                return r;
        run_dir = supervisor_run_dir(ctl->supervisor, run->id);
        if (!run_dir)
                return -ENOMEM;
        r = sandbox_prepare(ctl->sandbox, ctl->store, agent, run_dir, launch.spec.cwd, &sandbox, ret_error);
        if (r < 0)
                return r;
        if (sandbox.warning) {
                log_warning("Run %s of agent %s: %s.", run->id, agent->id, sandbox.warning);
                (void) store_run_event_append(ctl->store, run->id, "lifecycle", LEVEL_WARN, sandbox.warning, NULL);
        }
        if (sandbox.n_ip_allow > 0) {
                /* Only systemd's IPAddressAllow= enforces an address allowlist here. */
                if (ctl->placement->kind != PLACEMENT_SCOPE)
                        return set_error(ret_error, -EOPNOTSUPP,
                                         "adapterConfig.sandbox.network.allow is enforced by the scope backend only "
                                         "(systemd's IPAddressAllow=), and this corrald runs placement=%s",
                                         placement_kind_to_string(ctl->placement->kind));
                memcpy(launch.spec.limits.ip_allow, sandbox.ip_allow, sizeof(sandbox.ip_allow));
                launch.spec.limits.n_ip_allow = sandbox.n_ip_allow;
        }
        launch.spec.sandboxed = sandbox.confined;
        launch.spec.files = sandbox.files;
        launch.spec.n_files = sandbox.n_files;
        return supervisor_launch(ctl->supervisor, &launch.spec);
}

/* Launch claimed runs (their claim committed); claimed is freed. */
static void launch_claimed(Control *ctl, const Agent *agent, Run *claimed, size_t n) {
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *error = NULL;
                int r;

                r = launch_one(ctl, agent, &claimed[i], &error);
                if (r < 0)
                        fail_launch(ctl, claimed[i].id, agent->id, error ?: strerror(-r));
        }
        entity_array_free(&run_entity, claimed, n);
}

void heartbeat_start_next(Control *ctl, const char *agent_id) {
        _cleanup_(agent_donep) Agent agent = {};
        Run *claimed;
        size_t n;
        int r;

        r = store_get(ctl->store, &agent_entity, agent_id, &agent);
        if (r < 0 || !agent_status_is_invokable(agent.status))
                return;
        r = claim_startable(ctl, &agent, false, &claimed, &n);
        if (r < 0)
                log_error_errno(r, "Failed to start queued runs of agent %s: %m", agent.id);
        launch_claimed(ctl, &agent, claimed, n);
}

/* Agent status after a run of it ended (reference §2.4). */
static int finalize_agent(Control *ctl, const Run *run, const char *now) {
        _cleanup_(agent_donep) Agent agent = {};
        _cleanup_(runtime_state_donep) AgentRuntimeState rs = {};
        int64_t running;
        int r;

        r = store_get(ctl->store, &agent_entity, run->agent_id, &agent);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = store_count(ctl->store, "heartbeat_runs", "WHERE agent_id = ?1 AND status = 'running'",
                        (const char *const[]){ agent.id, NULL }, &running);
        if (r < 0)
                return r;
        if (agent.status != AGENT_PAUSED && agent.status != AGENT_TERMINATED) {
                if (!agent.last_heartbeat_at)
                        telemetry_first_heartbeat(&ctl->telemetry, &agent);
                if (running > 0)
                        agent.status = AGENT_RUNNING;
                else
                        agent.status = run->status == RUN_SUCCEEDED || run->status == RUN_CANCELLED ? AGENT_IDLE : AGENT_ERROR;
                if (free_and_strdup(&agent.last_heartbeat_at, now) < 0 || free_and_strdup(&agent.updated_at, now) < 0)
                        return -ENOMEM;
                r = store_update(ctl->store, &agent_entity, &agent);
                if (r < 0)
                        return r;
        }

        /* Runtime state: created on first use, then overwritten with the latest run. */
        r = store_get(ctl->store, &runtime_state_entity, agent.id, &rs);
        bool is_new = r == -ENOENT;
        if (r < 0 && !is_new)
                return r;
        if (is_new) {
                r = entity_init(&runtime_state_entity, &rs);
                if (r < 0)
                        return r;
                if (free_and_strdup(&rs.agent_id, agent.id) < 0 || free_and_strdup(&rs.company_id, agent.company_id) < 0 ||
                    free_and_strdup(&rs.created_at, now) < 0)
                        return -ENOMEM;
        }
        rs.adapter_type = agent.adapter_type;
        rs.last_run_status = run->status;
        r = agent_session_record(ctl->store, &agent, run, &rs, now);
        if (r < 0)
                return r;
        if (free_and_strdup(&rs.last_run_id, run->id) < 0 || free_and_strdup(&rs.last_error, run->error) < 0 ||
            free_and_strdup(&rs.updated_at, now) < 0)
                return -ENOMEM;
        return is_new ? store_insert(ctl->store, &runtime_state_entity, &rs)
                      : store_update(ctl->store, &runtime_state_entity, &rs);
}

/* Promote one deferred wake: its run is queued (reference §3.4 step 4). */
static int promote(Control *ctl, Issue *issue, WakeupRequest *w, const Agent *agent, const char *now, bool *ret_locked) {
        _cleanup_json_ cJSON *payload = parse_object(w->payload), *ctx = NULL;
        _cleanup_free_ char *context = NULL;
        _cleanup_(run_donep) Run run = {};
        int r;

        ctx = cJSON_DetachItemFromObjectCaseSensitive(payload, "_paperclipWakeContext");
        if (!cJSON_IsObject(ctx)) {
                cJSON_Delete(ctx);
                ctx = cJSON_CreateObject();
        }
        if (!payload || !ctx)
                return -ENOMEM;

        /* Comments on a closed issue reopen it for the agent they wake. */
        if (context_has_comment(ctx) && (issue->status == ISSUE_DONE || issue->status == ISSUE_CANCELLED)) {
                IssueStatus from = issue->status;
                issue->status = ISSUE_TODO;
                issue->execution_state = mfree(issue->execution_state);
                issue->completed_at = mfree(issue->completed_at);
                issue->cancelled_at = mfree(issue->cancelled_at);
                cJSON_AddStringToObject(ctx, "reopenedFrom", issue_status_to_string(from));
                r = store_update(ctl->store, &issue_entity, issue);
                if (r < 0)
                        return r;
                r = activity_record(ctl->store, issue->company_id, ACTOR_SYSTEM, "heartbeat", "issue.updated", "issue", issue->id,
                                    NULL, NULL, issue_reopen_details(issue, from, "deferred_comment_wake"));
                if (r < 0)
                        return r;
        }

        context = cJSON_PrintUnformatted(ctx);
        char *p = cJSON_PrintUnformatted(payload);
        if (!context || !p) {
                free(p);
                return -ENOMEM;
        }
        free(w->payload);
        w->payload = p;
        w->claimed_at = mfree(w->claimed_at);
        w->finished_at = mfree(w->finished_at);
        w->error = mfree(w->error);
        if (free_and_strdup(&w->reason, "issue_execution_promoted") < 0)
                return -ENOMEM;
        WakeRequest req = { .source = w->source, .trigger_detail = w->trigger_detail };
        r = queue_run(ctl, agent, &req, WAKEUP_QUEUED, context, now, w, &run);
        if (r < 0)
                return r;
        /* The first promoted run takes the lock; the others wait for it at claim time. */
        if (!issue->execution_run_id) {
                r = stamp_lock(ctl, issue, run.id, agent->id, now);
                if (r < 0)
                        return r;
                *ret_locked = true;
        }
        return 0;
}

/* The ids of agents to start once a transaction commits: a short list without repeats. */
static bool agent_list_has(char **agents, size_t n, const char *id) {
        for (size_t i = 0; i < n; i++)
                if (streq(agents[i], id))
                        return true;
        return false;
}

static int agent_list_add(char ***agents, size_t *n, const char *id) {
        char **t;

        if (agent_list_has(*agents, *n, id))
                return 0;
        t = realloc(*agents, (*n + 1) * sizeof(char *));
        if (!t)
                return -ENOMEM;
        *agents = t;
        t[*n] = strdup(id);
        if (!t[*n])
                return -ENOMEM;
        (*n)++;
        return 0;
}

/* On every terminal path: release the issue's lock if this run holds it, then promote the
 * oldest deferred wake of every agent waiting on the issue (SPEC §3 difference 3). The ids
 * of agents with new queued runs are appended to *agents. */
static int release_and_promote(Control *ctl, const Run *run, const char *now, char ***agents, size_t *n_agents) {
        _cleanup_json_ cJSON *ctx = parse_object(run->context_snapshot);
        _cleanup_(issue_donep) Issue issue = {};
        const char *issue_id = json_string_member(ctx, "issueId");
        void *items;
        size_t n;
        int r;

        if (issue_id)
                r = store_get(ctl->store, &issue_entity, issue_id, &issue);
        else {
                r = store_list(ctl->store, &issue_entity, "WHERE execution_run_id = ?1", (const char *const[]){ run->id, NULL },
                               1, &items, &n);
                if (r < 0)
                        return r;
                if (n == 0) {
                        free(items);
                        return 0;
                }
                memcpy(&issue, items, sizeof(Issue));
                free(items);
        }
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (issue.execution_run_id && !streq(issue.execution_run_id, run->id))
                return 0; /* another run holds it */
        if (issue.execution_run_id) {
                r = stamp_lock(ctl, &issue, NULL, NULL, now);
                if (r < 0)
                        return r;
        }

        r = store_list(
                ctl->store, &wakeup_entity,
                "WHERE company_id = ?1 AND status = 'deferred_issue_execution' AND json_extract(payload, '$.issueId') = ?2 "
                "ORDER BY requested_at, rowid",
                (const char *const[]){ issue.company_id, issue.id, NULL }, 0, &items, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++) {
                WakeupRequest *w = (WakeupRequest *) items + i;
                _cleanup_(agent_donep) Agent agent = {};
                bool locked = false;

                if (agent_list_has(*agents, *n_agents, w->agent_id))
                        continue; /* one promotion per agent and release; the next waits its turn */
                r = store_get(ctl->store, &agent_entity, w->agent_id, &agent);
                if (r < 0 && r != -ENOENT)
                        break;
                if (r == -ENOENT || !streq(agent.company_id, issue.company_id) || !agent_status_is_invokable(agent.status)) {
                        w->status = WAKEUP_FAILED;
                        if (free_and_strdup(&w->error, "Deferred wake could not be promoted: agent is not invokable") < 0 ||
                            free_and_strdup(&w->finished_at, now) < 0 || free_and_strdup(&w->updated_at, now) < 0)
                                r = -ENOMEM;
                        else
                                r = store_update(ctl->store, &wakeup_entity, w);
                        continue;
                }
                r = promote(ctl, &issue, w, &agent, now, &locked);
                if (r >= 0)
                        r = agent_list_add(agents, n_agents, agent.id);
        }
        entity_array_free(&wakeup_entity, items, n);
        if (r < 0)
                return r;

        /* Runs already queued on the issue waited for this lock: their agents go next. */
        r = store_list(ctl->store, &agent_entity,
                       "WHERE id IN (SELECT agent_id FROM heartbeat_runs WHERE company_id = ?1 AND status = 'queued' "
                       "AND json_extract(context_snapshot, '$.issueId') = ?2)",
                       (const char *const[]){ issue.company_id, issue.id, NULL }, 0, &items, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++)
                r = agent_list_add(agents, n_agents, ((const Agent *) items + i)->id);
        entity_array_free(&agent_entity, items, n);
        return r < 0 ? r : 0;
}

/* One automatic retry of a run whose process was lost (reference §4 step 10). */
static int enqueue_retry(Control *ctl, const Run *lost, char **ret_retry_id) {
        _cleanup_(run_donep) Run retry = {};
        _cleanup_(wakeup_donep) WakeupRequest w = {};
        _cleanup_json_ cJSON *ctx = NULL;
        char now[ISO_TIME_MAX];
        int r;

        r = iso_time_now(now);
        if (r < 0)
                return r;
        r = entity_init(&run_entity, &retry);
        if (r < 0)
                return r;
        r = entity_init(&wakeup_entity, &w);
        if (r < 0)
                return r;
        r = record_stamp(&retry.id, &retry.created_at, &retry.updated_at, now);
        if (r >= 0)
                r = record_stamp(&w.id, &w.created_at, &w.updated_at, now);
        if (r < 0)
                return r;

        ctx = cJSON_Parse(lost->context_snapshot ?: "{}");
        if (!cJSON_IsObject(ctx)) {
                cJSON_Delete(ctx);
                ctx = cJSON_CreateObject();
        }
        if (!ctx)
                return -ENOMEM;
        cJSON_DeleteItemFromObjectCaseSensitive(ctx, "retryOfRunId");
        cJSON_DeleteItemFromObjectCaseSensitive(ctx, "wakeReason");
        cJSON_DeleteItemFromObjectCaseSensitive(ctx, "retryReason");
        cJSON_AddStringToObject(ctx, "retryOfRunId", lost->id);
        cJSON_AddStringToObject(ctx, "wakeReason", "process_lost_retry");
        cJSON_AddStringToObject(ctx, "retryReason", "process_lost");

        w.source = WAKEUP_SOURCE_AUTOMATION;
        w.trigger_detail = TRIGGER_SYSTEM;
        w.status = WAKEUP_QUEUED;
        w.requested_by_actor_type = ACTOR_SYSTEM;
        free(w.payload);
        w.payload = strprintf("{\"retryOfRunId\":\"%s\"}", lost->id);
        if (!w.payload || free_and_strdup(&w.company_id, lost->company_id) < 0 ||
            free_and_strdup(&w.agent_id, lost->agent_id) < 0 || free_and_strdup(&w.reason, "process_lost_retry") < 0 ||
            free_and_strdup(&w.requested_by_actor_id, "heartbeat") < 0 || free_and_strdup(&w.requested_at, now) < 0 ||
            free_and_strdup(&w.run_id, retry.id) < 0)
                return -ENOMEM;

        retry.invocation_source = WAKEUP_SOURCE_AUTOMATION;
        retry.trigger_detail = TRIGGER_SYSTEM;
        retry.process_loss_retry_count = lost->process_loss_retry_count + 1;
        free(retry.context_snapshot);
        retry.context_snapshot = cJSON_PrintUnformatted(ctx);
        if (!retry.context_snapshot || free_and_strdup(&retry.company_id, lost->company_id) < 0 ||
            free_and_strdup(&retry.agent_id, lost->agent_id) < 0 || free_and_strdup(&retry.retry_of_run_id, lost->id) < 0 ||
            free_and_strdup(&retry.wakeup_request_id, w.id) < 0)
                return -ENOMEM;
        /* The wakeup first (the run points at it), then the run it names. */
        free(w.run_id);
        w.run_id = NULL;
        r = store_insert(ctl->store, &wakeup_entity, &w);
        if (r < 0)
                return r;
        r = store_insert(ctl->store, &run_entity, &retry);
        if (r < 0)
                return r;
        if (free_and_strdup(&w.run_id, retry.id) < 0)
                return -ENOMEM;
        r = store_update(ctl->store, &wakeup_entity, &w);
        if (r < 0)
                return r;
        /* The issue's execution lock moves to the retry; checkoutRunId stays (reference §4 step 10). */
        const char *issue_id = json_string_member(ctx, "issueId");
        if (issue_id) {
                _cleanup_(issue_donep) Issue issue = {};
                r = store_get(ctl->store, &issue_entity, issue_id, &issue);
                if (r >= 0 && streq_ptr(issue.execution_run_id, lost->id))
                        r = stamp_lock(ctl, &issue, retry.id, lost->agent_id, now);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        r = store_run_event_append(ctl->store, retry.id, "lifecycle", LEVEL_INFO,
                                   "Queued automatic retry after orphaned child process was confirmed dead", NULL);
        if (r < 0)
                return r;
        *ret_retry_id = strdup(retry.id);
        return *ret_retry_id ? 0 : -ENOMEM;
}

/* What a coding CLI printed (SPEC §6), read back from its log: 1 when the run's agent is
 * one, 0 otherwise. Read before the transaction: the log may be large. */
static int read_cli_output(Control *ctl, const char *run_id, CliOutput *ret) {
        _cleanup_(run_donep) Run run = {};
        _cleanup_(agent_donep) Agent agent = {};
        int r;

        if (store_get(ctl->store, &run_entity, run_id, &run) < 0 || !run.log_path ||
            store_get(ctl->store, &agent_entity, run.agent_id, &agent) < 0 ||
            (agent.adapter_type != ADAPTER_CLAUDE_LOCAL && agent.adapter_type != ADAPTER_CODEX_LOCAL))
                return 0;
        r = cli_output_parse_log(run.log_path, agent.adapter_type, ret);
        if (r < 0) {
                log_warning_errno(r, "Failed to read the output of run %s, finalizing it without: %m", run_id);
                cli_output_done(ret);
                return 0;
        }
        return 1;
}

/* Lines of a coding CLI's stdout that were not JSON were skipped: say so on the run. */
static int warn_malformed(Control *ctl, const char *run_id, const CliOutput *cli) {
        _cleanup_free_ char *msg = NULL;

        if (cli->malformed == 0)
                return 0;
        msg = strprintf("%u line(s) of %s output were not JSON and were skipped (the first began: %s)", cli->malformed,
                        adapter_type_to_string(cli->type), strempty(cli->first_malformed));
        if (!msg)
                return -ENOMEM;
        log_warning("Run %s: %s", run_id, msg);
        return store_run_event_append(ctl->store, run_id, "adapter.output", LEVEL_WARN, msg, NULL);
}

/* A run that succeeded without commenting on its issue leaves its final text there, as
 * its agent (reference §2.3 step 9). */
static int post_result_comment(Control *ctl, const Run *run, const char *now) {
        _cleanup_json_ cJSON *ctx = parse_object(run->context_snapshot), *rj = parse_object(run->result_json);
        _cleanup_(comment_donep) IssueComment c = {};
        _cleanup_(issue_donep) Issue issue = {};
        const char *issue_id = json_string_member(ctx, "issueId"), *text = json_string_member(rj, "result");
        int64_t own;
        int r;

        if (run->status != RUN_SUCCEEDED || !issue_id || isempty(text))
                return 0;
        r = store_count(ctl->store, "issue_comments", "WHERE created_by_run_id = ?1", (const char *const[]){ run->id, NULL },
                        &own);
        if (r < 0 || own > 0)
                return r;
        r = store_get(ctl->store, &issue_entity, issue_id, &issue);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (record_stamp(&c.id, &c.created_at, &c.updated_at, now) < 0 || free_and_strdup(&c.company_id, issue.company_id) < 0 ||
            free_and_strdup(&c.issue_id, issue.id) < 0 || free_and_strdup(&c.author_agent_id, run->agent_id) < 0 ||
            free_and_strdup(&c.created_by_run_id, run->id) < 0 || free_and_strdup(&c.body, text) < 0)
                return -ENOMEM;
        r = store_insert(ctl->store, &comment_entity, &c);
        if (r < 0)
                return r;
        cJSON *d = cJSON_CreateObject();
        if (d) {
                cJSON_AddStringToObject(d, "commentId", c.id);
                cJSON_AddStringToObject(d, "identifier", issue.identifier);
                cJSON_AddStringToObject(d, "source", "heartbeat.run_result");
        }
        return activity_record(ctl->store, issue.company_id, ACTOR_AGENT, run->agent_id, "issue.comment_added", "issue", issue.id,
                               run->agent_id, run->id, d);
}

void heartbeat_run_finished(Supervisor *s, const RunResult *result, void *userdata) {
        Control *ctl = userdata;
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(run_donep) Run run = {};
        _cleanup_(cli_output_done) CliOutput cli = {};
        RunResult with_cli;
        char now[ISO_TIME_MAX];
        WakeupStatus ws;
        int r;

        (void) iso_time_now(now);
        if (read_cli_output(ctl, result->run_id, &cli) > 0) {
                with_cli = *result;
                with_cli.cli = &cli;
                result = &with_cli;
        }
        /* The run's end, its wakeup, the issue's lock and the agent change in one transaction. */
        r = store_begin(ctl->store);
        if (r < 0) {
                log_error_errno(r, "Failed to finalize run %s: %m", result->run_id);
                return;
        }
        tx = ctl->store;
        r = run_finalize_in_transaction(ctl->store, result, &run);
        if (r == -ESTALE)
                return; /* already terminal: someone else finalized it */
        if (r < 0) {
                log_error_errno(r, "Failed to finalize run %s: %m", result->run_id);
                return;
        }
        r = warn_malformed(ctl, run.id, &cli);
        if (r >= 0)
                r = post_result_comment(ctl, &run, now);
        if (r < 0) {
                log_error_errno(r, "Failed to finalize run %s: %m", result->run_id);
                return;
        }
        ws = run.status == RUN_SUCCEEDED ? WAKEUP_COMPLETED : run.status == RUN_CANCELLED ? WAKEUP_CANCELLED : WAKEUP_FAILED;

        _cleanup_free_ char *retry_id = NULL;
        r = set_wakeup_status(ctl, run.wakeup_request_id, ws, run.error, now);
        if (r >= 0 && result->end == RUN_END_LOST && run.process_loss_retry_count < ctl->config->process_loss_retries) {
                r = enqueue_retry(ctl, &run, &retry_id);
                if (r >= 0) {
                        /* The lost run's error says a retry follows. */
                        char *e = strprintf("%s; retrying once", strempty(run.error));
                        if (!e)
                                r = -ENOMEM;
                        else {
                                free(run.error);
                                run.error = e;
                                r = store_update(ctl->store, &run_entity, &run);
                        }
                }
        }
        char **promoted = NULL;
        size_t n_promoted = 0;
        if (r >= 0 && !retry_id)
                r = release_and_promote(ctl, &run, now, &promoted, &n_promoted);
        if (r >= 0)
                r = finalize_agent(ctl, &run, now);
        if (r >= 0)
                r = store_commit(ctl->store);
        if (r < 0) {
                log_error_errno(r, "Failed to record the end of run %s for its agent: %m", run.id);
                for (size_t i = 0; i < n_promoted; i++)
                        free(promoted[i]);
                free(promoted);
                return;
        }
        tx = NULL;
        heartbeat_start_next(ctl, run.agent_id);
        for (size_t i = 0; i < n_promoted; i++) {
                heartbeat_start_next(ctl, promoted[i]);
                free(promoted[i]);
        }
        free(promoted);
}

static int cancel_queued(Control *ctl, const char *run_id, const char *agent_id) {
        RunResult result = { .run_id = run_id, .end = RUN_END_CANCELLED, .exit_code = INT_NULL };

        heartbeat_run_finished(ctl->supervisor, &result, ctl);
        return 0;
}

int heartbeat_cancel_run(Control *ctl, const char *run_id) {
        _cleanup_(run_donep) Run run = {};
        int r;

        r = store_get(ctl->store, &run_entity, run_id, &run);
        if (r < 0)
                return r;
        if (run_status_is_terminal(run.status))
                return -ESTALE;
        if (run.status == RUN_QUEUED)
                return cancel_queued(ctl, run.id, run.agent_id);
        r = supervisor_stop(ctl->supervisor, run.id, RUN_END_CANCELLED);
        return r == -ENOENT ? -EREMCHG : r;
}

int heartbeat_cancel_agent_runs(Control *ctl, const char *agent_id) {
        void *items;
        size_t n;
        int r;

        r = store_list(ctl->store, &run_entity, "WHERE agent_id = ?1 AND status IN ('queued', 'running') ORDER BY created_at",
                       (const char *const[]){ agent_id, NULL }, 0, &items, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                Run *run = (Run *) items + i;
                r = heartbeat_cancel_run(ctl, run->id);
                if (r < 0 && r != -ESTALE)
                        log_warning_errno(r, "Failed to cancel run %s, ignoring: %m", run->id);
        }
        entity_array_free(&run_entity, items, n);
        return 0;
}

/* A re-adopted run is marked detached until it shows life (reference §4 step 5). */
static int mark_detached(Control *ctl, const char *run_id, int64_t pid) {
        _cleanup_(run_donep) Run run = {};
        int r;

        r = store_get(ctl->store, &run_entity, run_id, &run);
        if (r < 0 || run.status != RUN_RUNNING || streq_ptr(run.error_code, "process_detached"))
                return r;
        free(run.error);
        run.error = strprintf("Lost in-memory process handle, but child pid %" PRIi64 " is still alive", pid);
        if (!run.error || free_and_strdup(&run.error_code, "process_detached") < 0)
                return -ENOMEM;
        r = store_update(ctl->store, &run_entity, &run);
        if (r < 0)
                return r;
        return store_run_event_append(ctl->store, run_id, "lifecycle", LEVEL_WARN, run.error, NULL);
}

int heartbeat_recover(Control *ctl) {
        void *items;
        size_t n;
        int r, examined = 0;

        /* Queued runs are never reaped: only running ones can have lost their processes. */
        r = store_list(ctl->store, &run_entity, "WHERE status = 'running' ORDER BY created_at", NULL, 0, &items, &n);
        if (r < 0)
                return log_error_errno(r, "Failed to list running runs: %m");
        for (size_t i = 0; i < n; i++) {
                Run *run = (Run *) items + i;
                _cleanup_(agent_donep) Agent agent = {};
                _cleanup_(adapter_launch_done) AdapterLaunch launch = {};
                _cleanup_free_ char *error = NULL;
                RecoverSpec spec = { .grace_sec = ADAPTER_DEFAULT_GRACE_SEC };
                RecoverOutcome outcome;

                if (supervisor_tracks(ctl->supervisor, run->id))
                        continue;
                examined++;
                /* The timing comes from the agent's current configuration. */
                if (store_get(ctl->store, &agent_entity, run->agent_id, &agent) >= 0 &&
                    adapter_build_launch(&agent, run, "", "/", NULL, &launch, &error) >= 0) {
                        spec.grace_sec = launch.spec.grace_sec;
                        spec.idle_timeout_sec = launch.spec.idle_timeout_sec;
                }
                r = supervisor_recover(ctl->supervisor, run, &spec, &outcome);
                if (r < 0) {
                        log_error_errno(r, "Failed to recover run %s: %m", run->id);
                        continue;
                }
                if (outcome == RECOVER_ADOPTED)
                        (void) mark_detached(ctl, run->id, run->shim_pid);
        }
        entity_array_free(&run_entity, items, n);

        /* Then queued work goes on, agent by agent. */
        r = store_list(ctl->store, &agent_entity,
                       "WHERE id IN (SELECT DISTINCT agent_id FROM heartbeat_runs WHERE status = 'queued')", NULL, 0, &items, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                heartbeat_start_next(ctl, ((Agent *) items)[i].id);
        entity_array_free(&agent_entity, items, n);
        return examined;
}
