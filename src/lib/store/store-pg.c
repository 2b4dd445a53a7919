/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The PostgreSQL driver (libpq): one connection, statements prepared on the server the
 * first time they run on it (and again after a reconnect), parameters and results as
 * text. The store's SQL numbers its parameters ?1, ?2...; they become $1, $2... here.
 *
 * Two things PostgreSQL does differently, and what this driver does about them:
 * - A failed statement aborts the transaction it is in. The store's inserts say
 *   ON CONFLICT DO NOTHING and report a duplicate as -EEXIST without failing, as SQLite's
 *   did; any other failure inside a transaction makes its commit fail too.
 * - The connection can go away (a restart, a failover). A statement outside a
 *   transaction connects again and runs; inside one, it fails with -EAGAIN, and so does
 *   the commit, since what the transaction did is gone with the connection.
 */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/log.h"
#include "basic/macro.h"
#include "basic/utf8.h"
#include "basic/util.h"
#include "store/store-internal.h"
#include "store/store-schema-pg.h"

/* Held while the schema is migrated, so that corralds that start together migrate once:
 * "corral" in ASCII. */
#define PG_SCHEMA_LOCK INT64_C(0x636f7272616c)
/* Held by every write transaction: "corralw". */
#define PG_WRITE_LOCK_TEXT "27988560030297207"
/* How long a session may sit idle inside a transaction: corrald's never do, between
 * their statements, for anything like this long. */
#define PG_IDLE_IN_TRANSACTION_MS 3000u
/* pg_type OIDs of the integer types. */
#define PG_INT8OID 20
#define PG_INT2OID 21
#define PG_INT4OID 23

typedef struct PgConn {
        PGconn *conn;
        PGconn *listen; /* LISTEN corral_work, on a connection of its own (pg_listen()) */
        char *conninfo;
        unsigned generation; /* bumped by each new connection: what was prepared before is gone */
        unsigned n_statements; /* names them */
        unsigned lock_timeout_ms;
        bool lost_in_transaction; /* the connection went away inside the open transaction */
        bool read_only; /* a hot standby */
        char *error; /* the last failure's message */
} PgConn;

typedef struct PgStmt {
        StoreStmt base;
        char name[24];
        char *sql; /* with $N */
        int n_params;
        char **values;
        unsigned prepared_generation; /* 0: not prepared on any connection */
        PGresult *result;
        int row;
} PgStmt;

static PgConn *pg_conn(Store *s) {
        return s->db;
}

static PgStmt *pg_stmt(StoreStmt *st) {
        return (PgStmt *) st;
}

static void keep_error(PgConn *c, const char *message) {
        char *copy = strdup(message ?: "unknown error");
        size_t n;

        if (!copy)
                return;
        /* libpq's messages end in a newline. */
        n = strlen(copy);
        while (n > 0 && (copy[n - 1] == '\n' || copy[n - 1] == ' '))
                copy[--n] = 0;
        free(c->error);
        c->error = copy;
}

/* A failed result's SQLSTATE as -errno. */
static int sqlstate_to_errno(const char *state) {
        if (!state)
                return -EIO;
        if (streq(state, "23505"))
                return -EEXIST;
        if (startswith(state, "23"))
                return -EINVAL; /* another integrity constraint */
        /* Serialization failure, deadlock, lock or statement timeout, a connection's
         * trouble, a server shutting down: worth another try, later. */
        if (streq(state, "40001") || streq(state, "40P01") || streq(state, "55P03") || streq(state, "57014") ||
            startswith(state, "08") || startswith(state, "57P"))
                return -EAGAIN;
        if (streq(state, "53100"))
                return -ENOSPC;
        if (streq(state, "42501") || streq(state, "25006"))
                return -EACCES;
        return -EIO;
}

static void notice_to_log(void *userdata, const char *message) {
        log_debug("PostgreSQL: %s", message);
}

/* Settings each new connection is given. */
static int pg_setup(Store *s) {
        PgConn *c = pg_conn(s);
        char sql[160];
        PGresult *res;
        int r = 0;

        PQsetNoticeProcessor(c->conn, notice_to_log, NULL);
        /* A corrald frozen inside a transaction (a stopped VM) holds the write lock of every
         * host: the server ends its session, and the lock with it, well within a lease. */
        snprintf(sql, sizeof(sql),
                 "SET client_min_messages = warning; SET lock_timeout = %u; SET idle_in_transaction_session_timeout = %u; "
                 "SELECT pg_is_in_recovery()",
                 c->lock_timeout_ms, PG_IDLE_IN_TRANSACTION_MS);
        res = PQexec(c->conn, sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                keep_error(c, PQresultErrorMessage(res));
                r = -EIO;
        } else
                c->read_only = streq(PQgetvalue(res, 0, 0), "t");
        PQclear(res);
        return r;
}

/* Connected, connecting again if the connection went away: 0, or -EAGAIN. */
static int pg_connected(Store *s) {
        PgConn *c = pg_conn(s);

        if (c->conn && PQstatus(c->conn) == CONNECTION_OK)
                return 0;
        if (s->in_transaction) {
                c->lost_in_transaction = true;
                return store_error(s, -EAGAIN, "connection lost inside a transaction");
        }
        if (c->conn)
                PQreset(c->conn);
        else
                c->conn = PQconnectdb(c->conninfo);
        if (!c->conn)
                return -ENOMEM;
        if (PQstatus(c->conn) != CONNECTION_OK) {
                keep_error(c, PQerrorMessage(c->conn));
                return store_error(s, -EAGAIN, "connect");
        }
        c->generation++;
        if (pg_setup(s) < 0)
                return store_error(s, -EAGAIN, "connect");
        log_info("Database %s: connected again.", s->path);
        return 0;
}

/* The result's failure as -errno, its message kept. */
static int result_errno(Store *s, PGresult *res) {
        PgConn *c = pg_conn(s);

        keep_error(c, res ? PQresultErrorMessage(res) : PQerrorMessage(c->conn));
        if (PQstatus(c->conn) != CONNECTION_OK) {
                if (s->in_transaction)
                        c->lost_in_transaction = true;
                return -EAGAIN;
        }
        /* A failure outside the store's transactions may still leave the server inside a
         * failed one: the begin's "BEGIN; SELECT pg_advisory_xact_lock()" whose lock timed
         * out. Nobody would roll that back, and every later statement on the connection
         * would fail with "current transaction is aborted". */
        if (!s->in_transaction && PQtransactionStatus(c->conn) == PQTRANS_INERROR)
                PQclear(PQexec(c->conn, "ROLLBACK"));
        return res ? sqlstate_to_errno(PQresultErrorField(res, PG_DIAG_SQLSTATE)) : -EIO;
}

static int pg_exec(Store *s, const char *sql) {
        PgConn *c = pg_conn(s);
        bool rollback = streq(sql, "ROLLBACK");
        PGresult *res;
        int r;

        /* What the lost connection did is gone: a commit is a failure, a rollback done. */
        if (c->lost_in_transaction && (rollback || streq(sql, "COMMIT"))) {
                c->lost_in_transaction = false;
                if (rollback)
                        return 0;
                keep_error(c, "the connection was lost before the commit");
                return store_error(s, -EAGAIN, sql);
        }
        r = pg_connected(s);
        if (r < 0)
                return r;
        res = PQexec(c->conn, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
                r = result_errno(s, res);
                PQclear(res);
                return store_error(s, r, sql);
        }
        /* A COMMIT of a transaction in which a statement failed "succeeds" as a ROLLBACK:
         * nothing of it was written, which the caller must be told. */
        if (streq(sql, "COMMIT") && streq(PQcmdStatus(res), "ROLLBACK")) {
                PQclear(res);
                keep_error(c, "the transaction was rolled back: a statement in it had failed");
                return store_error(s, -EIO, sql);
        }
        PQclear(res);
        return 0;
}

static int pg_open(Store *s, const char *target) {
        _cleanup_free_ PgConn *c = NULL;

        c = calloc(1, sizeof(PgConn));
        if (!c)
                return -ENOMEM;
        c->conninfo = strdup(target);
        s->path = store_target_redacted(target);
        if (!c->conninfo || !s->path) {
                free(c->conninfo);
                return -ENOMEM;
        }
        c->lock_timeout_ms = 5000;
        c->conn = PQconnectdb(target);
        if (!c->conn) {
                free(c->conninfo);
                return -ENOMEM;
        }
        s->db = TAKE_PTR(c);
        if (PQstatus(pg_conn(s)->conn) != CONNECTION_OK) {
                keep_error(pg_conn(s), PQerrorMessage(pg_conn(s)->conn));
                return log_error_errno(-ECONNREFUSED, "Failed to connect to database %s: %s", s->path, pg_conn(s)->error);
        }
        pg_conn(s)->generation = 1;
        if (pg_setup(s) < 0)
                return log_error_errno(-EIO, "Failed to set up the connection to database %s: %s", s->path, pg_conn(s)->error);
        return 0;
}

static void pg_close(Store *s) {
        PgConn *c = pg_conn(s);

        if (!c)
                return;
        if (c->conn)
                PQfinish(c->conn);
        if (c->listen)
                PQfinish(c->listen);
        free(c->conninfo);
        free(c->error);
        free(c);
        s->db = NULL;
}

/* ?N as $N, outside quotes; the highest N in *ret_n. */
static char *translate(const char *sql, int *ret_n) {
        char *out = malloc(strlen(sql) + 1), *o = out;
        char quote = 0;
        int max = 0;

        if (!out)
                return NULL;
        for (const char *p = sql; *p; p++) {
                if (quote) {
                        if (*p == quote)
                                quote = 0;
                } else if (*p == '\'' || *p == '"')
                        quote = *p;
                else if (*p == '?' && p[1] >= '0' && p[1] <= '9') {
                        int n = (int) strtol(p + 1, NULL, 10);
                        max = MAX(max, n);
                        *o++ = '$';
                        continue;
                }
                *o++ = *p;
        }
        *o = 0;
        *ret_n = max;
        return out;
}

static int pg_prepare(Store *s, const char *sql, StoreStmt **ret) {
        PgConn *c = pg_conn(s);
        PgStmt *st;

        st = calloc(1, sizeof(PgStmt));
        if (!st)
                return -ENOMEM;
        st->sql = translate(sql, &st->n_params);
        st->values = calloc((size_t) st->n_params + 1, sizeof(char *));
        if (!st->sql || !st->values) {
                free(st->sql);
                free(st->values);
                free(st);
                return -ENOMEM;
        }
        snprintf(st->name, sizeof(st->name), "corral_%u", ++c->n_statements);
        st->row = -1;
        *ret = &st->base;
        return 0;
}

static void pg_reset(StoreStmt *base) {
        PgStmt *st = pg_stmt(base);

        PQclear(st->result);
        st->result = NULL;
        st->row = -1;
        for (int i = 0; i < st->n_params; i++)
                st->values[i] = mfree(st->values[i]);
}

static void pg_finalize(StoreStmt *base) {
        PgStmt *st = pg_stmt(base);

        pg_reset(base);
        /* The server's copy goes with the connection. */
        free(st->values);
        free(st->sql);
        free(st);
}

static int pg_bind_text(StoreStmt *base, int i, const char *v) {
        PgStmt *st = pg_stmt(base);
        char *copy = NULL;

        if (i < 1 || i > st->n_params)
                return log_error_errno(-EINVAL, "Parameter %d of a statement of %d (programming error): %s", i, st->n_params,
                                       base->sql);
        if (v) {
                /* SQLite keeps any bytes in a text; PostgreSQL refuses a value that is not
                 * UTF-8, and what an agent printed (an excerpt) need not be: such bytes are
                 * kept as U+FFFD, as the API would show them anyway. */
                size_t n = strlen(v);
                copy = utf8_is_valid(v, n) ? strdup(v) : utf8_lossy(v, n);
                if (!copy)
                        return -ENOMEM;
        }
        free(st->values[i - 1]);
        st->values[i - 1] = copy;
        return 0;
}

static int pg_bind_int64(StoreStmt *base, int i, int64_t v) {
        char buf[24];

        snprintf(buf, sizeof(buf), "%" PRIi64, v);
        return pg_bind_text(base, i, buf);
}

static int pg_step(StoreStmt *base) {
        PgStmt *st = pg_stmt(base);
        Store *s = base->store;
        PgConn *c = pg_conn(s);
        ExecStatusType status;
        int r;

        if (!st->result) {
                r = pg_connected(s);
                if (r < 0)
                        return r;
                if (st->prepared_generation != c->generation) {
                        PGresult *res = PQprepare(c->conn, st->name, st->sql, st->n_params, NULL);
                        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                                r = result_errno(s, res);
                                PQclear(res);
                                return store_error(s, r, base->sql);
                        }
                        PQclear(res);
                        st->prepared_generation = c->generation;
                }
                st->result = PQexecPrepared(c->conn, st->name, st->n_params, (const char *const *) st->values, NULL, NULL, 0);
                status = PQresultStatus(st->result);
                if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
                        r = result_errno(s, st->result);
                        PQclear(st->result);
                        st->result = NULL;
                        return store_error(s, r, base->sql);
                }
                st->row = -1;
        }
        if (st->row < PQntuples(st->result))
                st->row++;
        return st->row < PQntuples(st->result) ? 1 : 0;
}

static bool pg_column_null(StoreStmt *base, int i) {
        PgStmt *st = pg_stmt(base);
        return !st->result || PQgetisnull(st->result, st->row, i);
}

static bool pg_column_integer(StoreStmt *base, int i) {
        PgStmt *st = pg_stmt(base);
        Oid type = st->result ? PQftype(st->result, i) : 0;
        return !pg_column_null(base, i) && (type == PG_INT8OID || type == PG_INT4OID || type == PG_INT2OID);
}

static const char *pg_column_text(StoreStmt *base, int i) {
        PgStmt *st = pg_stmt(base);
        return pg_column_null(base, i) ? NULL : PQgetvalue(st->result, st->row, i);
}

static int64_t pg_column_int64(StoreStmt *base, int i) {
        const char *v = pg_column_text(base, i);

        if (!v)
                return 0;
        /* A boolean, as SQLite would have it. */
        if (streq(v, "t"))
                return 1;
        return strtoll(v, NULL, 10);
}

static int64_t pg_changes(StoreStmt *base) {
        PgStmt *st = pg_stmt(base);
        const char *n = st->result ? PQcmdTuples(st->result) : "";
        return *n ? strtoll(n, NULL, 10) : 0;
}

static int pg_schema_version(Store *s) {
        PgConn *c = pg_conn(s);
        PGresult *res;
        int v, r;

        r = pg_connected(s);
        if (r < 0)
                return r;
        res = PQexec(c->conn, "SELECT version FROM corral_schema");
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                r = result_errno(s, res);
                PQclear(res);
                return store_error(s, r, "read the schema version");
        }
        v = PQntuples(res) > 0 ? atoi(PQgetvalue(res, 0, 0)) : 0;
        PQclear(res);
        return v;
}

static int pg_set_schema_version(Store *s, int version) {
        char sql[96];

        snprintf(sql, sizeof(sql), "UPDATE corral_schema SET version = %d", version);
        return pg_exec(s, sql);
}

static int pg_lock_schema(Store *s, bool lock) {
        char sql[384];

        if (!lock) {
                snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%" PRIi64 ")", PG_SCHEMA_LOCK);
                return pg_exec(s, sql);
        }
        /* Waits for another corrald's migration; then the version table is there. */
        snprintf(sql, sizeof(sql),
                 "SET lock_timeout = 0; SELECT pg_advisory_lock(%" PRIi64 "); SET lock_timeout = %u; "
                 "CREATE TABLE IF NOT EXISTS corral_schema (version INTEGER NOT NULL); "
                 "INSERT INTO corral_schema SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM corral_schema)",
                 PG_SCHEMA_LOCK, pg_conn(s)->lock_timeout_ms);
        return pg_exec(s, sql);
}

static bool pg_read_only(Store *s) {
        return pg_conn(s)->read_only;
}

static void pg_set_busy_timeout(Store *s, unsigned msec) {
        PgConn *c = pg_conn(s);
        char sql[64];

        c->lock_timeout_ms = msec;
        snprintf(sql, sizeof(sql), "SET lock_timeout = %u", msec);
        (void) pg_exec(s, sql);
}

static void pg_report_plan(Store *s, const char *sql) {
        /* The plans of test-query-plans are SQLite's; PostgreSQL plans by its statistics. */
        s->plan_fn(sql, "(PostgreSQL: not reported)", s->plan_userdata);
}

static const char *pg_error_message(Store *s) {
        PgConn *c = pg_conn(s);
        return c && c->error ? c->error : "unknown error";
}

static void pg_unlisten(Store *s) {
        PgConn *c = pg_conn(s);

        if (c->listen)
                PQfinish(c->listen);
        c->listen = NULL;
}

static int pg_listen(Store *s, int *ret_fd) {
        PgConn *c = pg_conn(s);
        PGresult *res;

        pg_unlisten(s);
        c->listen = PQconnectdb(c->conninfo);
        if (!c->listen)
                return -ENOMEM;
        if (PQstatus(c->listen) != CONNECTION_OK) {
                keep_error(c, PQerrorMessage(c->listen));
                pg_unlisten(s);
                return -EAGAIN;
        }
        PQsetNoticeProcessor(c->listen, notice_to_log, NULL);
        res = PQexec(c->listen, "LISTEN corral_work");
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                keep_error(c, PQresultErrorMessage(res));
                PQclear(res);
                pg_unlisten(s);
                return -EAGAIN;
        }
        PQclear(res);
        if (PQsetnonblocking(c->listen, 1) < 0) {
                keep_error(c, PQerrorMessage(c->listen));
                pg_unlisten(s);
                return -EIO;
        }
        *ret_fd = PQsocket(c->listen);
        return 0;
}

static int pg_listen_read(Store *s, StoreWorkFn fn, void *userdata) {
        PgConn *c = pg_conn(s);
        int own = c->conn ? PQbackendPID(c->conn) : 0;
        PGnotify *n;

        if (!c->listen)
                return -ENOTCONN;
        if (!PQconsumeInput(c->listen) || PQstatus(c->listen) != CONNECTION_OK) {
                keep_error(c, PQerrorMessage(c->listen));
                pg_unlisten(s);
                return -ECONNRESET;
        }
        while ((n = PQnotifies(c->listen))) {
                /* What this corrald's own connection did, it knows of already. */
                if (n->be_pid != own)
                        fn(n->extra, userdata);
                PQfreemem(n);
        }
        return 0;
}

const StoreDriver store_driver_pg = {
        .backend = STORE_BACKEND_POSTGRESQL,
        .migrations = pg_migrations,
        .n_migrations = ELEMENTSOF(pg_migrations),
        /* One writer at a time, as SQLite's BEGIN IMMEDIATE has it, also across the corralds
         * of several hosts: the control plane's checks inside a transaction (a run still
         * queued, an issue's lock free) then hold until its commit. */
        .begin = "BEGIN; SELECT pg_advisory_xact_lock(" PG_WRITE_LOCK_TEXT ")",
        .open = pg_open,
        .close = pg_close,
        .exec = pg_exec,
        .prepare = pg_prepare,
        .finalize = pg_finalize,
        .bind_text = pg_bind_text,
        .bind_int64 = pg_bind_int64,
        .step = pg_step,
        .column_null = pg_column_null,
        .column_integer = pg_column_integer,
        .column_text = pg_column_text,
        .column_int64 = pg_column_int64,
        .changes = pg_changes,
        .reset = pg_reset,
        .schema_version = pg_schema_version,
        .set_schema_version = pg_set_schema_version,
        .lock_schema = pg_lock_schema,
        .read_only = pg_read_only,
        .set_busy_timeout = pg_set_busy_timeout,
        .report_plan = pg_report_plan,
        .error_message = pg_error_message,
        .listen = pg_listen,
        .listen_read = pg_listen_read,
        .unlisten = pg_unlisten,
};
