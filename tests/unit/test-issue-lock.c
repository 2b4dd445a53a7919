/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The issue lock (control/issue-lock.c) without HTTP: who holds an issue, the release of a
 * run's lock, and the API's checkout and release with their conflicts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "control/claim-pump.h"
#include "control/claim.h"
#include "control/issue-lock.h"
#include "manager-fixture.h"

/* A run of the fixture's agent on issue_id (NULL: none) with the given status. */
static void new_run(char id[static UUID_STRING_MAX], RunStatus status, const char *issue_id) {
        _cleanup_(run_donep) Run r = {};

        assert_int_equal(entity_init(&run_entity, &r), 0);
        assert_int_equal(record_stamp(&r.id, &r.created_at, &r.updated_at, NULL), 0);
        snprintf(id, UUID_STRING_MAX, "%s", r.id);
        r.company_id = strdup(company);
        r.agent_id = strdup(agent);
        r.status = status;
        free(r.context_snapshot);
        r.context_snapshot = issue_id ? strprintf("{\"issueId\":\"%s\"}", issue_id) : strdup("{}");
        fixture_insert(&run_entity, &r);
}

static void lock(const char *issue_id, const char *run_id) {
        _cleanup_(issue_donep) Issue i = {};
        char now[ISO_TIME_MAX];

        fixture_now(now);
        fixture_get_issue(issue_id, &i);
        assert_int_equal(issue_lock_set(m->control.store, &i, run_id, agent, now), 0);
}

static Actor board(void) {
        return (Actor){ .type = ACTOR_USER, .id = "board" };
}

static Actor agent_actor(const char *agent_id, const char *run_id) {
        Actor a = { .type = ACTOR_AGENT, .run_id = run_id };
        snprintf(a.id, sizeof(a.id), "%s", agent_id);
        return a;
}

static void test_set_keeps_updated_at(void **state) {
        char issue[UUID_STRING_MAX], run[UUID_STRING_MAX];
        _cleanup_(issue_donep) Issue before = {}, after = {};

        fixture_new_issue(issue, ISSUE_TODO, NULL);
        new_run(run, RUN_QUEUED, issue);
        fixture_get_issue(issue, &before);
        lock(issue, run);
        fixture_get_issue(issue, &after);
        assert_string_equal(after.execution_run_id, run);
        assert_string_equal(after.execution_agent_id, agent);
        assert_non_null(after.execution_locked_at);
        assert_string_equal(after.updated_at, before.updated_at);
}

static void test_holder_releases_stale_lock(void **state) {
        char issue[UUID_STRING_MAX], run[UUID_STRING_MAX], now[ISO_TIME_MAX];
        _cleanup_(issue_donep) Issue i = {}, stored = {};
        _cleanup_(run_donep) Run holder = {};
        bool found = true;

        fixture_new_issue(issue, ISSUE_IN_PROGRESS, agent);
        new_run(run, RUN_SUCCEEDED, issue);
        lock(issue, run);
        fixture_get_issue(issue, &i);
        fixture_now(now);
        assert_int_equal(issue_lock_holder(m->control.store, &i, now, &holder, &found), 0);
        assert_false(found);
        fixture_get_issue(issue, &stored);
        assert_null(stored.execution_run_id);
        assert_null(stored.execution_agent_id);
        assert_null(stored.execution_locked_at);
}

/* Runs queued before the lock existed count: the running one first, then the oldest. */
static void test_holder_adopts_active_run(void **state) {
        char issue[UUID_STRING_MAX], queued[UUID_STRING_MAX], running[UUID_STRING_MAX], now[ISO_TIME_MAX];
        _cleanup_(issue_donep) Issue i = {}, stored = {};
        _cleanup_(run_donep) Run holder = {};
        bool found = false;

        fixture_new_issue(issue, ISSUE_TODO, agent);
        new_run(queued, RUN_QUEUED, issue);
        new_run(running, RUN_RUNNING, issue);
        fixture_get_issue(issue, &i);
        fixture_now(now);
        assert_int_equal(issue_lock_holder(m->control.store, &i, now, &holder, &found), 0);
        assert_true(found);
        assert_string_equal(holder.id, running);
        fixture_get_issue(issue, &stored);
        assert_string_equal(stored.execution_run_id, running);
}

static void test_release_only_by_holder(void **state) {
        char issue[UUID_STRING_MAX], a[UUID_STRING_MAX], b[UUID_STRING_MAX], now[ISO_TIME_MAX];
        _cleanup_(run_donep) Run ra = {}, rb = {};
        _cleanup_(issue_donep) Issue released = {}, stored = {};
        bool done = true;

        fixture_new_issue(issue, ISSUE_IN_PROGRESS, agent);
        new_run(a, RUN_RUNNING, issue);
        new_run(b, RUN_RUNNING, issue);
        lock(issue, a);
        fixture_now(now);
        fixture_get_run(b, &rb);
        assert_int_equal(issue_lock_release(m->control.store, &rb, now, &released, &done), 0);
        assert_false(done);
        fixture_get_issue(issue, &stored);
        assert_string_equal(stored.execution_run_id, a);
        entity_done(&issue_entity, &stored);

        fixture_get_run(a, &ra);
        assert_int_equal(issue_lock_release(m->control.store, &ra, now, &released, &done), 0);
        assert_true(done);
        assert_string_equal(released.id, issue);
        fixture_get_issue(issue, &stored);
        assert_null(stored.execution_run_id);
}

/* A run without an issue in its context releases the issue whose lock it holds. */
static void test_release_found_by_run(void **state) {
        char issue[UUID_STRING_MAX], run[UUID_STRING_MAX], now[ISO_TIME_MAX];
        _cleanup_(run_donep) Run r = {};
        _cleanup_(issue_donep) Issue released = {};
        bool done = false;

        fixture_new_issue(issue, ISSUE_TODO, agent);
        new_run(run, RUN_RUNNING, NULL);
        lock(issue, run);
        fixture_get_run(run, &r);
        fixture_now(now);
        assert_int_equal(issue_lock_release(m->control.store, &r, now, &released, &done), 0);
        assert_true(done);
        assert_string_equal(released.id, issue);
        assert_null(released.execution_run_id);
}

static void test_checkout(void **state) {
        char issue[UUID_STRING_MAX], run[UUID_STRING_MAX], other_company_agent[UUID_STRING_MAX];
        _cleanup_(issue_donep) Issue now = {}, conflict = {};
        _cleanup_free_ char *error = NULL;
        Actor by_board = board();
        IssueCheckout c = { .agent_id = agent };

        fixture_new_issue(issue, ISSUE_TODO, NULL);
        /* By the board, for the agent: in progress, assigned, no run, so no lock. */
        assert_int_equal(issue_lock_checkout(&m->control, &by_board, issue, &c, &now, &error), 0);
        assert_int_equal(now.status, ISSUE_IN_PROGRESS);
        assert_string_equal(now.assignee_agent_id, agent);
        assert_null(now.assignee_user_id);
        assert_null(now.checkout_run_id);
        assert_null(now.execution_run_id);
        fixture_drain(); /* the agent was woken about it */

        /* In progress is not what a checkout expects by default: a conflict that shows the issue. */
        assert_int_equal(issue_lock_checkout(&m->control, &by_board, issue, &c, &conflict, &error), -EBUSY);
        assert_string_equal(error, "Issue checkout conflict");
        assert_int_equal(conflict.status, ISSUE_IN_PROGRESS);
        error = mfree(error);
        entity_done(&issue_entity, &now);
        fixture_cancel_all(agent);

        /* An agent's run checking out takes the checkout and the lock. */
        new_run(run, RUN_RUNNING, issue);
        Actor by_run = agent_actor(agent, run);
        IssueStatus expected[] = { ISSUE_IN_PROGRESS };
        IssueCheckout cr = { .agent_id = agent, .run_id = run, .expected = expected, .n_expected = 1 };
        assert_int_equal(issue_lock_checkout(&m->control, &by_run, issue, &cr, &now, &error), 0);
        assert_string_equal(now.checkout_run_id, run);
        assert_string_equal(now.execution_run_id, run);
        assert_string_equal(now.execution_agent_id, agent);

        /* An agent of another company is no assignee here. */
        _cleanup_(company_donep) Company other = {};
        assert_int_equal(entity_init(&company_entity, &other), 0);
        assert_int_equal(record_stamp(&other.id, &other.created_at, &other.updated_at, NULL), 0);
        other.name = strdup("Other");
        other.issue_prefix = strdup("OTHERX");
        fixture_insert(&company_entity, &other);
        fixture_new_agent(other_company_agent, "stranger", NULL, NULL);
        _cleanup_(agent_donep) Agent s = {};
        assert_int_equal(store_get(m->control.store, &agent_entity, other_company_agent, &s), 0);
        free(s.company_id);
        s.company_id = strdup(other.id);
        assert_int_equal(store_update(m->control.store, &agent_entity, &s), 0);
        IssueCheckout cs = { .agent_id = other_company_agent, .expected = expected, .n_expected = 1 };
        assert_int_equal(issue_lock_checkout(&m->control, &by_board, issue, &cs, &conflict, &error), -EBADR);
        assert_string_equal(error, "agentId: no such agent in this issue's company");
}

static void test_release_by(void **state) {
        char issue[UUID_STRING_MAX], run[UUID_STRING_MAX], other[UUID_STRING_MAX], other_run[UUID_STRING_MAX];
        _cleanup_(issue_donep) Issue now = {}, conflict = {}, stored = {};
        _cleanup_free_ char *error = NULL;

        fixture_new_agent(other, "other", NULL, NULL);
        fixture_new_issue(issue, ISSUE_TODO, agent);
        new_run(run, RUN_RUNNING, issue);
        Actor by_run = agent_actor(agent, run);
        IssueCheckout c = { .agent_id = agent, .run_id = run };
        assert_int_equal(issue_lock_checkout(&m->control, &by_run, issue, &c, &now, &error), 0);
        entity_done(&issue_entity, &now);

        Actor stranger = agent_actor(other, NULL);
        assert_int_equal(issue_lock_release_by(&m->control, &stranger, issue, &conflict, &error), -EBUSY);
        assert_string_equal(error, "Only assignee can release issue");
        assert_string_equal(conflict.checkout_run_id, run);
        error = mfree(error);
        entity_done(&issue_entity, &conflict);

        new_run(other_run, RUN_RUNNING, issue);
        Actor another_run = agent_actor(agent, other_run);
        assert_int_equal(issue_lock_release_by(&m->control, &another_run, issue, &conflict, &error), -EBUSY);
        assert_string_equal(error, "Only checkout run can release issue");
        error = mfree(error);

        assert_int_equal(issue_lock_release_by(&m->control, &by_run, issue, &now, &error), 0);
        fixture_get_issue(issue, &stored);
        assert_int_equal(stored.status, ISSUE_TODO);
        assert_null(stored.assignee_agent_id);
        assert_null(stored.checkout_run_id);
        assert_null(stored.execution_run_id);
        assert_int_equal(fixture_count("activity_log", "WHERE action = ?1", "issue.released"), 1);
}

/* An active run holding the lock keeps every other run from the issue: a checkout by another
 * run conflicts, and another queued run of the issue is not claimed, until the holder ends. */
static void test_active_holder_keeps_others_out(void **state) {
        char issue[UUID_STRING_MAX], holder[UUID_STRING_MAX], other[UUID_STRING_MAX];
        _cleanup_(issue_donep) Issue conflict = {};
        _cleanup_(run_donep) Run r = {};
        _cleanup_free_ char *error = NULL;
        IssueStatus expected[] = { ISSUE_TODO };

        fixture_new_issue(issue, ISSUE_TODO, agent);
        new_run(holder, RUN_RUNNING, issue);
        lock(issue, holder);
        new_run(other, RUN_QUEUED, issue);

        Actor by_other = agent_actor(agent, other);
        IssueCheckout c = { .agent_id = agent, .run_id = other, .expected = expected, .n_expected = 1 };
        assert_int_equal(issue_lock_checkout(&m->control, &by_other, issue, &c, &conflict, &error), -EBUSY);
        assert_string_equal(conflict.execution_run_id, holder);

        claim_start_next(&m->control, agent);
        assert_int_equal(fixture_run_status(other), RUN_QUEUED);

        /* The holder ended: the lock is stale, and the waiting run is claimed. */
        fixture_get_run(holder, &r);
        r.status = RUN_SUCCEEDED;
        assert_int_equal(store_update(m->control.store, &run_entity, &r), 0);
        claim_start_next(&m->control, agent);
        assert_int_equal(fixture_run_status(other), RUN_RUNNING);
        fixture_cancel_all(agent);
}

#define T(f) cmocka_unit_test_setup_teardown(f, fixture_manager_setup, fixture_manager_teardown)
static const struct CMUnitTest tests[] = {
        T(test_set_keeps_updated_at),
        T(test_holder_releases_stale_lock),
        T(test_holder_adopts_active_run),
        T(test_release_only_by_holder),
        T(test_release_found_by_run),
        T(test_checkout),
        T(test_release_by),
        T(test_active_holder_keeps_others_out),
};

int main(void) {
        cmocka_set_message_output(CM_OUTPUT_TAP);
        return cmocka_run_group_tests(tests, fixture_group_setup, fixture_group_teardown);
}
