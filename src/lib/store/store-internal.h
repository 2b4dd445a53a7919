/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The store's own helpers, shared by store.c (the connection, migrations, transactions,
 * records by their entity) and store-agent.c (the statements that no entity describes).
 * Only the store layer sees sqlite3.
 */
#pragma once

#include <sqlite3.h>

#include "store/store.h"

/* A prepared statement, cached in the store by its SQL text; reset after each use. */
int store_prepare(Store *s, const char *sql, sqlite3_stmt **ret);
void stmt_resetp(sqlite3_stmt **stmt);
#define _cleanup_reset_ _cleanup_(stmt_resetp)

/* An SQLite result code as -errno, logged with what the statement was about. */
int store_error(Store *s, int rc, const char *what);
