/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* UTF-8 as the run log and the API need it: where a sequence ends, and whether text is UTF-8. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The longest prefix of buf[0..size) that does not end inside a UTF-8 sequence: what
 * may be cut off and sent on now, the rest to follow. */
size_t utf8_complete_prefix(const char *buf, size_t size);

/* Whether buf[0..n) is UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). */
bool utf8_is_valid(const void *buf, size_t n);

/* A copy of buf[0..n) as UTF-8, each byte that is not part of a sequence replaced by
 * U+FFFD, NUL-terminated (a NUL byte is replaced too): NULL when out of memory. */
char *utf8_lossy(const void *buf, size_t n);
