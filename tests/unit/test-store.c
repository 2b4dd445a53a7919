/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The store: migrations from empty, refusal of a newer schema, every table
 * round-tripping every column, and the issue counter under concurrent writers.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "basic/log.h"
#include "store/costs.h"
#include "store/model.h"
#include "store/queries.h"
#include "store/store-internal.h"
#include "store/store.h"
#include "test-helpers.h"
#include "basic/time-util.h"

static char tmpdir[] = "/tmp/corral-test-store-XXXXXX";

static int setup_dir(void **state) {
        log_set_max_level(LOG_CRIT); /* the refusal test provokes an error on purpose */
        return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state) {
        _cleanup_free_ char *cmd = strprintf("rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

static void test_migrate_from_empty(void **state) {
        _cleanup_(store_freep) Store *s = NULL;
        int64_t n;

        assert_int_equal(store_open(":memory:", &s), 0);
        assert_int_equal(store_schema_version(s), store_schema_latest());
        for (size_t i = 0; all_entities[i]; i++)
                assert_int_equal(store_count(s, all_entities[i]->table, NULL, NULL, &n), 0);
        assert_int_equal(store_count(s, "issue_relations", NULL, NULL, &n), 0);
}

static void test_reopen_keeps_version(void **state) {
        _cleanup_free_ char *path = strprintf("%s/reopen.db", tmpdir);
        Store *s = NULL;

        assert_int_equal(store_open(path, &s), 0);
        s = store_free(s);
        assert_int_equal(store_open(path, &s), 0);
        assert_int_equal(store_schema_version(s), store_schema_latest());
        store_free(s);
}

/* user_version is the big-endian 32-bit number at byte 60 of an SQLite database file. */
static void set_user_version(const char *path, uint32_t v) {
        unsigned char b[4] = { v >> 24, v >> 16, v >> 8, v };
        int fd = open(path, O_WRONLY | O_CLOEXEC);

        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, b, 4, 60), 4);
        close(fd);
}

static void test_refuse_newer_schema(void **state) {
        _cleanup_free_ char *path = strprintf("%s/newer.db", tmpdir);
        Store *s = NULL;

        assert_int_equal(store_open(path, &s), 0);
        s = store_free(s);
        set_user_version(path, (uint32_t) store_schema_latest() + 1);
        assert_int_equal(store_open(path, &s), -EPROTONOSUPPORT);
        assert_null(s);
}

/* Migration 3 on a database with history: the runs and wakes already there are found by
 * their issue through the new indexes. The database is taken back to version 2 first. */
static void test_migrate_history_to_issue_columns(void **state) {
        _cleanup_free_ char *path = strprintf("%s/v2.db", tmpdir);
        _cleanup_(company_donep) Company c = {};
        _cleanup_(agent_donep) Agent a = {};
        _cleanup_(run_donep) Run r = {}, found = {};
        Store *s = NULL;
        sqlite3 *db;

        assert_int_equal(store_open(path, &s), 0);
        assert_int_equal(entity_init(&company_entity, &c), 0);
        assert_int_equal(record_stamp(&c.id, &c.created_at, &c.updated_at, NULL), 0);
        c.name = strdup("History");
        c.issue_prefix = strdup("HIST");
        assert_int_equal(store_insert(s, &company_entity, &c), 0);
        assert_int_equal(entity_init(&agent_entity, &a), 0);
        assert_int_equal(record_stamp(&a.id, &a.created_at, &a.updated_at, NULL), 0);
        a.company_id = strdup(c.id);
        a.name = strdup("old");
        assert_int_equal(store_insert(s, &agent_entity, &a), 0);
        assert_int_equal(entity_init(&run_entity, &r), 0);
        assert_int_equal(record_stamp(&r.id, &r.created_at, &r.updated_at, NULL), 0);
        r.company_id = strdup(c.id);
        r.agent_id = strdup(a.id);
        r.status = RUN_RUNNING;
        free(r.context_snapshot);
        r.context_snapshot = strdup("{\"issueId\":\"issue-7\",\"taskKey\":\"issue-7\"}");
        assert_int_equal(store_insert(s, &run_entity, &r), 0);
        s = store_free(s);

        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db,
                                      "DROP TABLE events; DROP TRIGGER runs_evented; DROP TRIGGER runs_status_evented;"
                                      "DROP TRIGGER agents_evented; DROP TRIGGER agents_status_evented;"
                                      "DROP TRIGGER issues_evented; DROP TRIGGER issues_changed_evented;"
                                      "DROP TRIGGER comments_evented; DROP TRIGGER wakeups_evented;"
                                      "DROP TRIGGER wakeups_status_evented;"
                                      "DROP INDEX runs_company_issue; DROP INDEX runs_agent_status_task;"
                                      "DROP INDEX runs_company_agent_created;"
                                      "DROP INDEX wakeups_company_issue; DROP INDEX wakeups_agent_status_issue;"
                                      "DROP INDEX issues_execution_run; DROP INDEX issues_company_number;"
                                      "DROP INDEX issues_status_created; DROP INDEX issue_comments_run;"
                                      "DROP INDEX wakeups_agent_requested;"
                                      "ALTER TABLE heartbeat_runs DROP COLUMN issue_id;"
                                      "ALTER TABLE heartbeat_runs DROP COLUMN task_key;"
                                      "ALTER TABLE agent_wakeup_requests DROP COLUMN issue_id;"
                                      "DROP TRIGGER companies_counted; DROP TRIGGER companies_uncounted;"
                                      "DROP TRIGGER agents_counted; DROP TRIGGER agents_uncounted;"
                                      "DROP TRIGGER issues_counted; DROP TRIGGER issues_uncounted;"
                                      "DROP TABLE row_counts; DROP TABLE status_counts;"
                                      "DROP TRIGGER heartbeat_runs_status_counted; DROP TRIGGER heartbeat_runs_status_uncounted;"
                                      "DROP TRIGGER heartbeat_runs_status_moved; DROP TRIGGER agents_status_counted;"
                                      "DROP TRIGGER agents_status_uncounted; DROP TRIGGER agents_status_moved;"
                                      "DROP TRIGGER issues_status_counted; DROP TRIGGER issues_status_uncounted;"
                                      "DROP TRIGGER issues_status_moved;"
                                      "DROP TABLE cost_events; DROP TABLE cost_totals;"
                                      "ALTER TABLE companies DROP COLUMN spent_month;"
                                      "ALTER TABLE agents DROP COLUMN budget_monthly_cents;"
                                      "ALTER TABLE agents DROP COLUMN spent_monthly_cents;"
                                      "ALTER TABLE agents DROP COLUMN spent_month;"
                                      "DROP TABLE workspaces; ALTER TABLE companies DROP COLUMN workspace;"
                                      "DROP TABLE hosts; DROP INDEX runs_host_running; DROP INDEX runs_host_lost;"
                                      "ALTER TABLE heartbeat_runs DROP COLUMN stop_requested;"
                                      "ALTER TABLE heartbeat_runs DROP COLUMN host_id; DROP TABLE log_reads;"
                                      "PRAGMA user_version = 2;",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);

        assert_int_equal(store_open(path, &s), 0);
        assert_int_equal(store_schema_version(s), store_schema_latest());
        /* Migration 4 counts the rows that were there, and its triggers the ones to come. */
        int64_t companies = -1;
        assert_int_equal(store_count_all(s, &company_entity, &companies), 0);
        assert_int_equal(companies, 1);
        assert_int_equal(store_run_active_for_issue(s, c.id, "issue-7", &found), 1);
        assert_string_equal(found.id, r.id);
        entity_done(&run_entity, &found);
        assert_int_equal(store_run_active_for_issue(s, c.id, "issue-8", &found), 0);
        /* Migration 6: agents without a budget, that spent nothing. */
        int64_t spent = -1, budget = -1;
        assert_int_equal(store_agent_spent(s, a.id, "2026-12", &spent, &budget), 0);
        assert_int_equal(spent, 0);
        assert_int_equal(budget, 0);
        store_free(s);
}

/* ---- round trips ---- */

typedef struct Fixture {
        char company[UUID_STRING_MAX], agent[UUID_STRING_MAX], wakeup[UUID_STRING_MAX], run[UUID_STRING_MAX],
                issue[UUID_STRING_MAX];
} Fixture;

/* A distinct value in every column, then references pointed at rows that exist. */
static void fill(const Entity *e, void *obj, int salt, const Fixture *fx) {
        char buf[128];

        assert_int_equal(entity_init(e, obj), 0);
        for (size_t i = 0; i < e->n_fields; i++) {
                const Field *f = &e->fields[i];
                void *p = field_ptr(f, obj);

                switch (f->type) {
                case FIELD_TEXT:
                        snprintf(buf, sizeof(buf), "%s-%d-\xc3\xa9\"'%%", f->column, salt);
                        assert_int_equal(free_and_strdup(p, buf), 0);
                        break;
                case FIELD_TIME:
                        assert_int_equal(iso_time_format(1764072000000000 + (int64_t) i * 1000 + salt * 1000000, buf), 0);
                        assert_int_equal(free_and_strdup(p, buf), 0);
                        break;
                case FIELD_JSON:
                        snprintf(buf, sizeof(buf), "{\"column\":\"%s\",\"n\":[%d,true,null]}", f->column, salt);
                        assert_int_equal(free_and_strdup(p, buf), 0);
                        break;
                case FIELD_INT:
                        if (!(f->flags & FIELD_KEY))
                                *(int64_t *) p = 1000000000000LL + (int64_t) i * 7 + salt;
                        break;
                case FIELD_BOOL:
                        *(bool *) p = true;
                        break;
                case FIELD_ENUM: {
                        int n = 0;
                        while (f->enum_names[n])
                                n++;
                        *(int *) p = (int) (i + (size_t) salt) % n;
                        break;
                }
                }
        }

        static const struct {
                const char *column;
                size_t offset;
        } refs[] = {
                { "company_id", offsetof(Fixture, company) },       { "agent_id", offsetof(Fixture, agent) },
                { "author_agent_id", offsetof(Fixture, agent) },    { "assignee_agent_id", offsetof(Fixture, agent) },
                { "wakeup_request_id", offsetof(Fixture, wakeup) }, { "run_id", offsetof(Fixture, run) },
                { "retry_of_run_id", offsetof(Fixture, run) },      { "checkout_run_id", offsetof(Fixture, run) },
                { "execution_run_id", offsetof(Fixture, run) },     { "created_by_run_id", offsetof(Fixture, run) },
                { "issue_id", offsetof(Fixture, issue) },           { "related_issue_id", offsetof(Fixture, issue) },
                { "parent_id", offsetof(Fixture, issue) },
        };
        for (size_t i = 0; i < ELEMENTSOF(refs); i++) {
                const Field *f = entity_field_by_column(e, refs[i].column);
                const char *target = (const char *) fx + refs[i].offset;
                if (!f || f->flags & FIELD_KEY)
                        continue;
                /* A reference to a row not made yet (a run retrying itself, an issue its own parent) is NULL. */
                assert_int_equal(free_and_strdup(field_ptr(f, obj), *target ? target : NULL), 0);
        }
        /* An issue has at most one assignee. */
        if (e == &issue_entity)
                assert_int_equal(free_and_strdup(&((Issue *) obj)->assignee_user_id, NULL), 0);
}

static void assert_same(const Entity *e, const void *a, const void *b) {
        for (size_t i = 0; i < e->n_fields; i++) {
                const Field *f = &e->fields[i];
                const void *pa = field_cptr(f, a), *pb = field_cptr(f, b);

                switch (f->type) {
                case FIELD_TEXT:
                case FIELD_TIME:
                case FIELD_JSON:
                        if (!streq_ptr(*(char *const *) pa, *(char *const *) pb))
                                fail_msg("%s.%s: '%s' != '%s'", e->table, f->column, strna(*(char *const *) pa),
                                         strna(*(char *const *) pb));
                        break;
                case FIELD_INT:
                        if (*(const int64_t *) pa != *(const int64_t *) pb)
                                fail_msg("%s.%s: %" PRIi64 " != %" PRIi64, e->table, f->column, *(const int64_t *) pa,
                                         *(const int64_t *) pb);
                        break;
                case FIELD_BOOL:
                        assert_int_equal(*(const bool *) pa, *(const bool *) pb);
                        break;
                case FIELD_ENUM:
                        if (*(const int *) pa != *(const int *) pb)
                                fail_msg("%s.%s: %d != %d", e->table, f->column, *(const int *) pa, *(const int *) pb);
                        break;
                }
        }
}

static const char *key_text(const Entity *e, const void *obj, char *buf, size_t size) {
        const Field *k = entity_key(e);
        if (k->type == FIELD_INT) {
                snprintf(buf, size, "%" PRIi64, *(const int64_t *) field_cptr(k, obj));
                return buf;
        }
        return *(char *const *) field_cptr(k, obj);
}

static void test_round_trip_every_table(void **state) {
        _cleanup_(store_freep) Store *s = NULL;
        Fixture fx = {};
        char keybuf[32];

        assert_int_equal(store_open(":memory:", &s), 0);

        /* Insert in reference order, remembering the ids later rows point at. */
        for (size_t t = 0; all_entities[t]; t++) {
                const Entity *e = all_entities[t];
                _cleanup_free_ void *obj = calloc(1, e->size), *back = calloc(1, e->size), *changed = calloc(1, e->size);
                char id[UUID_STRING_MAX];
                const Field *k = entity_key(e);

                fill(e, obj, 1, &fx);
                if (k->type == FIELD_TEXT) {
                        /* The runtime state's key is its agent's id. */
                        if (streq(k->column, "agent_id"))
                                strcpy(id, fx.agent);
                        else
                                assert_int_equal(uuid_new(id), 0);
                        assert_int_equal(free_and_strdup(field_ptr(k, obj), id), 0);
                } else
                        *(int64_t *) field_ptr(k, obj) = INT_NULL;
                if (store_insert(s, e, obj) < 0)
                        fail_msg("insert into %s failed", e->table);
                if (k->type == FIELD_INT)
                        assert_true(*(int64_t *) field_ptr(k, obj) > 0);

                /* Read back equals what went in. */
                assert_int_equal(store_get(s, e, key_text(e, obj, keybuf, sizeof(keybuf)), back), 0);
                assert_same(e, obj, back);

                /* Every non-key column changes and reads back changed; nullable ones go NULL. */
                fill(e, changed, 2, &fx);
                memcpy(field_ptr(k, changed), field_cptr(k, obj), k->type == FIELD_INT ? sizeof(int64_t) : 0);
                if (k->type == FIELD_TEXT)
                        assert_int_equal(free_and_strdup(field_ptr(k, changed), *(char **) field_ptr(k, obj)), 0);
                for (size_t i = 0; i < e->n_fields; i++) {
                        const Field *f = &e->fields[i];
                        if (f->type == FIELD_INT && (f->flags & FIELD_NULLABLE))
                                *(int64_t *) field_ptr(f, changed) = INT_NULL;
                        if (f->type == FIELD_ENUM && (f->flags & FIELD_NULLABLE))
                                *(int *) field_ptr(f, changed) = -1;
                }
                assert_int_equal(store_update(s, e, changed), 0);
                entity_done(e, back);
                assert_int_equal(store_get(s, e, key_text(e, obj, keybuf, sizeof(keybuf)), back), 0);
                assert_same(e, changed, back);

                /* And the list API sees the same row. */
                void *items;
                size_t n;
                assert_int_equal(store_list(s, e, NULL, NULL, 0, &items, &n), 0);
                assert_int_equal(n, 1);
                assert_same(e, changed, items);
                entity_array_free(e, items, n);

                if (e == &company_entity)
                        strcpy(fx.company, id);
                else if (e == &agent_entity)
                        strcpy(fx.agent, id);
                else if (e == &wakeup_entity)
                        strcpy(fx.wakeup, id);
                else if (e == &run_entity)
                        strcpy(fx.run, id);
                else if (e == &issue_entity)
                        strcpy(fx.issue, id);

                entity_done(e, obj);
                entity_done(e, back);
                entity_done(e, changed);
        }
}

/* Company "c1" ("One", prefix ONE), inserted; c keeps the record. */
static void insert_company_one(Store *s, Company *c) {
        assert_int_equal(entity_init(&company_entity, c), 0);
        c->id = strdup("c1");
        c->name = strdup("One");
        c->issue_prefix = strdup("ONE");
        c->created_at = strdup("2026-01-01T00:00:00.000Z");
        c->updated_at = strdup(c->created_at);
        assert_int_equal(store_insert(s, &company_entity, c), 0);
}

static void test_get_missing_and_constraints(void **state) {
        _cleanup_(store_freep) Store *s = NULL;
        _cleanup_(company_donep) Company c = {}, d = {}, back = {};
        _cleanup_(agent_donep) Agent a = {};

        assert_int_equal(store_open(":memory:", &s), 0);
        assert_int_equal(store_get(s, &company_entity, "00000000-0000-4000-8000-000000000000", &back), -ENOENT);
        assert_int_equal(store_delete(s, &company_entity, "nope"), -ENOENT);

        insert_company_one(s, &c);
        /* Same prefix: unique constraint. */
        assert_int_equal(entity_copy(&company_entity, &c, &d), 0);
        assert_int_equal(free_and_strdup(&d.id, "c2"), 0);
        assert_int_equal(store_insert(s, &company_entity, &d), -EEXIST);
        /* An agent of a company that does not exist: foreign key. */
        assert_int_equal(entity_init(&agent_entity, &a), 0);
        a.id = strdup("a1");
        a.company_id = strdup("missing");
        a.name = strdup("x");
        a.created_at = strdup(c.created_at);
        a.updated_at = strdup(c.created_at);
        assert_int_equal(store_insert(s, &agent_entity, &a), -EINVAL);
        /* Rolled-back work is gone. */
        assert_int_equal(store_begin(s), 0);
        assert_int_equal(store_delete(s, &company_entity, "c1"), 0);
        store_rollback(s);
        assert_int_equal(store_get(s, &company_entity, "c1", &back), 0);
}

/* ---- issue counter under concurrent writers ---- */

#define WRITERS 4
#define ISSUES_PER_WRITER 100

static int create_issue(Store *s, const char *company_id) {
        _cleanup_(issue_donep) Issue i = {};
        _cleanup_free_ char *prefix = NULL;
        char id[UUID_STRING_MAX], now[ISO_TIME_MAX];
        int r;

        if (entity_init(&issue_entity, &i) < 0 || uuid_new(id) < 0 || iso_time_now(now) < 0)
                return -ENOMEM;
        i.id = strdup(id);
        i.company_id = strdup(company_id);
        i.title = strdup("concurrent");
        i.created_at = strdup(now);
        i.updated_at = strdup(now);
        r = store_begin(s);
        if (r < 0)
                return r;
        r = store_issue_counter_next(s, company_id, &i.issue_number, &prefix);
        if (r >= 0) {
                i.identifier = strprintf("%s-%" PRIi64, prefix, i.issue_number);
                r = store_insert(s, &issue_entity, &i);
        }
        if (r >= 0)
                r = store_commit(s);
        if (r < 0)
                store_rollback(s);
        return r;
}

static void test_counter_concurrent(void **state) {
        _cleanup_free_ char *path = strprintf("%s/counter.db", tmpdir);
        _cleanup_(store_freep) Store *s = NULL;
        _cleanup_(company_donep) Company c = {};
        pid_t pids[WRITERS];
        int64_t n;

        assert_int_equal(store_open(path, &s), 0);
        assert_int_equal(entity_init(&company_entity, &c), 0);
        c.id = strdup("company");
        c.name = strdup("Counter");
        c.issue_prefix = strdup("CNT");
        c.created_at = strdup("2026-01-01T00:00:00.000Z");
        c.updated_at = strdup(c.created_at);
        assert_int_equal(store_insert(s, &company_entity, &c), 0);

        for (int w = 0; w < WRITERS; w++) {
                pids[w] = fork();
                assert_true(pids[w] >= 0);
                if (pids[w] == 0) {
                        Store *mine = NULL;
                        if (store_open(path, &mine) < 0)
                                _exit(10);
                        for (int k = 0; k < ISSUES_PER_WRITER; k++)
                                if (create_issue(mine, "company") < 0)
                                        _exit(11);
                        store_free(mine);
                        _exit(0);
                }
        }
        for (int w = 0; w < WRITERS; w++) {
                int status;
                assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
                assert_true(WIFEXITED(status));
                assert_int_equal(WEXITSTATUS(status), 0);
        }

        /* Every number used exactly once, no gaps, and the counter agrees. */
        assert_int_equal(store_count(s, "issues", NULL, NULL, &n), 0);
        assert_int_equal(n, WRITERS * ISSUES_PER_WRITER);
        assert_int_equal(store_count(s, "(SELECT DISTINCT issue_number FROM issues)", NULL, NULL, &n), 0);
        assert_int_equal(n, WRITERS * ISSUES_PER_WRITER);
        assert_int_equal(
                store_count(s, "issues", "WHERE issue_number BETWEEN 1 AND ?1", (const char *const[]){ "400", NULL }, &n), 0);
        assert_int_equal(n, WRITERS * ISSUES_PER_WRITER);
        entity_done(&company_entity, &c);
        assert_int_equal(store_get(s, &company_entity, "company", &c), 0);
        assert_int_equal(c.issue_counter, WRITERS * ISSUES_PER_WRITER);
}

/* A run's cost is recorded once, adds up per agent and company in its month, and a new
 * month starts from 0 while the last one's totals stay. */
static void test_costs(void **state) {
        _cleanup_(company_donep) Company c = {};
        _cleanup_(agent_donep) Agent a = {};
        Store *s = NULL;
        CostRow *rows;
        size_t n;
        int64_t spent, budget;
        bool seen;
        int64_t models;

        assert_int_equal(store_open(":memory:", &s), 0);
        assert_int_equal(entity_init(&company_entity, &c), 0);
        assert_int_equal(record_stamp(&c.id, &c.created_at, &c.updated_at, NULL), 0);
        c.name = strdup("c");
        c.issue_prefix = strdup("C");
        c.budget_monthly_cents = 100;
        assert_int_equal(store_insert(s, &company_entity, &c), 0);
        assert_int_equal(entity_init(&agent_entity, &a), 0);
        assert_int_equal(record_stamp(&a.id, &a.created_at, &a.updated_at, NULL), 0);
        a.company_id = strdup(c.id);
        a.name = strdup("a");
        a.budget_monthly_cents = 50;
        assert_int_equal(store_insert(s, &agent_entity, &a), 0);

        CostRecord rec = { .run_id = "r1",
                           .company_id = c.id,
                           .agent_id = a.id,
                           .month = "2026-12",
                           .model = "m",
                           .billing_type = "api",
                           .price_source = "price",
                           .input_tokens = 10,
                           .cached_input_tokens = 2,
                           .output_tokens = 3,
                           .cost_cents = 7,
                           .now = "2026-12-01T00:00:00.000Z" };
        assert_int_equal(store_cost_record(s, &rec), 0);
        assert_int_equal(store_cost_record(s, &rec), -EEXIST); /* the same run again */
        rec.run_id = "r2";
        rec.model = "n";
        assert_int_equal(store_cost_record(s, &rec), 0);
        assert_int_equal(store_agent_spent(s, a.id, "2026-12", &spent, &budget), 0);
        assert_int_equal(spent, 14);
        assert_int_equal(budget, 50);
        assert_int_equal(store_company_spent(s, c.id, "2026-12", &spent, &budget), 0);
        assert_int_equal(spent, 14);
        assert_int_equal(budget, 100);
        assert_int_equal(store_cost_model_seen(s, a.id, "2026-12", "n", &seen, &models), 0);
        assert_true(seen);
        assert_int_equal(models, 2);

        /* Another month: the spend starts again, the last month's is not changed. */
        assert_int_equal(store_agent_spent(s, a.id, "2027-01", &spent, &budget), 0);
        assert_int_equal(spent, 0);
        rec.run_id = "r3";
        rec.month = "2027-01";
        assert_int_equal(store_cost_record(s, &rec), 0);
        assert_int_equal(store_agent_spent(s, a.id, "2027-01", &spent, &budget), 0);
        assert_int_equal(spent, 7);
        assert_int_equal(store_costs_of_month(s, c.id, NULL, "2026-12", &rows, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(rows[0].model, "m");
        assert_int_equal(rows[0].cost_cents, 7);
        assert_int_equal(rows[1].runs, 1);
        cost_rows_free(rows, n);
        assert_int_equal(store_cost_totals(s, &rows, &n), 0);
        assert_int_equal(n, 2); /* by agent and model, over the months */
        assert_int_equal(rows[1].cost_cents, 14);
        cost_rows_free(rows, n);
        assert_int_equal(store_spent_roll(s, "2027-02"), 0);
        assert_int_equal(store_agent_spent(s, a.id, "2027-02", &spent, &budget), 0);
        assert_int_equal(spent, 0);
        store_free(s);
}

/* A narrow update writes its columns and nothing else of the row. */
static void test_update_columns(void **state) {
        static const char *const name_only[] = { "name", NULL };
        static const char *const name_and_prefix[] = { "name", "issue_prefix", NULL };
        _cleanup_(store_freep) Store *s = NULL;
        _cleanup_(company_donep) Company c = {}, back = {};

        assert_int_equal(store_open(":memory:", &s), 0);
        insert_company_one(s, &c);

        /* Only the key and the named columns are read from the struct. */
        Company partial = { .id = (char *) "c1", .name = (char *) "Renamed", .issue_prefix = (char *) "IGNORED" };
        assert_int_equal(store_update_columns(s, &company_entity, &partial, name_only), 0);
        assert_int_equal(store_get(s, &company_entity, "c1", &back), 0);
        assert_string_equal(back.name, "Renamed");
        assert_string_equal(back.issue_prefix, "ONE");
        assert_string_equal(back.created_at, "2026-01-01T00:00:00.000Z");
        entity_done(&company_entity, &back);

        /* Another list is another statement; the same list again reuses its own. */
        partial.issue_prefix = (char *) "TWO";
        assert_int_equal(store_update_columns(s, &company_entity, &partial, name_and_prefix), 0);
        partial.name = (char *) "Again";
        assert_int_equal(store_update_columns(s, &company_entity, &partial, name_only), 0);
        assert_int_equal(store_get(s, &company_entity, "c1", &back), 0);
        assert_string_equal(back.name, "Again");
        assert_string_equal(back.issue_prefix, "TWO");

        /* No such row. */
        partial.id = (char *) "c2";
        assert_int_equal(store_update_columns(s, &company_entity, &partial, name_only), -ENOENT);
}

/* A write that cannot have the write lock in time fails, and leaves the connection usable:
 * on PostgreSQL the timed-out lock is taken inside the BEGIN, and a failed transaction left
 * open there would refuse every later statement ("current transaction is aborted"). Runs
 * on the database CORRAL_TEST_DATABASE names (tests/unit/test-pg.sh), else on a file. */
static void test_write_lock_timeout(void **state) {
        _cleanup_free_ char *path = strprintf("%s/lock.db", tmpdir);
        const char *target = getenv("CORRAL_TEST_DATABASE") ?: path;
        _cleanup_(store_freep) Store *holder = NULL, *waiter = NULL;
        int64_t n;

        assert_int_equal(store_open(target, &holder), 0);
        assert_int_equal(store_open(target, &waiter), 0);
        store_set_busy_timeout(waiter, 100);
        assert_int_equal(store_begin(holder), 0);
        assert_int_equal(store_begin(waiter), -EAGAIN);
        for (int i = 0; i < 3; i++)
                assert_int_equal(store_count(waiter, "companies", NULL, NULL, &n), 0);
        assert_int_equal(store_begin(waiter), -EAGAIN);
        store_rollback(holder);
        assert_int_equal(store_begin(waiter), 0);
        assert_int_equal(store_count(waiter, "companies", NULL, NULL, &n), 0);
        assert_int_equal(store_commit(waiter), 0);
}

/* Both drivers have the same schema steps, so that either database is at the same version
 * after the same corral. */
static void test_drivers_same_steps(void **state) {
        assert_int_equal(store_driver_pg.n_migrations, store_driver_sqlite.n_migrations);
        for (size_t i = 0; i < store_driver_sqlite.n_migrations; i++)
                assert_int_equal(store_driver_pg.migrations[i].version, store_driver_sqlite.migrations[i].version);
        assert_int_equal(store_schema_latest(), store_driver_pg.migrations[store_driver_pg.n_migrations - 1].version);
}

static void test_target(void **state) {
        static const struct {
                const char *target, *shown;
        } cases[] = {
                { "/var/lib/corral/corral.db", "/var/lib/corral/corral.db" },
                { "postgresql:///corral?host=/run/postgresql", "postgresql:///corral?host=/run/postgresql" },
                { "postgresql://corral@db1:5432/corral", "postgresql://corral@db1:5432/corral" },
                { "postgresql://corral:s3cret@db1:5432/corral", "postgresql://corral@db1:5432/corral" },
                { "postgres://u:p%40ss@db1/corral?sslmode=require", "postgres://u@db1/corral?sslmode=require" },
                { "postgresql://db1/corral?user=u&password=s3cret&sslmode=require",
                  "postgresql://db1/corral?user=u&password=***&sslmode=require" },
                { "postgresql://db1/corral?password=s3cret", "postgresql://db1/corral?password=***" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *shown = store_target_redacted(cases[i].target);
                assert_string_equal(shown, cases[i].shown);
        }
        assert_true(store_target_is_pg("postgresql:///corral"));
        assert_true(store_target_is_pg("postgres://h/corral"));
        assert_false(store_target_is_pg("/var/lib/corral/postgresql://x"));
        assert_false(store_target_is_pg(":memory:"));
}

static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_from_empty),
        cmocka_unit_test(test_migrate_history_to_issue_columns),
        cmocka_unit_test(test_reopen_keeps_version),
        cmocka_unit_test(test_refuse_newer_schema),
        cmocka_unit_test(test_round_trip_every_table),
        cmocka_unit_test(test_get_missing_and_constraints),
        cmocka_unit_test(test_counter_concurrent),
        cmocka_unit_test(test_update_columns),
        cmocka_unit_test(test_costs),
        cmocka_unit_test(test_write_lock_timeout),
        cmocka_unit_test(test_drivers_same_steps),
        cmocka_unit_test(test_target),
};

int main(void) {
        cmocka_set_message_output(CM_OUTPUT_TAP);
        return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
