/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The heartbeat control plane against the library on an in-memory store, with
 * real (short or sleeping) processes: the issue lock stamped at enqueue,
 * coalescing, deferral and comment-wake batching (reference §3.3), promotion of
 * every deferred agent on release (design §3 difference 3), blockers, per-agent
 * concurrency, claim order (reference §3.7), timer wakes during an issue run,
 * policy skips, idempotency keys and finalization.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "control/wakeup.h"
#include "control/claim.h"
#include "control/finalize.h"
#include "store/jsonmap.h"
#include "manager-fixture.h"

#define SLEEPER "{\"command\":\"/bin/sleep\",\"args\":[\"30\"]}"

static WakeOutcome wake(const char *agent_id, WakeupSource source, const char *reason, const char *payload, const char *key,
                        char **ret_run_id) {
        WakeRequest req = { .source = source,
                            .trigger_detail = -1,
                            .reason = reason,
                            .payload_json = payload,
                            .idempotency_key = key,
                            .actor_type = ACTOR_USER,
                            .actor_id = "board" };
        _cleanup_free_ char *run_id = NULL, *skip = NULL;
        WakeOutcome o;

        assert_int_equal(wakeup_request(&m->control, agent_id, &req, &o, &run_id, &skip), 0);
        if (ret_run_id)
                *ret_run_id = TAKE_PTR(run_id);
        return o;
}

static char *issue_payload(const char *issue_id, const char *comment_id) {
        return comment_id ? strprintf("{\"issueId\":\"%s\",\"commentId\":\"%s\"}", issue_id, comment_id)
                          : strprintf("{\"issueId\":\"%s\"}", issue_id);
}

static RunStatus run_status(const char *run_id) {
        _cleanup_(run_donep) Run r = {};
        assert_int_equal(store_get(m->control.store, &run_entity, run_id, &r), 0);
        return r.status;
}

static void get_run(const char *run_id, Run *ret) {
        assert_int_equal(store_get(m->control.store, &run_entity, run_id, ret), 0);
}

static void get_issue(const char *issue_id, Issue *ret) {
        assert_int_equal(store_get(m->control.store, &issue_entity, issue_id, ret), 0);
}

/* Run the loop until the run is terminal (at most 20 s). */
static void wait_terminal(const char *run_id) {
        for (int i = 0; i < 400 && !run_status_is_terminal(run_status(run_id)); i++)
                assert_true(sd_event_run(m->control.event, 50000) >= 0);
        assert_true(run_status_is_terminal(run_status(run_id)));
}

static void cancel(const char *run_id) {
        assert_int_equal(finalize_cancel_run(&m->control, run_id), 0);
        wait_terminal(run_id);
}

static void cancel_all(const char *agent_id) {
        assert_int_equal(finalize_cancel_agent_runs(&m->control, agent_id), 0);
        fixture_drain();
}

static void new_comment(char id[static UUID_STRING_MAX], const char *issue_id, const char *body) {
        _cleanup_(comment_donep) IssueComment c = {};
        assert_int_equal(record_stamp(&c.id, &c.created_at, &c.updated_at, NULL), 0);
        snprintf(id, UUID_STRING_MAX, "%s", c.id);
        c.company_id = strdup(company);
        c.issue_id = strdup(issue_id);
        c.author_user_id = strdup("user-1");
        c.body = strdup(body);
        fixture_insert(&comment_entity, &c);
}

static cJSON *context_of(const char *run_id) {
        _cleanup_(run_donep) Run r = {};
        get_run(run_id, &r);
        return cJSON_Parse(r.context_snapshot);
}

/* An issue wake stamps the lock in the same transaction as its run; the harness checks the
 * issue out; the same wake again joins the run. */
static void test_issue_lock_at_enqueue(void **state) {
        _cleanup_free_ char *run = NULL, *again = NULL, *payload = NULL;
        _cleanup_(issue_donep) Issue i = {};
        char sleeper[UUID_STRING_MAX], issue[UUID_STRING_MAX];

        fixture_new_agent(sleeper, "sleeper", SLEEPER, NULL);
        fixture_new_issue(issue, ISSUE_TODO, sleeper);
        payload = issue_payload(issue, NULL);
        assert_int_equal(wake(sleeper, WAKEUP_SOURCE_ASSIGNMENT, "issue_assigned", payload, NULL, &run), WAKE_QUEUED);
        get_issue(issue, &i);
        assert_string_equal(i.execution_run_id, run);
        assert_string_equal(i.execution_agent_id, sleeper); /* design §3 difference 1: the id, not the name */
        assert_string_equal(i.checkout_run_id, run);
        assert_int_equal(i.status, ISSUE_IN_PROGRESS);
        assert_int_equal(run_status(run), RUN_RUNNING);

        _cleanup_json_ cJSON *ctx = context_of(run);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(ctx, "paperclipHarnessCheckedOut")));
        const cJSON *wp = cJSON_GetObjectItem(ctx, "paperclipWake");
        assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(wp, "issue"), "identifier")->valuestring, i.identifier);

        assert_int_equal(wake(sleeper, WAKEUP_SOURCE_ASSIGNMENT, "issue_assigned", payload, NULL, &again), WAKE_COALESCED);
        assert_string_equal(again, run);
        assert_int_equal(fixture_count("heartbeat_runs", "WHERE agent_id = ?1", sleeper), 1);
        assert_int_equal(fixture_count("agent_wakeup_requests", "WHERE agent_id = ?1 AND status = 'coalesced'", sleeper), 1);
        cancel_all(sleeper);
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
        new_comment(c1, issue, "an earlier comment");
        p1 = issue_payload(issue, NULL);
        assert_int_equal(wake(sleeper, WAKEUP_SOURCE_ASSIGNMENT, "issue_assigned", p1, NULL, &r1), WAKE_QUEUED);
        assert_int_equal(run_status(r1), RUN_RUNNING);

        new_comment(c2, issue, "second thoughts");
        new_comment(c3, issue, "third time");
        p2 = issue_payload(issue, c2);
        p3 = issue_payload(issue, c3);
        assert_int_equal(wake(sleeper, WAKEUP_SOURCE_AUTOMATION, "issue_commented", p2, NULL, NULL), WAKE_DEFERRED);
        assert_int_equal(wake(sleeper, WAKEUP_SOURCE_AUTOMATION, "issue_commented", p3, NULL, NULL), WAKE_DEFERRED);
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

        cancel(r1); /* the release promotes the deferred wake */
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
        get_issue(issue, &i);
        assert_string_equal(i.execution_run_id, r2->id);
        entity_array_free(&run_entity, items, n);
        cancel_all(sleeper);
}

/* design §3 difference 3: a release promotes the oldest deferred wake of every agent waiting
 * on the issue, not just one. */
static void test_release_promotes_every_agent(void **state) {
        _cleanup_free_ char *r1 = NULL, *payload = NULL;
        char sleeper[UUID_STRING_MAX], a2[UUID_STRING_MAX], a3[UUID_STRING_MAX], issue[UUID_STRING_MAX];

        fixture_new_agent(sleeper, "sleeper", SLEEPER, NULL);
        fixture_new_agent(a2, "reviewer", NULL, NULL);
        fixture_new_agent(a3, "tester", NULL, NULL);
        fixture_new_issue(issue, ISSUE_TODO, sleeper);
        payload = issue_payload(issue, NULL);
        assert_int_equal(wake(sleeper, WAKEUP_SOURCE_ASSIGNMENT, "issue_assigned", payload, NULL, &r1), WAKE_QUEUED);
        assert_int_equal(wake(a2, WAKEUP_SOURCE_AUTOMATION, "issue_comment_mentioned", payload, NULL, NULL), WAKE_DEFERRED);
        assert_int_equal(wake(a3, WAKEUP_SOURCE_AUTOMATION, "issue_comment_mentioned", payload, NULL, NULL), WAKE_DEFERRED);
        assert_int_equal(fixture_count("heartbeat_runs", "WHERE json_extract(context_snapshot, '$.issueId') = ?1", issue), 1);

        cancel(r1);
        fixture_drain();
        assert_int_equal(fixture_count("heartbeat_runs", "WHERE agent_id = ?1 AND status = 'succeeded'", a2), 1);
        assert_int_equal(fixture_count("heartbeat_runs", "WHERE agent_id = ?1 AND status = 'succeeded'", a3), 1);
        assert_int_equal(
                fixture_count("agent_wakeup_requests", "WHERE status = 'deferred_issue_execution' AND company_id = ?1", company),
                0);
        _cleanup_(issue_donep) Issue i = {};
        get_issue(issue, &i);
        assert_null(i.execution_run_id); /* every promoted run ended and released it */
}

/* A run whose issue has open blockers stays queued until they are done. */
static void test_blockers_keep_run_queued(void **state) {
        _cleanup_free_ char *run = NULL, *payload = NULL;
        _cleanup_(issue_relation_donep) IssueRelation rel = {};
        char blocker[UUID_STRING_MAX], issue[UUID_STRING_MAX];

        fixture_new_issue(blocker, ISSUE_TODO, NULL);
        fixture_new_issue(issue, ISSUE_TODO, agent);
        assert_int_equal(entity_init(&issue_relation_entity, &rel), 0);
        assert_int_equal(record_stamp(&rel.id, &rel.created_at, NULL, NULL), 0);
        rel.company_id = strdup(company);
        rel.issue_id = strdup(blocker);
        rel.related_issue_id = strdup(issue);
        free(rel.type);
        rel.type = strdup("blocks");
        fixture_insert(&issue_relation_entity, &rel);

        payload = issue_payload(issue, NULL);
        assert_int_equal(wake(agent, WAKEUP_SOURCE_ASSIGNMENT, "issue_assigned", payload, NULL, &run), WAKE_QUEUED);
        claim_start_next(&m->control, agent);
        assert_int_equal(run_status(run), RUN_QUEUED);

        _cleanup_(issue_donep) Issue b = {};
        get_issue(blocker, &b);
        b.status = ISSUE_DONE;
        assert_int_equal(store_update(m->control.store, &issue_entity, &b), 0);
        claim_start_next(&m->control, agent);
        wait_terminal(run);
        assert_int_equal(run_status(run), RUN_SUCCEEDED);
}

/* maxConcurrentRuns: 1 by default, more when configured. */
static void test_concurrency_limit(void **state) {
        _cleanup_free_ char *r1 = NULL, *r2 = NULL, *r3 = NULL, *r4 = NULL;
        char one[UUID_STRING_MAX], two[UUID_STRING_MAX];

        fixture_new_agent(one, "one", SLEEPER, NULL);
        fixture_new_agent(two, "two", SLEEPER, "{\"heartbeat\":{\"maxConcurrentRuns\":2}}");
        assert_int_equal(wake(one, WAKEUP_SOURCE_ON_DEMAND, "a", "{\"taskKey\":\"a\"}", NULL, &r1), WAKE_QUEUED);
        assert_int_equal(wake(one, WAKEUP_SOURCE_ON_DEMAND, "b", "{\"taskKey\":\"b\"}", NULL, &r2), WAKE_QUEUED);
        assert_int_equal(run_status(r1), RUN_RUNNING);
        assert_int_equal(run_status(r2), RUN_QUEUED);
        assert_int_equal(wake(two, WAKEUP_SOURCE_ON_DEMAND, "a", "{\"taskKey\":\"a\"}", NULL, &r3), WAKE_QUEUED);
        assert_int_equal(wake(two, WAKEUP_SOURCE_ON_DEMAND, "b", "{\"taskKey\":\"b\"}", NULL, &r4), WAKE_QUEUED);
        assert_int_equal(run_status(r3), RUN_RUNNING);
        assert_int_equal(run_status(r4), RUN_RUNNING);

        cancel(r1); /* the freed slot goes to the queued run */
        assert_int_equal(run_status(r2), RUN_RUNNING);
        assert_int_equal(finalize_cancel_agent_runs(&m->control, two), 0);
        cancel_all(one);
}

/* Reference §3.2 step 10: a wake joins the newest queued run of the same taskKey (a string,
 * or none at all); a running run of that task does not absorb it. */
static void test_task_key_coalescing(void **state) {
        _cleanup_free_ char *a = NULL, *b = NULL, *b2 = NULL, *none = NULL, *none2 = NULL, *num = NULL, *a2 = NULL;
        char one[UUID_STRING_MAX];

        fixture_new_agent(one, "one", SLEEPER, NULL);
        assert_int_equal(wake(one, WAKEUP_SOURCE_ON_DEMAND, "r", "{\"taskKey\":\"a\"}", NULL, &a), WAKE_QUEUED);
        assert_int_equal(run_status(a), RUN_RUNNING);
        assert_int_equal(wake(one, WAKEUP_SOURCE_ON_DEMAND, "r", "{\"taskKey\":\"b\"}", NULL, &b), WAKE_QUEUED);
        assert_int_equal(wake(one, WAKEUP_SOURCE_ON_DEMAND, "r", "{\"taskKey\":\"b\"}", NULL, &b2), WAKE_COALESCED);
        assert_string_equal(b2, b);
        assert_int_equal(wake(one, WAKEUP_SOURCE_ON_DEMAND, "r", "{}", NULL, &none), WAKE_QUEUED);
        assert_string_not_equal(none, b);
        assert_int_equal(wake(one, WAKEUP_SOURCE_ON_DEMAND, "r", "{}", NULL, &none2), WAKE_COALESCED);
        assert_string_equal(none2, none);
        /* A taskKey that is not a string is no key. */
        assert_int_equal(wake(one, WAKEUP_SOURCE_ON_DEMAND, "r", "{\"taskKey\":5}", NULL, &num), WAKE_COALESCED);
        assert_string_equal(num, none);
        assert_int_equal(wake(one, WAKEUP_SOURCE_ON_DEMAND, "r", "{\"taskKey\":\"a\"}", NULL, &a2), WAKE_QUEUED);
        assert_string_not_equal(a2, a);
        assert_int_equal(fixture_count("heartbeat_runs", "WHERE agent_id = ?1 AND status = 'queued'", one), 3);
        cancel_all(one);
}

/* Reference §3.7: in_progress issue runs first, then other issue runs by priority, then runs
 * without an issue. */
static void test_claim_order(void **state) {
        _cleanup_free_ char *hold = NULL, *r_low = NULL, *r_crit = NULL, *r_prog = NULL, *r_none = NULL, *p = NULL;
        char sleeper[UUID_STRING_MAX], low[UUID_STRING_MAX], crit[UUID_STRING_MAX], prog[UUID_STRING_MAX];
        _cleanup_(issue_donep) Issue i = {};

        fixture_new_agent(sleeper, "sleeper", SLEEPER, NULL);
        assert_int_equal(wake(sleeper, WAKEUP_SOURCE_ON_DEMAND, "hold", NULL, NULL, &hold), WAKE_QUEUED);
        assert_int_equal(run_status(hold), RUN_RUNNING);

        fixture_new_issue(low, ISSUE_TODO, sleeper);
        fixture_new_issue(crit, ISSUE_TODO, sleeper);
        fixture_new_issue(prog, ISSUE_IN_PROGRESS, sleeper);
        get_issue(low, &i);
        i.priority = PRIORITY_LOW;
        assert_int_equal(store_update(m->control.store, &issue_entity, &i), 0);
        entity_done(&issue_entity, &i);
        get_issue(crit, &i);
        i.priority = PRIORITY_CRITICAL;
        assert_int_equal(store_update(m->control.store, &issue_entity, &i), 0);

        assert_int_equal(wake(sleeper, WAKEUP_SOURCE_ON_DEMAND, "none", "{\"taskKey\":\"other\"}", NULL, &r_none), WAKE_QUEUED);
        free(p), p = issue_payload(low, NULL);
        assert_int_equal(wake(sleeper, WAKEUP_SOURCE_ASSIGNMENT, "issue_assigned", p, NULL, &r_low), WAKE_QUEUED);
        free(p), p = issue_payload(crit, NULL);
        assert_int_equal(wake(sleeper, WAKEUP_SOURCE_ASSIGNMENT, "issue_assigned", p, NULL, &r_crit), WAKE_QUEUED);
        free(p), p = issue_payload(prog, NULL);
        assert_int_equal(wake(sleeper, WAKEUP_SOURCE_ASSIGNMENT, "issue_assigned", p, NULL, &r_prog), WAKE_QUEUED);

        const char *order[] = { r_prog, r_crit, r_low, r_none };
        const char *previous = hold;
        for (size_t k = 0; k < ELEMENTSOF(order); k++) {
                cancel(previous);
                assert_int_equal(run_status(order[k]), RUN_RUNNING);
                for (size_t j = k + 1; j < ELEMENTSOF(order); j++)
                        assert_int_equal(run_status(order[j]), RUN_QUEUED);
                previous = order[k];
        }
        cancel_all(sleeper);
}

/* A timer wake while the agent runs on an issue never starts a second concurrent run; more
 * timer ticks join the queued timer run. */
static void test_timer_during_issue_run(void **state) {
        _cleanup_free_ char *r1 = NULL, *t1 = NULL, *t2 = NULL, *payload = NULL;
        char sleeper[UUID_STRING_MAX], issue[UUID_STRING_MAX];

        fixture_new_agent(sleeper, "sleeper", SLEEPER, "{\"heartbeat\":{\"enabled\":true,\"intervalSec\":60}}");
        fixture_new_issue(issue, ISSUE_TODO, sleeper);
        payload = issue_payload(issue, NULL);
        assert_int_equal(wake(sleeper, WAKEUP_SOURCE_ASSIGNMENT, "issue_assigned", payload, NULL, &r1), WAKE_QUEUED);
        assert_int_equal(wake(sleeper, WAKEUP_SOURCE_TIMER, "heartbeat_timer", NULL, NULL, &t1), WAKE_QUEUED);
        assert_int_equal(wake(sleeper, WAKEUP_SOURCE_TIMER, "heartbeat_timer", NULL, NULL, &t2), WAKE_COALESCED);
        assert_string_equal(t1, t2);
        claim_start_next(&m->control, sleeper);
        assert_int_equal(fixture_count("heartbeat_runs", "WHERE agent_id = ?1 AND status = 'running'", sleeper), 1);
        assert_int_equal(run_status(t1), RUN_QUEUED);
        cancel_all(sleeper);
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
        assert_int_equal(wake(sleeper, WAKEUP_SOURCE_ON_DEMAND, "x", "{\"taskKey\":\"k1\"}", "key-1", &r1), WAKE_QUEUED);
        wake(sleeper, WAKEUP_SOURCE_ON_DEMAND, "x", "{\"taskKey\":\"k2\"}", "key-1", &r2);
        assert_string_equal(r1, r2);
        assert_int_equal(fixture_count("heartbeat_runs", "WHERE agent_id = ?1", sleeper), 1);
        cancel_all(sleeper);
}

/* Finalization: run, wakeup, agent status and runtime state follow the outcome. */
static void test_finalize(void **state) {
        _cleanup_free_ char *failing_run = NULL, *ok_run = NULL;
        char failing[UUID_STRING_MAX];

        fixture_new_agent(failing, "failing", "{\"command\":\"/bin/sh\",\"args\":[\"-c\",\"echo oops >&2; exit 3\"]}", NULL);
        assert_int_equal(wake(failing, WAKEUP_SOURCE_ON_DEMAND, "x", NULL, NULL, &failing_run), WAKE_QUEUED);
        wait_terminal(failing_run);
        {
                _cleanup_(run_donep) Run r = {};
                _cleanup_(agent_donep) Agent a = {};
                _cleanup_(runtime_state_donep) AgentRuntimeState rs = {};
                _cleanup_(wakeup_donep) WakeupRequest w = {};
                get_run(failing_run, &r);
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

        assert_int_equal(wake(agent, WAKEUP_SOURCE_ON_DEMAND, "x", NULL, NULL, &ok_run), WAKE_QUEUED);
        wait_terminal(ok_run);
        {
                _cleanup_(run_donep) Run r = {};
                _cleanup_(agent_donep) Agent a = {};
                _cleanup_(wakeup_donep) WakeupRequest w = {};
                get_run(ok_run, &r);
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
        T(test_issue_lock_at_enqueue),
        T(test_comment_batching),
        T(test_release_promotes_every_agent),
        T(test_blockers_keep_run_queued),
        T(test_concurrency_limit),
        T(test_task_key_coalescing),
        T(test_claim_order),
        T(test_timer_during_issue_run),
        T(test_policy_skips),
        T(test_idempotency_key),
        T(test_finalize),
};

int main(void) {
        cmocka_set_message_output(CM_OUTPUT_TAP);
        return cmocka_run_group_tests(tests, fixture_group_setup, fixture_group_teardown);
}
