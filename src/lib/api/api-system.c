/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * corrald about itself: GET /api/health, POST /api/sweep and GET /metrics (Prometheus text).
 */
#include <assert.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/statvfs.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-common.h"
#include "control/budget.h"
#include "control/host.h"
#include "store/costs.h"
#include "basic/histogram.h"
#include "basic/log.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "basic/time-util.h"
#include "basic/util.h"
#include "store/issues.h"
#include "store/jsonmap.h"
#include "store/model.h"
#include "store/queries.h"
#include "control/stranded.h"
#include "control/sweep.h"
#include "supervise/supervisor.h"

/* The count r == 0 gave in *n, as name; passed by pointer and read here, after the call that
 * set it (the order of a call's arguments is unspecified: by value, n was read before). */
static int add_count(cJSON *o, const char *name, int r, const int64_t *n) {
        if (r < 0)
                return r;
        return cJSON_AddNumberToObject(o, name, (double) *n) ? 0 : -ENOMEM;
}

static int handle_health(ApiRequest *req) {
        Control *ctl = req->ctl;
        _cleanup_json_ cJSON *o = cJSON_CreateObject();
        cJSON *counts;
        int r;

        /* An agent learns that corral answers, and nothing about the host or other companies. */
        if (req->caller_agent_id) {
                if (!o || !cJSON_AddStringToObject(o, "status", "ok") || !cJSON_AddStringToObject(o, "runId", req->caller_run_id))
                        return -ENOMEM;
                return api_reply(req, 200, TAKE_PTR(o));
        }
        /* Degraded: corrald answers, but what it should record may not be. */
        const char *why[2];
        size_t n_why = 0;
        struct statvfs sv;
        if ((why[n_why] = store_health(ctl->store)))
                n_why++;
        if (statvfs(ctl->config->state_dir, &sv) >= 0 && sv.f_bavail == 0)
                why[n_why++] = "the state directory's file system is full: runs' output is held in memory or lost";
        if (!o || !cJSON_AddStringToObject(o, "status", n_why > 0 ? "degraded" : "ok"))
                return -ENOMEM;
        if (n_why > 0) {
                cJSON *reasons = cJSON_AddArrayToObject(o, "degraded");
                if (!reasons)
                        return -ENOMEM;
                for (size_t i = 0; i < n_why; i++)
                        cJSON_AddItemToArray(reasons, cJSON_CreateString(why[i]));
        }
        if (!cJSON_AddStringToObject(o, "version", PACKAGE_VERSION) ||
            !cJSON_AddNumberToObject(o, "schemaVersion", store_schema_version(ctl->store)) ||
            !cJSON_AddNumberToObject(o, "pid", getpid()) ||
            !cJSON_AddNumberToObject(o, "uptimeSec", (double) ((now_usec() - ctl->started_usec) / 1000000)) ||
            !cJSON_AddStringToObject(o, "placement", placement_kind_to_string(ctl->config->placement)) ||
            !cJSON_AddStringToObject(o, "stateDir", ctl->config->state_dir) ||
            !cJSON_AddBoolToObject(o, "socketActivated", ctl->socket_activated))
                return -ENOMEM;
        /* Which database, without a password its URI may hold. */
        cJSON *db = cJSON_AddObjectToObject(o, "database");
        if (!db || !cJSON_AddStringToObject(db, "backend", store_backend_name(store_backend(ctl->store))) ||
            !cJSON_AddStringToObject(db, "target", store_target(ctl->store)))
                return -ENOMEM;
        if (host_self_epoch(ctl) > 0) {
                cJSON *host = cJSON_AddObjectToObject(o, "host");
                if (!host || !cJSON_AddStringToObject(host, "id", host_self_id(ctl)) ||
                    !cJSON_AddNumberToObject(host, "epoch", (double) host_self_epoch(ctl)) ||
                    !cJSON_AddStringToObject(host, "leaseExpiresAt", host_self_lease_expires(ctl)))
                        return -ENOMEM;
        }
        counts = cJSON_AddObjectToObject(o, "counts");
        if (!counts)
                return -ENOMEM;
        int64_t n = 0;
        Store *s = api_store(req);
        if ((r = add_count(counts, "companies", store_count_all(s, &company_entity, &n), &n)) < 0 ||
            (r = add_count(counts, "agents", store_count_all(s, &agent_entity, &n), &n)) < 0 ||
            (r = add_count(counts, "issues", store_count_all(s, &issue_entity, &n), &n)) < 0 ||
            (r = add_count(counts, "activeRuns", store_runs_active_count(s, &n), &n)) < 0)
                return r;
        return api_reply(req, 200, TAKE_PTR(o));
}

static int handle_sweep(ApiRequest *req) {
        _cleanup_(stranded_counters_done) StrandedCounters c = {};
        _cleanup_json_ cJSON *o = NULL;
        cJSON *ids;
        int r;

        if (!api_require_board(req, "force a sweep"))
                return 0;
        r = control_sweep(req->ctl, &c);
        if (r < 0)
                return r;
        o = cJSON_CreateObject();
        if (!o || !cJSON_AddNumberToObject(o, "runsRecovered", r) ||
            !cJSON_AddNumberToObject(o, "dispatchRequeued", c.dispatch_requeued) ||
            !cJSON_AddNumberToObject(o, "continuationRequeued", c.continuation_requeued) ||
            !cJSON_AddNumberToObject(o, "escalated", c.escalated) || !cJSON_AddNumberToObject(o, "skipped", c.skipped) ||
            !(ids = cJSON_AddArrayToObject(o, "issueIds")))
                return -ENOMEM;
        STRV_FOREACH(id, c.issue_ids)
        cJSON_AddItemToArray(ids, cJSON_CreateString(*id));
        return api_reply(req, 200, TAKE_PTR(o));
}

static int metric_counts(ApiRequest *req, FILE *f, const char *name, const char *help, const Entity *e,
                         const char *const *statuses) {
        int64_t counts[16];
        size_t n = 0;
        int r;

        while (statuses[n])
                n++;
        assert(n <= ELEMENTSOF(counts));
        r = store_count_by_status(api_store(req), e, statuses, counts);
        if (r < 0)
                return r;
        fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%s{status=\"%s\"} %" PRIi64 "\n", name, statuses[i], counts[i]);
        return 0;
}

/* A label value as the text format wants it: backslash, double quote and newline escaped. */
static void put_label(FILE *f, const char *v) {
        for (const char *p = strempty(v); *p; p++) {
                if (*p == '\\' || *p == '"')
                        fputc('\\', f);
                if (*p == '\n') {
                        fputs("\\n", f);
                        continue;
                }
                fputc(*p, f);
        }
}

/* What was spent since the start, by company, agent and model, and what is left of each
 * budget this month (corrald(8), BUDGETS). */
static int metric_costs(ApiRequest *req, FILE *f) {
        char month[COST_MONTH_MAX];
        CostRow *rows;
        BudgetRow *budgets;
        size_t n;
        int r;

        r = store_cost_totals(api_store(req), &rows, &n);
        if (r < 0)
                return r;
        fputs("# HELP corral_cost_cents_total What runs cost, in cents, since the start.\n"
              "# TYPE corral_cost_cents_total counter\n",
              f);
        for (size_t i = 0; i < n; i++) {
                fputs("corral_cost_cents_total{company=\"", f);
                put_label(f, rows[i].company_id);
                fputs("\",agent=\"", f);
                put_label(f, rows[i].agent_id);
                fputs("\",model=\"", f);
                put_label(f, rows[i].model);
                fprintf(f, "\"} %" PRIi64 "\n", rows[i].cost_cents);
        }
        cost_rows_free(rows, n);
        budget_month(req->ctl->config, month);
        r = store_budgets(api_store(req), month, &budgets, &n);
        if (r < 0)
                return r;
        fputs("# HELP corral_budget_remaining_cents What is left this month of each budget, in cents.\n"
              "# TYPE corral_budget_remaining_cents gauge\n",
              f);
        for (size_t i = 0; i < n; i++) {
                fprintf(f, "corral_budget_remaining_cents{scope=\"%s\",company=\"", budgets[i].agent ? "agent" : "company");
                put_label(f, budgets[i].company_id);
                fputs("\",agent=\"", f);
                put_label(f, budgets[i].agent_id);
                fprintf(f, "\"} %" PRIi64 "\n", MAX(budgets[i].budget_cents - budgets[i].spent_cents, (int64_t) 0));
        }
        budget_rows_free(budgets, n);
        return 0;
}

/* What this corrald saw since it started: runs' ends, their durations, launches. */
static void metric_run_ends(Control *ctl, FILE *f) {
        const Telemetry *t = &ctl->telemetry;

        fputs("# HELP corral_run_ends_total Runs that ended since corrald started, by status, adapter and error code.\n"
              "# TYPE corral_run_ends_total counter\n",
              f);
        for (size_t i = 0; i < t->n_run_ends; i++)
                fprintf(f, "corral_run_ends_total{status=\"%s\",adapter=\"%s\",error_code=\"%s\"} %" PRIu64 "\n",
                        run_status_to_string(t->run_ends[i].status), adapter_type_to_string(t->run_ends[i].adapter),
                        t->run_ends[i].error_code, t->run_ends[i].n);
        if (t->run_ends_other > 0)
                fprintf(f, "corral_run_ends_total{status=\"other\",adapter=\"other\",error_code=\"other\"} %" PRIu64 "\n",
                        t->run_ends_other);
        fprintf(f,
                "# HELP corral_run_log_bytes_total Output of the runs that ended since corrald started, in bytes.\n"
                "# TYPE corral_run_log_bytes_total counter\n"
                "corral_run_log_bytes_total %" PRIu64 "\n",
                t->log_bytes);
        histogram_print(&t->run_duration, f, "corral_run_duration_seconds",
                        "How long runs that ended since corrald started ran, from start to end.");
        histogram_print(supervisor_launch_latency(ctl->supervisor), f, "corral_launch_latency_seconds",
                        "From a launch to its agent's first instruction, since corrald started.");
}

static int handle_metrics(ApiRequest *req) {
        Control *ctl = req->ctl;
        char *text = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f,
                "# HELP corral_telemetry_events_total Telemetry events since corrald started.\n"
                "# TYPE corral_telemetry_events_total counter\n"
                "corral_telemetry_events_total{event=\"agent.first_heartbeat\"} %" PRIu64 "\n"
                "corral_telemetry_events_total{event=\"agent.task_completed\"} %" PRIu64 "\n"
                "# HELP corral_supervised_runs Runs whose processes this corrald tracks now.\n"
                "# TYPE corral_supervised_runs gauge\n"
                "corral_supervised_runs %u\n"
                "# HELP corral_database_info The database corrald keeps its state in.\n"
                "# TYPE corral_database_info gauge\n"
                "corral_database_info{backend=\"%s\"} 1\n",
                ctl->telemetry.first_heartbeat, ctl->telemetry.task_completed, supervisor_count(ctl->supervisor),
                store_backend_name(store_backend(ctl->store)));
        /* This host's lease, as seconds left: a host whose figure nears 0 is not renewing. */
        int64_t lease_end;
        if (host_self_id(ctl) && iso_time_parse(host_self_lease_expires(ctl), &lease_end) >= 0)
                fprintf(f,
                        "# HELP corral_host_lease_remaining_seconds What is left of this host's lease in the database.\n"
                        "# TYPE corral_host_lease_remaining_seconds gauge\n"
                        "corral_host_lease_remaining_seconds{host=\"%s\"} %.3f\n",
                        host_self_id(ctl), (double) (lease_end - now_usec()) / 1e6);
        r = metric_counts(req, f, "corral_runs", "Runs by status.", &run_entity, run_status_names);
        if (r >= 0)
                r = metric_counts(req, f, "corral_agents", "Agents by status.", &agent_entity, agent_status_names);
        if (r >= 0)
                r = metric_counts(req, f, "corral_issues", "Issues by status.", &issue_entity, issue_status_names);
        if (r >= 0)
                r = metric_costs(req, f);
        if (r >= 0)
                metric_run_ends(ctl, f);
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0) {
                free(text);
                return r;
        }
        return api_reply_text(req, 200, text, "text/plain; version=0.0.4");
}

/* The OpenAPI document of every route (docs/openapi.json, built in): for anyone who may
 * call the API, agents too. */
static int handle_openapi(ApiRequest *req) {
        return api_reply_text(req, 200, memdup(api_openapi_json, api_openapi_json_size + 1), "application/json");
}

const ApiRoute api_system_routes[] = {
        { "GET", "/api/health", handle_health },
        { "GET", "/api/openapi.json", handle_openapi },
        { "POST", "/api/sweep", handle_sweep },
        { "GET", "/metrics", handle_metrics },
        {},
};
