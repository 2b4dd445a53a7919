/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the board does to an agent as a whole (reference §6.2): pause it (its runs are
 * cancelled), resume it (its queued work starts), terminate it for good, approve one that
 * requireBoardApprovalForNewAgents left pending (its queued work starts).
 */
#pragma once

#include "control/activity.h"
#include "control/control.h"
#include "store/model.h"

typedef enum AgentAction {
        AGENT_ACTION_PAUSE,
        AGENT_ACTION_RESUME,
        AGENT_ACTION_TERMINATE,
        AGENT_ACTION_APPROVE, /* pending_approval -> idle: the board lets a new agent work */
        _AGENT_ACTION_MAX,
} AgentAction;

/* Apply action, with its activity, in one transaction; then cancel or start runs. -EBUSY
 * (with *ret_error) when the action does not apply to the agent's status. *ret gets the
 * agent as it now is. */
int agent_state_apply(Control *ctl, const Actor *actor, const char *agent_id, AgentAction action, Agent *ret, char **ret_error);
