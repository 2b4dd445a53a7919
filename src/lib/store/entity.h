/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Table-driven description of the control-plane records. Each record type is a
 * plain C struct plus an Entity: its SQL table and one Field per column (SQL
 * name, C type, offset, API flags). The store and the JSON mapping are written
 * once against these descriptors instead of once per table.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An integer column that holds SQL NULL / JSON null. */
#define INT_NULL INT64_MIN

typedef enum FieldType {
        FIELD_TEXT, /* char *, NULL allowed */
        FIELD_TIME, /* char *, ISO-8601 UTC ("...Z") */
        FIELD_JSON, /* char *, the JSON text of an object (or array where noted) */
        FIELD_INT, /* int64_t, INT_NULL for null */
        FIELD_BOOL, /* bool */
        FIELD_ENUM, /* int; < 0 is null (only with FIELD_NULLABLE) */
} FieldType;

typedef enum FieldFlags {
        FIELD_KEY = 1u << 0, /* primary key */
        FIELD_CREATE = 1u << 1, /* may be given when the API creates the record */
        FIELD_PATCH = 1u << 2, /* may be changed through the API */
        FIELD_REQUIRED = 1u << 3, /* must be given (and non-empty) on create */
        FIELD_NULLABLE = 1u << 4, /* JSON null accepted on input */
        FIELD_JSON_ARRAY = 1u << 5, /* FIELD_JSON holding an array rather than an object */
        FIELD_LONG_TEXT = 1u << 6, /* may be up to the whole body size rather than TEXT_MAX */
} FieldFlags;

/* Limit on ordinary text fields given through the API (descriptions and bodies are LONG_TEXT). */
#define TEXT_MAX 4096

typedef struct Field {
        const char *column; /* snake_case SQL column; the JSON name is its camelCase */
        FieldType type;
        size_t offset;
        unsigned flags;
        const char *const *enum_names; /* FIELD_ENUM only, NULL-terminated */
} Field;

typedef struct Entity {
        const char *table;
        const char *name; /* for messages: "company", "agent", ... */
        size_t size; /* sizeof the struct */
        const Field *fields;
        size_t n_fields;
        /* Fill in defaults of a freshly zeroed record (enums, counters, default texts). */
        int (*init)(void *obj);
} Entity;

#define FIELD_DEF(type_, column_, ftype_, flags_) \
        { .column = #column_, .type = ftype_, .offset = offsetof(type_, column_), .flags = flags_ }
#define FIELD_ENUM_DEF(type_, column_, names_, flags_) \
        { .column = #column_, .type = FIELD_ENUM, .offset = offsetof(type_, column_), .flags = flags_, .enum_names = names_ }

static inline void *field_ptr(const Field *f, void *obj) {
        return (char *) obj + f->offset;
}
static inline const void *field_cptr(const Field *f, const void *obj) {
        return (const char *) obj + f->offset;
}

const Field *entity_key(const Entity *e);
const Field *entity_field_by_column(const Entity *e, const char *column);

/* Zero the record and apply the entity's defaults. */
int entity_init(const Entity *e, void *obj);
/* Free every string of the record and zero it; the record itself is not freed. */
void entity_done(const Entity *e, void *obj);
/* Deep copy. */
int entity_copy(const Entity *e, const void *src, void *dst);
/* Free an array of n records returned by the store. */
void entity_array_free(const Entity *e, void *items, size_t n);

/* Enum helpers over a NULL-terminated name table. */
int enum_from_string(const char *const *names, const char *s);
const char *enum_to_string(const char *const *names, int value);

/* "issue_prefix" -> "issuePrefix" into buf (NUL-terminated, truncated to size). */
void column_to_json_name(const char *column, char *buf, size_t size);
