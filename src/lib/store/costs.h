/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What runs cost and what agents and companies spent (corrald(8), BUDGETS): a cost event
 * per run, totals per agent, model and month, and each agent's and company's spend of the
 * month, all written by one function in the transaction that finalizes the run.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "store/model.h"
#include "store/store.h"

/* "YYYY-MM" and its NUL. */
#define COST_MONTH_MAX 8

typedef struct CostRecord {
        const char *run_id, *company_id, *agent_id;
        const char *month; /* the UTC month the run ended in */
        const char *provider; /* may be NULL */
        const char *model; /* "unknown" when the CLI named none */
        const char *billing_type; /* "api", "subscription_included" */
        const char *price_source; /* "cli", "price", "default", "subscription" */
        int64_t input_tokens, cached_input_tokens, output_tokens, cost_cents;
        const char *now;
} CostRecord;

/* Record c inside the caller's transaction: its event, the totals of its agent and model in
 * its month, and the spend of its agent and company in its month. A run recorded already:
 * -EEXIST, and nothing is written twice. */
int store_cost_record(Store *s, const CostRecord *c);

/* Whether the agent's totals of month have model, and how many models they have. */
int store_cost_model_seen(Store *s, const char *agent_id, const char *month, const char *model, bool *ret_seen,
                          int64_t *ret_models);

/* What the agent (or company) spent in month, and its budget; -ENOENT: no such row. */
int store_agent_spent(Store *s, const char *agent_id, const char *month, int64_t *ret_spent, int64_t *ret_budget);
int store_company_spent(Store *s, const char *company_id, const char *month, int64_t *ret_spent, int64_t *ret_budget);

/* A new month: the agents' and companies' spend of an earlier one reads 0 (what the
 * spend of a month is does not change: a spend of another month counts 0 anyway). */
int store_spent_roll(Store *s, const char *month);

/* A row of cost_totals, or a sum of them. */
typedef struct CostRow {
        char *company_id;
        char *agent_id;
        char *model; /* NULL in a sum over models */
        int64_t runs, input_tokens, cached_input_tokens, output_tokens, cost_cents;
} CostRow;

void cost_rows_free(CostRow *rows, size_t n);

/* The month's totals of a company (agent_id NULL) or of one agent, by agent and model. */
int store_costs_of_month(Store *s, const char *company_id, const char *agent_id, const char *month, CostRow **ret, size_t *ret_n);
/* Every total since the start, by company, agent and model (GET /metrics). */
int store_cost_totals(Store *s, CostRow **ret, size_t *ret_n);

/* A scope with a budget: its spend this month, for corral_budget_remaining_cents. */
typedef struct BudgetRow {
        bool agent; /* else the company */
        char *company_id;
        char *agent_id; /* NULL for a company */
        int64_t budget_cents, spent_cents;
} BudgetRow;

void budget_rows_free(BudgetRow *rows, size_t n);
int store_budgets(Store *s, const char *month, BudgetRow **ret, size_t *ret_n);

/* Agents paused by a budget, of one company or (NULL) of all. */
int store_agents_budget_paused(Store *s, const char *company_id, Agent **ret, size_t *ret_n);
/* Agents of the company that are not paused, terminated or awaiting approval: what a
 * company's budget pauses. */
int store_agents_to_pause_for_company(Store *s, const char *company_id, Agent **ret, size_t *ret_n);

/* Cancel the agent's wakes that wait without a run (queued or deferred), saying error. */
int store_wakeups_pending_cancel(Store *s, const char *agent_id, const char *error, const char *now, int64_t *ret_n);
