/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Stranded-issue reconciliation.
 */
#include "control/stranded.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/activity.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "store/queries.h"
#include "basic/util.h"
#include "control/wakeup.h"
#include "store/issues.h"
#include "store/jsonmap.h"
#include "basic/log.h"
#include "basic/time-util.h"

void stranded_counters_done(StrandedCounters *c) {
        c->issue_ids = strv_free(c->issue_ids);
}

static int note_issue(StrandedCounters *c, const char *id) {
        return strv_push(&c->issue_ids, id);
}

char *stranded_failure_line(const char *error_code, const char *error) {
        _cleanup_free_ char *summary = NULL;

        if (!isempty(error)) {
                /* The "message" of a JSON-ish error, else its first non-empty line. */
                _cleanup_json_ cJSON *j = cJSON_Parse(error);
                const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message");
                if (cJSON_IsString(msg) && !isempty(msg->valuestring))
                        summary = strdup(msg->valuestring);
                else {
                        const char *p = error;
                        while (*p == '\n' || *p == ' ' || *p == '\t' || *p == '\r')
                                p++;
                        summary = strndup(p, strcspn(p, "\r\n"));
                }
                if (!summary)
                        return NULL;
                size_t n = strlen(summary);
                if (n > 240)
                        strcpy(summary + 237, "...");
                else if (n > 0 && summary[n - 1] == '.')
                        summary[n - 1] = 0; /* the sentence gets its own full stop */
        }
        if (!isempty(error_code) && !isempty(summary))
                return strprintf(" Latest retry failure: `%s` - %s.", error_code, summary);
        if (!isempty(error_code))
                return strprintf(" Latest retry failure: `%s`.", error_code);
        if (!isempty(summary))
                return strprintf(" Latest retry failure: %s.", summary);
        return strdup("");
}

static bool unsuccessful(RunStatus s) {
        return s == RUN_FAILED || s == RUN_CANCELLED || s == RUN_TIMED_OUT;
}

static const char *retry_reason_of(const Run *run, char *buf, size_t size) {
        _cleanup_json_ cJSON *ctx = cJSON_Parse(run->context_snapshot ?: "{}");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(ctx, "retryReason");

        if (!cJSON_IsString(v))
                return NULL;
        snprintf(buf, size, "%s", v->valuestring);
        return buf;
}

/* Move the issue to blocked with a system comment and an activity row (reference §5 step 6). */
static int escalate(Control *ctl, const Issue *issue, const Run *latest, const char *text) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(issue_donep) Issue after = {};
        _cleanup_(comment_donep) IssueComment c = {};
        char now[ISO_TIME_MAX], id[UUID_STRING_MAX];
        int r;

        if ((r = iso_time_now(now)) < 0 || (r = uuid_new(id)) < 0)
                return r;
        r = store_begin(ctl->store);
        if (r < 0)
                return r;
        tx = ctl->store;
        r = entity_copy(&issue_entity, issue, &after);
        if (r < 0)
                return r;
        after.status = ISSUE_BLOCKED;
        if (free_and_strdup(&after.updated_at, now) < 0)
                return -ENOMEM;
        r = issue_apply_update_rules(issue, &after, true, now);
        if (r < 0)
                return r;
        r = store_update(ctl->store, &issue_entity, &after);
        if (r < 0)
                return r;

        /* A comment with neither author is the system speaking. */
        if (free_and_strdup(&c.id, id) < 0 || free_and_strdup(&c.company_id, issue->company_id) < 0 ||
            free_and_strdup(&c.issue_id, issue->id) < 0 || free_and_strdup(&c.body, text) < 0 ||
            free_and_strdup(&c.created_at, now) < 0 || free_and_strdup(&c.updated_at, now) < 0)
                return -ENOMEM;
        r = store_insert(ctl->store, &comment_entity, &c);
        if (r < 0)
                return r;

        cJSON *d = cJSON_CreateObject();
        if (d) {
                cJSON_AddStringToObject(d, "identifier", issue->identifier);
                cJSON_AddStringToObject(d, "status", "blocked");
                cJSON_AddStringToObject(d, "previousStatus", issue_status_to_string(issue->status));
                cJSON_AddStringToObject(d, "source", "heartbeat.reconcile_stranded_assigned_issue");
                if (latest) {
                        cJSON_AddStringToObject(d, "latestRunId", latest->id);
                        cJSON_AddStringToObject(d, "latestRunStatus", run_status_to_string(latest->status));
                        if (latest->error_code)
                                cJSON_AddStringToObject(d, "latestRunErrorCode", latest->error_code);
                }
        }
        r = activity_record(ctl->store, issue->company_id, ACTOR_SYSTEM, "system", "issue.updated", "issue", issue->id, NULL,
                            latest ? latest->id : NULL, d);
        if (r < 0)
                return r;
        r = store_commit(ctl->store);
        if (r < 0)
                return r;
        tx = NULL;
        return 0;
}

/* Escalate and count it; text NULL means formatting it ran out of memory. */
static int escalate_counted(Control *ctl, StrandedCounters *c, const Issue *issue, const Run *latest, const char *text) {
        int r;

        if (!text)
                return -ENOMEM;
        r = escalate(ctl, issue, latest, text);
        if (r < 0)
                return r;
        c->escalated++;
        return note_issue(c, issue->id);
}

/* One recovery wake; the new run names the run it retries. Returns 1 when a run was queued. */
static int requeue(Control *ctl, const Issue *issue, const char *reason, const char *retry_reason, const char *source,
                   const char *retry_of) {
        _cleanup_json_ cJSON *payload = cJSON_CreateObject(), *ctx = cJSON_CreateObject();
        _cleanup_free_ char *p = NULL, *c = NULL, *run_id = NULL, *why = NULL;
        _cleanup_(run_donep) Run run = {};
        WakeOutcome outcome;
        int r;

        if (!payload || !ctx)
                return -ENOMEM;
        cJSON_AddStringToObject(payload, "issueId", issue->id);
        if (retry_of)
                cJSON_AddStringToObject(payload, "retryOfRunId", retry_of);
        cJSON_AddStringToObject(ctx, "retryReason", retry_reason);
        cJSON_AddStringToObject(ctx, "source", source);
        if (retry_of)
                cJSON_AddStringToObject(ctx, "retryOfRunId", retry_of);
        p = cJSON_PrintUnformatted(payload);
        c = cJSON_PrintUnformatted(ctx);
        if (!p || !c)
                return -ENOMEM;
        WakeRequest w = { .source = WAKEUP_SOURCE_AUTOMATION,
                          .trigger_detail = TRIGGER_SYSTEM,
                          .reason = reason,
                          .payload_json = p,
                          .context_json = c,
                          .actor_type = ACTOR_SYSTEM,
                          .actor_id = "heartbeat" };
        r = wakeup_request(ctl, issue->assignee_agent_id, &w, &outcome, &run_id, &why);
        if (r == -EPERM)
                return 0;
        if (r < 0)
                return r;
        if (!run_id || (outcome != WAKE_QUEUED && outcome != WAKE_COALESCED))
                return 0;
        if (retry_of && store_get(ctl->store, &run_entity, run_id, &run) >= 0 && !run.retry_of_run_id) {
                if (free_and_strdup(&run.retry_of_run_id, retry_of) < 0)
                        return -ENOMEM;
                r = store_update(ctl->store, &run_entity, &run);
                if (r < 0)
                        return r;
        }
        return 1;
}

/* Successful continuation runs since the issue last changed: work that ran but moved nothing. */
static int continuations_without_progress(Control *ctl, const Issue *issue, int64_t *ret) {
        return store_runs_continued_since_count(ctl->store, issue->company_id, issue->id, issue->updated_at, ret);
}

/* Long because it is the reference's table (§5) for one issue, row by row: todo or
 * in_progress, with or without a latest run, and how that run ended. */
static int reconcile_one(Control *ctl, const Issue *issue, StrandedCounters *c) {
        _cleanup_(agent_donep) Agent agent = {};
        _cleanup_free_ char *failure = NULL, *text = NULL;
        char buf[64];
        const char *retry_reason;
        int64_t active, deferred;
        _cleanup_(run_donep) Run latest_run = {};
        int r;

        r = store_get(ctl->store, &agent_entity, issue->assignee_agent_id, &agent);
        if (r == -ENOENT ||
            (r >= 0 && (!streq(agent.company_id, issue->company_id) || !agent_status_is_invokable(agent.status)))) {
                c->skipped++;
                return 0;
        }
        if (r < 0)
                return r;

        /* Something still works on it, or waits to. */
        r = store_runs_active_for_issue_count(ctl->store, issue->company_id, issue->id, &active);
        if (r >= 0)
                r = store_wakeups_deferred_for_issue_count(ctl->store, issue->company_id, issue->id, &deferred);
        if (r < 0)
                return r;
        if (active > 0 || deferred > 0) {
                c->skipped++;
                return 0;
        }

        r = store_run_latest_for_issue(ctl->store, issue->company_id, issue->id, &latest_run);
        if (r < 0)
                return r;
        const Run *latest = r > 0 ? &latest_run : NULL;
        retry_reason = latest ? retry_reason_of(latest, buf, sizeof(buf)) : NULL;

        if (issue->status == ISSUE_TODO) {
                if (!latest || latest->status == RUN_SUCCEEDED)
                        c->skipped++;
                else if (streq_ptr(retry_reason, "assignment_recovery") && unsuccessful(latest->status)) {
                        failure = stranded_failure_line(latest->error_code, latest->error);
                        text = failure
                                ? strprintf("corral automatically retried dispatch for this assigned `todo` issue after a lost "
                                            "wake or run, and it still has no live execution path.%s Moving it to "
                                            "`blocked` so someone can intervene.",
                                            failure)
                                : NULL;
                        r = escalate_counted(ctl, c, issue, latest, text);
                } else {
                        r = requeue(ctl, issue, "issue_assignment_recovery", "assignment_recovery", "issue.assignment_recovery",
                                    latest->id);
                        if (r > 0) {
                                c->dispatch_requeued++;
                                r = note_issue(c, issue->id);
                        } else if (r == 0)
                                c->skipped++;
                }
                return r < 0 ? r : 0;
        }

        /* in_progress */
        int64_t idle_successes = 0;
        if (!latest && !issue->checkout_run_id && !issue->execution_run_id)
                c->skipped++; /* seeded work that never ran */
        else if (latest && streq_ptr(retry_reason, "issue_continuation_needed") && unsuccessful(latest->status)) {
                failure = stranded_failure_line(latest->error_code, latest->error);
                text = failure
                        ? strprintf("corral automatically retried continuation for this assigned `in_progress` issue after "
                                    "its live execution disappeared, and it still has no live execution path.%s Moving it "
                                    "to `blocked` so someone can intervene.",
                                    failure)
                        : NULL;
                r = escalate_counted(ctl, c, issue, latest, text);
        } else if ((r = continuations_without_progress(ctl, issue, &idle_successes)) >= 0 &&
                   idle_successes >= ctl->config->max_continuation_retries) {
                /* Continuations that succeed but change nothing do not go on forever (design §3 difference 7). */
                text = strprintf("corral retried continuation of this `in_progress` issue %" PRIi64 " times; each run "
                                 "succeeded without progress on the issue. Moving it to `blocked` so someone can intervene.",
                                 idle_successes);
                r = escalate_counted(ctl, c, issue, latest, text);
        } else if (r >= 0) {
                r = requeue(ctl, issue, "issue_continuation_needed", "issue_continuation_needed", "issue.continuation_recovery",
                            latest ? latest->id : issue->checkout_run_id);
                if (r > 0) {
                        c->continuation_requeued++;
                        r = note_issue(c, issue->id);
                } else if (r == 0)
                        c->skipped++;
        }
        return r < 0 ? r : 0;
}

int stranded_reconcile(Control *ctl, StrandedCounters *ret) {
        StrandedCounters c = {};
        Issue *items;
        size_t n;
        int r;

        r = store_issues_agent_assigned_open(ctl->store, &items, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                r = reconcile_one(ctl, &items[i], &c);
                if (r < 0) {
                        log_warning_errno(r, "Failed to reconcile issue %s, ignoring: %m", items[i].identifier);
                        c.skipped++;
                }
        }
        entity_array_free(&issue_entity, items, n);
        if (c.dispatch_requeued || c.continuation_requeued || c.escalated)
                log_warning(
                        "Stranded issues: %u dispatch requeued, %u continuation requeued, %u escalated to blocked, %u skipped.",
                        c.dispatch_requeued, c.continuation_requeued, c.escalated, c.skipped);
        *ret = c;
        return 0;
}
