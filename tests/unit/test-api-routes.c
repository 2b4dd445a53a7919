/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Routing (api/api-routes.c): a method and a path to their handler and parameters. */
#include <stdlib.h>
#include <string.h>

#include "api/api-common.h"
#include "basic/macro.h"
#include "test-helpers.h"

typedef struct Found {
        const ApiRoute *route;
        char *params[API_PARAMS_MAX];
        char allow[64];
        bool path_known;
} Found;

static void find(const char *method, const char *path, Found *f) {
        *f = (Found){};
        f->route = api_route_find(method, path, f->params, f->allow, sizeof(f->allow), &f->path_known);
}

static void test_route_with_params(void **state) {
        Found f;

        find("GET", "/api/issues/ACME-12/comments/c-1", &f);
        assert_non_null(f.route);
        assert_string_equal(f.route->pattern, "/api/issues/:id/comments/:commentId");
        assert_string_equal(f.params[0], "ACME-12");
        assert_string_equal(f.params[1], "c-1");
        assert_null(f.params[2]);
        api_params_free(f.params);
        assert_null(f.params[0]);
}

static void test_method_picks_the_route(void **state) {
        Found get, post;

        find("GET", "/api/companies/x/issues", &get);
        find("POST", "/api/companies/x/issues", &post);
        assert_non_null(get.route);
        assert_non_null(post.route);
        assert_ptr_not_equal(get.route->handler, post.route->handler);
        assert_string_equal(get.route->method, "GET");
        assert_string_equal(post.route->method, "POST");
        api_params_free(get.params);
        api_params_free(post.params);
}

/* A known path with another method: no route, the path is known, and allow lists its
 * methods (for 405 and its Allow header). */
static void test_method_not_allowed(void **state) {
        Found f;

        find("DELETE", "/api/agents/a-1", &f);
        assert_null(f.route);
        assert_true(f.path_known);
        assert_string_equal(f.allow, "GET, PATCH");
        assert_null(f.params[0]);
}

static void test_unknown_paths(void **state) {
        static const char *const paths[] = {
                "/api/agents", /* a collection that exists only under a company */
                "/api/agents/", /* an empty id */
                "/api/issues/x/comments/y/z", /* one segment too many */
                "/api/companiesX", /* a prefix of a route */
                "api/health", /* no leading slash */
                "",
                "/",
        };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                Found f;
                find("GET", paths[i], &f);
                assert_null(f.route);
                assert_false(f.path_known);
                assert_string_equal(f.allow, "");
                assert_null(f.params[0]);
        }
}

static void test_trailing_slash(void **state) {
        Found f;

        find("GET", "/api/health/", &f);
        assert_non_null(f.route);
        assert_string_equal(f.route->pattern, "/api/health");
        find("GET", "/api/health//", &f);
        assert_null(f.route);
}

/* Every route of every table is found by its own pattern, with its own method: no table
 * shadows another. */
static void test_every_route_reachable(void **state) {
        const ApiRoute *const tables[] = { api_system_routes, api_company_routes, api_agent_routes,
                                           api_issue_routes,  api_comment_routes, api_run_routes };
        size_t n = 0;

        for (size_t t = 0; t < ELEMENTSOF(tables); t++)
                for (const ApiRoute *rt = tables[t]; rt->pattern; rt++) {
                        char path[256];
                        size_t k = 0;
                        Found f;

                        /* The pattern with each ":name" as a value. */
                        for (const char *p = rt->pattern; *p && k < sizeof(path) - 8;)
                                if (*p == ':') {
                                        memcpy(path + k, "v", 1);
                                        k++;
                                        p += strcspn(p, "/");
                                } else
                                        path[k++] = *p++;
                        path[k] = 0;
                        find(rt->method, path, &f);
                        assert_ptr_equal(f.route, rt);
                        api_params_free(f.params);
                        n++;
                }
        assert_true(n >= 40);
}

static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_with_params),  cmocka_unit_test(test_method_picks_the_route),
        cmocka_unit_test(test_method_not_allowed), cmocka_unit_test(test_unknown_paths),
        cmocka_unit_test(test_trailing_slash),     cmocka_unit_test(test_every_route_reachable),
};

RUN_TESTS(tests)
