/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "store/queries.h"

#include <errno.h>

#include "basic/macro.h"
#include "basic/time-util.h"

int store_run_event_append(Store *s, const char *run_id, const char *event_type, EventLevel level, const char *message,
                           const char *payload_json) {
        _cleanup_(run_donep) Run run = {};
        _cleanup_(run_event_donep) RunEvent e = {};
        char now[ISO_TIME_MAX];
        int64_t n;
        int r;

        r = store_get(s, &run_entity, run_id, &run);
        if (r < 0)
                return r;
        r = store_count(s, "heartbeat_run_events", "WHERE run_id = ?1", (const char *const[]){ run_id, NULL }, &n);
        if (r < 0)
                return r;
        r = entity_init(&run_event_entity, &e);
        if (r < 0)
                return r;
        r = iso_time_now(now);
        if (r < 0)
                return r;
        e.seq = n + 1;
        e.level = level;
        e.stream = STREAM_SYSTEM;
        if (free_and_strdup(&e.company_id, run.company_id) < 0 || free_and_strdup(&e.run_id, run_id) < 0 ||
            free_and_strdup(&e.agent_id, run.agent_id) < 0 || free_and_strdup(&e.event_type, event_type) < 0 ||
            free_and_strdup(&e.message, message) < 0 || free_and_strdup(&e.created_at, now) < 0 ||
            (payload_json && free_and_strdup(&e.payload, payload_json) < 0))
                return -ENOMEM;
        return store_insert(s, &run_event_entity, &e);
}
