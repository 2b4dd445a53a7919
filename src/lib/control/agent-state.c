/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pausing, resuming and terminating agents. */
#include "control/agent-state.h"

#include <assert.h>
#include <errno.h>

#include "basic/macro.h"
#include "basic/time-util.h"
#include "basic/util.h"
#include "control/claim-pump.h"
#include "control/finalize.h"
#include "control/scheduler.h"
#include "store/jsonmap.h"

int agent_state_apply(Control *ctl, const Actor *actor, const char *agent_id, AgentAction action, Agent *ret, char **ret_error) {
        static const char *const action_names[_AGENT_ACTION_MAX] = { "agent.paused", "agent.resumed", "agent.terminated",
                                                                     "agent.approved" };
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(agent_donep) Agent a = {};
        char now[ISO_TIME_MAX];
        int r;

        assert(action >= 0 && action < _AGENT_ACTION_MAX);
        r = iso_time_now(now);
        if (r < 0)
                return r;
        r = store_begin(ctl->store);
        if (r < 0)
                return r;
        tx = ctl->store;
        r = store_get(ctl->store, &agent_entity, agent_id, &a);
        if (r < 0)
                return r;
        switch (action) {
        case AGENT_ACTION_PAUSE:
                if (a.status == AGENT_TERMINATED)
                        return set_error(ret_error, -EBUSY, "agent is terminated and cannot be paused");
                if (a.status != AGENT_PAUSED) {
                        agent_set_status(&a, AGENT_PAUSED);
                        a.pause_reason = PAUSE_MANUAL;
                        r = free_and_strdup(&a.paused_at, now);
                }
                break;
        case AGENT_ACTION_RESUME:
                if (a.status != AGENT_PAUSED)
                        return set_error(ret_error, -EBUSY, "agent is not paused (status %s)", agent_status_to_string(a.status));
                agent_set_status(&a, AGENT_IDLE);
                a.pause_reason = -1;
                r = free_and_strdup(&a.paused_at, NULL);
                break;
        case AGENT_ACTION_APPROVE:
                if (a.status != AGENT_PENDING_APPROVAL)
                        return set_error(ret_error, -EBUSY, "agent is not pending approval (status %s)",
                                         agent_status_to_string(a.status));
                agent_set_status(&a, AGENT_IDLE);
                break;
        default:
                agent_set_status(&a, AGENT_TERMINATED);
                break;
        }
        if (r < 0)
                return r;
        r = free_and_strdup(&a.updated_at, now);
        if (r < 0)
                return r;
        r = store_update(ctl->store, &agent_entity, &a);
        if (r < 0)
                return r;
        r = activity_record_by(ctl->store, actor, a.company_id, action_names[action], "agent", a.id, a.id, NULL);
        if (r < 0)
                return r;
        r = store_commit(ctl->store);
        if (r < 0)
                return r;
        tx = NULL;

        /* A paused or terminated agent keeps nothing running (reference §6.2); a resumed or
         * approved one starts what waited for it. */
        if (action == AGENT_ACTION_PAUSE || action == AGENT_ACTION_TERMINATE)
                (void) finalize_cancel_agent_runs(ctl, a.id, RUN_END_CANCELLED);
        else {
                claim_start_next(ctl, a.id);
                scheduler_reschedule(ctl->scheduler);
        }
        *ret = a;
        a = (Agent){};
        return 0;
}
