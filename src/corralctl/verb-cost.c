/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * corralctl costs: what a company, or one agent, spent in a month, by agent and by model.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "basic/macro.h"
#include "client.h"
#include "corralctl.h"
#include "names.h"
#include "output.h"

static const Column agent_columns[] = {
        { "AGENT", "name", 24 },
        { "ID", "agentId", 0 },
        { "RUNS", "runs", 0 },
        { "INPUT", "inputTokens", 0 },
        { "CACHED", "cachedInputTokens", 0 },
        { "OUTPUT", "outputTokens", 0 },
        { "CENTS", "costCents", 0 },
        { "BUDGET", "budgetMonthlyCents", 0 },
        { "LEFT", "remainingCents", 0 },
        {},
};

static const Column model_columns[] = {
        { "MODEL", "model", 40 },
        { "RUNS", "runs", 0 },
        { "INPUT", "inputTokens", 0 },
        { "CACHED", "cachedInputTokens", 0 },
        { "OUTPUT", "outputTokens", 0 },
        { "CENTS", "costCents", 0 },
        {},
};

/* "spent 120 of 500 cents, 380 left" or "spent 120 cents, no budget". */
static void print_summary(const char *what, const cJSON *reply) {
        char month[16], spent[64], budget[64], left[64];

        printf("%s, %s: spent %s cents", what, output_value(reply, "month", month, sizeof(month)),
               output_value(reply, "spentMonthlyCents", spent, sizeof(spent)));
        if (cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(reply, "remainingCents")))
                printf(", no monthly budget\n");
        else
                printf(" of a monthly budget of %s, %s left\n", output_value(reply, "budgetMonthlyCents", budget, sizeof(budget)),
                       output_value(reply, "remainingCents", left, sizeof(left)));
}

int verb_costs(Ctl *ctl, int argc, char *argv[]) {
        ExtraOpt opts[] = { { "company", "Company id (required without --agent)" },
                            { "agent", "Only this agent" },
                            { "month", "The month, as YYYY-MM (default: this month)" },
                            {} };
        _cleanup_free_ char *id = NULL, *month = NULL, *path = NULL;
        cJSON *reply = NULL;
        int first, r;

        first = ctl_args(ctl, NULL, "costs", argc, argv, NULL, opts, NULL, 0);
        if (first < 0)
                return -1 - first;
        if (!opts[0].value && !opts[1].value) {
                fprintf(stderr, "corralctl costs: --company or --agent is required\n");
                return EXIT_USAGE;
        }
        id = names_resolve(ctl, opts[1].value ? "agent" : "company", opts[1].value ?: opts[0].value, NULL, &r);
        if (!id)
                return r;
        month = opts[2].value ? client_escape(opts[2].value) : NULL;
        if (!id || (opts[2].value && !month) ||
            asprintf(&path, "/api/%s/%s/costs%s%s", opts[1].value ? "agents" : "companies", id, month ? "?month=" : "",
                     month ?: "") < 0)
                return EXIT_API_ERROR;
        r = client_call(ctl, "GET", path, NULL, &reply);
        if (r != EXIT_OK) {
                cJSON_Delete(reply);
                return r;
        }
        if (ctl->json)
                output_json(reply);
        else {
                char buf[64];
                _cleanup_free_ char *what = NULL;
                if (asprintf(&what, "%s %s", opts[1].value ? "Agent" : "Company",
                             output_value(reply, opts[1].value ? "agentId" : "companyId", buf, sizeof(buf))) < 0)
                        what = NULL;
                print_summary(what ?: "-", reply);
                const cJSON *agents = cJSON_GetObjectItemCaseSensitive(reply, "agents");
                if (cJSON_GetArraySize(agents) > 0) {
                        printf("\n");
                        output_table(agents, agent_columns);
                }
                printf("\n");
                output_table(cJSON_GetObjectItemCaseSensitive(reply, "models"), model_columns);
        }
        cJSON_Delete(reply);
        return EXIT_OK;
}
