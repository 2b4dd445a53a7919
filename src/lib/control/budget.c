/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Budgets: pricing runs, recording their cost, gating wakes, pausing and lifting, caps. */
#include "control/budget.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "basic/fd-util.h"
#include "basic/hashmap.h"
#include "basic/log.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "basic/time-util.h"
#include "basic/utf8.h"
#include "basic/util.h"
#include "control/activity.h"
#include "control/agent-session.h"
#include "control/claim-pump.h"
#include "control/finalize.h"
#include "control/scheduler.h"
#include "store/jsonmap.h"
#include "store/queries.h"

#define BUDGET_PAUSE_MESSAGE "Cancelled due to budget pause"

static bool month_valid(const char *m) {
        return strlen(m) == 7 && isdigit((unsigned char) m[0]) && isdigit((unsigned char) m[1]) &&
                isdigit((unsigned char) m[2]) && isdigit((unsigned char) m[3]) && m[4] == '-' &&
                ((m[5] == '0' && m[6] >= '1' && m[6] <= '9') || (m[5] == '1' && m[6] >= '0' && m[6] <= '2'));
}

void budget_month(const Config *c, char ret[static COST_MONTH_MAX]) {
        time_t t = time(NULL);
        struct tm tm;

        if (c->month_file) {
                _cleanup_free_ char *text = NULL;
                if (read_full_file(c->month_file, 64, &text, NULL) >= 0) {
                        char *m = strstrip(text);
                        if (month_valid(m)) {
                                memcpy(ret, m, COST_MONTH_MAX);
                                return;
                        }
                }
                log_warning("month-file %s does not hold a month (YYYY-MM): using the clock's.", c->month_file);
        }
        if (!gmtime_r(&t, &tm) || strftime(ret, COST_MONTH_MAX, "%Y-%m", &tm) != 7)
                memcpy(ret, "1970-01", COST_MONTH_MAX);
}

/* Input tokens sent anew: the CLI's inputTokens, less the cached ones where it counts them
 * in (adapter.h, input_includes_cached). */
static int64_t uncached_input(AdapterType type, int64_t input, int64_t cached) {
        return adapter_ops(type)->input_includes_cached ? input - MIN(input, cached) : input;
}

/* Every token of a run, once: what maxTokensPerRun counts. */
static int64_t total_tokens(AdapterType type, int64_t input, int64_t cached, int64_t output) {
        return cli_count_add(cli_count_add(uncached_input(type, input, cached), cached), output);
}

typedef struct Spend {
        int64_t input, cached, output, tokens, cents;
        const char *source;
} Spend;

/* Cents of a usage: the CLI's cost when it reports one, else the model's price. */
static void price(const Config *c, const AdapterBudget *ab, AdapterType type, const char *model, bool has_cost, double cost_usd,
                  Spend *sp) {
        sp->tokens = total_tokens(type, sp->input, sp->cached, sp->output);
        if (ab->subscription) {
                sp->cents = 0;
                sp->source = "subscription";
                return;
        }
        if (has_cost) {
                /* At most CLI_COST_USD_MAX (cli-output.h): its cents fit. */
                sp->cents = llround(cost_usd * 100.0);
                sp->source = "cli";
                return;
        }
        bool fallback;
        const Price *p = config_price(c, model, &fallback);
        double usd = ((double) uncached_input(type, sp->input, sp->cached) * p->input + (double) sp->cached * p->cached_input +
                      (double) sp->output * p->output) /
                1e6;
        sp->cents = llround(MIN(usd, CLI_COST_USD_MAX) * 100.0);
        sp->source = fallback ? "default" : "price";
}

void budget_price(const Config *c, const AdapterBudget *ab, CliOutput *o) {
        Spend sp = { .input = o->input_tokens, .cached = o->cached_input_tokens, .output = o->output_tokens };

        price(c, ab, o->type, o->model, o->has_cost, o->cost_usd, &sp);
        o->priced = true;
        o->cost_cents = sp.cents;
        o->price_source = sp.source;
        o->billing_type = ab->subscription ? "subscription_included" : "api";
}

/* What the live runs of an agent, or of a company, have spent so far all together: a budget
 * is spent by the runs that stream at once, not by each alone. Only this host's runs: each
 * host sums its own. */
typedef struct LiveTotal {
        char *id; /* an agent's or a company's: both are UUIDs, which never meet */
        int64_t cents;
        unsigned runs;
} LiveTotal;

static int64_t live_total(Control *ctl, const char *id) {
        const LiveTotal *t = ctl->live_totals ? hashmap_get(ctl->live_totals, id) : NULL;

        return t ? t->cents : 0;
}

/* One more run in the total of id, made if it is the first: *ret. */
static int total_join(Control *ctl, const char *id, LiveTotal **ret) {
        LiveTotal *t = hashmap_get(ctl->live_totals, id);
        int r;

        if (!t) {
                t = calloc(1, sizeof(LiveTotal));
                if (!t)
                        return -ENOMEM;
                t->id = strdup(id);
                r = t->id ? hashmap_put(ctl->live_totals, t->id, t) : -ENOMEM;
                if (r < 0) {
                        free(t->id);
                        free(t);
                        return r;
                }
        }
        t->runs++;
        *ret = t;
        return 0;
}

/* A run that counted cents in t leaves it; the last one frees it. */
static void total_leave(Control *ctl, LiveTotal *t, int64_t cents) {
        t->cents -= cents;
        if (--t->runs > 0)
                return;
        (void) hashmap_remove(ctl->live_totals, t->id);
        free(t->id);
        free(t);
}

int budget_blocked(Control *ctl, const Agent *agent, BudgetBlock *ret) {
        char month[COST_MONTH_MAX];
        int64_t spent, budget, live;
        int r;

        /* What the live runs have spent so far is spent too: a run started now would only be
         * stopped at its first response. */
        budget_month(ctl->config, month);
        r = store_company_spent(ctl->store, agent->company_id, month, &spent, &budget);
        if (r < 0 && r != -ENOENT)
                return r;
        live = live_total(ctl, agent->company_id);
        if (r >= 0 && budget > 0 && spent + live >= budget) {
                *ret = (BudgetBlock){ .agent = false, .budget_cents = budget, .spent_cents = spent + live };
                return 1;
        }
        r = store_agent_spent(ctl->store, agent->id, month, &spent, &budget);
        if (r < 0 && r != -ENOENT)
                return r;
        live = live_total(ctl, agent->id);
        if (r >= 0 && budget > 0 && spent + live >= budget) {
                *ret = (BudgetBlock){ .agent = true, .budget_cents = budget, .spent_cents = spent + live };
                return 1;
        }
        return 0;
}

/* Pause one agent for a spent budget, its pending wakes cancelled, in the caller's
 * transaction; its id is appended to *paused. An agent paused or terminated already is
 * left as it is. */
static int pause_agent(Control *ctl, const char *agent_id, const BudgetBlock *b, const char *now, char ***paused) {
        _cleanup_(agent_donep) Agent a = {};
        int64_t cancelled;
        int r;

        r = store_get(ctl->store, &agent_entity, agent_id, &a);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (a.status == AGENT_PAUSED || a.status == AGENT_TERMINATED)
                return 0;
        agent_set_status(&a, AGENT_PAUSED);
        a.pause_reason = PAUSE_BUDGET;
        if (free_and_strdup(&a.paused_at, now) < 0 || free_and_strdup(&a.updated_at, now) < 0)
                return -ENOMEM;
        r = store_update(ctl->store, &agent_entity, &a);
        if (r < 0)
                return r;
        r = store_wakeups_pending_cancel(ctl->store, a.id, BUDGET_PAUSE_MESSAGE, now, &cancelled);
        if (r < 0)
                return r;
        cJSON *d = cJSON_CreateObject();
        if (!d || !cJSON_AddStringToObject(d, "reason", "budget") ||
            !cJSON_AddStringToObject(d, "scope", b->agent ? "agent" : "company") ||
            !cJSON_AddNumberToObject(d, "budgetMonthlyCents", (double) b->budget_cents) ||
            !cJSON_AddNumberToObject(d, "spentMonthlyCents", (double) b->spent_cents) ||
            !cJSON_AddNumberToObject(d, "wakesCancelled", (double) cancelled)) {
                cJSON_Delete(d);
                return -ENOMEM;
        }
        r = activity_record(ctl->store, a.company_id, ACTOR_SYSTEM, "budget", "agent.paused", "agent", a.id, a.id, NULL, d);
        if (r < 0)
                return r;
        log_notice("Agent %s paused: its %s budget of %" PRIi64 " cents is spent (%" PRIi64 " cents this month).", a.id,
                   b->agent ? "own" : "company's", b->budget_cents, b->spent_cents);
        return strv_push(paused, a.id);
}

/* Pause what the spent budgets of the company and of agent (NULL: every agent) cover. */
static int pause_spent(Control *ctl, const char *company_id, const char *agent_id, const char *now, char ***paused) {
        char month[COST_MONTH_MAX];
        int64_t spent, budget;
        Agent *agents;
        size_t n;
        int r;

        budget_month(ctl->config, month);
        r = store_company_spent(ctl->store, company_id, month, &spent, &budget);
        if (r < 0)
                return r == -ENOENT ? 0 : r;
        if (budget > 0 && spent >= budget) {
                BudgetBlock b = { .agent = false, .budget_cents = budget, .spent_cents = spent };
                r = store_agents_to_pause_for_company(ctl->store, company_id, &agents, &n);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n && r >= 0; i++)
                        r = pause_agent(ctl, agents[i].id, &b, now, paused);
                entity_array_free(&agent_entity, agents, n);
                return r;
        }
        if (agent_id) {
                r = store_agent_spent(ctl->store, agent_id, month, &spent, &budget);
                if (r < 0)
                        return r == -ENOENT ? 0 : r;
                if (budget > 0 && spent >= budget) {
                        BudgetBlock b = { .agent = true, .budget_cents = budget, .spent_cents = spent };
                        return pause_agent(ctl, agent_id, &b, now, paused);
                }
                return 0;
        }
        r = store_agents_to_pause_for_company(ctl->store, company_id, &agents, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++) {
                int64_t agent_spent, agent_budget;
                r = store_agent_spent(ctl->store, agents[i].id, month, &agent_spent, &agent_budget);
                if (r >= 0 && agent_budget > 0 && agent_spent >= agent_budget) {
                        BudgetBlock b = { .agent = true, .budget_cents = agent_budget, .spent_cents = agent_spent };
                        r = pause_agent(ctl, agents[i].id, &b, now, paused);
                }
        }
        entity_array_free(&agent_entity, agents, n);
        return r;
}

/* The model a cost is recorded under. The name is the CLI's, and the CLI runs what a model
 * chose: a priced model is itself, any other one of the first BUDGET_UNPRICED_MODELS_MAX
 * an agent used in the month, and past those "other", so that a CLI naming a new model for
 * every run grows neither the totals nor the metrics by a row a run. */
#define BUDGET_UNPRICED_MODELS_MAX 16

static int bounded_model(Control *ctl, const CostRecord *c, char **ret) {
        bool fallback, seen;
        int64_t models;
        size_t n = utf8_complete_prefix(c->model, strnlen(c->model, CONFIG_MODEL_NAME_MAX));
        int r;

        *ret = strndup(c->model, n);
        if (!*ret)
                return -ENOMEM;
        (void) config_price(ctl->config, *ret, &fallback);
        if (!fallback)
                return 0;
        r = store_cost_model_seen(ctl->store, c->agent_id, c->month, *ret, &seen, &models);
        if (r < 0)
                return r;
        if (!seen && models >= BUDGET_UNPRICED_MODELS_MAX)
                return free_and_strdup(ret, "other");
        return 0;
}

int budget_record_run(Control *ctl, const Run *run, const char *now, char ***paused) {
        _cleanup_json_ cJSON *u = cJSON_Parse(run->usage_json ?: "null");
        _cleanup_free_ char *model = NULL;
        char month[COST_MONTH_MAX];
        int r;

        if (!cJSON_IsObject(u) || !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(u, "costCents")))
                return 0; /* not a coding CLI's run, or nothing priced */
        CostRecord c = {
                .run_id = run->id,
                .company_id = run->company_id,
                .agent_id = run->agent_id,
                .month = month,
                .provider = json_string_member(u, "provider"),
                .model = json_string_member(u, "model") ?: "unknown",
                .billing_type = json_string_member(u, "billingType") ?: "api",
                .price_source = json_string_member(u, "priceSource") ?: "cli",
                .input_tokens = json_count_member(u, "inputTokens"),
                .cached_input_tokens = json_count_member(u, "cachedInputTokens"),
                .output_tokens = json_count_member(u, "outputTokens"),
                .cost_cents = json_count_member(u, "costCents"),
                .now = now,
        };
        /* Reference §6.7: an event when the run cost anything or used any tokens. */
        if (c.cost_cents == 0 && c.input_tokens == 0 && c.cached_input_tokens == 0 && c.output_tokens == 0)
                return 0;
        budget_month(ctl->config, month);
        r = bounded_model(ctl, &c, &model);
        if (r < 0)
                return r;
        c.model = model;
        r = store_cost_record(ctl->store, &c);
        if (r == -EEXIST)
                return 0;
        if (r < 0)
                return r;
        if (streq(c.price_source, "default")) {
                _cleanup_free_ char *m = strprintf("model '%s' has no price in corrald.conf: its %" PRIi64 " cents are at "
                                                   "price-default",
                                                   c.model, c.cost_cents);
                if (!m)
                        return -ENOMEM;
                r = store_run_event_append(ctl->store, run->id, "budget.unpriced_model", LEVEL_WARN, m, NULL);
                if (r < 0)
                        return r;
        }
        return c.cost_cents > 0 ? pause_spent(ctl, run->company_id, run->agent_id, now, paused) : 0;
}

void budget_cancel_paused(Control *ctl, char **paused) {
        STRV_FOREACH(a, paused)
        (void) finalize_cancel_agent_runs(ctl, *a, RUN_END_BUDGET_PAUSED);
}

static int apply_spent(Control *ctl, const char *company_id) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_strv_free_ char **paused = NULL;
        char now[ISO_TIME_MAX];
        int r;

        r = iso_time_now(now);
        if (r < 0)
                return r;
        r = store_begin(ctl->store);
        if (r < 0)
                return r;
        tx = ctl->store;
        r = pause_spent(ctl, company_id, NULL, now, &paused);
        if (r < 0)
                return r;
        r = store_commit(ctl->store);
        if (r < 0)
                return r;
        tx = NULL;
        budget_cancel_paused(ctl, paused);
        return 0;
}

int budget_lift(Control *ctl, const char *company_id) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_strv_free_ char **resumed = NULL;
        char now[ISO_TIME_MAX], month[COST_MONTH_MAX];
        Agent *agents;
        size_t n;
        int r;

        r = iso_time_now(now);
        if (r < 0)
                return r;
        budget_month(ctl->config, month);
        r = store_begin(ctl->store);
        if (r < 0)
                return r;
        tx = ctl->store;
        r = store_agents_budget_paused(ctl->store, company_id, &agents, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++) {
                Agent *a = &agents[i];
                BudgetBlock b;

                r = budget_blocked(ctl, a, &b);
                if (r != 0)
                        continue;
                /* Paused in an earlier month: the month turned; else a budget was raised. */
                bool new_month = !a->paused_at || strncmp(a->paused_at, month, 7) != 0;
                agent_set_status(a, AGENT_IDLE);
                a->pause_reason = -1;
                if (free_and_strdup(&a->paused_at, NULL) < 0 || free_and_strdup(&a->updated_at, now) < 0) {
                        r = -ENOMEM;
                        break;
                }
                r = store_update(ctl->store, &agent_entity, a);
                if (r < 0)
                        break;
                cJSON *d = cJSON_CreateObject();
                if (!d || !cJSON_AddStringToObject(d, "reason", new_month ? "budget_new_month" : "budget_raised") ||
                    !cJSON_AddStringToObject(d, "month", month)) {
                        cJSON_Delete(d);
                        r = -ENOMEM;
                        break;
                }
                r = activity_record(ctl->store, a->company_id, ACTOR_SYSTEM, "budget", "agent.resumed", "agent", a->id, a->id,
                                    NULL, d);
                if (r >= 0)
                        r = strv_push(&resumed, a->id);
                log_notice("Agent %s resumed: %s.", a->id,
                           new_month ? "a new month began, its budget is not spent" : "its budget was raised");
        }
        entity_array_free(&agent_entity, agents, n);
        if (r < 0)
                return r;
        r = store_commit(ctl->store);
        if (r < 0)
                return r;
        tx = NULL;
        STRV_FOREACH(a, resumed)
        claim_start_next(ctl, *a);
        if (resumed)
                scheduler_reschedule(ctl->scheduler);
        return (int) strv_length(resumed);
}

int budget_sweep(Control *ctl) {
        char month[COST_MONTH_MAX];
        int r;

        budget_month(ctl->config, month);
        r = store_spent_roll(ctl->store, month);
        if (r < 0)
                return r;
        r = budget_lift(ctl, NULL);
        return r < 0 ? r : 0;
}

int budget_changed(Control *ctl, const char *company_id) {
        int r = budget_lift(ctl, company_id);

        if (r < 0)
                return r;
        return apply_spent(ctl, company_id);
}

/* ---- while a run streams ---- */

typedef struct LiveSpend {
        char *run_id, *agent_id, *company_id;
        AdapterBudget caps;
        CliOutput out;
        CliLines lines;
        int64_t prior_input, prior_cached, prior_output; /* a CLI's running totals before this run */
        int64_t checked_tokens;
        bool checked_cost;
        LiveTotal *agent_total, *company_total; /* while it is linked */
        int64_t cents; /* what it counts in both */
        bool limited; /* a cap or a budget limited it when it started: it is checked */
        bool stopped;
        char *stop_message, *stop_json;
        struct LiveSpend *next, **prev; /* Control.live_spend_list */
} LiveSpend;

/* The one place a run's share of the live totals changes. */
static void live_count(LiveSpend *ls, int64_t cents) {
        ls->agent_total->cents += cents - ls->cents;
        ls->company_total->cents += cents - ls->cents;
        ls->cents = cents;
}

/* Off the table, the list and the totals; ls stays allocated. */
static void live_unlink(Control *ctl, LiveSpend *ls) {
        total_leave(ctl, ls->agent_total, ls->cents);
        total_leave(ctl, ls->company_total, ls->cents);
        ls->agent_total = ls->company_total = NULL;
        ls->cents = 0;
        (void) hashmap_remove(ctl->live_spend, ls->run_id);
        *ls->prev = ls->next;
        if (ls->next)
                ls->next->prev = ls->prev;
        ls->next = NULL;
        ls->prev = NULL;
}

static int live_link(Control *ctl, LiveSpend *ls) {
        int r = hashmap_put(ctl->live_spend, ls->run_id, ls);

        if (r < 0)
                return r;
        r = total_join(ctl, ls->agent_id, &ls->agent_total);
        if (r >= 0 && (r = total_join(ctl, ls->company_id, &ls->company_total)) < 0)
                total_leave(ctl, ls->agent_total, 0);
        if (r < 0) {
                (void) hashmap_remove(ctl->live_spend, ls->run_id);
                return r;
        }
        ls->next = ctl->live_spend_list;
        if (ls->next)
                ls->next->prev = &ls->next;
        ls->prev = &ctl->live_spend_list;
        ctl->live_spend_list = ls;
        return 0;
}

static LiveSpend *live_find(Control *ctl, const char *run_id) {
        return ctl->live_spend ? hashmap_get(ctl->live_spend, run_id) : NULL;
}

static LiveSpend *live_free(LiveSpend *ls) {
        if (!ls)
                return NULL;
        cli_lines_done(&ls->lines);
        cli_output_done(&ls->out);
        free(ls->run_id);
        free(ls->agent_id);
        free(ls->company_id);
        free(ls->stop_message);
        free(ls->stop_json);
        free(ls);
        return NULL;
}

int budget_watch(Control *ctl, const Agent *agent, const Run *run) {
        char month[COST_MONTH_MAX];
        AdapterBudget caps;
        int64_t spent, agent_budget = 0, company_budget = 0;
        LiveSpend *ls;
        int r;

        if (!adapter_ops(agent->adapter_type)->cli || adapter_budget(agent, &caps) < 0)
                return 0;
        budget_month(ctl->config, month);
        (void) store_agent_spent(ctl->store, agent->id, month, &spent, &agent_budget);
        (void) store_company_spent(ctl->store, agent->company_id, month, &spent, &company_budget);
        /* Followed even when nothing limits it, for what it has spent so far (budget_live_usage()). */
        if (!ctl->live_spend && (r = hashmap_new(HASHMAP_STRING, &ctl->live_spend)) < 0)
                return r;
        if (!ctl->live_totals && (r = hashmap_new(HASHMAP_STRING, &ctl->live_totals)) < 0)
                return r;
        ls = calloc(1, sizeof(LiveSpend));
        if (!ls)
                return -ENOMEM;
        ls->caps = caps;
        ls->limited = caps.max_cost_cents_per_run > 0 || caps.max_tokens_per_run > 0 || agent_budget > 0 || company_budget > 0;
        ls->out.type = agent->adapter_type;
        ls->lines = (CliLines){ .out = &ls->out, .type = agent->adapter_type };
        ls->checked_tokens = -1;
        ls->run_id = strdup(run->id);
        ls->agent_id = strdup(agent->id);
        ls->company_id = strdup(agent->company_id);
        if (!ls->run_id || !ls->agent_id || !ls->company_id) {
                live_free(ls);
                return -ENOMEM;
        }
        if (run->session_id_before)
                (void) agent_session_prior_totals(ctl->store, agent, run, run->session_id_before, &ls->prior_input,
                                                  &ls->prior_cached, &ls->prior_output);
        LiveSpend *old = live_find(ctl, run->id);
        if (old) { /* watched again */
                live_unlink(ctl, old);
                live_free(old);
        }
        r = live_link(ctl, ls);
        if (r < 0) {
                live_free(ls);
                return r;
        }
        r = supervisor_watch_output(ctl->supervisor, run->id);
        if (r < 0) {
                live_unlink(ctl, ls);
                live_free(ls);
                return r;
        }
        return 1;
}

/* The run reached limit (named as its adapterConfig or budget is): stop it, and say why.
 * others: what the other live runs under that budget had spent by then, or -1 for a cap. */
static void live_stop(Control *ctl, LiveSpend *ls, const char *limit, int64_t limit_value, const char *unit, const Spend *sp,
                      int64_t others) {
        char with[128] = "";
        cJSON *j;
        int r;

        if (others > 0)
                snprintf(with, sizeof(with), " with the %" PRIi64 " cents of its other runs still running", others);
        ls->stopped = true;
        ls->stop_message =
                strprintf("Stopped: the run spent %" PRIi64 " cents and %" PRIi64 " tokens, reaching %s of %" PRIi64 " %s%s",
                          sp->cents, sp->tokens, limit, limit_value, unit, with);
        j = cJSON_CreateObject();
        if (j && cJSON_AddStringToObject(j, "limit", limit) && cJSON_AddNumberToObject(j, "limitValue", (double) limit_value) &&
            cJSON_AddNumberToObject(j, "spentCents", (double) sp->cents) &&
            cJSON_AddNumberToObject(j, "spentTokens", (double) sp->tokens) &&
            (others < 0 || cJSON_AddNumberToObject(j, "otherRunsCents", (double) others)))
                ls->stop_json = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        log_notice("Run %s: %s.", ls->run_id, strna(ls->stop_message));
        (void) store_run_event_append(ctl->store, ls->run_id, "budget.exceeded", LEVEL_WARN,
                                      ls->stop_message ?: "the run reached a limit of what it may spend", NULL);
        r = supervisor_stop(ctl->supervisor, ls->run_id, RUN_END_BUDGET);
        if (r < 0)
                log_warning_errno(r, "Run %s: cannot stop it at its spending limit: %m", ls->run_id);
}

/* What the run has spent so far, as its output says. */
static void live_spend(Control *ctl, const LiveSpend *ls, Spend *ret) {
        const CliOutput *o = &ls->out;
        Spend sp = { .input = o->input_tokens, .cached = o->cached_input_tokens, .output = o->output_tokens };

        if (o->cumulative && ls->prior_input <= sp.input && ls->prior_cached <= sp.cached && ls->prior_output <= sp.output) {
                /* The session's running totals: this run's share (cli_output_session_delta()). */
                sp.input -= ls->prior_input;
                sp.cached -= ls->prior_cached;
                sp.output -= ls->prior_output;
        }
        price(ctl->config, &ls->caps, o->type, o->model, o->has_cost, o->cost_usd, &sp);
        *ret = sp;
}

static void live_check(Control *ctl, LiveSpend *ls) {
        const CliOutput *o = &ls->out;
        char month[COST_MONTH_MAX];
        int64_t spent, budget, live;
        Spend sp;

        /* The end of the output of a run already over (given to the watchers before its end
         * is told) stops nothing: its end counts it. */
        if (supervisor_run_ending(ctl->supervisor, ls->run_id))
                return;
        live_spend(ctl, ls, &sp);
        /* Only what changed is checked again: a line without usage costs nothing. */
        if (sp.tokens == ls->checked_tokens && o->has_cost == ls->checked_cost)
                return;
        ls->checked_tokens = sp.tokens;
        ls->checked_cost = o->has_cost;
        /* Counted though nothing limits it: a budget limits what its runs spend together. */
        live_count(ls, sp.cents);
        if (!ls->limited)
                return;

        if (ls->caps.max_tokens_per_run > 0 && (uint64_t) sp.tokens >= ls->caps.max_tokens_per_run)
                return live_stop(ctl, ls, "maxTokensPerRun", (int64_t) ls->caps.max_tokens_per_run, "tokens", &sp, -1);
        if (ls->caps.max_cost_cents_per_run > 0 && (uint64_t) sp.cents >= ls->caps.max_cost_cents_per_run)
                return live_stop(ctl, ls, "maxCostCentsPerRun", (int64_t) ls->caps.max_cost_cents_per_run, "cents", &sp, -1);
        if (sp.cents == 0)
                return;
        /* What is left of the budgets is read anew: other runs' ends spend from them too, and
         * what the other live runs under them have spent so far counts as spent. */
        budget_month(ctl->config, month);
        live = ls->agent_total->cents;
        if (store_agent_spent(ctl->store, ls->agent_id, month, &spent, &budget) >= 0 && budget > 0 && spent + live >= budget)
                return live_stop(ctl, ls, "the agent's monthly budget", budget, "cents", &sp, live - sp.cents);
        live = ls->company_total->cents;
        if (store_company_spent(ctl->store, ls->company_id, month, &spent, &budget) >= 0 && budget > 0 && spent + live >= budget)
                return live_stop(ctl, ls, "the company's monthly budget", budget, "cents", &sp, live - sp.cents);
}

void budget_on_output(Supervisor *s, const char *run_id, int stream, const char *data, size_t size, void *userdata) {
        Control *ctl = userdata;
        LiveSpend *ls = live_find(ctl, run_id);
        int r;

        if (!ls || ls->stopped)
                return;
        r = cli_lines_feed(&ls->lines, stream, data, size);
        if (r < 0) {
                log_warning_errno(r, "Run %s: cannot follow what it spends, its end counts it: %m", run_id);
                return;
        }
        if (stream == 0)
                live_check(ctl, ls);
}

int budget_live_usage(Control *ctl, const char *run_id, char **ret_json) {
        const LiveSpend *ls = live_find(ctl, run_id);
        _cleanup_json_ cJSON *j = NULL;
        Spend sp;

        *ret_json = NULL;
        if (!ls)
                return 0;
        live_spend(ctl, ls, &sp);
        j = cJSON_CreateObject();
        if (!j || !cJSON_AddNumberToObject(j, "inputTokens", (double) sp.input) ||
            !cJSON_AddNumberToObject(j, "cachedInputTokens", (double) sp.cached) ||
            !cJSON_AddNumberToObject(j, "outputTokens", (double) sp.output) ||
            !cJSON_AddNumberToObject(j, "costCents", (double) sp.cents) ||
            !cJSON_AddStringToObject(j, "priceSource", sp.source) ||
            (ls->out.model && !cJSON_AddStringToObject(j, "model", ls->out.model)) || !cJSON_AddBoolToObject(j, "live", true))
                return -ENOMEM;
        *ret_json = cJSON_PrintUnformatted(j);
        return *ret_json ? 1 : -ENOMEM;
}

void budget_run_ended(Control *ctl, const char *run_id, char **ret_message, char **ret_json) {
        LiveSpend *ls = live_find(ctl, run_id);

        if (ls)
                live_unlink(ctl, ls);
        *ret_message = ls ? TAKE_PTR(ls->stop_message) : NULL;
        *ret_json = ls ? TAKE_PTR(ls->stop_json) : NULL;
        live_free(ls);
}

void budget_forget_live(Control *ctl) {
        /* The table has no iterator: the list of its values frees them. The last run of a
         * total frees it. */
        while (ctl->live_spend_list) {
                LiveSpend *ls = ctl->live_spend_list;
                live_unlink(ctl, ls);
                live_free(ls);
        }
}

void budget_done(Control *ctl) {
        budget_forget_live(ctl);
        ctl->live_spend = hashmap_free(ctl->live_spend);
        ctl->live_totals = hashmap_free(ctl->live_totals);
}
