/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Identifiers, time stamps, number parsing and file helpers. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/spawn.h"
#include "basic/util.h"
#include "test-helpers.h"
#include "basic/time-util.h"
#include "basic/fd-util.h"
#include "basic/hashmap.h"
#include "basic/json-text.h"

static void test_hex_encode(void **state) {
        char hex[9];

        hex_encode("\x00\x0f\xa5\xff", 4, hex);
        assert_string_equal(hex, "000fa5ff");
        hex_encode("", 0, hex);
        assert_string_equal(hex, "");
}

static void test_uuid(void **state) {
        char a[UUID_STRING_MAX], b[UUID_STRING_MAX];

        assert_int_equal(uuid_new(a), 0);
        assert_int_equal(uuid_new(b), 0);
        assert_true(uuid_is_valid(a));
        assert_string_not_equal(a, b);
        assert_int_equal(a[14], '4'); /* version 4 */
        assert_true(strchr("89ab", a[19]) != NULL);
        assert_false(uuid_is_valid("ACME-1"));
        assert_false(uuid_is_valid(NULL));
        assert_false(uuid_is_valid("0000000-0000-0000-0000-0000000000000"));
}

static void test_iso_time(void **state) {
        char buf[ISO_TIME_MAX];
        int64_t usec;

        assert_int_equal(iso_time_format(0, buf), 0);
        assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
        assert_int_equal(iso_time_format(1764072000123456, buf), 0);
        assert_string_equal(buf, "2025-11-25T12:00:00.123Z");
        assert_int_equal(iso_time_parse(buf, &usec), 0);
        assert_int_equal(usec, 1764072000123000);
        assert_int_equal(iso_time_parse("2025-11-25T12:00:00Z", &usec), 0);
        assert_int_equal(usec, 1764072000000000);
        assert_int_equal(iso_time_parse("2025-11-25T12:00:00.5Z", &usec), 0);
        assert_int_equal(usec, 1764072000500000);
        assert_int_equal(iso_time_parse("2025-11-25 12:00:00", &usec), -EINVAL);
        assert_int_equal(iso_time_parse("2025-11-25T12:00:00+01:00", &usec), -EINVAL);
        assert_int_equal(iso_time_parse("2025-11-25T12:00:00.Z", &usec), -EINVAL);
        assert_int_equal(iso_time_parse("yesterday", &usec), -EINVAL);
        assert_int_equal(iso_time_format(-1, buf), -EINVAL);
        /* Text order is time order. */
        char a[ISO_TIME_MAX], b[ISO_TIME_MAX];
        iso_time_format(999000, a);
        iso_time_format(1000000, b);
        assert_true(strcmp(a, b) < 0);
}

static void test_atoi(void **state) {
        int64_t v;
        uint64_t u;

        assert_int_equal(safe_atoi64("42", &v), 0);
        assert_int_equal(v, 42);
        assert_int_equal(safe_atoi64("-7", &v), 0);
        assert_int_equal(v, -7);
        assert_int_equal(safe_atoi64("", &v), -EINVAL);
        assert_int_equal(safe_atoi64(" 1", &v), -EINVAL);
        assert_int_equal(safe_atoi64("1x", &v), -EINVAL);
        assert_int_equal(safe_atoi64("99999999999999999999", &v), -ERANGE);
        assert_int_equal(safe_atou64("-1", &u), -ERANGE);
        assert_int_equal(safe_atou64("1048577", &u), 0);
        assert_int_equal(u, 1048577);
}

static void test_files(void **state) {
        char dir[] = "/tmp/corral-test-util-XXXXXX";
        _cleanup_free_ char *path = NULL, *deep = NULL, *content = NULL;
        size_t size;
        struct stat st;

        assert_non_null(mkdtemp(dir));
        path = strprintf("%s/status.json", dir);
        deep = strprintf("%s/a/b/c", dir);

        assert_int_equal(write_file_atomic(path, "{\"exitCode\":0}", 14, 0640), 0);
        assert_int_equal(read_full_file(path, 1024, &content, &size), 0);
        assert_int_equal(size, 14);
        assert_string_equal(content, "{\"exitCode\":0}");
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0640);
        /* Files over the limit are refused rather than cut. */
        free(content);
        content = NULL;
        assert_int_equal(read_full_file(path, 10, &content, &size), -EFBIG);
        assert_int_equal(read_full_file("/nonexistent/file", 10, &content, &size), -ENOENT);

        assert_int_equal(mkdir_parents_and_self(deep, 0755), 0);
        assert_int_equal(mkdir_parents_and_self(deep, 0755), 0);
        assert_int_equal(stat(deep, &st), 0);
        assert_true(S_ISDIR(st.st_mode));

        _cleanup_free_ char *cmd = strprintf("rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
}

static void test_strstrip(void **state) {
        char a[] = "  key = value \t\n", b[] = "", c[] = "   ";

        assert_string_equal(strstrip(a), "key = value");
        assert_string_equal(strstrip(b), "");
        assert_string_equal(strstrip(c), "");
}

typedef struct SpawnChild {
        const char *path;
        char *const *argv;
        int stdout_fd;
        int *shared; /* written by the child: proves it ran in the caller's memory */
} SpawnChild;

static _noreturn_ void spawn_child(void *userdata) {
        const SpawnChild *c = userdata;

        *c->shared = 1;
        if (c->stdout_fd >= 0 && dup2(c->stdout_fd, STDOUT_FILENO) < 0)
                _exit(120);
        execv(c->path, c->argv);
        _exit(121);
}

static int spawn_and_wait(SpawnChild *c, int *ret_pidfd_ok) {
        int pidfd = -1, status;
        struct clone_args args = {
                .flags = CLONE_PIDFD,
                .pidfd = (uint64_t) (uintptr_t) &pidfd,
                .exit_signal = SIGCHLD,
        };
        pid_t pid = clone3_spawn(&args, spawn_child, c);

        assert_true(pid > 0);
        assert_int_equal(args.flags, CLONE_PIDFD); /* the caller's flags are given back as they were */
        *ret_pidfd_ok = pidfd >= 0;
        safe_close(pidfd);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static void test_clone3_spawn(void **state) {
        char *const exit7[] = { (char *) "sh", (char *) "-c", (char *) "exit 7", NULL };
        char *const echo[] = { (char *) "sh", (char *) "-c", (char *) "echo spawned", NULL };
        char *const none[] = { (char *) "nothing", NULL };
        int shared = 0, pidfd_ok = 0, out[2];
        char buf[32] = "";
        /* Locals on both sides of the call must survive the child running on this stack. */
        volatile uint64_t canary_before = UINT64_C(0x1122334455667788);
        SpawnChild c = { .path = "/bin/sh", .argv = exit7, .stdout_fd = -1, .shared = &shared };
        volatile uint64_t canary_after = UINT64_C(0x8877665544332211);

        assert_int_equal(spawn_and_wait(&c, &pidfd_ok), 7);
        assert_true(pidfd_ok);
#if defined(__x86_64__) || defined(__aarch64__)
        assert_int_equal(shared, 1); /* shared memory: no copy of the caller was made */
#endif
        assert_int_equal(canary_before, UINT64_C(0x1122334455667788));
        assert_int_equal(canary_after, UINT64_C(0x8877665544332211));

        /* The child's own file descriptor changes stay its own. */
        assert_int_equal(pipe(out), 0);
        c = (SpawnChild){ .path = "/bin/sh", .argv = echo, .stdout_fd = out[1], .shared = &shared };
        assert_int_equal(spawn_and_wait(&c, &pidfd_ok), 0);
        safe_close(out[1]);
        assert_true(read(out[0], buf, sizeof(buf) - 1) > 0);
        assert_string_equal(buf, "spawned\n");
        safe_close(out[0]);
        assert_true(fcntl(STDOUT_FILENO, F_GETFD) >= 0);

        /* A failed exec ends in the child's _exit. */
        c = (SpawnChild){ .path = "/nonexistent/nothing", .argv = none, .stdout_fd = -1, .shared = &shared };
        assert_int_equal(spawn_and_wait(&c, &pidfd_ok), 121);

        /* What the child shares cannot be asked for twice. */
        struct clone_args bad = { .flags = CLONE_VM, .exit_signal = SIGCHLD };
        assert_int_equal(clone3_spawn(&bad, spawn_child, &c), -EINVAL);
}

/* Descriptors across a Unix socket: they arrive, and more than the receiver takes is refused. */
static void test_fds_over_socket(void **state) {
        int pair[2], p[2], fds[2], got[2];
        char buf[8];

        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);

        assert_int_equal(send_with_fds(pair[0], "hi", 2, p, 2, 0), 2);
        assert_int_equal(recv_with_fds(pair[1], buf, sizeof(buf), got, 2, 0), 2);
        assert_memory_equal(buf, "hi", 2);
        assert_true(got[0] >= 0 && got[1] >= 0);
        assert_true(fcntl(got[0], F_GETFD) & FD_CLOEXEC);
        /* What one end of the copied pipe writes, the other reads. */
        assert_int_equal(write(got[1], "x", 1), 1);
        assert_int_equal(read(p[0], buf, 1), 1);
        close(got[0]);
        close(got[1]);

        /* No descriptors at all, and a message too long for the buffer. */
        assert_int_equal(send_with_fds(pair[0], "plain", 5, NULL, 0, 0), 5);
        assert_int_equal(recv_with_fds(pair[1], buf, 2, got, 2, 0), -EBADMSG);
        assert_int_equal(got[0], -1);

        /* Two sent, one wanted: cut short, and the one that came is there to close. */
        assert_int_equal(send_with_fds(pair[0], "two", 3, p, 2, 0), 3);
        assert_int_equal(recv_with_fds(pair[1], buf, sizeof(buf), fds, 1, 0), -EBADMSG);
        assert_true(fds[0] >= 0);
        close(fds[0]);

        assert_int_equal(send_with_fds(pair[0], "x", 1, p, FDS_MAX + 1, 0), -EINVAL);
        close(pair[0]);
        assert_int_equal(recv_with_fds(pair[1], buf, sizeof(buf), got, 1, 0), 0);
        close(pair[1]);
        close(p[0]);
        close(p[1]);
}

static void test_hashmap_int(void **state) {
        Hashmap *h = NULL;
        static int values[5000];

        assert_int_equal(hashmap_new(HASHMAP_INT, &h), 0);
        assert_null(hashmap_get(h, HASHMAP_INT_KEY(1)));
        assert_null(hashmap_remove(h, HASHMAP_INT_KEY(1)));
        for (int i = 0; i < 5000; i++)
                assert_int_equal(hashmap_put(h, HASHMAP_INT_KEY(i), &values[i]), 0);
        assert_int_equal(hashmap_put(h, HASHMAP_INT_KEY(7), &values[0]), -EEXIST);
        assert_int_equal(hashmap_size(h), 5000);
        for (int i = 0; i < 5000; i++)
                assert_ptr_equal(hashmap_get(h, HASHMAP_INT_KEY(i)), &values[i]);
        /* Every other one removed: the rest are still found past the holes, and a removed
         * key can be put again. */
        for (int i = 0; i < 5000; i += 2)
                assert_ptr_equal(hashmap_remove(h, HASHMAP_INT_KEY(i)), &values[i]);
        for (int i = 0; i < 5000; i++)
                assert_ptr_equal(hashmap_get(h, HASHMAP_INT_KEY(i)), i % 2 ? &values[i] : NULL);
        assert_int_equal(hashmap_size(h), 2500);
        /* Churn: many more puts and removes than buckets, tombstones and all. */
        for (int round = 0; round < 20; round++)
                for (int i = 0; i < 5000; i += 2) {
                        assert_int_equal(hashmap_put(h, HASHMAP_INT_KEY(i), &values[i]), 0);
                        assert_ptr_equal(hashmap_remove(h, HASHMAP_INT_KEY(i)), &values[i]);
                }
        assert_int_equal(hashmap_size(h), 2500);
        assert_ptr_equal(hashmap_get(h, HASHMAP_INT_KEY(4999)), &values[4999]);
        hashmap_free(h);
}

static void test_hashmap_string(void **state) {
        Hashmap *h = NULL;
        char keys[300][40];

        assert_int_equal(hashmap_new(HASHMAP_STRING, &h), 0);
        for (int i = 0; i < 300; i++) {
                snprintf(keys[i], sizeof(keys[i]), "0199a213-81c0-7800-8aa1-%012d", i);
                assert_int_equal(hashmap_put(h, keys[i], keys[i]), 0);
        }
        /* Found by equal strings, not by the same pointer. */
        char probe[40];
        snprintf(probe, sizeof(probe), "0199a213-81c0-7800-8aa1-%012d", 123);
        assert_ptr_equal(hashmap_get(h, probe), keys[123]);
        assert_int_equal(hashmap_put(h, probe, NULL), -EEXIST);
        assert_null(hashmap_get(h, "0199a213-81c0-7800-8aa1-999999999999"));
        assert_ptr_equal(hashmap_remove(h, probe), keys[123]);
        assert_null(hashmap_get(h, keys[123]));
        assert_int_equal(hashmap_size(h), 299);
        hashmap_free(h);
}

/* refused TEXT MESSAGE: json_text_check() refuses TEXT with MESSAGE. */
static void refused(const char *text, size_t size, const char *message) {
        char msg[256] = "";

        assert_int_equal(json_text_check(text, size, msg, sizeof(msg)), -EINVAL);
        assert_string_equal(msg, message);
}

static void accepted(const char *text) {
        char msg[256] = "";

        assert_int_equal(json_text_check(text, strlen(text), msg, sizeof(msg)), 0);
}

static void test_json_text(void **state) {
        char deep[200] = "";

        accepted("{\"name\":\"caf\xc3\xa9 \\u00e9 \\ud83d\\ude00 \\\"q\\\" \\n\",\"a\":[1,2,{\"b\":null}]}");
        accepted("{\"a\":{\"x\":1},\"b\":{\"x\":2}}"); /* equal keys in different objects */
        accepted("[\"a\",\"a\"]");
        accepted("{\"a\":1,\"\\u0061b\":2}");
        /* Broken syntax is left to the parser. */
        accepted("{\"name\":");
        accepted("{\"a\" 1}");
        accepted("nonsense");

        refused("{\"name\":\"a\xff\"}", sizeof("{\"name\":\"a\xff\"}") - 1, "field 'name' is not valid UTF-8");
        refused("{\"name\":\"\xc0\xaf\"}", sizeof("{\"name\":\"\xc0\xaf\"}") - 1,
                "field 'name' is not valid UTF-8"); /* overlong '/' */
        refused("{\"a\":{\"b\":[\"ok\",\"\xed\xa0\x80\"]}}", sizeof("{\"a\":{\"b\":[\"ok\",\"\xed\xa0\x80\"]}}") - 1,
                "field 'a.b[1]' is not valid UTF-8");
        refused("{\"a\":\"\\ud800\"}", sizeof("{\"a\":\"\\ud800\"}") - 1,
                "field 'a' is not valid UTF-8 (a lone surrogate \\ud800)");
        refused("{\"a\":\"\\udc00x\"}", sizeof("{\"a\":\"\\udc00x\"}") - 1,
                "field 'a' is not valid UTF-8 (a lone surrogate \\udc00)");
        refused("{\"name\":\"a\\u0000b\"}", sizeof("{\"name\":\"a\\u0000b\"}") - 1,
                "field 'name' holds a NUL character (\\u0000)");
        refused("{\"name\":\"a\0b\"}", sizeof("{\"name\":\"a\0b\"}") - 1, "the request body holds a NUL byte at byte 10");
        refused("{\"name\":\"a\",\"name\":\"b\"}", sizeof("{\"name\":\"a\",\"name\":\"b\"}") - 1,
                "the request body has the key 'name' more than once");
        refused("{\"env\":{\"A\":\"1\",\"B\":\"2\",\"\\u0041\":\"3\"}}", 38, "field 'env' has the key 'A' more than once");
        refused("{\"env\":{\"\xff\":1}}", sizeof("{\"env\":{\"\xff\":1}}") - 1, "field 'env' has a key that is not valid UTF-8");
        refused("{\"\\u0000\":1}", sizeof("{\"\\u0000\":1}") - 1,
                "the request body has a key that holds a NUL character (\\u0000)");

        for (int i = 0; i < 70; i++)
                strcat(deep, "[");
        refused(deep, strlen(deep), "the request body is nested deeper than 64 levels");

        /* Many keys: sorted, not compared pairwise. */
        size_t n = 200000, len = 0;
        char *big = malloc(n * 16 + 4);
        assert_non_null(big);
        big[len++] = '{';
        for (size_t i = 0; i < n; i++)
                len += (size_t) sprintf(big + len, "%s\"k%zu\":1", i ? "," : "", i);
        big[len++] = '}';
        big[len] = 0;
        accepted(big);
        len -= 1;
        len += (size_t) sprintf(big + len, ",\"k7\":2}");
        refused(big, len, "the request body has the key 'k7' more than once");
        free(big);
}

static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid),           cmocka_unit_test(test_hex_encode),      cmocka_unit_test(test_iso_time),
        cmocka_unit_test(test_atoi),           cmocka_unit_test(test_files),           cmocka_unit_test(test_strstrip),
        cmocka_unit_test(test_clone3_spawn),   cmocka_unit_test(test_fds_over_socket), cmocka_unit_test(test_hashmap_int),
        cmocka_unit_test(test_hashmap_string), cmocka_unit_test(test_json_text),
};

RUN_TESTS(tests)
