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

/* ---- the control plane ---- */

/* An agent whose runs sleep until cancelled. */
#define SLEEPER "{\"command\":\"/bin/sleep\",\"args\":[\"30\"]}"

#include <cjson/cJSON.h>
#include "control/wakeup.h"

/* A wake as the board would send it; *ret_run_id (may be NULL) gets its run. */
WakeOutcome fixture_wake(const char *agent_id, WakeupSource source, const char *reason, const char *payload, const char *key,
                         char **ret_run_id);
/* {"issueId": ..., "commentId": ...} (comment_id may be NULL). */
char *fixture_issue_payload(const char *issue_id, const char *comment_id);
RunStatus fixture_run_status(const char *run_id);
void fixture_get_run(const char *run_id, Run *ret);
void fixture_get_issue(const char *issue_id, Issue *ret);
/* Run the loop until the run is terminal (at most 20 s). */
void fixture_wait_terminal(const char *run_id);
void fixture_cancel(const char *run_id);
void fixture_cancel_all(const char *agent_id);
void fixture_new_comment(char id[static UUID_STRING_MAX], const char *issue_id, const char *body);
cJSON *fixture_context_of(const char *run_id);
