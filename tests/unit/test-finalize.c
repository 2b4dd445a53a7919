/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Finalization (control/finalize.c): how a run ends, and the release that promotes the
 * deferred wake of every waiting agent (design §3 difference 3).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "control/claim.h"
#include "control/finalize.h"
#include "control/wakeup.h"
#include "manager-fixture.h"
#include "store/jsonmap.h"

/* design §3 difference 3: a release promotes the oldest deferred wake of every agent waiting
 * on the issue, not just one. */
static void test_release_promotes_every_agent(void **state) {
        _cleanup_free_ char *r1 = NULL, *payload = NULL;
        char sleeper[UUID_STRING_MAX], a2[UUID_STRING_MAX], a3[UUID_STRING_MAX], issue[UUID_STRING_MAX];

        fixture_new_agent(sleeper, "sleeper", SLEEPER, NULL);
        fixture_new_agent(a2, "reviewer", NULL, NULL);
        fixture_new_agent(a3, "tester", NULL, NULL);
        fixture_new_issue(issue, ISSUE_TODO, sleeper);
        payload = fixture_issue_payload(issue, NULL);
        assert_int_equal(fixture_wake(sleeper, WAKEUP_SOURCE_ASSIGNMENT, "issue_assigned", payload, NULL, &r1), WAKE_QUEUED);
        assert_int_equal(fixture_wake(a2, WAKEUP_SOURCE_AUTOMATION, "issue_comment_mentioned", payload, NULL, NULL),
                         WAKE_DEFERRED);
        assert_int_equal(fixture_wake(a3, WAKEUP_SOURCE_AUTOMATION, "issue_comment_mentioned", payload, NULL, NULL),
                         WAKE_DEFERRED);
        assert_int_equal(fixture_count("heartbeat_runs", "WHERE issue_id = ?1", issue), 1);

        fixture_cancel(r1);
        fixture_drain();
        assert_int_equal(fixture_count("heartbeat_runs", "WHERE agent_id = ?1 AND status = 'succeeded'", a2), 1);
        assert_int_equal(fixture_count("heartbeat_runs", "WHERE agent_id = ?1 AND status = 'succeeded'", a3), 1);
        assert_int_equal(
                fixture_count("agent_wakeup_requests", "WHERE status = 'deferred_issue_execution' AND company_id = ?1", company),
                0);
        _cleanup_(issue_donep) Issue i = {};
        fixture_get_issue(issue, &i);
        assert_null(i.execution_run_id); /* every promoted run ended and released it */
}

/* Finalization: run, wakeup, agent status and runtime state follow the outcome. */
static void test_finalize(void **state) {
        _cleanup_free_ char *failing_run = NULL, *ok_run = NULL;
        char failing[UUID_STRING_MAX];

        fixture_new_agent(failing, "failing", "{\"command\":\"/bin/sh\",\"args\":[\"-c\",\"echo oops >&2; exit 3\"]}", NULL);
        assert_int_equal(fixture_wake(failing, WAKEUP_SOURCE_ON_DEMAND, "x", NULL, NULL, &failing_run), WAKE_QUEUED);
        fixture_wait_terminal(failing_run);
        {
                _cleanup_(run_donep) Run r = {};
                _cleanup_(agent_donep) Agent a = {};
                _cleanup_(runtime_state_donep) AgentRuntimeState rs = {};
                _cleanup_(wakeup_donep) WakeupRequest w = {};
                fixture_get_run(failing_run, &r);
                assert_int_equal(r.status, RUN_FAILED);
                assert_string_equal(r.error_code, "adapter_failed");
                assert_int_equal(r.exit_code, 3);
                assert_string_equal(r.stderr_excerpt, "oops\n");
                assert_int_equal(store_get(m->control.store, &wakeup_entity, r.wakeup_request_id, &w), 0);
                assert_int_equal(w.status, WAKEUP_FAILED);
                assert_int_equal(store_get(m->control.store, &agent_entity, failing, &a), 0);
                assert_int_equal(a.status, AGENT_ERROR);
                assert_non_null(a.last_heartbeat_at);
                assert_int_equal(store_get(m->control.store, &runtime_state_entity, failing, &rs), 0);
                assert_string_equal(rs.last_run_id, failing_run);
                assert_int_equal(rs.last_run_status, RUN_FAILED);
        }

        assert_int_equal(fixture_wake(agent, WAKEUP_SOURCE_ON_DEMAND, "x", NULL, NULL, &ok_run), WAKE_QUEUED);
        fixture_wait_terminal(ok_run);
        {
                _cleanup_(run_donep) Run r = {};
                _cleanup_(agent_donep) Agent a = {};
                _cleanup_(wakeup_donep) WakeupRequest w = {};
                fixture_get_run(ok_run, &r);
                assert_int_equal(r.status, RUN_SUCCEEDED);
                assert_null(r.error_code);
                assert_int_equal(store_get(m->control.store, &wakeup_entity, r.wakeup_request_id, &w), 0);
                assert_int_equal(w.status, WAKEUP_COMPLETED);
                assert_int_equal(store_get(m->control.store, &agent_entity, agent, &a), 0);
                assert_int_equal(a.status, AGENT_IDLE);
        }
}

#define T(f) cmocka_unit_test_setup_teardown(f, fixture_manager_setup, fixture_manager_teardown)
static const struct CMUnitTest tests[] = {
        T(test_release_promotes_every_agent),
        T(test_finalize),
};

int main(void) {
        cmocka_set_message_output(CM_OUTPUT_TAP);
        return cmocka_run_group_tests(tests, fixture_group_setup, fixture_group_teardown);
}
