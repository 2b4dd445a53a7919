/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Run events and the outcome mapping of finished runs.
 */
#include "control/runs.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/utf8.h"
#include "store/queries.h"
#include "basic/util.h"
#include "control/cli-output.h"
#include "supervise/supervisor.h"
#include "basic/time-util.h"

typedef struct Outcome {
        RunStatus status;
        const char *error_code;
        const char *stop_reason;
} Outcome;

static Outcome outcome_of(const RunResult *result) {
        switch (result->end) {
        case RUN_END_EXITED:
                /* A coding CLI may say it failed even when it exits 0 (reference §2.3 step 7). */
                if (result->cli && result->cli->error_code)
                        return (Outcome){ RUN_FAILED, result->cli->error_code, result->cli->error_code };
                if (result->cli && result->cli->is_error)
                        return (Outcome){ RUN_FAILED, "adapter_failed", "adapter_failed" };
                if (result->exit_code == 0 && !result->signal)
                        return (Outcome){ RUN_SUCCEEDED, NULL, "completed" };
                return (Outcome){ RUN_FAILED, "adapter_failed", "adapter_failed" };
        case RUN_END_CANCELLED:
                return (Outcome){ RUN_CANCELLED, "cancelled", "cancelled" };
        case RUN_END_TIMEOUT:
                return (Outcome){ RUN_TIMED_OUT, "timeout", "timeout" };
        case RUN_END_IDLE_TIMEOUT:
                return (Outcome){ RUN_TIMED_OUT, "idle_timeout", "idle_timeout" };
        case RUN_END_OOM:
                return (Outcome){ RUN_FAILED, "oom_killed", "oom_killed" };
        case RUN_END_LOST:
                return (Outcome){ RUN_FAILED, "process_lost", "process_lost" };
        case RUN_END_LAUNCH_FAILED:
        default:
                return (Outcome){ RUN_FAILED, "launch_failed", "launch_failed" };
        }
}

static char *error_text(const RunResult *result) {
        switch (result->end) {
        case RUN_END_EXITED:
                if (result->cli && result->cli->error_message && (result->cli->is_error || result->exit_code != 0))
                        return strdup(result->cli->error_message);
                if (result->exit_code == 0 && !result->signal)
                        return NULL;
                if (result->error)
                        return strdup(result->error);
                if (result->signal)
                        return strprintf("Process was killed by %s", result->signal);
                return strprintf("Process exited with code %" PRIi64, result->exit_code);
        case RUN_END_CANCELLED:
                return strdup("Cancelled");
        case RUN_END_TIMEOUT:
                return strdup("Timed out");
        case RUN_END_IDLE_TIMEOUT:
                return strdup("Timed out: no output for the idle timeout");
        case RUN_END_OOM:
                return strdup("Killed by the kernel's OOM killer: the run exceeded its memoryMax");
        case RUN_END_LOST:
                return strdup(result->error ?: "Process lost");
        default:
                return strdup(result->error ?: "The run could not be launched");
        }
}

/* What a coding CLI reported: the session to resume next, usage, and its final text. */
static int apply_cli_output(Run *run, cJSON *rj, const CliOutput *cli) {
        if (!cli)
                return 0;
        if (free_and_strdup(&run->session_id_after, cli->session_id ?: run->session_id_before) < 0)
                return -ENOMEM;
        char *usage = cli_output_usage_json(cli);
        if (!usage)
                return -ENOMEM;
        free(run->usage_json);
        run->usage_json = usage;
        if (cli->result_text) {
                _cleanup_free_ char *text = strndup(
                        cli->result_text, utf8_complete_prefix(cli->result_text, strnlen(cli->result_text, RUN_RESULT_TEXT_MAX)));
                if (!text)
                        return -ENOMEM;
                cJSON_DeleteItemFromObjectCaseSensitive(rj, "result");
                cJSON_AddStringToObject(rj, "result", text);
        }
        if (cli->model) {
                cJSON_DeleteItemFromObjectCaseSensitive(rj, "model");
                cJSON_AddStringToObject(rj, "model", cli->model);
        }
        cJSON_DeleteItemFromObjectCaseSensitive(rj, "numTurns");
        cJSON_AddNumberToObject(rj, "numTurns", (double) cli->num_turns);
        return 0;
}

int run_apply_result(Run *run, const RunResult *result) {
        Outcome o = outcome_of(result);
        _cleanup_free_ char *error = error_text(result);
        cJSON *rj;
        char now[ISO_TIME_MAX];
        char *text;
        int r;

        r = iso_time_now(now);
        if (r < 0)
                return r;
        run->status = o.status;
        run->exit_code = result->exit_code;
        if (free_and_strdup(&run->signal, result->signal) < 0 || free_and_strdup(&run->error_code, o.error_code) < 0 ||
            free_and_strdup(&run->finished_at, now) < 0 || free_and_strdup(&run->updated_at, now) < 0 ||
            free_and_strdup(&run->stdout_excerpt, result->stdout_excerpt) < 0 ||
            free_and_strdup(&run->stderr_excerpt, result->stderr_excerpt) < 0)
                return -ENOMEM;
        free(run->error);
        run->error = TAKE_PTR(error);
        run->log_bytes = (int64_t) result->log_bytes;
        if (result->log_offset > 0)
                run->log_offset = (int64_t) result->log_offset;
        if (free_and_strdup(&run->log_sha256, result->log_sha256[0] ? result->log_sha256 : NULL) < 0)
                return -ENOMEM;

        /* Stop metadata goes into resultJson next to whatever the adapter put there. */
        rj = run->result_json ? cJSON_Parse(run->result_json) : NULL;
        if (!cJSON_IsObject(rj)) {
                cJSON_Delete(rj);
                rj = cJSON_CreateObject();
        }
        if (!rj)
                return -ENOMEM;
        cJSON_DeleteItemFromObjectCaseSensitive(rj, "stopReason");
        cJSON_DeleteItemFromObjectCaseSensitive(rj, "timeoutFired");
        cJSON_DeleteItemFromObjectCaseSensitive(rj, "leftoverProcessesKilled");
        cJSON_AddStringToObject(rj, "stopReason", o.stop_reason);
        cJSON_AddBoolToObject(rj, "timeoutFired", result->end == RUN_END_TIMEOUT || result->end == RUN_END_IDLE_TIMEOUT);
        cJSON_AddNumberToObject(rj, "leftoverProcessesKilled", result->leftover);
        r = apply_cli_output(run, rj, result->cli);
        if (r < 0) {
                cJSON_Delete(rj);
                return r;
        }
        text = cJSON_PrintUnformatted(rj);
        cJSON_Delete(rj);
        if (!text)
                return -ENOMEM;
        free(run->result_json);
        run->result_json = text;
        return 0;
}

int run_finalize_in_transaction(Store *s, const RunResult *result, Run *ret) {
        _cleanup_(run_donep) Run run = {};
        char msg[256];
        int r;

        r = store_get(s, &run_entity, result->run_id, &run);
        if (r < 0)
                return r;
        if (run_status_is_terminal(run.status))
                return -ESTALE;
        r = run_apply_result(&run, result);
        if (r < 0)
                return r;
        r = store_update(s, &run_entity, &run);
        if (r < 0)
                return r;
        snprintf(msg, sizeof(msg), "run %s%s%s", run_status_to_string(run.status), run.error ? ": " : "", strempty(run.error));
        r = store_run_event_append(s, run.id, "lifecycle", run.status == RUN_SUCCEEDED ? LEVEL_INFO : LEVEL_WARN, msg, NULL);
        if (r < 0)
                return r;
        if (ret) {
                *ret = run;
                run = (Run){};
        }
        return 0;
}

int run_finalize(Store *s, const RunResult *result, Run *ret) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(run_donep) Run run = {};
        int r;

        r = store_begin(s);
        if (r < 0)
                return r;
        tx = s;
        r = run_finalize_in_transaction(s, result, &run);
        if (r < 0)
                return r;
        r = store_commit(s);
        if (r < 0)
                return r;
        tx = NULL;
        if (ret) {
                *ret = run;
                run = (Run){};
        }
        return 0;
}
