/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The store's own helpers, shared by store.c (the connection, migrations, transactions,
 * records by their entity), the statements no entity describes (store-agent.c, costs.c,
 * events.c) and the two database drivers: store-sqlite.c (the embedded default) and
 * store-pg.c (PostgreSQL, for several hosts). Only the drivers see sqlite3 or libpq; the
 * rest of the store speaks SQL that both run, through the statements below, and picks a
 * dialect's text with store_dialect() where they must differ.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Step N of the schema brings a database from version N-1 to N, in one transaction. */
typedef struct Migration {
        int version;
        const char *sql;
} Migration;

typedef struct StoreDriver StoreDriver;

/* A prepared statement. Parameters are ?1, ?2...; a driver's statement begins with this. */
typedef struct StoreStmt {
        Store *store;
        const char *sql; /* the cache's copy */
        bool writes; /* INSERT, UPDATE or DELETE: refused when fenced outside a transaction */
} StoreStmt;

typedef struct CachedStatement CachedStatement;

struct Store {
        const StoreDriver *driver;
        void *db; /* the driver's connection */
        char *path; /* what was opened, for messages: a file, or a PostgreSQL URI without its password */
        CachedStatement *cache;
        size_t n_cache;
        bool in_transaction;
        int write_error; /* the last failure to write (-EAGAIN, -ENOSPC, -EACCES, -EIO), 0 after a commit */
        uint64_t write_error_usec; /* CLOCK_MONOTONIC */
        char *fence_host_id; /* store_set_fence(): NULL, or the host whose row fences writes */
        int64_t fence_epoch;
        uint64_t fence_until_usec;
        StorePlanFn plan_fn; /* tests: told the query plan of each statement prepared */
        void *plan_userdata;
};

/* What a database driver does; the store does everything else the same on each. */
struct StoreDriver {
        StoreBackend backend;
        const Migration *migrations; /* the schema in the driver's dialect, same versions */
        size_t n_migrations;
        const char *begin; /* the statement that opens a write transaction */
        int (*open)(Store *s, const char *target);
        void (*close)(Store *s);
        /* Statements without parameters or rows, ';'-separated. */
        int (*exec)(Store *s, const char *sql);
        int (*prepare)(Store *s, const char *sql, StoreStmt **ret);
        void (*finalize)(StoreStmt *st);
        /* v NULL binds NULL; v must stay as it is until the statement is reset. */
        int (*bind_text)(StoreStmt *st, int i, const char *v);
        int (*bind_int64)(StoreStmt *st, int i, int64_t v);
        /* 1: a row is there to read; 0: done; -errno (through store_error()). */
        int (*step)(StoreStmt *st);
        bool (*column_null)(StoreStmt *st, int i);
        bool (*column_integer)(StoreStmt *st, int i);
        const char *(*column_text)(StoreStmt *st, int i); /* NULL for NULL */
        int64_t (*column_int64)(StoreStmt *st, int i);
        /* Rows the statement, stepped to its end, changed. */
        int64_t (*changes)(StoreStmt *st);
        void (*reset)(StoreStmt *st);
        int (*schema_version)(Store *s);
        /* Inside the migration's transaction. */
        int (*set_schema_version)(Store *s, int version);
        /* Around the migrations, for another process that migrates the same database at
         * the same time (NULL: the transactions are enough). */
        int (*lock_schema)(Store *s, bool lock);
        bool (*read_only)(Store *s);
        void (*set_busy_timeout)(Store *s, unsigned msec);
        /* Tests: each line of sql's query plan to s->plan_fn. */
        void (*report_plan)(Store *s, const char *sql);
        /* Why the last failure was, in the database's own words. */
        const char *(*error_message)(Store *s);
        /* store_work_listen() and the rest (NULL: one host, nothing to hear). */
        int (*listen)(Store *s, int *ret_fd);
        int (*listen_read)(Store *s, StoreWorkFn fn, void *userdata);
        void (*unlisten)(Store *s);
};

extern const StoreDriver store_driver_sqlite;
extern const StoreDriver store_driver_pg;

/* Whether target names a PostgreSQL database (postgres:// or postgresql://). */
bool store_target_is_pg(const char *target);

/* A prepared statement, cached in the store by its SQL text; reset after each use. */
int store_prepare(Store *s, const char *sql, StoreStmt **ret);
void stmt_resetp(StoreStmt **stmt);
#define _cleanup_reset_ _cleanup_(stmt_resetp)

static inline int stmt_bind_text(StoreStmt *st, int i, const char *v) {
        return st->store->driver->bind_text(st, i, v);
}
static inline int stmt_bind_int64(StoreStmt *st, int i, int64_t v) {
        return st->store->driver->bind_int64(st, i, v);
}
/* A write outside a transaction that the fence refuses: -EOWNERDEAD (store.c). */
int store_stmt_fenced(StoreStmt *st);
static inline int stmt_step(StoreStmt *st) {
        if (st->writes && st->store->fence_host_id && !st->store->in_transaction) {
                int r = store_stmt_fenced(st);
                if (r < 0)
                        return r;
        }
        return st->store->driver->step(st);
}
/* Step past the fence: the host's own row (queries.c, store_host_renew()). */
static inline int stmt_step_unfenced(StoreStmt *st) {
        return st->store->driver->step(st);
}
/* Step to a statement's one row: 0 with it there to read, -ENOENT without one. */
static inline int stmt_row(StoreStmt *st) {
        int r = stmt_step(st);
        return r < 0 ? r : r == 0 ? -ENOENT : 0;
}
/* Step a statement that returns no row. */
static inline int stmt_done(StoreStmt *st) {
        int r = stmt_step(st);
        return r < 0 ? r : 0;
}
static inline bool stmt_column_null(StoreStmt *st, int i) {
        return st->store->driver->column_null(st, i);
}
static inline bool stmt_column_integer(StoreStmt *st, int i) {
        return st->store->driver->column_integer(st, i);
}
static inline const char *stmt_column_text(StoreStmt *st, int i) {
        return st->store->driver->column_text(st, i);
}
static inline int64_t stmt_column_int64(StoreStmt *st, int i) {
        return st->store->driver->column_int64(st, i);
}
static inline int64_t stmt_changes(StoreStmt *st) {
        return st->store->driver->changes(st);
}

/* The SQL of the store's backend, where SQLite and PostgreSQL must be told differently. */
static inline const char *store_dialect(Store *s, const char *sqlite, const char *pg) {
        return s->driver->backend == STORE_BACKEND_POSTGRESQL ? pg : sqlite;
}

/* A driver's failure as -errno: remembered for store_health() when it is one of writing,
 * logged with the database's message and what the statement was about. Constraint
 * violations (-EEXIST, -EINVAL) are the caller's to explain. */
int store_error(Store *s, int r, const char *what);
