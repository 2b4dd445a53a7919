/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Placement (supervise/placement*.c) without a cgroup tree: the none backend's place and
 * its process-group kill, and the names of the scope backend's units.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "supervise/placement-internal.h"
#include "test-helpers.h"

static void test_scope_run_id(void **state) {
        _cleanup_free_ char *id = scope_run_id("corral-run-0199a213-81c0-7800-8aa1-bbab2a035a53.scope");

        assert_string_equal(id, "0199a213-81c0-7800-8aa1-bbab2a035a53");
        static const char *const not_runs[] = {
                "corral-run-.scope", /* no id */
                "corral-run-x.service", /* not a scope */
                "other-run-x.scope",    "corral-run-x.scopeX", "",
        };
        for (size_t i = 0; i < ELEMENTSOF(not_runs); i++) {
                char *none = scope_run_id(not_runs[i]);
                assert_null(none);
        }
}

static void test_none_backend(void **state) {
        _cleanup_(run_place_done) RunPlace place = { .cgroup_fd = -EBADF };
        _cleanup_free_ char *warning = NULL, *run_id = (char *) 1;
        RunLimits limits = { .memory_max = 1 << 20 };
        Placement *p = NULL;
        unsigned n = 7;
        int status;

        assert_int_equal(placement_new(PLACEMENT_NONE, NULL, NULL, &p), 0);
        assert_int_equal(p->kind, PLACEMENT_NONE);
        assert_null(p->ops->attach);
        /* Limits are refused loudly, not silently dropped. */
        assert_int_equal(p->ops->prepare(p, "r-1", &limits, &place, &warning), 0);
        assert_non_null(warning);
        assert_non_null(strstr(warning, "limits not enforced"));
        assert_true(place.cgroup_fd < 0);
        assert_int_equal(p->ops->populated(p, &place), 0);
        assert_int_equal(p->ops->count(p, &place, &n), 0);
        assert_int_equal(n, 0);
        assert_null(p->ops->events_path(p, &place));
        /* No run is found from a pid where nothing but process groups exist. */
        assert_int_equal(placement_run_of_pid(p, getpid(), &run_id), 0);
        assert_null(run_id);

        /* Killing the run kills its process group. */
        pid_t child = fork();
        if (child == 0) {
                setpgid(0, 0);
                pause();
                _exit(0);
        }
        assert_true(child > 0);
        (void) setpgid(child, child);
        place.pgid = child;
        assert_int_equal(p->ops->kill_all(p, &place), 0);
        assert_int_equal(waitpid(child, &status, 0), child);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGKILL);
        /* A group that is gone is no error. */
        assert_int_equal(p->ops->kill_all(p, &place), 0);
        placement_free(p);
}

static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scope_run_id),
        cmocka_unit_test(test_none_backend),
};

RUN_TESTS(tests)
