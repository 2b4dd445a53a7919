/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The wakes a change to an issue causes (reference §3.6): its assignee on assignment, on a
 * status change that resumes work and on a comment; the agents a comment @-mentions; the
 * assignees of issues a finished one unblocks. They are fire-and-forget: a wake that fails
 * is logged, and the change that caused it stands. An agent's own change never wakes it
 * (design §3 difference 2).
 */
#pragma once

#include <stdbool.h>

#include "control/activity.h"
#include "control/control.h"
#include "store/model.h"

typedef struct IssueWaker {
        Control *ctl;
        const Actor *actor; /* who made the change */
        const char *interrupted_run_id; /* a run the change interrupted: its wakes name it; may be NULL */
} IssueWaker;

/* Wake one agent about an issue. */
void issue_wake(const IssueWaker *w, const char *agent_id, WakeupSource source, const char *reason, const Issue *issue,
                const char *mutation, const char *comment_id, const char *context_source);

/* The wakes of a change from before (NULL for a new issue) to after, with the comment it
 * added (comment_id, body; may be NULL) by author_agent_id (NULL: the board). reopened:
 * the comment reopened a closed issue, which wakes its assignee for that reason alone. */
void issue_wakes_after_change(const IssueWaker *w, const Issue *before, const Issue *after, const char *comment_id,
                              const char *body, const char *author_agent_id, bool reopened);

/* done became done: every issue it blocked whose blockers are now all done wakes its
 * assignee (issue_blockers_resolved). */
void issue_wakes_unblocked(const IssueWaker *w, const Issue *done);
