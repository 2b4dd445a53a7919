/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Record <-> JSON, driven by the Entity descriptors.
 */
#include "store/jsonmap.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "basic/time-util.h"
#include "basic/strv.h"

/* Largest integer a JSON number (IEEE double) carries exactly. */

const char *json_string_member(const cJSON *o, const char *name) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

int64_t json_count_member(const cJSON *o, const char *name) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
        /* Past 2^53 a double is no count anyone reported, and casting one past INT64_MAX
         * is undefined: such a number counts as none. */
        return cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble <= JSON_INT_MAX ? (int64_t) v->valuedouble : 0;
}

int json_count_member_checked(const cJSON *o, const char *name, int64_t *ret) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
        double d;

        *ret = 0;
        if (!v || cJSON_IsNull(v))
                return 0;
        if (!cJSON_IsNumber(v))
                return -ERANGE;
        d = v->valuedouble;
        if (!isfinite(d) || d < 0 || d != floor(d) || d > JSON_INT_MAX)
                return -ERANGE;
        *ret = (int64_t) d;
        return 0;
}

cJSON *json_parse_object(const char *text) {
        cJSON *j;

        if (!text)
                return NULL;
        j = cJSON_Parse(text);
        if (j && !cJSON_IsObject(j) && !cJSON_IsArray(j)) {
                cJSON_Delete(j);
                return NULL;
        }
        return j;
}

static cJSON *field_to_json(const Field *f, const void *obj) {
        const void *p = field_cptr(f, obj);

        switch (f->type) {
        case FIELD_TEXT:
        case FIELD_TIME: {
                const char *v = *(char *const *) p;
                return v ? cJSON_CreateString(v) : cJSON_CreateNull();
        }
        case FIELD_JSON: {
                const char *v = *(char *const *) p;
                cJSON *j;
                if (!v)
                        return cJSON_CreateNull();
                j = json_parse_object(v);
                /* A value that is not valid JSON is shown as it is rather than dropped. */
                return j ?: cJSON_CreateString(v);
        }
        case FIELD_INT: {
                int64_t v = *(const int64_t *) p;
                return v == INT_NULL ? cJSON_CreateNull() : cJSON_CreateNumber((double) v);
        }
        case FIELD_BOOL:
                return cJSON_CreateBool(*(const bool *) p);
        case FIELD_ENUM: {
                const char *v = enum_to_string(f->enum_names, *(const int *) p);
                return v ? cJSON_CreateString(v) : cJSON_CreateNull();
        }
        }
        return NULL;
}

cJSON *json_from_entity(const Entity *e, const void *obj) {
        _cleanup_json_ cJSON *o = cJSON_CreateObject();

        if (!o)
                return NULL;
        for (size_t i = 0; i < e->n_fields; i++) {
                char name[128];
                cJSON *v = field_to_json(&e->fields[i], obj);
                if (!v)
                        return NULL;
                column_to_json_name(e->fields[i].column, name, sizeof(name));
                if (!cJSON_AddItemToObject(o, name, v)) {
                        cJSON_Delete(v);
                        return NULL;
                }
        }
        return TAKE_PTR(o);
}

cJSON *json_from_entities(const Entity *e, const void *items, size_t n) {
        _cleanup_json_ cJSON *a = cJSON_CreateArray();

        if (!a)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                cJSON *o = json_from_entity(e, (const char *) items + i * e->size);
                if (!o)
                        return NULL;
                if (!cJSON_AddItemToArray(a, o)) {
                        cJSON_Delete(o);
                        return NULL;
                }
        }
        return TAKE_PTR(a);
}

static const Field *field_by_json_name(const Entity *e, const char *name) {
        for (size_t i = 0; i < e->n_fields; i++) {
                char n[128];
                column_to_json_name(e->fields[i].column, n, sizeof(n));
                if (streq(n, name))
                        return &e->fields[i];
        }
        return NULL;
}

bool json_has_field(const cJSON *in, const char *column) {
        char name[128];

        column_to_json_name(column, name, sizeof(name));
        return cJSON_GetObjectItemCaseSensitive(in, name) != NULL;
}

static int fail(char **ret_error, const char *fmt, ...) _printf_(2, 3);
static int fail(char **ret_error, const char *fmt, ...) {
        va_list ap;
        char *s;

        va_start(ap, fmt);
        s = strvprintf(fmt, ap);
        va_end(ap);
        if (!s)
                return -ENOMEM;
        *ret_error = s;
        return -EINVAL;
}

static int enum_expected(const Field *f, char *buf, size_t size) {
        size_t n = 0;

        buf[0] = 0;
        for (int i = 0; f->enum_names[i] && n < size; i++)
                n += (size_t) snprintf(buf + n, size - n, "%s%s", i ? ", " : "", f->enum_names[i]);
        return 0;
}

static int apply_member(const Field *f, const char *name, const cJSON *v, void *obj, char **ret_error) {
        void *p = field_ptr(f, obj);

        if (cJSON_IsNull(v)) {
                if (!(f->flags & FIELD_NULLABLE))
                        return fail(ret_error, "field '%s' must not be null", name);
                switch (f->type) {
                case FIELD_TEXT:
                case FIELD_TIME:
                case FIELD_JSON:
                        free(*(char **) p);
                        *(char **) p = NULL;
                        break;
                case FIELD_INT:
                        *(int64_t *) p = INT_NULL;
                        break;
                case FIELD_ENUM:
                        *(int *) p = -1;
                        break;
                case FIELD_BOOL:
                        return fail(ret_error, "field '%s' must not be null", name);
                }
                return 0;
        }

        switch (f->type) {
        case FIELD_TEXT:
        case FIELD_TIME: {
                size_t max = (f->flags & FIELD_LONG_TEXT) ? SIZE_MAX : TEXT_MAX;
                int64_t usec;
                if (!cJSON_IsString(v))
                        return fail(ret_error, "field '%s' must be a string", name);
                if (strlen(v->valuestring) > max)
                        return fail(ret_error, "field '%s' is longer than %d bytes", name, TEXT_MAX);
                if (f->type == FIELD_TIME && iso_time_parse(v->valuestring, &usec) < 0)
                        return fail(ret_error, "field '%s' must be an ISO-8601 UTC time like 2026-01-31T12:00:00Z", name);
                return free_and_strdup(p, v->valuestring);
        }
        case FIELD_JSON: {
                bool array = f->flags & FIELD_JSON_ARRAY;
                char *text;
                if (array ? !cJSON_IsArray(v) : !cJSON_IsObject(v))
                        return fail(ret_error, "field '%s' must be a JSON %s", name, array ? "array" : "object");
                text = cJSON_PrintUnformatted(v);
                if (!text)
                        return -ENOMEM;
                free(*(char **) p);
                *(char **) p = text;
                return 0;
        }
        case FIELD_INT: {
                double d;
                if (!cJSON_IsNumber(v))
                        return fail(ret_error, "field '%s' must be an integer", name);
                d = v->valuedouble;
                if (!isfinite(d) || d != floor(d) || fabs(d) > JSON_INT_MAX)
                        return fail(ret_error, "field '%s' must be an integer", name);
                *(int64_t *) p = (int64_t) d;
                return 0;
        }
        case FIELD_BOOL:
                if (!cJSON_IsBool(v))
                        return fail(ret_error, "field '%s' must be true or false", name);
                *(bool *) p = cJSON_IsTrue(v);
                return 0;
        case FIELD_ENUM: {
                char expected[512];
                int e;
                if (!cJSON_IsString(v))
                        return fail(ret_error, "field '%s' must be a string", name);
                e = enum_from_string(f->enum_names, v->valuestring);
                if (e < 0) {
                        enum_expected(f, expected, sizeof(expected));
                        return fail(ret_error, "invalid value '%.64s' for field '%s' (expected one of: %s)", v->valuestring, name,
                                    expected);
                }
                *(int *) p = e;
                return 0;
        }
        }
        return -EINVAL;
}

int json_to_entity(const Entity *e, const cJSON *in, unsigned allowed, const char *const *ignore, void *obj, char **ret_error) {
        const cJSON *m;
        int r;

        if (!cJSON_IsObject(in))
                return fail(ret_error, "request body must be a JSON object");

        cJSON_ArrayForEach (m, in) {
                const Field *f;

                if (strv_contains(ignore, m->string))
                        continue;
                f = field_by_json_name(e, m->string);
                if (!f)
                        return fail(ret_error, "unknown field '%.64s' for %s", m->string, e->name);
                if (!(f->flags & allowed))
                        return fail(ret_error, "field '%s' cannot be set", m->string);
                r = apply_member(f, m->string, m, obj, ret_error);
                if (r < 0)
                        return r;
        }

        if (allowed & FIELD_CREATE)
                for (size_t i = 0; i < e->n_fields; i++) {
                        const Field *f = &e->fields[i];
                        char name[128];
                        const cJSON *v;

                        if (!(f->flags & FIELD_REQUIRED))
                                continue;
                        column_to_json_name(f->column, name, sizeof(name));
                        v = cJSON_GetObjectItemCaseSensitive(in, name);
                        if (!v)
                                return fail(ret_error, "field '%s' is required", name);
                        if (cJSON_IsString(v) && strspn(v->valuestring, " \t\r\n") == strlen(v->valuestring))
                                return fail(ret_error, "field '%s' must not be empty", name);
                }
        return 0;
}
