/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Open addressing, linear probing, tombstones for removed entries. */
#include "basic/hashmap.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define HASHMAP_MIN_BUCKETS 16

typedef struct Bucket {
        const void *key; /* NULL: empty (for HASHMAP_INT, see used) */
        void *value;
        uint8_t state; /* 0 empty, 1 used, 2 removed */
} Bucket;

struct Hashmap {
        HashmapKeys keys;
        Bucket *buckets;
        size_t n_buckets; /* a power of two */
        size_t n_used, n_removed;
};

uint64_t hashmap_string_hash(const char *s) {
        uint64_t x = UINT64_C(1469598103934665603);

        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                x = (x ^ *p) * UINT64_C(1099511628211);
        return x;
}

static uint64_t hash(const Hashmap *h, const void *key) {
        uint64_t x;

        /* The string keys are corral's own (run ids), not a peer's. */
        if (h->keys == HASHMAP_STRING)
                return hashmap_string_hash(key);
        /* splitmix64's finalizer spreads small consecutive integers over the table. */
        x = (uint64_t) (intptr_t) key;
        x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
        return x ^ (x >> 31);
}

static bool equal(const Hashmap *h, const void *a, const void *b) {
        return h->keys == HASHMAP_STRING ? strcmp(a, b) == 0 : a == b;
}

int hashmap_new(HashmapKeys keys, Hashmap **ret) {
        Hashmap *h = calloc(1, sizeof(Hashmap));

        if (!h)
                return -ENOMEM;
        h->keys = keys;
        *ret = h;
        return 0;
}

Hashmap *hashmap_free(Hashmap *h) {
        if (h) {
                free(h->buckets);
                free(h);
        }
        return NULL;
}

/* The bucket of key, or (for a new key) the first free one on its probe path. */
static Bucket *find(const Hashmap *h, const void *key, bool for_insert) {
        Bucket *free_bucket = NULL;
        size_t mask = h->n_buckets - 1;

        for (size_t i = hash(h, key) & mask, step = 0; step < h->n_buckets; i = (i + 1) & mask, step++) {
                Bucket *b = &h->buckets[i];
                if (b->state == 0)
                        return for_insert ? (free_bucket ?: b) : NULL;
                if (b->state == 2) {
                        if (!free_bucket)
                                free_bucket = b;
                        continue;
                }
                if (equal(h, b->key, key))
                        return b;
        }
        return for_insert ? free_bucket : NULL;
}

static int resize(Hashmap *h, size_t n_buckets) {
        Bucket *old = h->buckets;
        size_t n_old = h->n_buckets;

        h->buckets = calloc(n_buckets, sizeof(Bucket));
        if (!h->buckets) {
                h->buckets = old;
                return -ENOMEM;
        }
        h->n_buckets = n_buckets;
        h->n_used = h->n_removed = 0;
        for (size_t i = 0; i < n_old; i++)
                if (old[i].state == 1) {
                        Bucket *b = find(h, old[i].key, true);
                        *b = old[i];
                        h->n_used++;
                }
        free(old);
        return 0;
}

int hashmap_put(Hashmap *h, const void *key, void *value) {
        Bucket *b;
        int r;

        /* At most 70% of the buckets in use or removed, so that probes stay short. */
        if ((h->n_used + h->n_removed + 1) * 10 > h->n_buckets * 7) {
                size_t n = h->n_buckets ? h->n_buckets : HASHMAP_MIN_BUCKETS;
                while ((h->n_used + 1) * 10 > n * 5)
                        n *= 2;
                r = resize(h, n);
                if (r < 0)
                        return r;
        }
        b = find(h, key, true);
        if (b->state == 1)
                return -EEXIST;
        if (b->state == 2)
                h->n_removed--;
        *b = (Bucket){ .key = key, .value = value, .state = 1 };
        h->n_used++;
        return 0;
}

void *hashmap_get(const Hashmap *h, const void *key) {
        Bucket *b = h->n_buckets ? find(h, key, false) : NULL;
        return b ? b->value : NULL;
}

void *hashmap_remove(Hashmap *h, const void *key) {
        Bucket *b = h->n_buckets ? find(h, key, false) : NULL;
        void *value;

        if (!b)
                return NULL;
        value = b->value;
        *b = (Bucket){ .state = 2 };
        h->n_used--;
        h->n_removed++;
        return value;
}

size_t hashmap_size(const Hashmap *h) {
        return h->n_used;
}
