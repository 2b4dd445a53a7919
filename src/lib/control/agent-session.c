/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "control/agent-session.h"
#include "control/cli-output.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include "basic/macro.h"
#include "store/queries.h"
#include "store/jsonmap.h"

static const char *task_key_of(const cJSON *ctx) {
        return json_string_member(ctx, "taskKey") ?: json_string_member(ctx, "taskId") ?: json_string_member(ctx, "issueId") ?: AGENT_SESSION_HEARTBEAT_TASK;
}

static int find_task_session(Store *s, const Agent *agent, const char *task_key, AgentTaskSession *ret) {
        int r = store_task_session_for_task(s, agent->id, adapter_type_to_string(agent->adapter_type), task_key, ret);
        return r < 0 ? r : r > 0 ? 0 : -ENOENT;
}

int agent_session_resume_id(Store *s, const Agent *agent, const char *context_json, char **ret) {
        static const char *const fresh_reasons[] = { "issue_assigned", "execution_review_requested",
                                                     "execution_approval_requested", "execution_changes_requested", NULL };
        _cleanup_json_ cJSON *ctx = cJSON_Parse(context_json ?: "{}");
        _cleanup_(task_session_donep) AgentTaskSession ts = {};
        const char *reason = json_string_member(ctx, "wakeReason");
        int r;

        *ret = NULL;
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ctx, "forceFreshSession")))
                return 0;
        for (size_t i = 0; reason && fresh_reasons[i]; i++)
                if (streq(reason, fresh_reasons[i]))
                        return 0;
        r = find_task_session(s, agent, task_key_of(ctx), &ts);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        *ret = TAKE_PTR(ts.session_display_id);
        return 0;
}

int agent_session_prior_totals(Store *s, const Agent *agent, const Run *run, const char *session_id, int64_t *ret_input,
                               int64_t *ret_cached, int64_t *ret_output) {
        _cleanup_json_ cJSON *ctx = cJSON_Parse(run->context_snapshot ?: "{}"), *usage = NULL;
        _cleanup_(task_session_donep) AgentTaskSession ts = {};
        _cleanup_(run_donep) Run last = {};
        const cJSON *totals;
        int r;

        *ret_input = *ret_cached = *ret_output = 0;
        if (!session_id)
                return 0;
        r = find_task_session(s, agent, task_key_of(ctx), &ts);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        /* Only the session this run continued: another one starts from nothing. */
        if (!streq_ptr(ts.session_display_id, session_id) || !ts.last_run_id || streq(ts.last_run_id, run->id))
                return 0;
        r = store_get(s, &run_entity, ts.last_run_id, &last);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        usage = cJSON_Parse(last.usage_json ?: "{}");
        totals = cJSON_GetObjectItemCaseSensitive(usage, "sessionTotals");
        *ret_input = json_count_member(totals, "inputTokens");
        *ret_cached = json_count_member(totals, "cachedInputTokens");
        *ret_output = json_count_member(totals, "outputTokens");
        return 0;
}

int agent_session_record(Store *s, const Agent *agent, const Run *run, AgentRuntimeState *rs, const char *now) {
        _cleanup_json_ cJSON *ctx = cJSON_Parse(run->context_snapshot ?: "{}"), *usage = cJSON_Parse(run->usage_json ?: "{}");
        _cleanup_(task_session_donep) AgentTaskSession ts = {};
        int r;

        /* Usage adds up (reference §6.7); a subscription costs nothing per run. */
        rs->total_input_tokens = cli_count_add(rs->total_input_tokens, json_count_member(usage, "inputTokens"));
        rs->total_cached_input_tokens =
                cli_count_add(rs->total_cached_input_tokens, json_count_member(usage, "cachedInputTokens"));
        rs->total_output_tokens = cli_count_add(rs->total_output_tokens, json_count_member(usage, "outputTokens"));
        /* Priced by the budget module (control/budget.h): a subscription's are 0. */
        rs->total_cost_cents = cli_count_add(rs->total_cost_cents, json_count_member(usage, "costCents"));
        if (streq_ptr(run->error_code, "session_not_found")) {
                /* The CLI no longer knows the session: the task's next run starts afresh,
                 * instead of failing the same way every time. */
                rs->session_id = mfree(rs->session_id);
                return store_task_sessions_delete(s, agent->id, task_key_of(ctx));
        }
        if (!run->session_id_after)
                return 0;
        if (free_and_strdup(&rs->session_id, run->session_id_after) < 0)
                return -ENOMEM;

        r = find_task_session(s, agent, task_key_of(ctx), &ts);
        bool is_new = r == -ENOENT;
        if (r < 0 && !is_new)
                return r;
        if (is_new) {
                r = entity_init(&task_session_entity, &ts);
                if (r < 0)
                        return r;
                ts.adapter_type = agent->adapter_type;
                if (record_stamp(&ts.id, &ts.created_at, &ts.updated_at, now) < 0 ||
                    free_and_strdup(&ts.company_id, agent->company_id) < 0 || free_and_strdup(&ts.agent_id, agent->id) < 0 ||
                    free_and_strdup(&ts.task_key, task_key_of(ctx)) < 0)
                        return -ENOMEM;
        }
        if (free_and_strdup(&ts.session_display_id, run->session_id_after) < 0 || free_and_strdup(&ts.last_run_id, run->id) < 0 ||
            free_and_strdup(&ts.last_error, run->error) < 0 || free_and_strdup(&ts.updated_at, now) < 0)
                return -ENOMEM;
        return is_new ? store_insert(s, &task_session_entity, &ts) : store_update(s, &task_session_entity, &ts);
}
