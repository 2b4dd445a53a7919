/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The store, on either driver. Statements are prepared once and kept in a small cache keyed
 * by their SQL text, or for an entity's get, insert, update and delete by entity and kind,
 * so that their SQL is built once; every use resets them.
 */
#include "store/store.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "basic/log.h"
#include "store/store-internal.h"
#include "basic/strv.h"
#include "basic/time-util.h"
#include "basic/utf8.h"

/* How long a failed write keeps the store degraded (store_health()). */
#define STORE_DEGRADED_USEC (60 * USEC_PER_SEC)
#define STORE_SQL_MAX 8192

typedef enum EntityStatement {
        STATEMENT_OTHER,
        STATEMENT_GET,
        STATEMENT_INSERT,
        STATEMENT_UPDATE,
        STATEMENT_UPDATE_COLUMNS, /* with the list of columns it sets */
        STATEMENT_DELETE,
} EntityStatement;

struct CachedStatement {
        char *sql;
        const Entity *entity; /* with kind, for an entity's own statements */
        EntityStatement kind;
        const char *const *columns; /* of a STATEMENT_UPDATE_COLUMNS */
        const Field **fields; /* the same, looked up once */
        StoreStmt *stmt;
};

int store_schema_latest(void) {
        /* Both drivers have the same steps (test-store checks it). */
        return store_driver_sqlite.migrations[store_driver_sqlite.n_migrations - 1].version;
}

bool store_target_is_pg(const char *target) {
        return startswith(target, "postgresql://") || startswith(target, "postgres://");
}

char *store_target_redacted(const char *target) {
        const char *scheme_end = strstr(target, "://"), *at, *colon, *pw;
        _cleanup_free_ char *shown = NULL;

        if (!scheme_end)
                return strdup(target);
        /* user:password@ as user@ */
        at = strchr(scheme_end + 3, '@');
        colon = at ? memchr(scheme_end + 3, ':', (size_t) (at - scheme_end - 3)) : NULL;
        shown = colon ? strprintf("%.*s%s", (int) (colon - target), target, at) : strdup(target);
        if (!shown)
                return NULL;
        /* ?password=... or &password=... with its value hidden */
        for (char *q = strchr(shown, '?'); q && (pw = strstr(q, "password=")); q = (char *) pw + 1) {
                if (pw[-1] != '?' && pw[-1] != '&')
                        continue;
                const char *end = pw + strlen("password=") + strcspn(pw + strlen("password="), "&");
                char *masked = strprintf("%.*s***%s", (int) (pw + strlen("password=") - shown), shown, end);
                if (!masked)
                        return NULL;
                free(shown);
                shown = masked;
                break;
        }
        return TAKE_PTR(shown);
}

StoreBackend store_backend(Store *s) {
        return s->driver->backend;
}

const char *store_target(Store *s) {
        return s->path;
}

const char *store_backend_name(StoreBackend b) {
        return b == STORE_BACKEND_POSTGRESQL ? "postgresql" : "sqlite";
}

int store_error(Store *s, int r, const char *what) {
        if (r == -EAGAIN || r == -ENOSPC || r == -EACCES || r == -EIO) {
                s->write_error = r;
                s->write_error_usec = now_mono_usec();
        }

        if (r == -EIO || r == -ENOSPC || r == -EACCES)
                log_error("Database %s: %s failed: %s", strna(s->path), what, s->driver->error_message(s));
        else if (r < 0)
                log_debug("Database %s: %s: %s", strna(s->path), what, s->driver->error_message(s));
        return r;
}

static int store_exec(Store *s, const char *sql) {
        return s->driver->exec(s, sql);
}

/* An entity's own statement, if it was prepared before. */
static CachedStatement *entity_cached(Store *s, const Entity *e, EntityStatement kind, const char *const *columns) {
        for (size_t i = 0; i < s->n_cache; i++)
                if (s->cache[i].entity == e && s->cache[i].kind == kind && s->cache[i].columns == columns)
                        return &s->cache[i];
        return NULL;
}

static StoreStmt *entity_statement(Store *s, const Entity *e, EntityStatement kind) {
        CachedStatement *c = entity_cached(s, e, kind, NULL);
        return c ? c->stmt : NULL;
}

void store_set_plan_observer(Store *s, StorePlanFn fn, void *userdata) {
        s->plan_fn = fn;
        s->plan_userdata = userdata;
}

/* Whether a statement changes rows: its first word (the store's writes never start with WITH). */
static bool statement_writes(const char *sql) {
        sql += strspn(sql, " \t\n");
        return strncasecmp(sql, "INSERT", 6) == 0 || strncasecmp(sql, "UPDATE", 6) == 0 || strncasecmp(sql, "DELETE", 6) == 0;
}

static int store_prepare_entity_of(Store *s, const char *sql, const Entity *e, EntityStatement kind, const char *const *columns,
                                   StoreStmt **ret) {
        StoreStmt *stmt = NULL;
        CachedStatement *c;
        char *copy;
        int r;

        for (size_t i = 0; !e && i < s->n_cache; i++)
                if (!s->cache[i].entity && streq(s->cache[i].sql, sql)) {
                        *ret = s->cache[i].stmt;
                        return 0;
                }

        copy = strdup(sql);
        if (!copy)
                return -ENOMEM;
        r = s->driver->prepare(s, copy, &stmt);
        if (r < 0) {
                free(copy);
                return r;
        }
        stmt->store = s;
        stmt->sql = copy;
        stmt->writes = statement_writes(copy);
        if (s->plan_fn)
                s->driver->report_plan(s, sql);

        c = realloc(s->cache, (s->n_cache + 1) * sizeof(CachedStatement));
        if (!c) {
                s->driver->finalize(stmt);
                free(copy);
                return -ENOMEM;
        }
        s->cache = c;
        /* Whole, so that what a kind does not use (fields) is NULL, not garbage. */
        s->cache[s->n_cache++] = (CachedStatement){
                .sql = copy,
                .entity = e,
                .kind = kind,
                .columns = columns,
                .stmt = stmt,
        };
        *ret = stmt;
        return 0;
}

static int store_prepare_entity(Store *s, const char *sql, const Entity *e, EntityStatement kind, StoreStmt **ret) {
        return store_prepare_entity_of(s, sql, e, kind, NULL, ret);
}

int store_prepare(Store *s, const char *sql, StoreStmt **ret) {
        return store_prepare_entity(s, sql, NULL, STATEMENT_OTHER, ret);
}

void stmt_resetp(StoreStmt **stmt) {
        if (*stmt)
                (*stmt)->store->driver->reset(*stmt);
}

static int migrate_steps(Store *s) {
        const StoreDriver *d = s->driver;
        int current = store_schema_version(s);

        if (current < 0)
                return current;
        if (current > store_schema_latest())
                return log_error_errno(-EPROTONOSUPPORT,
                                       "Database %s has schema version %d, but this corrald only knows versions up to %d "
                                       "(it was written by a newer corral); refusing to open it.",
                                       s->path, current, store_schema_latest());

        for (size_t i = 0; i < d->n_migrations; i++) {
                const Migration *m = &d->migrations[i];
                int r;

                if (m->version <= current)
                        continue;
                r = store_begin(s);
                if (r < 0)
                        return r;
                r = store_exec(s, m->sql);
                if (r >= 0)
                        r = d->set_schema_version(s, m->version);
                if (r >= 0)
                        r = store_commit(s);
                if (r < 0) {
                        store_rollback(s);
                        return log_error_errno(r, "Failed to migrate database %s to schema version %d: %m", s->path, m->version);
                }
                log_debug("Database %s migrated to schema version %d.", s->path, m->version);
        }
        return 0;
}

static int migrate(Store *s) {
        int r;

        if (!s->driver->lock_schema)
                return migrate_steps(s);
        r = s->driver->lock_schema(s, true);
        if (r < 0)
                return log_error_errno(r, "Failed to lock database %s's schema: %m", s->path);
        r = migrate_steps(s);
        (void) s->driver->lock_schema(s, false);
        return r;
}

int store_open(const char *target, Store **ret) {
        _cleanup_(store_freep) Store *s = NULL;
        int r;

        s = calloc(1, sizeof(Store));
        if (!s)
                return -ENOMEM;
        s->driver = store_target_is_pg(target) ? &store_driver_pg : &store_driver_sqlite;
        r = s->driver->open(s, target);
        if (r < 0)
                return r;
        if (!s->path) {
                s->path = strdup(target);
                if (!s->path)
                        return -ENOMEM;
        }

        r = migrate(s);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}

Store *store_free(Store *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_cache; i++) {
                s->driver->finalize(s->cache[i].stmt);
                free(s->cache[i].sql);
                free(s->cache[i].fields);
        }
        free(s->cache);
        s->driver->close(s);
        free(s->fence_host_id);
        free(s->path);
        free(s);
        return NULL;
}

int store_schema_version(Store *s) {
        return s->driver->schema_version(s);
}

int store_work_listen(Store *s, int *ret_fd) {
        if (!s->driver->listen)
                return -EOPNOTSUPP;
        return s->driver->listen(s, ret_fd);
}

int store_work_read(Store *s, StoreWorkFn fn, void *userdata) {
        if (!s->driver->listen_read)
                return -EOPNOTSUPP;
        return s->driver->listen_read(s, fn, userdata);
}

void store_work_unlisten(Store *s) {
        if (s->driver->unlisten)
                s->driver->unlisten(s);
}

int store_set_fence(Store *s, const char *host_id, int64_t epoch, uint64_t until_usec) {
        if (!host_id) {
                s->fence_host_id = mfree(s->fence_host_id);
                return 0;
        }
        if (!streq_ptr(s->fence_host_id, host_id) && free_and_strdup(&s->fence_host_id, host_id) < 0)
                return -ENOMEM;
        s->fence_epoch = epoch;
        s->fence_until_usec = until_usec;
        return 0;
}

bool store_fence_expired(Store *s) {
        return s->fence_host_id && now_mono_usec() >= s->fence_until_usec;
}

int store_stmt_fenced(StoreStmt *st) {
        return store_fence_expired(st->store) ? -EOWNERDEAD : 0;
}

/* Inside the transaction, which holds the write lock that a takeover holds too: whether
 * this host's row still is this corrald's. */
static int fence_check(Store *s) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        int r;

        r = store_prepare(s, "SELECT 1 FROM hosts WHERE id = ?1 AND epoch = ?2 AND status != 'dead'", &stmt);
        if (r < 0)
                return r;
        if ((r = stmt_bind_text(stmt, 1, s->fence_host_id)) < 0 || (r = stmt_bind_int64(stmt, 2, s->fence_epoch)) < 0)
                return r;
        r = stmt_step(stmt);
        if (r < 0)
                return r;
        return r == 0 ? -EOWNERDEAD : 0;
}

static int begin(Store *s, bool fenced) {
        int r;

        if (s->in_transaction)
                return log_error_errno(-EINPROGRESS, "Database transaction already open (programming error).");
        if (fenced && store_fence_expired(s))
                return -EOWNERDEAD;
        r = store_exec(s, s->driver->begin);
        if (r < 0)
                return r;
        s->in_transaction = true;
        if (fenced && s->fence_host_id) {
                r = fence_check(s);
                if (r < 0) {
                        store_rollback(s);
                        return r;
                }
        }
        return 0;
}

int store_begin(Store *s) {
        return begin(s, true);
}

int store_begin_unfenced(Store *s) {
        return begin(s, false);
}

int store_commit(Store *s) {
        int r = store_exec(s, "COMMIT");
        if (r < 0)
                return r;
        s->in_transaction = false;
        s->write_error = 0;
        return 0;
}

void store_set_busy_timeout(Store *s, unsigned msec) {
        s->driver->set_busy_timeout(s, msec);
}

bool store_read_only(Store *s) {
        return s->driver->read_only(s);
}

int store_probe_write(Store *s) {
        int r = store_begin(s);
        if (r < 0)
                return r;
        store_rollback(s);
        return 0;
}

const char *store_health(Store *s) {
        if (store_read_only(s))
                return "the database is read-only: nothing can be recorded";
        if (s->write_error == 0 || now_mono_usec() - s->write_error_usec > STORE_DEGRADED_USEC)
                return NULL;
        switch (s->write_error) {
        case -EAGAIN:
                return s->driver->backend == STORE_BACKEND_POSTGRESQL
                        ? "the database could not be reached, or a lock was held too long, within the last minute"
                        : "the database was locked by another process within the last minute";
        case -ENOSPC:
                return "the database's file system was full within the last minute";
        case -EACCES:
                return "the database could not be written within the last minute";
        default:
                return "the database reported an I/O error within the last minute";
        }
}

void store_rollback(Store *s) {
        if (!s->in_transaction)
                return;
        (void) s->driver->exec(s, "ROLLBACK");
        s->in_transaction = false;
}

static int bind_field(StoreStmt *stmt, int idx, const Field *f, const void *obj) {
        const void *p = field_cptr(f, obj);

        switch (f->type) {
        case FIELD_TEXT:
        case FIELD_TIME:
        case FIELD_JSON:
                return stmt_bind_text(stmt, idx, *(char *const *) p);
        case FIELD_INT: {
                int64_t v = *(const int64_t *) p;
                return v == INT_NULL ? stmt_bind_text(stmt, idx, NULL) : stmt_bind_int64(stmt, idx, v);
        }
        case FIELD_BOOL:
                return stmt_bind_int64(stmt, idx, *(const bool *) p ? 1 : 0);
        case FIELD_ENUM:
                return stmt_bind_text(stmt, idx, enum_to_string(f->enum_names, *(const int *) p));
        default:
                return -EINVAL;
        }
}

/* Fill obj (already zeroed) from the current row; columns are in descriptor order. */
static int read_row(StoreStmt *stmt, const Entity *e, void *obj) {
        for (size_t i = 0; i < e->n_fields; i++) {
                const Field *f = &e->fields[i];
                void *p = field_ptr(f, obj);
                int col = (int) i;
                bool null = stmt_column_null(stmt, col);

                switch (f->type) {
                case FIELD_TEXT:
                case FIELD_TIME:
                case FIELD_JSON:
                        if (!null) {
                                char *v = strdup(stmt_column_text(stmt, col));
                                if (!v)
                                        return -ENOMEM;
                                *(char **) p = v;
                        }
                        break;
                case FIELD_INT:
                        *(int64_t *) p = null ? INT_NULL : stmt_column_int64(stmt, col);
                        break;
                case FIELD_BOOL:
                        *(bool *) p = !null && stmt_column_int64(stmt, col) != 0;
                        break;
                case FIELD_ENUM: {
                        int v = null ? -1 : enum_from_string(f->enum_names, stmt_column_text(stmt, col));
                        if (v < 0 && !(null && (f->flags & FIELD_NULLABLE)))
                                return log_error_errno(-EBADMSG, "Database holds an invalid %s.%s value '%s'.", e->table,
                                                       f->column, null ? "NULL" : stmt_column_text(stmt, col));
                        *(int *) p = v;
                        break;
                }
                }
        }
        return 0;
}

/* "a, b, c" — the column list of an entity, without skip. */
static void column_list(const Entity *e, const Field *skip, char *buf, size_t size) {
        size_t n = 0;

        buf[0] = 0;
        for (size_t i = 0; i < e->n_fields && n < size; i++)
                if (&e->fields[i] != skip)
                        n += (size_t) snprintf(buf + n, size - n, "%s%s", n ? ", " : "", e->fields[i].column);
}

int store_insert(Store *s, const Entity *e, void *obj) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        const Field *key = entity_key(e);
        /* An INTEGER key is the database's to assign, and is read back. A duplicate is
         * -EEXIST without a failed statement, which on PostgreSQL would end the
         * transaction it is in (SQLite's goes on, and the callers count on that). */
        const Field *assigned = key && key->type == FIELD_INT ? key : NULL;
        char cols[2048], sql[STORE_SQL_MAX];
        size_t n;
        int r, idx = 1;

        if (assigned && *(int64_t *) field_ptr(key, obj) != INT_NULL)
                return log_error_errno(-EINVAL, "An %s row's key is assigned by the database (programming error).", e->table);
        stmt = entity_statement(s, e, STATEMENT_INSERT);
        if (!stmt) {
                column_list(e, assigned, cols, sizeof(cols));
                n = (size_t) snprintf(sql, sizeof(sql), "INSERT INTO %s (%s) VALUES (", e->table, cols);
                for (size_t i = 0, k = 1; i < e->n_fields; i++)
                        if (&e->fields[i] != assigned)
                                n += (size_t) snprintf(sql + n, sizeof(sql) - n, "%s?%zu", k > 1 ? ", " : "", k), k++;
                n += (size_t) snprintf(sql + n, sizeof(sql) - n, ") ON CONFLICT DO NOTHING");
                if (assigned)
                        snprintf(sql + n, sizeof(sql) - n, " RETURNING %s", assigned->column);
                r = store_prepare_entity(s, sql, e, STATEMENT_INSERT, &stmt);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < e->n_fields; i++) {
                if (&e->fields[i] == assigned)
                        continue;
                r = bind_field(stmt, idx++, &e->fields[i], obj);
                if (r < 0)
                        return r;
        }
        r = stmt_step(stmt);
        if (r < 0)
                return r;
        if (!assigned)
                return stmt_changes(stmt) > 0 ? 0 : -EEXIST;
        if (r == 0)
                return -EEXIST;
        *(int64_t *) field_ptr(key, obj) = stmt_column_int64(stmt, 0);
        /* RETURNING completes the INSERT only when stepped to the end. */
        return stmt_done(stmt);
}

int store_get(Store *s, const Entity *e, const char *key, void *ret) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        char cols[2048], sql[STORE_SQL_MAX];
        int r;

        stmt = entity_statement(s, e, STATEMENT_GET);
        if (!stmt) {
                column_list(e, NULL, cols, sizeof(cols));
                snprintf(sql, sizeof(sql), "SELECT %s FROM %s WHERE %s = ?1", cols, e->table, entity_key(e)->column);
                r = store_prepare_entity(s, sql, e, STATEMENT_GET, &stmt);
                if (r < 0)
                        return r;
        }
        r = stmt_bind_text(stmt, 1, key);
        if (r < 0)
                return r;
        r = stmt_row(stmt);
        if (r < 0)
                return r;

        _cleanup_free_ void *obj = calloc(1, e->size);
        if (!obj)
                return -ENOMEM;
        r = read_row(stmt, e, obj);
        if (r < 0) {
                entity_done(e, obj);
                return r;
        }
        memcpy(ret, obj, e->size);
        return 0;
}

/* Bind obj's key as parameter idx of an UPDATE and run it: -ENOENT when no row has that key. */
static int step_update(StoreStmt *stmt, const Entity *e, int idx, const void *obj) {
        int r;

        r = bind_field(stmt, idx, entity_key(e), obj);
        if (r < 0)
                return r;
        r = stmt_done(stmt);
        if (r < 0)
                return r;
        return stmt_changes(stmt) > 0 ? 0 : -ENOENT;
}

int store_update(Store *s, const Entity *e, const void *obj) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        const Field *key = entity_key(e);
        char sql[STORE_SQL_MAX];
        size_t n;
        int r, idx = 1;

        stmt = entity_statement(s, e, STATEMENT_UPDATE);
        if (!stmt) {
                n = (size_t) snprintf(sql, sizeof(sql), "UPDATE %s SET ", e->table);
                for (size_t i = 0, k = 1; i < e->n_fields; i++) {
                        if (&e->fields[i] == key)
                                continue;
                        n += (size_t) snprintf(sql + n, sizeof(sql) - n, "%s%s = ?%zu", k > 1 ? ", " : "", e->fields[i].column,
                                               k);
                        k++;
                }
                snprintf(sql + n, sizeof(sql) - n, " WHERE %s = ?%zu", key->column, e->n_fields);
                r = store_prepare_entity(s, sql, e, STATEMENT_UPDATE, &stmt);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < e->n_fields; i++) {
                if (&e->fields[i] == key)
                        continue;
                r = bind_field(stmt, idx++, &e->fields[i], obj);
                if (r < 0)
                        return r;
        }
        return step_update(stmt, e, idx, obj);
}

int store_update_columns(Store *s, const Entity *e, const void *obj, const char *const *columns) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        const Field *key = entity_key(e);
        CachedStatement *c;
        size_t k;
        int r;

        c = entity_cached(s, e, STATEMENT_UPDATE_COLUMNS, columns);
        if (!c) {
                _cleanup_free_ const Field **fields = NULL;
                char sql[STORE_SQL_MAX];
                size_t n;

                for (k = 0; columns[k]; k++)
                        ;
                if (k == 0)
                        return log_error_errno(-EINVAL, "No column of %s to update (programming error).", e->table);
                fields = calloc(k, sizeof(Field *));
                if (!fields)
                        return -ENOMEM;
                n = (size_t) snprintf(sql, sizeof(sql), "UPDATE %s SET ", e->table);
                for (k = 0; columns[k]; k++) {
                        fields[k] = entity_field_by_column(e, columns[k]);
                        if (!fields[k] || fields[k] == key)
                                return log_error_errno(-EINVAL, "No column %s.%s to update (programming error).", e->table,
                                                       columns[k]);
                        n += (size_t) snprintf(sql + n, sizeof(sql) - n, "%s%s = ?%zu", k > 0 ? ", " : "", fields[k]->column,
                                               k + 1);
                }
                snprintf(sql + n, sizeof(sql) - n, " WHERE %s = ?%zu", key->column, k + 1);
                r = store_prepare_entity_of(s, sql, e, STATEMENT_UPDATE_COLUMNS, columns, &stmt);
                if (r < 0)
                        return r;
                c = entity_cached(s, e, STATEMENT_UPDATE_COLUMNS, columns);
                c->fields = TAKE_PTR(fields);
        }
        stmt = c->stmt;
        for (k = 0; columns[k]; k++) {
                r = bind_field(stmt, (int) k + 1, c->fields[k], obj);
                if (r < 0)
                        return r;
        }
        return step_update(stmt, e, (int) k + 1, obj);
}

int store_delete(Store *s, const Entity *e, const char *key) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        char sql[256];
        int r;

        stmt = entity_statement(s, e, STATEMENT_DELETE);
        if (!stmt) {
                snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE %s = ?1", e->table, entity_key(e)->column);
                r = store_prepare_entity(s, sql, e, STATEMENT_DELETE, &stmt);
                if (r < 0)
                        return r;
        }
        r = stmt_bind_text(stmt, 1, key);
        if (r < 0)
                return r;
        r = stmt_done(stmt);
        if (r < 0)
                return r;
        return stmt_changes(stmt) > 0 ? 0 : -ENOENT;
}

/* Bind args as ?1, ?2...: how many there are, or -errno. */
static int bind_args(StoreStmt *stmt, const char *const *args) {
        int i, r;

        for (i = 0; args && args[i]; i++) {
                r = stmt_bind_text(stmt, i + 1, args[i]);
                if (r < 0)
                        return r;
        }
        return i;
}

static size_t count_args(const char *const *args) {
        size_t n = 0;

        while (args && args[n])
                n++;
        return n;
}

/* Read the current row into a new record at the end of *items (n of them, room for
 * *allocated): 0, or -errno with *items as it was. */
static int append_row(StoreStmt *stmt, const Entity *e, char **items, size_t *n, size_t *allocated) {
        int r;

        if (*n == *allocated) {
                size_t m = *allocated ? *allocated * 2 : 16;
                char *t = realloc(*items, m * e->size);
                if (!t)
                        return -ENOMEM;
                *items = t;
                *allocated = m;
        }
        memset(*items + *n * e->size, 0, e->size);
        r = read_row(stmt, e, *items + *n * e->size);
        if (r < 0) {
                entity_done(e, *items + *n * e->size);
                return r;
        }
        (*n)++;
        return 0;
}

int store_list(Store *s, const Entity *e, const char *clause, const char *const *args, size_t limit, void **ret_items,
               size_t *ret_n) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        char cols[2048], sql[STORE_SQL_MAX], limit_clause[32] = "";
        char *items = NULL;
        size_t n = 0, allocated = 0, n_args = count_args(args);
        int r;

        column_list(e, NULL, cols, sizeof(cols));
        /* The limit in SQL, so that the database stops reading there (a parameter, the one
         * after the clause's: one statement for every limit). */
        if (limit > 0)
                snprintf(limit_clause, sizeof(limit_clause), " LIMIT ?%zu", n_args + 1);
        snprintf(sql, sizeof(sql), "SELECT %s FROM %s %s%s", cols, e->table, strempty(clause), limit_clause);
        r = store_prepare(s, sql, &stmt);
        if (r < 0)
                return r;
        r = bind_args(stmt, args);
        if (r < 0)
                return r;
        if (limit > 0) {
                r = stmt_bind_int64(stmt, (int) n_args + 1, (int64_t) MIN(limit, (size_t) INT64_MAX));
                if (r < 0)
                        return r;
        }

        while (limit == 0 || n < limit) {
                r = stmt_step(stmt);
                if (r == 0)
                        break;
                if (r < 0) {
                        entity_array_free(e, items, n);
                        return r;
                }
                r = append_row(stmt, e, &items, &n, &allocated);
                if (r < 0) {
                        entity_array_free(e, items, n);
                        return r;
                }
        }
        *ret_items = items;
        *ret_n = n;
        return 0;
}

/* A page's cursor: "<t|i><rowid>:<key>" (the key a text or an integer), in hex, so that it
 * is one opaque word in a URL. */
static char *cursor_encode(bool integer, int64_t rowid, const char *key) {
        _cleanup_free_ char *plain = strprintf("%c%" PRIi64 ":%s", integer ? 'i' : 't', rowid, key);
        char *hex;

        if (!plain)
                return NULL;
        hex = malloc(strlen(plain) * 2 + 1);
        if (!hex)
                return NULL;
        hex_encode(plain, strlen(plain), hex);
        return hex;
}

/* A decoded cursor: the row's rowid and its key, a number or a text. */
typedef struct Cursor {
        int64_t rowid;
        bool integer;
        int64_t number;
        char *text;
} Cursor;

static void cursor_done(Cursor *c) {
        free(c->text);
}

static int cursor_decode(const char *hex, Cursor *ret) {
        size_t n = strlen(hex);
        _cleanup_free_ char *plain = NULL;
        char *colon;

        if (n == 0 || n % 2 != 0 || n > 2 * STORE_CURSOR_MAX)
                return -EINVAL;
        plain = malloc(n / 2 + 1);
        if (!plain)
                return -ENOMEM;
        for (size_t i = 0; i < n / 2; i++) {
                unsigned v;
                if (!isxdigit((unsigned char) hex[2 * i]) || !isxdigit((unsigned char) hex[2 * i + 1]) ||
                    sscanf(hex + 2 * i, "%2x", &v) != 1 || v == 0)
                        return -EINVAL;
                plain[i] = (char) v;
        }
        plain[n / 2] = 0;
        colon = strchr(plain, ':');
        if ((plain[0] != 'i' && plain[0] != 't') || !colon)
                return -EINVAL;
        *colon = 0;
        if (safe_atoi64(plain + 1, &ret->rowid) < 0 || !utf8_is_valid(colon + 1, strlen(colon + 1)))
                return -EINVAL;
        ret->integer = plain[0] == 'i';
        if (ret->integer)
                return safe_atoi64(colon + 1, &ret->number) < 0 ? -EINVAL : 0;
        ret->text = strdup(colon + 1);
        return ret->text ? 0 : -ENOMEM;
}

int store_list_page(Store *s, const Entity *e, const char *where, const char *key, bool desc, const char *const *args,
                    StorePage *page, void **ret_items, size_t *ret_n) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        _cleanup_(cursor_done) Cursor after = {};
        char cols[2048], sql[STORE_SQL_MAX], cond[256] = "";
        const char *dir = desc ? "DESC" : "ASC";
        size_t n_args = count_args(args);
        bool key_integer = false;
        int64_t last_rowid = 0;
        char *items = NULL, *last_key = NULL;
        size_t n = 0, allocated = 0;
        int r;

        page->next = NULL;
        if (page->after) {
                r = cursor_decode(page->after, &after);
                if (r < 0)
                        return r;
        }
        column_list(e, NULL, cols, sizeof(cols));
        /* Keyset paging: the page after a cursor starts past its row in the list's order,
         * which an index gives, however deep the page. One row more than asked says whether
         * there is a next page. The parameters after the condition's: the limit, then the
         * cursor's key and rowid. (Each PostgreSQL table has a rowid column of its own.) */
        if (page->after)
                /* The rows past the cursor's, in the list's direction. */
                snprintf(cond, sizeof(cond), " AND (%s, rowid) %s (?%zu, ?%zu)", key, desc ? "<" : ">", n_args + 2, n_args + 3);
        snprintf(sql, sizeof(sql), "SELECT %s, %s, rowid FROM %s WHERE (%s)%s ORDER BY %s %s, rowid %s LIMIT ?%zu", cols, key,
                 e->table, where ?: "TRUE", cond, key, dir, dir, n_args + 1);
        r = store_prepare(s, sql, &stmt);
        if (r < 0)
                return r;
        r = bind_args(stmt, args);
        if (r < 0)
                return r;
        if (page->after) {
                int ik = (int) n_args + 2, ir = (int) n_args + 3;
                r = after.integer ? stmt_bind_int64(stmt, ik, after.number) : stmt_bind_text(stmt, ik, after.text);
                if (r >= 0)
                        r = stmt_bind_int64(stmt, ir, after.rowid);
                if (r < 0)
                        return r;
        }
        r = stmt_bind_int64(stmt, (int) n_args + 1, (int64_t) page->limit + 1);
        if (r < 0)
                return r;

        for (;;) {
                r = stmt_step(stmt);
                if (r == 0)
                        break;
                if (r < 0) {
                        entity_array_free(e, items, n);
                        free(last_key);
                        return r;
                }
                if (n == page->limit) {
                        /* A row past the page: there is a next one, from the page's last row. */
                        page->next = cursor_encode(key_integer, last_rowid, strempty(last_key));
                        free(last_key);
                        if (!page->next) {
                                entity_array_free(e, items, n);
                                return -ENOMEM;
                        }
                        *ret_items = items;
                        *ret_n = n;
                        return 0;
                }
                r = append_row(stmt, e, &items, &n, &allocated);
                free(last_key);
                last_key = NULL;
                if (r < 0) {
                        entity_array_free(e, items, n);
                        return r;
                }
                key_integer = stmt_column_integer(stmt, (int) e->n_fields);
                last_key = strdup(stmt_column_null(stmt, (int) e->n_fields) ? "" : stmt_column_text(stmt, (int) e->n_fields));
                last_rowid = stmt_column_int64(stmt, (int) e->n_fields + 1);
                if (!last_key) {
                        entity_array_free(e, items, n);
                        return -ENOMEM;
                }
        }
        free(last_key);
        *ret_items = items;
        *ret_n = n;
        return 0;
}

int store_get_first(Store *s, const Entity *e, const char *clause, const char *const *args, void *ret) {
        void *items;
        size_t n;
        int r;

        r = store_list(s, e, clause, args, 1, &items, &n);
        if (r < 0)
                return r;
        if (n > 0)
                memcpy(ret, items, e->size); /* the record's strings move with it */
        free(items);
        return n > 0;
}

int store_count(Store *s, const char *table, const char *clause, const char *const *args, int64_t *ret) {
        char sql[STORE_SQL_MAX];

        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s %s", table, strempty(clause));
        return store_scalar(s, sql, args, ret);
}

int store_change(Store *s, const char *sql, const char *const *args, bool *ret_changed) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        int r;

        r = store_prepare(s, sql, &stmt);
        if (r < 0)
                return r;
        r = bind_args(stmt, args);
        if (r < 0)
                return r;
        r = stmt_done(stmt);
        if (r < 0)
                return r;
        *ret_changed = stmt_changes(stmt) > 0;
        return 0;
}

int store_scalar(Store *s, const char *sql, const char *const *args, int64_t *ret) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        int r;

        r = store_prepare(s, sql, &stmt);
        if (r < 0)
                return r;
        r = bind_args(stmt, args);
        if (r < 0)
                return r;
        r = stmt_row(stmt);
        if (r < 0)
                return r;
        *ret = stmt_column_int64(stmt, 0);
        return 0;
}
