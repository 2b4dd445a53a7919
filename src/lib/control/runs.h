/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Run records: their events, and turning how a run ended (a RunResult of the
 * supervisor) into its terminal status, error code and stop metadata
 * (reference §2.3 step 7, §6.1, with corral's own codes).
 */
#pragma once

#include "store/model.h"
#include "store/store.h"

typedef struct RunResult RunResult;

/* How much of a coding CLI's final text resultJson keeps. */
#define RUN_RESULT_TEXT_MAX (64 * 1024)

/* Apply a result to a run record in memory: status, error, errorCode, exitCode, signal,
 * finishedAt, log size and digest, excerpts, and stopReason/timeoutFired in resultJson. */
int run_apply_result(Run *run, const RunResult *result);

/* Load the run, apply the result, write it back in one transaction with a lifecycle event.
 * -ESTALE when the run is already terminal (it is left as it is). */
int run_finalize(Store *s, const RunResult *result, Run *ret);
/* The same inside the caller's transaction. */
int run_finalize_in_transaction(Store *s, const RunResult *result, Run *ret);
