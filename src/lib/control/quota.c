/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Per-agent quotas in one-minute windows (quota.h). */
#include "control/quota.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/hashmap.h"
#include "basic/macro.h"
#include "basic/time-util.h"

#define QUOTA_WINDOW_USEC (60 * USEC_PER_SEC)

typedef struct QuotaEntry {
        char *agent_id; /* the key */
        uint64_t window_start[_QUOTA_MAX];
        unsigned count[_QUOTA_MAX];
        struct QuotaEntry *next; /* all of them, to free them */
} QuotaEntry;

struct Quota {
        Hashmap *agents; /* agent id -> QuotaEntry; one per agent that asked, never more */
        QuotaEntry *entries;
};

int quota_new(Quota **ret) {
        Quota *q = calloc(1, sizeof(Quota));
        int r;

        if (!q)
                return -ENOMEM;
        r = hashmap_new(HASHMAP_STRING, &q->agents);
        if (r < 0) {
                free(q);
                return r;
        }
        *ret = q;
        return 0;
}

static void free_entry(QuotaEntry *e) {
        free(e->agent_id);
        free(e);
}

Quota *quota_free(Quota *q) {
        if (!q)
                return NULL;
        while (q->entries) {
                QuotaEntry *e = q->entries;
                q->entries = e->next;
                free_entry(e);
        }
        hashmap_free(q->agents);
        free(q);
        return NULL;
}

int quota_take(Quota *q, QuotaKind kind, const char *agent_id, unsigned per_minute, uint64_t now_usec,
               unsigned *ret_retry_after_sec) {
        QuotaEntry *e;
        int r;

        *ret_retry_after_sec = 0;
        if (per_minute == 0)
                return 0;
        e = hashmap_get(q->agents, agent_id);
        if (!e) {
                e = calloc(1, sizeof(QuotaEntry));
                if (!e)
                        return -ENOMEM;
                e->agent_id = strdup(agent_id);
                if (!e->agent_id) {
                        free(e);
                        return -ENOMEM;
                }
                r = hashmap_put(q->agents, e->agent_id, e);
                if (r < 0) {
                        free_entry(e);
                        return r;
                }
                e->next = q->entries;
                q->entries = e;
        }
        if (e->count[kind] == 0 || now_usec - e->window_start[kind] >= QUOTA_WINDOW_USEC) {
                e->window_start[kind] = now_usec;
                e->count[kind] = 0;
        }
        if (e->count[kind] >= per_minute) {
                uint64_t left = e->window_start[kind] + QUOTA_WINDOW_USEC - now_usec;
                *ret_retry_after_sec = (unsigned) ((left + USEC_PER_SEC - 1) / USEC_PER_SEC);
                return -EDQUOT;
        }
        e->count[kind]++;
        return 0;
}
