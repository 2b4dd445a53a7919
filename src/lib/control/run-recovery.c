/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Runs whose process this corrald does not track: re-adopted when still alive, finalized
 * as lost when dead, with one automatic retry (reference §4; docs/design.md, "Recovery").
 */
#include "control/run-recovery.h"

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
#include "control/host.h"
#include "store/jsonmap.h"
#include "store/queries.h"
#include "control/adapter.h"
#include "control/budget.h"
#include "control/claim-pump.h"
#include "control/issue-lock.h"

/* One automatic retry of a run whose process was lost (reference §4 step 10).
 *
 * Long because the retry is two rows linked both ways (its wakeup and its run) and the lock
 * moved to it, written in this order in the caller's transaction; pieces of it alone would
 * be half a retry. */
int run_recovery_enqueue_retry(Control *ctl, const Run *lost, RetryReason why, char **ret_retry_id) {
        static const char *const wake_reasons[] = {
                [RETRY_PROCESS_LOST] = "process_lost_retry", [RETRY_SESSION_NOT_FOUND] = "session_not_found_retry"
        };
        static const char *const retry_reasons[] = {
                [RETRY_PROCESS_LOST] = "process_lost", [RETRY_SESSION_NOT_FOUND] = "session_not_found"
        };
        static const char *const events[] = {
                [RETRY_PROCESS_LOST] = "Queued automatic retry after orphaned child process was confirmed dead",
                [RETRY_SESSION_NOT_FOUND] = "Queued automatic retry in a fresh session: the CLI could not resume the task's",
        };
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
        cJSON_AddStringToObject(ctx, "wakeReason", wake_reasons[why]);
        cJSON_AddStringToObject(ctx, "retryReason", retry_reasons[why]);
        if (why == RETRY_SESSION_NOT_FOUND) {
                cJSON_DeleteItemFromObjectCaseSensitive(ctx, "forceFreshSession");
                cJSON_AddBoolToObject(ctx, "forceFreshSession", true);
        }

        w.source = WAKEUP_SOURCE_AUTOMATION;
        w.trigger_detail = TRIGGER_SYSTEM;
        w.status = WAKEUP_QUEUED;
        w.requested_by_actor_type = ACTOR_SYSTEM;
        free(w.payload);
        w.payload = strprintf("{\"retryOfRunId\":\"%s\"}", lost->id);
        if (!w.payload || free_and_strdup(&w.company_id, lost->company_id) < 0 ||
            free_and_strdup(&w.agent_id, lost->agent_id) < 0 || free_and_strdup(&w.reason, wake_reasons[why]) < 0 ||
            free_and_strdup(&w.requested_by_actor_id, "heartbeat") < 0 || free_and_strdup(&w.requested_at, now) < 0 ||
            free_and_strdup(&w.run_id, retry.id) < 0)
                return -ENOMEM;

        retry.invocation_source = WAKEUP_SOURCE_AUTOMATION;
        retry.trigger_detail = TRIGGER_SYSTEM;
        retry.process_loss_retry_count = lost->process_loss_retry_count + (why == RETRY_PROCESS_LOST);
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
                        r = issue_lock_set(ctl->store, &issue, retry.id, lost->agent_id, now);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        r = store_run_event_append(ctl->store, retry.id, "lifecycle", LEVEL_INFO, events[why], NULL);
        if (r < 0)
                return r;
        *ret_retry_id = strdup(retry.id);
        return *ret_retry_id ? 0 : -ENOMEM;
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

int run_recovery_adopt(Control *ctl) {
        Run *runs;
        size_t n;
        int r, examined = 0;

        /* A fenced host waits to know its row again (control/host.c). */
        if (host_fenced(ctl))
                return 0;
        host_recover_stale(ctl);
        /* Queued runs are never reaped: only running ones can have lost their processes. */
        /* Only this host's: another host's runs are that host's to supervise. */
        r = store_runs_running(ctl->store, strempty(host_self_id(ctl)), &runs, &n);
        if (r < 0)
                return log_error_errno(r, "Failed to list running runs: %m");
        for (size_t i = 0; i < n; i++) {
                Run *run = &runs[i];
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
                if (outcome == RECOVER_ADOPTED) {
                        (void) mark_detached(ctl, run->id, run->shim_pid);
                        /* What it spent is read again from its log's start. */
                        if (agent.id && budget_watch(ctl, &agent, run) < 0)
                                log_warning("Run %s: cannot follow what it spends while it runs, its end counts it.", run->id);
                }
        }
        entity_array_free(&run_entity, runs, n);

        /* Then queued work goes on, from the loop: a slice at a time. */
        r = claim_pump_want_all(ctl);
        return r < 0 ? r : examined;
}
