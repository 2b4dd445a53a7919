/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The store: one connection to SQLite (a file, the embedded default) or to PostgreSQL
 * (for several hosts), numbered schema migrations, cached prepared statements, and
 * generic row <-> struct operations driven by the Entity descriptors of model.h. Only
 * this module sees sqlite3 or libpq.
 *
 * Errors: -ENOENT no such row, -EEXIST unique constraint, -EINVAL other
 * constraint, -EAGAIN locked by another connection past the busy timeout (nothing was
 * done: try again later), -EPROTONOSUPPORT database newer than this binary,
 * -EIO anything else (logged here with the database's message). On PostgreSQL, a lost
 * connection is -EAGAIN too (the next statement connects again). -EOWNERDEAD: a write of
 * a host that may have been declared dead (store_set_fence()), refused.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/macro.h"
#include "store/entity.h"

typedef struct Store Store;

typedef enum StoreBackend {
        STORE_BACKEND_SQLITE,
        STORE_BACKEND_POSTGRESQL,
} StoreBackend;

/* Newest schema version this binary knows. */
int store_schema_latest(void);

/* Open (creating if needed) and migrate. target is a file's path (":memory:" gives a
 * private in-memory database) or a PostgreSQL URI (postgresql://...), whose database
 * must exist. */
int store_open(const char *target, Store **ret);
Store *store_free(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_free);

int store_schema_version(Store *s);
StoreBackend store_backend(Store *s);
const char *store_backend_name(StoreBackend b);
/* What was opened, for messages: a file, or a PostgreSQL URI without its password. */
const char *store_target(Store *s);
/* target as store_target() would say it (malloc'd). */
char *store_target_redacted(const char *target);

/* Short write transactions: BEGIN IMMEDIATE takes the write lock up front. */
/* How long a statement waits for a lock another connection holds (default 5 s) before it
 * fails with -EAGAIN. */
void store_set_busy_timeout(Store *s, unsigned msec);
/* Whether the database was opened read-only (its file or directory cannot be written). */
bool store_read_only(Store *s);
/* Take the write lock and give it back: 0, or why nothing could be written now. */
int store_probe_write(Store *s);
/* Why the store is degraded, or NULL: read-only, or a write failed (locked past the busy
 * timeout, disk full, I/O error) within the last minute and nothing was committed since. */
const char *store_health(Store *s);

int store_begin(Store *s);
int store_commit(Store *s);
void store_rollback(Store *s);

/* Fencing, for a host whose database other hosts share (corrald(8), HOSTS): from
 * until_usec (CLOCK_MONOTONIC) on, when the lease this host last renewed may have run out,
 * every write is refused with -EOWNERDEAD without reaching the database; and a transaction
 * begins only if, once it holds the write lock, the host's row still has this epoch and
 * does not say dead. host_id NULL: no fence (one host, or while the host takes its row). */
int store_set_fence(Store *s, const char *host_id, int64_t epoch, uint64_t until_usec);
/* Whether writes are refused now by the fence's time alone. */
bool store_fence_expired(Store *s);
/* A write transaction that no fence refuses: for the host's own row, to take it again. */
int store_begin_unfenced(Store *s);

/* Work for any host, where several share the database (PostgreSQL's LISTEN corral_work,
 * on a connection of its own): a run was queued, or one ended and its agent has a free
 * slot. store_work_listen() gives a descriptor that is readable when there is news, and
 * store_work_read() calls fn with the agent's id of each, but for what this store's own
 * connection did. -EOPNOTSUPP on SQLite; -EAGAIN when the database cannot be reached;
 * -ECONNRESET from store_work_read() when the connection was lost (listen again, and
 * look at all queued work: what was said meanwhile is gone). */
typedef void (*StoreWorkFn)(const char *agent_id, void *userdata);
int store_work_listen(Store *s, int *ret_fd);
int store_work_read(Store *s, StoreWorkFn fn, void *userdata);
void store_work_unlisten(Store *s);

int store_insert(Store *s, const Entity *e, void *obj); /* fills an INTEGER key assigned by SQLite */
int store_get(Store *s, const Entity *e, const char *key, void *ret);
int store_update(Store *s, const Entity *e, const void *obj);
/* UPDATE of the named columns only (a NULL-terminated list that lives as long as the store:
 * its statement is cached by that pointer), from obj, whose key picks the row. The other
 * columns stay as they are, and indexes on them are not touched. */
int store_update_columns(Store *s, const Entity *e, const void *obj, const char *const *columns);
int store_delete(Store *s, const Entity *e, const char *key);

/* SELECT of all columns with a trailing clause ("WHERE company_id = ?1 ORDER BY created_at"),
 * text parameters bound in order. Returns a malloc'ed array of records (free with
 * entity_array_free()). limit caps the rows read (0: no cap). */
/* One page of a list the API serves: at most limit rows, after the row of cursor after (a
 * previous page's next; NULL: from the start). next is set (malloc'd) when there are more
 * rows. An after that is no cursor: -EINVAL. */
#define STORE_CURSOR_MAX 160
typedef struct StorePage {
        size_t limit;
        const char *after;
        char *next;
} StorePage;

/* A list ordered by key (a column; rowid breaks ties, and the key must never change once a
 * row is written), newest or largest first with desc, one page of it. where: a condition
 * with ?1, ?2... of args, or NULL. */
int store_list_page(Store *s, const Entity *e, const char *where, const char *key, bool desc, const char *const *args,
                    StorePage *page, void **ret_items, size_t *ret_n);
int store_list(Store *s, const Entity *e, const char *clause, const char *const *args, size_t limit, void **ret_items,
               size_t *ret_n);
/* For tests: fn is told each line of the query plan (EXPLAIN QUERY PLAN's detail) of every
 * statement the store prepares from now on. */
typedef void (*StorePlanFn)(const char *sql, const char *detail, void *userdata);
void store_set_plan_observer(Store *s, StorePlanFn fn, void *userdata);

/* The first record that clause selects, into *ret: 1 when there is one, 0 when not (*ret is
 * then untouched). */
int store_get_first(Store *s, const Entity *e, const char *clause, const char *const *args, void *ret);
/* Number of rows matching clause. */
int store_count(Store *s, const char *table, const char *clause, const char *const *args, int64_t *ret);
/* The first column of the first row of sql, as an integer; -ENOENT when it has no row. */
int store_scalar(Store *s, const char *sql, const char *const *args, int64_t *ret);
/* Run a write (UPDATE, DELETE) that returns no row: *ret_changed says whether it changed any
 * (a guarded update that found its guard false changes none). */
int store_change(Store *s, const char *sql, const char *const *args, bool *ret_changed);

/* Rows of an entity's table by status, in one grouped query: counts[i] for statuses[i] (a
 * NULL-terminated list); a status no row has counts 0. */
int store_count_by_status(Store *s, const Entity *e, const char *const *statuses, int64_t *counts);

/* Bump the company's issue counter and return the new number and the company's prefix. Call
 * inside a transaction so the number is used by the same commit. */
/* The agent's sandbox uid: the one it has, or else the lowest of first..last that no agent
 * has and in_use() does not refuse (a uid of the host's passwd, say), which is then its
 * own for good. -ENOENT: no such agent; -EUSERS: the range is used up. */
int store_agent_sandbox_uid(Store *s, const char *agent_id, uint32_t first, uint32_t last, bool (*in_use)(uint32_t uid),
                            uint32_t *ret);
/* The working directories (adapterConfig.cwd) of every agent but agent_id, for its
 * sandbox to hide. */
int store_agent_workspaces_except(Store *s, const char *agent_id, char ***ret);

/* An agent's secret environment values, stored apart from its adapterConfig: names and
 * values alternate in *ret. */
int store_agent_secrets(Store *s, const char *agent_id, char ***ret);
int store_agent_secret_set(Store *s, const char *agent_id, const char *name, const char *value);
/* Forget the agent's secrets whose names are not in keep. */
int store_agent_secrets_retain(Store *s, const char *agent_id, const char *const *keep);

int store_issue_counter_next(Store *s, const char *company_id, int64_t *ret_number, char **ret_prefix);

/* For "_cleanup_(store_rollbackp) Store *tx = s;": rolls back unless TAKE_PTR'd after commit. */
static inline void store_rollbackp(Store **s) {
        if (*s)
                store_rollback(*s);
}
