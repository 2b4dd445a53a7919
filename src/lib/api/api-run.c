/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Runs: list, read, cancel, their events and their log.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-common.h"
#include "basic/log.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "basic/time-util.h"
#include "basic/util.h"
#include "store/issues.h"
#include "store/jsonmap.h"
#include "store/model.h"
#include "store/queries.h"
#include "control/finalize.h"
#include "control/host.h"
#include "control/log-forward.h"
#include "supervise/runlog.h"
#include "supervise/supervisor.h"

static int handle_run_list(ApiRequest *req) {
        _cleanup_(company_donep) Company c = {};
        const char *agent = api_query(req, "agentId");
        StorePage page;
        size_t n;
        Run *items;
        int r;

        r = api_load(req, &company_entity, req->params[0], &c);
        if (r <= 0)
                return r;
        r = api_parse_page(req, &page);
        if (r <= 0)
                return r;
        r = store_runs_of_company(api_store(req), c.id, agent, &page, &items, &n);
        return api_reply_run_page(req, r, items, n, &page);
}

static int handle_run_get(ApiRequest *req) {
        return api_reply_run(req, 200, req->params[0]);
}

static int handle_run_cancel(ApiRequest *req) {
        _cleanup_(run_donep) Run run = {};
        int r;

        if (!api_require_board(req, "cancel runs"))
                return 0;
        r = api_load(req, &run_entity, req->params[0], &run);
        if (r <= 0)
                return r;
        r = finalize_cancel_run(req->ctl, run.id);
        if (r < 0 && r != -ESTALE)
                return r;
        if (r >= 0) {
                r = api_add_activity(req, run.company_id, "heartbeat.cancelled", "heartbeat_run", run.id, run.agent_id, NULL);
                if (r < 0)
                        return r;
        }
        /* A running run ends once its processes are gone; the reply shows where it is now. */
        return api_reply_run(req, 202, run.id);
}

static int handle_run_events(ApiRequest *req) {
        _cleanup_(run_donep) Run run = {};
        int64_t after, limit;
        size_t n;
        RunEvent *items;
        int r;

        r = api_load(req, &run_entity, req->params[0], &run);
        if (r <= 0)
                return r;
        if ((r = api_parse_uint_query(req, "afterSeq", 0, 0, INT64_MAX / 2, &after)) <= 0 ||
            (r = api_parse_uint_query(req, "limit", 200, 1, API_LIST_LIMIT_MAX, &limit)) <= 0)
                return r;
        r = store_run_events_after(api_store(req), run.id, after, (size_t) limit, &items, &n);
        return r < 0 ? r : api_reply_entities(req, &run_event_entity, items, n);
}

/* GET .../log reads this much unless asked for less. */
#define LOG_READ_DEFAULT 256000
#define LOG_READ_MAX (1024 * 1024)

static int handle_run_log(ApiRequest *req) {
        _cleanup_(run_donep) Run run = {};
        _cleanup_(host_donep) Host host = {};
        _cleanup_(log_piece_done) LogPiece p = {};
        int64_t offset, limit;
        int r;

        r = api_load(req, &run_entity, req->params[0], &run);
        if (r <= 0)
                return r;
        if ((r = api_parse_uint_query(req, "offset", 0, 0, INT64_MAX / 2, &offset)) <= 0 ||
            (r = api_parse_uint_query(req, "limitBytes", LOG_READ_DEFAULT, 1, LOG_READ_MAX, &limit)) <= 0)
                return r;
        /* -EAGAIN: its host has not answered yet, asked again from api.c's retries. */
        r = log_forward_read(req->ctl, &run, offset, limit, req->retry_state, req->age_usec, &p, &host);
        if (r == -ENOENT && host.id)
                return api_reply_error(req, 404, "Run log not found on host %s (%s), which ran it", host.id, strna(host.name));
        if (r == -ENOENT)
                return api_reply_error(req, 404, "Run log not found");
        if (r == -EHOSTDOWN)
                return api_reply_error(req, 409,
                                       "The log of run %s is on host %s (%s), which ran it and is %s; its events and "
                                       "excerpts are readable here",
                                       run.id, host.id, host.name ?: "no longer registered", host.name ? "dead" : "gone");
        if (r == -ETIMEDOUT)
                return api_reply_error(req, 504,
                                       "The log of run %s is on host %s (%s), which ran it and did not answer within %u s; "
                                       "try again, or read it through that host's corrald",
                                       run.id, host.id, host.name, (unsigned) (LOG_FORWARD_TIMEOUT_USEC / USEC_PER_SEC));
        if (r < 0)
                return r;

        _cleanup_json_ cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddStringToObject(o, "runId", run.id) || !cJSON_AddStringToObject(o, "store", "local_file") ||
            !cJSON_AddStringToObject(o, "logRef", strempty(p.log_ref)) ||
            !cJSON_AddStringToObject(o, "content", strempty(p.content)) ||
            (p.host_id && !cJSON_AddStringToObject(o, "hostId", p.host_id)))
                return -ENOMEM;
        if (p.read_bytes > 0 && (p.kept_bytes < p.read_bytes || p.kept_bytes == limit))
                cJSON_AddNumberToObject(o, "nextOffset", (double) (offset + p.kept_bytes));
        else if (p.read_bytes > 0 && !run_status_is_terminal(run.status))
                /* More may come while the run lives. */
                cJSON_AddNumberToObject(o, "nextOffset", (double) (offset + p.kept_bytes));
        return api_reply(req, 200, TAKE_PTR(o));
}

static int handle_company_live_runs(ApiRequest *req) {
        _cleanup_(company_donep) Company c = {};
        StorePage page;
        size_t n;
        Run *items;
        int r;

        r = api_load(req, &company_entity, req->params[0], &c);
        if (r <= 0)
                return r;
        r = api_parse_page(req, &page);
        if (r <= 0)
                return r;
        r = store_runs_active_of_company(api_store(req), c.id, &page, &items, &n);
        return api_reply_run_page(req, r, items, n, &page);
}

const ApiRoute api_run_routes[] = {
        { "GET", "/api/companies/:id/heartbeat-runs", handle_run_list },
        { "GET", "/api/heartbeat-runs/:id", handle_run_get },
        { "POST", "/api/heartbeat-runs/:id/cancel", handle_run_cancel },
        { "GET", "/api/heartbeat-runs/:id/events", handle_run_events },
        { "GET", "/api/heartbeat-runs/:id/log", handle_run_log },
        { "GET", "/api/companies/:id/live-runs", handle_company_live_runs },
        {},
};
