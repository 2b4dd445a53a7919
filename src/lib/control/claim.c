/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Claiming queued runs (queued -> running, one guarded transaction) and launching them
 * once the claim has committed (reference §2.3 steps 1-3, §3.7).
 */
#include "control/claim.h"

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
#include "control/budget.h"
#include "control/workspace.h"
#include "supervise/run-workspace.h"
#include "control/agent-session.h"
#include "control/finalize.h"
#include "control/host.h"
#include "control/issue-lock.h"
#include "control/policy.h"
#include "control/wake-context.h"
#include "control/wake-payload.h"
#include "control/wakeup.h"

/* Finalize a run that never reached the supervisor (launch refused or failed). */
static void fail_launch(Control *ctl, const char *run_id, const char *agent_id, const char *error) {
        RunResult result = { .run_id = run_id, .end = RUN_END_LAUNCH_FAILED, .exit_code = INT_NULL, .error = error };

        log_error("Run %s could not be launched: %s", run_id, error);
        finalize_run_finished(ctl->supervisor, &result, ctl);
}

/* An issue's blockers that are not done (reference §1.8: dependency readiness). */
static int unresolved_blockers(Control *ctl, const char *issue_id, int64_t *ret) {
        return store_issue_open_blockers_count(ctl->store, issue_id, ret);
}

/* The issue side of claiming an issue run, inside the claim's transaction: it stays queued
 * while blockers are open or another active run holds the issue; otherwise it holds the
 * lock, and the harness checks the issue out for it when it is the assignee's work
 * (reference §2.3 step 2). Returns 1 to go on, 0 to leave the run queued. */
static int claim_issue(Control *ctl, Run *run, const Agent *agent, const char *now) {
        _cleanup_json_ cJSON *ctx = wake_context_parse(run->context_snapshot);
        _cleanup_(issue_donep) Issue issue = {};
        const char *issue_id = json_string_member(ctx, "issueId"), *reason = json_string_member(ctx, "wakeReason");
        int64_t blockers;
        bool held;
        int r;

        if (!issue_id)
                return 1;
        r = store_get(ctl->store, &issue_entity, issue_id, &issue);
        if (r == -ENOENT)
                return 1;
        if (r < 0)
                return r;
        r = unresolved_blockers(ctl, issue.id, &blockers);
        if (r < 0)
                return r;
        if (blockers > 0)
                return 0;
        r = issue_lock_held_by_other(ctl->store, issue.execution_run_id, run->id, &held);
        if (r < 0)
                return r;
        if (held)
                return 0;

        bool checkout = streq_ptr(issue.assignee_agent_id, agent->id) &&
                (issue.status == ISSUE_TODO || issue.status == ISSUE_BACKLOG || issue.status == ISSUE_BLOCKED ||
                 issue.status == ISSUE_IN_PROGRESS) &&
                reason && !streq(reason, "issue_comment_mentioned") && strncmp(reason, "execution_", 10) != 0;
        if (checkout) {
                IssueStatus previous = issue.status;
                issue.status = ISSUE_IN_PROGRESS;
                if ((!issue.started_at && free_and_strdup(&issue.started_at, now) < 0) ||
                    free_and_strdup(&issue.checkout_run_id, run->id) < 0 ||
                    (previous != ISSUE_IN_PROGRESS && free_and_strdup(&issue.updated_at, now) < 0))
                        return -ENOMEM;
                cJSON *details = cJSON_CreateObject();
                if (details) {
                        cJSON_AddStringToObject(details, "identifier", issue.identifier);
                        cJSON_AddStringToObject(details, "previousStatus", issue_status_to_string(previous));
                        cJSON_AddStringToObject(details, "source", "heartbeat.harness_checkout");
                }
                r = activity_record(ctl->store, issue.company_id, ACTOR_AGENT, agent->id, "issue.checked_out", "issue", issue.id,
                                    agent->id, run->id, details);
                if (r < 0)
                        return r;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(ctx, "paperclipHarnessCheckedOut");
        cJSON_AddBoolToObject(ctx, "paperclipHarnessCheckedOut", checkout);
        cJSON *wake = NULL;
        r = wake_payload_build(ctl->store, ctx, &issue, checkout, &wake);
        if (r < 0)
                return r;
        cJSON_DeleteItemFromObjectCaseSensitive(ctx, "paperclipWake");
        if (wake)
                cJSON_AddItemToObject(ctx, "paperclipWake", wake);
        char *text = cJSON_PrintUnformatted(ctx);
        if (!text)
                return -ENOMEM;
        free(run->context_snapshot);
        run->context_snapshot = text;
        r = issue_lock_set(ctl->store, &issue, run->id, agent->id, now);
        return r < 0 ? r : 1;
}

/* Move one queued run to running, in the caller's transaction, which listed it: what it
 * read is what the write lock keeps. *running is the agent's running runs in that
 * transaction: -1 until counted, then kept up to date here. */
static int claim(Control *ctl, Run *run, Agent *agent, int64_t *running, bool *ret_claimed) {
        char now[ISO_TIME_MAX];
        int r;

        *ret_claimed = false;
        r = iso_time_now(now);
        if (r < 0)
                return r;
        if (run->status != RUN_QUEUED)
                return 0;
        /* Counted again under the write lock, once: another host may have claimed a run of
         * the agent since its free slots were counted. */
        if (*running < 0) {
                r = store_runs_running_count(ctl->store, agent->id, running);
                if (r < 0)
                        return r;
        }
        if (*running >= policy_heartbeat(agent).max_concurrent)
                return 0;
        r = claim_issue(ctl, run, agent, now);
        if (r <= 0)
                return r; /* stays queued (blocked, or another run holds the issue) */
        run_set_status(run, RUN_RUNNING);
        run->session_id_before = mfree(run->session_id_before);
        r = agent_session_resume_id(ctl->store, agent, run->context_snapshot, &run->session_id_before);
        if (r < 0)
                return r;
        /* This host claims it, and alone supervises it from here on. */
        if ((!run->started_at && free_and_strdup(&run->started_at, now) < 0) || free_and_strdup(&run->updated_at, now) < 0 ||
            free_and_strdup(&run->host_id, host_self_id(ctl)) < 0)
                return -ENOMEM;
        static const char *const run_columns[] = { "status",           "session_id_before", "started_at", "updated_at",
                                                   "context_snapshot", "host_id",           NULL };
        static const char *const agent_columns[] = { "status", "updated_at", NULL };
        r = store_update_columns(ctl->store, &run_entity, run, run_columns);
        if (r < 0)
                return r;
        if (agent->status != AGENT_RUNNING) {
                agent_set_status(agent, AGENT_RUNNING);
                if (free_and_strdup(&agent->updated_at, now) < 0)
                        return -ENOMEM;
                r = store_update_columns(ctl->store, &agent_entity, agent, agent_columns);
                if (r < 0)
                        return r;
        }
        (*running)++;
        *ret_claimed = true;
        return 0;
}

/* Claim what can start of an agent's queued runs, within its free slots: all in one
 * transaction, its own or the caller's when in_tx; a failure claims none. The claimed runs
 * are moved to *ret (n of them), to be launched once their transaction has committed. */
int claim_startable(Control *ctl, Agent *agent, bool in_tx, Run **ret, size_t *ret_n) {
        Run *claimed = NULL;
        size_t n_claimed = 0;
        int64_t running;
        Run *items;
        size_t n;
        int r;

        *ret = NULL;
        *ret_n = 0;
        /* Not here: another of its hosts claims it. */
        if (!policy_may_run_on(agent, host_self_id(ctl)))
                return 0;
        /* Whether there is anything at all, first: most agents asked for have nothing left
         * to claim (another host claimed it, or they were asked for at a run's end). */
        if (!in_tx) {
                int64_t queued;
                r = store_runs_queued_count(ctl->store, agent->id, &queued);
                if (r < 0 || queued == 0)
                        return r;
        }
        r = store_runs_running_count(ctl->store, agent->id, &running);
        if (r < 0)
                return r;
        int slots = policy_heartbeat(agent).max_concurrent - (int) running;
        /* Within what this host may still start: none while it drains, max-runs. */
        int64_t host_slots;
        r = host_free_slots(ctl, &host_slots);
        if (r < 0)
                return r;
        slots = (int) MIN((int64_t) slots, host_slots);
        if (slots <= 0)
                return 0;
        /* A spent budget starts nothing (reference §3.2 step 6); its pause cancels the rest. */
        BudgetBlock block;
        r = budget_blocked(ctl, agent, &block);
        if (r != 0)
                return r < 0 ? r : 0;
        /* All of them in one transaction: on PostgreSQL each transaction takes the write lock
         * of all hosts, a round trip or more, and the claims of a busy agent come in tens. */
        _cleanup_(store_rollbackp) Store *tx = NULL;
        if (!in_tx) {
                r = store_begin(ctl->store);
                if (r < 0)
                        return r;
                tx = ctl->store;
        }
        /* In claim order (reference §3.7), read under the write lock: a run that stays queued
         * makes room for the next. */
        r = store_runs_queued_in_claim_order(ctl->store, agent->id, &items, &n);
        if (r < 0)
                return log_error_errno(r, "Failed to list queued runs of agent %s: %m", agent->id);
        if (n > 0) {
                claimed = calloc(MIN(n, (size_t) slots), sizeof(Run));
                if (!claimed) {
                        entity_array_free(&run_entity, items, n);
                        return -ENOMEM;
                }
        }
        int64_t running_now = -1;
        for (size_t i = 0; i < n && slots > 0; i++) {
                Run *run = &items[i];
                bool ok;

                r = claim(ctl, run, agent, &running_now, &ok);
                if (r < 0) {
                        /* The transaction is rolled back: nothing was claimed. */
                        log_error_errno(r, "Failed to claim run %s: %m", strna(run->id));
                        entity_array_free(&run_entity, claimed, n_claimed);
                        entity_array_free(&run_entity, items, n);
                        return r;
                }
                if (!ok)
                        continue;
                slots--;
                claimed[n_claimed++] = *run;
                *run = (Run){}; /* moved */
        }
        entity_array_free(&run_entity, items, n);
        /* Their wakeups claimed with them, in one statement for all. */
        if (n_claimed > 0) {
                char now[ISO_TIME_MAX];
                r = iso_time_now(now);
                if (r >= 0)
                        r = store_wakeups_claim_running(ctl->store, agent->id, now);
                if (r < 0) {
                        entity_array_free(&run_entity, claimed, n_claimed);
                        return r;
                }
        }
        if (tx) {
                r = store_commit(ctl->store);
                if (r < 0) {
                        entity_array_free(&run_entity, claimed, n_claimed);
                        return r;
                }
                tx = NULL;
        }
        *ret = claimed;
        *ret_n = n_claimed;
        return 0;
}

/* One claimed run: its command line and environment, its sandbox, its shim. */
static int launch_one(Control *ctl, const Agent *agent, const Run *run, char **ret_error) {
        _cleanup_(adapter_launch_done) AdapterLaunch launch = {};
        _cleanup_(sandbox_launch_done) SandboxLaunch sandbox = {};
        _cleanup_(workspace_launch_done) WorkspaceLaunch ws = {};
        _cleanup_strv_free_ char **secrets = NULL;
        _cleanup_free_ char *home = sandbox_home_path(ctl->sandbox, agent->id), *run_dir = NULL, *context = NULL, *ws_file = NULL;
        RunFile files[SANDBOX_RUN_FILES_MAX + 1];
        Run with_workspace;
        int r;

        if (!home)
                return -ENOMEM;
        r = store_agent_secrets(ctl->store, agent->id, &secrets);
        if (r < 0)
                return r;
        /* Its git workspace, by its policy: the context names it, and the adapter runs the
         * agent there (corrald(8), WORKSPACES). */
        r = workspace_for_run(ctl, agent, run, &ws, ret_error);
        if (r < 0)
                return r;
        if (ws.on) {
                context = workspace_context(run->context_snapshot, &ws);
                if (!context)
                        return -ENOMEM;
                with_workspace = *run;
                with_workspace.context_snapshot = context;
                run = &with_workspace;
        }
        r = adapter_build_launch(agent, run, ctl->agent_socket_path, home, secrets, &launch, ret_error);
        if (r < 0)
                return r;
        run_dir = supervisor_run_dir(ctl->supervisor, run->id);
        if (!run_dir)
                return -ENOMEM;
        /* A workspace borrows its repository's objects: the repository is seen, read-only. */
        const char *const read_only[] = { ws.on ? ws.repo : NULL, NULL };
        r = sandbox_prepare(ctl->sandbox, ctl->store, agent, run_dir, launch.spec.cwd, read_only, &sandbox, ret_error);
        if (r < 0)
                return r;
        if (sandbox.warning) {
                log_warning("Run %s of agent %s: %s.", run->id, agent->id, sandbox.warning);
                (void) store_run_event_append(ctl->store, run->id, "lifecycle", LEVEL_WARN, sandbox.warning, NULL);
        }
        if (sandbox.n_ip_allow > 0) {
                /* Only systemd's IPAddressAllow= enforces an address allowlist here. */
                if (ctl->placement->kind != PLACEMENT_SCOPE)
                        return set_error(ret_error, -EOPNOTSUPP,
                                         "adapterConfig.sandbox.network.allow is enforced by the scope backend only "
                                         "(systemd's IPAddressAllow=), and this corrald runs placement=%s",
                                         placement_kind_to_string(ctl->placement->kind));
                memcpy(launch.spec.limits.ip_allow, sandbox.ip_allow, sizeof(sandbox.ip_allow));
                launch.spec.limits.n_ip_allow = sandbox.n_ip_allow;
        }
        launch.spec.log_bytes_max = (uint64_t) ctl->config->quota_log_mib << 20;
        launch.spec.limits.default_tasks_max = ctl->config->default_tasks_max;
        launch.spec.limits.default_memory_max = (uint64_t) ctl->config->default_memory_max_mib << 20;
        launch.spec.sandboxed = sandbox.confined;
        memcpy(files, sandbox.files, sandbox.n_files * sizeof(RunFile));
        launch.spec.files = files;
        launch.spec.n_files = sandbox.n_files;
        if (ws.on) {
                /* The shim makes it before the agent starts; the agent's uid owns it. */
                ws_file = workspace_file(&ws, sandbox.confined ? (int64_t) sandbox.uid : -1,
                                         sandbox.confined ? (int64_t) sandbox.gid : -1);
                if (!ws_file)
                        return -ENOMEM;
                files[launch.spec.n_files++] = (RunFile){ run_workspace_file_name, ws_file, strlen(ws_file), 0600 };
        }
        r = supervisor_launch(ctl->supervisor, &launch.spec);
        if (r < 0)
                return r;
        /* Its spend is followed while it streams when a cap or a budget limits it. */
        r = budget_watch(ctl, agent, run);
        if (r < 0)
                log_warning_errno(r, "Run %s: cannot follow what it spends while it runs, its end counts it: %m", run->id);
        return 0;
}

void claim_launch_one(Control *ctl, const Agent *agent, const Run *run) {
        _cleanup_free_ char *error = NULL;
        int r;

        r = launch_one(ctl, agent, run, &error);
        if (r < 0)
                fail_launch(ctl, run->id, agent->id, error ?: strerror(-r));
}

void claim_launch(Control *ctl, const Agent *agent, Run *claimed, size_t n) {
        for (size_t i = 0; i < n; i++)
                claim_launch_one(ctl, agent, &claimed[i]);
        entity_array_free(&run_entity, claimed, n);
}

int claim_agent(Control *ctl, const char *agent_id, Agent *agent, Run **ret, size_t *ret_n) {
        int r;

        *ret = NULL;
        *ret_n = 0;
        r = store_get(ctl->store, &agent_entity, agent_id, agent);
        if (r < 0 || !agent_status_is_invokable(agent->status))
                return 0;
        r = claim_startable(ctl, agent, false, ret, ret_n);
        if (r == -EAGAIN)
                log_debug("Queued runs of agent %s: the database is busy, claimed again shortly.", agent->id);
        else if (r < 0)
                log_error_errno(r, "Failed to start queued runs of agent %s: %m", agent->id);
        return r;
}
