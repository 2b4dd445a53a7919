/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The store's named queries: every question the control plane and the API ask of the
 * database beyond a record by its key, each with its SQL here and nowhere else.
 */
#pragma once

#include "store/model.h"
#include "store/store.h"

/* Append an event to a run (seq = max + 1). payload_json may be NULL. */
int store_run_event_append(Store *s, const char *run_id, const char *event_type, EventLevel level, const char *message,
                           const char *payload_json);
