/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The hosts sharing the database (corrald(8), HOSTS): their list, with the runs each
 * supervises now, and the drain of one and its resume. The board's alone: agents learn
 * nothing of hosts.
 */
#include <cjson/cJSON.h>
#include <errno.h>

#include "api/api-common.h"
#include "basic/macro.h"
#include "control/host.h"
#include "store/jsonmap.h"
#include "store/queries.h"

static int handle_host_list(ApiRequest *req) {
        _cleanup_json_ cJSON *list = NULL;
        Host *items = NULL;
        StorePage page;
        size_t n = 0;
        int r;

        if (!api_require_board(req, "list hosts"))
                return 0;
        r = api_parse_page(req, &page);
        if (r <= 0)
                return r;
        r = store_hosts(api_store(req), &page, &items, &n);
        if (r == -EINVAL && page.after)
                return api_reply_error(req, 400, "after must be the nextCursor of a page of this list");
        if (r < 0)
                return r;
        list = cJSON_CreateArray();
        for (size_t i = 0; list && i < n && r >= 0; i++) {
                cJSON *o = json_from_entity(&host_entity, &items[i]);
                int64_t running = 0;
                if (!o) {
                        r = -ENOMEM;
                        break;
                }
                cJSON_AddItemToArray(list, o);
                r = store_runs_running_on_host_count(api_store(req), items[i].id, &running);
                if (r >= 0 &&
                    (!cJSON_AddNumberToObject(o, "runningRuns", (double) running) ||
                     !cJSON_AddBoolToObject(o, "self", streq_ptr(items[i].id, host_self_id(req->ctl)))))
                        r = -ENOMEM;
        }
        entity_array_free(&host_entity, items, n);
        if (r < 0 || !list) {
                free(page.next);
                return r < 0 ? r : -ENOMEM;
        }
        free(req->next_cursor);
        req->next_cursor = page.next;
        return api_reply(req, 200, TAKE_PTR(list));
}

/* A drain or a resume: the host's row as it is after it. */
static int host_action(ApiRequest *req, const char *what, int (*action)(Control *ctl, const char *host_id)) {
        _cleanup_(host_donep) Host h = {};
        int r;

        if (!api_require_board(req, what))
                return 0;
        r = action(req->ctl, req->params[0]);
        if (r == -ENOENT)
                return api_reply_error(req, 404, "no host %s", req->params[0]);
        if (r == -ESTALE)
                return api_reply_error(req, 409, "host %s is dead: it is live again when its corrald starts again",
                                       req->params[0]);
        if (r < 0)
                return r;
        r = api_load(req, &host_entity, req->params[0], &h);
        return r <= 0 ? r : api_reply_entity(req, 200, &host_entity, &h);
}

static int handle_host_drain(ApiRequest *req) {
        return host_action(req, "drain hosts", host_drain);
}

static int handle_host_resume(ApiRequest *req) {
        return host_action(req, "resume hosts", host_resume);
}

const ApiRoute api_host_routes[] = {
        { "GET", "/api/hosts", handle_host_list },
        { "POST", "/api/hosts/:id/drain", handle_host_drain },
        { "POST", "/api/hosts/:id/resume", handle_host_resume },
        {},
};
