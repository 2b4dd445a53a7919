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
#include "control/wake-context.h"

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
