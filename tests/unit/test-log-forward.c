/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A run's log read wherever it is (control/log-forward.c): here, from its file; through the
 * database from the run's own host, which answers the request (PostgreSQL only, where there
 * are several hosts); and what is said when that host is dead or does not answer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "control/host.h"
#include "control/log-forward.h"
#include "manager-fixture.h"
#include "store/queries.h"

static const char lines[] = "{\"stream\":\"stdout\",\"chunk\":\"one\\n\"}\n{\"stream\":\"stdout\",\"chunk\":\"two\\n\"}\n";

/* A running run of host_id (NULL: none) whose log is at log_path (NULL: none). */
static void new_run(char id[static UUID_STRING_MAX], const char *host_id, const char *log_path) {
        _cleanup_(run_donep) Run r = {};

        assert_int_equal(entity_init(&run_entity, &r), 0);
        assert_int_equal(record_stamp(&r.id, &r.created_at, &r.updated_at, NULL), 0);
        r.company_id = strdup(company);
        r.agent_id = strdup(agent);
        r.status = RUN_RUNNING;
        r.host_id = host_id ? strdup(host_id) : NULL;
        r.log_path = log_path ? strdup(log_path) : NULL;
        fixture_insert(&run_entity, &r);
        snprintf(id, UUID_STRING_MAX, "%s", r.id);
}

static char *new_log(const char *name) {
        char *path = strprintf("%s/%s", fixture_dir, name);
        FILE *f = fopen(path, "we");

        assert_non_null(f);
        assert_int_equal(fputs(lines, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
        return path;
}

static void new_host(const char *id, HostStatus status) {
        _cleanup_(host_donep) Host h = { .status = status };
        char now[ISO_TIME_MAX];

        fixture_now(now);
        h.id = strdup(id);
        h.name = strprintf("%s.example", id);
        h.created_at = strdup(now);
        h.updated_at = strdup(now);
        h.lease_expires_at = strdup("2999-01-01T00:00:00.000Z");
        fixture_insert(&host_entity, &h);
}

static int read_log(const char *run_id, char **asked, uint64_t since_usec, LogPiece *ret, Host *ret_host) {
        _cleanup_(run_donep) Run run = {};

        fixture_get_run(run_id, &run);
        return log_forward_read(&m->control, &run, 0, 4096, asked, since_usec, ret, ret_host);
}

/* Host self on PostgreSQL, shared with others. */
static int host_setup(void **state) {
        fixture_manager_setup(state);
        free(m->config.host_id);
        m->config.host_id = strdup("self");
        assert_int_equal(host_start(&m->control), 0);
        assert_true(host_shared(&m->control));
        return 0;
}

/* A run of this host: its file, read here. */
static void test_read_here(void **state) {
        _cleanup_free_ char *path = new_log("here.log");
        _cleanup_(log_piece_done) LogPiece p = {};
        _cleanup_(host_donep) Host h = {};
        _cleanup_free_ char *asked = NULL;
        char run[UUID_STRING_MAX], none[UUID_STRING_MAX];

        new_run(run, NULL, path);
        assert_int_equal(read_log(run, &asked, 0, &p, &h), 0);
        assert_string_equal(p.content, lines);
        assert_string_equal(p.log_ref, path);
        assert_int_equal(p.kept_bytes, strlen(lines));
        assert_null(p.host_id);
        assert_null(asked);
        log_piece_done(&p);
        new_run(none, NULL, "/nonexistent/log");
        assert_int_equal(read_log(none, &asked, 0, &p, &h), -ENOENT);
        assert_null(h.id);
}

/* A run of another live host: asked of it through the database, and its answer taken. */
static void test_asked_of_its_host(void **state) {
        _cleanup_(log_piece_done) LogPiece p = {};
        _cleanup_(host_donep) Host h = {};
        _cleanup_(log_read_donep) LogRead ask = {};
        _cleanup_free_ char *asked = NULL;
        char run[UUID_STRING_MAX];
        bool answered;

        new_host("other", HOST_LIVE);
        new_run(run, "other", "/on/other/log");
        assert_int_equal(read_log(run, &asked, 0, &p, &h), -EAGAIN);
        assert_non_null(asked);
        assert_string_equal(h.id, "other");
        entity_done(&host_entity, &h);
        assert_int_equal(read_log(run, &asked, 1000, &p, &h), -EAGAIN); /* not answered yet */
        entity_done(&host_entity, &h);

        /* The other host answers (log_forward_serve() there). */
        assert_int_equal(store_get(m->control.store, &log_read_entity, asked, &ask), 0);
        assert_string_equal(ask.host_id, "other");
        assert_string_equal(ask.asked_by, "self");
        assert_int_equal(ask.status, LOG_READ_ASKED);
        ask.status = LOG_READ_ANSWERED;
        ask.content = strdup("three\n");
        ask.log_ref = strdup("/on/other/log");
        ask.read_bytes = ask.kept_bytes = 6;
        assert_int_equal(store_log_read_answer(m->control.store, &ask, &answered), 0);
        assert_true(answered);

        assert_int_equal(read_log(run, &asked, 2000, &p, &h), 0);
        assert_string_equal(p.content, "three\n");
        assert_string_equal(p.host_id, "other");
        assert_string_equal(p.log_ref, "/on/other/log");
        assert_int_equal(p.kept_bytes, 6);
        assert_int_equal(fixture_count("log_reads", NULL, NULL), 0);
}

/* A host that does not answer in time, or is dead: the file is looked for here (a shared
 * file system), and without it the error says which. */
static void test_silent_and_dead_hosts(void **state) {
        _cleanup_free_ char *path = new_log("shared.log");
        _cleanup_(log_piece_done) LogPiece p = {};
        _cleanup_(host_donep) Host h = {};
        _cleanup_free_ char *asked = NULL;
        char silent[UUID_STRING_MAX], shared[UUID_STRING_MAX], dead[UUID_STRING_MAX], gone[UUID_STRING_MAX];

        new_host("silent", HOST_LIVE);
        new_run(silent, "silent", "/on/silent/log");
        assert_int_equal(read_log(silent, &asked, 0, &p, &h), -EAGAIN);
        entity_done(&host_entity, &h);
        assert_int_equal(read_log(silent, &asked, LOG_FORWARD_TIMEOUT_USEC, &p, &h), -ETIMEDOUT);
        assert_string_equal(h.id, "silent");
        assert_int_equal(fixture_count("log_reads", NULL, NULL), 0);
        entity_done(&host_entity, &h);
        log_piece_done(&p);

        asked = mfree(asked);
        new_run(shared, "silent", path);
        assert_int_equal(read_log(shared, &asked, 0, &p, &h), -EAGAIN);
        entity_done(&host_entity, &h);
        assert_int_equal(read_log(shared, &asked, LOG_FORWARD_TIMEOUT_USEC, &p, &h), 0);
        assert_string_equal(p.content, lines);
        assert_null(p.host_id);
        entity_done(&host_entity, &h);
        log_piece_done(&p);

        asked = mfree(asked);
        new_host("dead", HOST_DEAD);
        new_run(dead, "dead", "/on/dead/log");
        assert_int_equal(read_log(dead, &asked, 0, &p, &h), -EHOSTDOWN);
        assert_null(asked); /* nobody asked */
        assert_string_equal(h.name, "dead.example");
        entity_done(&host_entity, &h);
        log_piece_done(&p);

        new_run(gone, "gone", "/on/gone/log");
        assert_int_equal(read_log(gone, &asked, 0, &p, &h), -EHOSTDOWN);
        assert_string_equal(h.id, "gone");
        assert_null(h.name);
}

/* This host answers the requests for its runs' logs, and leaves the others' alone. */
static void test_serve(void **state) {
        _cleanup_free_ char *path = new_log("served.log");
        _cleanup_(log_read_donep) LogRead mine = {}, theirs = {}, missing = {};
        char run[UUID_STRING_MAX], lost[UUID_STRING_MAX];
        char now[ISO_TIME_MAX];

        fixture_now(now);
        new_run(run, "self", path);
        new_run(lost, "self", "/nonexistent/log");
        LogRead *asks[] = { &mine, &theirs, &missing };
        const char *runs[] = { run, run, lost }, *hosts[] = { "self", "other", "self" };
        for (size_t i = 0; i < ELEMENTSOF(asks); i++) {
                assert_int_equal(record_stamp(&asks[i]->id, &asks[i]->created_at, &asks[i]->updated_at, now), 0);
                asks[i]->run_id = strdup(runs[i]);
                asks[i]->host_id = strdup(hosts[i]);
                asks[i]->asked_by = strdup("other");
                asks[i]->offset_bytes = 0;
                asks[i]->limit_bytes = 4096;
                fixture_insert(&log_read_entity, asks[i]);
                log_forward_serve(&m->control, asks[i]->id);
                entity_done(&log_read_entity, asks[i]);
        }
        assert_int_equal(fixture_count("log_reads", "WHERE status = 'answered' AND content = ?1", lines), 1);
        assert_int_equal(fixture_count("log_reads", "WHERE status = 'asked' AND host_id = ?1", "other"), 1);
        assert_int_equal(fixture_count("log_reads", "WHERE status = 'missing' AND run_id = ?1", lost), 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, fixture_manager_setup, fixture_manager_teardown)
#define H(f) cmocka_unit_test_setup_teardown(f, host_setup, fixture_manager_teardown)
static const struct CMUnitTest tests[] = {
        T(test_read_here),
        /* From here on, PostgreSQL only: on SQLite there is no other host. */
        H(test_asked_of_its_host),
        H(test_silent_and_dead_hosts),
        H(test_serve),
};

int main(void) {
        const char *db = getenv("CORRAL_TEST_DATABASE");

        cmocka_set_message_output(CM_OUTPUT_TAP);
        return _cmocka_run_group_tests("tests", tests, db && *db ? ELEMENTSOF(tests) : 1, fixture_group_setup,
                                       fixture_group_teardown);
}
