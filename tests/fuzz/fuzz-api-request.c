/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The request router and the JSON mapping: the first line of the input is "METHOD PATH",
 * the rest a request body, taken as the HTTP thread and the loop take one (json_text_check(),
 * cJSON, then json_to_entity() of every entity the API creates or changes).
 */
#include <cjson/cJSON.h>
#include "fuzz.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-common.h"
#include "basic/json-text.h"
#include "store/jsonmap.h"
#include "store/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *text = (const char *) data, *nl = memchr(data, '\n', size);
        size_t line = nl ? (size_t) (nl - text) : size;
        char *head = strndup(text, line), *sp, *params[API_PARAMS_MAX] = {}, allow[64], msg[256];
        const Entity *const entities[] = { &company_entity, &agent_entity, &issue_entity, &comment_entity };
        bool known;

        if (!head)
                return 0;
        sp = strchr(head, ' ');
        if (sp) {
                *sp = 0;
                (void) api_route_find(head, sp + 1, params, allow, sizeof(allow), &known);
                api_params_free(params);
        }
        free(head);

        if (!nl)
                return 0;
        const char *body = nl + 1;
        size_t body_size = size - line - 1;
        if (json_text_check(body, body_size, msg, sizeof(msg)) < 0)
                return 0;
        cJSON *j = cJSON_ParseWithLength(body, body_size);
        if (!cJSON_IsObject(j)) {
                cJSON_Delete(j);
                return 0;
        }
        for (size_t i = 0; i < sizeof(entities) / sizeof(entities[0]); i++)
                for (unsigned allowed = FIELD_CREATE; allowed <= FIELD_PATCH; allowed <<= 1) {
                        void *obj = calloc(1, entities[i]->size);
                        char *error = NULL;
                        if (!obj || entity_init(entities[i], obj) < 0) {
                                free(obj);
                                break;
                        }
                        (void) json_to_entity(entities[i], j, allowed, NULL, obj, &error);
                        free(error);
                        entity_done(entities[i], obj);
                        free(obj);
                }
        cJSON_Delete(j);
        return 0;
}
