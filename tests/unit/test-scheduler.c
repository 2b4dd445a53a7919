/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Timer heartbeats (control/scheduler.c): an agent whose interval is due is woken by the
 * timer, one with heartbeats off or paused is not.
 */
#include <stdio.h>
#include <stdlib.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "control/scheduler.h"
#include "manager-fixture.h"

static void backdate(const char *agent_id) {
        _cleanup_(agent_donep) Agent a = {};
        assert_int_equal(store_get(m->control.store, &agent_entity, agent_id, &a), 0);
        free(a.created_at);
        a.created_at = strdup("2026-01-01T00:00:00.000Z");
        assert_int_equal(store_update(m->control.store, &agent_entity, &a), 0);
}

static int64_t timer_runs(const char *agent_id) {
        int64_t n;
        assert_int_equal(store_count(m->control.store, "heartbeat_runs", "WHERE agent_id = ?1 AND invocation_source = 'timer'",
                                     (const char *const[]){ agent_id, NULL }, &n),
                         0);
        return n;
}

static void test_due_agent_is_woken(void **state) {
        char due[UUID_STRING_MAX], off[UUID_STRING_MAX], paused[UUID_STRING_MAX];
        Scheduler *s = NULL;

        fixture_new_agent(due, "due", NULL, "{\"heartbeat\":{\"enabled\":true,\"intervalSec\":60}}");
        fixture_new_agent(off, "off", NULL, "{\"heartbeat\":{\"enabled\":false,\"intervalSec\":60}}");
        fixture_new_agent(paused, "paused", NULL, "{\"heartbeat\":{\"enabled\":true,\"intervalSec\":60}}");
        backdate(due);
        backdate(off);
        backdate(paused);
        fixture_set_agent_status(paused, AGENT_PAUSED);

        assert_int_equal(scheduler_new(&m->control, &s), 0);
        /* The first tick is at once; wait for its wake (at most 10 s). */
        for (int i = 0; i < 200 && timer_runs(due) == 0; i++)
                assert_true(sd_event_run(m->control.event, 50000) >= 0);
        assert_int_equal(timer_runs(due), 1);
        /* Its interval is a minute: a second tick now wakes nobody again. */
        scheduler_reschedule(s);
        for (int i = 0; i < 4; i++)
                assert_true(sd_event_run(m->control.event, 10000) >= 0);
        assert_int_equal(timer_runs(due), 1);
        assert_int_equal(timer_runs(off), 0);
        assert_int_equal(timer_runs(paused), 0);
        scheduler_free(s);
        fixture_drain();
}

#define T(f) cmocka_unit_test_setup_teardown(f, fixture_manager_setup, fixture_manager_teardown)
static const struct CMUnitTest tests[] = { T(test_due_agent_is_woken) };

int main(void) {
        cmocka_set_message_output(CM_OUTPUT_TAP);
        return cmocka_run_group_tests(tests, fixture_group_setup, fixture_group_teardown);
}
