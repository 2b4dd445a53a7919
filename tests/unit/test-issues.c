/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Issue record rules of reference §1.8: status timestamps, lock fields released
 * by status and assignee changes, identifier prefixes.
 */
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "store/issues.h"
#include "store/model.h"
#include "test-helpers.h"

#define NOW "2026-11-25T12:00:00.000Z"
#define EARLIER "2026-11-24T08:00:00.000Z"

static void locked_issue(Issue *i, IssueStatus status) {
        assert_int_equal(entity_init(&issue_entity, i), 0);
        i->status = status;
        i->assignee_agent_id = strdup("agent-1");
        i->checkout_run_id = strdup("run-1");
        i->execution_run_id = strdup("run-1");
        i->execution_agent_id = strdup("agent-1");
        i->execution_locked_at = strdup(EARLIER);
}

static void assert_unlocked(const Issue *i) {
        assert_null(i->execution_run_id);
        assert_null(i->execution_agent_id);
        assert_null(i->execution_locked_at);
}

static void assert_locked(const Issue *i) {
        assert_string_equal(i->execution_run_id, "run-1");
        assert_string_equal(i->execution_agent_id, "agent-1");
        assert_string_equal(i->execution_locked_at, EARLIER);
}

static void update(const Issue *before, Issue *after, bool status_given) {
        assert_int_equal(issue_apply_update_rules(before, after, status_given, NOW), 0);
}

static void test_create_times(void **state) {
        _cleanup_(issue_donep) Issue a = {}, b = {}, c = {};

        assert_int_equal(entity_init(&issue_entity, &a), 0);
        a.status = ISSUE_IN_PROGRESS;
        assert_int_equal(issue_apply_create_rules(&a, NOW), 0);
        assert_string_equal(a.started_at, NOW);
        assert_null(a.completed_at);

        assert_int_equal(entity_init(&issue_entity, &b), 0);
        b.status = ISSUE_DONE;
        assert_int_equal(issue_apply_create_rules(&b, NOW), 0);
        assert_string_equal(b.completed_at, NOW);
        assert_null(b.started_at);

        assert_int_equal(entity_init(&issue_entity, &c), 0);
        c.status = ISSUE_CANCELLED;
        assert_int_equal(issue_apply_create_rules(&c, NOW), 0);
        assert_string_equal(c.cancelled_at, NOW);
}

static void test_to_in_progress_keeps_lock_and_start(void **state) {
        _cleanup_(issue_donep) Issue before = {}, after = {};

        locked_issue(&before, ISSUE_TODO);
        assert_int_equal(entity_copy(&issue_entity, &before, &after), 0);
        after.status = ISSUE_IN_PROGRESS;
        update(&before, &after, true);
        assert_string_equal(after.started_at, NOW);
        assert_locked(&after);
        assert_string_equal(after.checkout_run_id, "run-1");

        /* startedAt is set once. */
        _cleanup_(issue_donep) Issue again = {};
        free(after.started_at);
        after.started_at = strdup(EARLIER);
        after.status = ISSUE_BLOCKED;
        assert_int_equal(entity_copy(&issue_entity, &after, &again), 0);
        again.status = ISSUE_IN_PROGRESS;
        update(&after, &again, true);
        assert_string_equal(again.started_at, EARLIER);
}

static void test_done_releases_and_stamps(void **state) {
        _cleanup_(issue_donep) Issue before = {}, after = {};

        locked_issue(&before, ISSUE_IN_PROGRESS);
        assert_int_equal(entity_copy(&issue_entity, &before, &after), 0);
        after.status = ISSUE_DONE;
        update(&before, &after, true);
        assert_string_equal(after.completed_at, NOW);
        assert_null(after.cancelled_at);
        assert_unlocked(&after);
        assert_null(after.checkout_run_id);
}

static void test_reopen_clears_completed(void **state) {
        _cleanup_(issue_donep) Issue before = {}, after = {};

        assert_int_equal(entity_init(&issue_entity, &before), 0);
        before.status = ISSUE_DONE;
        before.completed_at = strdup(EARLIER);
        assert_int_equal(entity_copy(&issue_entity, &before, &after), 0);
        after.status = ISSUE_TODO;
        update(&before, &after, true);
        assert_null(after.completed_at);

        _cleanup_(issue_donep) Issue c1 = {}, c2 = {};
        assert_int_equal(entity_init(&issue_entity, &c1), 0);
        c1.status = ISSUE_CANCELLED;
        c1.cancelled_at = strdup(EARLIER);
        assert_int_equal(entity_copy(&issue_entity, &c1, &c2), 0);
        c2.status = ISSUE_BACKLOG;
        update(&c1, &c2, true);
        assert_null(c2.cancelled_at);
}

static void test_reassign_in_progress_goes_to_todo(void **state) {
        _cleanup_(issue_donep) Issue before = {}, after = {};

        locked_issue(&before, ISSUE_IN_PROGRESS);
        assert_int_equal(entity_copy(&issue_entity, &before, &after), 0);
        free(after.assignee_agent_id);
        after.assignee_agent_id = strdup("agent-2");
        update(&before, &after, false);
        assert_int_equal(after.status, ISSUE_TODO);
        assert_null(after.checkout_run_id);
        assert_unlocked(&after);
}

static void test_reassign_with_in_progress_keeps_lock(void **state) {
        _cleanup_(issue_donep) Issue before = {}, after = {};

        locked_issue(&before, ISSUE_TODO);
        assert_int_equal(entity_copy(&issue_entity, &before, &after), 0);
        free(after.assignee_agent_id);
        after.assignee_agent_id = strdup("agent-2");
        after.status = ISSUE_IN_PROGRESS;
        update(&before, &after, true);
        assert_int_equal(after.status, ISSUE_IN_PROGRESS);
        assert_null(after.checkout_run_id);
        assert_locked(&after);
}

static void test_unrelated_change_keeps_everything(void **state) {
        _cleanup_(issue_donep) Issue before = {}, after = {};

        locked_issue(&before, ISSUE_TODO);
        assert_int_equal(entity_copy(&issue_entity, &before, &after), 0);
        free(after.title);
        after.title = strdup("renamed");
        after.priority = PRIORITY_CRITICAL;
        update(&before, &after, false);
        assert_int_equal(after.status, ISSUE_TODO);
        assert_string_equal(after.checkout_run_id, "run-1");
        assert_locked(&after);
        /* Naming the same status is not a status change. */
        update(&before, &after, true);
        assert_locked(&after);
}

static void test_prefixes(void **state) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL;

        assert_true(issue_prefix_is_valid("ACME"));
        assert_true(issue_prefix_is_valid("A1"));
        assert_false(issue_prefix_is_valid("1A"));
        assert_false(issue_prefix_is_valid("acme"));
        assert_false(issue_prefix_is_valid(""));
        assert_false(issue_prefix_is_valid("ABCDEFGHIJK"));
        assert_false(issue_prefix_is_valid("AC-ME"));

        assert_int_equal(issue_prefix_from_name("Acme Robotics", &a), 0);
        assert_string_equal(a, "ACME");
        assert_int_equal(issue_prefix_from_name("42 x-ray labs", &b), 0);
        assert_string_equal(b, "XRAY");
        assert_int_equal(issue_prefix_from_name("\xc3\xa9t\xc3\xa9", &c), 0);
        assert_string_equal(c, "T");
        assert_int_equal(issue_prefix_from_name("!!!", &d), 0);
        assert_string_equal(d, "CRL");
}

static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_times),
        cmocka_unit_test(test_to_in_progress_keeps_lock_and_start),
        cmocka_unit_test(test_done_releases_and_stamps),
        cmocka_unit_test(test_reopen_clears_completed),
        cmocka_unit_test(test_reassign_in_progress_goes_to_todo),
        cmocka_unit_test(test_reassign_with_in_progress_keeps_lock),
        cmocka_unit_test(test_unrelated_change_keeps_everything),
        cmocka_unit_test(test_prefixes),
};

RUN_TESTS(tests)
