/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A run's context (contextSnapshot) as wakes build and merge it: the wake's reason, source,
 * issue, task key and the comments that woke it (reference §3.2).
 */
#include "control/wake-context.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/log.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "basic/time-util.h"
#include "basic/util.h"
#include "store/jsonmap.h"
#include "store/queries.h"

/* The run's context: the wake's reason, source, trigger and task key (reference §3.2 step 1). */
cJSON *wake_context_parse(const char *text) {
        cJSON *o = cJSON_Parse(text ?: "{}");
        if (cJSON_IsObject(o))
                return o;
        cJSON_Delete(o);
        return cJSON_CreateObject();
}

/* Add id to an array of comment ids unless it is there (order kept). */
static void add_comment_id(cJSON *ids, const char *id) {
        const cJSON *e;

        cJSON_ArrayForEach (e, ids) {
                if (cJSON_IsString(e) && streq(e->valuestring, id))
                        return;
        }
        cJSON_AddItemToArray(ids, cJSON_CreateString(id));
}

/* Merge from into into: incoming keys win, comment id lists are unioned in order and the
 * latest comment id follows them (reference §3.2, coalescing and deferral). */
void wake_context_merge(cJSON *into, const cJSON *from) {
        cJSON *ids = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(into, "wakeCommentIds"), true);
        const cJSON *item, *e;

        if (!cJSON_IsArray(ids)) {
                cJSON_Delete(ids);
                ids = cJSON_CreateArray();
        }
        if (!ids)
                return;
        cJSON_ArrayForEach (item, from) {
                if (streq(item->string, "wakeCommentIds")) {
                        cJSON_ArrayForEach (e, item) {
                                if (cJSON_IsString(e))
                                        add_comment_id(ids, e->valuestring);
                        }
                        continue;
                }
                cJSON_DeleteItemFromObjectCaseSensitive(into, item->string);
                cJSON_AddItemToObject(into, item->string, cJSON_Duplicate(item, true));
        }
        cJSON_DeleteItemFromObjectCaseSensitive(into, "wakeCommentIds");
        if (cJSON_GetArraySize(ids) == 0) {
                cJSON_Delete(ids);
                return;
        }
        const char *last = cJSON_GetArrayItem(ids, cJSON_GetArraySize(ids) - 1)->valuestring;
        cJSON_DeleteItemFromObjectCaseSensitive(into, "commentId");
        cJSON_DeleteItemFromObjectCaseSensitive(into, "wakeCommentId");
        cJSON_AddStringToObject(into, "commentId", last);
        cJSON_AddStringToObject(into, "wakeCommentId", last);
        cJSON_AddItemToObject(into, "wakeCommentIds", ids);
}

bool wake_context_has_comment(const cJSON *ctx) {
        return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ctx, "wakeCommentIds")) > 0;
}
