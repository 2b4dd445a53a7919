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

/* What was read of a run's log, on host_id (NULL: this one). */
static int reply_log(ApiRequest *req, const Run *run, const char *host_id, const char *log_ref, const char *content,
                     int64_t offset, int64_t limit, int64_t n, int64_t len) {
        _cleanup_json_ cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddStringToObject(o, "runId", run->id) || !cJSON_AddStringToObject(o, "store", "local_file") ||
            !cJSON_AddStringToObject(o, "logRef", strempty(log_ref)) || !cJSON_AddStringToObject(o, "content", strempty(content)))
                return -ENOMEM;
        if (host_id && !cJSON_AddStringToObject(o, "hostId", host_id))
                return -ENOMEM;
        if (n > 0 && (len < n || len == limit))
                cJSON_AddNumberToObject(o, "nextOffset", (double) (offset + len));
        else if (n > 0 && !run_status_is_terminal(run->status))
                /* More may come while the run lives. */
                cJSON_AddNumberToObject(o, "nextOffset", (double) (offset + len));
        return api_reply(req, 200, TAKE_PTR(o));
}

/* The log of a run of another host, read by that host (control/log-forward.h): 1 when
 * answered, -EAGAIN to be called again while it has not answered, 0 when it cannot (dead,
 * or silent past the timeout) and the file is to be looked for here (hosts may share a file
 * system). */
static int forwarded_log(ApiRequest *req, const Run *run, const Host *host, int64_t offset, int64_t limit) {
        _cleanup_(log_read_donep) LogRead answer = {};
        char **asked = req->retry_state;
        int r;

        if (host->status == HOST_DEAD)
                return 0;
        if (!*asked) {
                r = log_forward_ask(req->ctl, run, offset, limit, asked);
                return r < 0 ? r : -EAGAIN;
        }
        r = log_forward_take(req->ctl, *asked, &answer);
        if (r < 0)
                return r;
        if (r == 0 && req->age_usec < LOG_FORWARD_TIMEOUT_USEC)
                return -EAGAIN;
        if (r == 0) {
                log_forward_drop(req->ctl, *asked);
                return 0;
        }
        if (answer.status == LOG_READ_MISSING)
                r = api_reply_error(req, 404, "Run log not found on host %s (%s), which ran it", host->id, host->name);
        else
                r = reply_log(req, run, host->id, answer.log_ref, answer.content, offset, limit, answer.read_bytes,
                              answer.kept_bytes);
        return r < 0 ? r : 1;
}

static int handle_run_log(ApiRequest *req) {
        _cleanup_(run_donep) Run run = {};
        _cleanup_(host_donep) Host host = {};
        _cleanup_free_ char *path = NULL, *buf = NULL;
        int64_t offset, limit;
        bool elsewhere;
        size_t n, len;
        int r;

        r = api_load(req, &run_entity, req->params[0], &run);
        if (r <= 0)
                return r;
        if ((r = api_parse_uint_query(req, "offset", 0, 0, INT64_MAX / 2, &offset)) <= 0 ||
            (r = api_parse_uint_query(req, "limitBytes", LOG_READ_DEFAULT, 1, LOG_READ_MAX, &limit)) <= 0)
                return r;
        /* A run's log stays with the host that ran it, which reads it for the others. */
        elsewhere = host_shared(req->ctl) && run.host_id && !streq(run.host_id, host_self_id(req->ctl));
        if (elsewhere) {
                r = store_get(api_store(req), &host_entity, run.host_id, &host);
                if (r == -ENOENT)
                        r = free_and_strdup(&host.id, run.host_id) < 0 ? -ENOMEM : 0;
                else if (r >= 0)
                        r = forwarded_log(req, &run, &host, offset, limit);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
        path = run.log_path ? strdup(run.log_path) : supervisor_log_path(req->ctl->supervisor, run.id);
        if (!path)
                return -ENOMEM;
        r = runlog_read(path, offset, (size_t) limit, &buf, &n, &len);
        if (r == -ENOENT && elsewhere) {
                if (host.status == HOST_DEAD || !host.name)
                        return api_reply_error(req, 409,
                                               "The log of run %s is on host %s (%s), which ran it and is %s; its events "
                                               "and excerpts are readable here",
                                               run.id, host.id, host.name ?: "no longer registered", host.name ? "dead" : "gone");
                return api_reply_error(req, 504,
                                       "The log of run %s is on host %s (%s), which ran it and did not answer within %u s; "
                                       "try again, or read it through that host's corrald",
                                       run.id, host.id, host.name, (unsigned) (LOG_FORWARD_TIMEOUT_USEC / USEC_PER_SEC));
        }
        if (r == -ENOENT)
                return api_reply_error(req, 404, "Run log not found");
        if (r < 0)
                return r;
        return reply_log(req, &run, NULL, path, buf, offset, limit, (int64_t) n, (int64_t) len);
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
