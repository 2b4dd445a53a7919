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
#include "basic/utf8.h"
#include "basic/util.h"
#include "store/jsonmap.h"
#include "store/queries.h"
#include "control/activity.h"
#include "store/issues.h"
#include "control/adapter.h"
#include "control/agent-session.h"
#include "control/budget.h"
#include "control/workspace.h"
#include "control/claim-pump.h"
#include "control/cli-output.h"
#include "control/host.h"
#include "control/issue-lock.h"
#include "control/run-recovery.h"
#include "control/wake-context.h"
#include "control/wakeup.h"
#include "supervise/supervisor.h"

typedef struct Outcome {
        RunStatus status;
        const char *error_code;
        const char *stop_reason;
} Outcome;

static Outcome outcome_of(const RunResult *result) {
        if (result->record_error)
                return (Outcome){ RUN_FAILED, "finalize_failed", "finalize_failed" };
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
        case RUN_END_LOG_LIMIT:
                return (Outcome){ RUN_FAILED, "log_limit", "log_limit" };
        case RUN_END_BUDGET:
                return (Outcome){ RUN_FAILED, "budget_exceeded", "budget_exceeded" };
        case RUN_END_BUDGET_PAUSED:
                return (Outcome){ RUN_CANCELLED, "cancelled", "budget_paused" };
        case RUN_END_LAUNCH_FAILED:
        default:
                return (Outcome){ RUN_FAILED, "launch_failed", "launch_failed" };
        }
}

/* A run that is itself the retry of a stale session: not retried again. */
static bool is_stale_session_retry(const Run *run) {
        _cleanup_json_ cJSON *ctx = cJSON_Parse(run->context_snapshot ?: "{}");
        return streq_ptr(json_string_member(ctx, "retryReason"), "session_not_found");
}

/* The last non-empty line of text, at most CLI_STDERR_LINE_MAX bytes of it; NULL for none. */
static char *last_line(const char *text) {
        const char *end, *start;

        if (!text)
                return NULL;
        end = text + strlen(text);
        while (end > text && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
                end--;
        start = end;
        while (start > text && start[-1] != '\n')
                start--;
        if (start == end)
                return NULL;
        return strndup(start, utf8_complete_prefix(start, MIN((size_t) (end - start), (size_t) CLI_STDERR_LINE_MAX)));
}

static char *error_text(const RunResult *result) {
        if (result->record_error) {
                if (result->end == RUN_END_EXITED && result->exit_code != INT_NULL)
                        return strprintf("Recording the end of the run failed (%s); it is recorded without its output. "
                                         "Its agent exited with code %" PRIi64,
                                         result->record_error, result->exit_code);
                return strprintf("Recording the end of the run failed (%s); it is recorded without its output",
                                 result->record_error);
        }
        switch (result->end) {
        case RUN_END_EXITED: {
                if (result->cli && result->cli->error_message && (result->cli->is_error || result->exit_code != 0))
                        return strdup(result->cli->error_message);
                if (result->exit_code == 0 && !result->signal)
                        return NULL;
                if (result->error)
                        return strdup(result->error);
                if (result->signal)
                        return strprintf("Process was killed by %s", result->signal);
                /* An exit code says little: the program's own last word on stderr says why. */
                _cleanup_free_ char *why = result->cli && result->cli->stderr_last ? strdup(result->cli->stderr_last)
                                                                                   : last_line(result->stderr_excerpt);
                if (why && *why)
                        return strprintf("Process exited with code %" PRIi64 ": %s", result->exit_code, why);
                return strprintf("Process exited with code %" PRIi64, result->exit_code);
        }
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
        case RUN_END_LOG_LIMIT:
                return strdup("Stopped: its output passed the log quota of a run (quota-log-mib)");
        case RUN_END_BUDGET:
                return strdup(result->error ?: "Stopped: the run reached a limit of what it may spend");
        case RUN_END_BUDGET_PAUSED:
                return strdup("Cancelled due to budget pause");
        default:
                return strdup(result->error ?: "The run could not be launched");
        }
}

/* What a coding CLI reported: the session to resume next, usage, and its final text. */
static int apply_cli_output(Run *run, cJSON *rj, const CliOutput *cli) {
        if (!cli)
                return 0;
        /* A session the CLI could not resume is not the task's any more. */
        if (free_and_strdup(&run->session_id_after, cli->stale_session ? NULL : cli->session_id ?: run->session_id_before) < 0)
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
        cJSON_DeleteItemFromObjectCaseSensitive(rj, "logTruncatedBytes");
        cJSON_DeleteItemFromObjectCaseSensitive(rj, "sessionRetried");
        cJSON_AddStringToObject(rj, "stopReason", o.stop_reason);
        if (result->session_retried)
                cJSON_AddBoolToObject(rj, "sessionRetried", true);
        cJSON_AddBoolToObject(rj, "timeoutFired", result->end == RUN_END_TIMEOUT || result->end == RUN_END_IDLE_TIMEOUT);
        cJSON_AddNumberToObject(rj, "leftoverProcessesKilled", result->leftover);
        if (result->log_dropped_bytes > 0)
                cJSON_AddNumberToObject(rj, "logTruncatedBytes", (double) result->log_dropped_bytes);
        cJSON_DeleteItemFromObjectCaseSensitive(rj, "budget");
        cJSON *budget = result->budget_json ? cJSON_Parse(result->budget_json) : NULL;
        if (budget)
                cJSON_AddItemToObject(rj, "budget", budget);
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
        if (result->log_dropped_bytes > 0) {
                snprintf(msg, sizeof(msg),
                         "log_truncated: %" PRIu64 " byte(s) of output were lost, the state directory's file system was full",
                         result->log_dropped_bytes);
                r = store_run_event_append(s, run.id, "log_truncated", LEVEL_WARN, msg, NULL);
                if (r < 0)
                        return r;
        }
        if (result->session_retried) {
                snprintf(msg, sizeof(msg),
                         "session_not_found: the CLI could not resume session %.64s; it ran again, in a fresh one",
                         strna(run.session_id_before));
                r = store_run_event_append(s, run.id, "session_not_found", LEVEL_WARN, msg, NULL);
                if (r < 0)
                        return r;
        }
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
        /* A CLI that prints no model (codex, opencode) runs the one it was told to; one
         * named "provider/model" (opencode's) says whose it is. */
        if (!ret->model) {
                _cleanup_json_ cJSON *config = cJSON_Parse(agent.adapter_config ?: "{}");
                const char *model = json_string_member(config, "model"), *slash = model ? strchr(model, '/') : NULL;
                if (slash && slash > model && slash[1] && !ret->provider && !adapter_ops(agent.adapter_type)->provider) {
                        ret->provider = strndup(model, (size_t) (slash - model));
                        if (!ret->provider)
                                return -ENOMEM;
                        model = slash + 1;
                }
                if (cli_output_set(&ret->model, model) < 0)
                        return -ENOMEM;
        }
        if (ret->cumulative) {
                int64_t input, cached, output;
                r = agent_session_prior_totals(ctl->store, &agent, &run, ret->session_id, &input, &cached, &output);
                if (r < 0)
                        log_warning_errno(r, "Run %s: cannot read what its session used before, counting all of it: %m", run_id);
                cli_output_session_delta(ret, r < 0 ? 0 : input, r < 0 ? 0 : cached, r < 0 ? 0 : output);
        }
        AdapterBudget ab = {};
        (void) adapter_budget(&agent, &ab);
        budget_price(ctl->config, &ab, ret);
        return 1;
}

/* Lines of a coding CLI's stdout that were not JSON were skipped, numbers in it were out of
 * range: say so on the run. */
static int warn_malformed(Control *ctl, const char *run_id, const CliOutput *cli) {
        _cleanup_free_ char *msg = NULL;
        int r;

        if (cli->invalid_numbers > 0) {
                _cleanup_free_ char *m =
                        strprintf("%u number(s) in %s output were out of range and not recorded (the first: %s)",
                                  cli->invalid_numbers, adapter_type_to_string(cli->type), strempty(cli->first_invalid));
                if (!m)
                        return -ENOMEM;
                log_warning("Run %s: %s", run_id, m);
                r = store_run_event_append(ctl->store, run_id, "adapter.output", LEVEL_WARN, m, NULL);
                if (r < 0)
                        return r;
        }
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

/* The whole end of a run in one transaction: the run, its wakeup, a retry of a lost run,
 * its issue's lock and the deferred wakes behind it, its agent. Nothing is written on
 * failure; -ESTALE when the run is terminal already. The agents whose next run may start
 * are in *ret_start (the run's own first). */
static int record_end(Control *ctl, const RunResult *result, const CliOutput *cli, char ***ret_start, char ***ret_paused) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(run_donep) Run run = {};
        _cleanup_strv_free_ char **start = NULL, **paused = NULL;
        _cleanup_free_ char *retry_id = NULL;
        char now[ISO_TIME_MAX];
        WakeupStatus ws;
        int r;

        (void) iso_time_now(now);
        r = store_begin(ctl->store);
        if (r < 0)
                return r;
        tx = ctl->store;
        r = finalize_run_in_transaction(ctl->store, result, &run);
        if (r < 0)
                return r;
        if (cli) {
                r = warn_malformed(ctl, run.id, cli);
                if (r < 0)
                        return r;
        }
        r = post_result_comment(ctl, &run, now);
        if (r < 0)
                return r;
        ws = run.status == RUN_SUCCEEDED ? WAKEUP_COMPLETED : run.status == RUN_CANCELLED ? WAKEUP_CANCELLED : WAKEUP_FAILED;
        r = wakeup_set_status(ctl, run.wakeup_request_id, ws, run.error, now);
        if (r < 0)
                return r;
        bool lost = result->end == RUN_END_LOST && run.process_loss_retry_count < ctl->config->process_loss_retries;
        bool stale = streq_ptr(run.error_code, "session_not_found") && !is_stale_session_retry(&run);
        if (lost || stale) {
                r = run_recovery_enqueue_retry(ctl, &run, lost ? RETRY_PROCESS_LOST : RETRY_SESSION_NOT_FOUND, &retry_id);
                if (r < 0)
                        return r;
                /* The failed run's error says a retry follows. */
                char *e = strprintf("%s; retrying once%s", strempty(run.error), stale ? " in a fresh session" : "");
                if (!e)
                        return -ENOMEM;
                free(run.error);
                run.error = e;
                r = store_update(ctl->store, &run_entity, &run);
                if (r < 0)
                        return r;
        }
        if (strv_push(&start, run.agent_id) < 0)
                return -ENOMEM;
        if (!retry_id) {
                _cleanup_(issue_donep) Issue issue = {};
                _cleanup_strv_free_ char **promoted = NULL;
                bool released;

                r = issue_lock_release(ctl->store, &run, now, &issue, &released);
                if (r >= 0 && released)
                        r = wakeup_promote_deferred(ctl, &issue, now, &promoted);
                if (r < 0)
                        return r;
                STRV_FOREACH(a, promoted)
                if (strv_push(&start, *a) < 0)
                        return -ENOMEM;
        }
        r = finalize_agent(ctl, &run, now);
        if (r < 0)
                return r;
        /* What it cost, and the pauses of the budgets it spent, in the same transaction:
         * a crash never counts a run without its end, or an end without its cost. */
        r = budget_record_run(ctl, &run, now, &paused);
        if (r < 0)
                return r;
        r = store_commit(ctl->store);
        if (r < 0)
                return r;
        tx = NULL;
        /* Counted as the process adapter's when no CLI output was read (the process adapter has none). */
        telemetry_run_ended(&ctl->telemetry, &run, cli ? cli->type : ADAPTER_PROCESS);
        *ret_start = TAKE_PTR(start);
        *ret_paused = TAKE_PTR(paused);
        return 0;
}

/* A run's end that could not be recorded yet, kept (with what it points to) to try again. */
typedef struct PendingEnd {
        RunResult result;
        char *run_id, *signal, *stdout_excerpt, *stderr_excerpt, *error, *record_error, *budget_json;
        unsigned attempts;
        uint64_t due_usec;
        struct PendingEnd *next;
} PendingEnd;

static PendingEnd *pending_end_free(PendingEnd *p) {
        if (p) {
                free(p->run_id);
                free(p->signal);
                free(p->stdout_excerpt);
                free(p->stderr_excerpt);
                free(p->error);
                free(p->record_error);
                free(p->budget_json);
                free(p);
        }
        return NULL;
}

static int strdup_ptr(char **dst, const char **field, const char *src) {
        if (!src) {
                *field = NULL;
                return 0;
        }
        *dst = strdup(src);
        if (!*dst)
                return -ENOMEM;
        *field = *dst;
        return 0;
}

static PendingEnd *pending_end_new(const RunResult *result) {
        PendingEnd *p = calloc(1, sizeof(PendingEnd));

        if (!p)
                return NULL;
        p->result = *result;
        p->result.cli = NULL; /* read again from the log at each try */
        if (strdup_ptr(&p->run_id, &p->result.run_id, result->run_id) < 0 ||
            strdup_ptr(&p->signal, &p->result.signal, result->signal) < 0 ||
            strdup_ptr(&p->stdout_excerpt, &p->result.stdout_excerpt, result->stdout_excerpt) < 0 ||
            strdup_ptr(&p->stderr_excerpt, &p->result.stderr_excerpt, result->stderr_excerpt) < 0 ||
            strdup_ptr(&p->error, &p->result.error, result->error) < 0 ||
            strdup_ptr(&p->record_error, &p->result.record_error, result->record_error) < 0 ||
            strdup_ptr(&p->budget_json, &p->result.budget_json, result->budget_json) < 0)
                return pending_end_free(p);
        return p;
}

static int on_pending(sd_event_source *s, uint64_t usec, void *userdata);

/* Arm the timer for the earliest pending end. */
static void pending_arm(Control *ctl) {
        uint64_t due = UINT64_MAX;
        int r;

        for (PendingEnd *p = ctl->pending_ends; p; p = p->next)
                due = MIN(due, p->due_usec);
        if (due == UINT64_MAX) {
                if (ctl->pending_source)
                        (void) sd_event_source_set_enabled(ctl->pending_source, SD_EVENT_OFF);
                return;
        }
        if (!ctl->pending_source) {
                r = sd_event_add_time(ctl->event, &ctl->pending_source, CLOCK_MONOTONIC, due, 0, on_pending, ctl);
                if (r < 0) {
                        log_error_errno(r, "Cannot arm the timer for run ends still to record: %m");
                        return;
                }
                (void) sd_event_source_set_description(ctl->pending_source, "finalize-pending");
        } else
                (void) sd_event_source_set_time(ctl->pending_source, due);
        (void) sd_event_source_set_enabled(ctl->pending_source, SD_EVENT_ONESHOT);
}

static int finalize_end(Control *ctl, const RunResult *result, unsigned attempts);

static void pending_add(Control *ctl, const RunResult *result, unsigned attempts) {
        PendingEnd *p = pending_end_new(result);

        if (!p) {
                log_error("Out of memory keeping the end of run %s: it is left to the next start's recovery.", result->run_id);
                return;
        }
        /* 1 s, doubling up to a minute: a locked database is usually free again soon. */
        p->attempts = attempts;
        p->due_usec = now_mono_usec() + MIN(USEC_PER_SEC << MIN(attempts, 6u), 60 * USEC_PER_SEC);
        p->next = ctl->pending_ends;
        ctl->pending_ends = p;
        pending_arm(ctl);
}

static int on_pending(sd_event_source *s, uint64_t usec, void *userdata) {
        Control *ctl = userdata;
        PendingEnd *due = NULL, **pp = &ctl->pending_ends;
        uint64_t now = now_mono_usec();

        while (*pp) {
                PendingEnd *p = *pp;
                if (p->due_usec <= now) {
                        *pp = p->next;
                        p->next = due;
                        due = p;
                } else
                        pp = &p->next;
        }
        while (due) {
                PendingEnd *p = due;
                due = p->next;
                (void) finalize_end(ctl, &p->result, p->attempts + 1);
                pending_end_free(p);
        }
        pending_arm(ctl);
        return 0;
}

void finalize_pending_free(Control *ctl) {
        while (ctl->pending_ends) {
                PendingEnd *p = ctl->pending_ends;
                ctl->pending_ends = p->next;
                log_warning("The end of run %s was never recorded: the next start's recovery finalizes it from its status file.",
                            p->run_id);
                pending_end_free(p);
        }
        ctl->pending_source = sd_event_source_disable_unref(ctl->pending_source);
}

/* Whether r says the database cannot take a write now (locked, full, read-only, failing),
 * which another try may get past, rather than that this end cannot be written at all. */
static bool store_unwritable(int r) {
        return r == -EAGAIN || r == -ENOSPC || r == -EACCES || r == -EIO || r == -EOWNERDEAD;
}

/* Record a run's end, whatever happens: in full; if that fails for any reason but a database
 * that cannot take a write now, without what its agent printed (failed, finalize_failed, with the reason), so
 * that a value nobody foresaw cannot keep the run running, its agent busy and its wakes
 * queued; and what cannot be written now (store_unwritable()) again later, from memory,
 * until it can be. */
static int finalize_end(Control *ctl, const RunResult *given, unsigned attempts) {
        _cleanup_(cli_output_done) CliOutput cli = {};
        _cleanup_strv_free_ char **start = NULL, **paused = NULL;
        _cleanup_free_ char *budget_message = NULL, *budget_json = NULL;
        RunResult stopped, with_cli;
        const RunResult *result = given;
        int r;

        /* A run a limit of its spend stopped says which, and what it spent. */
        budget_run_ended(ctl, given->run_id, &budget_message, &budget_json);
        if (given->end == RUN_END_BUDGET && budget_message) {
                stopped = *given;
                stopped.error = budget_message;
                stopped.budget_json = budget_json;
                result = &stopped;
        }
        if (!result->record_error && read_cli_output(ctl, result->run_id, &cli) > 0) {
                with_cli = *result;
                with_cli.cli = &cli;
                r = record_end(ctl, &with_cli, &cli, &start, &paused);
        } else
                r = record_end(ctl, result, NULL, &start, &paused);
        if (r == -ESTALE)
                return 0; /* terminal already: someone else finalized it */
        if (r < 0 && !store_unwritable(r) && !result->record_error) {
                RunResult bare = *result;

                log_error_errno(r, "Failed to record the end of run %s, recording it without its output: %m", result->run_id);
                bare.cli = NULL;
                bare.stdout_excerpt = bare.stderr_excerpt = NULL;
                bare.record_error = strerror(-r);
                r = record_end(ctl, &bare, NULL, &start, &paused);
                if (r == -ESTALE)
                        return 0;
                if (r < 0) {
                        log_error_errno(r, "Failed to record the end of run %s at all, trying again later: %m", result->run_id);
                        pending_add(ctl, &bare, attempts);
                        return r;
                }
        } else if (r < 0) {
                log_warning_errno(r, "Cannot record the end of run %s now (%s), trying again later: %m", result->run_id,
                                  r == -EAGAIN ? "the database is locked" : "the database cannot be written");
                if (r == -ENOSPC)
                        log_warning("Run %s: the database's file system is full.", result->run_id);
                pending_add(ctl, result, attempts);
                return r;
        }
        if (attempts > 0)
                log_info("Recorded the end of run %s after %u attempt(s).", result->run_id, attempts + 1);
        budget_cancel_paused(ctl, paused);
        workspace_run_ended(ctl, result->run_id);
        STRV_FOREACH(a, start)
        claim_start_next(ctl, *a);
        return 0;
}

void finalize_run_finished(Supervisor *s, const RunResult *result, void *userdata) {
        (void) finalize_end(userdata, result, 0);
}

int finalize_run_lost_elsewhere(Control *ctl, const Run *run, const char *error) {
        _cleanup_free_ char *stop = NULL, *stopped_error = NULL;
        RunEnd end = RUN_END_LOST;
        int r;

        /* Asked to stop before its host died (a cancel through another host): it ends as
         * asked, and is not retried. */
        r = store_run_stop_requested(ctl->store, run->id, &stop);
        if (r < 0)
                return r;
        if (stop && run_end_from_string(stop) >= 0) {
                end = run_end_from_string(stop);
                stopped_error = strprintf("%s; it had been asked to stop (%s), and is not retried", error, stop);
                if (!stopped_error)
                        return -ENOMEM;
                error = stopped_error;
        }
        /* What the row holds of its log stays: the log itself is on the dead host. */
        RunResult result = {
                .run_id = run->id,
                .end = end,
                .exit_code = INT_NULL,
                .error = error,
                .stdout_excerpt = run->stdout_excerpt,
                .stderr_excerpt = run->stderr_excerpt,
                .log_bytes = run->log_bytes > 0 ? (uint64_t) run->log_bytes : 0,
                .log_offset = run->log_offset > 0 ? (uint64_t) run->log_offset : 0,
        };
        if (run->log_sha256)
                snprintf(result.log_sha256, sizeof(result.log_sha256), "%s", run->log_sha256);
        return finalize_end(ctl, &result, 0);
}

static int cancel_queued(Control *ctl, const char *run_id, RunEnd why) {
        RunResult result = { .run_id = run_id, .end = why, .exit_code = INT_NULL };
        int r = finalize_end(ctl, &result, 0);

        return r == -EAGAIN ? r : 0;
}

static int cancel_run(Control *ctl, const char *run_id, RunEnd why) {
        _cleanup_(run_donep) Run run = {};
        int r;

        r = store_get(ctl->store, &run_entity, run_id, &run);
        if (r < 0)
                return r;
        if (run_status_is_terminal(run.status))
                return -ESTALE;
        if (run.status == RUN_QUEUED)
                return cancel_queued(ctl, run.id, why);
        if (host_shared(ctl) && run.host_id && !streq(run.host_id, host_self_id(ctl))) {
                /* Another host supervises it: that host stops it (told by NOTIFY, or finds it
                 * at its sweep), or, if it is dead, the host that takes its runs over. */
                bool requested;
                r = store_run_request_stop(ctl->store, run.id, run_end_to_string(why), &requested);
                if (r < 0)
                        return r;
                if (requested)
                        log_info("Run %s: asked its host %s to stop it (%s).", run.id, run.host_id, run_end_to_string(why));
                return 0;
        }
        r = supervisor_stop(ctl->supervisor, run.id, why);
        if (r != -ENOENT)
                return r;
        /* Running, yet no process of it is tracked (its end was never recorded, or the
         * database says so against the facts): the board's cancel finishes it here. */
        RunResult result = {
                .run_id = run.id,
                .end = why,
                .exit_code = INT_NULL,
        };
        log_notice("Run %s is running but no process of it is tracked: finishing it as cancelled.", run.id);
        r = finalize_end(ctl, &result, 0);
        return r == -EAGAIN ? r : 0;
}

int finalize_cancel_run(Control *ctl, const char *run_id) {
        return cancel_run(ctl, run_id, RUN_END_CANCELLED);
}

int finalize_stop_requested(Control *ctl, const char *run_id) {
        _cleanup_free_ char *why = NULL;
        int r;

        if (!supervisor_tracks(ctl->supervisor, run_id))
                return 0;
        r = store_run_stop_requested(ctl->store, run_id, &why);
        if (r < 0 || !why)
                return r;
        RunEnd end = run_end_from_string(why);
        if (end < 0)
                return log_warning_errno(-EINVAL, "Run %s: a stop was asked of it for no reason known here (%s).", run_id, why);
        log_info("Run %s: stopping it, as another host was asked (%s).", run_id, why);
        r = supervisor_stop(ctl->supervisor, run_id, end);
        return r == -ENOENT ? 0 : r;
}

void finalize_stop_requests(Control *ctl) {
        Run *runs;
        size_t n;

        if (store_runs_stop_requested(ctl->store, host_self_id(ctl), &runs, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++)
                (void) finalize_stop_requested(ctl, runs[i].id);
        entity_array_free(&run_entity, runs, n);
}

int finalize_cancel_agent_runs(Control *ctl, const char *agent_id, RunEnd why) {
        Run *items;
        size_t n;
        int r;

        r = store_runs_active_of_agent(ctl->store, agent_id, &items, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                Run *run = &items[i];
                r = cancel_run(ctl, run->id, why);
                if (r < 0 && r != -ESTALE)
                        log_warning_errno(r, "Failed to cancel run %s, ignoring: %m", run->id);
        }
        entity_array_free(&run_entity, items, n);
        return 0;
}
