/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Telemetry events as journal entries and counters.
 */
#include "control/telemetry.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "basic/macro.h"
#include "store/jsonmap.h"
#include "basic/log.h"
#include "basic/time-util.h"
#include "basic/util.h"

void telemetry_first_heartbeat(Telemetry *t, const Agent *agent) {
        char agent_id[64], role[TEXT_MAX + 32];

        t->first_heartbeat++;
        snprintf(agent_id, sizeof(agent_id), "CORRAL_AGENT_ID=%s", agent->id);
        snprintf(role, sizeof(role), "CORRAL_AGENT_ROLE=%s", agent->role);
        log_fields(LOG_INFO,
                   ((const char *const[]){ "MESSAGE_ID=" TELEMETRY_FIRST_HEARTBEAT_ID,
                                           "CORRAL_TELEMETRY_EVENT=agent.first_heartbeat", agent_id, role, NULL }),
                   "Telemetry agent.first_heartbeat: agent %s (role %s).", agent->id, agent->role);
}

void telemetry_task_completed(Telemetry *t, const Agent *agent, const Issue *issue) {
        _cleanup_json_ cJSON *config = cJSON_Parse(agent->adapter_config ?: "{}");
        const cJSON *model = cJSON_GetObjectItemCaseSensitive(config, "model");
        char agent_id[64], role[TEXT_MAX + 32], adapter[64], model_field[TEXT_MAX + 32], issue_id[64];

        t->task_completed++;
        snprintf(agent_id, sizeof(agent_id), "CORRAL_AGENT_ID=%s", agent->id);
        snprintf(role, sizeof(role), "CORRAL_AGENT_ROLE=%s", agent->role);
        snprintf(adapter, sizeof(adapter), "CORRAL_ADAPTER_TYPE=%s", adapter_type_to_string(agent->adapter_type));
        snprintf(issue_id, sizeof(issue_id), "CORRAL_ISSUE_ID=%s", issue->id);
        snprintf(model_field, sizeof(model_field), "CORRAL_MODEL=%s", cJSON_IsString(model) ? model->valuestring : "");
        log_fields(
                LOG_INFO,
                ((const char *const[]){ "MESSAGE_ID=" TELEMETRY_TASK_COMPLETED_ID, "CORRAL_TELEMETRY_EVENT=agent.task_completed",
                                        agent_id, role, adapter, issue_id, cJSON_IsString(model) ? model_field : NULL, NULL }),
                "Telemetry agent.task_completed: agent %s (role %s, adapter %s) finished %s.", agent->id, agent->role,
                adapter_type_to_string(agent->adapter_type), issue->identifier);
}

void telemetry_init(Telemetry *t) {
        static const double duration_bounds[] = { 1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400, 43200 };

        *t = (Telemetry){ .run_duration = { .bounds = duration_bounds, .n_bounds = ELEMENTSOF(duration_bounds) } };
}

void telemetry_run_ended(Telemetry *t, const Run *run, AdapterType adapter) {
        const char *code = strempty(run->error_code);
        RunEndCount *c = NULL;
        int64_t started, finished;

        for (size_t i = 0; i < t->n_run_ends && !c; i++)
                if (t->run_ends[i].status == run->status && t->run_ends[i].adapter == adapter &&
                    strncmp(t->run_ends[i].error_code, code, sizeof(t->run_ends[i].error_code)) == 0)
                        c = &t->run_ends[i];
        if (!c && t->n_run_ends < TELEMETRY_RUN_END_KINDS) {
                c = &t->run_ends[t->n_run_ends++];
                *c = (RunEndCount){ .status = run->status, .adapter = adapter };
                snprintf(c->error_code, sizeof(c->error_code), "%s", code);
        }
        if (c)
                c->n++;
        else
                t->run_ends_other++;
        if (run->log_bytes > 0 && run->log_bytes != INT_NULL)
                t->log_bytes += (uint64_t) run->log_bytes;
        if (run->started_at && run->finished_at && iso_time_parse(run->started_at, &started) >= 0 &&
            iso_time_parse(run->finished_at, &finished) >= 0 && finished >= started)
                histogram_observe(&t->run_duration, (double) (finished - started) / 1e6);
}
