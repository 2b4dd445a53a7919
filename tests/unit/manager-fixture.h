/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A daemon's state for library tests: a Manager with an event loop, an
 * in-memory store, the `none` placement and a real supervisor launching the
 * built corral-shim, plus a fresh company and agent ("worker", role engineer,
 * process adapter running /bin/true) for every test.
 */
#pragma once

#include "basic/util.h"
#include "daemon/manager.h"
#include "store/model.h"
#include "test-helpers.h"
#include "basic/time-util.h"

extern Manager *m;
extern char company[UUID_STRING_MAX], agent[UUID_STRING_MAX];
extern char fixture_dir[]; /* runs/<id>/ of the supervisor live below */

/* Group setup and teardown: the state directory. */
int fixture_group_setup(void **state);
int fixture_group_teardown(void **state);

/* Per test: the manager, the company and the agent; teardown drains the loop first. */
int fixture_manager_setup(void **state);
int fixture_manager_teardown(void **state);

/* Run the loop until no run is supervised (test runs finish quickly). */
void fixture_drain(void);

void fixture_now(char buf[static ISO_TIME_MAX]);
void fixture_insert(const Entity *e, void *obj);
int64_t fixture_count(const char *table, const char *clause, const char *arg);
void fixture_set_agent_status(const char *agent_id, AgentStatus s);

/* Another agent of the company; adapter_config and runtime_config may be NULL. */
void fixture_new_agent(char id[static UUID_STRING_MAX], const char *name, const char *adapter_config, const char *runtime_config);

/* An issue assigned to assignee_agent_id, or to a user when that is NULL. */
void fixture_new_issue(char id[static UUID_STRING_MAX], IssueStatus status, const char *assignee_agent_id);
