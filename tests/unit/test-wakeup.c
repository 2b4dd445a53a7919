/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Wakes (control/wakeup.c) on an in-memory store: the plan a wake becomes (queue with the
 * issue lock, join, defer, coalesce by task key, skip by policy, replay by idempotency key)
 * and comment-wake batching (reference §3.3).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "control/claim-pump.h"
#include "control/claim.h"
#include "control/finalize.h"
#include "control/wakeup.h"
#include "manager-fixture.h"
#include "store/jsonmap.h"

/* An issue wake stamps the lock in the same transaction as its run; the harness checks the
 * issue out; the same wake again joins the run. */
static void test_issue_lock_at_enqueue(void **state) {
        _cleanup_free_ char *run = NULL, *again = NULL, *payload = NULL;
        _cleanup_(issue_donep) Issue i = {};
        char sleeper[UUID_STRING_MAX], issue[UUID_STRING_MAX];

        fixture_new_agent(sleeper, "sleeper", SLEEPER, NULL);
        fixture_new_issue(issue, ISSUE_TODO, sleeper);
        payload = fixture_issue_payload(issue, NULL);
        assert_int_equal(fixture_wake(sleeper, WAKEUP_SOURCE_ASSIGNMENT, "issue_assigned", payload, NULL, &run), WAKE_QUEUED);
        fixture_get_issue(issue, &i);
        assert_string_equal(i.execution_run_id, run);
        assert_string_equal(i.execution_agent_id, sleeper); /* design §3 difference 1: the id, not the name */
        assert_string_equal(i.checkout_run_id, run);
        assert_int_equal(i.status, ISSUE_IN_PROGRESS);
        assert_int_equal(fixture_run_status(run), RUN_RUNNING);

        _cleanup_json_ cJSON *ctx = fixture_context_of(run);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(ctx, "paperclipHarnessCheckedOut")));
        const cJSON *wp = cJSON_GetObjectItem(ctx, "paperclipWake");
        assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(wp, "issue"), "identifier")->valuestring, i.identifier);

        assert_int_equal(fixture_wake(sleeper, WAKEUP_SOURCE_ASSIGNMENT, "issue_assigned", payload, NULL, &again),
                         WAKE_COALESCED);
        assert_string_equal(again, run);
        assert_int_equal(fixture_count("heartbeat_runs", "WHERE agent_id = ?1", sleeper), 1);
        assert_int_equal(fixture_count("agent_wakeup_requests", "WHERE agent_id = ?1 AND status = 'coalesced'", sleeper), 1);
        fixture_cancel_all(sleeper);
}

/* Reference §3.3: two comments while the agent runs on the issue are deferred into one row,
 * promoted into one run whose payload carries exactly those comments. */
static void test_comment_batching(void **state) {
        _cleanup_free_ char *r1 = NULL, *p1 = NULL, *p2 = NULL, *p3 = NULL;
        char sleeper[UUID_STRING_MAX], issue[UUID_STRING_MAX], c1[UUID_STRING_MAX], c2[UUID_STRING_MAX], c3[UUID_STRING_MAX];
        void *items;
        size_t n;

        fixture_new_agent(sleeper, "sleeper", SLEEPER, NULL);
        fixture_new_issue(issue, ISSUE_TODO, sleeper);
        fixture_new_comment(c1, issue, "an earlier comment");
        p1 = fixture_issue_payload(issue, NULL);
        assert_int_equal(fixture_wake(sleeper, WAKEUP_SOURCE_ASSIGNMENT, "issue_assigned", p1, NULL, &r1), WAKE_QUEUED);
        assert_int_equal(fixture_run_status(r1), RUN_RUNNING);

        fixture_new_comment(c2, issue, "second thoughts");
        fixture_new_comment(c3, issue, "third time");
        p2 = fixture_issue_payload(issue, c2);
        p3 = fixture_issue_payload(issue, c3);
        assert_int_equal(fixture_wake(sleeper, WAKEUP_SOURCE_AUTOMATION, "issue_commented", p2, NULL, NULL), WAKE_DEFERRED);
        assert_int_equal(fixture_wake(sleeper, WAKEUP_SOURCE_AUTOMATION, "issue_commented", p3, NULL, NULL), WAKE_DEFERRED);
        assert_int_equal(store_list(m->control.store, &wakeup_entity,
                                    "WHERE agent_id = ?1 AND status = 'deferred_issue_execution'",
                                    (const char *const[]){ sleeper, NULL }, 0, &items, &n),
                         0);
        assert_int_equal(n, 1);
        {
                _cleanup_json_ cJSON *payload = cJSON_Parse(((WakeupRequest *) items)[0].payload);
                const cJSON *ids = cJSON_GetObjectItem(cJSON_GetObjectItem(payload, "_paperclipWakeContext"), "wakeCommentIds");
                assert_int_equal(cJSON_GetArraySize(ids), 2);
                assert_string_equal(cJSON_GetArrayItem(ids, 0)->valuestring, c2);
                assert_string_equal(cJSON_GetArrayItem(ids, 1)->valuestring, c3);
        }
        entity_array_free(&wakeup_entity, items, n);
        assert_int_equal(fixture_count("heartbeat_runs", "WHERE agent_id = ?1", sleeper), 1);

        fixture_cancel(r1); /* the release promotes the deferred wake */
        assert_int_equal(store_list(m->control.store, &run_entity, "WHERE agent_id = ?1 AND id != ?2",
                                    (const char *const[]){ sleeper, r1, NULL }, 0, &items, &n),
                         0);
        assert_int_equal(n, 1);
        Run *r2 = items;
        assert_int_equal(r2->status, RUN_RUNNING);
        {
                _cleanup_json_ cJSON *ctx = cJSON_Parse(r2->context_snapshot);
                const cJSON *wp = cJSON_GetObjectItem(ctx, "paperclipWake"), *comments = cJSON_GetObjectItem(wp, "comments");
                assert_string_equal(cJSON_GetObjectItem(wp, "latestCommentId")->valuestring, c3);
                assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(wp, "commentIds")), 2);
                assert_int_equal(cJSON_GetArraySize(comments), 2);
                assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(comments, 0), "body")->valuestring, "second thoughts");
                assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(comments, 1), "body")->valuestring, "third time");
                assert_false(cJSON_IsTrue(cJSON_GetObjectItem(wp, "truncated")));
        }
        _cleanup_(issue_donep) Issue i = {};
        fixture_get_issue(issue, &i);
        assert_string_equal(i.execution_run_id, r2->id);
        entity_array_free(&run_entity, items, n);
        fixture_cancel_all(sleeper);
}

/* Reference §3.2 step 10: a wake joins the newest queued run of the same taskKey (a string,
 * or none at all); a running run of that task does not absorb it. */
static void test_task_key_coalescing(void **state) {
        _cleanup_free_ char *a = NULL, *b = NULL, *b2 = NULL, *none = NULL, *none2 = NULL, *num = NULL, *a2 = NULL;
        char one[UUID_STRING_MAX];

        fixture_new_agent(one, "one", SLEEPER, NULL);
        assert_int_equal(fixture_wake(one, WAKEUP_SOURCE_ON_DEMAND, "r", "{\"taskKey\":\"a\"}", NULL, &a), WAKE_QUEUED);
        assert_int_equal(fixture_run_status(a), RUN_RUNNING);
        assert_int_equal(fixture_wake(one, WAKEUP_SOURCE_ON_DEMAND, "r", "{\"taskKey\":\"b\"}", NULL, &b), WAKE_QUEUED);
        assert_int_equal(fixture_wake(one, WAKEUP_SOURCE_ON_DEMAND, "r", "{\"taskKey\":\"b\"}", NULL, &b2), WAKE_COALESCED);
        assert_string_equal(b2, b);
        assert_int_equal(fixture_wake(one, WAKEUP_SOURCE_ON_DEMAND, "r", "{}", NULL, &none), WAKE_QUEUED);
        assert_string_not_equal(none, b);
        assert_int_equal(fixture_wake(one, WAKEUP_SOURCE_ON_DEMAND, "r", "{}", NULL, &none2), WAKE_COALESCED);
        assert_string_equal(none2, none);
        /* A taskKey that is not a string is no key. */
        assert_int_equal(fixture_wake(one, WAKEUP_SOURCE_ON_DEMAND, "r", "{\"taskKey\":5}", NULL, &num), WAKE_COALESCED);
        assert_string_equal(num, none);
        assert_int_equal(fixture_wake(one, WAKEUP_SOURCE_ON_DEMAND, "r", "{\"taskKey\":\"a\"}", NULL, &a2), WAKE_QUEUED);
        assert_string_not_equal(a2, a);
        assert_int_equal(fixture_count("heartbeat_runs", "WHERE agent_id = ?1 AND status = 'queued'", one), 3);
        fixture_cancel_all(one);
}

/* A timer wake while the agent runs on an issue never starts a second concurrent run; more
 * timer ticks join the queued timer run. */
static void test_timer_during_issue_run(void **state) {
        _cleanup_free_ char *r1 = NULL, *t1 = NULL, *t2 = NULL, *payload = NULL;
        char sleeper[UUID_STRING_MAX], issue[UUID_STRING_MAX];

        fixture_new_agent(sleeper, "sleeper", SLEEPER, "{\"heartbeat\":{\"enabled\":true,\"intervalSec\":60}}");
        fixture_new_issue(issue, ISSUE_TODO, sleeper);
        payload = fixture_issue_payload(issue, NULL);
        assert_int_equal(fixture_wake(sleeper, WAKEUP_SOURCE_ASSIGNMENT, "issue_assigned", payload, NULL, &r1), WAKE_QUEUED);
        assert_int_equal(fixture_wake(sleeper, WAKEUP_SOURCE_TIMER, "heartbeat_timer", NULL, NULL, &t1), WAKE_QUEUED);
        assert_int_equal(fixture_wake(sleeper, WAKEUP_SOURCE_TIMER, "heartbeat_timer", NULL, NULL, &t2), WAKE_COALESCED);
        assert_string_equal(t1, t2);
        claim_start_next(&m->control, sleeper);
        assert_int_equal(fixture_count("heartbeat_runs", "WHERE agent_id = ?1 AND status = 'running'", sleeper), 1);
        assert_int_equal(fixture_run_status(t1), RUN_QUEUED);
        fixture_cancel_all(sleeper);
}

/* Policy (reference §3.2 steps 7-8): not invokable is an error; disabled sources are skipped
 * with a reason, and the skip is recorded. */
static void test_policy_skips(void **state) {
        WakeRequest req = { .source = WAKEUP_SOURCE_ON_DEMAND, .trigger_detail = -1 };
        _cleanup_free_ char *run = NULL, *reason = NULL;
        char quiet[UUID_STRING_MAX];
        WakeOutcome o;

        fixture_set_agent_status(agent, AGENT_PAUSED);
        assert_int_equal(wakeup_request(&m->control, agent, &req, &o, &run, &reason), -EPERM);
        assert_int_equal(fixture_count("agent_wakeup_requests", "WHERE agent_id = ?1", agent), 0);

        fixture_new_agent(quiet, "quiet", NULL, "{\"heartbeat\":{\"enabled\":false,\"wakeOnDemand\":false}}");
        req.source = WAKEUP_SOURCE_TIMER;
        assert_int_equal(wakeup_request(&m->control, quiet, &req, &o, &run, &reason), 0);
        assert_int_equal(o, WAKE_SKIPPED);
        assert_string_equal(reason, "heartbeat.disabled");
        reason = mfree(reason);
        req.source = WAKEUP_SOURCE_ON_DEMAND;
        assert_int_equal(wakeup_request(&m->control, quiet, &req, &o, &run, &reason), 0);
        assert_int_equal(o, WAKE_SKIPPED);
        assert_string_equal(reason, "heartbeat.wakeOnDemand.disabled");
        assert_null(run);
        assert_int_equal(fixture_count("agent_wakeup_requests", "WHERE agent_id = ?1 AND status = 'skipped'", quiet), 2);
        assert_int_equal(fixture_count("heartbeat_runs", "WHERE agent_id = ?1", quiet), 0);
}

/* The same idempotency key twice is one wake and one run. */
static void test_idempotency_key(void **state) {
        _cleanup_free_ char *r1 = NULL, *r2 = NULL;
        char sleeper[UUID_STRING_MAX];

        fixture_new_agent(sleeper, "sleeper", SLEEPER, NULL);
        assert_int_equal(fixture_wake(sleeper, WAKEUP_SOURCE_ON_DEMAND, "x", "{\"taskKey\":\"k1\"}", "key-1", &r1), WAKE_QUEUED);
        fixture_wake(sleeper, WAKEUP_SOURCE_ON_DEMAND, "x", "{\"taskKey\":\"k2\"}", "key-1", &r2);
        assert_string_equal(r1, r2);
        assert_int_equal(fixture_count("heartbeat_runs", "WHERE agent_id = ?1", sleeper), 1);
        fixture_cancel_all(sleeper);
}

/* An issue of no company the agent is in is no issue to it: the wake is skipped, and the
 * issue's lock stays untouched. */
static void test_skip_foreign_issue(void **state) {
        _cleanup_(company_donep) Company other = {};
        _cleanup_(issue_donep) Issue i = {}, stored = {};
        _cleanup_free_ char *payload = NULL, *run_id = NULL, *reason = NULL;
        WakeOutcome o;

        assert_int_equal(entity_init(&company_entity, &other), 0);
        assert_int_equal(record_stamp(&other.id, &other.created_at, &other.updated_at, NULL), 0);
        other.name = strdup("Other");
        other.issue_prefix = strdup("OTHERW");
        fixture_insert(&company_entity, &other);
        assert_int_equal(entity_init(&issue_entity, &i), 0);
        assert_int_equal(record_stamp(&i.id, &i.created_at, &i.updated_at, NULL), 0);
        i.company_id = strdup(other.id);
        i.title = strdup("not yours");
        i.status = ISSUE_TODO;
        i.issue_number = 1;
        i.identifier = strdup("OTHERW-1");
        fixture_insert(&issue_entity, &i);

        payload = fixture_issue_payload(i.id, NULL);
        WakeRequest req = { .source = WAKEUP_SOURCE_ON_DEMAND,
                            .trigger_detail = -1,
                            .payload_json = payload,
                            .actor_type = ACTOR_USER,
                            .actor_id = "board" };
        assert_int_equal(wakeup_request(&m->control, agent, &req, &o, &run_id, &reason), 0);
        assert_int_equal(o, WAKE_SKIPPED);
        assert_null(run_id);
        assert_string_equal(reason, "issue_execution_issue_not_found");
        fixture_get_issue(i.id, &stored);
        assert_null(stored.execution_run_id);
        assert_int_equal(fixture_count("heartbeat_runs", "WHERE agent_id = ?1", agent), 0);
        assert_int_equal(fixture_count("agent_wakeup_requests", "WHERE status = ?1", "skipped"), 1);
}

/* A payload issueId that is not a string is refused, and nothing is written. */
static void test_bad_issue_id(void **state) {
        _cleanup_free_ char *run_id = NULL, *reason = NULL;
        WakeOutcome o;
        WakeRequest req = { .source = WAKEUP_SOURCE_ON_DEMAND,
                            .trigger_detail = -1,
                            .payload_json = "{\"issueId\":7}",
                            .actor_type = ACTOR_USER,
                            .actor_id = "board" };

        assert_int_equal(wakeup_request(&m->control, agent, &req, &o, &run_id, &reason), -EINVAL);
        assert_int_equal(fixture_count("agent_wakeup_requests", "WHERE agent_id = ?1", agent), 0);
        fixture_set_agent_status(agent, AGENT_PAUSED);
        req.payload_json = NULL;
        assert_int_equal(wakeup_request(&m->control, agent, &req, &o, &run_id, &reason), -EPERM);
        assert_int_equal(fixture_count("agent_wakeup_requests", "WHERE agent_id = ?1", agent), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, fixture_manager_setup, fixture_manager_teardown)
static const struct CMUnitTest tests[] = {
        T(test_issue_lock_at_enqueue), T(test_comment_batching), T(test_task_key_coalescing), T(test_timer_during_issue_run),
        T(test_policy_skips),          T(test_idempotency_key),  T(test_skip_foreign_issue),  T(test_bad_issue_id),
};

int main(void) {
        cmocka_set_message_output(CM_OUTPUT_TAP);
        return cmocka_run_group_tests(tests, fixture_group_setup, fixture_group_teardown);
}
