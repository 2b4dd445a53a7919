/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The shim spawner's request format: what corrald encodes is what the spawner parses, and
 * anything malformed is refused rather than half-read. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "shim/shim-spawner.h"
#include "test-helpers.h"

static char *argv_ok[] = { "/usr/libexec/corral-shim", "/var/lib/corral/runs/r1", "/bin/echo", "hello world", "", NULL };
static char *env_ok[] = { "PATH=/usr/bin:/bin", "EMPTY=", NULL };

static void test_round_trip(void **state) {
        _cleanup_free_ char *buf = NULL;
        ShimSpawnRequest r = {};
        size_t size;

        assert_int_equal(shim_spawn_request_encode("/srv/work dir", argv_ok, env_ok, true, &buf, &size), 0);
        assert_int_equal(shim_spawn_request_parse(buf, size, &r), 0);
        assert_true(r.flags & SHIM_SPAWN_CGROUP);
        assert_string_equal(r.cwd, "/srv/work dir");
        assert_int_equal(r.n_argv, 5);
        for (size_t i = 0; i < 5; i++)
                assert_string_equal(r.argv[i], argv_ok[i]);
        assert_null(r.argv[5]);
        assert_string_equal(r.env[0], "PATH=/usr/bin:/bin");
        assert_string_equal(r.env[1], "EMPTY=");
        assert_null(r.env[2]);
        shim_spawn_request_done(&r);
        free(buf);
        buf = NULL;

        /* No environment at all, and no cgroup. */
        assert_int_equal(shim_spawn_request_encode("/", argv_ok, NULL, false, &buf, &size), 0);
        assert_int_equal(shim_spawn_request_parse(buf, size, &r), 0);
        assert_false(r.flags & SHIM_SPAWN_CGROUP);
        assert_null(r.env[0]);
        shim_spawn_request_done(&r);
}

static void test_too_large(void **state) {
        _cleanup_free_ char *big = malloc(SHIM_SPAWN_REQUEST_MAX), *buf = NULL;
        char *argv[] = { "shim", "/run", big, NULL };
        size_t size;

        memset(big, 'x', SHIM_SPAWN_REQUEST_MAX - 1);
        big[SHIM_SPAWN_REQUEST_MAX - 1] = 0;
        assert_int_equal(shim_spawn_request_encode("/", argv, NULL, false, &buf, &size), -E2BIG);
        assert_null(buf);
}

/* Every way a request can be wrong is refused as a whole. */
static void test_malformed(void **state) {
        _cleanup_free_ char *buf = NULL;
        ShimSpawnRequest r = {};
        ShimSpawnHeader h;
        size_t size;

        assert_int_equal(shim_spawn_request_encode("/tmp", argv_ok, env_ok, false, &buf, &size), 0);

        /* Cut anywhere: the header, or the middle of the strings. */
        for (size_t cut = 0; cut < size; cut++)
                assert_int_equal(shim_spawn_request_parse(buf, cut, &r), -EBADMSG);

        /* A byte more than the strings announced. */
        char *longer = malloc(size + 1);
        memcpy(longer, buf, size);
        longer[size] = 0;
        assert_int_equal(shim_spawn_request_parse(longer, size + 1, &r), -EBADMSG);
        free(longer);

        /* A wrong magic, an unknown flag, too few arguments. */
        memcpy(&h, buf, sizeof(h));
        ShimSpawnHeader bad = h;
        bad.magic ^= 1;
        memcpy(buf, &bad, sizeof(bad));
        assert_int_equal(shim_spawn_request_parse(buf, size, &r), -EBADMSG);
        bad = h;
        bad.flags = 2;
        memcpy(buf, &bad, sizeof(bad));
        assert_int_equal(shim_spawn_request_parse(buf, size, &r), -EBADMSG);
        bad = h;
        bad.n_argv = 2;
        memcpy(buf, &bad, sizeof(bad));
        assert_int_equal(shim_spawn_request_parse(buf, size, &r), -EBADMSG);
        bad = h;
        bad.n_env = UINT32_MAX;
        memcpy(buf, &bad, sizeof(bad));
        assert_int_equal(shim_spawn_request_parse(buf, size, &r), -EBADMSG);
        memcpy(buf, &h, sizeof(h));
        assert_int_equal(shim_spawn_request_parse(buf, size, &r), 0);
        shim_spawn_request_done(&r);

        /* The last string without its NUL. */
        buf[size - 1] = 'x';
        assert_int_equal(shim_spawn_request_parse(buf, size, &r), -EBADMSG);
        free(buf);
        buf = NULL;

        /* A relative working directory. */
        assert_int_equal(shim_spawn_request_encode("tmp", argv_ok, env_ok, false, &buf, &size), 0);
        assert_int_equal(shim_spawn_request_parse(buf, size, &r), -EBADMSG);
}

static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_malformed),
};

RUN_TESTS(tests)
