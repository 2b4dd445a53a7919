/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The recovery scenarios of the reference's heartbeat-process-recovery suite,
 * against the library on an in-memory store: runs left running by an earlier
 * corrald (alive, dead, retried once), the detached warning, first-heartbeat
 * telemetry, cancel metadata, and stranded-issue reconciliation.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/strv.h"
#include "basic/util.h"
#include "supervise/cgroup.h"
#include "control/claim-pump.h"
#include "control/claim.h"
#include "control/run-recovery.h"
#include "basic/log.h"
#include "daemon/manager.h"
#include "store/model.h"
#include "control/stranded.h"
#include "control/finalize.h"
#include "manager-fixture.h"
#include "basic/time-util.h"
#include "basic/fd-util.h"

/* The current boot, which runs left by an earlier corrald of this boot carry. */
static const char *boot_id(void) {
        static char id[64];
        _cleanup_free_ char *text = NULL;

        if (!id[0]) {
                assert_int_equal(read_full_file("/proc/sys/kernel/random/boot_id", 128, &text, NULL), 0);
                snprintf(id, sizeof(id), "%s", strstrip(text));
        }
        return id;
}

static void new_issue(char id[static UUID_STRING_MAX], IssueStatus status, bool user_assigned) {
        fixture_new_issue(id, status, user_assigned ? NULL : agent);
}

static void set_agent_status(AgentStatus s) {
        fixture_set_agent_status(agent, s);
}

/* A run of the agent on an issue (may be NULL), with its claimed wakeup. */
static void new_run(char id[static UUID_STRING_MAX], RunStatus status, const char *issue_id, const char *retry_reason,
                    const char *error_code, const char *error) {
        _cleanup_(run_donep) Run r = {};
        _cleanup_(wakeup_donep) WakeupRequest w = {};
        char t[ISO_TIME_MAX];

        fixture_now(t);
        uuid_new(id);
        assert_int_equal(entity_init(&wakeup_entity, &w), 0);
        w.id = malloc(UUID_STRING_MAX);
        uuid_new(w.id);
        w.company_id = strdup(company);
        w.agent_id = strdup(agent);
        w.status = status == RUN_RUNNING ? WAKEUP_CLAIMED : WAKEUP_FAILED;
        w.run_id = NULL;
        w.requested_at = strdup(t);
        w.created_at = strdup(t);
        w.updated_at = strdup(t);
        fixture_insert(&wakeup_entity, &w);

        assert_int_equal(entity_init(&run_entity, &r), 0);
        r.id = strdup(id);
        r.company_id = strdup(company);
        r.agent_id = strdup(agent);
        r.status = status;
        r.wakeup_request_id = strdup(w.id);
        free(r.context_snapshot);
        if (issue_id && retry_reason)
                r.context_snapshot = strprintf("{\"issueId\":\"%s\",\"retryReason\":\"%s\"}", issue_id, retry_reason);
        else if (issue_id)
                r.context_snapshot = strprintf("{\"issueId\":\"%s\"}", issue_id);
        else
                r.context_snapshot = strdup("{}");
        r.error_code = error_code ? strdup(error_code) : NULL;
        r.error = error ? strdup(error) : NULL;
        r.boot_id = strdup(boot_id());
        r.started_at = strdup(t);
        r.created_at = strdup(t);
        r.updated_at = strdup(t);
        fixture_insert(&run_entity, &r);
}

static void get_run(const char *id, Run *ret) {
        assert_int_equal(store_get(m->control.store, &run_entity, id, ret), 0);
}

/* Make the run's shim this (live or dead) process. */
static void set_shim(const char *run_id, pid_t pid, uint64_t ticks, int64_t retry_count) {
        _cleanup_(run_donep) Run r = {};
        get_run(run_id, &r);
        r.shim_pid = pid;
        r.process_pid = pid;
        r.process_group_id = pid;
        r.shim_start_ticks = (int64_t) ticks;
        r.process_loss_retry_count = retry_count;
        assert_int_equal(store_update(m->control.store, &run_entity, &r), 0);
}

static uint64_t start_ticks(pid_t pid) {
        _cleanup_free_ char *path = strprintf("/proc/%d/stat", (int) pid), *text = NULL;
        assert_int_equal(read_full_file(path, 4096, &text, NULL), 0);
        char *p = strrchr(text, ')');
        for (int f = 2; f < 22; f++)
                p = strchr(p + 1, ' ');
        return strtoull(p + 1, NULL, 10);
}

static void lock_issue(const char *issue_id, const char *run_id) {
        _cleanup_(issue_donep) Issue i = {};
        assert_int_equal(store_get(m->control.store, &issue_entity, issue_id, &i), 0);
        i.execution_run_id = strdup(run_id);
        i.checkout_run_id = strdup(run_id);
        i.execution_agent_id = strdup(agent);
        assert_int_equal(store_update(m->control.store, &issue_entity, &i), 0);
}

static void test_alive_pid_detached(void **state) {
        char run[UUID_STRING_MAX];
        _cleanup_(run_donep) Run r = {};
        pid_t child = fork();

        if (child == 0) {
                execl("/bin/sleep", "sleep", "30", NULL);
                _exit(1);
        }
        /* The shim stand-in is the process of its start ticks once it has exec'd. */
        _cleanup_free_ char *comm_path = strprintf("/proc/%d/comm", (int) child);
        for (int i = 0; i < 500; i++) {
                _cleanup_free_ char *comm = NULL;
                if (read_full_file(comm_path, 64, &comm, NULL) >= 0 && startswith(comm, "sleep"))
                        break;
                usleep(10000);
        }
        new_run(run, RUN_RUNNING, NULL, NULL, NULL, NULL);
        set_shim(run, child, start_ticks(child), 0);

        assert_int_equal(run_recovery_adopt(&m->control), 1);
        get_run(run, &r);
        assert_int_equal(r.status, RUN_RUNNING);
        assert_string_equal(r.error_code, "process_detached");
        char pid_text[16];
        snprintf(pid_text, sizeof(pid_text), "%d", (int) child);
        assert_non_null(strstr(r.error, pid_text));
        assert_int_equal(fixture_count("agent_wakeup_requests",
                                       "WHERE id = (SELECT wakeup_request_id FROM heartbeat_runs WHERE id = ?1) "
                                       "AND status = 'claimed'",
                                       run),
                         1);

        /* Activity clears the warning (reportRunActivity). */
        supervisor_report_activity(m->control.supervisor, run);
        entity_done(&run_entity, &r);
        get_run(run, &r);
        assert_null(r.error_code);
        assert_null(r.error);

        /* The process ends: the run is finished for real (and, having no status file, lost). */
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        fixture_drain();
        entity_done(&run_entity, &r);
        get_run(run, &r);
        assert_int_equal(r.status, RUN_FAILED);
        fixture_drain();
}

static pid_t dead_pid(void) {
        pid_t child = fork();
        if (child == 0)
                _exit(0);
        waitpid(child, NULL, 0);
        return child;
}

static void test_dead_pid_one_retry(void **state) {
        char run[UUID_STRING_MAX], issue[UUID_STRING_MAX];
        _cleanup_(run_donep) Run r = {}, retry = {};
        _cleanup_(issue_donep) Issue i = {};
        void *items;
        size_t n;

        set_agent_status(AGENT_PAUSED); /* as in the reference's fixture: the retry stays queued */
        new_issue(issue, ISSUE_IN_PROGRESS, false);
        new_run(run, RUN_RUNNING, issue, NULL, NULL, NULL);
        set_shim(run, dead_pid(), 1, 0);
        lock_issue(issue, run);

        run_recovery_adopt(&m->control);
        fixture_drain();
        get_run(run, &r);
        assert_int_equal(r.status, RUN_FAILED);
        assert_string_equal(r.error_code, "process_lost");
        assert_non_null(strstr(r.error, "Process lost"));
        assert_non_null(strstr(r.result_json, "\"stopReason\":\"process_lost\""));
        assert_non_null(strstr(r.result_json, "\"timeoutFired\":false"));

        assert_int_equal(store_list(m->control.store, &run_entity, "WHERE agent_id = ?1", (const char *const[]){ agent, NULL }, 0,
                                    &items, &n),
                         0);
        assert_int_equal(n, 2);
        entity_array_free(&run_entity, items, n);
        assert_int_equal(store_list(m->control.store, &run_entity, "WHERE retry_of_run_id = ?1",
                                    (const char *const[]){ run, NULL }, 0, &items, &n),
                         0);
        assert_int_equal(n, 1);
        memcpy(&retry, items, sizeof(Run));
        free(items);
        assert_int_equal(retry.status, RUN_QUEUED);
        assert_int_equal(retry.process_loss_retry_count, 1);
        assert_non_null(strstr(retry.context_snapshot, "\"retryReason\":\"process_lost\""));

        assert_int_equal(store_get(m->control.store, &issue_entity, issue, &i), 0);
        assert_string_equal(i.execution_run_id, retry.id);
        assert_string_equal(i.checkout_run_id, run);
}

/* The manager with the cgroup backend instead of none, below a cgroup of this test's own;
 * NULL where this machine offers no cgroup v2 hierarchy to root. */
static char *use_cgroup_backend(void) {
        _cleanup_free_ char *base = NULL, *shim = NULL;
        char *root;

        if (geteuid() != 0 || placement_default_cgroup_root(&base) < 0)
                return NULL;
        root = strprintf("%s-test-%d", base, (int) getpid());
        assert_non_null(root);
        m->control.supervisor = supervisor_free(m->control.supervisor);
        m->control.placement = placement_free(m->control.placement);
        if (placement_new(PLACEMENT_CGROUP, root, m->control.event, &m->control.placement) < 0) {
                free(root);
                return NULL;
        }
        shim = strprintf("%s/corral-shim", getenv("CORRAL_BUILDDIR") ?: ".");
        SupervisorConfig sc = { .state_dir = fixture_dir, .shim_path = shim };
        assert_int_equal(supervisor_new(m->control.event, m->control.store, m->control.placement, &sc, finalize_run_finished,
                                        &m->control, &m->control.supervisor),
                         0);
        return root;
}

/* Seed scenario: shim and agent are gone but a descendant lives on in the run's cgroup. It
 * is killed through the cgroup, the run is lost with an error naming it, one retry queued. */
static void test_orphaned_descendant_killed(void **state) {
        _cleanup_free_ char *root = use_cgroup_backend(), *cgroup = NULL, *procs = NULL, *pid_text = NULL;
        char run[UUID_STRING_MAX], issue[UUID_STRING_MAX];
        _cleanup_(run_donep) Run r = {};
        int status;

        if (!root)
                skip(); /* needs root and a cgroup v2 hierarchy: CI has both */
        set_agent_status(AGENT_PAUSED); /* the retry stays queued */
        new_issue(issue, ISSUE_IN_PROGRESS, false);
        new_run(run, RUN_RUNNING, issue, NULL, NULL, NULL);
        set_shim(run, dead_pid(), 1, 0);
        lock_issue(issue, run);

        /* The descendant: a process in the run's cgroup that outlived shim and agent. */
        cgroup = strprintf("%s/run-%s", root, run);
        assert_int_equal(cgroup_create(cgroup), 0);
        pid_t descendant = fork();
        if (descendant == 0) {
                execl("/bin/sleep", "sleep", "300", NULL);
                _exit(127);
        }
        pid_text = strprintf("%d", (int) descendant);
        assert_int_equal(cgroup_write(cgroup, "cgroup.procs", pid_text), 0);
        {
                _cleanup_(run_donep) Run row = {};
                get_run(run, &row);
                row.cgroup_path = strdup(cgroup);
                assert_int_equal(store_update(m->control.store, &run_entity, &row), 0);
        }

        run_recovery_adopt(&m->control);
        fixture_drain();
        assert_int_equal(waitpid(descendant, &status, 0), descendant);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        assert_int_equal(access(cgroup, F_OK), -1); /* the run's cgroup is gone */

        get_run(run, &r);
        assert_int_equal(r.status, RUN_FAILED);
        assert_string_equal(r.error_code, "process_lost");
        assert_non_null(strstr(r.error, "1 descendant process of the run was still alive in its cgroup and was killed"));
        assert_non_null(strstr(r.error, "retrying once"));
        assert_int_equal(fixture_count("heartbeat_runs", "WHERE retry_of_run_id = ?1 AND status = 'queued'", run), 1);
        (void) cgroup_remove(root);
}

/* corrald died after creating a run's cgroup but before recording it in the row: the
 * recovery finds the cgroup by the run's id and removes it, so nothing leaks. */
static void test_unrecorded_cgroup_removed(void **state) {
        _cleanup_free_ char *root = use_cgroup_backend(), *cgroup = NULL;
        char run[UUID_STRING_MAX];
        _cleanup_(run_donep) Run r = {};

        if (!root)
                skip(); /* needs root and a cgroup v2 hierarchy: CI has both */
        set_agent_status(AGENT_PAUSED);
        new_run(run, RUN_RUNNING, NULL, NULL, NULL, NULL);
        cgroup = strprintf("%s/run-%s", root, run);
        assert_int_equal(cgroup_create(cgroup), 0);

        run_recovery_adopt(&m->control);
        fixture_drain();
        get_run(run, &r);
        assert_int_equal(r.status, RUN_FAILED);
        assert_string_equal(r.error_code, "process_lost");
        assert_int_equal(access(cgroup, F_OK), -1);
        (void) cgroup_remove(root);
}

static void test_no_second_retry(void **state) {
        char run[UUID_STRING_MAX], issue[UUID_STRING_MAX];
        _cleanup_(issue_donep) Issue i = {};

        set_agent_status(AGENT_PAUSED);
        new_issue(issue, ISSUE_IN_PROGRESS, false);
        new_run(run, RUN_RUNNING, issue, NULL, NULL, NULL);
        set_shim(run, dead_pid(), 1, 1);
        lock_issue(issue, run);

        run_recovery_adopt(&m->control);
        fixture_drain();
        assert_int_equal(fixture_count("heartbeat_runs", "WHERE agent_id = ?1", agent), 1);
        assert_int_equal(
                fixture_count("heartbeat_runs", "WHERE id = ?1 AND status = 'failed' AND error_code = 'process_lost'", run), 1);
        assert_int_equal(store_get(m->control.store, &issue_entity, issue, &i), 0);
        assert_null(i.execution_run_id);
        assert_string_equal(i.checkout_run_id, run);
}

static void test_cancel_first_heartbeat(void **state) {
        char run[UUID_STRING_MAX];
        _cleanup_(run_donep) Run r = {};
        uint64_t before = m->control.telemetry.first_heartbeat;

        set_agent_status(AGENT_PAUSED); /* keeps the queued run from starting */
        new_run(run, RUN_QUEUED, NULL, NULL, NULL, NULL);
        set_agent_status(AGENT_IDLE);
        assert_int_equal(finalize_cancel_run(&m->control, run), 0);
        get_run(run, &r);
        assert_int_equal(r.status, RUN_CANCELLED);
        assert_string_equal(r.error_code, "cancelled");
        assert_non_null(strstr(r.result_json, "\"stopReason\":\"cancelled\""));
        assert_non_null(strstr(r.result_json, "\"timeoutFired\":false"));
        assert_int_equal(m->control.telemetry.first_heartbeat, before + 1);
        _cleanup_(agent_donep) Agent a = {};
        assert_int_equal(store_get(m->control.store, &agent_entity, agent, &a), 0);
        assert_non_null(a.last_heartbeat_at);
        assert_int_equal(finalize_cancel_run(&m->control, run), -ESTALE); /* a terminal run stays as it is */
}

static void reconcile(StrandedCounters *c) {
        assert_int_equal(stranded_reconcile(&m->control, c), 0);
}

static const char *retry_reason_of_newest(char buf[static 64]) {
        void *items;
        size_t n;
        assert_int_equal(store_list(m->control.store, &run_entity, "WHERE agent_id = ?1 ORDER BY created_at DESC, rowid DESC",
                                    (const char *const[]){ agent, NULL }, 1, &items, &n),
                         0);
        assert_int_equal(n, 1);
        const char *p = strstr(((Run *) items)->context_snapshot, "\"retryReason\":\"");
        snprintf(buf, 64, "%.*s", p ? (int) strcspn(p + 15, "\"") : 0, p ? p + 15 : "");
        entity_array_free(&run_entity, items, n);
        return buf;
}

static void test_stranded_todo_requeued(void **state) {
        _cleanup_(stranded_counters_done) StrandedCounters c = {};
        char issue[UUID_STRING_MAX], run[UUID_STRING_MAX], buf[64];

        new_issue(issue, ISSUE_TODO, false);
        new_run(run, RUN_FAILED, issue, NULL, "process_lost", "lost");
        reconcile(&c);
        assert_int_equal(c.dispatch_requeued, 1);
        assert_int_equal(c.continuation_requeued, 0);
        assert_int_equal(c.escalated, 0);
        assert_int_equal(strv_length(c.issue_ids), 1);
        assert_string_equal(c.issue_ids[0], issue);
        assert_int_equal(fixture_count("heartbeat_runs", "WHERE agent_id = ?1", agent), 2);
        assert_string_equal(retry_reason_of_newest(buf), "assignment_recovery");
        fixture_drain();
}

static void test_stranded_todo_escalated(void **state) {
        _cleanup_(stranded_counters_done) StrandedCounters c = {};
        _cleanup_(issue_donep) Issue i = {};
        char issue[UUID_STRING_MAX], run[UUID_STRING_MAX];
        void *items;
        size_t n;

        new_issue(issue, ISSUE_TODO, false);
        new_run(run, RUN_FAILED, issue, "assignment_recovery", "process_lost", "run failed before issue advanced");
        reconcile(&c);
        assert_int_equal(c.dispatch_requeued, 0);
        assert_int_equal(c.escalated, 1);
        assert_string_equal(c.issue_ids[0], issue);
        assert_int_equal(store_get(m->control.store, &issue_entity, issue, &i), 0);
        assert_int_equal(i.status, ISSUE_BLOCKED);
        assert_int_equal(store_list(m->control.store, &comment_entity, "WHERE issue_id = ?1",
                                    (const char *const[]){ issue, NULL }, 0, &items, &n),
                         0);
        assert_int_equal(n, 1);
        const char *body = ((IssueComment *) items)->body;
        assert_non_null(strstr(body, "retried dispatch"));
        assert_non_null(strstr(body, "Latest retry failure: `process_lost` - run failed before issue advanced."));
        entity_array_free(&comment_entity, items, n);
}

static void test_stranded_in_progress_requeued(void **state) {
        _cleanup_(stranded_counters_done) StrandedCounters c = {};
        char issue[UUID_STRING_MAX], run[UUID_STRING_MAX], buf[64];

        new_issue(issue, ISSUE_IN_PROGRESS, false);
        new_run(run, RUN_FAILED, issue, NULL, "process_lost", "lost");
        reconcile(&c);
        assert_int_equal(c.dispatch_requeued, 0);
        assert_int_equal(c.continuation_requeued, 1);
        assert_int_equal(c.escalated, 0);
        assert_int_equal(fixture_count("heartbeat_runs", "WHERE agent_id = ?1", agent), 2);
        assert_string_equal(retry_reason_of_newest(buf), "issue_continuation_needed");
        fixture_drain();
}

static void test_stranded_in_progress_escalated(void **state) {
        _cleanup_(stranded_counters_done) StrandedCounters c = {};
        _cleanup_(issue_donep) Issue i = {};
        char issue[UUID_STRING_MAX], run[UUID_STRING_MAX];

        new_issue(issue, ISSUE_IN_PROGRESS, false);
        new_run(run, RUN_FAILED, issue, "issue_continuation_needed", "process_lost", "lost");
        reconcile(&c);
        assert_int_equal(c.continuation_requeued, 0);
        assert_int_equal(c.escalated, 1);
        assert_int_equal(store_get(m->control.store, &issue_entity, issue, &i), 0);
        assert_int_equal(i.status, ISSUE_BLOCKED);
        assert_int_equal(fixture_count("issue_comments", "WHERE issue_id = ?1 AND body LIKE '%retried continuation%'", issue), 1);
}

static void test_stranded_untouched(void **state) {
        _cleanup_(stranded_counters_done) StrandedCounters c = {};
        _cleanup_(issue_donep) Issue u = {};
        char user[UUID_STRING_MAX], never[UUID_STRING_MAX], busy[UUID_STRING_MAX], run[UUID_STRING_MAX], live[UUID_STRING_MAX];

        new_issue(user, ISSUE_TODO, true);
        new_run(run, RUN_FAILED, user, NULL, "process_lost", "lost");
        new_issue(never, ISSUE_IN_PROGRESS, false); /* no run, no checkout: seeded work that never ran */
        new_issue(busy, ISSUE_TODO, false);
        set_agent_status(AGENT_PAUSED);
        new_run(live, RUN_QUEUED, busy, NULL, NULL, NULL); /* a live execution path */
        set_agent_status(AGENT_IDLE);
        int64_t runs = fixture_count("heartbeat_runs", "WHERE agent_id = ?1", agent);

        reconcile(&c);
        assert_int_equal(c.dispatch_requeued + c.continuation_requeued + c.escalated, 0);
        assert_true(c.skipped >= 2);
        assert_int_equal(fixture_count("heartbeat_runs", "WHERE agent_id = ?1", agent), runs);
        assert_int_equal(store_get(m->control.store, &issue_entity, user, &u), 0);
        assert_int_equal(u.status, ISSUE_TODO);
        claim_start_next(&m->control, agent);
        fixture_drain();
}

static void test_failure_line(void **state) {
        _cleanup_free_ char *a = stranded_failure_line("process_lost", "run failed before issue advanced"),
                            *b = stranded_failure_line("timeout", NULL),
                            *c = stranded_failure_line(NULL, "\n\nfirst line\nsecond"),
                            *d = stranded_failure_line("x", "{\"message\":\"from json\",\"code\":1}"),
                            *e = stranded_failure_line(NULL, NULL);
        char long_text[400];

        assert_string_equal(a, " Latest retry failure: `process_lost` - run failed before issue advanced.");
        assert_string_equal(b, " Latest retry failure: `timeout`.");
        assert_string_equal(c, " Latest retry failure: first line.");
        assert_string_equal(d, " Latest retry failure: `x` - from json.");
        assert_string_equal(e, "");
        memset(long_text, 'a', sizeof(long_text) - 1);
        long_text[sizeof(long_text) - 1] = 0;
        _cleanup_free_ char *f = stranded_failure_line(NULL, long_text);
        assert_int_equal(strlen(f), strlen(" Latest retry failure: ") + 240 + 1);
        assert_non_null(strstr(f, "aaa....")); /* cut to 237 characters and "..." */
}

#define T(f) cmocka_unit_test_setup_teardown(f, fixture_manager_setup, fixture_manager_teardown)
static const struct CMUnitTest tests[] = {
        T(test_alive_pid_detached),
        T(test_dead_pid_one_retry),
        T(test_orphaned_descendant_killed),
        T(test_unrecorded_cgroup_removed),
        T(test_no_second_retry),
        T(test_cancel_first_heartbeat),
        T(test_stranded_todo_requeued),
        T(test_stranded_todo_escalated),
        T(test_stranded_in_progress_requeued),
        T(test_stranded_in_progress_escalated),
        T(test_stranded_untouched),
        cmocka_unit_test(test_failure_line),
};

int main(void) {
        cmocka_set_message_output(CM_OUTPUT_TAP);
        return cmocka_run_group_tests(tests, fixture_group_setup, fixture_group_teardown);
}
