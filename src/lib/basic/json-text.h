/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What a JSON text from a peer must be before cJSON parses it, beyond its syntax: cJSON takes
 * invalid UTF-8 as it is (and it is echoed back in answers that are no longer JSON), ends a
 * string at \u0000 (silently dropping the rest) and keeps one of two equal keys.
 */
#pragma once

#include <stddef.h>

/* Deepest nesting of objects and arrays accepted. */
#define JSON_TEXT_DEPTH_MAX 64

/* 0 when text[0..size) has no string with invalid UTF-8 (raw, or a lone surrogate escape),
 * no NUL (raw or \u0000), no object with two equal keys and no nesting deeper than
 * JSON_TEXT_DEPTH_MAX; else -EINVAL and the reason in msg, naming the field
 * ("field 'adapterConfig.env' has a duplicate key 'A'"). A syntax error is not looked at:
 * 0, for the parser to report. */
int json_text_check(const char *text, size_t size, char *msg, size_t msg_size);
