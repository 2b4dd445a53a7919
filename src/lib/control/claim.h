/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Claiming queued runs within the agent's free slots (queued -> running, guarded, in a
 * transaction), and launching them through the supervisor once the claim has committed
 * (reference §2.3 steps 1-3, §3.7).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "control/control.h"
#include "store/model.h"

/* Claim what can start of an agent's queued runs: all in one transaction, its own or the
 * caller's when in_tx. The claimed runs go to *ret (*ret_n of them), to be passed to
 * claim_launch() once their transaction has committed. */
int claim_startable(Control *ctl, Agent *agent, bool in_tx, Run **ret, size_t *ret_n);

/* Launch claimed runs whose claim has committed; a run that cannot be launched is
 * finalized as launch_failed. claim_launch() frees claimed. */
void claim_launch_one(Control *ctl, const Agent *agent, const Run *run);
void claim_launch(Control *ctl, const Agent *agent, Run *claimed, size_t n);

/* Read the agent into *agent and claim what can start of its queued runs, in a transaction
 * of its own (nothing when it is not invokable); the claimed runs go to *ret. -EAGAIN when
 * the database was busy (another host held its write lock): nothing was claimed. */
int claim_agent(Control *ctl, const char *agent_id, Agent *agent, Run **ret, size_t *ret_n);
