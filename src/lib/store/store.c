/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SQLite store. Statements are prepared once (SQLITE_PREPARE_PERSISTENT) and
 * kept in a small cache keyed by their SQL text, or for an entity's get, insert, update and
 * delete by entity and kind, so that their SQL is built once; every use resets them.
 */
#include "store/store.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "basic/log.h"
#include "store/store-internal.h"
#include "store/store-schema.h"
#include "basic/strv.h"
#include "basic/time-util.h"
#include "basic/utf8.h"

/* How long a statement waits for a lock another connection holds, unless the owner says
 * otherwise (store_set_busy_timeout(): corrald's loop waits 50 ms). */
#define STORE_BUSY_TIMEOUT_MS 5000
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

typedef struct CachedStatement {
        char *sql;
        const Entity *entity; /* with kind, for an entity's own statements */
        EntityStatement kind;
        const char *const *columns; /* of a STATEMENT_UPDATE_COLUMNS */
        const Field **fields; /* the same, looked up once */
        sqlite3_stmt *stmt;
} CachedStatement;

struct Store {
        sqlite3 *db;
        char *path;
        CachedStatement *cache;
        size_t n_cache;
        bool in_transaction;
        int write_error; /* the last failure to write (-EAGAIN, -ENOSPC, -EACCES, -EIO), 0 after a commit */
        uint64_t write_error_usec; /* CLOCK_MONOTONIC */
        StorePlanFn plan_fn; /* tests: told the query plan of each statement prepared */
        void *plan_userdata;
};

int store_schema_latest(void) {
        return store_migrations[ELEMENTSOF(store_migrations) - 1].version;
}

static int sqlite_to_errno(int rc) {
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_CONSTRAINT:
                if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
                        return -EEXIST;
                return -EINVAL;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                /* Not -EBUSY, which the control plane uses for "taken" (409): a database
                 * locked by another process is worth another try, later. */
                return -EAGAIN;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_READONLY:
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        default:
                return -EIO;
        }
}

/* Turn an SQLite result into -errno; unexpected failures are logged here, where SQLite's
 * own message is still available. Constraint violations are the caller's to explain. */
int store_error(Store *s, int rc, const char *what) {
        int r = sqlite_to_errno(rc);

        if (r == -EAGAIN || r == -ENOSPC || r == -EACCES || r == -EIO) {
                s->write_error = r;
                s->write_error_usec = now_mono_usec();
        }

        if (r == -EIO || r == -ENOSPC || r == -EACCES)
                log_error("Database %s: %s failed: %s", strna(s->path), what, sqlite3_errmsg(s->db));
        else if (r < 0)
                log_debug("Database %s: %s: %s", strna(s->path), what, sqlite3_errmsg(s->db));
        return r;
}

static int store_exec(Store *s, const char *sql) {
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        return rc == SQLITE_OK ? 0 : store_error(s, rc, sql);
}

/* An entity's own statement, if it was prepared before. */
static CachedStatement *entity_cached(Store *s, const Entity *e, EntityStatement kind, const char *const *columns) {
        for (size_t i = 0; i < s->n_cache; i++)
                if (s->cache[i].entity == e && s->cache[i].kind == kind && s->cache[i].columns == columns)
                        return &s->cache[i];
        return NULL;
}

static sqlite3_stmt *entity_statement(Store *s, const Entity *e, EntityStatement kind) {
        CachedStatement *c = entity_cached(s, e, kind, NULL);
        return c ? c->stmt : NULL;
}

void store_set_plan_observer(Store *s, StorePlanFn fn, void *userdata) {
        s->plan_fn = fn;
        s->plan_userdata = userdata;
}

/* EXPLAIN QUERY PLAN of sql, line by line, to the observer. */
static void report_plan(Store *s, const char *sql) {
        _cleanup_free_ char *explain = strprintf("EXPLAIN QUERY PLAN %s", sql);
        sqlite3_stmt *stmt = NULL;

        if (!explain || sqlite3_prepare_v2(s->db, explain, -1, &stmt, NULL) != SQLITE_OK) {
                s->plan_fn(sql, "(no plan)", s->plan_userdata);
                return;
        }
        while (sqlite3_step(stmt) == SQLITE_ROW)
                s->plan_fn(sql, (const char *) sqlite3_column_text(stmt, 3), s->plan_userdata);
        sqlite3_finalize(stmt);
}

static int store_prepare_entity_of(Store *s, const char *sql, const Entity *e, EntityStatement kind, const char *const *columns,
                                   sqlite3_stmt **ret) {
        sqlite3_stmt *stmt = NULL;
        CachedStatement *c;
        int rc;

        for (size_t i = 0; !e && i < s->n_cache; i++)
                if (!s->cache[i].entity && streq(s->cache[i].sql, sql)) {
                        *ret = s->cache[i].stmt;
                        return 0;
                }

        rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
        if (rc != SQLITE_OK)
                return store_error(s, rc, "prepare");
        if (s->plan_fn)
                report_plan(s, sql);

        c = realloc(s->cache, (s->n_cache + 1) * sizeof(CachedStatement));
        if (!c) {
                sqlite3_finalize(stmt);
                return -ENOMEM;
        }
        s->cache = c;
        /* Whole, so that what a kind does not use (fields) is NULL, not garbage. */
        s->cache[s->n_cache] = (CachedStatement){
                .sql = strdup(sql),
                .entity = e,
                .kind = kind,
                .columns = columns,
                .stmt = stmt,
        };
        if (!s->cache[s->n_cache].sql) {
                sqlite3_finalize(stmt);
                return -ENOMEM;
        }
        s->n_cache++;
        *ret = stmt;
        return 0;
}

static int store_prepare_entity(Store *s, const char *sql, const Entity *e, EntityStatement kind, sqlite3_stmt **ret) {
        return store_prepare_entity_of(s, sql, e, kind, NULL, ret);
}

int store_prepare(Store *s, const char *sql, sqlite3_stmt **ret) {
        return store_prepare_entity(s, sql, NULL, STATEMENT_OTHER, ret);
}

void stmt_resetp(sqlite3_stmt **stmt) {
        if (*stmt) {
                sqlite3_reset(*stmt);
                sqlite3_clear_bindings(*stmt);
        }
}

static int migrate(Store *s) {
        int current = store_schema_version(s);

        if (current < 0)
                return current;
        if (current > store_schema_latest())
                return log_error_errno(-EPROTONOSUPPORT,
                                       "Database %s has schema version %d, but this corrald only knows versions up to %d "
                                       "(it was written by a newer corral); refusing to open it.",
                                       s->path, current, store_schema_latest());

        for (size_t i = 0; i < ELEMENTSOF(store_migrations); i++) {
                const Migration *m = &store_migrations[i];
                char pragma[64];
                int r;

                if (m->version <= current)
                        continue;
                r = store_begin(s);
                if (r < 0)
                        return r;
                snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", m->version);
                r = store_exec(s, m->sql);
                if (r >= 0)
                        r = store_exec(s, pragma);
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

int store_open(const char *path, Store **ret) {
        _cleanup_(store_freep) Store *s = NULL;
        bool memory = streq(path, ":memory:");
        int rc, r;

        s = calloc(1, sizeof(Store));
        if (!s)
                return -ENOMEM;
        s->path = strdup(path);
        if (!s->path)
                return -ENOMEM;

        rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, NULL);
        if (rc != SQLITE_OK) {
                r = sqlite_to_errno(rc);
                return log_error_errno(r, "Failed to open database %s: %s", path,
                                       s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        }
        sqlite3_extended_result_codes(s->db, 1);
        sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);

        if (!memory) {
                /* A checkpoint stalls the loop for two fsyncs whatever its size, so it runs every
                 * 8192 pages (32 MiB of WAL, about 200 runs) rather than SQLite's 1000. */
                r = store_exec(s, "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 8192");
                if (r < 0)
                        return r;
        }
        r = store_exec(s, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL");
        if (r < 0)
                return r;

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
                sqlite3_finalize(s->cache[i].stmt);
                free(s->cache[i].sql);
                free(s->cache[i].fields);
        }
        free(s->cache);
        if (s->db)
                sqlite3_close_v2(s->db);
        free(s->path);
        free(s);
        return NULL;
}

int store_schema_version(Store *s) {
        _cleanup_reset_ sqlite3_stmt *stmt = NULL;
        int r, rc;

        r = store_prepare(s, "PRAGMA user_version", &stmt);
        if (r < 0)
                return r;
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW)
                return store_error(s, rc, "read user_version");
        return sqlite3_column_int(stmt, 0);
}

int store_begin(Store *s) {
        int r;

        if (s->in_transaction)
                return log_error_errno(-EINPROGRESS, "Database transaction already open (programming error).");
        r = store_exec(s, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        s->in_transaction = true;
        return 0;
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
        sqlite3_busy_timeout(s->db, (int) msec);
}

bool store_read_only(Store *s) {
        return sqlite3_db_readonly(s->db, "main") == 1;
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
                return "the database was locked by another process within the last minute";
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
        (void) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        s->in_transaction = false;
}

static int bind_field(sqlite3_stmt *stmt, int idx, const Field *f, const void *obj) {
        const void *p = field_cptr(f, obj);
        int rc;

        switch (f->type) {
        case FIELD_TEXT:
        case FIELD_TIME:
        case FIELD_JSON: {
                const char *v = *(char *const *) p;
                rc = v ? sqlite3_bind_text(stmt, idx, v, -1, SQLITE_STATIC) : sqlite3_bind_null(stmt, idx);
                break;
        }
        case FIELD_INT: {
                int64_t v = *(const int64_t *) p;
                rc = v == INT_NULL ? sqlite3_bind_null(stmt, idx) : sqlite3_bind_int64(stmt, idx, v);
                break;
        }
        case FIELD_BOOL:
                rc = sqlite3_bind_int(stmt, idx, *(const bool *) p ? 1 : 0);
                break;
        case FIELD_ENUM: {
                const char *v = enum_to_string(f->enum_names, *(const int *) p);
                rc = v ? sqlite3_bind_text(stmt, idx, v, -1, SQLITE_STATIC) : sqlite3_bind_null(stmt, idx);
                break;
        }
        default:
                return -EINVAL;
        }
        return rc == SQLITE_OK ? 0 : -ENOMEM;
}

/* Fill obj (already zeroed) from the current row; columns are in descriptor order. */
static int read_row(sqlite3_stmt *stmt, const Entity *e, void *obj) {
        for (size_t i = 0; i < e->n_fields; i++) {
                const Field *f = &e->fields[i];
                void *p = field_ptr(f, obj);
                int col = (int) i;
                bool null = sqlite3_column_type(stmt, col) == SQLITE_NULL;

                switch (f->type) {
                case FIELD_TEXT:
                case FIELD_TIME:
                case FIELD_JSON:
                        if (!null) {
                                char *v = strdup((const char *) sqlite3_column_text(stmt, col));
                                if (!v)
                                        return -ENOMEM;
                                *(char **) p = v;
                        }
                        break;
                case FIELD_INT:
                        *(int64_t *) p = null ? INT_NULL : sqlite3_column_int64(stmt, col);
                        break;
                case FIELD_BOOL:
                        *(bool *) p = sqlite3_column_int(stmt, col) != 0;
                        break;
                case FIELD_ENUM: {
                        int v = null ? -1 : enum_from_string(f->enum_names, (const char *) sqlite3_column_text(stmt, col));
                        if (v < 0 && !(null && (f->flags & FIELD_NULLABLE)))
                                return log_error_errno(-EBADMSG, "Database holds an invalid %s.%s value '%s'.", e->table,
                                                       f->column, null ? "NULL" : (const char *) sqlite3_column_text(stmt, col));
                        *(int *) p = v;
                        break;
                }
                }
        }
        return 0;
}

/* "a, b, c" — the column list of an entity. */
static void column_list(const Entity *e, char *buf, size_t size) {
        size_t n = 0;

        buf[0] = 0;
        for (size_t i = 0; i < e->n_fields && n < size; i++)
                n += (size_t) snprintf(buf + n, size - n, "%s%s", i ? ", " : "", e->fields[i].column);
}

int store_insert(Store *s, const Entity *e, void *obj) {
        _cleanup_reset_ sqlite3_stmt *stmt = NULL;
        char cols[2048], sql[STORE_SQL_MAX];
        size_t n;
        int r, rc;

        stmt = entity_statement(s, e, STATEMENT_INSERT);
        if (!stmt) {
                column_list(e, cols, sizeof(cols));
                n = (size_t) snprintf(sql, sizeof(sql), "INSERT INTO %s (%s) VALUES (", e->table, cols);
                for (size_t i = 0; i < e->n_fields; i++)
                        n += (size_t) snprintf(sql + n, sizeof(sql) - n, "%s?%zu", i ? ", " : "", i + 1);
                snprintf(sql + n, sizeof(sql) - n, ")");
                r = store_prepare_entity(s, sql, e, STATEMENT_INSERT, &stmt);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < e->n_fields; i++) {
                r = bind_field(stmt, (int) i + 1, &e->fields[i], obj);
                if (r < 0)
                        return r;
        }
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_DONE)
                return store_error(s, rc, e->table);

        const Field *key = entity_key(e);
        if (key && key->type == FIELD_INT && *(int64_t *) field_ptr(key, obj) == INT_NULL)
                *(int64_t *) field_ptr(key, obj) = sqlite3_last_insert_rowid(s->db);
        return 0;
}

int store_get(Store *s, const Entity *e, const char *key, void *ret) {
        _cleanup_reset_ sqlite3_stmt *stmt = NULL;
        char cols[2048], sql[STORE_SQL_MAX];
        int r, rc;

        stmt = entity_statement(s, e, STATEMENT_GET);
        if (!stmt) {
                column_list(e, cols, sizeof(cols));
                snprintf(sql, sizeof(sql), "SELECT %s FROM %s WHERE %s = ?1", cols, e->table, entity_key(e)->column);
                r = store_prepare_entity(s, sql, e, STATEMENT_GET, &stmt);
                if (r < 0)
                        return r;
        }
        if (sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC) != SQLITE_OK)
                return -ENOMEM;
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_error(s, rc, e->table);

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
static int step_update(Store *s, sqlite3_stmt *stmt, const Entity *e, int idx, const void *obj) {
        int r, rc;

        r = bind_field(stmt, idx, entity_key(e), obj);
        if (r < 0)
                return r;
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_DONE)
                return store_error(s, rc, e->table);
        return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

int store_update(Store *s, const Entity *e, const void *obj) {
        _cleanup_reset_ sqlite3_stmt *stmt = NULL;
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
        return step_update(s, stmt, e, idx, obj);
}

int store_update_columns(Store *s, const Entity *e, const void *obj, const char *const *columns) {
        _cleanup_reset_ sqlite3_stmt *stmt = NULL;
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
        return step_update(s, stmt, e, (int) k + 1, obj);
}

int store_delete(Store *s, const Entity *e, const char *key) {
        _cleanup_reset_ sqlite3_stmt *stmt = NULL;
        char sql[256];
        int r, rc;

        stmt = entity_statement(s, e, STATEMENT_DELETE);
        if (!stmt) {
                snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE %s = ?1", e->table, entity_key(e)->column);
                r = store_prepare_entity(s, sql, e, STATEMENT_DELETE, &stmt);
                if (r < 0)
                        return r;
        }
        if (sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC) != SQLITE_OK)
                return -ENOMEM;
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_DONE)
                return store_error(s, rc, e->table);
        return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

static int bind_args(sqlite3_stmt *stmt, const char *const *args) {
        for (int i = 0; args && args[i]; i++)
                if (sqlite3_bind_text(stmt, i + 1, args[i], -1, SQLITE_STATIC) != SQLITE_OK)
                        return -ENOMEM;
        return 0;
}

/* Read the current row into a new record at the end of *items (n of them, room for
 * *allocated): 0, or -errno with *items as it was. */
static int append_row(sqlite3_stmt *stmt, const Entity *e, char **items, size_t *n, size_t *allocated) {
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
        _cleanup_reset_ sqlite3_stmt *stmt = NULL;
        char cols[2048], sql[STORE_SQL_MAX];
        char *items = NULL;
        size_t n = 0, allocated = 0;
        int r, rc;

        column_list(e, cols, sizeof(cols));
        /* The limit in SQL, so that SQLite stops reading there (a parameter: one statement
         * for every limit). */
        snprintf(sql, sizeof(sql), "SELECT %s FROM %s %s%s", cols, e->table, strempty(clause), limit > 0 ? " LIMIT :limit" : "");
        r = store_prepare(s, sql, &stmt);
        if (r < 0)
                return r;
        r = bind_args(stmt, args);
        if (r < 0)
                return r;
        if (limit > 0 &&
            sqlite3_bind_int64(stmt, sqlite3_bind_parameter_index(stmt, ":limit"),
                               (sqlite3_int64) MIN(limit, (size_t) INT64_MAX)) != SQLITE_OK)
                return -ENOMEM;

        while (limit == 0 || n < limit) {
                rc = sqlite3_step(stmt);
                if (rc == SQLITE_DONE)
                        break;
                if (rc != SQLITE_ROW) {
                        entity_array_free(e, items, n);
                        return store_error(s, rc, e->table);
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
        for (size_t i = 0; plain[i]; i++)
                snprintf(hex + 2 * i, 3, "%02x", (unsigned char) plain[i]);
        hex[strlen(plain) * 2] = 0;
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
        _cleanup_reset_ sqlite3_stmt *stmt = NULL;
        _cleanup_(cursor_done) Cursor after = {};
        char cols[2048], sql[STORE_SQL_MAX];
        const char *dir = desc ? "DESC" : "ASC";
        bool key_integer = false;
        int64_t last_rowid = 0;
        char *items = NULL, *last_key = NULL;
        size_t n = 0, allocated = 0;
        int r, rc;

        page->next = NULL;
        if (page->after) {
                r = cursor_decode(page->after, &after);
                if (r < 0)
                        return r;
        }
        column_list(e, cols, sizeof(cols));
        /* Keyset paging: the page after a cursor starts past its row in the list's order,
         * which an index gives, however deep the page. One row more than asked says whether
         * there is a next page. */
        char cond[256] = "";
        if (page->after)
                /* The rows past the cursor's, in the list's direction. */
                snprintf(cond, sizeof(cond), " AND (%s, rowid) %s (:after_key, :after_rowid)", key, desc ? "<" : ">");
        snprintf(sql, sizeof(sql), "SELECT %s, %s, rowid FROM %s WHERE (%s)%s ORDER BY %s %s, rowid %s LIMIT :limit", cols, key,
                 e->table, where ?: "1", cond, key, dir, dir);
        r = store_prepare(s, sql, &stmt);
        if (r < 0)
                return r;
        r = bind_args(stmt, args);
        if (r < 0)
                return r;
        if (page->after) {
                int ik = sqlite3_bind_parameter_index(stmt, ":after_key"),
                    ir = sqlite3_bind_parameter_index(stmt, ":after_rowid");
                if ((after.integer ? sqlite3_bind_int64(stmt, ik, after.number)
                                   : sqlite3_bind_text(stmt, ik, after.text, -1, SQLITE_STATIC)) != SQLITE_OK ||
                    sqlite3_bind_int64(stmt, ir, after.rowid) != SQLITE_OK)
                        return -ENOMEM;
        }
        if (sqlite3_bind_int64(stmt, sqlite3_bind_parameter_index(stmt, ":limit"), (sqlite3_int64) page->limit + 1) != SQLITE_OK)
                return -ENOMEM;

        for (;;) {
                rc = sqlite3_step(stmt);
                if (rc == SQLITE_DONE)
                        break;
                if (rc != SQLITE_ROW) {
                        entity_array_free(e, items, n);
                        free(last_key);
                        return store_error(s, rc, e->table);
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
                key_integer = sqlite3_column_type(stmt, (int) e->n_fields) == SQLITE_INTEGER;
                last_key = sqlite3_column_type(stmt, (int) e->n_fields) == SQLITE_NULL
                        ? strdup("")
                        : strdup((const char *) sqlite3_column_text(stmt, (int) e->n_fields));
                last_rowid = sqlite3_column_int64(stmt, (int) e->n_fields + 1);
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

int store_scalar(Store *s, const char *sql, const char *const *args, int64_t *ret) {
        _cleanup_reset_ sqlite3_stmt *stmt = NULL;
        int r, rc;

        r = store_prepare(s, sql, &stmt);
        if (r < 0)
                return r;
        r = bind_args(stmt, args);
        if (r < 0)
                return r;
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_error(s, rc, sql);
        *ret = sqlite3_column_int64(stmt, 0);
        return 0;
}
