/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Per-agent quotas in one-minute windows. */
#include <errno.h>

#include "basic/time-util.h"
#include "control/quota.h"
#include "test-helpers.h"

static void test_quota_window(void **state) {
        Quota *q = NULL;
        unsigned wait;
        uint64_t t0 = 1000 * USEC_PER_SEC;

        assert_int_equal(quota_new(&q), 0);
        for (int i = 0; i < 3; i++)
                assert_int_equal(quota_take(q, QUOTA_WAKES, "agent-a", 3, t0 + (uint64_t) i * USEC_PER_SEC, &wait), 0);
        /* The fourth within the minute is refused, with the seconds until the window ends. */
        assert_int_equal(quota_take(q, QUOTA_WAKES, "agent-a", 3, t0 + 20 * USEC_PER_SEC, &wait), -EDQUOT);
        assert_int_equal(wait, 40);
        /* Another agent and another kind count apart. */
        assert_int_equal(quota_take(q, QUOTA_WAKES, "agent-b", 3, t0 + 20 * USEC_PER_SEC, &wait), 0);
        assert_int_equal(quota_take(q, QUOTA_COMMENTS, "agent-a", 3, t0 + 20 * USEC_PER_SEC, &wait), 0);
        /* A new window once the minute has passed. */
        assert_int_equal(quota_take(q, QUOTA_WAKES, "agent-a", 3, t0 + 60 * USEC_PER_SEC, &wait), 0);
        /* 0 is no quota. */
        for (int i = 0; i < 1000; i++)
                assert_int_equal(quota_take(q, QUOTA_WAKES, "agent-c", 0, t0, &wait), 0);
        quota_free(q);
}

static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quota_window),
};

RUN_TESTS(tests)
