/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The sweep (on a timer, at startup and on POST /api/sweep): lost and untracked runs
 * first, then queued work, then issues left without either (docs/design.md, "Recovery").
 */
#pragma once

#include "control/control.h"
#include "control/stranded.h"

/* Returns the number of runs taken up; *ret (may be NULL) gets the reconciliation's counters. */
int control_sweep(Control *ctl, StrandedCounters *ret);
