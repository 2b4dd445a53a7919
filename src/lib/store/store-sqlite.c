/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The SQLite driver: one connection in WAL mode, statements prepared once
 * (SQLITE_PREPARE_PERSISTENT) and reset after each use, the schema version in
 * user_version.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/log.h"
#include "basic/macro.h"
#include "basic/util.h"
#include "store/store-internal.h"
#include "store/store-schema.h"

/* How long a statement waits for a lock another connection holds, unless the owner says
 * otherwise (store_set_busy_timeout(): corrald's loop waits 50 ms). */
#define SQLITE_BUSY_TIMEOUT_MS 5000

typedef struct LiteStmt {
        StoreStmt base;
        sqlite3_stmt *stmt;
} LiteStmt;

static sqlite3 *lite_db(Store *s) {
        return s->db;
}

static sqlite3_stmt *lite_stmt(StoreStmt *st) {
        return ((LiteStmt *) st)->stmt;
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

static int lite_exec(Store *s, const char *sql) {
        int rc = sqlite3_exec(lite_db(s), sql, NULL, NULL, NULL);
        return rc == SQLITE_OK ? 0 : store_error(s, sqlite_to_errno(rc), sql);
}

static int lite_open(Store *s, const char *path) {
        sqlite3 *db = NULL;
        int rc, r;

        rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                             NULL);
        if (rc != SQLITE_OK) {
                r = sqlite_to_errno(rc);
                log_error_errno(r, "Failed to open database %s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
                sqlite3_close_v2(db);
                return r;
        }
        s->db = db;
        sqlite3_extended_result_codes(db, 1);
        sqlite3_busy_timeout(db, SQLITE_BUSY_TIMEOUT_MS);

        if (!streq(path, ":memory:")) {
                /* A checkpoint stalls the loop for two fsyncs whatever its size, so it runs every
                 * 8192 pages (32 MiB of WAL, about 200 runs) rather than SQLite's 1000. */
                r = lite_exec(s, "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 8192");
                if (r < 0)
                        return r;
        }
        return lite_exec(s, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL");
}

static void lite_close(Store *s) {
        if (s->db)
                sqlite3_close_v2(lite_db(s));
        s->db = NULL;
}

static int lite_prepare(Store *s, const char *sql, StoreStmt **ret) {
        sqlite3_stmt *stmt = NULL;
        LiteStmt *st;
        int rc;

        rc = sqlite3_prepare_v3(lite_db(s), sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
        if (rc != SQLITE_OK)
                return store_error(s, sqlite_to_errno(rc), "prepare");
        st = calloc(1, sizeof(LiteStmt));
        if (!st) {
                sqlite3_finalize(stmt);
                return -ENOMEM;
        }
        st->stmt = stmt;
        *ret = &st->base;
        return 0;
}

static void lite_finalize(StoreStmt *st) {
        sqlite3_finalize(lite_stmt(st));
        free(st);
}

static int lite_bind_text(StoreStmt *st, int i, const char *v) {
        int rc = v ? sqlite3_bind_text(lite_stmt(st), i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(lite_stmt(st), i);
        return rc == SQLITE_OK ? 0 : -ENOMEM;
}

static int lite_bind_int64(StoreStmt *st, int i, int64_t v) {
        return sqlite3_bind_int64(lite_stmt(st), i, v) == SQLITE_OK ? 0 : -ENOMEM;
}

static int lite_step(StoreStmt *st) {
        int rc = sqlite3_step(lite_stmt(st));

        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        return store_error(st->store, sqlite_to_errno(rc), st->sql);
}

static bool lite_column_null(StoreStmt *st, int i) {
        return sqlite3_column_type(lite_stmt(st), i) == SQLITE_NULL;
}

static bool lite_column_integer(StoreStmt *st, int i) {
        return sqlite3_column_type(lite_stmt(st), i) == SQLITE_INTEGER;
}

static const char *lite_column_text(StoreStmt *st, int i) {
        return (const char *) sqlite3_column_text(lite_stmt(st), i);
}

static int64_t lite_column_int64(StoreStmt *st, int i) {
        return sqlite3_column_int64(lite_stmt(st), i);
}

static int64_t lite_changes(StoreStmt *st) {
        return sqlite3_changes64(lite_db(st->store));
}

static void lite_reset(StoreStmt *st) {
        sqlite3_reset(lite_stmt(st));
        sqlite3_clear_bindings(lite_stmt(st));
}

static int lite_schema_version(Store *s) {
        sqlite3_stmt *stmt = NULL;
        int rc, v;

        rc = sqlite3_prepare_v2(lite_db(s), "PRAGMA user_version", -1, &stmt, NULL);
        if (rc != SQLITE_OK)
                return store_error(s, sqlite_to_errno(rc), "read user_version");
        rc = sqlite3_step(stmt);
        v = rc == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : store_error(s, sqlite_to_errno(rc), "read user_version");
        sqlite3_finalize(stmt);
        return v;
}

static int lite_set_schema_version(Store *s, int version) {
        char pragma[64];

        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", version);
        return lite_exec(s, pragma);
}

static bool lite_read_only(Store *s) {
        return sqlite3_db_readonly(lite_db(s), "main") == 1;
}

static void lite_set_busy_timeout(Store *s, unsigned msec) {
        sqlite3_busy_timeout(lite_db(s), (int) msec);
}

/* EXPLAIN QUERY PLAN of sql, line by line, to the observer. */
static void lite_report_plan(Store *s, const char *sql) {
        _cleanup_free_ char *explain = strprintf("EXPLAIN QUERY PLAN %s", sql);
        sqlite3_stmt *stmt = NULL;

        if (!explain || sqlite3_prepare_v2(lite_db(s), explain, -1, &stmt, NULL) != SQLITE_OK) {
                s->plan_fn(sql, "(no plan)", s->plan_userdata);
                return;
        }
        while (sqlite3_step(stmt) == SQLITE_ROW)
                s->plan_fn(sql, (const char *) sqlite3_column_text(stmt, 3), s->plan_userdata);
        sqlite3_finalize(stmt);
}

static const char *lite_error_message(Store *s) {
        return s->db ? sqlite3_errmsg(lite_db(s)) : "not open";
}

const StoreDriver store_driver_sqlite = {
        .backend = STORE_BACKEND_SQLITE,
        .migrations = sqlite_migrations,
        .n_migrations = ELEMENTSOF(sqlite_migrations),
        /* Takes the write lock up front, so that a transaction never fails half-way for a
         * lock another connection took meanwhile. */
        .begin = "BEGIN IMMEDIATE",
        .open = lite_open,
        .close = lite_close,
        .exec = lite_exec,
        .prepare = lite_prepare,
        .finalize = lite_finalize,
        .bind_text = lite_bind_text,
        .bind_int64 = lite_bind_int64,
        .step = lite_step,
        .column_null = lite_column_null,
        .column_integer = lite_column_integer,
        .column_text = lite_column_text,
        .column_int64 = lite_column_int64,
        .changes = lite_changes,
        .reset = lite_reset,
        .schema_version = lite_schema_version,
        .set_schema_version = lite_set_schema_version,
        .read_only = lite_read_only,
        .set_busy_timeout = lite_set_busy_timeout,
        .report_plan = lite_report_plan,
        .error_message = lite_error_message,
};
