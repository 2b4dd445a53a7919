/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The wake payload (control/wake-payload.c): the window of comments that woke a run, cut to
 * its limits on character boundaries, with what is missing said.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "control/wake-payload.h"
#include "manager-fixture.h"
#include "store/jsonmap.h"

static cJSON *build(const char *ctx_text, const Issue *issue) {
        _cleanup_json_ cJSON *ctx = cJSON_Parse(ctx_text);
        cJSON *p = NULL;

        assert_non_null(ctx);
        assert_int_equal(wake_payload_build(m->control.store, ctx, issue, true, &p), 0);
        return p;
}

static int number(const cJSON *o, const char *path_a, const char *path_b) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, path_a), path_b);
        assert_true(cJSON_IsNumber(v));
        return v->valueint;
}

/* Nothing to say: no payload at all. */
static void test_nothing(void **state) {
        assert_null(build("{\"wakeReason\":\"heartbeat_timer\"}", NULL));
}

static void test_window(void **state) {
        char issue_id[UUID_STRING_MAX], ids[12][UUID_STRING_MAX];
        _cleanup_(issue_donep) Issue issue = {};
        _cleanup_free_ char *ctx = strdup("{\"wakeReason\":\"issue_commented\",\"wakeCommentIds\":[");

        fixture_new_issue(issue_id, ISSUE_TODO, agent);
        fixture_get_issue(issue_id, &issue);
        for (int i = 0; i < 12; i++) {
                char body[32];
                snprintf(body, sizeof(body), "comment %d", i);
                fixture_new_comment(ids[i], issue_id, body);
                char *n = strprintf("%s%s\"%s\"", ctx, i ? "," : "", ids[i]);
                free(ctx);
                ctx = n;
        }
        /* One that is gone. */
        char *n = strprintf("%s,\"00000000-0000-4000-8000-00000000dead\"]}", ctx);
        free(ctx);
        ctx = n;

        _cleanup_json_ cJSON *p = build(ctx, &issue);
        assert_non_null(p);
        assert_string_equal(json_string_member(p, "reason"), "issue_commented");
        assert_string_equal(json_string_member(cJSON_GetObjectItemCaseSensitive(p, "issue"), "id"), issue_id);
        /* The newest WAKE_PAYLOAD_COMMENTS_MAX ids, the gone one last. */
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(p, "commentIds")), WAKE_PAYLOAD_COMMENTS_MAX);
        assert_int_equal(number(p, "commentWindow", "requestedCount"), 13);
        assert_int_equal(number(p, "commentWindow", "includedCount"), WAKE_PAYLOAD_COMMENTS_MAX - 1);
        assert_int_equal(number(p, "commentWindow", "missingCount"), 1);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "truncated")));
        assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "fallbackFetchNeeded")));
        assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "checkedOutByHarness")));
        const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(p, "comments"), 0);
        assert_string_equal(json_string_member(first, "body"), "comment 5");
        assert_string_equal(json_string_member(p, "latestCommentId"), "00000000-0000-4000-8000-00000000dead");
}

/* A long body is cut to WAKE_PAYLOAD_COMMENT_BODY_MAX bytes, never inside a character. */
static void test_long_body(void **state) {
        char issue_id[UUID_STRING_MAX], id[UUID_STRING_MAX];
        size_t n = WAKE_PAYLOAD_COMMENT_BODY_MAX + 100;
        _cleanup_free_ char *body = malloc(n + 1), *ctx = NULL;

        assert_non_null(body);
        /* "é" is two bytes; one byte of ASCII first puts every boundary of it on an odd offset. */
        body[0] = 'x';
        for (size_t i = 1; i + 1 < n; i += 2)
                memcpy(body + i, "\xc3\xa9", 2);
        body[n - (n % 2 == 0 ? 1 : 0)] = 0;
        fixture_new_issue(issue_id, ISSUE_TODO, agent);
        fixture_new_comment(id, issue_id, body);
        ctx = strprintf("{\"wakeCommentIds\":[\"%s\"]}", id);

        _cleanup_json_ cJSON *p = build(ctx, NULL);
        const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(p, "comments"), 0);
        const char *got = json_string_member(c, "body");
        assert_non_null(got);
        assert_true(strlen(got) <= WAKE_PAYLOAD_COMMENT_BODY_MAX);
        assert_true(strlen(got) >= WAKE_PAYLOAD_COMMENT_BODY_MAX - 1);
        assert_true(strlen(got) % 2 == 1); /* whole characters after the 'x' */
        assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "bodyTruncated")));
        assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "truncated")));
}

#define T(f) cmocka_unit_test_setup_teardown(f, fixture_manager_setup, fixture_manager_teardown)
static const struct CMUnitTest tests[] = { T(test_nothing), T(test_window), T(test_long_body) };

int main(void) {
        cmocka_set_message_output(CM_OUTPUT_TAP);
        return cmocka_run_group_tests(tests, fixture_group_setup, fixture_group_teardown);
}
