/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* corrald.conf parsing: keys, comments, sections, quoting, bad values, overrides. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/config.h"
#include "basic/log.h"
#include "test-helpers.h"

static char *write_conf(const char *text) {
        char *path = strdup("/tmp/corral-test-config-XXXXXX");
        int fd = mkstemp(path);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        close(fd);
        return path;
}

static void test_defaults(void **state) {
        Config c;
        _cleanup_free_ char *db = NULL;

        assert_int_equal(config_init(&c), 0);
        assert_string_equal(c.state_dir, CORRAL_LOCALSTATEDIR "/lib/corral");
        assert_string_equal(c.socket_path, CORRAL_RUNSTATEDIR "/corral/corrald.sock");
        assert_int_equal(c.placement, PLACEMENT_AUTO);
        assert_int_equal(c.log_level, LOG_INFO);
        db = config_database_path(&c);
        assert_string_equal(db, CORRAL_LOCALSTATEDIR "/lib/corral/corral.db");
        config_done(&c);
}

static void test_file(void **state) {
        _cleanup_free_ char *path = write_conf("# corrald.conf\n"
                                               "[corrald]\n"
                                               "state-dir = /srv/corral\n"
                                               "  ; a comment\n"
                                               "\n"
                                               "socket=\"/run/my corral/api.sock\"\n"
                                               "placement = cgroup\n"
                                               "log-level = debug\n"
                                               "future-key = 1\n");
        _cleanup_free_ char *db = NULL;
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(config_load_file(&c, path, true), 0);
        assert_string_equal(c.state_dir, "/srv/corral");
        assert_string_equal(c.socket_path, "/run/my corral/api.sock");
        assert_int_equal(c.placement, PLACEMENT_CGROUP);
        assert_int_equal(c.log_level, LOG_DEBUG);
        db = config_database_path(&c);
        assert_string_equal(db, "/srv/corral/corral.db");
        config_done(&c);
        unlink(path);
}

static void test_bad_values(void **state) {
        const char *bad[] = {
                "placement = somewhere\n",
                "state-dir = relative/path\n",
                "log-level = chatty\n",
                "just some words\n",
                "socket = "
                "/a/very/long/path/that/does/not/fit/into/sun_path/because/unix/sockets/are/limited/to/one/hundred/and/eight/"
                "bytes\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *path = write_conf(bad[i]);
                Config c;
                assert_int_equal(config_init(&c), 0);
                assert_int_equal(config_load_file(&c, path, true), -EINVAL);
                config_done(&c);
                unlink(path);
        }
}

static void test_set_and_missing(void **state) {
        _cleanup_free_ char *error = NULL;
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(config_set(&c, "no-such-key", "1", &error), -ENOENT);
        assert_int_equal(config_set(&c, "placement", "scopes", &error), -EINVAL);
        assert_non_null(strstr(error, "placement must be one of auto, scope, cgroup, none"));
        error = mfree(error);
        assert_true(c.shim_spawner);
        assert_int_equal(config_set(&c, "shim-spawner", "no", &error), 0);
        assert_false(c.shim_spawner);
        assert_int_equal(config_set(&c, "shim-spawner", "yes", &error), 0);
        assert_true(c.shim_spawner);
        assert_int_equal(config_set(&c, "shim-spawner", "maybe", &error), -EINVAL);
        assert_string_equal(error, "shim-spawner must be yes or no; got 'maybe'");
        assert_int_equal(config_set(&c, "database", "/tmp/x.db", &error), 0);
        _cleanup_free_ char *db = config_database_path(&c);
        assert_string_equal(db, "/tmp/x.db");
        /* A missing default file is fine, a missing explicit one is not. */
        assert_int_equal(config_load_file(&c, "/nonexistent/corrald.conf", false), 0);
        assert_int_equal(config_load_file(&c, "/nonexistent/corrald.conf", true), -ENOENT);
        config_done(&c);
}

/* Prices: a model's own, a model given again priced anew, the default for any other, and every
 * malformed line refused with what it should be. */
static void test_prices(void **state) {
        _cleanup_free_ char *path = write_conf("price = claude-sonnet-4-5 3 0.3 15\n"
                                               "price = gpt-5\t1.25 0.125 10\n"
                                               "price = claude-sonnet-4-5 4 0.4 16\n"
                                               "price-default = 20 2 80\n");
        _cleanup_free_ char *error = NULL;
        const Price *p;
        bool fallback;
        Config c;

        assert_int_equal(config_init(&c), 0);
        p = config_price(&c, "anything", &fallback);
        assert_true(fallback);
        assert_true(p->input == 15.0 && p->cached_input == 1.5 && p->output == 75.0);
        assert_int_equal(config_load_file(&c, path, true), 0);
        assert_int_equal(c.n_prices, 2);
        p = config_price(&c, "claude-sonnet-4-5", &fallback);
        assert_false(fallback);
        assert_true(p->input == 4.0 && p->cached_input == 0.4 && p->output == 16.0);
        p = config_price(&c, "gpt-5", &fallback);
        assert_false(fallback);
        assert_true(p->output == 10.0);
        p = config_price(&c, NULL, &fallback);
        assert_true(fallback);
        assert_true(p->input == 20.0);

        static const char *const bad[] = {
                "",
                "claude",
                "claude 3 0.3",
                "claude 3 0.3 15 16",
                "claude -1 0 0",
                "claude 3 0.3 1e9",
                "claude x 0 0",
                "claude 3 0.3 nan",
                "claude 3,5 0 0",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(config_set(&c, "price", bad[i], &error), -EINVAL);
                assert_non_null(strstr(error, "price must be a model's name and three prices in USD per million tokens"));
                error = mfree(error);
        }
        assert_int_equal(config_set(&c, "price-default", "1 2", &error), -EINVAL);
        assert_non_null(strstr(error, "price-default must be three prices"));
        assert_int_equal(c.n_prices, 2);
        config_done(&c);
        unlink(path);
}

static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),        cmocka_unit_test(test_file),   cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_set_and_missing), cmocka_unit_test(test_prices),
};

int main(void) {
        log_set_max_level(LOG_CRIT); /* the bad-value cases log errors on purpose */
        cmocka_set_message_output(CM_OUTPUT_TAP);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
