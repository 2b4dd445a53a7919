/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Wakes (reference §3.2): a wake of an agent is decided as one plan — replay an earlier
 * wake with the same idempotency key, skip it (policy, unknown issue), join the run that
 * holds its issue, defer it behind that run, coalesce it into a queued run of the same
 * task, or queue a new run — and the plan is written and committed in one transaction.
 * A new run is claimed in that same transaction and launched after it commits.
 */
#pragma once

#include "control/control.h"
#include "store/model.h"

typedef struct WakeRequest {
        WakeupSource source;
        int trigger_detail; /* TriggerDetail or -1 */
        const char *reason; /* may be NULL */
        const char *payload_json; /* object text, may be NULL */
        const char *idempotency_key; /* may be NULL */
        const char *context_json; /* extra context keys (e.g. "source"), may be NULL */
        ActorType actor_type;
        const char *actor_id;
        /* An activity to record about the wake, with its outcome and run, in the wake's own
         * transaction (the API's "heartbeat.invoked"); NULL for none. */
        const char *activity;
} WakeRequest;

typedef enum WakeOutcome {
        WAKE_QUEUED, /* a new run */
        WAKE_COALESCED, /* merged into a queued or running run */
        WAKE_SKIPPED, /* policy said no; *ret_reason says which */
        WAKE_DEFERRED, /* another run holds the issue; the wake waits for its release */
} WakeOutcome;

const char *wake_outcome_to_string(WakeOutcome o);

/* -ENOENT: no such agent. -EPERM: the agent is not invokable (paused, terminated, pending
 * approval). -EINVAL: payload.issueId is not a string. */
int wakeup_request(Control *ctl, const char *agent_id, const WakeRequest *req, WakeOutcome *ret_outcome, char **ret_run_id,
                   char **ret_reason);

/* Set a wakeup's status (claimed, or a final one with error), writing only those columns;
 * a NULL or unknown wakeup_id is nothing to do. */
int wakeup_set_status(Control *ctl, const char *wakeup_id, WakeupStatus status, const char *error, const char *now);

/* The lock of issue was just released: promote the oldest deferred wake of every agent
 * waiting on it, and name the agents with runs queued on it, in *agents (a strv without
 * repeats), to be started once the caller's transaction commits (design §3 difference 3). */
int wakeup_promote_deferred(Control *ctl, Issue *issue, const char *now, char ***agents);
