/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The control-plane model (design §2, reference §1): enumerations with their
 * string tables, one struct per table, and the Entity descriptors the store
 * and the JSON mapping work from.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/entity.h"

typedef enum CompanyStatus {
        COMPANY_ACTIVE,
        COMPANY_PAUSED,
        COMPANY_ARCHIVED,
        _COMPANY_STATUS_MAX,
        _COMPANY_STATUS_INVALID = -EINVAL,
} CompanyStatus;

typedef enum AgentStatus {
        AGENT_PENDING_APPROVAL,
        AGENT_IDLE,
        AGENT_RUNNING,
        AGENT_ERROR,
        AGENT_PAUSED,
        AGENT_TERMINATED,
        _AGENT_STATUS_MAX,
        _AGENT_STATUS_INVALID = -EINVAL,
} AgentStatus;

typedef enum AdapterType {
        ADAPTER_PROCESS,
        ADAPTER_CLAUDE_LOCAL,
        ADAPTER_CODEX_LOCAL,
        ADAPTER_GEMINI_LOCAL,
        ADAPTER_PI_LOCAL,
        ADAPTER_OPENCODE_LOCAL,
        _ADAPTER_TYPE_MAX,
        _ADAPTER_TYPE_INVALID = -EINVAL,
} AdapterType;

typedef enum PauseReason {
        PAUSE_MANUAL,
        PAUSE_BUDGET,
        PAUSE_SYSTEM,
        _PAUSE_REASON_MAX,
        _PAUSE_REASON_INVALID = -EINVAL,
} PauseReason;

typedef enum WakeupSource {
        WAKEUP_SOURCE_TIMER,
        WAKEUP_SOURCE_ASSIGNMENT,
        WAKEUP_SOURCE_ON_DEMAND,
        WAKEUP_SOURCE_AUTOMATION,
        _WAKEUP_SOURCE_MAX,
        _WAKEUP_SOURCE_INVALID = -EINVAL,
} WakeupSource;

typedef enum TriggerDetail {
        TRIGGER_MANUAL,
        TRIGGER_PING,
        TRIGGER_CALLBACK,
        TRIGGER_SYSTEM,
        _TRIGGER_DETAIL_MAX,
        _TRIGGER_DETAIL_INVALID = -EINVAL,
} TriggerDetail;

typedef enum WakeupStatus {
        WAKEUP_QUEUED,
        WAKEUP_DEFERRED_ISSUE_EXECUTION,
        WAKEUP_CLAIMED,
        WAKEUP_COALESCED,
        WAKEUP_SKIPPED,
        WAKEUP_COMPLETED,
        WAKEUP_FAILED,
        WAKEUP_CANCELLED,
        _WAKEUP_STATUS_MAX,
        _WAKEUP_STATUS_INVALID = -EINVAL,
} WakeupStatus;

typedef enum ActorType {
        ACTOR_USER,
        ACTOR_AGENT,
        ACTOR_SYSTEM,
        _ACTOR_TYPE_MAX,
        _ACTOR_TYPE_INVALID = -EINVAL,
} ActorType;

typedef enum RunStatus {
        RUN_QUEUED,
        RUN_RUNNING,
        RUN_SUCCEEDED,
        RUN_FAILED,
        RUN_CANCELLED,
        RUN_TIMED_OUT,
        _RUN_STATUS_MAX,
        _RUN_STATUS_INVALID = -EINVAL,
} RunStatus;

typedef enum EventStream {
        STREAM_SYSTEM,
        STREAM_STDOUT,
        STREAM_STDERR,
        _EVENT_STREAM_MAX,
        _EVENT_STREAM_INVALID = -EINVAL,
} EventStream;

typedef enum EventLevel {
        LEVEL_INFO,
        LEVEL_WARN,
        LEVEL_ERROR,
        _EVENT_LEVEL_MAX,
        _EVENT_LEVEL_INVALID = -EINVAL,
} EventLevel;

typedef enum IssueStatus {
        ISSUE_BACKLOG,
        ISSUE_TODO,
        ISSUE_IN_PROGRESS,
        ISSUE_IN_REVIEW,
        ISSUE_BLOCKED,
        ISSUE_DONE,
        ISSUE_CANCELLED,
        _ISSUE_STATUS_MAX,
        _ISSUE_STATUS_INVALID = -EINVAL,
} IssueStatus;

typedef enum IssuePriority {
        PRIORITY_CRITICAL,
        PRIORITY_HIGH,
        PRIORITY_MEDIUM,
        PRIORITY_LOW,
        _ISSUE_PRIORITY_MAX,
        _ISSUE_PRIORITY_INVALID = -EINVAL,
} IssuePriority;

extern const char *const company_status_names[];
extern const char *const agent_status_names[];
extern const char *const adapter_type_names[];
extern const char *const pause_reason_names[];
extern const char *const wakeup_source_names[];
extern const char *const trigger_detail_names[];
extern const char *const wakeup_status_names[];
extern const char *const actor_type_names[];
extern const char *const run_status_names[];
extern const char *const event_stream_names[];
extern const char *const event_level_names[];
extern const char *const issue_status_names[];
extern const char *const issue_priority_names[];

#define DECLARE_ENUM_STRING(name, type)                          \
        static inline const char *name##_to_string(type v) {     \
                return enum_to_string(name##_names, (int) v);    \
        }                                                        \
        static inline type name##_from_string(const char *s) {   \
                return (type) enum_from_string(name##_names, s); \
        }

DECLARE_ENUM_STRING(company_status, CompanyStatus)
DECLARE_ENUM_STRING(agent_status, AgentStatus)
DECLARE_ENUM_STRING(adapter_type, AdapterType)
DECLARE_ENUM_STRING(pause_reason, PauseReason)
DECLARE_ENUM_STRING(wakeup_source, WakeupSource)
DECLARE_ENUM_STRING(trigger_detail, TriggerDetail)
DECLARE_ENUM_STRING(wakeup_status, WakeupStatus)
DECLARE_ENUM_STRING(actor_type, ActorType)
DECLARE_ENUM_STRING(run_status, RunStatus)
DECLARE_ENUM_STRING(event_stream, EventStream)
DECLARE_ENUM_STRING(event_level, EventLevel)
DECLARE_ENUM_STRING(issue_status, IssueStatus)
DECLARE_ENUM_STRING(issue_priority, IssuePriority)

/* Paused, terminated and pending-approval agents are never woken. */
static inline bool agent_status_is_invokable(AgentStatus s) {
        return s != AGENT_PAUSED && s != AGENT_TERMINATED && s != AGENT_PENDING_APPROVAL;
}

static inline bool run_status_is_active(RunStatus s) {
        return s == RUN_QUEUED || s == RUN_RUNNING;
}

static inline bool run_status_is_terminal(RunStatus s) {
        return s == RUN_SUCCEEDED || s == RUN_FAILED || s == RUN_CANCELLED || s == RUN_TIMED_OUT;
}

typedef struct Company {
        char *id;
        char *name;
        char *description;
        CompanyStatus status;
        char *issue_prefix;
        int64_t issue_counter;
        bool require_board_approval_for_new_agents;
        int64_t budget_monthly_cents;
        int64_t spent_monthly_cents; /* in spent_month; 0 in any other */
        int pause_reason; /* PauseReason or -1 */
        char *paused_at;
        char *created_at;
        char *updated_at;
        char *spent_month; /* "YYYY-MM" (UTC), NULL before its first cost */
        char *workspace; /* JSON object: the default workspace policy of its agents */
} Company;

typedef struct Agent {
        char *id;
        char *company_id;
        char *name;
        char *role;
        char *title;
        AgentStatus status;
        AdapterType adapter_type;
        char *adapter_config; /* JSON object */
        char *runtime_config; /* JSON object */
        char *last_heartbeat_at;
        int pause_reason; /* PauseReason or -1 */
        char *paused_at;
        char *created_at;
        char *updated_at;
        int64_t sandbox_uid; /* the uid corral gave the agent's sandbox; INT_NULL until then */
        int64_t budget_monthly_cents; /* 0: none */
        int64_t spent_monthly_cents; /* in spent_month; 0 in any other */
        char *spent_month;
} Agent;

typedef struct AgentRuntimeState {
        char *agent_id;
        char *company_id;
        AdapterType adapter_type;
        char *session_id;
        char *state_json; /* JSON object */
        char *last_run_id;
        int last_run_status; /* RunStatus or -1 */
        char *last_error;
        int64_t total_input_tokens;
        int64_t total_output_tokens;
        int64_t total_cached_input_tokens;
        int64_t total_cost_cents;
        char *created_at;
        char *updated_at;
} AgentRuntimeState;

typedef struct AgentTaskSession {
        char *id;
        char *company_id;
        char *agent_id;
        AdapterType adapter_type;
        char *task_key;
        char *session_params_json; /* JSON object */
        char *session_display_id;
        char *last_run_id;
        char *last_error;
        char *created_at;
        char *updated_at;
} AgentTaskSession;

typedef struct WakeupRequest {
        char *id;
        char *company_id;
        char *agent_id;
        WakeupSource source;
        int trigger_detail; /* TriggerDetail or -1 */
        char *reason;
        char *payload; /* JSON object */
        WakeupStatus status;
        int64_t coalesced_count;
        int requested_by_actor_type; /* ActorType or -1 */
        char *requested_by_actor_id;
        char *idempotency_key;
        char *run_id;
        char *requested_at;
        char *claimed_at;
        char *finished_at;
        char *error;
        char *created_at;
        char *updated_at;
} WakeupRequest;

typedef struct Run {
        char *id;
        char *company_id;
        char *agent_id;
        WakeupSource invocation_source;
        int trigger_detail; /* TriggerDetail or -1 */
        RunStatus status;
        char *started_at;
        char *finished_at;
        char *error;
        char *error_code;
        char *wakeup_request_id;
        int64_t exit_code;
        char *signal;
        char *usage_json; /* JSON object */
        char *result_json; /* JSON object */
        char *session_id_before;
        char *session_id_after;
        char *log_store;
        char *log_ref;
        int64_t log_bytes;
        char *log_sha256;
        bool log_compressed;
        char *stdout_excerpt;
        char *stderr_excerpt;
        char *external_run_id;
        int64_t process_pid;
        int64_t process_group_id;
        char *process_started_at;
        char *retry_of_run_id;
        int64_t process_loss_retry_count;
        char *context_snapshot; /* JSON object */
        /* corral's kernel-level tracking (design §2) */
        char *unit_name;
        char *cgroup_path;
        int64_t shim_pid;
        int64_t shim_start_ticks;
        char *boot_id;
        char *deadline_at;
        char *log_path;
        int64_t log_offset;
        char *host_id; /* the host whose corrald claimed it, and alone supervises it */
        char *created_at;
        char *updated_at;
} Run;

typedef struct RunEvent {
        int64_t id;
        char *company_id;
        char *run_id;
        char *agent_id;
        int64_t seq;
        char *event_type;
        EventStream stream;
        EventLevel level;
        char *color;
        char *message;
        char *payload; /* JSON object */
        char *created_at;
} RunEvent;

typedef struct Issue {
        char *id;
        char *company_id;
        char *project_id;
        char *parent_id;
        char *title;
        char *description;
        IssueStatus status;
        IssuePriority priority;
        char *assignee_agent_id;
        char *assignee_user_id;
        char *checkout_run_id;
        char *execution_run_id;
        char *execution_agent_id; /* lock identity is the agent id (design §3 difference 1) */
        char *execution_locked_at;
        int64_t issue_number;
        char *identifier;
        char *execution_state; /* JSON object */
        char *execution_policy; /* JSON object */
        char *origin_kind;
        char *origin_id;
        char *started_at;
        char *completed_at;
        char *cancelled_at;
        char *hidden_at;
        char *created_at;
        char *updated_at;
} Issue;

typedef struct IssueRelation {
        char *id;
        char *company_id;
        char *issue_id; /* the blocker */
        char *related_issue_id; /* the blocked issue */
        char *type; /* "blocks" */
        char *created_at;
} IssueRelation;

typedef struct IssueComment {
        char *id;
        char *company_id;
        char *issue_id;
        char *author_agent_id;
        char *author_user_id;
        char *created_by_run_id;
        char *body;
        char *created_at;
        char *updated_at;
} IssueComment;

typedef struct Activity {
        char *id;
        char *company_id;
        ActorType actor_type;
        char *actor_id;
        char *action;
        char *entity_type;
        char *entity_id;
        char *agent_id;
        char *run_id;
        char *details; /* JSON object */
        char *created_at;
} Activity;

typedef enum WorkspaceStatus {
        WORKSPACE_ACTIVE, /* its issue's runs work in it */
        WORKSPACE_REMOVING, /* corral-shim --workspace-remove runs on it */
        WORKSPACE_KEPT, /* not removed: uncommitted changes, or its branch could not go back */
        WORKSPACE_REMOVED,
        _WORKSPACE_STATUS_MAX,
} WorkspaceStatus;

extern const char *const workspace_status_names[];

/* A git workspace corral made (corrald(8), WORKSPACES). */
typedef struct Workspace {
        char *key; /* its issue's id, or "run-<id>" for the run of no issue it was made for */
        char *company_id;
        char *issue_id;
        char *run_id; /* the last run that worked in it */
        char *agent_id; /* that run's agent, whose uid owns it */
        char *repo;
        char *path;
        char *branch; /* NULL: detached */
        char *base_ref;
        WorkspaceStatus status;
        char *status_reason; /* why it is kept */
        char *created_at;
        char *updated_at;
        char *removed_at;
} Workspace;

typedef enum HostStatus {
        HOST_LIVE,
        HOST_DRAINING, /* claims nothing new, finishes what it runs */
        HOST_DEAD, /* its lease ran out, and another host took its runs over */
        _HOST_STATUS_MAX,
} HostStatus;

extern const char *const host_status_names[];

/* A corrald sharing the database (corrald(8), HOSTS): its lease, renewed while it lives;
 * epoch counts its starts, so that a corrald declared dead learns it from its row. */
typedef struct Host {
        char *id;
        char *name;
        int64_t epoch;
        HostStatus status;
        int64_t max_runs; /* 0: no cap */
        char *started_at;
        char *renewed_at;
        char *lease_expires_at;
        char *created_at;
        char *updated_at;
} Host;

typedef enum LogReadStatus {
        LOG_READ_ASKED,
        LOG_READ_ANSWERED,
        LOG_READ_MISSING, /* the host has no log of the run */
        _LOG_READ_STATUS_MAX,
} LogReadStatus;

extern const char *const log_read_status_names[];

/* A read of a run's log asked of the host that has it, by another host's API, and its
 * answer (corrald(8), HOSTS: Runs of other hosts). Short-lived: the asker deletes it. */
typedef struct LogRead {
        char *id;
        char *run_id;
        char *host_id; /* the host asked: the run's */
        char *asked_by; /* the host that asks */
        int64_t offset_bytes;
        int64_t limit_bytes;
        LogReadStatus status;
        char *content; /* answered: what was read, whole lines */
        int64_t read_bytes; /* answered: how much was read from offset_bytes */
        int64_t kept_bytes; /* answered: how much of that is in content */
        char *log_ref; /* answered: the log's path on its host */
        char *created_at;
        char *updated_at;
} LogRead;

extern const Entity company_entity;
extern const Entity agent_entity;
extern const Entity runtime_state_entity;
extern const Entity task_session_entity;
extern const Entity wakeup_entity;
extern const Entity run_entity;
extern const Entity run_event_entity;
extern const Entity issue_entity;
extern const Entity issue_relation_entity;
extern const Entity comment_entity;
extern const Entity activity_entity;
extern const Entity workspace_entity;
extern const Entity host_entity;
extern const Entity log_read_entity;

/* Give a new record a fresh id and its creation (and, unless updated_at is NULL, update)
 * time: now, or the given ISO time. */
int record_stamp(char **id, char **created_at, char **updated_at, const char *now);

/* The one way to change an agent's or a run's status (docs/design.md, "State"): each logs
 * "A -> B" at debug level. What else the change means (timestamps, rows of other tables)
 * is the caller's. */
void agent_set_status(Agent *a, AgentStatus status);
void run_set_status(Run *run, RunStatus status);

/* Every entity, for code that works on all tables (tests, dumps). */
extern const Entity *const all_entities[];

/* _cleanup_(company_donep) Company c = {}; frees the record's strings on scope exit. */
#define DEFINE_RECORD_CLEANUP(type, func, entity) \
        static inline void func(type *p) {        \
                entity_done(&(entity), p);        \
        }
DEFINE_RECORD_CLEANUP(Company, company_donep, company_entity)
DEFINE_RECORD_CLEANUP(Agent, agent_donep, agent_entity)
DEFINE_RECORD_CLEANUP(AgentRuntimeState, runtime_state_donep, runtime_state_entity)
DEFINE_RECORD_CLEANUP(WakeupRequest, wakeup_donep, wakeup_entity)
DEFINE_RECORD_CLEANUP(Run, run_donep, run_entity)
DEFINE_RECORD_CLEANUP(RunEvent, run_event_donep, run_event_entity)
DEFINE_RECORD_CLEANUP(Issue, issue_donep, issue_entity)
DEFINE_RECORD_CLEANUP(IssueComment, comment_donep, comment_entity)
DEFINE_RECORD_CLEANUP(AgentTaskSession, task_session_donep, task_session_entity)
DEFINE_RECORD_CLEANUP(IssueRelation, issue_relation_donep, issue_relation_entity)
DEFINE_RECORD_CLEANUP(Activity, activity_donep, activity_entity)
DEFINE_RECORD_CLEANUP(Workspace, workspace_donep, workspace_entity)
DEFINE_RECORD_CLEANUP(Host, host_donep, host_entity)
DEFINE_RECORD_CLEANUP(LogRead, log_read_donep, log_read_entity)
