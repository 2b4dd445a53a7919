/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * JSON mapping of model records: camelCase JSON objects out, validated
 * JSON input applied onto a record. The only place where records meet cJSON.
 */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "basic/macro.h"
#include "store/entity.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);
#define _cleanup_json_ _cleanup_(cJSON_Deletep)

/* NULL on allocation failure. */
cJSON *json_from_entity(const Entity *e, const void *obj);
cJSON *json_from_entities(const Entity *e, const void *items, size_t n);

/*
 * Apply the members of the JSON object in onto obj. Only fields carrying one of the
 * allowed flags (FIELD_CREATE or FIELD_PATCH) may appear; with FIELD_CREATE, fields
 * marked FIELD_REQUIRED must be present. Members named in ignore (NULL-terminated, may
 * be NULL) are skipped: the caller handles them itself. On bad input returns -EINVAL
 * and a message in *ret_error (the record may be partly changed: apply onto a copy).
 */
int json_to_entity(const Entity *e, const cJSON *in, unsigned allowed, const char *const *ignore, void *obj, char **ret_error);

/* Whether in has the member for this column (by its camelCase name). */
bool json_has_field(const cJSON *in, const char *column);

/* Parse text that must be a JSON object; NULL when it is not. */
cJSON *json_parse_object(const char *text);

/* The string value of member name of o; NULL when o has no such member or it is not a string. */
const char *json_string_member(const cJSON *o, const char *name);

/* The largest integer a double holds exactly (2^53 - 1): past it, no count anyone reported. */
#define JSON_INT_MAX 9007199254740991.0

/* A member as a count: its value when it is a positive number, else 0. */
int64_t json_count_member(const cJSON *o, const char *name);
/* The same, telling a member that is there but no count (a string, a fraction, negative,
 * past JSON_INT_MAX, not finite): -ERANGE, with *ret 0. Absent or null: 0, *ret 0. */
int json_count_member_checked(const cJSON *o, const char *name, int64_t *ret);
