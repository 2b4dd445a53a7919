/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Quotas of what one agent may ask for in a minute (corrald.conf(5), quota-*): wakes and
 * comments. Counted in memory, per agent, in fixed one-minute windows: a restart forgets
 * them, which costs an abuser at most one more minute's worth.
 */
#pragma once

#include <stdint.h>

typedef enum QuotaKind {
        QUOTA_WAKES,
        QUOTA_COMMENTS,
        _QUOTA_MAX,
} QuotaKind;

typedef struct Quota Quota;

int quota_new(Quota **ret);
Quota *quota_free(Quota *q);

/* Count one of kind for agent_id at now_usec (CLOCK_MONOTONIC) against per_minute (0: no
 * quota): 0, or -EDQUOT when the agent is over it, with the seconds until its window ends
 * in *ret_retry_after_sec. */
int quota_take(Quota *q, QuotaKind kind, const char *agent_id, unsigned per_minute, uint64_t now_usec,
               unsigned *ret_retry_after_sec);
