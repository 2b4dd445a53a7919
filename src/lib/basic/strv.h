/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* NULL-terminated lists of strings, owned with their strings: the one string-list type. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* NULL-terminated lists of strings, owned with their strings. */
char **strv_free(char **l);
size_t strv_length(char *const *l);
bool strv_contains(const char *const *l, const char *s);
/* Append s itself, which the list then owns (freed on failure). */
int strv_consume(char ***l, char *s);
/* Append a copy of s. */
int strv_push(char ***l, const char *s);
/* Append the comma-separated items of s ("a,b"; "" adds none). */
int strv_push_split(char ***l, const char *s);
/* In a list of names and values, alternating: the value of name, or NULL. */
const char *strv_pair_value(char *const *l, const char *name);
static inline void strv_freep(char ***l) {
        strv_free(*l);
}
#define _cleanup_strv_free_ __attribute__((cleanup(strv_freep)))

#define STRV_FOREACH(s, l) for (char **s = (l); s && *s; s++)
