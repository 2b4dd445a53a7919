/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The wakes a change to an issue causes (reference §3.6). */
#include "control/issue-wakes.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "basic/log.h"
#include "basic/macro.h"
#include "control/wakeup.h"
#include "store/issues.h"
#include "store/jsonmap.h"
#include "store/queries.h"

void issue_wake(const IssueWaker *w, const char *agent_id, WakeupSource source, const char *reason, const Issue *issue,
                const char *mutation, const char *comment_id, const char *context_source) {
        _cleanup_json_ cJSON *payload = cJSON_CreateObject(), *ctx = cJSON_CreateObject();
        _cleanup_free_ char *p = NULL, *c = NULL, *run_id = NULL, *skip = NULL;
        WakeOutcome outcome;
        int r;

        if (!payload || !ctx)
                return;
        cJSON_AddStringToObject(payload, "issueId", issue->id);
        if (mutation)
                cJSON_AddStringToObject(payload, "mutation", mutation);
        if (comment_id)
                cJSON_AddStringToObject(payload, "commentId", comment_id);
        if (w->interrupted_run_id)
                cJSON_AddStringToObject(payload, "interruptedRunId", w->interrupted_run_id);
        cJSON_AddStringToObject(ctx, "source", context_source);
        p = cJSON_PrintUnformatted(payload);
        c = cJSON_PrintUnformatted(ctx);
        if (!p || !c)
                return;
        WakeRequest wake = { .source = source,
                             .trigger_detail = -1,
                             .reason = reason,
                             .payload_json = p,
                             .context_json = c,
                             .actor_type = w->actor->type,
                             .actor_id = w->actor->id };
        r = wakeup_request(w->ctl, agent_id, &wake, &outcome, &run_id, &skip);
        if (r == -EPERM)
                log_debug("Not waking agent %s about %s: it is not invokable.", agent_id, issue->identifier);
        else if (r < 0)
                log_warning_errno(r, "Failed to wake agent %s about %s, ignoring: %m", agent_id, issue->identifier);
        else
                log_debug("Woke agent %s about %s (%s): %s.", agent_id, issue->identifier, reason,
                          wake_outcome_to_string(outcome));
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
static void wake_mentions(const IssueWaker *w, const Issue *issue, const char *body, const char *comment_id,
                          const char *author_agent_id) {
        Agent *agents;
        size_t n;

        if (!strchr(body, '@') || store_agents_of_company_all(w->ctl->store, issue->company_id, &agents, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                const Agent *a = &agents[i];
                bool mentioned = mentions(body, a->name);
                /* An agent's own comment never wakes it (design §3 difference 2); the assignee got its wake. */
                if (mentioned && !streq_ptr(a->id, author_agent_id) && !streq_ptr(a->id, issue->assignee_agent_id))
                        issue_wake(w, a->id, WAKEUP_SOURCE_AUTOMATION, "issue_comment_mentioned", issue, "comment", comment_id,
                                   "comment.mention");
        }
        entity_array_free(&agent_entity, agents, n);
}

void issue_wakes_after_change(const IssueWaker *w, const Issue *before, const Issue *after, const char *comment_id,
                              const char *body, const char *author_agent_id, bool reopened) {
        const char *assignee = after->assignee_agent_id;
        bool mentioned_assignee = false;

        /* A comment that reopened a closed issue wakes its assignee for that reason alone. */
        if (reopened && assignee && !streq_ptr(assignee, author_agent_id))
                issue_wake(w, assignee, WAKEUP_SOURCE_AUTOMATION, "issue_reopened_via_comment", after, "comment", comment_id,
                           "issue.comment.reopen");
        if (reopened) {
                if (body && comment_id)
                        wake_mentions(w, after, body, comment_id, author_agent_id);
                return;
        }

        if (body && assignee) {
                _cleanup_(agent_donep) Agent a = {};
                if (store_get(w->ctl->store, &agent_entity, assignee, &a) >= 0)
                        mentioned_assignee = mentions(body, a.name);
        }
        if (assignee && !streq_ptr(assignee, author_agent_id)) {
                bool assigned = !before || !streq_ptr(before->assignee_agent_id, assignee);
                if (assigned && after->status != ISSUE_BACKLOG)
                        issue_wake(w, assignee, WAKEUP_SOURCE_ASSIGNMENT, "issue_assigned", after, before ? "update" : "create",
                                   comment_id, before ? "issue.update" : "issue.create");
                else if (!assigned && before->status != after->status &&
                         ((before->status == ISSUE_BACKLOG && !issue_status_is_closed(after->status)) ||
                          (after->status == ISSUE_TODO &&
                           (before->status == ISSUE_BLOCKED || issue_status_is_closed(before->status)))))
                        issue_wake(w, assignee, WAKEUP_SOURCE_AUTOMATION, "issue_status_changed", after, "update", comment_id,
                                   "issue.status_change");
                else if (!assigned && comment_id && !issue_status_is_closed(after->status))
                        issue_wake(w, assignee, WAKEUP_SOURCE_AUTOMATION,
                                   mentioned_assignee ? "issue_comment_mentioned" : "issue_commented", after, "comment",
                                   comment_id, "issue.comment");
        }
        if (body && comment_id)
                wake_mentions(w, after, body, comment_id, author_agent_id);
}

void issue_wakes_unblocked(const IssueWaker *w, const Issue *done) {
        Issue *issues;
        size_t n;

        if (store_issues_unblocked_by(w->ctl->store, done->id, &issues, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                const Issue *d = &issues[i];
                issue_wake(w, d->assignee_agent_id, WAKEUP_SOURCE_AUTOMATION, "issue_blockers_resolved", d, "blockers_resolved",
                           NULL, "issue.blockers_resolved");
        }
        entity_array_free(&issue_entity, issues, n);
}
