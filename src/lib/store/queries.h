/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The store's named queries: every question the control plane and the API ask of the
 * database beyond a record by its key, each with its SQL here and nowhere else.
 */
#pragma once

#include <stdbool.h>

#include "store/model.h"
#include "store/store.h"

/* Append an event to a run (seq = max + 1). payload_json may be NULL. */
int store_run_event_append(Store *s, const char *run_id, const char *event_type, EventLevel level, const char *message,
                           const char *payload_json);

/* ---- runs ---- */
/* A run is "of an issue" when its contextSnapshot names it (issueId). */

/* The active (queued or running) run of an issue that holds or would hold its lock: running
 * first, then the oldest. 1 found, 0 none. */
int store_run_active_for_issue(Store *s, const char *company_id, const char *issue_id, Run *ret);
/* The newest queued run of the agent for task_key (a string), or without one (NULL). */
int store_run_queued_for_task(Store *s, const char *agent_id, const char *task_key, Run *ret);
/* The newest run of an issue, whatever its status. */
int store_run_latest_for_issue(Store *s, const char *company_id, const char *issue_id, Run *ret);
/* Runs of the agent in status running. */
int store_runs_running_count(Store *s, const char *agent_id, int64_t *ret);
/* Active runs of an issue. */
int store_runs_active_for_issue_count(Store *s, const char *company_id, const char *issue_id, int64_t *ret);
/* Continuation runs of an issue (retryReason issue_continuation_needed) that succeeded
 * since the given time. */
int store_runs_continued_since_count(Store *s, const char *company_id, const char *issue_id, const char *since, int64_t *ret);
/* The agent's queued runs in claim order (reference §3.7): runs on in_progress issues first,
 * then other issue runs, then runs without an issue, and runs whose issue has open blockers
 * last; within a rank by issue priority, then oldest first. */
int store_runs_queued_in_claim_order(Store *s, const char *agent_id, Run **ret, size_t *ret_n);
/* How many runs of the agent are queued. */
int store_runs_queued_count(Store *s, const char *agent_id, int64_t *ret);
/* The agent's active runs, oldest first. */
int store_runs_active_of_agent(Store *s, const char *agent_id, Run **ret, size_t *ret_n);
/* Every run in status running of the host (or of no host: made before hosts were
 * recorded), oldest first. */
int store_runs_running(Store *s, const char *host_id, Run **ret, size_t *ret_n);
/* Runs in status running of the host. */
int store_runs_running_on_host_count(Store *s, const char *host_id, int64_t *ret);

/* ---- hosts ---- */

/* Renew the host's lease, if its row is still of that epoch and not dead: *ret_ours says
 * whether it was. */
int store_host_renew(Store *s, const char *host_id, int64_t epoch, const char *now, const char *expires, bool *ret_ours);
/* Tell every host listening (store_work_listen()) what: an agent's id (claim its queued
 * runs), "stop:RUN" or "resume:HOST". Nothing on SQLite, where no other host listens. */
int store_work_tell(Store *s, const char *what);
/* The hosts but self_id whose lease ended before now and that no host declared dead yet. */
int store_hosts_expired(Store *s, const char *self_id, const char *now, Host **ret, size_t *ret_n);
/* Declare a host dead, if its lease still ended before now and no host did already:
 * *ret_taken says whether this call did. */
int store_host_declare_dead(Store *s, const char *host_id, const char *now, bool *ret_taken);
/* The host's runs finalized as lost since (an ISO time) that had a place: what another host
 * took over from it while it was away. */
int store_runs_taken_over(Store *s, const char *host_id, const char *since, Run **ret, size_t *ret_n);
/* A stop of a running run asked through another host than its own, which carries it out:
 * why is a RunEnd name. *ret_requested is false when the run is not running or a stop was
 * asked already (the first one stands). */
int store_run_request_stop(Store *s, const char *run_id, const char *why, bool *ret_requested);
/* The stop asked of a run (malloc'ed), NULL for none. */
int store_run_stop_requested(Store *s, const char *run_id, char **ret_why);
/* The running runs of a host with a stop asked of them. */
int store_runs_stop_requested(Store *s, const char *host_id, Run **ret, size_t *ret_n);
/* Runs still running on hosts declared dead: theirs to be finalized as lost. */
int store_runs_running_on_dead_hosts(Store *s, Run **ret, size_t *ret_n);
/* The answer to a read of a run's log asked of this host (log_read_entity), if it is still
 * asked: *ret_answered says whether it was. */
int store_log_read_answer(Store *s, const LogRead *answer, bool *ret_answered);
/* Forget the reads asked before (an ISO time): their askers are gone. */
int store_log_reads_prune(Store *s, const char *before);
/* The hosts, by when each first came. */
int store_hosts(Store *s, StorePage *page, Host **ret, size_t *ret_n);

/* ---- wakeups ---- */

/* The queued wakeups of the agent's running runs become claimed at now: those of the runs a
 * claim just moved to running, in one statement. */
int store_wakeups_claim_running(Store *s, const char *agent_id, const char *now);
/* The agent's first wakeup with this idempotency key. */
int store_wakeup_by_idempotency_key(Store *s, const char *agent_id, const char *key, WakeupRequest *ret);
/* The agent's deferred wake on an issue (there is at most one; the oldest if not). */
int store_wakeup_deferred_for_issue(Store *s, const char *company_id, const char *agent_id, const char *issue_id,
                                    WakeupRequest *ret);
/* Every deferred wake on an issue, oldest first. */
int store_wakeups_deferred_for_issue(Store *s, const char *company_id, const char *issue_id, WakeupRequest **ret, size_t *ret_n);
int store_wakeups_deferred_for_issue_count(Store *s, const char *company_id, const char *issue_id, int64_t *ret);

/* ---- agents ---- */

/* Agents with a queued run on the issue. */
int store_agents_queued_on_issue(Store *s, const char *company_id, const char *issue_id, Agent **ret, size_t *ret_n);
/* The agents of a company. */
int store_agents_of_company(Store *s, const char *company_id, StorePage *page, Agent **ret, size_t *ret_n);
/* Every agent of the company, for @-mentions (a company has at most a few thousand). */
int store_agents_of_company_all(Store *s, const char *company_id, Agent **ret, size_t *ret_n);
/* Agents with any queued run. */
int store_agents_with_queued_runs(Store *s, Agent **ret, size_t *ret_n);
/* Invokable agents with timer heartbeats enabled. */
int store_agents_with_timer(Store *s, Agent **ret, size_t *ret_n);
/* The agent's task session for an adapter and task key. */
int store_task_session_for_task(Store *s, const char *agent_id, const char *adapter_type, const char *task_key,
                                AgentTaskSession *ret);

/* ---- issues ---- */

/* The issue whose lock run_id holds. */
int store_issue_locked_by_run(Store *s, const char *run_id, Issue *ret);
/* Blockers of the issue that are not done (reference §1.8: dependency readiness). */
int store_issue_open_blockers_count(Store *s, const char *issue_id, int64_t *ret);
/* Issues assigned to an agent (not a user) in todo or in_progress, oldest first: what
 * stranded-issue reconciliation looks at. */
int store_issues_agent_assigned_open(Store *s, Issue **ret, size_t *ret_n);
/* Issues that done blocked, assigned to an agent, open, and now without open blockers. */
int store_issues_unblocked_by(Store *s, const char *done_id, Issue **ret, size_t *ret_n);
/* The running run an interrupt of an issue cancels: its execution run, else its assignee's
 * running run on it (either may be NULL). */
int store_run_to_interrupt(Store *s, const char *execution_run_id, const char *assignee_agent_id, const char *issue_id, Run *ret);
/* Whether issue waits, directly or through other blockers, for other. */
int store_issue_waits_for(Store *s, const char *issue_id, const char *other_id, bool *ret);
/* Comments a run wrote. */
int store_comments_by_run_count(Store *s, const char *run_id, int64_t *ret);

/* ---- what the API lists ---- */
/* One page each (store.h, StorePage); lists are newest first where they say so. */

int store_companies(Store *s, const char *only_id, StorePage *page, Company **ret, size_t *ret_n); /* only_id may be NULL: all */
int store_company_prefix_taken(Store *s, const char *prefix, bool *ret);
int store_activity_of_company(Store *s, const char *company_id, StorePage *page, Activity **ret, size_t *ret_n);
/* status and assignee_agent_id may be NULL: no filter. By issue number. */
int store_issues_of_company(Store *s, const char *company_id, const char *status, const char *assignee_agent_id, StorePage *page,
                            Issue **ret, size_t *ret_n);
int store_issue_by_identifier(Store *s, const char *identifier, Issue *ret);
/* The issues that block issue_id, by issue number. */
int store_issue_blockers(Store *s, const char *issue_id, StorePage *page, Issue **ret, size_t *ret_n);
int store_comments_of_issue(Store *s, const char *issue_id, StorePage *page, IssueComment **ret, size_t *ret_n);
/* agent_id may be NULL: every agent's. Newest first. */
int store_runs_of_company(Store *s, const char *company_id, const char *agent_id, StorePage *page, Run **ret, size_t *ret_n);
int store_runs_active_of_company(Store *s, const char *company_id, StorePage *page, Run **ret, size_t *ret_n);
int store_runs_active_for_issue(Store *s, const char *company_id, const char *issue_id, StorePage *page, Run **ret,
                                size_t *ret_n);
/* The agent's oldest running run on the issue. */
int store_run_running_of_agent_for_issue(Store *s, const char *agent_id, const char *issue_id, Run *ret);
/* Events of a run after seq after_seq, in order. */
int store_run_events_after(Store *s, const char *run_id, int64_t after_seq, size_t limit, RunEvent **ret, size_t *ret_n);
/* status may be NULL: all. Newest first. */
int store_wakeups_of_agent(Store *s, const char *agent_id, const char *status, StorePage *page, WakeupRequest **ret,
                           size_t *ret_n);
/* Newest first. */
int store_task_sessions_of_agent(Store *s, const char *agent_id, size_t limit, AgentTaskSession **ret, size_t *ret_n);
/* Delete the agent's task sessions: of one task, or all (task_key NULL). */
int store_task_sessions_delete(Store *s, const char *agent_id, const char *task_key);

/* ---- counts for health and metrics ---- */

/* Rows of an entity's table (e: company, agent or issue, for health; counts by status are
 * store_count_by_status(), one grouped query a table). */
int store_count_all(Store *s, const Entity *e, int64_t *ret);
/* Queued and running runs. */
int store_runs_active_count(Store *s, int64_t *ret);

/* ---- workspaces ---- */

/* Workspaces to remove: active (or left removing by a crash) ones whose issue is closed
 * (done, cancelled) since before closed_before, or gone, and those of no issue whose run is
 * not active any more; with kept, the kept ones of such issues and runs instead. Oldest
 * first, at most limit. */
int store_workspaces_due(Store *s, const char *closed_before, bool kept, size_t limit, Workspace **ret, size_t *ret_n);
/* A company's workspaces, newest first; status may be NULL (all). */
int store_workspaces_of_company(Store *s, const char *company_id, const char *status, StorePage *page, Workspace **ret,
                                size_t *ret_n);

/* ---- lookups (corralctl's names) ---- */

/* Records that key names, of the entity (company, agent, issue or run): its id, a prefix of
 * its id (4 characters at least), or a company's name or issue prefix, an agent's name, an
 * issue's identifier. Agents of company_id only, when it is set. At most limit, each by an
 * index but the names, which are looked up in the companies and agents tables (small ones). */
int store_lookup(Store *s, const Entity *e, const char *key, const char *company_id, size_t limit, void **ret, size_t *ret_n);
