/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The live events of GET /api/events (corrald(8), EVENTS), as the triggers of migration 8
 * write them in the transaction of each change.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* How many events are kept for clients that reconnect. */
#define EVENTS_KEPT 100000

typedef struct StoreEvent {
        int64_t id;
        char *company_id, *type, *entity_id, *data, *created_at;
} StoreEvent;

void store_events_free(StoreEvent *events, size_t n);
/* Events after id, oldest first, at most limit; of one company when company_id is set. */
int store_events_after(Store *s, int64_t after, const char *company_id, size_t limit, StoreEvent **ret, size_t *ret_n);
/* The oldest event's id and the newest's (0, 0 when there is none). */
int store_events_span(Store *s, int64_t *ret_oldest, int64_t *ret_newest);
/* Forget all but the newest keep events. */
int store_events_prune(Store *s, int64_t keep);
