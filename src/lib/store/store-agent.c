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
        _cleanup_reset_ StoreStmt *stmt = NULL;
        _cleanup_free_ char *prefix = NULL;
        int64_t number;
        int r;

        r = store_prepare(s,
                          "UPDATE companies SET issue_counter = issue_counter + 1 WHERE id = ?1 "
                          "RETURNING issue_counter, issue_prefix",
                          &stmt);
        if (r < 0)
                return r;
        r = stmt_bind_text(stmt, 1, company_id);
        if (r < 0)
                return r;
        r = stmt_row(stmt);
        if (r < 0)
                return r;
        number = stmt_column_int64(stmt, 0);
        prefix = strdup(stmt_column_text(stmt, 1));
        if (!prefix)
                return -ENOMEM;
        /* RETURNING completes the UPDATE only when stepped to the end. */
        r = stmt_done(stmt);
        if (r < 0)
                return r;
        *ret_number = number;
        *ret_prefix = TAKE_PTR(prefix);
        return 0;
}

int store_agent_sandbox_uid(Store *s, const char *agent_id, uint32_t first, uint32_t last, bool (*in_use)(uint32_t uid),
                            uint32_t *ret) {
        _cleanup_reset_ StoreStmt *get = NULL, *taken = NULL, *set = NULL;
        int64_t candidate = first;
        int r;

        r = store_prepare(s, "SELECT sandbox_uid FROM agents WHERE id = ?1", &get);
        if (r < 0)
                return r;
        r = stmt_bind_text(get, 1, agent_id);
        if (r < 0)
                return r;
        r = stmt_row(get);
        if (r < 0)
                return r;
        if (!stmt_column_null(get, 0)) {
                *ret = (uint32_t) stmt_column_int64(get, 0);
                return 0;
        }

        /* The first gap in the uids taken, in order. */
        r = store_prepare(s, "SELECT sandbox_uid FROM agents WHERE sandbox_uid BETWEEN ?1 AND ?2 ORDER BY sandbox_uid", &taken);
        if (r < 0)
                return r;
        if ((r = stmt_bind_int64(taken, 1, first)) < 0 || (r = stmt_bind_int64(taken, 2, last)) < 0)
                return r;
        for (;;) {
                int row = stmt_step(taken);
                if (row < 0)
                        return row;
                int64_t next = row > 0 ? stmt_column_int64(taken, 0) : (int64_t) last + 1;
                while (candidate < next && in_use && in_use((uint32_t) candidate))
                        candidate++;
                if (candidate < next)
                        break;
                candidate = next + 1;
                if (row == 0 || candidate > last)
                        return -EUSERS;
        }

        r = store_prepare(s, "UPDATE agents SET sandbox_uid = ?2 WHERE id = ?1 AND sandbox_uid IS NULL", &set);
        if (r < 0)
                return r;
        if ((r = stmt_bind_text(set, 1, agent_id)) < 0 || (r = stmt_bind_int64(set, 2, candidate)) < 0)
                return r;
        r = stmt_done(set);
        if (r < 0)
                return r;
        *ret = (uint32_t) candidate;
        return 0;
}

/* Step a statement whose rows are text columns, each row's columns appended to *ret. */
static int collect_text_rows(StoreStmt *stmt, int columns, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        int r, row;

        while ((row = stmt_step(stmt)) > 0)
                for (int i = 0; i < columns; i++)
                        if ((r = strv_push(&l, stmt_column_text(stmt, i) ?: "")) < 0)
                                return r;
        if (row < 0)
                return row;
        *ret = TAKE_PTR(l);
        return 0;
}

int store_agent_workspaces_except(Store *s, const char *agent_id, char ***ret) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        int r;

        r = store_prepare(s,
                          store_dialect(s,
                                        "SELECT DISTINCT json_extract(adapter_config, '$.cwd') FROM agents "
                                        "WHERE id != ?1 AND json_type(adapter_config, '$.cwd') = 'text'",
                                        "SELECT DISTINCT adapter_config::jsonb ->> 'cwd' FROM agents "
                                        "WHERE id != ?1 AND jsonb_typeof(adapter_config::jsonb -> 'cwd') = 'string'"),
                          &stmt);
        if (r < 0)
                return r;
        r = stmt_bind_text(stmt, 1, agent_id);
        if (r < 0)
                return r;
        return collect_text_rows(stmt, 1, ret);
}

int store_agent_secrets(Store *s, const char *agent_id, char ***ret) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        int r;

        r = store_prepare(s, "SELECT name, value FROM agent_secrets WHERE agent_id = ?1 ORDER BY name", &stmt);
        if (r < 0)
                return r;
        r = stmt_bind_text(stmt, 1, agent_id);
        if (r < 0)
                return r;
        return collect_text_rows(stmt, 2, ret);
}

int store_agent_secret_set(Store *s, const char *agent_id, const char *name, const char *value) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        int r;

        r = store_prepare(s,
                          "INSERT INTO agent_secrets (agent_id, name, value) VALUES (?1, ?2, ?3) "
                          "ON CONFLICT (agent_id, name) DO UPDATE SET value = excluded.value",
                          &stmt);
        if (r < 0)
                return r;
        if ((r = stmt_bind_text(stmt, 1, agent_id)) < 0 || (r = stmt_bind_text(stmt, 2, name)) < 0 ||
            (r = stmt_bind_text(stmt, 3, value)) < 0)
                return r;
        return stmt_done(stmt);
}

int store_agent_secrets_retain(Store *s, const char *agent_id, const char *const *keep) {
        _cleanup_strv_free_ char **have = NULL;
        int r;

        r = store_agent_secrets(s, agent_id, &have);
        if (r < 0)
                return r;
        for (size_t i = 0; have && have[i]; i += 2) {
                _cleanup_reset_ StoreStmt *stmt = NULL;

                if (strv_contains(keep, have[i]))
                        continue;
                r = store_prepare(s, "DELETE FROM agent_secrets WHERE agent_id = ?1 AND name = ?2", &stmt);
                if (r < 0)
                        return r;
                if ((r = stmt_bind_text(stmt, 1, agent_id)) < 0 || (r = stmt_bind_text(stmt, 2, have[i])) < 0)
                        return r;
                r = stmt_done(stmt);
                if (r < 0)
                        return r;
        }
        return 0;
}

int store_count_by_status(Store *s, const Entity *e, const char *const *statuses, int64_t *counts) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        int r, row;

        for (size_t i = 0; statuses[i]; i++)
                counts[i] = 0;
        /* Kept by triggers (migration 5). */
        r = store_prepare(s, "SELECT status, n FROM status_counts WHERE tbl = ?1", &stmt);
        if (r < 0)
                return r;
        r = stmt_bind_text(stmt, 1, e->table);
        if (r < 0)
                return r;
        while ((row = stmt_step(stmt)) > 0) {
                const char *status = stmt_column_text(stmt, 0);
                for (size_t i = 0; status && statuses[i]; i++)
                        if (streq(statuses[i], status))
                                counts[i] = stmt_column_int64(stmt, 1);
        }
        return row;
}
