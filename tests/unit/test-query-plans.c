/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Every named query of the store (store/queries.c) that runs per wake, per run end, per
 * sweep or per list request reads through an index: none scans a table that grows with
 * history. EXPLAIN QUERY PLAN says so for each, on the schema as the migrations make it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/strv.h"
#include "basic/util.h"
#include "store/costs.h"
#include "store/events.h"
#include "store/queries.h"
#include "test-helpers.h"

/* The tables whose rows pile up over the years. */
static const char *const growing[] = {
        "heartbeat_runs", "heartbeat_run_events", "agent_wakeup_requests", "issues",      "issue_comments", "issue_relations",
        "activity_log",   "agent_task_sessions",  "cost_events",           "cost_totals", "workspaces",     NULL,
};

static char **scans; /* "SQL: detail" of every scan of a growing table */
static char **plan; /* every line of the plans since the last expect_index() */

static void observe(const char *sql, const char *detail, void *userdata) {
        char table[64];

        assert_int_equal(strv_push(&plan, detail), 0);
        /* "SCAN t", "SCAN t USING INDEX i", "SCAN t USING COVERING INDEX i": each reads all
         * of t (or of i); "SEARCH t USING ..." does not. */
        if (sscanf(detail, "SCAN %63s", table) != 1 || !strv_contains(growing, table))
                return;
        _cleanup_free_ char *line = strprintf("%s\n    %s", sql, detail);
        assert_non_null(line);
        assert_int_equal(strv_push(&scans, line), 0);
}

static Store *open_observed(void) {
        Store *s = NULL;

        assert_int_equal(store_open(":memory:", &s), 0);
        store_set_plan_observer(s, observe, NULL);
        scans = strv_free(scans);
        return s;
}

/* A search by the index made for it: a scan is caught above, but a search by a prefix that
 * is not selective (every run of a company, say) reads history just the same. */
static void expect_index(const char *index) {
        bool found = false;

        STRV_FOREACH(l, plan)
        found = found || strstr(*l, index);
        if (!found)
                STRV_FOREACH(l, plan)
        print_message("# plan: %s\n", *l);
        assert_true(found);
        plan = strv_free(plan);
}

static void assert_no_scans(void) {
        STRV_FOREACH(l, scans)
        print_message("# scans a growing table: %s\n", *l);
        assert_int_equal(strv_length(scans), 0);
}

#define FREE(e, items, n) entity_array_free(&(e), items, n)

static void test_hot_paths_use_indexes(void **state) {
        Store *s = open_observed();
        const char *c = "c", *a = "a", *i = "i", *r = "r";
        Run run = {}, *runs;
        WakeupRequest w = {}, *wakes;
        Issue issue = {}, *issues;
        Agent *agents;
        IssueComment *comments;
        RunEvent *events;
        Activity *activity;
        AgentTaskSession ts = {}, *sessions;
        Company *companies;
        size_t n;
        int64_t count;
        bool b;
        /* Cursors as store_list_page() makes them: "t<rowid>:<text key>", "i<rowid>:<number>", in hex. */
        const char *text_cursor = "7431323a323032362d30312d30315430303a30303a30302e3030305a", *number_cursor = "6931323a37";

        /* Per wake and claim. */
        plan = strv_free(plan);
        assert_true(store_run_active_for_issue(s, c, i, &run) >= 0);
        expect_index("runs_company_issue");
        assert_true(store_run_queued_for_task(s, a, "task", &run) >= 0);
        expect_index("runs_agent_status_task");
        assert_true(store_run_queued_for_task(s, a, NULL, &run) >= 0);
        assert_true(store_runs_running_count(s, a, &count) >= 0);
        assert_true(store_runs_queued_count(s, a, &count) >= 0);
        assert_true(store_runs_queued_in_claim_order(s, a, &runs, &n) >= 0);
        FREE(run_entity, runs, n);
        plan = strv_free(plan);
        assert_true(store_wakeups_claim_running(s, a, "2026-01-01T00:00:00.000Z") >= 0);
        expect_index("sqlite_autoindex_agent_wakeup_requests_1");
        assert_true(store_wakeup_by_idempotency_key(s, a, "k", &w) >= 0);
        assert_true(store_wakeup_deferred_for_issue(s, c, a, i, &w) >= 0);
        expect_index("wakeups_agent_status_issue");
        assert_true(store_issue_open_blockers_count(s, i, &count) >= 0);
        assert_true(store_task_session_for_task(s, a, "process", "task", &ts) >= 0);
        assert_true(store_issue_waits_for(s, i, "other", &b) >= 0);
        assert_true(store_run_to_interrupt(s, r, a, i, &run) >= 0);
        assert_true(store_issues_unblocked_by(s, i, &issues, &n) >= 0);
        FREE(issue_entity, issues, n);
        /* Per run end. */
        plan = strv_free(plan);
        assert_true(store_issue_locked_by_run(s, r, &issue) >= 0);
        expect_index("issues_execution_run");
        plan = strv_free(plan);
        assert_true(store_wakeups_deferred_for_issue(s, c, i, &wakes, &n) >= 0);
        expect_index("wakeups_company_issue");
        FREE(wakeup_entity, wakes, n);
        assert_true(store_agents_queued_on_issue(s, c, i, &agents, &n) >= 0);
        FREE(agent_entity, agents, n);
        assert_true(store_comments_by_run_count(s, r, &count) >= 0);
        expect_index("issue_comments_run");
        assert_true(store_runs_active_of_agent(s, a, &runs, &n) >= 0);
        FREE(run_entity, runs, n);
        assert_int_equal(store_run_event_append(s, "missing", "lifecycle", LEVEL_INFO, "x", NULL), -ENOENT);
        /* Per sweep. */
        assert_true(store_runs_running(s, "host-1", &runs, &n) >= 0);
        FREE(run_entity, runs, n);
        /* Per claim, and per lease renewal. */
        assert_true(store_runs_running_on_host_count(s, "host-1", &count) >= 0);
        expect_index("runs_host_running");
        /* Per failover, and per return of a host from the dead. */
        assert_true(store_runs_running_on_dead_hosts(s, &runs, &n) >= 0);
        FREE(run_entity, runs, n);
        expect_index("runs_status");
        assert_true(store_runs_taken_over(s, "host-1", "2026-01-01T00:00:00.000Z", &runs, &n) >= 0);
        FREE(run_entity, runs, n);
        expect_index("runs_host_lost");
        assert_true(store_runs_stop_requested(s, "host-1", &runs, &n) >= 0);
        FREE(run_entity, runs, n);
        expect_index("runs_host_running");
        bool ours;
        assert_true(store_host_renew(s, "host-1", 1, "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:15.000Z", &ours) >= 0);
        assert_true(store_agents_with_queued_runs(s, &agents, &n) >= 0);
        FREE(agent_entity, agents, n);
        assert_true(store_issues_agent_assigned_open(s, &issues, &n) >= 0);
        FREE(issue_entity, issues, n);
        assert_true(store_runs_active_for_issue_count(s, c, i, &count) >= 0);
        assert_true(store_wakeups_deferred_for_issue_count(s, c, i, &count) >= 0);
        assert_true(store_run_latest_for_issue(s, c, i, &run) >= 0);
        assert_true(store_runs_continued_since_count(s, c, i, "2026-01-01T00:00:00.000Z", &count) >= 0);
        /* Per list request, from the start and after a cursor (keyset paging must use the
         * same index: a deep page costs what the first does). */
        for (int pass = 0; pass < 2; pass++) {
                StorePage page_text = { .limit = 200, .after = pass ? text_cursor : NULL };
                StorePage page_number = { .limit = 200, .after = pass ? number_cursor : NULL };
                /* Per list request. (GET /metrics counts by status in one grouped query a table, which
                 * reads an index whole, once a scrape: not a hot path.) */
                assert_true(store_companies(s, c, &page_text, &companies, &n) >= 0);
                FREE(company_entity, companies, n);
                assert_true(store_company_prefix_taken(s, "ACME", &b) >= 0);
                assert_true(store_activity_of_company(s, c, &page_text, &activity, &n) >= 0);
                FREE(activity_entity, activity, n);
                assert_true(store_issues_of_company(s, c, NULL, NULL, &page_number, &issues, &n) >= 0);
                FREE(issue_entity, issues, n);
                assert_true(store_issues_of_company(s, c, "todo", a, &page_number, &issues, &n) >= 0);
                FREE(issue_entity, issues, n);
                assert_true(store_issue_by_identifier(s, "ACME-1", &issue) >= 0);
                assert_true(store_issue_blockers(s, i, &page_number, &issues, &n) >= 0);
                FREE(issue_entity, issues, n);
                assert_true(store_comments_of_issue(s, i, &page_text, &comments, &n) >= 0);
                FREE(comment_entity, comments, n);
                assert_true(store_runs_of_company(s, c, NULL, &page_text, &runs, &n) >= 0);
                FREE(run_entity, runs, n);
                plan = strv_free(plan);
                assert_true(store_runs_of_company(s, c, a, &page_text, &runs, &n) >= 0);
                expect_index("runs_company_agent_created");
                FREE(run_entity, runs, n);
                assert_true(store_runs_active_of_company(s, c, &page_text, &runs, &n) >= 0);
                FREE(run_entity, runs, n);
                assert_true(store_runs_active_for_issue(s, c, i, &page_text, &runs, &n) >= 0);
                FREE(run_entity, runs, n);
                assert_true(store_run_running_of_agent_for_issue(s, a, i, &run) >= 0);
                assert_true(store_run_events_after(s, r, 0, 200, &events, &n) >= 0);
                FREE(run_event_entity, events, n);
                assert_true(store_wakeups_of_agent(s, a, NULL, &page_text, &wakes, &n) >= 0);
                FREE(wakeup_entity, wakes, n);
                assert_true(store_wakeups_of_agent(s, a, "queued", &page_text, &wakes, &n) >= 0);
                FREE(wakeup_entity, wakes, n);
                assert_true(store_task_sessions_of_agent(s, a, 200, &sessions, &n) >= 0);
                FREE(task_session_entity, sessions, n);
        }
        assert_true(store_runs_active_count(s, &count) >= 0);
        /* Per run end and wake: what a run cost, the budgets it spends from. */
        {
                CostRecord rec = { .run_id = r,
                                   .company_id = c,
                                   .agent_id = a,
                                   .month = "2026-12",
                                   .model = "m",
                                   .billing_type = "api",
                                   .price_source = "price",
                                   .now = "2026-12-01T00:00:00.000Z" };
                int64_t spent, budget, models;
                CostRow *rows;
                bool seen;

                (void) store_cost_record(s, &rec); /* no such company: its plans are made all the same */
                assert_true(store_agent_spent(s, a, "2026-12", &spent, &budget) >= -ENOENT);
                assert_true(store_company_spent(s, c, "2026-12", &spent, &budget) >= -ENOENT);
                plan = strv_free(plan);
                assert_true(store_cost_model_seen(s, a, "2026-12", "m", &seen, &models) >= 0);
                expect_index("cost_totals");
                assert_true(store_wakeups_pending_cancel(s, a, "x", "2026-12-01T00:00:00.000Z", NULL) >= 0);
                /* Per costs request. */
                plan = strv_free(plan);
                assert_true(store_costs_of_month(s, c, NULL, "2026-12", &rows, &n) >= 0);
                expect_index("cost_totals_company_month");
                cost_rows_free(rows, n);
                assert_true(store_costs_of_month(s, c, a, "2026-12", &rows, &n) >= 0);
                cost_rows_free(rows, n);
        }
        /* Per turn of the loop with subscribers, per reconnect, per sweep: the events. */
        {
                StoreEvent *ev;
                int64_t oldest, newest;

                plan = strv_free(plan);
                assert_true(store_events_after(s, 5, NULL, 500, &ev, &n) >= 0);
                store_events_free(ev, n);
                assert_true(store_events_after(s, 5, c, 500, &ev, &n) >= 0);
                expect_index("events_company");
                store_events_free(ev, n);
                assert_true(store_events_span(s, &oldest, &newest) >= 0);
                assert_true(store_events_prune(s, 100000) >= 0);
        }
        /* Per sweep and per workspace list. */
        {
                Workspace *ws;
                StorePage page = { .limit = 200 };

                plan = strv_free(plan);
                assert_true(store_workspaces_due(s, "2026-12-01T00:00:00.000Z", false, 64, &ws, &n) >= 0);
                expect_index("workspaces_status");
                FREE(workspace_entity, ws, n);
                assert_true(store_workspaces_due(s, "2026-12-01T00:00:00.000Z", true, 64, &ws, &n) >= 0);
                FREE(workspace_entity, ws, n);
                assert_true(store_workspaces_of_company(s, c, NULL, &page, &ws, &n) >= 0);
                FREE(workspace_entity, ws, n);
                assert_true(store_workspaces_of_company(s, c, "kept", &page, &ws, &n) >= 0);
                FREE(workspace_entity, ws, n);
        }

        assert_no_scans();
        plan = strv_free(plan);
        store_free(s);
}

/* The check itself can fail: a lookup by a column without an index is caught. */
static void test_a_scan_is_caught(void **state) {
        Store *s = open_observed();
        int64_t n;

        assert_int_equal(store_count(s, "heartbeat_runs", "WHERE error = ?1", (const char *const[]){ "x", NULL }, &n), 0);
        assert_int_equal(strv_length(scans), 1);
        assert_non_null(strstr(scans[0], "SCAN heartbeat_runs"));
        scans = strv_free(scans);
        store_free(s);
}

static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hot_paths_use_indexes),
        cmocka_unit_test(test_a_scan_is_caught),
};

RUN_TESTS(tests)
