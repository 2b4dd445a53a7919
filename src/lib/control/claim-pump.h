/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Claims asked for in bulk (at start, when a host is resumed, when another host tells of
 * work for several agents), made a slice at a time from the event loop, and the launches
 * they make after them. Done in one go, a thousand queued runs are seconds of launches in
 * which the loop renews no lease (the host would fence itself and kill its runs) and
 * answers no request. The claims come first, every one of them before any launch: a claim
 * is a few statements, a launch a process, and what one host has claimed no other waits
 * for. A claim that finds the database busy (another host holds its write lock past the
 * busy timeout) is made again a little later.
 */
#pragma once

#include "control/control.h"

/* Claim and launch queued runs of the agent while it has free slots, now; when the database
 * is busy, from the loop shortly after. */
void claim_start_next(Control *ctl, const char *agent_id);
/* Claim for the agent soon (each agent once however often it is asked). */
void claim_pump_want(Control *ctl, const char *agent_id);
/* The same for every agent with queued runs. */
int claim_pump_want_all(Control *ctl);
/* At exit: launch what was claimed and not launched yet (its claim is committed: left
 * so, it would be a run lost at the next start), and forget what was asked. */
void claim_pump_free(Control *ctl);
