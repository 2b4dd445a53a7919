/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * How a run ends: its result becomes its terminal status (reference §2.3 step 7, §6.1),
 * and in the same transaction its wakeup, its issue's lock and deferred wakes, its agent
 * and a retry of a lost run follow; cancelling a run ends it the same way.
 */
#include "control/finalize.h"

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
#include "control/activity.h"
#include "store/issues.h"
#include "control/adapter.h"
#include "control/agent-session.h"
#include "control/claim.h"
#include "control/cli-output.h"
#include "control/issue-lock.h"
#include "control/run-recovery.h"
#include "control/wake-context.h"
#include "control/wakeup.h"

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

int finalize_apply_result(Run *run, const RunResult *result) {
        Outcome o = outcome_of(result);
        _cleanup_free_ char *error = error_text(result);
        cJSON *rj;
        char now[ISO_TIME_MAX];
        char *text;
        int r;

        r = iso_time_now(now);
        if (r < 0)
                return r;
        run_set_status(run, o.status);
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

int finalize_run_in_transaction(Store *s, const RunResult *result, Run *ret) {
        _cleanup_(run_donep) Run run = {};
        char msg[256];
        int r;

        r = store_get(s, &run_entity, result->run_id, &run);
        if (r < 0)
                return r;
        if (run_status_is_terminal(run.status))
                return -ESTALE;
        r = finalize_apply_result(&run, result);
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

int finalize_run(Store *s, const RunResult *result, Run *ret) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(run_donep) Run run = {};
        int r;

        r = store_begin(s);
        if (r < 0)
                return r;
        tx = s;
        r = finalize_run_in_transaction(s, result, &run);
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

/* Agent status after a run of it ended (reference §2.4). */
static int finalize_agent(Control *ctl, const Run *run, const char *now) {
        _cleanup_(agent_donep) Agent agent = {};
        _cleanup_(runtime_state_donep) AgentRuntimeState rs = {};
        int64_t running;
        int r;

        r = store_get(ctl->store, &agent_entity, run->agent_id, &agent);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = store_runs_running_count(ctl->store, agent.id, &running);
        if (r < 0)
                return r;
        if (agent.status != AGENT_PAUSED && agent.status != AGENT_TERMINATED) {
                if (!agent.last_heartbeat_at)
                        telemetry_first_heartbeat(&ctl->telemetry, &agent);
                if (running > 0)
                        agent_set_status(&agent, AGENT_RUNNING);
                else
                        agent_set_status(&agent,
                                         run->status == RUN_SUCCEEDED || run->status == RUN_CANCELLED ? AGENT_IDLE : AGENT_ERROR);
                if (free_and_strdup(&agent.last_heartbeat_at, now) < 0 || free_and_strdup(&agent.updated_at, now) < 0)
                        return -ENOMEM;
                r = store_update(ctl->store, &agent_entity, &agent);
                if (r < 0)
                        return r;
        }

        /* Runtime state: created on first use, then overwritten with the latest run. */
        r = store_get(ctl->store, &runtime_state_entity, agent.id, &rs);
        bool is_new = r == -ENOENT;
        if (r < 0 && !is_new)
                return r;
        if (is_new) {
                r = entity_init(&runtime_state_entity, &rs);
                if (r < 0)
                        return r;
                if (free_and_strdup(&rs.agent_id, agent.id) < 0 || free_and_strdup(&rs.company_id, agent.company_id) < 0 ||
                    free_and_strdup(&rs.created_at, now) < 0)
                        return -ENOMEM;
        }
        rs.adapter_type = agent.adapter_type;
        rs.last_run_status = run->status;
        r = agent_session_record(ctl->store, &agent, run, &rs, now);
        if (r < 0)
                return r;
        if (free_and_strdup(&rs.last_run_id, run->id) < 0 || free_and_strdup(&rs.last_error, run->error) < 0 ||
            free_and_strdup(&rs.updated_at, now) < 0)
                return -ENOMEM;
        return is_new ? store_insert(ctl->store, &runtime_state_entity, &rs)
                      : store_update(ctl->store, &runtime_state_entity, &rs);
}

/* What a coding CLI printed (design §6), read back from its log: 1 when the run's agent is
 * one, 0 otherwise. Read before the transaction: the log may be large. */
static int read_cli_output(Control *ctl, const char *run_id, CliOutput *ret) {
        _cleanup_(run_donep) Run run = {};
        _cleanup_(agent_donep) Agent agent = {};
        int r;

        if (store_get(ctl->store, &run_entity, run_id, &run) < 0 || !run.log_path ||
            store_get(ctl->store, &agent_entity, run.agent_id, &agent) < 0 || !adapter_ops(agent.adapter_type)->cli)
                return 0;
        r = cli_output_parse_log(run.log_path, agent.adapter_type, ret);
        if (r < 0) {
                log_warning_errno(r, "Failed to read the output of run %s, finalizing it without: %m", run_id);
                cli_output_done(ret);
                return 0;
        }
        return 1;
}

/* Lines of a coding CLI's stdout that were not JSON were skipped: say so on the run. */
static int warn_malformed(Control *ctl, const char *run_id, const CliOutput *cli) {
        _cleanup_free_ char *msg = NULL;

        if (cli->malformed == 0)
                return 0;
        msg = strprintf("%u line(s) of %s output were not JSON and were skipped (the first began: %s)", cli->malformed,
                        adapter_type_to_string(cli->type), strempty(cli->first_malformed));
        if (!msg)
                return -ENOMEM;
        log_warning("Run %s: %s", run_id, msg);
        return store_run_event_append(ctl->store, run_id, "adapter.output", LEVEL_WARN, msg, NULL);
}

/* A run that succeeded without commenting on its issue leaves its final text there, as
 * its agent (reference §2.3 step 9). */
static int post_result_comment(Control *ctl, const Run *run, const char *now) {
        _cleanup_json_ cJSON *ctx = wake_context_parse(run->context_snapshot), *rj = wake_context_parse(run->result_json);
        _cleanup_(comment_donep) IssueComment c = {};
        _cleanup_(issue_donep) Issue issue = {};
        const char *issue_id = json_string_member(ctx, "issueId"), *text = json_string_member(rj, "result");
        int64_t own;
        int r;

        if (run->status != RUN_SUCCEEDED || !issue_id || isempty(text))
                return 0;
        r = store_comments_by_run_count(ctl->store, run->id, &own);
        if (r < 0 || own > 0)
                return r;
        r = store_get(ctl->store, &issue_entity, issue_id, &issue);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (record_stamp(&c.id, &c.created_at, &c.updated_at, now) < 0 || free_and_strdup(&c.company_id, issue.company_id) < 0 ||
            free_and_strdup(&c.issue_id, issue.id) < 0 || free_and_strdup(&c.author_agent_id, run->agent_id) < 0 ||
            free_and_strdup(&c.created_by_run_id, run->id) < 0 || free_and_strdup(&c.body, text) < 0)
                return -ENOMEM;
        r = store_insert(ctl->store, &comment_entity, &c);
        if (r < 0)
                return r;
        cJSON *d = cJSON_CreateObject();
        if (d) {
                cJSON_AddStringToObject(d, "commentId", c.id);
                cJSON_AddStringToObject(d, "identifier", issue.identifier);
                cJSON_AddStringToObject(d, "source", "heartbeat.run_result");
        }
        return activity_record(ctl->store, issue.company_id, ACTOR_AGENT, run->agent_id, "issue.comment_added", "issue", issue.id,
                               run->agent_id, run->id, d);
}

void finalize_run_finished(Supervisor *s, const RunResult *result, void *userdata) {
        Control *ctl = userdata;
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(run_donep) Run run = {};
        _cleanup_(cli_output_done) CliOutput cli = {};
        RunResult with_cli;
        char now[ISO_TIME_MAX];
        WakeupStatus ws;
        int r;

        (void) iso_time_now(now);
        if (read_cli_output(ctl, result->run_id, &cli) > 0) {
                with_cli = *result;
                with_cli.cli = &cli;
                result = &with_cli;
        }
        /* The run's end, its wakeup, the issue's lock and the agent change in one transaction. */
        r = store_begin(ctl->store);
        if (r < 0) {
                log_error_errno(r, "Failed to finalize run %s: %m", result->run_id);
                return;
        }
        tx = ctl->store;
        r = finalize_run_in_transaction(ctl->store, result, &run);
        if (r == -ESTALE)
                return; /* already terminal: someone else finalized it */
        if (r < 0) {
                log_error_errno(r, "Failed to finalize run %s: %m", result->run_id);
                return;
        }
        r = warn_malformed(ctl, run.id, &cli);
        if (r >= 0)
                r = post_result_comment(ctl, &run, now);
        if (r < 0) {
                log_error_errno(r, "Failed to finalize run %s: %m", result->run_id);
                return;
        }
        ws = run.status == RUN_SUCCEEDED ? WAKEUP_COMPLETED : run.status == RUN_CANCELLED ? WAKEUP_CANCELLED : WAKEUP_FAILED;

        _cleanup_free_ char *retry_id = NULL;
        r = wakeup_set_status(ctl, run.wakeup_request_id, ws, run.error, now);
        if (r >= 0 && result->end == RUN_END_LOST && run.process_loss_retry_count < ctl->config->process_loss_retries) {
                r = run_recovery_enqueue_retry(ctl, &run, &retry_id);
                if (r >= 0) {
                        /* The lost run's error says a retry follows. */
                        char *e = strprintf("%s; retrying once", strempty(run.error));
                        if (!e)
                                r = -ENOMEM;
                        else {
                                free(run.error);
                                run.error = e;
                                r = store_update(ctl->store, &run_entity, &run);
                        }
                }
        }
        _cleanup_strv_free_ char **promoted = NULL;
        if (r >= 0 && !retry_id) {
                _cleanup_(issue_donep) Issue issue = {};
                bool released;

                r = issue_lock_release(ctl->store, &run, now, &issue, &released);
                if (r >= 0 && released)
                        r = wakeup_promote_deferred(ctl, &issue, now, &promoted);
        }
        if (r >= 0)
                r = finalize_agent(ctl, &run, now);
        if (r >= 0)
                r = store_commit(ctl->store);
        if (r < 0) {
                log_error_errno(r, "Failed to record the end of run %s for its agent: %m", run.id);
                return;
        }
        tx = NULL;
        claim_start_next(ctl, run.agent_id);
        STRV_FOREACH(a, promoted)
        claim_start_next(ctl, *a);
}

static int cancel_queued(Control *ctl, const char *run_id, const char *agent_id) {
        RunResult result = { .run_id = run_id, .end = RUN_END_CANCELLED, .exit_code = INT_NULL };

        finalize_run_finished(ctl->supervisor, &result, ctl);
        return 0;
}

int finalize_cancel_run(Control *ctl, const char *run_id) {
        _cleanup_(run_donep) Run run = {};
        int r;

        r = store_get(ctl->store, &run_entity, run_id, &run);
        if (r < 0)
                return r;
        if (run_status_is_terminal(run.status))
                return -ESTALE;
        if (run.status == RUN_QUEUED)
                return cancel_queued(ctl, run.id, run.agent_id);
        r = supervisor_stop(ctl->supervisor, run.id, RUN_END_CANCELLED);
        return r == -ENOENT ? -EREMCHG : r;
}

int finalize_cancel_agent_runs(Control *ctl, const char *agent_id) {
        Run *items;
        size_t n;
        int r;

        r = store_runs_active_of_agent(ctl->store, agent_id, &items, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                Run *run = &items[i];
                r = finalize_cancel_run(ctl, run->id);
                if (r < 0 && r != -ESTALE)
                        log_warning_errno(r, "Failed to cancel run %s, ignoring: %m", run->id);
        }
        entity_array_free(&run_entity, items, n);
        return 0;
}
