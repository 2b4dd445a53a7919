/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "control/wake-payload.h"

#include <errno.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/utf8.h"
#include "store/jsonmap.h"

static cJSON *issue_summary(const Issue *issue) {
        cJSON *o = cJSON_CreateObject();

        if (!o)
                return NULL;
        cJSON_AddStringToObject(o, "id", issue->id);
        cJSON_AddStringToObject(o, "identifier", issue->identifier);
        cJSON_AddStringToObject(o, "title", issue->title);
        cJSON_AddStringToObject(o, "status", issue_status_to_string(issue->status));
        cJSON_AddStringToObject(o, "priority", issue_priority_to_string(issue->priority));
        return o;
}

/* One comment of the window; *budget is what is left of WAKE_PAYLOAD_BODIES_MAX. */
static cJSON *comment_summary(const IssueComment *c, size_t *budget, bool *ret_truncated) {
        cJSON *o = cJSON_CreateObject(), *author;
        const char *text = c->body ?: "";
        size_t n = utf8_complete_prefix(text, strnlen(text, MIN((size_t) WAKE_PAYLOAD_COMMENT_BODY_MAX, *budget)));
        bool cut = n < strlen(text);
        _cleanup_free_ char *body = strndup(text, n);

        if (!o || !body) {
                cJSON_Delete(o);
                return NULL;
        }
        *budget -= n;
        *ret_truncated = cut;
        cJSON_AddStringToObject(o, "id", c->id);
        cJSON_AddStringToObject(o, "issueId", c->issue_id);
        cJSON_AddStringToObject(o, "body", body);
        cJSON_AddBoolToObject(o, "bodyTruncated", cut);
        cJSON_AddStringToObject(o, "createdAt", c->created_at);
        author = cJSON_AddObjectToObject(o, "author");
        if (c->author_agent_id) {
                cJSON_AddStringToObject(author, "type", "agent");
                cJSON_AddStringToObject(author, "id", c->author_agent_id);
        } else if (c->author_user_id) {
                cJSON_AddStringToObject(author, "type", "user");
                cJSON_AddStringToObject(author, "id", c->author_user_id);
        } else
                cJSON_AddStringToObject(author, "type", "system");
        return o;
}

int wake_payload_build(Store *s, const cJSON *ctx, const Issue *issue, bool checked_out, cJSON **ret) {
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(ctx, "wakeCommentIds"),
                    *stage = cJSON_GetObjectItemCaseSensitive(ctx, "executionStage"),
                    *reason = cJSON_GetObjectItemCaseSensitive(ctx, "wakeReason"), *id;
        int requested = cJSON_GetArraySize(ids), included = 0, missing = 0, index = 0;
        size_t budget = WAKE_PAYLOAD_BODIES_MAX;
        bool truncated = requested > WAKE_PAYLOAD_COMMENTS_MAX;
        _cleanup_json_ cJSON *p = NULL;
        cJSON *comments, *window, *id_list;
        int r;

        *ret = NULL;
        if (!issue && requested == 0 && !stage)
                return 0;
        p = cJSON_CreateObject();
        if (!p)
                return -ENOMEM;
        if (cJSON_IsString(reason))
                cJSON_AddStringToObject(p, "reason", reason->valuestring);
        if (issue && !cJSON_AddItemToObject(p, "issue", issue_summary(issue)))
                return -ENOMEM;

        id_list = cJSON_AddArrayToObject(p, "commentIds");
        comments = cJSON_AddArrayToObject(p, "comments");
        if (!id_list || !comments)
                return -ENOMEM;
        /* The newest comments are the ones that woke the agent: keep the last few. */
        cJSON_ArrayForEach (id, ids) {
                _cleanup_(comment_donep) IssueComment c = {};
                bool cut;

                if (!cJSON_IsString(id) || index++ < requested - WAKE_PAYLOAD_COMMENTS_MAX)
                        continue;
                cJSON_AddItemToArray(id_list, cJSON_CreateString(id->valuestring));
                r = store_get(s, &comment_entity, id->valuestring, &c);
                if (r == -ENOENT) {
                        missing++;
                        continue;
                }
                if (r < 0)
                        return r;
                if (budget == 0) {
                        truncated = true;
                        continue;
                }
                cJSON *o = comment_summary(&c, &budget, &cut);
                if (!o)
                        return -ENOMEM;
                cJSON_AddItemToArray(comments, o);
                truncated = truncated || cut;
                included++;
        }
        cJSON *last = cJSON_GetArrayItem(id_list, cJSON_GetArraySize(id_list) - 1);
        if (last)
                cJSON_AddStringToObject(p, "latestCommentId", last->valuestring);
        window = cJSON_AddObjectToObject(p, "commentWindow");
        if (!window)
                return -ENOMEM;
        cJSON_AddNumberToObject(window, "requestedCount", requested);
        cJSON_AddNumberToObject(window, "includedCount", included);
        cJSON_AddNumberToObject(window, "missingCount", missing);
        cJSON_AddBoolToObject(p, "truncated", truncated);
        cJSON_AddBoolToObject(p, "fallbackFetchNeeded", truncated || missing > 0);
        cJSON_AddBoolToObject(p, "checkedOutByHarness", checked_out);
        if (stage)
                cJSON_AddItemToObject(p, "executionStage", cJSON_Duplicate(stage, true));
        *ret = TAKE_PTR(p);
        return 0;
}
