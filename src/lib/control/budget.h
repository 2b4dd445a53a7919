/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Budgets (corrald(8), BUDGETS; reference §3.2 step 6, §6.2, §6.7): what a run cost, in
 * cents, priced from what its CLI reported; the monthly budgets of agents and companies,
 * which gate wakes and, once spent, pause the agents they cover and cancel their runs; and
 * the caps that stop a run while it streams, before it spends past them.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "control/adapter.h"
#include "control/cli-output.h"
#include "control/control.h"
#include "store/costs.h"

/* The month spend counts in: the UTC month now, or what month-file says (tests). */
void budget_month(const Config *c, char ret[static COST_MONTH_MAX]);

/* What o's usage cost, into o->cost_cents, price_source, billing_type (o->priced): the
 * CLI's own cost where it reports one, else its tokens at the model's price. */
void budget_price(const Config *c, const AdapterBudget *ab, CliOutput *o);

/* A budget that is spent. */
typedef struct BudgetBlock {
        bool agent; /* the agent's own; else its company's */
        int64_t budget_cents, spent_cents;
} BudgetBlock;

/* 1 (and *ret) when the agent's or its company's budget is spent this month, 0 when not. */
int budget_blocked(Control *ctl, const Agent *agent, BudgetBlock *ret);

/* Inside the transaction that records a run's end, once its run and agent are written:
 * what the run cost (its usageJson) is recorded, and the agents whose budget (or company's)
 * it spent are paused, their pending wakes cancelled; their ids are appended to *paused,
 * for budget_cancel_paused() once that transaction committed. */
int budget_record_run(Control *ctl, const Run *run, const char *now, char ***paused);

/* The budget of the company or of one of its agents was set: the agents it leaves spent
 * are paused (their runs cancelled), those it frees resumed. */
int budget_changed(Control *ctl, const char *company_id);

/* The most a budget may be, in cents: ten billion dollars. */
#define BUDGET_CENTS_MAX INT64_C(1000000000000)

/* Cancel the active runs of agents a budget paused ("Cancelled due to budget pause"). */
void budget_cancel_paused(Control *ctl, char **paused);

/* Resume the agents a budget paused whose budgets are not spent any more, because a budget
 * was raised or a new month began: of one company, or (NULL) of all. Each gets an activity
 * row that says which. */
int budget_lift(Control *ctl, const char *company_id);

/* From the sweep: a new month starts every spend from 0 and lifts the pauses of the
 * budgets spent in the last one. */
int budget_sweep(Control *ctl);

/* Follow what a run of a coding CLI spends while it streams; if a cap or a budget limits
 * it, it is stopped (RUN_END_BUDGET) when it reaches one. Call once the run is tracked. */
int budget_watch(Control *ctl, const Agent *agent, const Run *run);

/* What a followed run has spent so far, as usageJson text (inputTokens, cachedInputTokens,
 * outputTokens, costCents, priceSource, model, "live": true) in *ret_json: 1. 0 (and NULL)
 * when the run is not followed: no coding CLI's, or not running here. */
int budget_live_usage(Control *ctl, const char *run_id, char **ret_json);

/* The supervisor's output watcher (supervisor_set_output_watcher()); userdata is ctl. */
void budget_on_output(Supervisor *s, const char *run_id, int stream, const char *data, size_t size, void *userdata);

/* The run ended: what stopped it, if a limit did (malloc'ed message and resultJson "budget"
 * object text, or NULL), and the run is not followed any more. */
void budget_run_ended(Control *ctl, const char *run_id, char **ret_message, char **ret_json);

/* This host fenced itself: its runs are killed unrecorded, their ends others' to record, so
 * what they spent counts here no more. Those still this host's when it has its row again
 * are watched anew by their recovery. */
void budget_forget_live(Control *ctl);

void budget_done(Control *ctl);
