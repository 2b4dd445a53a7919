/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A hash table from keys to pointers, for lookups that would otherwise walk every tracked
 * run: by run id (a string the value owns) or by a small integer (an inotify watch). Open
 * addressing with linear probing; it grows, it never shrinks. It owns neither keys nor
 * values.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct Hashmap Hashmap;

typedef enum HashmapKeys {
        HASHMAP_STRING, /* keys are NUL-terminated strings, kept by pointer */
        HASHMAP_INT, /* keys are integers, passed as HASHMAP_INT_KEY(i) */
} HashmapKeys;

#define HASHMAP_INT_KEY(i) ((const void *) (intptr_t) (i))

int hashmap_new(HashmapKeys keys, Hashmap **ret);
Hashmap *hashmap_free(Hashmap *h);

/* -EEXIST when the key is there already. */
int hashmap_put(Hashmap *h, const void *key, void *value);
/* The value of key, or NULL. */
void *hashmap_get(const Hashmap *h, const void *key);
/* Remove key; its value, or NULL when it was not there. */
void *hashmap_remove(Hashmap *h, const void *key);
size_t hashmap_size(const Hashmap *h);

/* The hash of a string key (FNV-1a): for keys that are corral's own, not a peer's. */
uint64_t hashmap_string_hash(const char *s);
