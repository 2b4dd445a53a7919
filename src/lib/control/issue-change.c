/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Changes to issues, each in one transaction with its activity, then the wakes they cause. */
#include "control/issue-change.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/log.h"
#include "basic/macro.h"
#include "basic/time-util.h"
#include "basic/util.h"
#include "control/finalize.h"
#include "control/issue-wakes.h"
#include "control/telemetry.h"
#include "store/issues.h"
#include "store/jsonmap.h"
#include "store/queries.h"

/* References an issue makes must stay inside its company. */
static int validate(Control *ctl, const Issue *issue, char **ret_error) {
        int r;

        if (issue->assignee_agent_id && issue->assignee_user_id)
                return set_error(ret_error, -EBADR,
                                 "an issue has at most one assignee: set assigneeAgentId or assigneeUserId, not both");
        if (issue->assignee_agent_id) {
                _cleanup_(agent_donep) Agent a = {};
                r = store_get(ctl->store, &agent_entity, issue->assignee_agent_id, &a);
                if (r == -ENOENT || (r >= 0 && !streq(a.company_id, issue->company_id)))
                        return set_error(ret_error, -EBADR, "assigneeAgentId '%.64s': no such agent in this company",
                                         issue->assignee_agent_id);
                if (r < 0)
                        return r;
        }
        if (issue->parent_id) {
                _cleanup_(issue_donep) Issue p = {};
                if (streq_ptr(issue->parent_id, issue->id))
                        return set_error(ret_error, -EBADR, "an issue cannot be its own parent");
                r = store_get(ctl->store, &issue_entity, issue->parent_id, &p);
                if (r == -ENOENT || (r >= 0 && !streq(p.company_id, issue->company_id)))
                        return set_error(ret_error, -EBADR, "parentId '%.64s': no such issue in this company", issue->parent_id);
                if (r < 0)
                        return r;
        }
        return 0;
}

int issue_change_create(Control *ctl, const Actor *actor, Issue *issue, char **ret_error) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_free_ char *prefix = NULL;
        int r;

        r = validate(ctl, issue, ret_error);
        if (r < 0)
                return r;
        r = issue_apply_create_rules(issue, issue->created_at);
        if (r < 0)
                return r;

        r = store_begin(ctl->store);
        if (r < 0)
                return r;
        tx = ctl->store;
        r = store_issue_counter_next(ctl->store, issue->company_id, &issue->issue_number, &prefix);
        if (r < 0)
                return r;
        free(issue->identifier);
        issue->identifier = strprintf("%s-%" PRIi64, prefix, issue->issue_number);
        if (!issue->identifier)
                return -ENOMEM;
        r = store_insert(ctl->store, &issue_entity, issue);
        if (r < 0)
                return r;
        r = activity_record_by(ctl->store, actor, issue->company_id, "issue.created", "issue", issue->id,
                               issue->assignee_agent_id, NULL);
        if (r < 0)
                return r;
        r = store_commit(ctl->store);
        if (r < 0)
                return r;
        tx = NULL;

        IssueWaker w = { .ctl = ctl, .actor = actor };
        issue_wakes_after_change(&w, NULL, issue, NULL, NULL, NULL, false);
        return 0;
}

/* An agent's comment names the agent and the run that wrote it; the board's names the user. */
static int insert_comment(Control *ctl, const Actor *actor, const Issue *issue, const char *body, IssueComment *ret) {
        _cleanup_(comment_donep) IssueComment c = {};
        cJSON *details;
        int r;

        r = record_stamp(&c.id, &c.created_at, &c.updated_at, NULL);
        if (r < 0)
                return r;
        if (free_and_strdup(&c.company_id, issue->company_id) < 0 || free_and_strdup(&c.issue_id, issue->id) < 0 ||
            free_and_strdup(&c.body, body) < 0)
                return -ENOMEM;
        if (actor->type == ACTOR_AGENT ? free_and_strdup(&c.author_agent_id, actor->id) < 0 ||
                            free_and_strdup(&c.created_by_run_id, actor->run_id) < 0
                                       : free_and_strdup(&c.author_user_id, actor->id) < 0)
                return -ENOMEM;
        r = store_insert(ctl->store, &comment_entity, &c);
        if (r < 0)
                return r;
        details = cJSON_CreateObject();
        if (!details || !cJSON_AddStringToObject(details, "commentId", c.id) ||
            !cJSON_AddStringToObject(details, "identifier", issue->identifier)) {
                cJSON_Delete(details);
                return -ENOMEM;
        }
        r = activity_record_by(ctl->store, actor, issue->company_id, "issue.comment_added", "issue", issue->id, NULL, details);
        if (r < 0)
                return r;
        *ret = c;
        c = (IssueComment){};
        return 0;
}

/* interrupt: cancel the issue's running execution run, or else its assignee's running run on
 * it (reference §6.2); the wakes of the change then name the run (run_id, empty if none). */
static int interrupt_run(Control *ctl, const Actor *actor, const Issue *issue, char run_id[static UUID_STRING_MAX]) {
        _cleanup_(run_donep) Run run = {};
        int r;

        run_id[0] = '\0';
        r = store_run_to_interrupt(ctl->store, issue->execution_run_id, issue->assignee_agent_id, issue->id, &run);
        if (r <= 0)
                return r;
        snprintf(run_id, UUID_STRING_MAX, "%s", run.id);
        r = finalize_cancel_run(ctl, run_id);
        if (r < 0 && r != -ESTALE)
                return r;
        cJSON *d = cJSON_CreateObject();
        if (d) {
                cJSON_AddStringToObject(d, "source", "issue_comment_interrupt");
                cJSON_AddStringToObject(d, "issueId", issue->id);
        }
        return activity_record_by(ctl->store, actor, issue->company_id, "heartbeat.cancelled", "heartbeat_run", run_id, NULL, d);
}

/* An update's activity details: the fields asked for and, for a status change, the old status. */
static cJSON *update_details(const cJSON *fields, const Issue *before, const Issue *after, bool reopened) {
        cJSON *d = cJSON_Duplicate(fields, true);

        if (!d)
                return NULL;
        cJSON_DeleteItemFromObjectCaseSensitive(d, "comment");
        cJSON_AddStringToObject(d, "identifier", after->identifier);
        if (before->status != after->status) {
                cJSON_DeleteItemFromObjectCaseSensitive(d, "status");
                cJSON_AddStringToObject(d, "status", issue_status_to_string(after->status));
                cJSON_AddStringToObject(d, "previousStatus", issue_status_to_string(before->status));
        }
        if (reopened) {
                cJSON_DeleteItemFromObjectCaseSensitive(d, "reopen");
                cJSON_AddBoolToObject(d, "reopened", true);
                cJSON_AddStringToObject(d, "reopenedFrom", issue_status_to_string(before->status));
                cJSON_DeleteItemFromObjectCaseSensitive(d, "status");
                cJSON_AddStringToObject(d, "status", "todo");
        }
        return d;
}

int issue_change_update(Control *ctl, const Actor *actor, const Issue *before, Issue *after, const IssueUpdate *u,
                        char **ret_error) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(comment_donep) IssueComment added = {};
        char interrupted[UUID_STRING_MAX] = "";
        int r;

        /* reopen with a comment moves a closed issue back to todo, unless the update sets a status. */
        bool reopened = u->reopen && u->comment && issue_status_is_closed(before->status) && !u->status_given;
        if (reopened)
                after->status = ISSUE_TODO;
        r = validate(ctl, after, ret_error);
        if (r < 0)
                return r;
        char now[ISO_TIME_MAX];
        r = iso_time_now(now);
        if (r < 0)
                return r;
        if (free_and_strdup(&after->updated_at, now) < 0)
                return -ENOMEM;
        r = issue_apply_update_rules(before, after, u->status_given || reopened, now);
        if (r < 0)
                return r;

        r = store_begin(ctl->store);
        if (r < 0)
                return r;
        tx = ctl->store;
        r = store_update(ctl->store, &issue_entity, after);
        if (r < 0)
                return r;
        r = activity_record_by(ctl->store, actor, after->company_id, "issue.updated", "issue", after->id,
                               after->assignee_agent_id, update_details(u->fields, before, after, reopened));
        if (r < 0)
                return r;
        if (u->comment) {
                r = insert_comment(ctl, actor, after, u->comment, &added);
                if (r < 0)
                        return r;
        }
        r = store_commit(ctl->store);
        if (r < 0)
                return r;
        tx = NULL;

        if (u->interrupt) {
                r = interrupt_run(ctl, actor, after, interrupted);
                if (r < 0)
                        return r;
        }
        IssueWaker w = { .ctl = ctl, .actor = actor, .interrupted_run_id = interrupted[0] ? interrupted : NULL };
        issue_wakes_after_change(&w, before, after, added.id, u->comment, actor->type == ACTOR_AGENT ? actor->id : NULL,
                                 reopened);
        if (after->status == ISSUE_DONE && before->status != ISSUE_DONE) {
                issue_wakes_unblocked(&w, after);
                if (actor->type == ACTOR_AGENT) {
                        _cleanup_(agent_donep) Agent a = {};
                        if (store_get(ctl->store, &agent_entity, actor->id, &a) >= 0)
                                telemetry_task_completed(&ctl->telemetry, &a, after);
                }
        }
        return 0;
}

int issue_change_comment(Control *ctl, const Actor *actor, Issue *issue, const char *body, bool reopen, bool interrupt,
                         IssueComment *ret) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(issue_donep) Issue before = {};
        _cleanup_(comment_donep) IssueComment c = {};
        char interrupted[UUID_STRING_MAX] = "";
        int r;

        r = store_begin(ctl->store);
        if (r < 0)
                return r;
        tx = ctl->store;
        r = entity_copy(&issue_entity, issue, &before);
        if (r < 0)
                return r;
        r = insert_comment(ctl, actor, issue, body, &c);
        if (r < 0)
                return r;
        /* A comment is activity on its issue; with reopen, a closed issue is open again, as
         * the issue's update rules say for todo. */
        bool reopened = reopen && issue_status_is_closed(issue->status);
        if (reopened) {
                issue->status = ISSUE_TODO;
                r = issue_apply_update_rules(&before, issue, true, c.created_at);
                if (r < 0)
                        return r;
                r = activity_record_by(ctl->store, actor, issue->company_id, "issue.updated", "issue", issue->id,
                                       issue->assignee_agent_id, issue_reopen_details(issue, before.status, "comment"));
                if (r < 0)
                        return r;
        }
        r = free_and_strdup(&issue->updated_at, c.created_at);
        if (r < 0)
                return r;
        r = store_update(ctl->store, &issue_entity, issue);
        if (r < 0)
                return r;
        r = store_commit(ctl->store);
        if (r < 0)
                return r;
        tx = NULL;

        if (interrupt) {
                r = interrupt_run(ctl, actor, issue, interrupted);
                if (r < 0)
                        return r;
        }
        IssueWaker w = { .ctl = ctl, .actor = actor, .interrupted_run_id = interrupted[0] ? interrupted : NULL };
        issue_wakes_after_change(&w, &before, issue, c.id, c.body, c.author_agent_id, reopened);
        *ret = c;
        c = (IssueComment){};
        return 0;
}

int issue_change_block(Control *ctl, const Actor *actor, const Issue *issue, const Issue *blocker, IssueRelation *ret,
                       char **ret_error) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(issue_relation_donep) IssueRelation rel = {};
        bool cycle;
        int r;

        if (!streq(issue->company_id, blocker->company_id))
                return set_error(ret_error, -EBADR, "blockerIssueId: no such issue in this company");
        if (streq(issue->id, blocker->id))
                return set_error(ret_error, -EBADR, "an issue cannot block itself");
        r = store_begin(ctl->store);
        if (r < 0)
                return r;
        tx = ctl->store;
        /* blocker is to block issue: if blocker already waits for issue, that closes a cycle. */
        r = store_issue_waits_for(ctl->store, blocker->id, issue->id, &cycle);
        if (r < 0)
                return r;
        if (cycle)
                return set_error(ret_error, -EBADR, "%s already waits for %s: this would make a cycle", blocker->identifier,
                                 issue->identifier);
        r = entity_init(&issue_relation_entity, &rel);
        if (r < 0)
                return r;
        r = record_stamp(&rel.id, &rel.created_at, NULL, NULL);
        if (r < 0)
                return r;
        if (free_and_strdup(&rel.company_id, issue->company_id) < 0 || free_and_strdup(&rel.issue_id, blocker->id) < 0 ||
            free_and_strdup(&rel.related_issue_id, issue->id) < 0)
                return -ENOMEM;
        r = store_insert(ctl->store, &issue_relation_entity, &rel);
        if (r == -EEXIST)
                return set_error(ret_error, -EEXIST, "%s already blocks %s", blocker->identifier, issue->identifier);
        if (r < 0)
                return r;
        cJSON *d = cJSON_CreateObject();
        if (d) {
                cJSON_AddStringToObject(d, "identifier", issue->identifier);
                cJSON_AddStringToObject(d, "blockedBy", blocker->identifier);
        }
        r = activity_record_by(ctl->store, actor, issue->company_id, "issue.updated", "issue", issue->id, NULL, d);
        if (r < 0)
                return r;
        r = store_commit(ctl->store);
        if (r < 0)
                return r;
        tx = NULL;
        *ret = rel;
        rel = (IssueRelation){};
        return 0;
}
