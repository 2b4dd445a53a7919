/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * String tables and Entity descriptors of the control-plane model. The order of
 * each field list is the column order of its table.
 */
#include "store/model.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "basic/log.h"
#include "basic/macro.h"
#include "basic/util.h"
#include "basic/time-util.h"

const char *const company_status_names[] = { "active", "paused", "archived", NULL };
const char *const agent_status_names[] = { "pending_approval", "idle", "running", "error", "paused", "terminated", NULL };
const char *const adapter_type_names[] = { "process",  "claude_local",   "codex_local", "gemini_local",
                                           "pi_local", "opencode_local", NULL };
const char *const pause_reason_names[] = { "manual", "budget", "system", NULL };
const char *const wakeup_source_names[] = { "timer", "assignment", "on_demand", "automation", NULL };
const char *const trigger_detail_names[] = { "manual", "ping", "callback", "system", NULL };
const char *const wakeup_status_names[] = {
        "queued", "deferred_issue_execution", "claimed", "coalesced", "skipped", "completed", "failed", "cancelled", NULL,
};
const char *const workspace_status_names[] = { "active", "removing", "kept", "removed", NULL };
const char *const host_status_names[] = { "live", "draining", "dead", NULL };
const char *const log_read_status_names[] = { "asked", "answered", "missing", NULL };
const char *const actor_type_names[] = { "user", "agent", "system", NULL };
const char *const run_status_names[] = { "queued", "running", "succeeded", "failed", "cancelled", "timed_out", NULL };
const char *const event_stream_names[] = { "system", "stdout", "stderr", NULL };
const char *const event_level_names[] = { "info", "warn", "error", NULL };
const char *const issue_status_names[] = { "backlog", "todo", "in_progress", "in_review", "blocked", "done", "cancelled", NULL };
const char *const issue_priority_names[] = { "critical", "high", "medium", "low", NULL };

#define K FIELD_KEY
#define C FIELD_CREATE
#define P FIELD_PATCH
#define R FIELD_REQUIRED
#define N FIELD_NULLABLE
#define L FIELD_LONG_TEXT

static int strdup_default(char **p, const char *s) {
        *p = strdup(s);
        return *p ? 0 : -ENOMEM;
}

static int company_init(void *obj) {
        Company *c = obj;
        c->status = COMPANY_ACTIVE;
        c->pause_reason = -1;
        return strdup_default(&c->workspace, "{}");
}

static const Field company_fields[] = {
        FIELD_DEF(Company, id, FIELD_TEXT, K),
        FIELD_DEF(Company, name, FIELD_TEXT, C | P | R),
        FIELD_DEF(Company, description, FIELD_TEXT, C | P | N | L),
        FIELD_ENUM_DEF(Company, status, company_status_names, C | P),
        FIELD_DEF(Company, issue_prefix, FIELD_TEXT, C),
        FIELD_DEF(Company, issue_counter, FIELD_INT, 0),
        FIELD_DEF(Company, require_board_approval_for_new_agents, FIELD_BOOL, C | P),
        FIELD_DEF(Company, budget_monthly_cents, FIELD_INT, C | P),
        FIELD_DEF(Company, spent_monthly_cents, FIELD_INT, 0),
        FIELD_ENUM_DEF(Company, pause_reason, pause_reason_names, N),
        FIELD_DEF(Company, paused_at, FIELD_TIME, 0),
        FIELD_DEF(Company, created_at, FIELD_TIME, 0),
        FIELD_DEF(Company, updated_at, FIELD_TIME, 0),
        FIELD_DEF(Company, spent_month, FIELD_TEXT, N),
        FIELD_DEF(Company, workspace, FIELD_JSON, C | P),
};

const Entity company_entity = {
        .table = "companies",
        .name = "company",
        .size = sizeof(Company),
        .fields = company_fields,
        .n_fields = ELEMENTSOF(company_fields),
        .init = company_init,
};

static int agent_init(void *obj) {
        Agent *a = obj;
        int r;

        a->status = AGENT_IDLE;
        a->adapter_type = ADAPTER_PROCESS;
        a->pause_reason = -1;
        a->sandbox_uid = INT_NULL;
        r = strdup_default(&a->role, "general");
        if (r < 0)
                return r;
        r = strdup_default(&a->adapter_config, "{}");
        if (r < 0)
                return r;
        return strdup_default(&a->runtime_config, "{}");
}

static const Field agent_fields[] = {
        FIELD_DEF(Agent, id, FIELD_TEXT, K),
        FIELD_DEF(Agent, company_id, FIELD_TEXT, 0),
        FIELD_DEF(Agent, name, FIELD_TEXT, C | P | R),
        FIELD_DEF(Agent, role, FIELD_TEXT, C | P),
        FIELD_DEF(Agent, title, FIELD_TEXT, C | P | N),
        FIELD_ENUM_DEF(Agent, status, agent_status_names, 0),
        FIELD_ENUM_DEF(Agent, adapter_type, adapter_type_names, C | P),
        FIELD_DEF(Agent, adapter_config, FIELD_JSON, C | P | L),
        FIELD_DEF(Agent, runtime_config, FIELD_JSON, C | P | L),
        FIELD_DEF(Agent, last_heartbeat_at, FIELD_TIME, 0),
        FIELD_ENUM_DEF(Agent, pause_reason, pause_reason_names, N),
        FIELD_DEF(Agent, paused_at, FIELD_TIME, 0),
        FIELD_DEF(Agent, created_at, FIELD_TIME, 0),
        FIELD_DEF(Agent, updated_at, FIELD_TIME, 0),
        FIELD_DEF(Agent, sandbox_uid, FIELD_INT, N),
        FIELD_DEF(Agent, budget_monthly_cents, FIELD_INT, C | P),
        FIELD_DEF(Agent, spent_monthly_cents, FIELD_INT, 0),
        FIELD_DEF(Agent, spent_month, FIELD_TEXT, N),
};

const Entity agent_entity = {
        .table = "agents",
        .name = "agent",
        .size = sizeof(Agent),
        .fields = agent_fields,
        .n_fields = ELEMENTSOF(agent_fields),
        .init = agent_init,
};

static int runtime_state_init(void *obj) {
        AgentRuntimeState *s = obj;
        s->last_run_status = -1;
        return strdup_default(&s->state_json, "{}");
}

static const Field runtime_state_fields[] = {
        FIELD_DEF(AgentRuntimeState, agent_id, FIELD_TEXT, K),
        FIELD_DEF(AgentRuntimeState, company_id, FIELD_TEXT, 0),
        FIELD_ENUM_DEF(AgentRuntimeState, adapter_type, adapter_type_names, 0),
        FIELD_DEF(AgentRuntimeState, session_id, FIELD_TEXT, 0),
        FIELD_DEF(AgentRuntimeState, state_json, FIELD_JSON, 0),
        FIELD_DEF(AgentRuntimeState, last_run_id, FIELD_TEXT, 0),
        FIELD_ENUM_DEF(AgentRuntimeState, last_run_status, run_status_names, N),
        FIELD_DEF(AgentRuntimeState, last_error, FIELD_TEXT, 0),
        FIELD_DEF(AgentRuntimeState, total_input_tokens, FIELD_INT, 0),
        FIELD_DEF(AgentRuntimeState, total_output_tokens, FIELD_INT, 0),
        FIELD_DEF(AgentRuntimeState, total_cached_input_tokens, FIELD_INT, 0),
        FIELD_DEF(AgentRuntimeState, total_cost_cents, FIELD_INT, 0),
        FIELD_DEF(AgentRuntimeState, created_at, FIELD_TIME, 0),
        FIELD_DEF(AgentRuntimeState, updated_at, FIELD_TIME, 0),
};

const Entity runtime_state_entity = {
        .table = "agent_runtime_state",
        .name = "runtime state",
        .size = sizeof(AgentRuntimeState),
        .fields = runtime_state_fields,
        .n_fields = ELEMENTSOF(runtime_state_fields),
        .init = runtime_state_init,
};

static int task_session_init(void *obj) {
        AgentTaskSession *s = obj;
        return strdup_default(&s->session_params_json, "{}");
}

static const Field task_session_fields[] = {
        FIELD_DEF(AgentTaskSession, id, FIELD_TEXT, K),
        FIELD_DEF(AgentTaskSession, company_id, FIELD_TEXT, 0),
        FIELD_DEF(AgentTaskSession, agent_id, FIELD_TEXT, 0),
        FIELD_ENUM_DEF(AgentTaskSession, adapter_type, adapter_type_names, 0),
        FIELD_DEF(AgentTaskSession, task_key, FIELD_TEXT, 0),
        FIELD_DEF(AgentTaskSession, session_params_json, FIELD_JSON, 0),
        FIELD_DEF(AgentTaskSession, session_display_id, FIELD_TEXT, 0),
        FIELD_DEF(AgentTaskSession, last_run_id, FIELD_TEXT, 0),
        FIELD_DEF(AgentTaskSession, last_error, FIELD_TEXT, 0),
        FIELD_DEF(AgentTaskSession, created_at, FIELD_TIME, 0),
        FIELD_DEF(AgentTaskSession, updated_at, FIELD_TIME, 0),
};

const Entity task_session_entity = {
        .table = "agent_task_sessions",
        .name = "task session",
        .size = sizeof(AgentTaskSession),
        .fields = task_session_fields,
        .n_fields = ELEMENTSOF(task_session_fields),
        .init = task_session_init,
};

static int wakeup_init(void *obj) {
        WakeupRequest *w = obj;
        w->source = WAKEUP_SOURCE_ON_DEMAND;
        w->status = WAKEUP_QUEUED;
        return strdup_default(&w->payload, "{}");
}

static const Field wakeup_fields[] = {
        FIELD_DEF(WakeupRequest, id, FIELD_TEXT, K),
        FIELD_DEF(WakeupRequest, company_id, FIELD_TEXT, 0),
        FIELD_DEF(WakeupRequest, agent_id, FIELD_TEXT, 0),
        FIELD_ENUM_DEF(WakeupRequest, source, wakeup_source_names, C),
        FIELD_ENUM_DEF(WakeupRequest, trigger_detail, trigger_detail_names, C | N),
        FIELD_DEF(WakeupRequest, reason, FIELD_TEXT, C | N),
        FIELD_DEF(WakeupRequest, payload, FIELD_JSON, C | L),
        FIELD_ENUM_DEF(WakeupRequest, status, wakeup_status_names, 0),
        FIELD_DEF(WakeupRequest, coalesced_count, FIELD_INT, 0),
        FIELD_ENUM_DEF(WakeupRequest, requested_by_actor_type, actor_type_names, N),
        FIELD_DEF(WakeupRequest, requested_by_actor_id, FIELD_TEXT, 0),
        FIELD_DEF(WakeupRequest, idempotency_key, FIELD_TEXT, C | N),
        FIELD_DEF(WakeupRequest, run_id, FIELD_TEXT, 0),
        FIELD_DEF(WakeupRequest, requested_at, FIELD_TIME, 0),
        FIELD_DEF(WakeupRequest, claimed_at, FIELD_TIME, 0),
        FIELD_DEF(WakeupRequest, finished_at, FIELD_TIME, 0),
        FIELD_DEF(WakeupRequest, error, FIELD_TEXT, 0),
        FIELD_DEF(WakeupRequest, created_at, FIELD_TIME, 0),
        FIELD_DEF(WakeupRequest, updated_at, FIELD_TIME, 0),
};

const Entity wakeup_entity = {
        .table = "agent_wakeup_requests",
        .name = "wakeup request",
        .size = sizeof(WakeupRequest),
        .fields = wakeup_fields,
        .n_fields = ELEMENTSOF(wakeup_fields),
        .init = wakeup_init,
};

static int run_init(void *obj) {
        Run *r = obj;
        int k;

        r->invocation_source = WAKEUP_SOURCE_ON_DEMAND;
        r->status = RUN_QUEUED;
        k = strdup_default(&r->context_snapshot, "{}");
        if (k < 0)
                return k;
        return strdup_default(&r->log_store, "local_file");
}

static const Field run_fields[] = {
        FIELD_DEF(Run, id, FIELD_TEXT, K),
        FIELD_DEF(Run, company_id, FIELD_TEXT, 0),
        FIELD_DEF(Run, agent_id, FIELD_TEXT, 0),
        FIELD_ENUM_DEF(Run, invocation_source, wakeup_source_names, 0),
        FIELD_ENUM_DEF(Run, trigger_detail, trigger_detail_names, N),
        FIELD_ENUM_DEF(Run, status, run_status_names, 0),
        FIELD_DEF(Run, started_at, FIELD_TIME, 0),
        FIELD_DEF(Run, finished_at, FIELD_TIME, 0),
        FIELD_DEF(Run, error, FIELD_TEXT, 0),
        FIELD_DEF(Run, error_code, FIELD_TEXT, 0),
        FIELD_DEF(Run, wakeup_request_id, FIELD_TEXT, 0),
        FIELD_DEF(Run, exit_code, FIELD_INT, N),
        FIELD_DEF(Run, signal, FIELD_TEXT, 0),
        FIELD_DEF(Run, usage_json, FIELD_JSON, 0),
        FIELD_DEF(Run, result_json, FIELD_JSON, 0),
        FIELD_DEF(Run, session_id_before, FIELD_TEXT, 0),
        FIELD_DEF(Run, session_id_after, FIELD_TEXT, 0),
        FIELD_DEF(Run, log_store, FIELD_TEXT, 0),
        FIELD_DEF(Run, log_ref, FIELD_TEXT, 0),
        FIELD_DEF(Run, log_bytes, FIELD_INT, N),
        FIELD_DEF(Run, log_sha256, FIELD_TEXT, 0),
        FIELD_DEF(Run, log_compressed, FIELD_BOOL, 0),
        FIELD_DEF(Run, stdout_excerpt, FIELD_TEXT, 0),
        FIELD_DEF(Run, stderr_excerpt, FIELD_TEXT, 0),
        FIELD_DEF(Run, external_run_id, FIELD_TEXT, 0),
        FIELD_DEF(Run, process_pid, FIELD_INT, N),
        FIELD_DEF(Run, process_group_id, FIELD_INT, N),
        FIELD_DEF(Run, process_started_at, FIELD_TIME, 0),
        FIELD_DEF(Run, retry_of_run_id, FIELD_TEXT, 0),
        FIELD_DEF(Run, process_loss_retry_count, FIELD_INT, 0),
        FIELD_DEF(Run, context_snapshot, FIELD_JSON, 0),
        FIELD_DEF(Run, unit_name, FIELD_TEXT, 0),
        FIELD_DEF(Run, cgroup_path, FIELD_TEXT, 0),
        FIELD_DEF(Run, shim_pid, FIELD_INT, N),
        FIELD_DEF(Run, shim_start_ticks, FIELD_INT, N),
        FIELD_DEF(Run, boot_id, FIELD_TEXT, 0),
        FIELD_DEF(Run, deadline_at, FIELD_TIME, 0),
        FIELD_DEF(Run, log_path, FIELD_TEXT, 0),
        FIELD_DEF(Run, log_offset, FIELD_INT, 0),
        FIELD_DEF(Run, host_id, FIELD_TEXT, N),
        FIELD_DEF(Run, created_at, FIELD_TIME, 0),
        FIELD_DEF(Run, updated_at, FIELD_TIME, 0),
};

const Entity run_entity = {
        .table = "heartbeat_runs",
        .name = "run",
        .size = sizeof(Run),
        .fields = run_fields,
        .n_fields = ELEMENTSOF(run_fields),
        .init = run_init,
};

static int run_event_init(void *obj) {
        RunEvent *e = obj;
        e->id = INT_NULL; /* assigned by the database */
        e->stream = STREAM_SYSTEM;
        e->level = LEVEL_INFO;
        return strdup_default(&e->payload, "{}");
}

static const Field run_event_fields[] = {
        FIELD_DEF(RunEvent, id, FIELD_INT, K),
        FIELD_DEF(RunEvent, company_id, FIELD_TEXT, 0),
        FIELD_DEF(RunEvent, run_id, FIELD_TEXT, 0),
        FIELD_DEF(RunEvent, agent_id, FIELD_TEXT, 0),
        FIELD_DEF(RunEvent, seq, FIELD_INT, 0),
        FIELD_DEF(RunEvent, event_type, FIELD_TEXT, 0),
        FIELD_ENUM_DEF(RunEvent, stream, event_stream_names, 0),
        FIELD_ENUM_DEF(RunEvent, level, event_level_names, 0),
        FIELD_DEF(RunEvent, color, FIELD_TEXT, 0),
        FIELD_DEF(RunEvent, message, FIELD_TEXT, 0),
        FIELD_DEF(RunEvent, payload, FIELD_JSON, 0),
        FIELD_DEF(RunEvent, created_at, FIELD_TIME, 0),
};

const Entity run_event_entity = {
        .table = "heartbeat_run_events",
        .name = "run event",
        .size = sizeof(RunEvent),
        .fields = run_event_fields,
        .n_fields = ELEMENTSOF(run_event_fields),
        .init = run_event_init,
};

static int issue_init(void *obj) {
        Issue *i = obj;
        i->status = ISSUE_BACKLOG;
        i->priority = PRIORITY_MEDIUM;
        return strdup_default(&i->origin_kind, "manual");
}

static const Field issue_fields[] = {
        FIELD_DEF(Issue, id, FIELD_TEXT, K),
        FIELD_DEF(Issue, company_id, FIELD_TEXT, 0),
        FIELD_DEF(Issue, project_id, FIELD_TEXT, C | P | N),
        FIELD_DEF(Issue, parent_id, FIELD_TEXT, C | P | N),
        FIELD_DEF(Issue, title, FIELD_TEXT, C | P | R),
        FIELD_DEF(Issue, description, FIELD_TEXT, C | P | N | L),
        FIELD_ENUM_DEF(Issue, status, issue_status_names, C | P),
        FIELD_ENUM_DEF(Issue, priority, issue_priority_names, C | P),
        FIELD_DEF(Issue, assignee_agent_id, FIELD_TEXT, C | P | N),
        FIELD_DEF(Issue, assignee_user_id, FIELD_TEXT, C | P | N),
        FIELD_DEF(Issue, checkout_run_id, FIELD_TEXT, 0),
        FIELD_DEF(Issue, execution_run_id, FIELD_TEXT, 0),
        FIELD_DEF(Issue, execution_agent_id, FIELD_TEXT, 0),
        FIELD_DEF(Issue, execution_locked_at, FIELD_TIME, 0),
        FIELD_DEF(Issue, issue_number, FIELD_INT, 0),
        FIELD_DEF(Issue, identifier, FIELD_TEXT, 0),
        FIELD_DEF(Issue, execution_state, FIELD_JSON, 0),
        FIELD_DEF(Issue, execution_policy, FIELD_JSON, 0),
        FIELD_DEF(Issue, origin_kind, FIELD_TEXT, 0),
        FIELD_DEF(Issue, origin_id, FIELD_TEXT, 0),
        FIELD_DEF(Issue, started_at, FIELD_TIME, 0),
        FIELD_DEF(Issue, completed_at, FIELD_TIME, 0),
        FIELD_DEF(Issue, cancelled_at, FIELD_TIME, 0),
        FIELD_DEF(Issue, hidden_at, FIELD_TIME, 0),
        FIELD_DEF(Issue, created_at, FIELD_TIME, 0),
        FIELD_DEF(Issue, updated_at, FIELD_TIME, 0),
};

const Entity issue_entity = {
        .table = "issues",
        .name = "issue",
        .size = sizeof(Issue),
        .fields = issue_fields,
        .n_fields = ELEMENTSOF(issue_fields),
        .init = issue_init,
};

static int issue_relation_init(void *obj) {
        IssueRelation *r = obj;
        return strdup_default(&r->type, "blocks");
}

static const Field issue_relation_fields[] = {
        FIELD_DEF(IssueRelation, id, FIELD_TEXT, K),       FIELD_DEF(IssueRelation, company_id, FIELD_TEXT, 0),
        FIELD_DEF(IssueRelation, issue_id, FIELD_TEXT, 0), FIELD_DEF(IssueRelation, related_issue_id, FIELD_TEXT, 0),
        FIELD_DEF(IssueRelation, type, FIELD_TEXT, 0),     FIELD_DEF(IssueRelation, created_at, FIELD_TIME, 0),
};

const Entity issue_relation_entity = {
        .table = "issue_relations",
        .name = "issue relation",
        .size = sizeof(IssueRelation),
        .fields = issue_relation_fields,
        .n_fields = ELEMENTSOF(issue_relation_fields),
        .init = issue_relation_init,
};

static const Field comment_fields[] = {
        FIELD_DEF(IssueComment, id, FIELD_TEXT, K),
        FIELD_DEF(IssueComment, company_id, FIELD_TEXT, 0),
        FIELD_DEF(IssueComment, issue_id, FIELD_TEXT, 0),
        FIELD_DEF(IssueComment, author_agent_id, FIELD_TEXT, 0),
        FIELD_DEF(IssueComment, author_user_id, FIELD_TEXT, 0),
        FIELD_DEF(IssueComment, created_by_run_id, FIELD_TEXT, 0),
        FIELD_DEF(IssueComment, body, FIELD_TEXT, C | R | L),
        FIELD_DEF(IssueComment, created_at, FIELD_TIME, 0),
        FIELD_DEF(IssueComment, updated_at, FIELD_TIME, 0),
};

const Entity comment_entity = {
        .table = "issue_comments",
        .name = "comment",
        .size = sizeof(IssueComment),
        .fields = comment_fields,
        .n_fields = ELEMENTSOF(comment_fields),
};

static int activity_init(void *obj) {
        Activity *a = obj;
        a->actor_type = ACTOR_SYSTEM;
        return strdup_default(&a->details, "{}");
}

static const Field activity_fields[] = {
        FIELD_DEF(Activity, id, FIELD_TEXT, K),
        FIELD_DEF(Activity, company_id, FIELD_TEXT, 0),
        FIELD_ENUM_DEF(Activity, actor_type, actor_type_names, 0),
        FIELD_DEF(Activity, actor_id, FIELD_TEXT, 0),
        FIELD_DEF(Activity, action, FIELD_TEXT, 0),
        FIELD_DEF(Activity, entity_type, FIELD_TEXT, 0),
        FIELD_DEF(Activity, entity_id, FIELD_TEXT, 0),
        FIELD_DEF(Activity, agent_id, FIELD_TEXT, 0),
        FIELD_DEF(Activity, run_id, FIELD_TEXT, 0),
        FIELD_DEF(Activity, details, FIELD_JSON, 0),
        FIELD_DEF(Activity, created_at, FIELD_TIME, 0),
};

const Entity activity_entity = {
        .table = "activity_log",
        .name = "activity",
        .size = sizeof(Activity),
        .fields = activity_fields,
        .n_fields = ELEMENTSOF(activity_fields),
        .init = activity_init,
};

static const Field workspace_fields[] = {
        FIELD_DEF(Workspace, key, FIELD_TEXT, K),
        FIELD_DEF(Workspace, company_id, FIELD_TEXT, 0),
        FIELD_DEF(Workspace, issue_id, FIELD_TEXT, N),
        FIELD_DEF(Workspace, run_id, FIELD_TEXT, N),
        FIELD_DEF(Workspace, agent_id, FIELD_TEXT, N),
        FIELD_DEF(Workspace, repo, FIELD_TEXT, 0),
        FIELD_DEF(Workspace, path, FIELD_TEXT, 0),
        FIELD_DEF(Workspace, branch, FIELD_TEXT, N),
        FIELD_DEF(Workspace, base_ref, FIELD_TEXT, 0),
        FIELD_ENUM_DEF(Workspace, status, workspace_status_names, 0),
        FIELD_DEF(Workspace, status_reason, FIELD_TEXT, N | L),
        FIELD_DEF(Workspace, created_at, FIELD_TIME, 0),
        FIELD_DEF(Workspace, updated_at, FIELD_TIME, 0),
        FIELD_DEF(Workspace, removed_at, FIELD_TIME, N),
};

const Entity workspace_entity = {
        .table = "workspaces",
        .name = "workspace",
        .size = sizeof(Workspace),
        .fields = workspace_fields,
        .n_fields = ELEMENTSOF(workspace_fields),
};

static const Field host_fields[] = {
        FIELD_DEF(Host, id, FIELD_TEXT, K),         FIELD_DEF(Host, name, FIELD_TEXT, 0),
        FIELD_DEF(Host, epoch, FIELD_INT, 0),       FIELD_ENUM_DEF(Host, status, host_status_names, 0),
        FIELD_DEF(Host, max_runs, FIELD_INT, 0),    FIELD_DEF(Host, started_at, FIELD_TIME, 0),
        FIELD_DEF(Host, renewed_at, FIELD_TIME, 0), FIELD_DEF(Host, lease_expires_at, FIELD_TIME, 0),
        FIELD_DEF(Host, created_at, FIELD_TIME, 0), FIELD_DEF(Host, updated_at, FIELD_TIME, 0),
};

const Entity host_entity = {
        .table = "hosts",
        .name = "host",
        .size = sizeof(Host),
        .fields = host_fields,
        .n_fields = ELEMENTSOF(host_fields),
};

static const Field log_read_fields[] = {
        FIELD_DEF(LogRead, id, FIELD_TEXT, K),
        FIELD_DEF(LogRead, run_id, FIELD_TEXT, 0),
        FIELD_DEF(LogRead, host_id, FIELD_TEXT, 0),
        FIELD_DEF(LogRead, asked_by, FIELD_TEXT, 0),
        FIELD_DEF(LogRead, offset_bytes, FIELD_INT, 0),
        FIELD_DEF(LogRead, limit_bytes, FIELD_INT, 0),
        FIELD_ENUM_DEF(LogRead, status, log_read_status_names, 0),
        FIELD_DEF(LogRead, content, FIELD_TEXT, 0),
        FIELD_DEF(LogRead, read_bytes, FIELD_INT, 0),
        FIELD_DEF(LogRead, kept_bytes, FIELD_INT, 0),
        FIELD_DEF(LogRead, log_ref, FIELD_TEXT, 0),
        FIELD_DEF(LogRead, created_at, FIELD_TIME, 0),
        FIELD_DEF(LogRead, updated_at, FIELD_TIME, 0),
};

const Entity log_read_entity = {
        .table = "log_reads",
        .name = "log read",
        .size = sizeof(LogRead),
        .fields = log_read_fields,
        .n_fields = ELEMENTSOF(log_read_fields),
};

const Entity *const all_entities[] = {
        &company_entity,  &agent_entity,     &runtime_state_entity, &task_session_entity,   &wakeup_entity,
        &run_entity,      &run_event_entity, &issue_entity,         &issue_relation_entity, &comment_entity,
        &activity_entity, &workspace_entity, &host_entity,          &log_read_entity,       NULL,
};

int record_stamp(char **id, char **created_at, char **updated_at, const char *now) {
        char u[UUID_STRING_MAX], t[ISO_TIME_MAX];
        int r;

        r = uuid_new(u);
        if (r < 0)
                return r;
        if (!now) {
                r = iso_time_now(t);
                if (r < 0)
                        return r;
                now = t;
        }
        if (free_and_strdup(id, u) < 0 || free_and_strdup(created_at, now) < 0 ||
            (updated_at && free_and_strdup(updated_at, now) < 0))
                return -ENOMEM;
        return 0;
}

void agent_set_status(Agent *a, AgentStatus status) {
        if (a->status != status)
                log_debug("Agent %s: %s -> %s", strna(a->id), strna(agent_status_to_string(a->status)),
                          strna(agent_status_to_string(status)));
        a->status = status;
}

void run_set_status(Run *run, RunStatus status) {
        if (run->status != status)
                log_debug("Run %s: %s -> %s", strna(run->id), strna(run_status_to_string(run->status)),
                          strna(run_status_to_string(status)));
        run->status = status;
}
