/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Claiming (control/claim.c): blockers keep an issue run queued, the per-agent concurrency
 * limit, and the claim order (reference §3.7), with real sleeping processes.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "control/claim-pump.h"
#include "control/claim.h"
#include "control/finalize.h"
#include "control/wakeup.h"
#include "manager-fixture.h"
#include "store/jsonmap.h"
#include "supervise/supervisor.h"

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

        payload = fixture_issue_payload(issue, NULL);
        assert_int_equal(fixture_wake(agent, WAKEUP_SOURCE_ASSIGNMENT, "issue_assigned", payload, NULL, &run), WAKE_QUEUED);
        claim_start_next(&m->control, agent);
        assert_int_equal(fixture_run_status(run), RUN_QUEUED);

        _cleanup_(issue_donep) Issue b = {};
        fixture_get_issue(blocker, &b);
        b.status = ISSUE_DONE;
        assert_int_equal(store_update(m->control.store, &issue_entity, &b), 0);
        claim_start_next(&m->control, agent);
        fixture_wait_terminal(run);
        assert_int_equal(fixture_run_status(run), RUN_SUCCEEDED);
}

/* maxConcurrentRuns: 1 by default, more when configured. */
static void test_concurrency_limit(void **state) {
        _cleanup_free_ char *r1 = NULL, *r2 = NULL, *r3 = NULL, *r4 = NULL;
        char one[UUID_STRING_MAX], two[UUID_STRING_MAX];

        fixture_new_agent(one, "one", SLEEPER, NULL);
        fixture_new_agent(two, "two", SLEEPER, "{\"heartbeat\":{\"maxConcurrentRuns\":2}}");
        assert_int_equal(fixture_wake(one, WAKEUP_SOURCE_ON_DEMAND, "a", "{\"taskKey\":\"a\"}", NULL, &r1), WAKE_QUEUED);
        assert_int_equal(fixture_wake(one, WAKEUP_SOURCE_ON_DEMAND, "b", "{\"taskKey\":\"b\"}", NULL, &r2), WAKE_QUEUED);
        assert_int_equal(fixture_run_status(r1), RUN_RUNNING);
        assert_int_equal(fixture_run_status(r2), RUN_QUEUED);
        assert_int_equal(fixture_wake(two, WAKEUP_SOURCE_ON_DEMAND, "a", "{\"taskKey\":\"a\"}", NULL, &r3), WAKE_QUEUED);
        assert_int_equal(fixture_wake(two, WAKEUP_SOURCE_ON_DEMAND, "b", "{\"taskKey\":\"b\"}", NULL, &r4), WAKE_QUEUED);
        assert_int_equal(fixture_run_status(r3), RUN_RUNNING);
        assert_int_equal(fixture_run_status(r4), RUN_RUNNING);

        fixture_cancel(r1); /* the freed slot goes to the queued run */
        assert_int_equal(fixture_run_status(r2), RUN_RUNNING);
        assert_int_equal(finalize_cancel_agent_runs(&m->control, two, RUN_END_CANCELLED), 0);
        fixture_cancel_all(one);
}

/* Reference §3.7: in_progress issue runs first, then other issue runs by priority, then runs
 * without an issue. */
static void test_claim_order(void **state) {
        _cleanup_free_ char *hold = NULL, *r_low = NULL, *r_crit = NULL, *r_prog = NULL, *r_none = NULL, *p = NULL;
        char sleeper[UUID_STRING_MAX], low[UUID_STRING_MAX], crit[UUID_STRING_MAX], prog[UUID_STRING_MAX];
        _cleanup_(issue_donep) Issue i = {};

        fixture_new_agent(sleeper, "sleeper", SLEEPER, NULL);
        assert_int_equal(fixture_wake(sleeper, WAKEUP_SOURCE_ON_DEMAND, "hold", NULL, NULL, &hold), WAKE_QUEUED);
        assert_int_equal(fixture_run_status(hold), RUN_RUNNING);

        fixture_new_issue(low, ISSUE_TODO, sleeper);
        fixture_new_issue(crit, ISSUE_TODO, sleeper);
        fixture_new_issue(prog, ISSUE_IN_PROGRESS, sleeper);
        fixture_get_issue(low, &i);
        i.priority = PRIORITY_LOW;
        assert_int_equal(store_update(m->control.store, &issue_entity, &i), 0);
        entity_done(&issue_entity, &i);
        fixture_get_issue(crit, &i);
        i.priority = PRIORITY_CRITICAL;
        assert_int_equal(store_update(m->control.store, &issue_entity, &i), 0);

        assert_int_equal(fixture_wake(sleeper, WAKEUP_SOURCE_ON_DEMAND, "none", "{\"taskKey\":\"other\"}", NULL, &r_none),
                         WAKE_QUEUED);
        free(p), p = fixture_issue_payload(low, NULL);
        assert_int_equal(fixture_wake(sleeper, WAKEUP_SOURCE_ASSIGNMENT, "issue_assigned", p, NULL, &r_low), WAKE_QUEUED);
        free(p), p = fixture_issue_payload(crit, NULL);
        assert_int_equal(fixture_wake(sleeper, WAKEUP_SOURCE_ASSIGNMENT, "issue_assigned", p, NULL, &r_crit), WAKE_QUEUED);
        free(p), p = fixture_issue_payload(prog, NULL);
        assert_int_equal(fixture_wake(sleeper, WAKEUP_SOURCE_ASSIGNMENT, "issue_assigned", p, NULL, &r_prog), WAKE_QUEUED);

        const char *order[] = { r_prog, r_crit, r_low, r_none };
        const char *previous = hold;
        for (size_t k = 0; k < ELEMENTSOF(order); k++) {
                fixture_cancel(previous);
                assert_int_equal(fixture_run_status(order[k]), RUN_RUNNING);
                for (size_t j = k + 1; j < ELEMENTSOF(order); j++)
                        assert_int_equal(fixture_run_status(order[j]), RUN_QUEUED);
                previous = order[k];
        }
        fixture_cancel_all(sleeper);
}

/* A shim of it was started: the supervisor tracks it, or its row names one. */
static bool launched(const char *run_id) {
        _cleanup_(run_donep) Run r = {};
        fixture_get_run(run_id, &r);
        return supervisor_tracks(m->control.supervisor, run_id) || r.shim_pid != INT_NULL;
}

/* An agent with n runs queued (their ids in runs[], unless NULL) and max_concurrent slots:
 * homed on another host while they are woken, so that they stay queued, then on any host. */
static void new_queued_agent(char id[static UUID_STRING_MAX], const char *name, int max_concurrent, int n, char **runs) {
        _cleanup_free_ char *homed = strprintf("{\"hosts\":[\"elsewhere\"],\"heartbeat\":{\"maxConcurrentRuns\":%d}}",
                                               max_concurrent),
                            *anywhere = strprintf("{\"heartbeat\":{\"maxConcurrentRuns\":%d}}", max_concurrent);
        _cleanup_(agent_donep) Agent a = {};

        fixture_new_agent(id, name, SLEEPER, homed);
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *run = NULL;
                char payload[32];
                snprintf(payload, sizeof(payload), "{\"taskKey\":\"t%d\"}", i);
                assert_int_equal(fixture_wake(id, WAKEUP_SOURCE_ON_DEMAND, name, payload, NULL, &run), WAKE_QUEUED);
                assert_int_equal(fixture_run_status(run), RUN_QUEUED);
                if (runs)
                        runs[i] = TAKE_PTR(run);
        }
        assert_int_equal(store_get(m->control.store, &agent_entity, id, &a), 0);
        free(a.runtime_config);
        a.runtime_config = TAKE_PTR(anywhere);
        assert_int_equal(store_update(m->control.store, &agent_entity, &a), 0);
}

/* Claims asked for in bulk (claim-pump.h) are made from the loop, not before it turns; all
 * of them before any launch; and a run cancelled between its claim and its launch is never
 * launched, while the others are. */
static void test_pump_claims_then_launches(void **state) {
        enum { N = 4 };
        char bulk[UUID_STRING_MAX];
        char *runs[N] = {};

        new_queued_agent(bulk, "bulk", N, N, runs);

        claim_pump_want(&m->control, bulk);
        for (int i = 0; i < N; i++)
                assert_int_equal(fixture_run_status(runs[i]), RUN_QUEUED);
        for (int turn = 0; turn < 100 && fixture_run_status(runs[N - 1]) == RUN_QUEUED; turn++)
                assert_true(sd_event_run(m->control.event, 0) >= 0);
        for (int i = 0; i < N; i++) {
                assert_int_equal(fixture_run_status(runs[i]), RUN_RUNNING);
                assert_false(launched(runs[i]));
        }
        assert_int_equal(fixture_count("agent_wakeup_requests", "WHERE agent_id = ?1 AND status = 'claimed'", bulk), N);

        assert_int_equal(finalize_cancel_run(&m->control, runs[0]), 0);
        assert_int_equal(fixture_run_status(runs[0]), RUN_CANCELLED);
        for (int turn = 0; turn < 400 && supervisor_count(m->control.supervisor) < N - 1; turn++)
                assert_true(sd_event_run(m->control.event, 50000) >= 0);
        assert_int_equal(supervisor_count(m->control.supervisor), N - 1);
        assert_false(launched(runs[0]));
        for (int i = 1; i < N; i++) {
                assert_int_equal(fixture_run_status(runs[i]), RUN_RUNNING);
                assert_true(launched(runs[i]));
        }
        fixture_cancel_all(bulk);
        for (int i = 0; i < N; i++)
                free(runs[i]);
}

static int on_ready(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        bool *ready = userdata;
        uint64_t v;

        assert_int_equal(read(fd, &v, sizeof(v)), sizeof(v));
        *ready = true;
        return 0;
}

/* The launches of claims asked for in bulk are made a slice at a time, and what else is
 * ready (a request, a run's end) is dispatched between two slices, not after the last: an
 * eventfd written after the first slice waits for one slice at most (the one whose turn
 * it may share). */
static void test_pump_lets_others_run(void **state) {
        /* 200 launches take several slices even on a fast machine (60 fitted in one). */
        enum { AGENTS = 20, PER_AGENT = 10, N = AGENTS * PER_AGENT }; /* 10: the most an agent runs at once */
        _cleanup_(sd_event_source_unrefp) sd_event_source *io = NULL;
        _cleanup_close_ int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        bool ready = false;
        unsigned slices_before = 0;
        char many[AGENTS][UUID_STRING_MAX];

        assert_true(fd >= 0);
        for (int k = 0; k < AGENTS; k++) {
                char name[16];
                snprintf(name, sizeof(name), "many-%d", k);
                new_queued_agent(many[k], name, PER_AGENT, PER_AGENT, NULL);
        }
        assert_int_equal(sd_event_add_io(m->control.event, &io, fd, EPOLLIN, on_ready, &ready), 0);

        for (int k = 0; k < AGENTS; k++)
                claim_pump_want(&m->control, many[k]);
        for (int turn = 0; turn < 100 && supervisor_count(m->control.supervisor) == 0; turn++)
                assert_true(sd_event_run(m->control.event, 0) >= 0);
        assert_true(supervisor_count(m->control.supervisor) > 0);
        assert_true(supervisor_count(m->control.supervisor) < N);
        assert_int_equal(write(fd, &(uint64_t){ 1 }, sizeof(uint64_t)), sizeof(uint64_t));
        /* One source is dispatched a turn: a turn that launched was a slice of the pump. */
        for (int turn = 0; turn < 1000 && (!ready || supervisor_count(m->control.supervisor) < N); turn++) {
                unsigned before = supervisor_count(m->control.supervisor);
                assert_true(sd_event_run(m->control.event, 0) >= 0);
                if (!ready && supervisor_count(m->control.supervisor) > before)
                        slices_before++;
        }
        assert_true(ready);
        assert_int_equal(supervisor_count(m->control.supervisor), N);
        assert_true(slices_before <= 1);
        for (int k = 0; k < AGENTS; k++)
                assert_int_equal(finalize_cancel_agent_runs(&m->control, many[k], RUN_END_CANCELLED), 0);
        fixture_drain();
}

/* A claim that finds the database busy (another host holds its write lock past the busy
 * timeout) claims nothing, and is made again from the loop once it is free: not left
 * queued for the sweep. PostgreSQL only: a private in-memory SQLite database has no other
 * connection to hold its lock. */
static void test_busy_claim_made_again(void **state) {
        _cleanup_(store_freep) Store *other = NULL;
        _cleanup_free_ char *run = NULL;
        char busy[UUID_STRING_MAX];

        new_queued_agent(busy, "busy", 1, 1, &run);

        store_set_busy_timeout(m->control.store, 50);
        assert_int_equal(store_open(store_target(m->control.store), &other), 0);
        assert_int_equal(store_begin(other), 0);
        claim_start_next(&m->control, busy);
        assert_int_equal(fixture_run_status(run), RUN_QUEUED);
        /* Still busy at the next attempt, and the one after: it keeps being made. */
        for (int turn = 0; turn < 4; turn++)
                assert_true(sd_event_run(m->control.event, 500000) >= 0);
        assert_int_equal(fixture_run_status(run), RUN_QUEUED);
        store_rollback(other);
        for (int turn = 0; turn < 100 && fixture_run_status(run) == RUN_QUEUED; turn++)
                assert_true(sd_event_run(m->control.event, 50000) >= 0);
        assert_int_equal(fixture_run_status(run), RUN_RUNNING);
        fixture_cancel_all(busy);
}

#define T(f) cmocka_unit_test_setup_teardown(f, fixture_manager_setup, fixture_manager_teardown)
static const struct CMUnitTest tests[] = {
        T(test_blockers_keep_run_queued),
        T(test_concurrency_limit),
        T(test_claim_order),
        T(test_pump_claims_then_launches),
        T(test_pump_lets_others_run),
        /* Last: PostgreSQL only. */
        T(test_busy_claim_made_again),
};

int main(void) {
        const char *db = getenv("CORRAL_TEST_DATABASE");
        size_t n = ELEMENTSOF(tests) - (db && *db ? 0 : 1);

        cmocka_set_message_output(CM_OUTPUT_TAP);
        return _cmocka_run_group_tests("tests", tests, n, fixture_group_setup, fixture_group_teardown);
}
