/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The heartbeat control plane (SPEC §3, reference §2-§3): wakeups become
 * queued runs, queued runs are claimed within the agent's concurrency limit and
 * launched through the supervisor, finished runs update the run, its wakeup,
 * the agent and its runtime state.
 *
 * An issue-scoped wake (payload.issueId) takes the execution lock when
 * its run is queued, in the same transaction (SPEC §3 difference 1); while
 * another run holds the lock, the wake joins that run (same agent) or waits as a
 * deferred wake until the lock is released.
 */
#pragma once

#include "control/control.h"
#include "store/model.h"
#include "supervise/supervisor.h"

#define HEARTBEAT_MAX_CONCURRENT_DEFAULT 1
#define HEARTBEAT_MAX_CONCURRENT_MAX 10

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
        WAKE_COALESCED, /* merged into a queued run */
        WAKE_SKIPPED, /* policy said no; *ret_reason says which */
        WAKE_DEFERRED, /* another run holds the issue; the wake waits for its release */
} WakeOutcome;

const char *wake_outcome_to_string(WakeOutcome o);

/* -EPERM: the agent is not invokable (paused, terminated, pending approval).
 * -EINVAL: payload.issueId is not a string. */
int heartbeat_wakeup(Control *ctl, const char *agent_id, const WakeRequest *req, WakeOutcome *ret_outcome, char **ret_run_id,
                     char **ret_reason);

/* Claim and launch queued runs of the agent while it has free slots. */
void heartbeat_start_next(Control *ctl, const char *agent_id);

/* The supervisor's callback: a run ended and its cgroup is gone. */
void heartbeat_run_finished(Supervisor *s, const RunResult *result, void *userdata);

/* Cancel one run: a queued run at once, a running one through the supervisor (it ends
 * after SIGTERM and the grace period). -ENOENT unknown, -ESTALE already terminal,
 * -EREMCHG running but not tracked by this corrald. */
int heartbeat_cancel_run(Control *ctl, const char *run_id);

/* Take up runs in status running that this corrald does not track (SPEC §5): at startup
 * and on every sweep. Returns how many were examined. Then queued runs are started. */
int heartbeat_recover(Control *ctl);

/* Cancel every queued and running run of an agent (pause, terminate). */
int heartbeat_cancel_agent_runs(Control *ctl, const char *agent_id);
