/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Stranded-issue reconciliation (reference §5, design §3 difference 7): agent-
 * assigned todo and in_progress issues that nothing is working on any more get
 * one automatic dispatch or continuation; when that did not help, they are
 * moved to blocked with a comment saying so, so someone can intervene. Issues
 * assigned to users are never touched.
 */
#pragma once

#include "control/control.h"

#define STRANDED_MAX_CONTINUATIONS_DEFAULT 2

typedef struct StrandedCounters {
        unsigned dispatch_requeued;
        unsigned continuation_requeued;
        unsigned escalated;
        unsigned skipped;
        char **issue_ids; /* strv: the issues acted on (requeued or escalated) */
} StrandedCounters;

void stranded_counters_done(StrandedCounters *c);

int stranded_reconcile(Control *ctl, StrandedCounters *ret);

/* The "Latest retry failure" line of an escalation comment (with its leading space), from a
 * run's error code and error text; "" when both are empty. */
char *stranded_failure_line(const char *error_code, const char *error);
