/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Changes an actor makes to issues (design §7, reference §8): create, update (with a comment,
 * reopen and interrupt), comment, block. Each is one transaction with its activity rows;
 * the wakes it causes follow once it has committed.
 *
 * Refusals come with a message in *ret_error: -EBADR when a reference the change makes is
 * not valid (another company's agent, a parent that does not exist, a cycle of blockers),
 * -EEXIST when the relation exists.
 */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "control/activity.h"
#include "control/control.h"
#include "store/model.h"

/* A new issue, its fields set by the caller (id, company, stamps and the fields asked for):
 * it gets its number and identifier here. */
int issue_change_create(Control *ctl, const Actor *actor, Issue *issue, char **ret_error);

typedef struct IssueUpdate {
        const cJSON *fields; /* the fields asked for, for the activity's details */
        bool status_given; /* fields name a status */
        const char *comment; /* a comment to add, or NULL */
        bool reopen; /* with a comment: a closed issue goes back to todo, unless a status is given */
        bool interrupt; /* cancel the issue's running run first (the board only) */
} IssueUpdate;

/* before as it is, after as the caller changed it: after is completed by the issue's
 * update rules, written, and holds the issue as it now is. */
int issue_change_update(Control *ctl, const Actor *actor, const Issue *before, Issue *after, const IssueUpdate *u,
                        char **ret_error);

/* A comment on issue (reopening it with reopen, interrupting its run with interrupt);
 * *ret gets the comment. */
int issue_change_comment(Control *ctl, const Actor *actor, Issue *issue, const char *body, bool reopen, bool interrupt,
                         IssueComment *ret);

/* blocker is to block issue. */
int issue_change_block(Control *ctl, const Actor *actor, const Issue *issue, const Issue *blocker, IssueRelation *ret,
                       char **ret_error);
