/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "store/costs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "store/store-internal.h"

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static int bind_text(StoreStmt *stmt, int i, const char *v) {
        return stmt_bind_text(stmt, i, v);
}

static int bind_int(StoreStmt *stmt, int i, int64_t v) {
        return stmt_bind_int64(stmt, i, v);
}

/* Run one statement of the record, its arguments bound by the caller. */
static int step_done(StoreStmt *stmt) {
        return stmt_done(stmt);
}

int store_cost_record(Store *s, const CostRecord *c) {
        _cleanup_reset_ StoreStmt *event = NULL, *totals = NULL, *agent = NULL, *company = NULL;
        int r;

        /* The event first: its primary key is the run, so a run is never counted twice. */
        r = store_prepare(s,
                          "INSERT INTO cost_events (run_id, company_id, agent_id, month, provider, model, billing_type, "
                          "price_source, input_tokens, cached_input_tokens, output_tokens, cost_cents, created_at) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT DO NOTHING",
                          &event);
        if (r < 0)
                return r;
        if (bind_text(event, 1, c->run_id) < 0 || bind_text(event, 2, c->company_id) < 0 ||
            bind_text(event, 3, c->agent_id) < 0 || bind_text(event, 4, c->month) < 0 || bind_text(event, 5, c->provider) < 0 ||
            bind_text(event, 6, c->model) < 0 || bind_text(event, 7, c->billing_type) < 0 ||
            bind_text(event, 8, c->price_source) < 0 || bind_int(event, 9, c->input_tokens) < 0 ||
            bind_int(event, 10, c->cached_input_tokens) < 0 || bind_int(event, 11, c->output_tokens) < 0 ||
            bind_int(event, 12, c->cost_cents) < 0 || bind_text(event, 13, c->now) < 0)
                return -ENOMEM;
        r = step_done(event);
        if (r < 0)
                return r;
        if (stmt_changes(event) == 0)
                return -EEXIST;

        r = store_prepare(s,
                          "INSERT INTO cost_totals (agent_id, month, model, company_id, runs, input_tokens, "
                          "cached_input_tokens, output_tokens, cost_cents) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8) "
                          "ON CONFLICT (agent_id, month, model) DO UPDATE SET runs = cost_totals.runs + 1, "
                          "input_tokens = cost_totals.input_tokens + ?5, "
                          "cached_input_tokens = cost_totals.cached_input_tokens + ?6, "
                          "output_tokens = cost_totals.output_tokens + ?7, cost_cents = cost_totals.cost_cents + ?8",
                          &totals);
        if (r < 0)
                return r;
        if (bind_text(totals, 1, c->agent_id) < 0 || bind_text(totals, 2, c->month) < 0 || bind_text(totals, 3, c->model) < 0 ||
            bind_text(totals, 4, c->company_id) < 0 || bind_int(totals, 5, c->input_tokens) < 0 ||
            bind_int(totals, 6, c->cached_input_tokens) < 0 || bind_int(totals, 7, c->output_tokens) < 0 ||
            bind_int(totals, 8, c->cost_cents) < 0)
                return -ENOMEM;
        r = step_done(totals);
        if (r < 0)
                return r;

        /* A spend of another month is replaced, not added to: the month turned. */
        r = store_prepare(s,
                          "UPDATE agents SET spent_monthly_cents = CASE WHEN spent_month IS NOT DISTINCT FROM ?2 "
                          "THEN spent_monthly_cents + ?3 ELSE ?3 END, spent_month = ?2 WHERE id = ?1",
                          &agent);
        if (r < 0)
                return r;
        if (bind_text(agent, 1, c->agent_id) < 0 || bind_text(agent, 2, c->month) < 0 || bind_int(agent, 3, c->cost_cents) < 0)
                return -ENOMEM;
        r = step_done(agent);
        if (r < 0)
                return r;
        r = store_prepare(s,
                          "UPDATE companies SET spent_monthly_cents = CASE WHEN spent_month IS NOT DISTINCT FROM ?2 "
                          "THEN spent_monthly_cents + ?3 ELSE ?3 END, spent_month = ?2 WHERE id = ?1",
                          &company);
        if (r < 0)
                return r;
        if (bind_text(company, 1, c->company_id) < 0 || bind_text(company, 2, c->month) < 0 ||
            bind_int(company, 3, c->cost_cents) < 0)
                return -ENOMEM;
        return step_done(company);
}

int store_cost_model_seen(Store *s, const char *agent_id, const char *month, const char *model, bool *ret_seen,
                          int64_t *ret_models) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        int r;

        r = store_prepare(s,
                          "SELECT count(*), coalesce(sum(CASE WHEN model = ?3 THEN 1 ELSE 0 END), 0) FROM cost_totals WHERE "
                          "agent_id = ?1 AND month = ?2",
                          &stmt);
        if (r < 0)
                return r;
        if (bind_text(stmt, 1, agent_id) < 0 || bind_text(stmt, 2, month) < 0 || bind_text(stmt, 3, model) < 0)
                return -ENOMEM;
        r = stmt_step(stmt);
        if (r < 0)
                return r;
        if (r == 0)
                return -EIO;
        *ret_models = stmt_column_int64(stmt, 0);
        *ret_seen = stmt_column_int64(stmt, 1) > 0;
        return 0;
}

static int spent(Store *s, const char *sql, const char *id, const char *month, int64_t *ret_spent, int64_t *ret_budget) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        int r;

        r = store_prepare(s, sql, &stmt);
        if (r < 0)
                return r;
        if (bind_text(stmt, 1, id) < 0 || bind_text(stmt, 2, month) < 0)
                return -ENOMEM;
        r = stmt_row(stmt);
        if (r < 0)
                return r;
        *ret_spent = stmt_column_int64(stmt, 0);
        *ret_budget = stmt_column_int64(stmt, 1);
        return 0;
}

int store_agent_spent(Store *s, const char *agent_id, const char *month, int64_t *ret_spent, int64_t *ret_budget) {
        return spent(
                s,
                "SELECT CASE WHEN spent_month IS NOT DISTINCT FROM ?2 THEN spent_monthly_cents ELSE 0 END, budget_monthly_cents "
                "FROM agents WHERE id = ?1",
                agent_id, month, ret_spent, ret_budget);
}

int store_company_spent(Store *s, const char *company_id, const char *month, int64_t *ret_spent, int64_t *ret_budget) {
        return spent(
                s,
                "SELECT CASE WHEN spent_month IS NOT DISTINCT FROM ?2 THEN spent_monthly_cents ELSE 0 END, budget_monthly_cents "
                "FROM companies WHERE id = ?1",
                company_id, month, ret_spent, ret_budget);
}

int store_spent_roll(Store *s, const char *month) {
        static const char *const sql[] = {
                "UPDATE agents SET spent_monthly_cents = 0, spent_month = ?1 WHERE spent_month IS NOT NULL AND spent_month <> ?1",
                "UPDATE companies SET spent_monthly_cents = 0, spent_month = ?1 "
                "WHERE spent_month IS NOT NULL AND spent_month <> ?1",
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(sql); i++) {
                _cleanup_reset_ StoreStmt *stmt = NULL;
                r = store_prepare(s, sql[i], &stmt);
                if (r < 0)
                        return r;
                if (bind_text(stmt, 1, month) < 0)
                        return -ENOMEM;
                r = stmt_done(stmt);
                if (r < 0)
                        return r;
        }
        return 0;
}

void cost_rows_free(CostRow *rows, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(rows[i].company_id);
                free(rows[i].agent_id);
                free(rows[i].model);
        }
        free(rows);
}

static int dup_column(StoreStmt *stmt, int i, char **ret) {
        const char *t = stmt_column_text(stmt, i);

        if (!t) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(t);
        return *ret ? 0 : -ENOMEM;
}

/* Rows of columns company_id, agent_id, model, runs, input, cached, output, cents. */
static int cost_rows(Store *s, StoreStmt *stmt, CostRow **ret, size_t *ret_n) {
        CostRow *rows = NULL;
        size_t n = 0, allocated = 0;
        int more;

        while ((more = stmt_step(stmt)) > 0) {
                if (n == allocated) {
                        size_t a = MAX(allocated * 2, (size_t) 16);
                        CostRow *t = reallocarray(rows, a, sizeof(CostRow));
                        if (!t) {
                                cost_rows_free(rows, n);
                                return -ENOMEM;
                        }
                        rows = t;
                        allocated = a;
                }
                CostRow *row = &rows[n++];
                *row = (CostRow){
                        .runs = stmt_column_int64(stmt, 3),
                        .input_tokens = stmt_column_int64(stmt, 4),
                        .cached_input_tokens = stmt_column_int64(stmt, 5),
                        .output_tokens = stmt_column_int64(stmt, 6),
                        .cost_cents = stmt_column_int64(stmt, 7),
                };
                if (dup_column(stmt, 0, &row->company_id) < 0 || dup_column(stmt, 1, &row->agent_id) < 0 ||
                    dup_column(stmt, 2, &row->model) < 0) {
                        cost_rows_free(rows, n);
                        return -ENOMEM;
                }
        }
        if (more < 0) {
                cost_rows_free(rows, n);
                return more;
        }
        *ret = rows;
        *ret_n = n;
        return 0;
}

int store_costs_of_month(Store *s, const char *company_id, const char *agent_id, const char *month, CostRow **ret,
                         size_t *ret_n) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        int r;

        r = store_prepare(s,
                          agent_id ? "SELECT company_id, agent_id, model, runs, input_tokens, cached_input_tokens, "
                                     "output_tokens, cost_cents FROM cost_totals WHERE agent_id = ?3 AND month = ?2 "
                                     "AND company_id = ?1 ORDER BY model"
                                   : "SELECT company_id, agent_id, model, runs, input_tokens, cached_input_tokens, "
                                     "output_tokens, cost_cents FROM cost_totals WHERE company_id = ?1 AND month = ?2 "
                                     "ORDER BY agent_id, model",
                          &stmt);
        if (r < 0)
                return r;
        if (bind_text(stmt, 1, company_id) < 0 || bind_text(stmt, 2, month) < 0 || (agent_id && bind_text(stmt, 3, agent_id) < 0))
                return -ENOMEM;
        return cost_rows(s, stmt, ret, ret_n);
}

int store_cost_totals(Store *s, CostRow **ret, size_t *ret_n) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        int r;

        /* A row per agent, model and month: it grows by months, not by runs. */
        r = store_prepare(s,
                          "SELECT company_id, agent_id, model, sum(runs), sum(input_tokens), sum(cached_input_tokens), "
                          "sum(output_tokens), sum(cost_cents) FROM cost_totals GROUP BY company_id, agent_id, model "
                          "ORDER BY company_id, agent_id, model",
                          &stmt);
        return r < 0 ? r : cost_rows(s, stmt, ret, ret_n);
}

void budget_rows_free(BudgetRow *rows, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(rows[i].company_id);
                free(rows[i].agent_id);
        }
        free(rows);
}

int store_budgets(Store *s, const char *month, BudgetRow **ret, size_t *ret_n) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        BudgetRow *rows = NULL;
        size_t n = 0, allocated = 0;
        int r, more;

        r = store_prepare(s,
                          "SELECT 0, id, NULL, budget_monthly_cents, CASE WHEN spent_month IS NOT DISTINCT FROM ?1 THEN "
                          "spent_monthly_cents "
                          "ELSE 0 END FROM companies WHERE budget_monthly_cents > 0 UNION ALL "
                          "SELECT 1, company_id, id, budget_monthly_cents, CASE WHEN spent_month IS NOT DISTINCT FROM ?1 THEN "
                          "spent_monthly_cents ELSE 0 END FROM agents WHERE budget_monthly_cents > 0 ORDER BY 2, 3",
                          &stmt);
        if (r < 0)
                return r;
        if (bind_text(stmt, 1, month) < 0)
                return -ENOMEM;
        while ((more = stmt_step(stmt)) > 0) {
                if (n == allocated) {
                        size_t a = MAX(allocated * 2, (size_t) 16);
                        BudgetRow *t = reallocarray(rows, a, sizeof(BudgetRow));
                        if (!t) {
                                budget_rows_free(rows, n);
                                return -ENOMEM;
                        }
                        rows = t;
                        allocated = a;
                }
                BudgetRow *row = &rows[n++];
                *row = (BudgetRow){
                        .agent = (int) stmt_column_int64(stmt, 0),
                        .budget_cents = stmt_column_int64(stmt, 3),
                        .spent_cents = stmt_column_int64(stmt, 4),
                };
                if (dup_column(stmt, 1, &row->company_id) < 0 || dup_column(stmt, 2, &row->agent_id) < 0) {
                        budget_rows_free(rows, n);
                        return -ENOMEM;
                }
        }
        if (more < 0) {
                budget_rows_free(rows, n);
                return more;
        }
        *ret = rows;
        *ret_n = n;
        return 0;
}

int store_agents_budget_paused(Store *s, const char *company_id, Agent **ret, size_t *ret_n) {
        if (company_id)
                return store_list(s, &agent_entity, "WHERE company_id = ?1 AND status = 'paused' AND pause_reason = 'budget'",
                                  ARGS(company_id), 0, (void **) ret, ret_n);
        return store_list(s, &agent_entity, "WHERE status = 'paused' AND pause_reason = 'budget'", NULL, 0, (void **) ret, ret_n);
}

int store_agents_to_pause_for_company(Store *s, const char *company_id, Agent **ret, size_t *ret_n) {
        return store_list(s, &agent_entity,
                          "WHERE company_id = ?1 AND status NOT IN ('paused', 'terminated', 'pending_approval')",
                          ARGS(company_id), 0, (void **) ret, ret_n);
}

int store_wakeups_pending_cancel(Store *s, const char *agent_id, const char *error, const char *now, int64_t *ret_n) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        int r;

        r = store_prepare(
                s,
                "UPDATE agent_wakeup_requests SET status = 'cancelled', error = ?2, finished_at = ?3, "
                "updated_at = ?3 WHERE agent_id = ?1 AND status IN ('queued', 'deferred_issue_execution') AND run_id IS NULL",
                &stmt);
        if (r < 0)
                return r;
        if (bind_text(stmt, 1, agent_id) < 0 || bind_text(stmt, 2, error) < 0 || bind_text(stmt, 3, now) < 0)
                return -ENOMEM;
        r = stmt_done(stmt);
        if (r < 0)
                return r;
        if (ret_n)
                *ret_n = stmt_changes(stmt);
        return 0;
}
