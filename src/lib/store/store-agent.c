/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Statements no entity describes: a company's issue counter, an agent's sandbox uid, its
 * secrets, the workspaces of its other runs, counts by status.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/strv.h"
#include "basic/util.h"
#include "store/store-internal.h"

int store_issue_counter_next(Store *s, const char *company_id, int64_t *ret_number, char **ret_prefix) {
        _cleanup_reset_ sqlite3_stmt *stmt = NULL;
        _cleanup_free_ char *prefix = NULL;
        int64_t number;
        int r, rc;

        r = store_prepare(s,
                          "UPDATE companies SET issue_counter = issue_counter + 1 WHERE id = ?1 "
                          "RETURNING issue_counter, issue_prefix",
                          &stmt);
        if (r < 0)
                return r;
        if (sqlite3_bind_text(stmt, 1, company_id, -1, SQLITE_STATIC) != SQLITE_OK)
                return -ENOMEM;
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_error(s, rc, "issue counter");
        number = sqlite3_column_int64(stmt, 0);
        prefix = strdup((const char *) sqlite3_column_text(stmt, 1));
        if (!prefix)
                return -ENOMEM;
        /* RETURNING completes the UPDATE only when stepped to the end. */
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_DONE)
                return store_error(s, rc, "issue counter");
        *ret_number = number;
        *ret_prefix = TAKE_PTR(prefix);
        return 0;
}

int store_agent_sandbox_uid(Store *s, const char *agent_id, uint32_t first, uint32_t last, bool (*in_use)(uint32_t uid),
                            uint32_t *ret) {
        _cleanup_reset_ sqlite3_stmt *get = NULL, *taken = NULL, *set = NULL;
        int64_t candidate = first;
        int r, rc;

        r = store_prepare(s, "SELECT sandbox_uid FROM agents WHERE id = ?1", &get);
        if (r < 0)
                return r;
        if (sqlite3_bind_text(get, 1, agent_id, -1, SQLITE_STATIC) != SQLITE_OK)
                return -ENOMEM;
        rc = sqlite3_step(get);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_error(s, rc, "agents");
        if (sqlite3_column_type(get, 0) != SQLITE_NULL) {
                *ret = (uint32_t) sqlite3_column_int64(get, 0);
                return 0;
        }

        /* The first gap in the uids taken, in order. */
        r = store_prepare(s, "SELECT sandbox_uid FROM agents WHERE sandbox_uid BETWEEN ?1 AND ?2 ORDER BY sandbox_uid", &taken);
        if (r < 0)
                return r;
        if (sqlite3_bind_int64(taken, 1, first) != SQLITE_OK || sqlite3_bind_int64(taken, 2, last) != SQLITE_OK)
                return -ENOMEM;
        for (;;) {
                rc = sqlite3_step(taken);
                if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                        return store_error(s, rc, "agents");
                int64_t next = rc == SQLITE_ROW ? sqlite3_column_int64(taken, 0) : (int64_t) last + 1;
                while (candidate < next && in_use && in_use((uint32_t) candidate))
                        candidate++;
                if (candidate < next)
                        break;
                candidate = next + 1;
                if (rc == SQLITE_DONE || candidate > last)
                        return -EUSERS;
        }

        r = store_prepare(s, "UPDATE agents SET sandbox_uid = ?2 WHERE id = ?1 AND sandbox_uid IS NULL", &set);
        if (r < 0)
                return r;
        if (sqlite3_bind_text(set, 1, agent_id, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_int64(set, 2, candidate) != SQLITE_OK)
                return -ENOMEM;
        rc = sqlite3_step(set);
        if (rc != SQLITE_DONE)
                return store_error(s, rc, "agents");
        *ret = (uint32_t) candidate;
        return 0;
}

/* Step a statement whose rows are text columns, each row's columns appended to *ret. */
static int collect_text_rows(Store *s, sqlite3_stmt *stmt, int columns, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        int r, rc;

        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
                for (int i = 0; i < columns; i++)
                        if ((r = strv_push(&l, (const char *) sqlite3_column_text(stmt, i) ?: "")) < 0)
                                return r;
        if (rc != SQLITE_DONE)
                return store_error(s, rc, "rows");
        *ret = TAKE_PTR(l);
        return 0;
}

int store_agent_workspaces_except(Store *s, const char *agent_id, char ***ret) {
        _cleanup_reset_ sqlite3_stmt *stmt = NULL;
        int r;

        r = store_prepare(s,
                          "SELECT DISTINCT json_extract(adapter_config, '$.cwd') FROM agents "
                          "WHERE id != ?1 AND json_type(adapter_config, '$.cwd') = 'text'",
                          &stmt);
        if (r < 0)
                return r;
        if (sqlite3_bind_text(stmt, 1, agent_id, -1, SQLITE_STATIC) != SQLITE_OK)
                return -ENOMEM;
        return collect_text_rows(s, stmt, 1, ret);
}

int store_agent_secrets(Store *s, const char *agent_id, char ***ret) {
        _cleanup_reset_ sqlite3_stmt *stmt = NULL;
        int r;

        r = store_prepare(s, "SELECT name, value FROM agent_secrets WHERE agent_id = ?1 ORDER BY name", &stmt);
        if (r < 0)
                return r;
        if (sqlite3_bind_text(stmt, 1, agent_id, -1, SQLITE_STATIC) != SQLITE_OK)
                return -ENOMEM;
        return collect_text_rows(s, stmt, 2, ret);
}

int store_agent_secret_set(Store *s, const char *agent_id, const char *name, const char *value) {
        _cleanup_reset_ sqlite3_stmt *stmt = NULL;
        int r, rc;

        r = store_prepare(s,
                          "INSERT INTO agent_secrets (agent_id, name, value) VALUES (?1, ?2, ?3) "
                          "ON CONFLICT (agent_id, name) DO UPDATE SET value = excluded.value",
                          &stmt);
        if (r < 0)
                return r;
        if (sqlite3_bind_text(stmt, 1, agent_id, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(stmt, 3, value, -1, SQLITE_STATIC) != SQLITE_OK)
                return -ENOMEM;
        rc = sqlite3_step(stmt);
        return rc == SQLITE_DONE ? 0 : store_error(s, rc, "agent_secrets");
}

int store_agent_secrets_retain(Store *s, const char *agent_id, const char *const *keep) {
        _cleanup_strv_free_ char **have = NULL;
        int r;

        r = store_agent_secrets(s, agent_id, &have);
        if (r < 0)
                return r;
        for (size_t i = 0; have && have[i]; i += 2) {
                _cleanup_reset_ sqlite3_stmt *stmt = NULL;
                int rc;

                if (strv_contains(keep, have[i]))
                        continue;
                r = store_prepare(s, "DELETE FROM agent_secrets WHERE agent_id = ?1 AND name = ?2", &stmt);
                if (r < 0)
                        return r;
                if (sqlite3_bind_text(stmt, 1, agent_id, -1, SQLITE_STATIC) != SQLITE_OK ||
                    sqlite3_bind_text(stmt, 2, have[i], -1, SQLITE_STATIC) != SQLITE_OK)
                        return -ENOMEM;
                rc = sqlite3_step(stmt);
                if (rc != SQLITE_DONE)
                        return store_error(s, rc, "agent_secrets");
        }
        return 0;
}

int store_count_by_status(Store *s, const Entity *e, const char *const *statuses, int64_t *counts) {
        _cleanup_reset_ sqlite3_stmt *stmt = NULL;
        int r, rc;

        for (size_t i = 0; statuses[i]; i++)
                counts[i] = 0;
        /* Kept by triggers (migration 5). */
        r = store_prepare(s, "SELECT status, n FROM status_counts WHERE tbl = ?1", &stmt);
        if (r < 0)
                return r;
        if (sqlite3_bind_text(stmt, 1, e->table, -1, SQLITE_STATIC) != SQLITE_OK)
                return -ENOMEM;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                const char *status = (const char *) sqlite3_column_text(stmt, 0);
                for (size_t i = 0; status && statuses[i]; i++)
                        if (streq(statuses[i], status))
                                counts[i] = sqlite3_column_int64(stmt, 1);
        }
        return rc == SQLITE_DONE ? 0 : store_error(s, rc, e->table);
}
