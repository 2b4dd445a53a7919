/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Names for people (corralctl(1), NAMES): what a user types for a company, agent, issue or
 * run (a name, an identifier, a prefix of an id) resolved by corrald's GET /api/lookup; and
 * the ids of tables shown as the names they stand for.
 */
#pragma once

#include <cjson/cJSON.h>

#include "corralctl.h"
#include "output.h"

/* The id arg names, escaped for a URL: a whole id as it is (no request), else the one record
 * the lookup finds ("company", "agent", "issue", "run"; agents of company_id only, when it
 * is set). NULL after saying why (none, several: the candidates), with *ret_exit set. */
char *names_resolve(Ctl *ctl, const char *kind, const char *arg, const char *company_id, int *ret_exit);

/* Replace, in every row, the ids of the columns that have a kind with what they name (an
 * agent's name, an issue's identifier), each looked up once; an id that cannot be is kept. */
void names_label(Ctl *ctl, cJSON *rows, const Column *columns);

/* The label cache, freed at exit. */
void names_done(void);
