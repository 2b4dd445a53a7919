/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * How a run ends (reference §2.3 step 7, §2.4, §6.1): the supervisor's RunResult becomes
 * the run's terminal status, error code and stop metadata, and in the same transaction its
 * wakeup, its issue's lock and the deferred wakes behind it, its agent and runtime state,
 * and a retry of a lost run follow. Cancelling a run ends it the same way.
 */
#pragma once

#include "control/control.h"
#include "store/model.h"
#include "store/store.h"
#include "supervise/supervisor.h"

/* How much of a coding CLI's final text resultJson keeps. */
#define RUN_RESULT_TEXT_MAX (64 * 1024)

/* Apply a result to a run record in memory: status, error, errorCode, exitCode, signal,
 * finishedAt, log size and digest, excerpts, and stopReason/timeoutFired in resultJson. */
int finalize_apply_result(Run *run, const RunResult *result);

/* Load the run, apply the result, write it back in one transaction with a lifecycle event.
 * -ESTALE when the run is already terminal (it is left as it is). */
int finalize_run(Store *s, const RunResult *result, Run *ret);
/* The same inside the caller's transaction. */
int finalize_run_in_transaction(Store *s, const RunResult *result, Run *ret);

/* The supervisor's callback (userdata: the Control): a run ended and its cgroup is gone.
 * The end is recorded whatever happens (finalize.c, finalize_end()): what cannot be written
 * now is kept and tried again from a timer. */
void finalize_run_finished(Supervisor *s, const RunResult *result, void *userdata);
/* A run of a host declared dead (control/host.c): finalized here as lost, error saying
 * why, with its one retry; what cannot be written now is tried again like any end. */
int finalize_run_lost_elsewhere(Control *ctl, const Run *run, const char *error);
/* At shutdown: forget the ends not recorded yet (the next start's recovery records them
 * from the runs' status files). */
void finalize_pending_free(Control *ctl);

/* Cancel one run: a queued run at once, a running one through the supervisor (it ends
 * after SIGTERM and the grace period), a running one that no process of is tracked at once
 * (force-finished), one that another host supervises by asking it to
 * (finalize_stop_requested()). -ENOENT unknown, -ESTALE already terminal. */
int finalize_cancel_run(Control *ctl, const char *run_id);
/* A stop asked of a run of this host through another (store_run_request_stop()): carried out
 * if this host tracks the run. For one run (told by NOTIFY), or for all (the sweep). */
int finalize_stop_requested(Control *ctl, const char *run_id);
void finalize_stop_requests(Control *ctl);

/* Cancel every queued and running run of an agent (pause, terminate). */
int finalize_cancel_agent_runs(Control *ctl, const char *agent_id, RunEnd why);
