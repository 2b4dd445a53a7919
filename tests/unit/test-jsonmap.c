/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * JSON mapping: records out as camelCase JSON, and every kind of bad input
 * refused with a message that names the field.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "store/jsonmap.h"
#include "store/model.h"
#include "test-helpers.h"

static void test_record_to_json(void **state) {
        _cleanup_(run_donep) Run r = {};
        _cleanup_json_ cJSON *j = NULL;
        const cJSON *v;

        assert_int_equal(entity_init(&run_entity, &r), 0);
        r.id = strdup("run-1");
        r.status = RUN_TIMED_OUT;
        r.exit_code = 137;
        r.log_compressed = false;
        free(r.context_snapshot);
        r.context_snapshot = strdup("{\"issueId\":\"i1\",\"wakeCommentIds\":[\"c1\",\"c2\"]}");

        j = json_from_entity(&run_entity, &r);
        assert_non_null(j);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "id")->valuestring, "run-1");
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "status")->valuestring, "timed_out");
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "invocationSource")->valuestring, "on_demand");
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "exitCode")->valueint, 137);
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "processPid")));
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "triggerDetail")));
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "startedAt")));
        assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "logCompressed")));
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "processLossRetryCount")->valueint, 0);
        /* JSON columns are embedded as JSON, not as strings. */
        v = cJSON_GetObjectItemCaseSensitive(j, "contextSnapshot");
        assert_true(cJSON_IsObject(v));
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(v, "wakeCommentIds")), 2);
        /* snake_case never leaks. */
        assert_null(cJSON_GetObjectItemCaseSensitive(j, "exit_code"));
        assert_int_equal(cJSON_GetArraySize(j), (int) run_entity.n_fields);
}

static int apply(const Entity *e, const char *json, unsigned allowed, void *obj, char **error) {
        _cleanup_json_ cJSON *in = cJSON_Parse(json);
        assert_non_null(in);
        return json_to_entity(e, in, allowed, NULL, obj, error);
}

static void test_create_ok(void **state) {
        _cleanup_(issue_donep) Issue i = {};
        char *error = NULL;

        assert_int_equal(entity_init(&issue_entity, &i), 0);
        assert_int_equal(apply(&issue_entity,
                               "{\"title\":\"Fix the build\",\"status\":\"todo\",\"priority\":\"high\","
                               "\"description\":null,\"assigneeAgentId\":\"a1\"}",
                               FIELD_CREATE, &i, &error),
                         0);
        assert_null(error);
        assert_string_equal(i.title, "Fix the build");
        assert_int_equal(i.status, ISSUE_TODO);
        assert_int_equal(i.priority, PRIORITY_HIGH);
        assert_null(i.description);
        assert_string_equal(i.assignee_agent_id, "a1");
}

static void expect_error(const Entity *e, const char *json, unsigned allowed, const char *message) {
        _cleanup_free_ void *obj = calloc(1, e->size);
        _cleanup_free_ char *error = NULL;

        assert_int_equal(entity_init(e, obj), 0);
        assert_int_equal(apply(e, json, allowed, obj, &error), -EINVAL);
        assert_non_null(error);
        if (!strstr(error, message))
                fail_msg("error '%s' does not contain '%s'", error, message);
        entity_done(e, obj);
}

static void test_bad_input(void **state) {
        expect_error(&issue_entity, "{\"title\":\"x\",\"bogus\":1}", FIELD_CREATE, "unknown field 'bogus' for issue");
        expect_error(&issue_entity, "{\"title\":42}", FIELD_CREATE, "field 'title' must be a string");
        expect_error(&issue_entity, "{\"title\":\"x\",\"status\":\"finished\"}", FIELD_CREATE,
                     "invalid value 'finished' for field 'status' (expected one of: backlog, todo, in_progress");
        expect_error(&issue_entity, "{\"title\":\"x\",\"status\":3}", FIELD_CREATE, "field 'status' must be a string");
        expect_error(&issue_entity, "{\"title\":null}", FIELD_CREATE, "field 'title' must not be null");
        expect_error(&issue_entity, "{\"status\":\"todo\"}", FIELD_CREATE, "field 'title' is required");
        expect_error(&issue_entity, "{\"title\":\"  \"}", FIELD_CREATE, "field 'title' must not be empty");
        expect_error(&issue_entity, "{\"title\":\"x\",\"identifier\":\"X-1\"}", FIELD_CREATE, "field 'identifier' cannot be set");
        expect_error(&issue_entity, "{\"title\":\"x\",\"executionRunId\":\"r\"}", FIELD_PATCH,
                     "field 'executionRunId' cannot be set");
        expect_error(&issue_entity, "[1,2]", FIELD_CREATE, "request body must be a JSON object");
        expect_error(&company_entity, "{\"name\":\"x\",\"budgetMonthlyCents\":1.5}", FIELD_CREATE,
                     "field 'budgetMonthlyCents' must be an integer");
        expect_error(&company_entity, "{\"name\":\"x\",\"budgetMonthlyCents\":\"100\"}", FIELD_CREATE,
                     "field 'budgetMonthlyCents' must be an integer");
        expect_error(&company_entity, "{\"name\":\"x\",\"budgetMonthlyCents\":1e300}", FIELD_CREATE,
                     "field 'budgetMonthlyCents' must be an integer");
        expect_error(&company_entity, "{\"name\":\"x\",\"requireBoardApprovalForNewAgents\":1}", FIELD_CREATE,
                     "field 'requireBoardApprovalForNewAgents' must be true or false");
        expect_error(&agent_entity, "{\"name\":\"x\",\"adapterConfig\":[1]}", FIELD_CREATE,
                     "field 'adapterConfig' must be a JSON object");
        expect_error(&agent_entity, "{\"name\":\"x\",\"adapterType\":\"http\"}", FIELD_CREATE,
                     "invalid value 'http' for field 'adapterType'");
        expect_error(&agent_entity, "{\"name\":\"x\",\"status\":\"running\"}", FIELD_CREATE, "field 'status' cannot be set");

        /* Ordinary text has a limit; long text (descriptions) does not. */
        _cleanup_free_ char *big = malloc(TEXT_MAX + 64);
        memset(big, 'a', TEXT_MAX + 1);
        big[TEXT_MAX + 1] = 0;
        _cleanup_free_ char *json = malloc(TEXT_MAX + 128);
        snprintf(json, TEXT_MAX + 128, "{\"title\":\"%s\"}", big);
        expect_error(&issue_entity, json, FIELD_CREATE, "field 'title' is longer than");
        _cleanup_(issue_donep) Issue i = {};
        char *error = NULL;
        assert_int_equal(entity_init(&issue_entity, &i), 0);
        snprintf(json, TEXT_MAX + 128, "{\"title\":\"t\",\"description\":\"%s\"}", big);
        assert_int_equal(apply(&issue_entity, json, FIELD_CREATE, &i, &error), 0);
        assert_int_equal(strlen(i.description), TEXT_MAX + 1);
}

static void test_patch_only_patchable(void **state) {
        _cleanup_(company_donep) Company c = {};
        char *error = NULL;

        assert_int_equal(entity_init(&company_entity, &c), 0);
        c.issue_prefix = strdup("ACME");
        assert_int_equal(apply(&company_entity, "{\"name\":\"Acme\",\"status\":\"paused\"}", FIELD_PATCH, &c, &error), 0);
        assert_int_equal(c.status, COMPANY_PAUSED);
        /* The prefix is chosen once, at creation. */
        expect_error(&company_entity, "{\"issuePrefix\":\"NEW\"}", FIELD_PATCH, "field 'issuePrefix' cannot be set");
        /* Patches do not require the required fields. */
        assert_int_equal(apply(&company_entity, "{\"description\":\"d\"}", FIELD_PATCH, &c, &error), 0);
        assert_string_equal(c.name, "Acme");
}

static void test_ignore_and_has_field(void **state) {
        _cleanup_json_ cJSON *in = cJSON_Parse("{\"title\":\"t\",\"comment\":\"hello\"}");
        _cleanup_(issue_donep) Issue i = {};
        char *error = NULL;

        assert_int_equal(entity_init(&issue_entity, &i), 0);
        assert_int_equal(json_to_entity(&issue_entity, in, FIELD_PATCH, (const char *const[]){ "comment", NULL }, &i, &error), 0);
        assert_true(json_has_field(in, "title"));
        assert_false(json_has_field(in, "assignee_agent_id"));
}

static void test_json_round_trip(void **state) {
        _cleanup_(agent_donep) Agent a = {}, b = {};
        _cleanup_json_ cJSON *j = NULL, *writable = NULL;
        char *error = NULL;

        assert_int_equal(entity_init(&agent_entity, &a), 0);
        assert_int_equal(apply(&agent_entity,
                               "{\"name\":\"eng\",\"role\":\"engineer\",\"title\":\"Staff\",\"adapterType\":\"claude_local\","
                               "\"adapterConfig\":{\"model\":\"x\",\"limits\":{\"memoryMax\":1073741824}},"
                               "\"runtimeConfig\":{\"heartbeat\":{\"enabled\":true,\"intervalSec\":60}}}",
                               FIELD_CREATE, &a, &error),
                         0);
        j = json_from_entity(&agent_entity, &a);
        assert_non_null(j);
        /* Feed back only what may be written; the result equals the original. */
        writable = cJSON_CreateObject();
        for (const char *const *k =
                     (const char *const[]){ "name", "role", "title", "adapterType", "adapterConfig", "runtimeConfig", NULL };
             *k; k++)
                cJSON_AddItemToObject(writable, *k, cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(j, *k), true));
        assert_int_equal(entity_init(&agent_entity, &b), 0);
        assert_int_equal(json_to_entity(&agent_entity, writable, FIELD_CREATE, NULL, &b, &error), 0);
        assert_string_equal(a.name, b.name);
        assert_string_equal(a.role, b.role);
        assert_string_equal(a.title, b.title);
        assert_int_equal(a.adapter_type, b.adapter_type);
        assert_string_equal(a.adapter_config, b.adapter_config);
        assert_string_equal(a.runtime_config, b.runtime_config);
}

static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_to_json),
        cmocka_unit_test(test_create_ok),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_patch_only_patchable),
        cmocka_unit_test(test_ignore_and_has_field),
        cmocka_unit_test(test_json_round_trip),
};

RUN_TESTS(tests)
