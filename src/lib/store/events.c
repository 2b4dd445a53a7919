/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "store/events.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "store/store-internal.h"

void store_events_free(StoreEvent *events, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(events[i].company_id);
                free(events[i].type);
                free(events[i].entity_id);
                free(events[i].data);
                free(events[i].created_at);
        }
        free(events);
}

static int dup_text(StoreStmt *stmt, int i, char **ret) {
        const char *t = stmt_column_text(stmt, i);

        *ret = strdup(t ?: "");
        return *ret ? 0 : -ENOMEM;
}

int store_events_after(Store *s, int64_t after, const char *company_id, size_t limit, StoreEvent **ret, size_t *ret_n) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        StoreEvent *events = NULL;
        size_t n = 0;
        int r, row = 0;

        r = store_prepare(s,
                          company_id ? "SELECT id, company_id, type, entity_id, data, created_at FROM events "
                                       "WHERE company_id = ?3 AND id > ?1 ORDER BY id LIMIT ?2"
                                     : "SELECT id, company_id, type, entity_id, data, created_at FROM events "
                                       "WHERE id > ?1 ORDER BY id LIMIT ?2",
                          &stmt);
        if (r < 0)
                return r;
        if ((r = stmt_bind_int64(stmt, 1, after)) < 0 || (r = stmt_bind_int64(stmt, 2, (int64_t) limit)) < 0 ||
            (company_id && (r = stmt_bind_text(stmt, 3, company_id)) < 0))
                return r;
        events = calloc(MAX(limit, (size_t) 1), sizeof(StoreEvent));
        if (!events)
                return -ENOMEM;
        while (n < limit && (row = stmt_step(stmt)) > 0) {
                StoreEvent *e = &events[n++];
                e->id = stmt_column_int64(stmt, 0);
                if (dup_text(stmt, 1, &e->company_id) < 0 || dup_text(stmt, 2, &e->type) < 0 ||
                    dup_text(stmt, 3, &e->entity_id) < 0 || dup_text(stmt, 4, &e->data) < 0 ||
                    dup_text(stmt, 5, &e->created_at) < 0) {
                        store_events_free(events, n);
                        return -ENOMEM;
                }
        }
        if (row < 0) {
                store_events_free(events, n);
                return row;
        }
        *ret = events;
        *ret_n = n;
        return 0;
}

int store_events_span(Store *s, int64_t *ret_oldest, int64_t *ret_newest) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        int r;

        /* min() and max() of the key are two lookups at the ends of its b-tree. */
        r = store_prepare(s, "SELECT coalesce(min(id), 0), coalesce(max(id), 0) FROM events", &stmt);
        if (r < 0)
                return r;
        r = stmt_step(stmt);
        if (r < 0)
                return r;
        if (r == 0)
                return -EIO;
        *ret_oldest = stmt_column_int64(stmt, 0);
        *ret_newest = stmt_column_int64(stmt, 1);
        return 0;
}

int store_events_prune(Store *s, int64_t keep) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        int r;

        r = store_prepare(s, "DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?1", &stmt);
        if (r < 0)
                return r;
        r = stmt_bind_int64(stmt, 1, keep);
        if (r < 0)
                return r;
        return stmt_done(stmt);
}
