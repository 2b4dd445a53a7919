/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Runs in status running whose process this corrald does not track (design §5, reference
 * §4): at startup and on every sweep each is re-adopted when its shim still lives, or
 * finalized as lost, with one automatic retry of a lost run.
 */
#pragma once

#include "control/control.h"
#include "store/model.h"

/* Take up the untracked running runs, then start queued runs. Returns how many runs were
 * examined. */
int run_recovery_adopt(Control *ctl);

/* Why a run is retried, once, automatically. */
typedef enum RetryReason {
        RETRY_PROCESS_LOST, /* its process was lost (reference §4 step 10) */
        RETRY_SESSION_NOT_FOUND, /* its CLI could not resume the task's session: again, fresh */
} RetryReason;

/* Queue the automatic retry of a run inside the caller's transaction; the lock moves
 * to the retry. */
int run_recovery_enqueue_retry(Control *ctl, const Run *failed, RetryReason why, char **ret_retry_id);
