/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "manager-fixture.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "control/finalize.h"
#include "control/wakeup.h"
#include "test-database.h"
#include "basic/log.h"
#include "basic/time-util.h"
#include "basic/util.h"

Manager *m;
char company[UUID_STRING_MAX], agent[UUID_STRING_MAX];
char fixture_dir[] = "/tmp/corral-test-XXXXXX";

int fixture_group_setup(void **state) {
        log_set_max_level(LOG_ERR);
        return mkdtemp(fixture_dir) ? 0 : -1;
}

int fixture_group_teardown(void **state) {
        _cleanup_free_ char *cmd = strprintf("rm -rf '%s'", fixture_dir);
        return system(cmd) == 0 ? 0 : -1;
}

void fixture_now(char buf[static ISO_TIME_MAX]) {
        assert_int_equal(iso_time_now(buf), 0);
}

void fixture_insert(const Entity *e, void *obj) {
        assert_int_equal(store_insert(m->control.store, e, obj), 0);
}

int64_t fixture_count(const char *table, const char *clause, const char *arg) {
        int64_t n;
        assert_int_equal(store_count(m->control.store, table, clause, (const char *const[]){ arg, NULL }, &n), 0);
        return n;
}

void fixture_set_agent_status(const char *agent_id, AgentStatus s) {
        _cleanup_(agent_donep) Agent a = {};
        assert_int_equal(store_get(m->control.store, &agent_entity, agent_id, &a), 0);
        a.status = s;
        assert_int_equal(store_update(m->control.store, &agent_entity, &a), 0);
}

void fixture_new_agent(char id[static UUID_STRING_MAX], const char *name, const char *adapter_config,
                       const char *runtime_config) {
        _cleanup_(agent_donep) Agent a = {};

        assert_int_equal(entity_init(&agent_entity, &a), 0);
        assert_int_equal(record_stamp(&a.id, &a.created_at, &a.updated_at, NULL), 0);
        snprintf(id, UUID_STRING_MAX, "%s", a.id);
        a.company_id = strdup(company);
        a.name = strdup(name);
        free(a.role);
        a.role = strdup("engineer");
        free(a.adapter_config);
        a.adapter_config = strdup(adapter_config ?: "{\"command\":\"/bin/true\"}");
        if (runtime_config) {
                free(a.runtime_config);
                a.runtime_config = strdup(runtime_config);
        }
        fixture_insert(&agent_entity, &a);
}

void fixture_new_issue(char id[static UUID_STRING_MAX], IssueStatus status, const char *assignee_agent_id) {
        _cleanup_(issue_donep) Issue i = {};
        static int number = 0;

        assert_int_equal(entity_init(&issue_entity, &i), 0);
        assert_int_equal(record_stamp(&i.id, &i.created_at, &i.updated_at, NULL), 0);
        snprintf(id, UUID_STRING_MAX, "%s", i.id);
        i.company_id = strdup(company);
        i.title = strdup("fixture issue");
        i.status = status;
        if (assignee_agent_id)
                i.assignee_agent_id = strdup(assignee_agent_id);
        else
                i.assignee_user_id = strdup("user-1");
        i.issue_number = ++number;
        i.identifier = strprintf("T-%d", number);
        fixture_insert(&issue_entity, &i);
}

int fixture_manager_setup(void **state) {
        _cleanup_(company_donep) Company c = {};
        _cleanup_free_ char *shim = NULL;
        const char *builddir = getenv("CORRAL_BUILDDIR");

        assert_int_equal(manager_new(&m), 0);
        assert_int_equal(sd_event_new(&m->control.event), 0);
        assert_int_equal(store_open(test_database(), &m->control.store), 0);
        assert_int_equal(placement_new(PLACEMENT_NONE, NULL, m->control.event, &m->control.placement), 0);
        shim = strprintf("%s/corral-shim", builddir ?: ".");
        SupervisorConfig sc = { .state_dir = fixture_dir, .shim_path = shim };
        assert_int_equal(supervisor_new(m->control.event, m->control.store, m->control.placement, &sc, finalize_run_finished,
                                        &m->control, &m->control.supervisor),
                         0);
        m->socket_path_effective = strdup("/nonexistent/corrald.sock");
        m->control.agent_socket_path = strdup("/nonexistent/agent.sock");
        /* Agents run as the test does, with their homes in the fixture's directory. */
        SandboxSettings ss = { .state_dir = fixture_dir,
                               .operator_socket = m->socket_path_effective,
                               .agent_socket = m->control.agent_socket_path,
                               .config_dir = "/nonexistent" };
        assert_int_equal(sandbox_new(&ss, &m->control.sandbox), 0);

        assert_int_equal(entity_init(&company_entity, &c), 0);
        assert_int_equal(record_stamp(&c.id, &c.created_at, &c.updated_at, NULL), 0);
        snprintf(company, sizeof(company), "%s", c.id);
        c.name = strdup("Fixture");
        /* An issue prefix of letters only, unique per company. */
        c.issue_prefix = strprintf("F%.6s", company);
        for (char *p = c.issue_prefix; *p; p++)
                *p = *p >= 'a' && *p <= 'z' ? (char) (*p - 32) : *p >= '0' && *p <= '9' ? (char) ('A' + *p - '0') : *p;
        fixture_insert(&company_entity, &c);
        fixture_new_agent(agent, "worker", NULL, NULL);
        return 0;
}

void fixture_drain(void) {
        for (int i = 0; i < 400 && supervisor_count(m->control.supervisor) > 0; i++)
                assert_true(sd_event_run(m->control.event, 50000) >= 0);
        assert_int_equal(supervisor_count(m->control.supervisor), 0);
}

int fixture_manager_teardown(void **state) {
        fixture_drain();
        m = manager_free(m);
        return 0;
}

/* ---- the control plane ---- */

WakeOutcome fixture_wake(const char *agent_id, WakeupSource source, const char *reason, const char *payload, const char *key,
                         char **ret_run_id) {
        WakeRequest req = { .source = source,
                            .trigger_detail = -1,
                            .reason = reason,
                            .payload_json = payload,
                            .idempotency_key = key,
                            .actor_type = ACTOR_USER,
                            .actor_id = "board" };
        _cleanup_free_ char *run_id = NULL, *skip = NULL;
        WakeOutcome o;

        assert_int_equal(wakeup_request(&m->control, agent_id, &req, &o, &run_id, &skip), 0);
        if (ret_run_id)
                *ret_run_id = TAKE_PTR(run_id);
        return o;
}

char *fixture_issue_payload(const char *issue_id, const char *comment_id) {
        return comment_id ? strprintf("{\"issueId\":\"%s\",\"commentId\":\"%s\"}", issue_id, comment_id)
                          : strprintf("{\"issueId\":\"%s\"}", issue_id);
}

RunStatus fixture_run_status(const char *run_id) {
        _cleanup_(run_donep) Run r = {};
        assert_int_equal(store_get(m->control.store, &run_entity, run_id, &r), 0);
        return r.status;
}

void fixture_get_run(const char *run_id, Run *ret) {
        assert_int_equal(store_get(m->control.store, &run_entity, run_id, ret), 0);
}

void fixture_get_issue(const char *issue_id, Issue *ret) {
        assert_int_equal(store_get(m->control.store, &issue_entity, issue_id, ret), 0);
}

/* Run the loop until the run is terminal (at most 20 s). */
void fixture_wait_terminal(const char *run_id) {
        for (int i = 0; i < 400 && !run_status_is_terminal(fixture_run_status(run_id)); i++)
                assert_true(sd_event_run(m->control.event, 50000) >= 0);
        assert_true(run_status_is_terminal(fixture_run_status(run_id)));
}

void fixture_cancel(const char *run_id) {
        assert_int_equal(finalize_cancel_run(&m->control, run_id), 0);
        fixture_wait_terminal(run_id);
}

void fixture_cancel_all(const char *agent_id) {
        assert_int_equal(finalize_cancel_agent_runs(&m->control, agent_id, RUN_END_CANCELLED), 0);
        fixture_drain();
}

void fixture_new_comment(char id[UUID_STRING_MAX], const char *issue_id, const char *body) {
        _cleanup_(comment_donep) IssueComment c = {};
        assert_int_equal(record_stamp(&c.id, &c.created_at, &c.updated_at, NULL), 0);
        snprintf(id, UUID_STRING_MAX, "%s", c.id);
        c.company_id = strdup(company);
        c.issue_id = strdup(issue_id);
        c.author_user_id = strdup("user-1");
        c.body = strdup(body);
        fixture_insert(&comment_entity, &c);
}

cJSON *fixture_context_of(const char *run_id) {
        _cleanup_(run_donep) Run r = {};
        fixture_get_run(run_id, &r);
        return cJSON_Parse(r.context_snapshot);
}
