/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Generic operations over Entity descriptors: defaults, copying, freeing.
 */
#include "store/entity.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"

const Field *entity_key(const Entity *e) {
        for (size_t i = 0; i < e->n_fields; i++)
                if (e->fields[i].flags & FIELD_KEY)
                        return &e->fields[i];
        return NULL;
}

const Field *entity_field_by_column(const Entity *e, const char *column) {
        for (size_t i = 0; i < e->n_fields; i++)
                if (streq(e->fields[i].column, column))
                        return &e->fields[i];
        return NULL;
}

static bool field_is_string(const Field *f) {
        return f->type == FIELD_TEXT || f->type == FIELD_TIME || f->type == FIELD_JSON;
}

int entity_init(const Entity *e, void *obj) {
        memset(obj, 0, e->size);
        for (size_t i = 0; i < e->n_fields; i++) {
                const Field *f = &e->fields[i];
                if (f->type == FIELD_INT && (f->flags & FIELD_NULLABLE))
                        *(int64_t *) field_ptr(f, obj) = INT_NULL;
                else if (f->type == FIELD_ENUM && (f->flags & FIELD_NULLABLE))
                        *(int *) field_ptr(f, obj) = -1;
        }
        if (e->init) {
                int r = e->init(obj);
                if (r < 0) {
                        entity_done(e, obj);
                        return r;
                }
        }
        return 0;
}

void entity_done(const Entity *e, void *obj) {
        if (!obj)
                return;
        for (size_t i = 0; i < e->n_fields; i++)
                if (field_is_string(&e->fields[i]))
                        free(*(char **) field_ptr(&e->fields[i], obj));
        memset(obj, 0, e->size);
}

int entity_copy(const Entity *e, const void *src, void *dst) {
        memcpy(dst, src, e->size);
        for (size_t i = 0; i < e->n_fields; i++) {
                const Field *f = &e->fields[i];
                if (!field_is_string(f))
                        continue;
                char **p = field_ptr(f, dst);
                if (*p) {
                        *p = strdup(*p);
                        if (!*p) {
                                /* Strings after this one still point into src: clear them first. */
                                for (size_t j = i + 1; j < e->n_fields; j++)
                                        if (field_is_string(&e->fields[j]))
                                                *(char **) field_ptr(&e->fields[j], dst) = NULL;
                                entity_done(e, dst);
                                return -ENOMEM;
                        }
                }
        }
        return 0;
}

void entity_array_free(const Entity *e, void *items, size_t n) {
        for (size_t i = 0; i < n; i++)
                entity_done(e, (char *) items + i * e->size);
        free(items);
}

int enum_from_string(const char *const *names, const char *s) {
        if (!s)
                return -EINVAL;
        for (int i = 0; names[i]; i++)
                if (streq(names[i], s))
                        return i;
        return -EINVAL;
}

const char *enum_to_string(const char *const *names, int value) {
        if (value < 0)
                return NULL;
        for (int i = 0; names[i]; i++)
                if (i == value)
                        return names[i];
        return NULL;
}

void column_to_json_name(const char *column, char *buf, size_t size) {
        size_t n = 0;
        bool upper = false;

        for (const char *p = column; *p && n + 1 < size; p++) {
                if (*p == '_') {
                        upper = true;
                        continue;
                }
                buf[n++] = upper ? (char) toupper((unsigned char) *p) : *p;
                upper = false;
        }
        buf[n] = 0;
}
