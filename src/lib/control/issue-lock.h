/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An issue's execution lock (executionRunId, executionAgentId, executionLockedAt): the run
 * that works on the issue now. An issue-scoped wake takes it in the transaction that queues
 * its run (design §3 difference 1); every terminal path of that run releases it (difference
 * 3). This module is the only writer of those three fields.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "control/activity.h"
#include "control/control.h"
#include "store/model.h"
#include "store/store.h"

/* Point the lock at run_id of agent_id (NULL releases it) and write the issue. updatedAt
 * stays: the lock is bookkeeping, not a change of the issue. */
int issue_lock_set(Store *s, Issue *issue, const char *run_id, const char *agent_id, const char *now);

/* The run holding the issue's lock, if it is still queued or running (*ret_found). A lock
 * on a run that ended is released; an issue without one adopts an active run of it
 * (running first, then the oldest), so that runs queued before locks existed count. */
int issue_lock_holder(Store *s, Issue *issue, const char *now, Run *ret, bool *ret_found);

/* A run ended: release the lock of its issue if the run holds it. *ret (entity_done it)
 * gets the issue and *ret_released whether there is one whose lock is now free; an issue
 * held by another run is left alone. */
int issue_lock_release(Store *s, const Run *run, const char *now, Issue *ret, bool *ret_released);

/* Whether holder (a run id in a lock or checkout field, may be NULL) names an active run other
 * than run_id: a field naming no active run is stale and may be taken over. */
int issue_lock_held_by_other(Store *s, const char *holder, const char *run_id, bool *ret);

/* ---- checkout and release by the API (reference §8) ---- */

typedef struct IssueCheckout {
        const char *agent_id; /* who takes the issue */
        const IssueStatus *expected; /* statuses it may have; NULL: todo, backlog or blocked */
        size_t n_expected;
        const char *run_id; /* the run checking out (an agent's call), or NULL (the board) */
} IssueCheckout;

/* Check the issue out: in_progress, assigned to the agent, and with a run its checkout and
 * execution lock. -EBUSY: it is taken or not in an expected status (*ret then holds the issue
 * as it is, for the conflict's details); -EBADR: the agent is of another company. On success
 * *ret is the issue as it now is. Checked out by the board for an agent it was not assigned
 * to, the agent is woken. */
int issue_lock_checkout(Control *ctl, const Actor *actor, const char *issue_id, const IssueCheckout *c, Issue *ret,
                        char **ret_error);

/* Release the issue: back to todo, unassigned, its checkout and lock cleared. An agent may
 * release only an issue assigned to it and, when in progress, checked out by its run:
 * -EBUSY otherwise, with *ret and *ret_error as for a checkout conflict. */
int issue_lock_release_by(Control *ctl, const Actor *actor, const char *issue_id, Issue *ret, char **ret_error);
