/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Routing: a request's method and path to its handler and path parameters. */
#include "api/api-common.h"

#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"

static bool route_match(const char *pattern, const char *path, char *params[static API_PARAMS_MAX]) {
        size_t n_params = 0;
        const char *p = pattern, *s = path;

        while (*p && *s) {
                if (*p != '/' || *s != '/')
                        return false;
                p++, s++;
                size_t plen = strcspn(p, "/"), slen = strcspn(s, "/");
                if (*p == ':') {
                        if (slen == 0 || n_params >= API_PARAMS_MAX)
                                return false;
                        params[n_params] = strndup(s, slen);
                        if (!params[n_params])
                                return false;
                        n_params++;
                } else if (plen != slen || strncmp(p, s, plen) != 0)
                        return false;
                p += plen;
                s += slen;
        }
        /* Tolerate one trailing slash on the request. */
        if (!*p && streq(s, "/"))
                s++;
        return !*p && !*s;
}

void api_params_free(char *params[static API_PARAMS_MAX]) {
        for (size_t i = 0; i < API_PARAMS_MAX; i++) {
                free(params[i]);
                params[i] = NULL;
        }
}

const ApiRoute *const api_route_tables[] = {
        api_system_routes, api_company_routes,   api_agent_routes,  api_issue_routes, api_comment_routes, api_run_routes,
        api_cost_routes,   api_workspace_routes, api_lookup_routes, api_event_routes, api_host_routes,    NULL,
};

const ApiRoute *api_route_find(const char *method, const char *path, char *params[static API_PARAMS_MAX], char *allow,
                               size_t allow_size, bool *ret_path_known) {
        *ret_path_known = false;
        if (allow_size > 0)
                allow[0] = '\0';
        for (size_t t = 0; api_route_tables[t]; t++)
                for (const ApiRoute *rt = api_route_tables[t]; rt->pattern; rt++) {
                        if (!route_match(rt->pattern, path, params)) {
                                api_params_free(params);
                                continue;
                        }
                        *ret_path_known = true;
                        if (streq(rt->method, method))
                                return rt;
                        api_params_free(params);
                        if (strlen(allow) + strlen(rt->method) + 3 < allow_size) {
                                if (*allow)
                                        strcat(allow, ", ");
                                strcat(allow, rt->method);
                        }
                }
        return NULL;
}
