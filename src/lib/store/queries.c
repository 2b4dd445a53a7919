/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "store/queries.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "basic/time-util.h"
#include "store/store-internal.h"

int store_run_event_append(Store *s, const char *run_id, const char *event_type, EventLevel level, const char *message,
                           const char *payload_json) {
        _cleanup_(run_donep) Run run = {};
        _cleanup_(run_event_donep) RunEvent e = {};
        char now[ISO_TIME_MAX];
        int64_t n;
        int r;

        r = store_get(s, &run_entity, run_id, &run);
        if (r < 0)
                return r;
        r = store_count(s, "heartbeat_run_events", "WHERE run_id = ?1", (const char *const[]){ run_id, NULL }, &n);
        if (r < 0)
                return r;
        r = entity_init(&run_event_entity, &e);
        if (r < 0)
                return r;
        r = iso_time_now(now);
        if (r < 0)
                return r;
        e.seq = n + 1;
        e.level = level;
        e.stream = STREAM_SYSTEM;
        if (free_and_strdup(&e.company_id, run.company_id) < 0 || free_and_strdup(&e.run_id, run_id) < 0 ||
            free_and_strdup(&e.agent_id, run.agent_id) < 0 || free_and_strdup(&e.event_type, event_type) < 0 ||
            free_and_strdup(&e.message, message) < 0 || free_and_strdup(&e.created_at, now) < 0 ||
            (payload_json && free_and_strdup(&e.payload, payload_json) < 0))
                return -ENOMEM;
        return store_insert(s, &run_event_entity, &e);
}

/* The arguments of a query, NULL-terminated. */
#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* An issue run: the issueId of its context, as the indexed column of migration 3. */
#define RUN_ISSUE "issue_id"
#define RUN_ACTIVE "status IN ('queued', 'running')"

int store_run_active_for_issue(Store *s, const char *company_id, const char *issue_id, Run *ret) {
        return store_get_first(s, &run_entity,
                               "WHERE company_id = ?1 AND " RUN_ACTIVE " AND " RUN_ISSUE " = ?2 "
                               "ORDER BY status = 'running' DESC, created_at",
                               ARGS(company_id, issue_id), ret);
}

int store_run_queued_for_task(Store *s, const char *agent_id, const char *task_key, Run *ret) {
        /* task_key is the context's taskKey when that is a string (migration 3). Without a
         * key the argument list ends before ?2, which that clause does not use. */
        return store_get_first(s, &run_entity,
                               task_key ? "WHERE agent_id = ?1 AND status = 'queued' AND task_key = ?2 "
                                          "ORDER BY created_at DESC, rowid DESC"
                                        : "WHERE agent_id = ?1 AND status = 'queued' AND task_key IS NULL "
                                          "ORDER BY created_at DESC, rowid DESC",
                               ARGS(agent_id, task_key), ret);
}

int store_run_latest_for_issue(Store *s, const char *company_id, const char *issue_id, Run *ret) {
        return store_get_first(s, &run_entity, "WHERE company_id = ?1 AND " RUN_ISSUE " = ?2 ORDER BY created_at DESC, id DESC",
                               ARGS(company_id, issue_id), ret);
}

int store_runs_running_count(Store *s, const char *agent_id, int64_t *ret) {
        return store_count(s, "heartbeat_runs", "WHERE agent_id = ?1 AND status = 'running'", ARGS(agent_id), ret);
}

int store_runs_active_for_issue_count(Store *s, const char *company_id, const char *issue_id, int64_t *ret) {
        return store_count(s, "heartbeat_runs", "WHERE company_id = ?1 AND " RUN_ACTIVE " AND " RUN_ISSUE " = ?2",
                           ARGS(company_id, issue_id), ret);
}

int store_runs_continued_since_count(Store *s, const char *company_id, const char *issue_id, const char *since, int64_t *ret) {
        return store_count(s, "heartbeat_runs",
                           store_dialect(s,
                                         "WHERE company_id = ?1 AND " RUN_ISSUE " = ?2 "
                                         "AND json_extract(context_snapshot, '$.retryReason') = 'issue_continuation_needed' "
                                         "AND status = 'succeeded' AND started_at >= ?3",
                                         "WHERE company_id = ?1 AND " RUN_ISSUE " = ?2 "
                                         "AND context_snapshot::jsonb ->> 'retryReason' = 'issue_continuation_needed' "
                                         "AND status = 'succeeded' AND started_at >= ?3"),
                           ARGS(company_id, issue_id, since), ret);
}

int store_runs_queued_in_claim_order(Store *s, const char *agent_id, Run **ret, size_t *ret_n) {
#define QUEUED_ISSUE "heartbeat_runs.issue_id"
        return store_list(s, &run_entity,
                          "WHERE agent_id = ?1 AND status = 'queued' ORDER BY "
                          "CASE WHEN " QUEUED_ISSUE " IS NULL THEN 2 "
                          "WHEN EXISTS (SELECT 1 FROM issue_relations rel JOIN issues b ON b.id = rel.issue_id "
                          "WHERE rel.related_issue_id = " QUEUED_ISSUE " AND rel.type = 'blocks' AND b.status != 'done') THEN 3 "
                          "WHEN (SELECT status FROM issues WHERE id = " QUEUED_ISSUE ") = 'in_progress' THEN 0 ELSE 1 END, "
                          "CASE (SELECT priority FROM issues WHERE id = " QUEUED_ISSUE ") "
                          "WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 WHEN 'low' THEN 3 ELSE 4 END, "
                          "created_at, rowid",
                          ARGS(agent_id), 0, (void **) ret, ret_n);
#undef QUEUED_ISSUE
}

int store_wakeups_claim_running(Store *s, const char *agent_id, const char *now) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        int r;

        r = store_prepare(s,
                          "UPDATE agent_wakeup_requests SET status = 'claimed', updated_at = ?2, claimed_at = ?2 "
                          "WHERE status = 'queued' AND id IN (SELECT wakeup_request_id FROM heartbeat_runs "
                          "WHERE agent_id = ?1 AND status = 'running')",
                          &stmt);
        if (r < 0)
                return r;
        if ((r = stmt_bind_text(stmt, 1, agent_id)) < 0 || (r = stmt_bind_text(stmt, 2, now)) < 0)
                return r;
        return stmt_done(stmt);
}

int store_runs_queued_count(Store *s, const char *agent_id, int64_t *ret) {
        return store_count(s, "heartbeat_runs", "WHERE agent_id = ?1 AND status = 'queued'", ARGS(agent_id), ret);
}

int store_runs_active_of_agent(Store *s, const char *agent_id, Run **ret, size_t *ret_n) {
        return store_list(s, &run_entity, "WHERE agent_id = ?1 AND " RUN_ACTIVE " ORDER BY created_at", ARGS(agent_id), 0,
                          (void **) ret, ret_n);
}

int store_runs_running(Store *s, const char *host_id, Run **ret, size_t *ret_n) {
        return store_list(s, &run_entity, "WHERE status = 'running' AND (host_id = ?1 OR host_id IS NULL) ORDER BY created_at",
                          ARGS(host_id), 0, (void **) ret, ret_n);
}

int store_runs_running_on_host_count(Store *s, const char *host_id, int64_t *ret) {
        return store_count(s, "heartbeat_runs", "WHERE status = 'running' AND host_id = ?1", ARGS(host_id), ret);
}

int store_work_tell(Store *s, const char *what) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        int r;

        if (store_backend(s) != STORE_BACKEND_POSTGRESQL)
                return 0;
        r = store_prepare(s, "SELECT pg_notify('corral_work', ?1)", &stmt);
        if (r < 0)
                return r;
        r = stmt_bind_text(stmt, 1, what);
        return r < 0 ? r : stmt_done(stmt);
}

int store_host_renew(Store *s, const char *host_id, int64_t epoch, const char *now, const char *expires, bool *ret_ours) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        int r;

        r = store_prepare(s,
                          "UPDATE hosts SET renewed_at = ?3, lease_expires_at = ?4, updated_at = ?3 "
                          "WHERE id = ?1 AND epoch = ?2 AND status != 'dead'",
                          &stmt);
        if (r < 0)
                return r;
        if ((r = stmt_bind_text(stmt, 1, host_id)) < 0 || (r = stmt_bind_int64(stmt, 2, epoch)) < 0 ||
            (r = stmt_bind_text(stmt, 3, now)) < 0 || (r = stmt_bind_text(stmt, 4, expires)) < 0)
                return r;
        /* Past the fence: this is what tells whether the host is still itself. */
        r = stmt_step_unfenced(stmt);
        if (r < 0)
                return r;
        *ret_ours = stmt_changes(stmt) > 0;
        return 0;
}

int store_hosts_expired(Store *s, const char *self_id, const char *now, Host **ret, size_t *ret_n) {
        return store_list(s, &host_entity, "WHERE status != 'dead' AND lease_expires_at < ?2 AND id != ?1 ORDER BY created_at",
                          ARGS(self_id, now), 0, (void **) ret, ret_n);
}

int store_host_declare_dead(Store *s, const char *host_id, const char *now, bool *ret_taken) {
        return store_change(s,
                            "UPDATE hosts SET status = 'dead', updated_at = ?2 "
                            "WHERE id = ?1 AND status != 'dead' AND lease_expires_at < ?2",
                            ARGS(host_id, now), ret_taken);
}

int store_runs_taken_over(Store *s, const char *host_id, const char *since, Run **ret, size_t *ret_n) {
        return store_list(s, &run_entity,
                          "WHERE host_id = ?1 AND finished_at >= ?2 AND error_code IN ('process_lost', 'cancelled') "
                          "AND (cgroup_path IS NOT NULL OR unit_name IS NOT NULL) ORDER BY finished_at",
                          ARGS(host_id, since), 0, (void **) ret, ret_n);
}

int store_run_request_stop(Store *s, const char *run_id, const char *why, bool *ret_requested) {
        return store_change(s,
                            "UPDATE heartbeat_runs SET stop_requested = ?2 "
                            "WHERE id = ?1 AND status = 'running' AND stop_requested IS NULL",
                            ARGS(run_id, why), ret_requested);
}

int store_run_stop_requested(Store *s, const char *run_id, char **ret_why) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        int r;

        *ret_why = NULL;
        r = store_prepare(s, "SELECT stop_requested FROM heartbeat_runs WHERE id = ?1", &stmt);
        if (r < 0)
                return r;
        if ((r = stmt_bind_text(stmt, 1, run_id)) < 0)
                return r;
        r = stmt_step(stmt);
        if (r <= 0)
                return r;
        const char *why = stmt_column_text(stmt, 0);
        if (why && !(*ret_why = strdup(why)))
                return -ENOMEM;
        return 0;
}

int store_log_read_answer(Store *s, const LogRead *a, bool *ret_answered) {
        _cleanup_reset_ StoreStmt *stmt = NULL;
        int r;

        /* Bound one by one: content and log_ref are NULL when the host has no log. */
        r = store_prepare(s,
                          "UPDATE log_reads SET status = ?3, content = ?4, read_bytes = ?5, kept_bytes = ?6, log_ref = ?7, "
                          "updated_at = ?8 WHERE id = ?1 AND host_id = ?2 AND status = 'asked'",
                          &stmt);
        if (r < 0)
                return r;
        if ((r = stmt_bind_text(stmt, 1, a->id)) < 0 || (r = stmt_bind_text(stmt, 2, a->host_id)) < 0 ||
            (r = stmt_bind_text(stmt, 3, log_read_status_names[a->status])) < 0 ||
            (r = stmt_bind_text(stmt, 4, a->content)) < 0 || (r = stmt_bind_int64(stmt, 5, a->read_bytes)) < 0 ||
            (r = stmt_bind_int64(stmt, 6, a->kept_bytes)) < 0 || (r = stmt_bind_text(stmt, 7, a->log_ref)) < 0 ||
            (r = stmt_bind_text(stmt, 8, a->updated_at)) < 0)
                return r;
        r = stmt_done(stmt);
        if (r < 0)
                return r;
        *ret_answered = stmt_changes(stmt) > 0;
        return 0;
}

int store_log_reads_prune(Store *s, const char *before) {
        bool pruned;
        return store_change(s, "DELETE FROM log_reads WHERE created_at < ?1", ARGS(before), &pruned);
}

int store_runs_stop_requested(Store *s, const char *host_id, Run **ret, size_t *ret_n) {
        return store_list(s, &run_entity,
                          "WHERE host_id = ?1 AND status = 'running' AND stop_requested IS NOT NULL ORDER BY created_at",
                          ARGS(host_id), 0, (void **) ret, ret_n);
}

int store_runs_running_on_dead_hosts(Store *s, Run **ret, size_t *ret_n) {
        return store_list(s, &run_entity,
                          "WHERE status = 'running' AND host_id IN (SELECT id FROM hosts WHERE status = 'dead') "
                          "ORDER BY created_at",
                          NULL, 0, (void **) ret, ret_n);
}

int store_hosts(Store *s, StorePage *page, Host **ret, size_t *ret_n) {
        return store_list_page(s, &host_entity, NULL, "created_at", false, NULL, page, (void **) ret, ret_n);
}

#define WAKE_DEFERRED "status = 'deferred_issue_execution'"
#define WAKE_ISSUE "issue_id"

int store_wakeup_by_idempotency_key(Store *s, const char *agent_id, const char *key, WakeupRequest *ret) {
        return store_get_first(s, &wakeup_entity, "WHERE agent_id = ?1 AND idempotency_key = ?2 ORDER BY created_at",
                               ARGS(agent_id, key), ret);
}

int store_wakeup_deferred_for_issue(Store *s, const char *company_id, const char *agent_id, const char *issue_id,
                                    WakeupRequest *ret) {
        return store_get_first(s, &wakeup_entity,
                               "WHERE company_id = ?1 AND agent_id = ?2 AND " WAKE_DEFERRED " AND " WAKE_ISSUE " = ?3 "
                               "ORDER BY requested_at",
                               ARGS(company_id, agent_id, issue_id), ret);
}

int store_wakeups_deferred_for_issue(Store *s, const char *company_id, const char *issue_id, WakeupRequest **ret, size_t *ret_n) {
        return store_list(s, &wakeup_entity,
                          "WHERE company_id = ?1 AND " WAKE_DEFERRED " AND " WAKE_ISSUE " = ?2 ORDER BY requested_at, rowid",
                          ARGS(company_id, issue_id), 0, (void **) ret, ret_n);
}

int store_wakeups_deferred_for_issue_count(Store *s, const char *company_id, const char *issue_id, int64_t *ret) {
        return store_count(s, "agent_wakeup_requests", "WHERE company_id = ?1 AND " WAKE_DEFERRED " AND " WAKE_ISSUE " = ?2",
                           ARGS(company_id, issue_id), ret);
}

int store_agents_queued_on_issue(Store *s, const char *company_id, const char *issue_id, Agent **ret, size_t *ret_n) {
        return store_list(s, &agent_entity,
                          "WHERE id IN (SELECT agent_id FROM heartbeat_runs WHERE company_id = ?1 AND status = 'queued' "
                          "AND " RUN_ISSUE " = ?2)",
                          ARGS(company_id, issue_id), 0, (void **) ret, ret_n);
}

int store_agents_with_queued_runs(Store *s, Agent **ret, size_t *ret_n) {
        return store_list(s, &agent_entity, "WHERE id IN (SELECT DISTINCT agent_id FROM heartbeat_runs WHERE status = 'queued')",
                          NULL, 0, (void **) ret, ret_n);
}

int store_agents_with_timer(Store *s, Agent **ret, size_t *ret_n) {
        /* enabled is true (or 1: SQLite's json_extract() makes true 1). */
        return store_list(s, &agent_entity,
                          store_dialect(s,
                                        "WHERE status NOT IN ('paused', 'terminated', 'pending_approval') "
                                        "AND json_extract(runtime_config, '$.heartbeat.enabled') = 1",
                                        "WHERE status NOT IN ('paused', 'terminated', 'pending_approval') "
                                        "AND runtime_config::jsonb #>> '{heartbeat,enabled}' IN ('true', '1')"),
                          NULL, 0, (void **) ret, ret_n);
}

int store_task_session_for_task(Store *s, const char *agent_id, const char *adapter_type, const char *task_key,
                                AgentTaskSession *ret) {
        return store_get_first(s, &task_session_entity, "WHERE agent_id = ?1 AND adapter_type = ?2 AND task_key = ?3",
                               ARGS(agent_id, adapter_type, task_key), ret);
}

int store_issue_locked_by_run(Store *s, const char *run_id, Issue *ret) {
        return store_get_first(s, &issue_entity, "WHERE execution_run_id = ?1", ARGS(run_id), ret);
}

int store_issue_open_blockers_count(Store *s, const char *issue_id, int64_t *ret) {
        return store_count(s, "issue_relations r JOIN issues b ON b.id = r.issue_id",
                           "WHERE r.related_issue_id = ?1 AND r.type = 'blocks' AND b.status != 'done'", ARGS(issue_id), ret);
}

int store_issues_agent_assigned_open(Store *s, Issue **ret, size_t *ret_n) {
        return store_list(
                s, &issue_entity,
                "WHERE assignee_user_id IS NULL AND assignee_agent_id IS NOT NULL AND status IN ('todo', 'in_progress') "
                "ORDER BY created_at",
                NULL, 0, (void **) ret, ret_n);
}

int store_comments_by_run_count(Store *s, const char *run_id, int64_t *ret) {
        return store_count(s, "issue_comments", "WHERE created_by_run_id = ?1", ARGS(run_id), ret);
}

int store_agents_of_company(Store *s, const char *company_id, StorePage *page, Agent **ret, size_t *ret_n) {
        return store_list_page(s, &agent_entity, "company_id = ?1", "created_at", false, ARGS(company_id), page, (void **) ret,
                               ret_n);
}

int store_agents_of_company_all(Store *s, const char *company_id, Agent **ret, size_t *ret_n) {
        return store_list(s, &agent_entity, "WHERE company_id = ?1 ORDER BY created_at, id", ARGS(company_id), 0, (void **) ret,
                          ret_n);
}

int store_issues_unblocked_by(Store *s, const char *done_id, Issue **ret, size_t *ret_n) {
        return store_list(s, &issue_entity,
                          "WHERE id IN (SELECT related_issue_id FROM issue_relations WHERE issue_id = ?1 AND type = 'blocks') "
                          "AND assignee_agent_id IS NOT NULL AND status NOT IN ('backlog', 'done', 'cancelled') "
                          "AND NOT EXISTS (SELECT 1 FROM issue_relations rel JOIN issues b ON b.id = rel.issue_id "
                          "WHERE rel.related_issue_id = issues.id AND rel.type = 'blocks' AND b.status != 'done')",
                          ARGS(done_id), 0, (void **) ret, ret_n);
}

int store_run_to_interrupt(Store *s, const char *execution_run_id, const char *assignee_agent_id, const char *issue_id,
                           Run *ret) {
        return store_get_first(s, &run_entity,
                               "WHERE status = 'running' AND (id = ?1 OR (agent_id = ?2 AND " RUN_ISSUE " = ?3)) "
                               "ORDER BY id = ?1 DESC, created_at",
                               ARGS(strempty(execution_run_id), strempty(assignee_agent_id), issue_id), ret);
}

int store_issue_waits_for(Store *s, const char *issue_id, const char *other_id, bool *ret) {
        int64_t n = 0;
        /* The start's type and collation are the ids' (PostgreSQL's recursive union wants them
         * the same in both terms). */
#define WAITS_FOR(start)                                                                                  \
        "(WITH RECURSIVE up(id) AS (SELECT " start " UNION SELECT rel.issue_id FROM issue_relations rel " \
        "JOIN up ON rel.related_issue_id = up.id WHERE rel.type = 'blocks') SELECT id FROM up) ancestors"
        int r = store_count(s, store_dialect(s, WAITS_FOR("?1"), WAITS_FOR("CAST(?1 AS TEXT) COLLATE \"C\"")), "WHERE id = ?2",
                            ARGS(issue_id, other_id), &n);
#undef WAITS_FOR
        *ret = n > 0;
        return r;
}

int store_companies(Store *s, const char *only_id, StorePage *page, Company **ret, size_t *ret_n) {
        if (only_id)
                return store_list_page(s, &company_entity, "id = ?1", "created_at", false, ARGS(only_id), page, (void **) ret,
                                       ret_n);
        return store_list_page(s, &company_entity, NULL, "created_at", false, NULL, page, (void **) ret, ret_n);
}

int store_company_prefix_taken(Store *s, const char *prefix, bool *ret) {
        int64_t n = 0;
        int r = store_count(s, "companies", "WHERE issue_prefix = ?1", ARGS(prefix), &n);
        *ret = n > 0;
        return r;
}

int store_activity_of_company(Store *s, const char *company_id, StorePage *page, Activity **ret, size_t *ret_n) {
        return store_list_page(s, &activity_entity, "company_id = ?1", "created_at", true, ARGS(company_id), page, (void **) ret,
                               ret_n);
}

int store_issues_of_company(Store *s, const char *company_id, const char *status, const char *assignee_agent_id, StorePage *page,
                            Issue **ret, size_t *ret_n) {
        /* The filters given, numbered in order: ?2 is the status when there is one. */
        const char *clause = status && assignee_agent_id ? "company_id = ?1 AND status = ?2 AND assignee_agent_id = ?3"
                : status                                 ? "company_id = ?1 AND status = ?2"
                : assignee_agent_id                      ? "company_id = ?1 AND assignee_agent_id = ?2"
                                                         : "company_id = ?1";
        const char *args[4] = { company_id };
        size_t n = 1;

        if (status)
                args[n++] = status;
        if (assignee_agent_id)
                args[n++] = assignee_agent_id;
        return store_list_page(s, &issue_entity, clause, "issue_number", false, args, page, (void **) ret, ret_n);
}

int store_issue_by_identifier(Store *s, const char *identifier, Issue *ret) {
        return store_get_first(s, &issue_entity, "WHERE identifier = ?1", ARGS(identifier), ret);
}

int store_issue_blockers(Store *s, const char *issue_id, StorePage *page, Issue **ret, size_t *ret_n) {
        return store_list_page(s, &issue_entity,
                               "id IN (SELECT issue_id FROM issue_relations WHERE related_issue_id = ?1 AND type = 'blocks')",
                               "issue_number", false, ARGS(issue_id), page, (void **) ret, ret_n);
}

int store_comments_of_issue(Store *s, const char *issue_id, StorePage *page, IssueComment **ret, size_t *ret_n) {
        return store_list_page(s, &comment_entity, "issue_id = ?1", "created_at", false, ARGS(issue_id), page, (void **) ret,
                               ret_n);
}

int store_runs_of_company(Store *s, const char *company_id, const char *agent_id, StorePage *page, Run **ret, size_t *ret_n) {
        if (agent_id)
                return store_list_page(s, &run_entity, "company_id = ?1 AND agent_id = ?2", "created_at", true,
                                       ARGS(company_id, agent_id), page, (void **) ret, ret_n);
        return store_list_page(s, &run_entity, "company_id = ?1", "created_at", true, ARGS(company_id), page, (void **) ret,
                               ret_n);
}

int store_runs_active_of_company(Store *s, const char *company_id, StorePage *page, Run **ret, size_t *ret_n) {
        return store_list_page(s, &run_entity, "company_id = ?1 AND " RUN_ACTIVE, "created_at", false, ARGS(company_id), page,
                               (void **) ret, ret_n);
}

int store_runs_active_for_issue(Store *s, const char *company_id, const char *issue_id, StorePage *page, Run **ret,
                                size_t *ret_n) {
        return store_list_page(s, &run_entity, "company_id = ?1 AND " RUN_ACTIVE " AND " RUN_ISSUE " = ?2", "created_at", false,
                               ARGS(company_id, issue_id), page, (void **) ret, ret_n);
}

int store_run_running_of_agent_for_issue(Store *s, const char *agent_id, const char *issue_id, Run *ret) {
        return store_get_first(s, &run_entity,
                               "WHERE agent_id = ?1 AND status = 'running' AND " RUN_ISSUE " = ?2 ORDER BY created_at",
                               ARGS(agent_id, issue_id), ret);
}

int store_run_events_after(Store *s, const char *run_id, int64_t after_seq, size_t limit, RunEvent **ret, size_t *ret_n) {
        char after[32];

        snprintf(after, sizeof(after), "%" PRIi64, after_seq);
        return store_list(s, &run_event_entity, "WHERE run_id = ?1 AND seq > ?2 ORDER BY seq, id", ARGS(run_id, after), limit,
                          (void **) ret, ret_n);
}

int store_wakeups_of_agent(Store *s, const char *agent_id, const char *status, StorePage *page, WakeupRequest **ret,
                           size_t *ret_n) {
        if (status)
                return store_list_page(s, &wakeup_entity, "agent_id = ?1 AND status = ?2", "requested_at", true,
                                       ARGS(agent_id, status), page, (void **) ret, ret_n);
        return store_list_page(s, &wakeup_entity, "agent_id = ?1", "requested_at", true, ARGS(agent_id), page, (void **) ret,
                               ret_n);
}

int store_task_sessions_of_agent(Store *s, const char *agent_id, size_t limit, AgentTaskSession **ret, size_t *ret_n) {
        return store_list(s, &task_session_entity, "WHERE agent_id = ?1 ORDER BY updated_at DESC, rowid DESC", ARGS(agent_id), 0,
                          (void **) ret, ret_n);
}

int store_task_sessions_delete(Store *s, const char *agent_id, const char *task_key) {
        AgentTaskSession *items;
        size_t n;
        int r;

        if (task_key)
                r = store_list(s, &task_session_entity, "WHERE agent_id = ?1 AND task_key = ?2", ARGS(agent_id, task_key), 0,
                               (void **) &items, &n);
        else
                r = store_list(s, &task_session_entity, "WHERE agent_id = ?1", ARGS(agent_id), 0, (void **) &items, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++)
                r = store_delete(s, &task_session_entity, items[i].id);
        entity_array_free(&task_session_entity, items, n);
        return r < 0 ? r : 0;
}

int store_count_all(Store *s, const Entity *e, int64_t *ret) {
        /* Kept by triggers (migration 4), for the tables that have a count. */
        return store_scalar(s, "SELECT n FROM row_counts WHERE name = ?1", ARGS(e->table), ret);
}

int store_runs_active_count(Store *s, int64_t *ret) {
        return store_count(s, "heartbeat_runs", "WHERE " RUN_ACTIVE, NULL, ret);
}

/* A workspace's issue is closed since before ?1, or gone; or, of no issue, its run ended. */
#define WORKSPACE_DUE                                                                                                            \
        "(CASE WHEN issue_id IS NOT NULL THEN NOT EXISTS (SELECT 1 FROM issues i WHERE i.id = workspaces.issue_id "              \
        "AND (i.status NOT IN ('done', 'cancelled') OR coalesce(i.completed_at, i.cancelled_at, i.updated_at) > ?1)) "           \
        "ELSE NOT EXISTS (SELECT 1 FROM heartbeat_runs r WHERE r.id = workspaces.run_id AND r.status IN ('queued', 'running')) " \
        "END)"

int store_workspaces_due(Store *s, const char *closed_before, bool kept, size_t limit, Workspace **ret, size_t *ret_n) {
        /* Each condition is a lookup by key of the workspace's issue or run. */
        return store_list(s, &workspace_entity,
                          kept ? "WHERE status = 'kept' AND " WORKSPACE_DUE " ORDER BY status, created_at"
                               : "WHERE status IN ('active', 'removing') AND " WORKSPACE_DUE " ORDER BY status, created_at",
                          ARGS(closed_before), limit, (void **) ret, ret_n);
}

int store_workspaces_of_company(Store *s, const char *company_id, const char *status, StorePage *page, Workspace **ret,
                                size_t *ret_n) {
        return store_list_page(s, &workspace_entity, status ? "company_id = ?1 AND status = ?2" : "company_id = ?1", "created_at",
                               true, status ? ARGS(company_id, status) : ARGS(company_id), page, (void **) ret, ret_n);
}

int store_lookup(Store *s, const Entity *e, const char *key, const char *company_id, size_t limit, void **ret, size_t *ret_n) {
        _cleanup_free_ char *end = NULL, *key_upper = strdup(key);

        if (!key_upper)
                return -ENOMEM;
        for (char *p = key_upper; *p; p++)
                *p = (char) toupper((unsigned char) *p);
        /* A prefix of an id is a range of the primary key: [key, key~) (ids are lower-case hex
         * and dashes, all below '~'); shorter than 4, it names nothing. */
        end = strprintf("%s~", key);
        if (!end)
                return -ENOMEM;
        const char *from = strlen(key) >= 4 ? key : "~", *to = strlen(key) >= 4 ? end : "~";
        if (e == &company_entity)
                return store_list(s, e, "WHERE (id >= ?1 AND id < ?2) OR name = ?3 OR issue_prefix = ?4",
                                  ARGS(from, to, key, key_upper), limit, ret, ret_n);
        if (e == &agent_entity)
                return company_id
                        ? store_list(s, e, "WHERE company_id = ?4 AND ((id >= ?1 AND id < ?2) OR name = ?3)",
                                     ARGS(from, to, key, company_id), limit, ret, ret_n)
                        : store_list(s, e, "WHERE (id >= ?1 AND id < ?2) OR name = ?3", ARGS(from, to, key), limit, ret, ret_n);
        /* Issues and runs pile up: by their keys alone, the caller keeps those of its company. */
        if (e == &issue_entity)
                return store_list(s, e, "WHERE (id >= ?1 AND id < ?2) OR identifier = ?3", ARGS(from, to, key_upper), limit, ret,
                                  ret_n);
        if (e == &run_entity)
                return store_list(s, e, "WHERE id >= ?1 AND id < ?2", ARGS(from, to), limit, ret, ret_n);
        return -EINVAL;
}
