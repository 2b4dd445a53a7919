/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An issue's execution lock (executionRunId, executionAgentId, executionLockedAt): which
 * run works on the issue now. This module is the only writer of those fields (reference
 * §3.2 step 9, §3.4; docs/design.md, "The issue lock").
 */
#include "control/issue-lock.h"

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
#include "control/issue-wakes.h"
#include "control/wake-context.h"
#include "store/issues.h"

/* The lock fields are bookkeeping, not a change of the issue: updatedAt stays, so it keeps
 * telling when the issue last moved (stranded-issue reconciliation reads it). */
int issue_lock_set(Store *s, Issue *issue, const char *run_id, const char *agent_id, const char *now) {
        if (free_and_strdup(&issue->execution_run_id, run_id) < 0 ||
            free_and_strdup(&issue->execution_agent_id, run_id ? agent_id : NULL) < 0 ||
            free_and_strdup(&issue->execution_locked_at, run_id ? now : NULL) < 0)
                return -ENOMEM;
        return store_update(s, &issue_entity, issue);
}

/* The run holding the issue's lock, if it is still queued or running. A pointer to a run
 * that ended is cleared; an issue without one adopts an active run of it (running first,
 * then the oldest), so runs queued before locks existed are respected. */
int issue_lock_holder(Store *s, Issue *issue, const char *now, Run *ret, bool *ret_found) {
        int r;

        *ret_found = false;
        if (issue->execution_run_id) {
                r = store_get(s, &run_entity, issue->execution_run_id, ret);
                if (r >= 0 && run_status_is_active(ret->status)) {
                        *ret_found = true;
                        return 0;
                }
                if (r >= 0)
                        entity_done(&run_entity, ret);
                if (r < 0 && r != -ENOENT)
                        return r;
                r = issue_lock_set(s, issue, NULL, NULL, now);
                if (r < 0)
                        return r;
        }
        r = store_run_active_for_issue(s, issue->company_id, issue->id, ret);
        if (r <= 0)
                return r;
        *ret_found = true;
        return issue_lock_set(s, issue, ret->id, ret->agent_id, now);
}

int issue_lock_release(Store *s, const Run *run, const char *now, Issue *ret, bool *ret_released) {
        _cleanup_json_ cJSON *ctx = wake_context_parse(run->context_snapshot);
        _cleanup_(issue_donep) Issue issue = {};
        const char *issue_id = json_string_member(ctx, "issueId");
        int r;

        *ret_released = false;
        if (issue_id)
                r = store_get(s, &issue_entity, issue_id, &issue);
        else {
                r = store_issue_locked_by_run(s, run->id, &issue);
                if (r <= 0)
                        return r;
        }
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (issue.execution_run_id && !streq(issue.execution_run_id, run->id))
                return 0; /* another run holds it */
        if (issue.execution_run_id) {
                r = issue_lock_set(s, &issue, NULL, NULL, now);
                if (r < 0)
                        return r;
        }
        *ret = issue;
        issue = (Issue){};
        *ret_released = true;
        return 0;
}

int issue_lock_held_by_other(Store *s, const char *holder, const char *run_id, bool *ret) {
        _cleanup_(run_donep) Run run = {};
        int r;

        *ret = false;
        if (!holder || streq_ptr(holder, run_id))
                return 0;
        r = store_get(s, &run_entity, holder, &run);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        *ret = run_status_is_active(run.status);
        return 0;
}

static int conflict(Issue *issue, Issue *ret, char **ret_error, const char *error) {
        *ret = *issue;
        *issue = (Issue){};
        return set_error(ret_error, -EBUSY, "%s", error);
}

int issue_lock_checkout(Control *ctl, const Actor *actor, const char *issue_id, const IssueCheckout *c, Issue *ret,
                        char **ret_error) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(issue_donep) Issue i = {};
        _cleanup_(agent_donep) Agent a = {};
        bool status_ok = false, checkout_taken, lock_taken;
        char now[ISO_TIME_MAX];
        int r;

        r = store_begin(ctl->store);
        if (r < 0)
                return r;
        tx = ctl->store;
        r = store_get(ctl->store, &issue_entity, issue_id, &i);
        if (r < 0)
                return r;
        r = store_get(ctl->store, &agent_entity, c->agent_id, &a);
        if (r < 0)
                return r;
        if (!streq(a.company_id, i.company_id))
                return set_error(ret_error, -EBADR, "agentId: no such agent in this issue's company");

        if (!c->expected)
                status_ok = i.status == ISSUE_TODO || i.status == ISSUE_BACKLOG || i.status == ISSUE_BLOCKED;
        for (size_t k = 0; k < c->n_expected; k++)
                status_ok = status_ok || c->expected[k] == i.status;
        /* Checking out again by the run that holds it is fine. */
        if (c->run_id && streq_ptr(i.checkout_run_id, c->run_id) && i.status == ISSUE_IN_PROGRESS)
                status_ok = true;
        r = issue_lock_held_by_other(ctl->store, i.checkout_run_id, c->run_id, &checkout_taken);
        if (r >= 0)
                r = issue_lock_held_by_other(ctl->store, i.execution_run_id, c->run_id, &lock_taken);
        if (r < 0)
                return r;
        if (!status_ok || checkout_taken || lock_taken ||
            (i.assignee_agent_id && !streq(i.assignee_agent_id, a.id) && i.status == ISSUE_IN_PROGRESS))
                return conflict(&i, ret, ret_error, "Issue checkout conflict");

        IssueStatus previous = i.status;
        bool reassigned = !streq_ptr(i.assignee_agent_id, a.id);
        r = iso_time_now(now);
        if (r < 0)
                return r;
        i.status = ISSUE_IN_PROGRESS;
        if ((!i.started_at && free_and_strdup(&i.started_at, now) < 0) || free_and_strdup(&i.assignee_agent_id, a.id) < 0 ||
            free_and_strdup(&i.assignee_user_id, NULL) < 0 || free_and_strdup(&i.checkout_run_id, c->run_id) < 0 ||
            free_and_strdup(&i.updated_at, now) < 0)
                return -ENOMEM;
        if (c->run_id)
                r = issue_lock_set(ctl->store, &i, c->run_id, a.id, now); /* writes the issue */
        else
                r = store_update(ctl->store, &issue_entity, &i);
        if (r < 0)
                return r;
        cJSON *d = cJSON_CreateObject();
        if (d) {
                cJSON_AddStringToObject(d, "identifier", i.identifier);
                cJSON_AddStringToObject(d, "previousStatus", issue_status_to_string(previous));
        }
        r = activity_record_by(ctl->store, actor, i.company_id, "issue.checked_out", "issue", i.id, a.id, d);
        if (r < 0)
                return r;
        r = store_commit(ctl->store);
        if (r < 0)
                return r;
        tx = NULL;
        /* Checked out on an agent's behalf: tell the agent. */
        if (actor->type != ACTOR_AGENT && reassigned) {
                IssueWaker w = { .ctl = ctl, .actor = actor };
                issue_wake(&w, a.id, WAKEUP_SOURCE_ASSIGNMENT, "issue_checked_out", &i, "checkout", NULL, "issue.checkout");
        }
        *ret = i;
        i = (Issue){};
        return 0;
}

int issue_lock_release_by(Control *ctl, const Actor *actor, const char *issue_id, Issue *ret, char **ret_error) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(issue_donep) Issue i = {};
        char now[ISO_TIME_MAX];
        int r;

        r = store_begin(ctl->store);
        if (r < 0)
                return r;
        tx = ctl->store;
        r = store_get(ctl->store, &issue_entity, issue_id, &i);
        if (r < 0)
                return r;
        if (actor->type == ACTOR_AGENT) {
                if (!streq_ptr(i.assignee_agent_id, actor->id))
                        return conflict(&i, ret, ret_error, "Only assignee can release issue");
                if (i.status == ISSUE_IN_PROGRESS && i.checkout_run_id && !streq_ptr(i.checkout_run_id, actor->run_id))
                        return conflict(&i, ret, ret_error, "Only checkout run can release issue");
        }
        r = iso_time_now(now);
        if (r < 0)
                return r;
        i.status = ISSUE_TODO;
        i.assignee_agent_id = mfree(i.assignee_agent_id);
        i.assignee_user_id = mfree(i.assignee_user_id);
        i.checkout_run_id = mfree(i.checkout_run_id);
        i.completed_at = mfree(i.completed_at);
        i.cancelled_at = mfree(i.cancelled_at);
        if (free_and_strdup(&i.updated_at, now) < 0)
                return -ENOMEM;
        r = issue_lock_set(ctl->store, &i, NULL, NULL, now); /* writes the issue */
        if (r < 0)
                return r;
        cJSON *d = cJSON_CreateObject();
        if (d)
                cJSON_AddStringToObject(d, "identifier", i.identifier);
        r = activity_record_by(ctl->store, actor, i.company_id, "issue.released", "issue", i.id,
                               actor->type == ACTOR_AGENT ? actor->id : NULL, d);
        if (r < 0)
                return r;
        r = store_commit(ctl->store);
        if (r < 0)
                return r;
        tx = NULL;
        *ret = i;
        i = (Issue){};
        return 0;
}
