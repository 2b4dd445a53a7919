/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What live runs spend (control/budget.c): counted for the budgets while they stream, and
 * forgotten when this host fences itself (its runs' ends are then other hosts' to record).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "control/budget.h"
#include "control/wakeup.h"
#include "supervise/supervisor.h"
#include "manager-fixture.h"

/* A claude_local agent of the test's stand-in CLI, which prints one message's usage (1000
 * input and 1000 output tokens: 9 cents at price-default) and then waits 30 s. */
static void new_spender(char id[static UUID_STRING_MAX]) {
        _cleanup_(agent_donep) Agent a = {};
        const char *srcdir = getenv("CORRAL_SRCDIR");
        _cleanup_free_ char *config = strprintf("{\"command\":\"%s/tests/integration/fake-spender.sh\","
                                                "\"env\":{\"FAKE_MESSAGES\":\"2\",\"FAKE_INTERVAL\":\"30\"}}",
                                                srcdir ?: ".");

        fixture_new_agent(id, "spender", config, NULL);
        assert_int_equal(store_get(m->control.store, &agent_entity, id, &a), 0);
        a.adapter_type = ADAPTER_CLAUDE_LOCAL;
        assert_int_equal(store_update(m->control.store, &agent_entity, &a), 0);
}

static void set_company_budget(int64_t cents) {
        _cleanup_(company_donep) Company c = {};

        assert_int_equal(store_get(m->control.store, &company_entity, company, &c), 0);
        c.budget_monthly_cents = cents;
        assert_int_equal(store_update(m->control.store, &company_entity, &c), 0);
}

static int64_t live_cents(const char *run_id) {
        _cleanup_free_ char *text = NULL;
        int64_t cents = -1;

        if (budget_live_usage(&m->control, run_id, &text) <= 0)
                return -1;
        cJSON *j = cJSON_Parse(text);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "costCents");
        if (cJSON_IsNumber(c))
                cents = (int64_t) c->valuedouble;
        cJSON_Delete(j);
        return cents;
}

static void test_live_spend_counts_until_forgotten(void **state) {
        _cleanup_free_ char *run = NULL;
        _cleanup_(agent_donep) Agent worker = {};
        char spender[UUID_STRING_MAX];
        BudgetBlock b;

        /* As corrald does: the output of a watched run goes to what it spends. */
        supervisor_set_output_watcher(m->control.supervisor, budget_on_output, &m->control);
        new_spender(spender);
        assert_int_equal(fixture_wake(spender, WAKEUP_SOURCE_ON_DEMAND, "spend", NULL, NULL, &run), WAKE_QUEUED);
        for (int i = 0; i < 400 && live_cents(run) < 9; i++)
                assert_true(sd_event_run(m->control.event, 50000) >= 0);
        assert_int_equal(live_cents(run), 9);

        /* A budget set behind corrald's back (no pause follows): what the live run, which
         * nothing limited when it started, has spent is spent for the company's other agents. */
        assert_int_equal(store_get(m->control.store, &agent_entity, agent, &worker), 0);
        set_company_budget(10);
        assert_int_equal(budget_blocked(&m->control, &worker, &b), 0);
        set_company_budget(9);
        assert_int_equal(budget_blocked(&m->control, &worker, &b), 1);
        assert_false(b.agent);
        assert_int_equal(b.budget_cents, 9);
        assert_int_equal(b.spent_cents, 9);

        /* Fenced: the run's end is another host's to record, and its spend counts here no more. */
        budget_forget_live(&m->control);
        assert_int_equal(budget_blocked(&m->control, &worker, &b), 0);
        assert_int_equal(live_cents(run), -1);

        set_company_budget(0);
        fixture_cancel(run);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_live_spend_counts_until_forgotten, fixture_manager_setup,
                                                fixture_manager_teardown),
        };
        return cmocka_run_group_tests(tests, fixture_group_setup, fixture_group_teardown);
}
