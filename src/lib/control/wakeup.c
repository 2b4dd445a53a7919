/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Wakes: whether a wake becomes a run, joins one, waits for an issue's lock or is
 * skipped, each decided and written in one transaction (reference §3.2; docs/design.md,
 * "Wakes").
 */
#include "control/wakeup.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/log.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "basic/time-util.h"
#include "basic/util.h"
#include "store/jsonmap.h"
#include "store/queries.h"
#include "control/activity.h"
#include "store/issues.h"
#include "control/claim-pump.h"
#include "control/claim.h"
#include "control/issue-lock.h"
#include "control/budget.h"
#include "control/policy.h"
#include "control/wake-context.h"

const char *wake_outcome_to_string(WakeOutcome o) {
        static const char *const names[] = { "queued", "coalesced", "skipped", "deferred" };
        return o >= 0 && (size_t) o < ELEMENTSOF(names) ? names[o] : NULL;
}

/* The run's context: the wake's reason, source, trigger, issue, task key and comment ids
 * (reference §3.2 step 1), over the caller's extra keys. */
static cJSON *wake_context(const WakeRequest *req, const cJSON *payload) {
        cJSON *ctx = wake_context_parse(req->context_json);
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

/* Park a wake behind the lock: one deferred row per agent and issue, later wakes merged in. */
static int defer_wake(Control *ctl, const Agent *agent, const Issue *issue, const WakeRequest *req, const cJSON *ctx,
                      const char *now) {
        _cleanup_(wakeup_donep) WakeupRequest w = {};
        _cleanup_json_ cJSON *payload = NULL, *stored = NULL;
        int r;

        r = store_wakeup_deferred_for_issue(ctl->store, agent->company_id, agent->id, issue->id, &w);
        if (r < 0)
                return r;
        if (r > 0) {
                payload = wake_context_parse(w.payload);
                stored = cJSON_DetachItemFromObjectCaseSensitive(payload, "_paperclipWakeContext");
                if (!cJSON_IsObject(stored)) {
                        cJSON_Delete(stored);
                        stored = cJSON_CreateObject();
                }
                wake_context_merge(stored, ctx);
                _cleanup_json_ cJSON *incoming = wake_context_parse(req->payload_json);
                wake_context_merge(payload, incoming);
                cJSON_AddItemToObject(payload, "_paperclipWakeContext", TAKE_PTR(stored));
                char *text = cJSON_PrintUnformatted(payload);
                if (!text)
                        return -ENOMEM;
                free(w.payload);
                w.payload = text;
                w.coalesced_count++;
                r = free_and_strdup(&w.updated_at, now);
                return r < 0 ? r : store_update(ctl->store, &wakeup_entity, &w);
        }

        payload = wake_context_parse(req->payload_json);
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

/* What a wake does, decided before anything of it is written (docs/design.md, "Wakes"). */
typedef enum WakePlanKind {
        PLAN_REPLAY, /* its idempotency key was seen: it is that wake again */
        PLAN_SKIP, /* the agent's policy says no, or the issue is not its company's */
        PLAN_JOIN, /* the agent's own run holds the issue: the wake merges into it */
        PLAN_DEFER, /* another run holds the issue: the wake waits for its release */
        PLAN_COALESCE, /* a queued run of the same task absorbs the wake */
        PLAN_QUEUE, /* a new run (taking the issue's lock, for an issue wake) */
} WakePlanKind;

typedef struct WakePlan {
        WakePlanKind kind;
        const char *skip_reason; /* PLAN_SKIP */
        WakeupRequest previous; /* PLAN_REPLAY: the earlier wake */
        bool has_issue; /* an issue-scoped wake: */
        Issue issue; /* its issue */
        Run run; /* PLAN_JOIN: the run holding the issue; PLAN_COALESCE: the queued run */
} WakePlan;

static void wake_plan_done(WakePlan *p) {
        entity_done(&wakeup_entity, &p->previous);
        entity_done(&issue_entity, &p->issue);
        entity_done(&run_entity, &p->run);
}

static int plan_skip(WakePlan *p, const char *reason) {
        p->kind = PLAN_SKIP;
        p->skip_reason = reason;
        return 0;
}

/* Decide, inside the wake's transaction. It reads, except that looking up an issue's lock
 * holder may release a lock whose run ended or adopt an older active run as the holder:
 * bookkeeping that holds whatever the wake does. */
static int wake_plan(Control *ctl, const Agent *agent, const WakeRequest *req, const char *issue_id, const cJSON *ctx,
                     const char *now, WakePlan *p) {
        HeartbeatPolicy policy = policy_heartbeat(agent);
        bool found;
        int r;

        if (req->idempotency_key) {
                r = store_wakeup_by_idempotency_key(ctl->store, agent->id, req->idempotency_key, &p->previous);
                if (r < 0)
                        return r;
                if (r > 0) {
                        p->kind = PLAN_REPLAY;
                        return 0;
                }
        }
        /* A spent budget (reference §3.2 step 6): recorded skipped, refused with 409. */
        BudgetBlock block;
        r = budget_blocked(ctl, agent, &block);
        if (r < 0)
                return r;
        if (r > 0)
                return plan_skip(p, "budget.blocked");
        if (req->source == WAKEUP_SOURCE_TIMER && !policy.enabled)
                return plan_skip(p, "heartbeat.disabled");
        if (req->source != WAKEUP_SOURCE_TIMER && !policy.wake_on_demand)
                return plan_skip(p, "heartbeat.wakeOnDemand.disabled");

        if (!issue_id) {
                /* A queued run of the same task absorbs the wake (reference §3.2 step 10). */
                r = store_run_queued_for_task(ctl->store, agent->id, json_string_member(ctx, "taskKey"), &p->run);
                if (r < 0)
                        return r;
                p->kind = r > 0 ? PLAN_COALESCE : PLAN_QUEUE;
                return 0;
        }

        r = store_get(ctl->store, &issue_entity, issue_id, &p->issue);
        if (r == -ENOENT || (r >= 0 && !streq(p->issue.company_id, agent->company_id)))
                return plan_skip(p, "issue_execution_issue_not_found");
        if (r < 0)
                return r;
        p->has_issue = true;
        r = issue_lock_holder(ctl->store, &p->issue, now, &p->run, &found);
        if (r < 0)
                return r;
        if (!found) {
                p->kind = PLAN_QUEUE;
                return 0;
        }
        /* Lock identity is the agent id, not its name (design §3 difference 1). A comment (or an
         * approval) for a run already under way is a follow-up it cannot see: it waits. */
        bool same = streq(p->issue.execution_agent_id ?: p->run.agent_id, agent->id);
        bool follow_up = (wake_context_has_comment(ctx) || streq_ptr(req->reason, "approval_approved")) &&
                p->run.status == RUN_RUNNING && same;
        p->kind = same && !follow_up ? PLAN_JOIN : PLAN_DEFER;
        return 0;
}

/* Write the plan, inside the same transaction. *ret_reason points into the plan.
 *
 * Long because it has one case per plan kind, and the cases side by side are the table of
 * what each kind of wake writes. */
static int wake_apply(Control *ctl, const Agent *agent, const WakeRequest *req, const cJSON *ctx, const char *now, WakePlan *p,
                      WakeOutcome *ret_outcome, char **ret_run_id, const char **ret_reason) {
        _cleanup_(wakeup_donep) WakeupRequest w = {};
        _cleanup_(run_donep) Run run = {};
        _cleanup_free_ char *context = NULL;
        const char *run_id = NULL;
        int r;

        *ret_reason = NULL;
        switch (p->kind) {
        case PLAN_REPLAY:
                *ret_outcome = p->previous.status == WAKEUP_SKIPPED ? WAKE_SKIPPED : WAKE_COALESCED;
                *ret_reason = p->previous.reason;
                run_id = p->previous.run_id;
                break;

        case PLAN_SKIP:
                r = insert_wakeup(ctl, agent, req, WAKEUP_SKIPPED, p->skip_reason, NULL, now, NULL);
                if (r < 0)
                        return r;
                *ret_outcome = WAKE_SKIPPED;
                *ret_reason = p->skip_reason;
                break;

        case PLAN_JOIN: {
                /* The run that will do the work anyway takes the wake's context. */
                _cleanup_json_ cJSON *merged = wake_context_parse(p->run.context_snapshot);
                char *text;

                if (!merged)
                        return -ENOMEM;
                wake_context_merge(merged, ctx);
                text = cJSON_PrintUnformatted(merged);
                if (!text)
                        return -ENOMEM;
                free(p->run.context_snapshot);
                p->run.context_snapshot = text;
                if (free_and_strdup(&p->run.updated_at, now) < 0)
                        return -ENOMEM;
                r = store_update(ctl->store, &run_entity, &p->run);
                if (r < 0)
                        return r;
                r = insert_wakeup(ctl, agent, req, WAKEUP_COALESCED, "issue_execution_same_name", p->run.id, now, NULL);
                if (r < 0)
                        return r;
                *ret_outcome = WAKE_COALESCED;
                run_id = p->run.id;
                break;
        }

        case PLAN_DEFER:
                r = defer_wake(ctl, agent, &p->issue, req, ctx, now);
                if (r < 0)
                        return r;
                *ret_outcome = WAKE_DEFERRED;
                *ret_reason = "issue_execution_deferred";
                break;

        case PLAN_COALESCE:
                r = insert_wakeup(ctl, agent, req, WAKEUP_COALESCED, req->reason, p->run.id, now, NULL);
                if (r < 0)
                        return r;
                *ret_outcome = WAKE_COALESCED;
                run_id = p->run.id;
                break;

        case PLAN_QUEUE:
                /* A new queued run, linked both ways with its wakeup. For an issue it takes the
                 * lock in this same transaction, so a second wake can never start a second run
                 * (design §3 difference 1). */
                context = cJSON_PrintUnformatted(ctx);
                if (!context)
                        return -ENOMEM;
                r = insert_wakeup(ctl, agent, req, WAKEUP_QUEUED, req->reason, NULL, now, &w);
                if (r < 0)
                        return r;
                r = queue_run(ctl, agent, req, WAKEUP_QUEUED, context, now, &w, &run);
                if (r < 0)
                        return r;
                if (p->has_issue) {
                        r = issue_lock_set(ctl->store, &p->issue, run.id, agent->id, now);
                        if (r < 0)
                                return r;
                }
                *ret_outcome = WAKE_QUEUED;
                run_id = run.id;
                break;
        }
        if (!run_id) {
                *ret_run_id = NULL;
                return 0;
        }
        *ret_run_id = strdup(run_id);
        return *ret_run_id ? 0 : -ENOMEM;
}

int wakeup_request(Control *ctl, const char *agent_id, const WakeRequest *req, WakeOutcome *ret_outcome, char **ret_run_id,
                   char **ret_reason) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(agent_donep) Agent agent = {};
        _cleanup_(wake_plan_done) WakePlan plan = {};
        _cleanup_json_ cJSON *payload = NULL, *ctx = NULL;
        _cleanup_free_ char *run_id = NULL;
        char now[ISO_TIME_MAX];
        const char *reason;
        WakeOutcome outcome;
        Run *claimed = NULL;
        size_t n_claimed = 0;
        int r;

        r = store_get(ctl->store, &agent_entity, agent_id, &agent);
        if (r < 0)
                return r;
        if (agent.status == AGENT_PAUSED && agent.pause_reason == PAUSE_BUDGET) {
                /* Its budget may be free again (a new month, a budget raised since): lifted
                 * now, not at the next sweep. Still spent, the wake is recorded skipped. */
                BudgetBlock block;
                r = budget_lift(ctl, agent.company_id);
                if (r > 0) {
                        entity_done(&agent_entity, &agent);
                        r = store_get(ctl->store, &agent_entity, agent_id, &agent);
                        if (r < 0)
                                return r;
                }
                if (!agent_status_is_invokable(agent.status) && budget_blocked(ctl, &agent, &block) <= 0)
                        return -EPERM;
        } else if (!agent_status_is_invokable(agent.status))
                return -EPERM;
        payload = wake_context_parse(req->payload_json);
        if (!payload)
                return -ENOMEM;
        const cJSON *issue_id = cJSON_GetObjectItemCaseSensitive(payload, "issueId");
        if (issue_id && !cJSON_IsString(issue_id))
                return -EINVAL;
        r = iso_time_now(now);
        if (r < 0)
                return r;
        ctx = wake_context(req, payload);
        if (!ctx)
                return -ENOMEM;

        r = store_begin(ctl->store);
        if (r < 0)
                return r;
        tx = ctl->store;
        r = wake_plan(ctl, &agent, req, issue_id ? issue_id->valuestring : NULL, ctx, now, &plan);
        if (r >= 0)
                r = wake_apply(ctl, &agent, req, ctx, now, &plan, &outcome, &run_id, &reason);
        if (r >= 0)
                r = record_wake(ctl, &agent, req, outcome, run_id);
        /* A new run without an issue is claimed in the same transaction: its row is written
         * once, and the agent starts one commit sooner. */
        if (r >= 0 && plan.kind == PLAN_QUEUE && !plan.has_issue)
                r = claim_startable(ctl, &agent, true, &claimed, &n_claimed);
        if (r >= 0)
                r = store_commit(ctl->store);
        if (r < 0) {
                entity_array_free(&run_entity, claimed, n_claimed);
                return r;
        }
        tx = NULL;

        *ret_outcome = outcome;
        *ret_reason = reason ? strdup(reason) : NULL;
        *ret_run_id = TAKE_PTR(run_id);
        if (claimed)
                claim_launch(ctl, &agent, claimed, n_claimed);
        else if (plan.has_issue && (plan.kind == PLAN_QUEUE || plan.kind == PLAN_JOIN))
                /* Claimed outside the wake: the run may wait for blockers, or a joined run may
                 * have become startable (its blockers resolved, say). */
                claim_start_next(ctl, agent.id);
        return 0;
}

/* Only the columns that change, so that nothing else of the row needs reading first. */
int wakeup_set_status(Control *ctl, const char *wakeup_id, WakeupStatus status, const char *error, const char *now) {
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

/* Promote one deferred wake: its run is queued (reference §3.4 step 4). */
static int promote(Control *ctl, Issue *issue, WakeupRequest *w, const Agent *agent, const char *now, bool *ret_locked) {
        _cleanup_json_ cJSON *payload = wake_context_parse(w->payload), *ctx = NULL;
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
        if (wake_context_has_comment(ctx) && issue_status_is_closed(issue->status)) {
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
                r = issue_lock_set(ctl->store, issue, run.id, agent->id, now);
                if (r < 0)
                        return r;
                *ret_locked = true;
        }
        return 0;
}

int wakeup_promote_deferred(Control *ctl, Issue *issue, const char *now, char ***agents) {
        WakeupRequest *wakes;
        Agent *agents_queued;
        size_t n;
        int r;

        r = store_wakeups_deferred_for_issue(ctl->store, issue->company_id, issue->id, &wakes, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++) {
                WakeupRequest *w = &wakes[i];
                _cleanup_(agent_donep) Agent agent = {};
                bool locked = false;

                if (strv_contains((const char *const *) *agents, w->agent_id))
                        continue; /* one promotion per agent and release; the next waits its turn */
                r = store_get(ctl->store, &agent_entity, w->agent_id, &agent);
                if (r < 0 && r != -ENOENT)
                        break;
                if (r == -ENOENT || !streq(agent.company_id, issue->company_id) || !agent_status_is_invokable(agent.status)) {
                        w->status = WAKEUP_FAILED;
                        if (free_and_strdup(&w->error, "Deferred wake could not be promoted: agent is not invokable") < 0 ||
                            free_and_strdup(&w->finished_at, now) < 0 || free_and_strdup(&w->updated_at, now) < 0)
                                r = -ENOMEM;
                        else
                                r = store_update(ctl->store, &wakeup_entity, w);
                        continue;
                }
                r = promote(ctl, issue, w, &agent, now, &locked);
                if (r >= 0)
                        r = strv_push(agents, agent.id);
        }
        entity_array_free(&wakeup_entity, wakes, n);
        if (r < 0)
                return r;

        /* Runs already queued on the issue waited for this lock: their agents go next. */
        r = store_agents_queued_on_issue(ctl->store, issue->company_id, issue->id, &agents_queued, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++)
                if (!strv_contains((const char *const *) *agents, agents_queued[i].id))
                        r = strv_push(agents, agents_queued[i].id);
        entity_array_free(&agent_entity, agents_queued, n);
        return r < 0 ? r : 0;
}
