/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A run's context (contextSnapshot) and a deferred wake's stored context: JSON objects that
 * wakes build and merge (reference §3.2, coalescing and deferral).
 */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>

/* text as an object; anything else (NULL, malformed, not an object) as an empty one.
 * NULL only when out of memory. */
cJSON *wake_context_parse(const char *text);

/* Merge from into into: incoming keys win, comment id lists are unioned in order, and the
 * latest comment id follows them. */
void wake_context_merge(cJSON *into, const cJSON *from);

/* Whether a comment woke the run (wakeCommentIds is not empty). */
bool wake_context_has_comment(const cJSON *ctx);
