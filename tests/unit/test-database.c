/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-database.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

#include "basic/util.h"

const char *test_database(void) {
        const char *target = getenv("CORRAL_TEST_DATABASE");
        PGconn *conn;
        PGresult *res;
        bool ok;

        if (!target || !*target)
                return ":memory:";
        /* Everything corral made lives in the public schema (and its functions with it). */
        conn = PQconnectdb(target);
        ok = PQstatus(conn) == CONNECTION_OK;
        if (ok) {
                res = PQexec(conn, "SET client_min_messages = warning; DROP SCHEMA public CASCADE; CREATE SCHEMA public");
                ok = PQresultStatus(res) == PGRES_COMMAND_OK;
                PQclear(res);
        }
        if (!ok) {
                fprintf(stderr, "# cannot empty %s: %s", target, PQerrorMessage(conn));
                abort();
        }
        PQfinish(conn);
        return target;
}
