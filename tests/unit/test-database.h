/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The database a control-plane test opens: a private in-memory SQLite database, or,
 * when CORRAL_TEST_DATABASE names a PostgreSQL database (tests/unit/test-pg.sh sets it),
 * that database, emptied first, so that each test starts from nothing on either backend.
 */
#pragma once

const char *test_database(void);
