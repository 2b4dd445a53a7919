/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * docs/openapi.json (as built into corrald) against the code it describes: every route of
 * the route tables and no other, and each record's schema member for member as its Entity
 * descriptor makes it (names, types, enums, what may be given on create and change). The
 * integration tests check the rest: every answer they get validates against it.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-common.h"
#include "basic/macro.h"
#include "store/jsonmap.h"
#include "store/model.h"
#include "test-helpers.h"

static cJSON *doc;

static int setup(void **state) {
        doc = cJSON_ParseWithLength(api_openapi_json, api_openapi_json_size);
        return doc ? 0 : -1;
}

static int teardown(void **state) {
        cJSON_Delete(doc);
        return 0;
}

static const cJSON *member(const cJSON *o, const char *name) {
        return cJSON_GetObjectItemCaseSensitive(o, name);
}

static const cJSON *schema(const char *name) {
        const cJSON *s = member(member(member(doc, "components"), "schemas"), name);
        if (!s)
                fail_msg("components.schemas has no %s", name);
        return s;
}

/* Whether the schema's type is t or a list that holds t. */
static bool has_type(const cJSON *s, const char *t) {
        const cJSON *type = member(s, "type"), *e;

        if (cJSON_IsString(type))
                return streq(type->valuestring, t);
        cJSON_ArrayForEach (e, type)
                if (cJSON_IsString(e) && streq(e->valuestring, t))
                        return true;
        return false;
}

static void test_version(void **state) {
        const cJSON *v = member(member(doc, "info"), "version");

        assert_true(cJSON_IsString(v));
        assert_string_equal(v->valuestring, PACKAGE_VERSION);
        assert_string_equal(member(doc, "openapi")->valuestring, "3.1.0");
}

/* "/api/issues/:id/comments/:commentId" as the document writes it: "/api/issues/{id}/comments/{commentId}". */
static void template_of(const char *pattern, char *buf, size_t size) {
        size_t n = 0;

        for (const char *p = pattern; *p && n + 2 < size; p++) {
                if (*p != ':') {
                        buf[n++] = *p;
                        continue;
                }
                size_t len = strcspn(p + 1, "/");
                n += (size_t) snprintf(buf + n, size - n, "{%.*s}", (int) len, p + 1);
                p += len;
        }
        buf[MIN(n, size - 1)] = '\0';
}

static void lower(const char *s, char *buf, size_t size) {
        size_t i;
        for (i = 0; s[i] && i + 1 < size; i++)
                buf[i] = (char) (s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
        buf[i] = '\0';
}

static void test_every_route_is_documented(void **state) {
        const cJSON *paths = member(doc, "paths");
        size_t n_routes = 0, n_ops = 0;
        const cJSON *item, *op;

        for (size_t t = 0; api_route_tables[t]; t++)
                for (const ApiRoute *rt = api_route_tables[t]; rt->pattern; rt++) {
                        char path[256], method[16];
                        template_of(rt->pattern, path, sizeof(path));
                        lower(rt->method, method, sizeof(method));
                        const cJSON *o = member(member(paths, path), method);
                        if (!o)
                                fail_msg("%s %s is not in docs/openapi.json", rt->method, path);
                        if (!member(o, "responses"))
                                fail_msg("%s %s has no responses", rt->method, path);
                        n_routes++;
                }
        /* And nothing the code has not: each operation of the document is a route. */
        cJSON_ArrayForEach (item, paths)
                cJSON_ArrayForEach (op, item) {
                        bool found = false;
                        for (size_t t = 0; api_route_tables[t] && !found; t++)
                                for (const ApiRoute *rt = api_route_tables[t]; rt->pattern && !found; rt++) {
                                        char path[256], method[16];
                                        template_of(rt->pattern, path, sizeof(path));
                                        lower(rt->method, method, sizeof(method));
                                        found = streq(path, item->string) && streq(method, op->string);
                                }
                        if (!found)
                                fail_msg("docs/openapi.json has %s %s, which is no route", op->string, item->string);
                        n_ops++;
                }
        assert_int_equal(n_routes, n_ops);
}

static const char *base_type(const Field *f) {
        switch (f->type) {
        case FIELD_TEXT:
        case FIELD_TIME:
        case FIELD_ENUM:
                return "string";
        case FIELD_INT:
                return "integer";
        case FIELD_BOOL:
                return "boolean";
        case FIELD_JSON:
                return (f->flags & FIELD_JSON_ARRAY) ? "array" : "object";
        }
        return "?";
}

/* A field's schema: its type, its enum's values (and null only if nullable), null allowed
 * where the record may hold none. */
static void check_field(const char *schema_name, const Field *f, const cJSON *s, bool input) {
        char name[128];

        column_to_json_name(f->column, name, sizeof(name));
        if (!s)
                fail_msg("%s has no member %s", schema_name, name);
        if (!has_type(s, base_type(f)))
                fail_msg("%s.%s: its type is not %s", schema_name, name, base_type(f));
        if ((f->flags & FIELD_NULLABLE) && !has_type(s, "null"))
                fail_msg("%s.%s may be null, and its schema says not", schema_name, name);
        if (input && !(f->flags & FIELD_NULLABLE) && has_type(s, "null"))
                fail_msg("%s.%s may not be given as null, and its schema says it may", schema_name, name);
        if (f->type == FIELD_BOOL && has_type(s, "null"))
                fail_msg("%s.%s is never null", schema_name, name);
        if (f->type == FIELD_ENUM) {
                const cJSON *values = member(s, "enum"), *v;
                size_t i = 0;
                cJSON_ArrayForEach (v, values) {
                        if (cJSON_IsNull(v))
                                continue;
                        if (!f->enum_names[i] || !cJSON_IsString(v) || !streq(v->valuestring, f->enum_names[i]))
                                fail_msg("%s.%s: enum value %zu is not %s", schema_name, name, i, strna(f->enum_names[i]));
                        i++;
                }
                if (f->enum_names[i])
                        fail_msg("%s.%s: enum lacks %s", schema_name, name, f->enum_names[i]);
        }
}

static const struct {
        const Entity *entity;
        const char *schema, *create, *patch;
        const char *const extra_create[4], *const extra_patch[4]; /* members the handlers take beside the fields */
} records[] = {
        { &company_entity, "Company", "CompanyCreate", "CompanyPatch" },
        { &agent_entity, "Agent", "AgentCreate", "AgentPatch", { "companyId" } },
        { &runtime_state_entity, "AgentRuntimeState" },
        { &task_session_entity, "AgentTaskSession" },
        { &wakeup_entity, "WakeupRequest" },
        { &run_entity, "HeartbeatRun" },
        { &run_event_entity, "RunEvent" },
        { &issue_entity, "Issue", "IssueCreate", "IssuePatch", {}, { "comment", "reopen", "interrupt" } },
        { &issue_relation_entity, "IssueRelation" },
        { &comment_entity, "IssueComment", "CommentCreate", NULL, { "reopen", "interrupt" } },
        { &activity_entity, "Activity" },
        { &workspace_entity, "Workspace" },
        { &host_entity, "Host" },
};

static bool listed(const char *const *names, const char *name) {
        for (size_t i = 0; i < 4 && names[i]; i++)
                if (streq(names[i], name))
                        return true;
        return false;
}

static bool in_list(const cJSON *list, const char *name) {
        const cJSON *e;
        cJSON_ArrayForEach (e, list)
                if (cJSON_IsString(e) && streq(e->valuestring, name))
                        return true;
        return false;
}

/* The schema of what may be given: exactly the fields with flag, plus extra. */
static void check_input(const Entity *e, const char *schema_name, unsigned flag, const char *const *extra) {
        const cJSON *s = schema(schema_name), *props = member(s, "properties"), *p;

        if (!cJSON_IsFalse(member(s, "additionalProperties")))
                fail_msg("%s must refuse other members, as the API does", schema_name);
        for (size_t i = 0; i < e->n_fields; i++) {
                const Field *f = &e->fields[i];
                char name[128];
                column_to_json_name(f->column, name, sizeof(name));
                if (!(f->flags & flag)) {
                        if (member(props, name) && !listed(extra, name))
                                fail_msg("%s has %s, which cannot be given", schema_name, name);
                        continue;
                }
                check_field(schema_name, f, member(props, name), true);
                bool required = flag == FIELD_CREATE && (f->flags & FIELD_REQUIRED);
                if (required != in_list(member(s, "required"), name))
                        fail_msg("%s: %s is %srequired", schema_name, name, required ? "" : "not ");
        }
        cJSON_ArrayForEach (p, props) {
                char column[128] = "";
                for (size_t i = 0; i < e->n_fields; i++) {
                        char name[128];
                        column_to_json_name(e->fields[i].column, name, sizeof(name));
                        if (streq(name, p->string) && (e->fields[i].flags & flag))
                                snprintf(column, sizeof(column), "%s", e->fields[i].column);
                }
                if (!*column && !listed(extra, p->string))
                        fail_msg("%s has %s, which the API does not take", schema_name, p->string);
        }
}

static void test_records_match_their_entities(void **state) {
        for (size_t r = 0; r < ELEMENTSOF(records); r++) {
                const Entity *e = records[r].entity;
                const cJSON *s = schema(records[r].schema), *props = member(s, "properties");

                if (!cJSON_IsFalse(member(s, "additionalProperties")))
                        fail_msg("%s must say additionalProperties: false, so that a new member cannot go unnoticed",
                                 records[r].schema);
                assert_int_equal(cJSON_GetArraySize(props), e->n_fields);
                for (size_t i = 0; i < e->n_fields; i++) {
                        char name[128];
                        column_to_json_name(e->fields[i].column, name, sizeof(name));
                        check_field(records[r].schema, &e->fields[i], member(props, name), false);
                        /* json_from_entity() writes every member, null or not. */
                        if (!in_list(member(s, "required"), name))
                                fail_msg("%s: %s is always there and must be required", records[r].schema, name);
                }
                if (records[r].create)
                        check_input(e, records[r].create, FIELD_CREATE, records[r].extra_create);
                if (records[r].patch)
                        check_input(e, records[r].patch, FIELD_PATCH, records[r].extra_patch);
        }
}

/* Every record of the model has its schema. */
static void test_every_entity_has_a_schema(void **state) {
        for (const Entity *const *e = all_entities; *e; e++) {
                /* Rows the hosts keep for themselves, in no answer: a read of a log asked of
                 * another host (control/log-forward.h). */
                bool found = *e == &log_read_entity;
                for (size_t r = 0; r < ELEMENTSOF(records); r++)
                        found = found || records[r].entity == *e;
                if (!found)
                        fail_msg("the %s record has no schema in docs/openapi.json (add it to records[] here)", (*e)->name);
        }
}

static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_every_route_is_documented),
        cmocka_unit_test(test_records_match_their_entities),
        cmocka_unit_test(test_every_entity_has_a_schema),
};

int main(void) {
        cmocka_set_message_output(CM_OUTPUT_TAP);
        return cmocka_run_group_tests(tests, setup, teardown);
}
