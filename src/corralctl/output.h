/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Human-readable output: tables for lists, "key: value" for one record, and
 * the API's JSON as it is for --json.
 */
#pragma once

#include <cjson/cJSON.h>

#include "corralctl.h"

typedef struct Column {
        const char *header;
        const char *field; /* camelCase member of each object */
        int max_width; /* longer values are cut with "…"; 0 = no limit */
        const char *kind; /* "agent", "issue": an id shown as the name it stands for (names.h) */
} Column;

void output_json(const cJSON *j);
void output_table(const cJSON *array, const Column *columns);
void output_record(const cJSON *object);

/* Print a reply the way the options ask: JSON, only its id (quiet), or as a record. */
void output_reply(Ctl *ctl, const cJSON *reply);
/* Print a list reply: JSON or a table. */
void output_list(Ctl *ctl, cJSON *reply, const Column *columns);

/* A member as display text ("-" for null or absent); returns a static or internal buffer. */
const char *output_value(const cJSON *object, const char *field, char *buf, size_t size);
