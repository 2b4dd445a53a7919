/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The run log: the shim's line format (UTF-8 as text, anything else as base64,
 * split characters held back), ingestion with excerpts, compaction of images
 * and oversized chunks, credential redaction, and the digest.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "supervise/runlog.h"
#include "shim/shim.h"
#include "test-helpers.h"
#include "basic/fd-util.h"
#include "basic/utf8.h"

static char dir[] = "/tmp/corral-test-runlog-XXXXXX";

static int setup(void **state) {
        return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
        _cleanup_free_ char *cmd = strprintf("rm -rf '%s'", dir);
        return system(cmd) == 0 ? 0 : -1;
}

static char *line(const char *stream, const char *chunk, size_t size) {
        char *out = malloc(shim_line_max(size));
        size_t n = shim_format_line(out, "2026-01-01T00:00:00.000Z", stream, chunk, size);
        out[n] = 0;
        return out;
}

static void test_format_text(void **state) {
        const char *text = "say \"hi\"\\\n\t\x01 caf\xc3\xa9";
        _cleanup_free_ char *l = line("stdout", text, strlen(text));

        assert_string_equal(
                l,
                "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"stream\":\"stdout\",\"chunk\":\"say \\\"hi\\\"\\\\\\n\\t\\u0001 "
                "caf\xc3\xa9\"}\n");

        /* Long plain runs, the other escapes, and invalid UTF-8 after eight-byte ASCII blocks. */
        const char *more = "0123456789abcdefghij\r\b\x7f\x1f end";
        _cleanup_free_ char *m = line("stderr", more, strlen(more));
        assert_string_equal(m,
                            "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"stream\":\"stderr\",\"chunk\":\"0123456789abcdefghij"
                            "\\r\\u0008\\u007f\\u001f end\"}\n");
        const char *bad = "0123456789abcdefghij\xc3";
        _cleanup_free_ char *b = line("stdout", bad, strlen(bad));
        assert_non_null(strstr(b, "\"encoding\":\"base64\""));
}

/* The escapes as the JSON string of one byte gives them, a byte at a time. */
static size_t escape_slowly(char *out, const unsigned char *s, size_t size) {
        size_t n = 0;

        for (size_t i = 0; i < size; i++) {
                unsigned char c = s[i];
                if (c == '"' || c == '\\')
                        n += (size_t) sprintf(out + n, "\\%c", c);
                else if (c == '\n')
                        n += (size_t) sprintf(out + n, "\\n");
                else if (c == '\t')
                        n += (size_t) sprintf(out + n, "\\t");
                else if (c == '\r')
                        n += (size_t) sprintf(out + n, "\\r");
                else if (c < 0x20 || c == 0x7f)
                        n += (size_t) sprintf(out + n, "\\u%04x", c);
                else
                        out[n++] = (char) c;
        }
        out[n] = 0;
        return n;
}

/* The eight-byte scan finds every byte that needs an escape: each ASCII byte at each place
 * of a block, twice in a chunk; and a UTF-8 sequence (bytes from 0x80 on) at each place
 * stands for itself. */
static void test_format_every_byte(void **state) {
        static const char prefix[] = "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"stream\":\"stdout\",\"chunk\":\"";
        char chunk[64], want[512];

        for (int c = 0; c < 0x80; c++)
                for (size_t at = 0; at < 24; at++) {
                        size_t size = 24 + at % 5;
                        memset(chunk, 'a', size);
                        chunk[at] = (char) c;
                        chunk[(at + 9) % size] = (char) c; /* a second one, in another word */
                        _cleanup_free_ char *l = line("stdout", chunk, size);
                        size_t n = escape_slowly(want, (const unsigned char *) chunk, size);
                        assert_true(strncmp(l, prefix, strlen(prefix)) == 0);
                        assert_true(strncmp(l + strlen(prefix), want, n) == 0);
                        assert_string_equal(l + strlen(prefix) + n, "\"}\n");
                }
        for (size_t at = 0; at + 3 <= 24; at++) {
                memset(chunk, 'b', 24);
                memcpy(chunk + at, "\xe2\x82\xac", 3);
                _cleanup_free_ char *l = line("stdout", chunk, 24);
                assert_true(strncmp(l + strlen(prefix), chunk, 24) == 0);
                assert_string_equal(l + strlen(prefix) + 24, "\"}\n");
        }
}

static void test_format_binary(void **state) {
        _cleanup_free_ char *l = line("stderr", "\xff\xfe\x00z", 4);

        assert_string_equal(
                l,
                "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"stream\":\"stderr\",\"chunk\":\"//4Aeg==\",\"encoding\":\"base64\"}\n");
        /* Overlong encodings and surrogates are not UTF-8 either. */
        _cleanup_free_ char *overlong = line("stdout", "\xc0\xaf", 2), *surrogate = line("stdout", "\xed\xa0\x80", 3);
        assert_non_null(strstr(overlong, "base64"));
        assert_non_null(strstr(surrogate, "base64"));
}

typedef struct Collected {
        char *data;
        size_t size;
        int streams; /* bit 0 stdout, bit 1 stderr */
} Collected;

static int collect(int stream, const char *data, size_t size, void *userdata) {
        Collected *c = userdata;
        char *t = realloc(c->data, c->size + size + 1);

        assert_non_null(t);
        memcpy(t + c->size, data, size);
        c->data = t;
        c->size += size;
        c->streams |= 1 << stream;
        return 0;
}

/* Every chunk the shim formats comes back byte for byte, whichever decoder reads it: the
 * shim's own lines take the fast path, anything else JSON's (a line re-encoded by cJSON,
 * with escapes the shim never writes). */
static void test_decode_round_trip(void **state) {
        _cleanup_free_ char *path = strprintf("%s/round.ndjson", dir), *expect = NULL;
        static const char alphabet[] = "ab\"\\/\n\r\t\x01\x1f\x7f\xc3\xa9\xe2\x82\xac\xff\x00 ";
        size_t expect_size = 0;
        Collected got = {};
        FILE *f = fopen(path, "we");
        unsigned seed = 7;

        assert_non_null(f);
        expect = malloc(200 * 64);
        assert_non_null(expect);
        for (int i = 0; i < 200; i++) {
                char chunk[64];
                size_t n = (size_t) (i % 63) + 1;
                for (size_t k = 0; k < n; k++) {
                        seed = seed * 1103515245 + 12345;
                        chunk[k] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
                }
                _cleanup_free_ char *l = line(i % 3 ? "stdout" : "stderr", chunk, n);
                fputs(l, f);
                memcpy(expect + expect_size, chunk, n);
                expect_size += n;
        }
        /* A line the shim never writes, which only the JSON parser understands. */
        fputs("{\"stream\":\"stdout\",\"ts\":\"x\",\"chunk\":\"\\u00e9\\ud83d\\ude00\"}\n", f);
        memcpy(expect + expect_size, "\xc3\xa9\xf0\x9f\x98\x80", 6);
        expect_size += 6;
        fclose(f);

        assert_int_equal(runlog_for_each_chunk(path, collect, &got), 0);
        assert_int_equal(got.size, expect_size);
        assert_memory_equal(got.data, expect, expect_size);
        assert_int_equal(got.streams, 3);
        free(got.data);
}

static void test_utf8_prefix(void **state) {
        assert_int_equal(utf8_complete_prefix("abc", 3), 3);
        assert_int_equal(utf8_complete_prefix("ab\xc3", 3), 2); /* 2-byte lead cut */
        assert_int_equal(utf8_complete_prefix("ab\xc3\xa9", 4), 4); /* complete */
        assert_int_equal(utf8_complete_prefix("a\xe2\x82", 3), 1); /* 3-byte sequence cut */
        assert_int_equal(utf8_complete_prefix("a\xf0\x9f\x98", 4), 1); /* 4-byte sequence cut */
        assert_int_equal(utf8_complete_prefix("a\xf0\x9f\x98\x80", 5), 5);
        assert_int_equal(utf8_complete_prefix("a\xff", 2), 2); /* invalid: nothing to wait for */
        assert_int_equal(utf8_complete_prefix("", 0), 0);
}

static void test_utf8_lossy(void **state) {
        struct {
                const char *in;
                size_t n;
                const char *out;
        } cases[] = {
                { "abc", 3, "abc" },
                { "caf\xc3\xa9", 5, "caf\xc3\xa9" }, /* valid: as it is */
                { "caf\xe9", 4, "caf\xef\xbf\xbd" }, /* Latin-1: one replacement */
                { "a\xc0\xaf"
                  "b",
                  4,
                  "a\xef\xbf\xbd\xef\xbf\xbd"
                  "b" }, /* overlong: both bytes */
                { "\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* a surrogate */
                { "a\0b", 3,
                  "a\xef\xbf\xbd"
                  "b" }, /* NUL cannot be in a C string */
                { "\xf0\x9f\x98", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* cut short */
                { "", 0, "" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *got = utf8_lossy(cases[i].in, cases[i].n);
                assert_non_null(got);
                assert_string_equal(got, cases[i].out);
                assert_true(utf8_is_valid(got, strlen(got)));
                free(got);
        }
}

static void write_log(const char *path, const char *content) {
        FILE *f = fopen(path, "ae");
        assert_non_null(f);
        fputs(content, f);
        fclose(f);
}

static void test_ingest_incremental(void **state) {
        _cleanup_free_ char *path = strprintf("%s/log.ndjson", dir), *l1 = line("stdout", "one\n", 4),
                            *l2 = line("stderr", "two\n", 4), *l3 = line("stdout", "\xff", 1);
        RunLog *log = NULL;

        assert_int_equal(runlog_new(path, 0, &log), 0);
        assert_int_equal(runlog_ingest(log), 0); /* no file yet */
        write_log(path, l1);
        /* Half a line is kept until its newline arrives. */
        char half[16];
        memcpy(half, l2, 10);
        half[10] = 0;
        write_log(path, half);
        assert_int_equal(runlog_ingest(log), 1);
        assert_string_equal(runlog_excerpt(log, 0), "one\n");
        assert_string_equal(runlog_excerpt(log, 1), "");
        assert_int_equal(log->offset, strlen(l1));
        write_log(path, l2 + 10);
        write_log(path, "not json at all\n");
        write_log(path, l3);
        assert_int_equal(runlog_ingest(log), 2);
        assert_string_equal(runlog_excerpt(log, 1), "two\n");
        assert_int_equal(log->bad_lines, 1);
        assert_int_equal(log->offset, strlen(l1) + strlen(l2) + strlen("not json at all\n") + strlen(l3));
        assert_memory_equal(runlog_excerpt(log, 0), "one\n\xff", 5);

        /* The digest made while reading is the file's. */
        char whole[65], read_along[65];
        uint64_t whole_size, read_size;
        assert_int_equal(runlog_digest(path, &whole_size, whole), 0);
        assert_int_equal(runlog_digest_final(log, &read_size, read_along), 0);
        assert_string_equal(read_along, whole);
        assert_int_equal(read_size, whole_size);
        runlog_free(log);

        /* Resuming from an offset reads only what came after it; its digest reads the file. */
        RunLog *again = NULL;
        assert_int_equal(runlog_new(path, strlen(l1), &again), 0);
        assert_int_equal(runlog_ingest(again), 2);
        assert_string_equal(runlog_excerpt(again, 1), "two\n");
        write_log(path, "late bytes nobody ingested\n");
        assert_int_equal(runlog_digest(path, &whole_size, whole), 0);
        assert_int_equal(runlog_digest_final(again, &read_size, read_along), 0);
        assert_string_equal(read_along, whole);
        assert_int_equal(read_size, whole_size);
        runlog_free(again);
}

/* A log hashed in slices without being decoded (runlog_follow(), for a log whose shim gave
 * no digest); its excerpts come from the log's tail when asked for, and at the end from the
 * tails the shim kept. */
static void test_follow_and_tails(void **state) {
        _cleanup_free_ char *path = strprintf("%s/follow.ndjson", dir), *reason = line("stderr", "the reason\n", 11),
                            *late = line("stderr", "late\n", 5), *chunk = malloc(1000), *out = NULL;
        RunLog *log = NULL;
        char whole[65], along[65];
        uint64_t whole_size, along_size;

        unlink(path);
        memset(chunk, 'x', 999);
        chunk[999] = '\n';
        write_log(path, reason);
        for (int i = 0; i < 300; i++) {
                _cleanup_free_ char *l = line("stdout", chunk, 1000);
                write_log(path, l);
        }
        out = line("stdout", "the last line\n", 14);
        write_log(path, out);

        assert_int_equal(runlog_new(path, 0, &log), 0);
        assert_int_equal(runlog_follow(log, 100 * 1000), 1); /* more to come */
        assert_int_equal(runlog_follow(log, SIZE_MAX), 0);
        assert_int_equal(log->chunks, 0); /* nothing decoded */

        /* The live excerpt: the window holds stdout only, so stderr keeps what it had (nothing). */
        assert_int_equal(runlog_refresh_tail(log), 0);
        const char *e = runlog_excerpt(log, 0);
        assert_true(strlen(e) <= RUNLOG_EXCERPT_MAX);
        assert_true(strlen(e) > RUNLOG_EXCERPT_MAX - 1100);
        assert_string_equal(e + strlen(e) - 14, "the last line\n");
        assert_string_equal(runlog_excerpt(log, 1), "");
        write_log(path, late);
        assert_int_equal(runlog_refresh_tail(log), 0);
        assert_string_equal(runlog_excerpt(log, 1), "late\n");
        for (int i = 0; i < 200; i++) {
                _cleanup_free_ char *l = line("stdout", chunk, 1000);
                write_log(path, l);
        }
        assert_int_equal(runlog_refresh_tail(log), 0);
        assert_string_equal(runlog_excerpt(log, 1), "late\n"); /* out of the window, kept */

        /* The shim's tail replaces it, redacted where it is read. */
        const char *tail = "the reason\nlate\nOPENAI_API_KEY=sk-live-0123456789\n";
        assert_int_equal(runlog_set_tail(log, 1, tail, strlen(tail)), 0);
        assert_non_null(strstr(runlog_excerpt(log, 1), "the reason\nlate\n"));
        assert_null(strstr(runlog_excerpt(log, 1), "sk-live"));

        /* A silent stream's tail is empty: so is its excerpt, from a log that never had one. */
        RunLog *quiet = NULL;
        assert_int_equal(runlog_new(path, 0, &quiet), 0);
        assert_int_equal(runlog_set_tail(quiet, 0, "", 0), 0);
        assert_string_equal(runlog_excerpt(quiet, 0), "");
        runlog_free(quiet);

        /* Without the shim's tails, the whole log is read once, from its start. */
        assert_int_equal(runlog_ingest_all(log), 503);
        assert_string_equal(runlog_excerpt(log, 1), "the reason\nlate\n");

        /* Followed, then read again: the digest is still the file's, made in one pass. */
        assert_int_equal(runlog_digest(path, &whole_size, whole), 0);
        assert_int_equal(runlog_digest_final(log, &along_size, along), 0);
        assert_string_equal(along, whole);
        assert_int_equal(along_size, whole_size);
        runlog_free(log);
}

static void test_excerpt_tail(void **state) {
        _cleanup_free_ char *path = strprintf("%s/big.ndjson", dir), *chunk = malloc(10000);
        RunLog *log = NULL;

        unlink(path);
        /* 5 chunks of 10000 bytes, each "é" (2 bytes) repeated: the tail is 32 KiB on a character boundary. */
        for (int i = 0; i < 10000; i += 2)
                memcpy(chunk + i, "\xc3\xa9", 2);
        for (int i = 0; i < 5; i++) {
                _cleanup_free_ char *l = line("stdout", chunk, 10000);
                write_log(path, l);
        }
        assert_int_equal(runlog_new(path, 0, &log), 0);
        assert_int_equal(runlog_ingest(log), 5);
        const char *e = runlog_excerpt(log, 0);
        assert_true(strlen(e) <= RUNLOG_EXCERPT_MAX);
        assert_true(strlen(e) >= RUNLOG_EXCERPT_MAX - 1);
        assert_int_equal((unsigned char) e[0], 0xc3);
        runlog_free(log);
}

/* Credentials are redacted in the excerpt even when a chunk boundary or the excerpt's
 * start falls between a key word and its value. */
static void test_excerpt_redacted(void **state) {
        _cleanup_free_ char *path = strprintf("%s/secret.ndjson", dir), *filler = malloc(RUNLOG_EXCERPT_MAX);
        _cleanup_free_ char *l1 = line("stderr", "export OPENAI_API_KEY=", 22), *l2 = line("stderr", "sk-live-1234567890\n", 19);
        RunLog *log = NULL;

        unlink(path);
        write_log(path, l1);
        write_log(path, l2);
        assert_int_equal(runlog_new(path, 0, &log), 0);
        assert_int_equal(runlog_ingest(log), 2);
        assert_null(strstr(runlog_excerpt(log, 1), "sk-live"));
        assert_non_null(strstr(runlog_excerpt(log, 1), "***REDACTED***"));

        /* Push the key word out of the excerpt: its value, still inside, stays hidden. */
        _cleanup_free_ char *l3 = line("stderr", "Bearer ", 7);
        _cleanup_free_ char *l4 = line("stderr", "tok-abcdefghijklmnop", 20);
        memset(filler, 'x', RUNLOG_EXCERPT_MAX - 10);
        _cleanup_free_ char *l5 = line("stderr", filler, RUNLOG_EXCERPT_MAX - 10);
        write_log(path, l3);
        write_log(path, l4);
        write_log(path, l5);
        assert_int_equal(runlog_ingest(log), 3);
        const char *e = runlog_excerpt(log, 1);
        assert_true(strlen(e) <= RUNLOG_EXCERPT_MAX);
        assert_null(strstr(e, "mnop")); /* the token's end, which the last 32 KiB would show */
        assert_non_null(strstr(e, "***"));
        runlog_free(log);
}

static void test_compact(void **state) {
        _cleanup_free_ char *img = malloc(4096), *big = malloc(90001);
        size_t n;

        /* An inline base64 image is replaced; short base64 data is not. */
        int k = snprintf(img, 4096,
                         "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"");
        memset(img + k, 'A', 2000);
        strcpy(img + k + 2000, "\"}}");
        _cleanup_free_ char *c = runlog_compact(img, strlen(img), RUNLOG_CHUNK_LIMIT, &n);
        assert_non_null(strstr(c, "[omitted base64 image data: 2000 chars]\"}}"));
        assert_null(strstr(c, "AAAA"));
        const char *small = "{\"type\":\"base64\",\"data\":\"QUJD\"}";
        _cleanup_free_ char *d = runlog_compact(small, strlen(small), RUNLOG_CHUNK_LIMIT, &n);
        assert_string_equal(d, small);

        /* A 90 000-character chunk over a 16384 limit keeps 60% head and 25% tail around a marker. */
        for (int i = 0; i < 90000; i++)
                big[i] = (char) ('a' + i % 26);
        big[90000] = 0;
        _cleanup_free_ char *t = runlog_compact(big, 90000, 16384, &n);
        assert_non_null(strstr(t, "[corral truncated run log chunk: omitted"));
        assert_int_equal(memcmp(t, big, 16384 * 60 / 100), 0);
        assert_int_equal(memcmp(t + n - 16384 * 25 / 100, big + 90000 - 16384 * 25 / 100, 16384 * 25 / 100), 0);
}

static void redacts(const char *in, const char *expected) {
        char buf[512];
        snprintf(buf, sizeof(buf), "%s", in);
        size_t n = runlog_redact(buf, strlen(buf));
        assert_int_equal(n, strlen(buf));
        if (!streq(buf, expected))
                fail_msg("redact('%s') = '%s', expected '%s'", in, buf, expected);
}

static void test_redact(void **state) {
        redacts("Authorization: Bearer abcdef123456789", "Authorization: Bearer ***REDACTED***");
        redacts("export ANTHROPIC_API_KEY=sk-ant-0123456789abcdef more", "export ANTHROPIC_API_KEY=***REDACTED*** more");
        redacts("{\"apiKey\": \"s3cr3t-value-xyz\", \"x\": 1}", "{\"apiKey\": \"***REDACTED***\", \"x\": 1}");
        redacts("run --paperclip-api-key=abcdefghijklmnopq", "run --paperclip-api-key=***REDACTED***");
        redacts("GITHUB_TOKEN=ghp_0123456789abcdef", "GITHUB_TOKEN=***REDACTED***");
        redacts("password: hunter2hunter2", "password: ***REDACTED***");
        /* Short values are starred in place; ordinary text stays. */
        redacts("token=abcd", "token=****");
        redacts("the tokenizer works; secretary=bob", "the tokenizer works; secretary=bob");
        redacts("nothing to see", "nothing to see");
}

static void test_digest(void **state) {
        _cleanup_free_ char *path = strprintf("%s/abc", dir);
        char sha[65];
        uint64_t size;

        assert_int_equal(write_file_atomic(path, "abc", 3, 0644), 0);
        assert_int_equal(runlog_digest(path, &size, sha), 0);
        assert_int_equal(size, 3);
        assert_string_equal(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_int_equal(runlog_digest("/nonexistent", &size, sha), -ENOENT);

        /* Bytes that arrived after the last ingestion are in the final digest too. */
        RunLog *log = NULL;
        assert_int_equal(runlog_new(path, 0, &log), 0);
        assert_int_equal(runlog_ingest(log), 0); /* "abc": no complete line */
        write_log(path, "def");
        assert_int_equal(runlog_digest_final(log, &size, sha), 0);
        assert_int_equal(size, 6);
        assert_string_equal(sha, "bef57ec7f53a6d40beb640a780a639c83bc29ac8a9816f1fc6c5c6dcd93c4721");
        runlog_free(log);
}

static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_text),
        cmocka_unit_test(test_decode_round_trip),
        cmocka_unit_test(test_format_every_byte),
        cmocka_unit_test(test_format_binary),
        cmocka_unit_test(test_utf8_prefix),
        cmocka_unit_test(test_utf8_lossy),
        cmocka_unit_test(test_ingest_incremental),
        cmocka_unit_test(test_follow_and_tails),
        cmocka_unit_test(test_excerpt_tail),
        cmocka_unit_test(test_excerpt_redacted),
        cmocka_unit_test(test_compact),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_digest),
};

int main(void) {
        cmocka_set_message_output(CM_OUTPUT_TAP);
        return cmocka_run_group_tests(tests, setup, teardown);
}
