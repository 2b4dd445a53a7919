/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GET /api/lookup?kind=company|agent|issue|run&q=KEY[&companyId=ID]: the one record a name,
 * an identifier or a prefix of an id names, for clients that take what people type
 * (corralctl). 404 when none does, 409 with the candidates when several do.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <string.h>

#include "api/api-common.h"
#include "basic/macro.h"
#include "basic/util.h"
#include "store/jsonmap.h"
#include "store/queries.h"

#define LOOKUP_CANDIDATES_MAX 10

typedef struct LookupKind {
        const char *name;
        const Entity *entity;
        const char *label; /* the member that says what a record is called, for people */
} LookupKind;

static const LookupKind kinds[] = {
        { "company", &company_entity, "name" },
        { "agent", &agent_entity, "name" },
        { "issue", &issue_entity, "identifier" },
        { "run", &run_entity, NULL },
};

/* One candidate: its id, company and label. */
static cJSON *candidate(const LookupKind *k, const cJSON *record) {
        cJSON *o = cJSON_CreateObject();
        const char *company = json_string_member(record, k->entity == &company_entity ? "id" : "companyId");

        if (!o || !cJSON_AddStringToObject(o, "kind", k->name) ||
            !cJSON_AddStringToObject(o, "id", strempty(json_string_member(record, "id"))) ||
            !cJSON_AddStringToObject(o, "companyId", strempty(company)) ||
            (k->label && !cJSON_AddStringToObject(o, k->label, strempty(json_string_member(record, k->label))))) {
                cJSON_Delete(o);
                return NULL;
        }
        return o;
}

static int handle_lookup(ApiRequest *req) {
        const char *kind = api_query(req, "kind"), *q = api_query(req, "q"), *company_id = api_query(req, "companyId");
        _cleanup_json_ cJSON *found = NULL;
        const LookupKind *k = NULL;
        void *items = NULL;
        size_t n = 0;
        int r;

        for (size_t i = 0; kind && i < ELEMENTSOF(kinds); i++)
                if (streq(kinds[i].name, kind))
                        k = &kinds[i];
        if (!k)
                return api_reply_error(req, 400, "kind must be one of company, agent, issue, run");
        if (isempty(q) || strlen(q) > 255)
                return api_reply_error(req, 400, "q must be a name, an identifier or an id (a prefix of 4 characters or more)");
        /* An agent looks in its own company only. */
        if (req->caller_agent_id) {
                if (company_id && !streq(company_id, req->caller_company_id))
                        return api_reply_error(req, 403, "agents may act only within their own company");
                company_id = req->caller_company_id;
        }
        r = store_lookup(api_store(req), k->entity, q, company_id, 64, &items, &n);
        if (r < 0)
                return r;
        found = cJSON_CreateArray();
        if (!found) {
                entity_array_free(k->entity, items, n);
                return -ENOMEM;
        }
        const cJSON *exact = NULL;
        for (size_t i = 0; i < n; i++) {
                cJSON *j = json_from_entity(k->entity, (char *) items + i * k->entity->size);
                const char *company = json_string_member(j, k->entity == &company_entity ? "id" : "companyId");
                if (!j || (company_id && !streq_ptr(company, company_id))) {
                        cJSON_Delete(j);
                        continue;
                }
                cJSON *c = candidate(k, j);
                bool is_exact = streq_ptr(json_string_member(j, "id"), q);
                cJSON_Delete(j);
                if (!c || !cJSON_AddItemToArray(found, c)) {
                        cJSON_Delete(c);
                        entity_array_free(k->entity, items, n);
                        return -ENOMEM;
                }
                if (is_exact)
                        exact = c;
        }
        entity_array_free(k->entity, items, n);

        int count = cJSON_GetArraySize(found);
        if (exact || count == 1)
                return api_reply(req, 200, cJSON_Duplicate(exact ?: cJSON_GetArrayItem(found, 0), true));
        if (count == 0)
                return api_reply_error(req, 404, "no %s is named '%.64s' or has an id that starts so", k->name, q);
        /* Several: the error names them, and the answer lists them. */
        _cleanup_free_ char *names = NULL;
        const cJSON *c;
        int shown = 0;
        cJSON_ArrayForEach (c, found) {
                if (shown++ == LOOKUP_CANDIDATES_MAX)
                        break;
                const char *label = k->label ? json_string_member(c, k->label) : NULL;
                char *t = strprintf("%s%s%s%s%s%s", strempty(names), names ? ", " : "", strempty(label), label ? " (" : "",
                                    json_string_member(c, "id"), label ? ")" : "");
                free(names);
                names = t;
                if (!names)
                        return -ENOMEM;
        }
        cJSON *o = cJSON_CreateObject();
        _cleanup_free_ char *msg = strprintf("'%.64s' names %d %s%s: %s%s; give more of the id", q, count, k->name,
                                             count == 1 ? "" : "s", strempty(names), count > shown ? ", ..." : "");
        if (!o || !msg || !cJSON_AddStringToObject(o, "error", msg) || !cJSON_AddItemToObject(o, "candidates", TAKE_PTR(found))) {
                cJSON_Delete(o);
                return -ENOMEM;
        }
        return api_reply(req, 409, o);
}

const ApiRoute api_lookup_routes[] = {
        { "GET", "/api/lookup", handle_lookup },
        {},
};
