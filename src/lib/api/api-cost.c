/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What a company and its agents spent in a month (corrald(8), BUDGETS):
 * GET /api/companies/:id/costs and GET /api/agents/:id/costs, ?month=YYYY-MM (default: this
 * month), by agent and by model, from the totals the store keeps per agent, model and month.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "api/api-common.h"
#include "basic/macro.h"
#include "basic/util.h"
#include "control/budget.h"
#include "store/costs.h"

/* ?month=YYYY-MM, else the current month: 1, or 0 once a 400 is sent. */
static int parse_month(ApiRequest *req, char month[static COST_MONTH_MAX]) {
        const char *m = api_query(req, "month");

        if (!m) {
                budget_month(req->ctl->config, month);
                return 1;
        }
        if (strlen(m) != 7 || m[4] != '-' || strspn(m, "0123456789-") != 7 || strchr(m, '-') != m + 4 ||
            !((m[5] == '0' && m[6] >= '1') || (m[5] == '1' && m[6] <= '2'))) {
                (void) api_reply_error(req, 400, "month must be a month as YYYY-MM, not '%.16s'", m);
                return 0;
        }
        memcpy(month, m, COST_MONTH_MAX);
        return 1;
}

typedef struct Sum {
        int64_t runs, input, cached, output, cents;
} Sum;

static void sum_add(Sum *s, const CostRow *r) {
        s->runs += r->runs;
        s->input += r->input_tokens;
        s->cached += r->cached_input_tokens;
        s->output += r->output_tokens;
        s->cents += r->cost_cents;
}

static bool add_sum(cJSON *o, const Sum *s) {
        return cJSON_AddNumberToObject(o, "runs", (double) s->runs) &&
                cJSON_AddNumberToObject(o, "inputTokens", (double) s->input) &&
                cJSON_AddNumberToObject(o, "cachedInputTokens", (double) s->cached) &&
                cJSON_AddNumberToObject(o, "outputTokens", (double) s->output) &&
                cJSON_AddNumberToObject(o, "costCents", (double) s->cents);
}

static bool add_budget(cJSON *o, int64_t budget, int64_t spent) {
        return cJSON_AddNumberToObject(o, "budgetMonthlyCents", (double) budget) &&
                cJSON_AddNumberToObject(o, "spentMonthlyCents", (double) spent) &&
                (budget > 0 ? cJSON_AddNumberToObject(o, "remainingCents", (double) MAX(budget - spent, (int64_t) 0))
                            : cJSON_AddNullToObject(o, "remainingCents"));
}

/* "models": the rows summed by model (the rows are few: agents times models). */
static bool add_models(cJSON *o, const CostRow *rows, size_t n) {
        cJSON *models = cJSON_AddArrayToObject(o, "models");

        if (!models)
                return false;
        for (size_t i = 0; i < n; i++) {
                bool seen = false;
                for (size_t j = 0; j < i && !seen; j++)
                        seen = streq(rows[j].model, rows[i].model);
                if (seen)
                        continue;
                Sum s = {};
                for (size_t j = i; j < n; j++)
                        if (streq(rows[j].model, rows[i].model))
                                sum_add(&s, &rows[j]);
                cJSON *m = cJSON_CreateObject();
                if (!m || !cJSON_AddItemToArray(models, m) || !cJSON_AddStringToObject(m, "model", rows[i].model) ||
                    !add_sum(m, &s))
                        return false;
        }
        return true;
}

static int reply_costs(ApiRequest *req, const Company *c, const Agent *only, const char *month) {
        CostRow *rows = NULL;
        size_t n = 0;
        int64_t spent, budget;
        Sum total = {};
        cJSON *o;
        int r;

        r = store_costs_of_month(api_store(req), c->id, only ? only->id : NULL, month, &rows, &n);
        if (r < 0)
                return r;
        r = only ? store_agent_spent(api_store(req), only->id, month, &spent, &budget)
                 : store_company_spent(api_store(req), c->id, month, &spent, &budget);
        if (r < 0) {
                cost_rows_free(rows, n);
                return r;
        }
        for (size_t i = 0; i < n; i++)
                sum_add(&total, &rows[i]);
        o = cJSON_CreateObject();
        bool ok = o && cJSON_AddStringToObject(o, "companyId", c->id) &&
                (!only || cJSON_AddStringToObject(o, "agentId", only->id)) && cJSON_AddStringToObject(o, "month", month) &&
                add_budget(o, budget, spent);
        cJSON *t = ok ? cJSON_AddObjectToObject(o, "totals") : NULL;
        ok = t && add_sum(t, &total);
        if (ok && !only) {
                cJSON *agents = cJSON_AddArrayToObject(o, "agents");
                ok = agents;
                for (size_t i = 0; ok && i < n; i++) {
                        if (i > 0 && streq(rows[i - 1].agent_id, rows[i].agent_id))
                                continue; /* rows are by agent, then model */
                        _cleanup_(agent_donep) Agent a = {};
                        bool known = store_get(api_store(req), &agent_entity, rows[i].agent_id, &a) >= 0;
                        int64_t agent_spent = 0, agent_budget = 0;
                        if (known)
                                (void) store_agent_spent(api_store(req), a.id, month, &agent_spent, &agent_budget);
                        Sum s = {};
                        for (size_t j = i; j < n && streq(rows[j].agent_id, rows[i].agent_id); j++)
                                sum_add(&s, &rows[j]);
                        cJSON *e = cJSON_CreateObject();
                        ok = e && cJSON_AddItemToArray(agents, e) && cJSON_AddStringToObject(e, "agentId", rows[i].agent_id) &&
                                (known ? cJSON_AddStringToObject(e, "name", a.name) : cJSON_AddNullToObject(e, "name")) &&
                                add_budget(e, agent_budget, agent_spent) && add_sum(e, &s);
                }
        }
        ok = ok && add_models(o, rows, n);
        cost_rows_free(rows, n);
        if (!ok) {
                cJSON_Delete(o);
                return -ENOMEM;
        }
        return api_reply(req, 200, o);
}

static int handle_company_costs(ApiRequest *req) {
        _cleanup_(company_donep) Company c = {};
        char month[COST_MONTH_MAX];
        int r;

        r = api_load(req, &company_entity, req->params[0], &c);
        if (r <= 0)
                return r;
        r = parse_month(req, month);
        return r <= 0 ? r : reply_costs(req, &c, NULL, month);
}

static int handle_agent_costs(ApiRequest *req) {
        _cleanup_(agent_donep) Agent a = {};
        _cleanup_(company_donep) Company c = {};
        char month[COST_MONTH_MAX];
        int r;

        r = api_load(req, &agent_entity, req->params[0], &a);
        if (r <= 0)
                return r;
        r = api_load(req, &company_entity, a.company_id, &c);
        if (r <= 0)
                return r;
        r = parse_month(req, month);
        return r <= 0 ? r : reply_costs(req, &c, &a, month);
}

const ApiRoute api_cost_routes[] = {
        { "GET", "/api/companies/:id/costs", handle_company_costs },
        { "GET", "/api/agents/:id/costs", handle_agent_costs },
        {},
};
