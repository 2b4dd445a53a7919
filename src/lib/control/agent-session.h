/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Session resume per task (reference §1.3, §1.4, §6.7): a coding CLI's session id
 * is kept per agent and task key, so the next run on the same task resumes the
 * conversation, and the tokens and cost of every run are added to the agent's
 * runtime state.
 */
#pragma once

#include "store/model.h"
#include "store/store.h"

/* Task key of a wake without a task (reference §1.4). */
#define AGENT_SESSION_HEARTBEAT_TASK "__heartbeat__"

/* The session a run with this context resumes, or NULL in *ret for a fresh one (an
 * assignment or execution-review wake, or forceFreshSession). */
int agent_session_resume_id(Store *s, const Agent *agent, const char *context_json, char **ret);

/* After a run ended: remember its session for its task, and in the runtime state rs (in
 * memory; the caller writes it) the session, the run and its usage. */
/* The running totals the session had reached before run, for a CLI that reports those
 * (codex): from the task's session when run continued it, else 0. */
int agent_session_prior_totals(Store *s, const Agent *agent, const Run *run, const char *session_id, int64_t *ret_input,
                               int64_t *ret_cached, int64_t *ret_output);

int agent_session_record(Store *s, const Agent *agent, const Run *run, AgentRuntimeState *rs, const char *now);
