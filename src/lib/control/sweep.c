/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "control/sweep.h"

#include "basic/log.h"
#include "control/budget.h"
#include "control/finalize.h"
#include "control/host.h"
#include "control/log-forward.h"
#include "control/workspace.h"
#include "store/events.h"
#include "control/run-recovery.h"
#include "control/stranded.h"

int control_sweep(Control *ctl, StrandedCounters *ret) {
        StrandedCounters c = {};
        int recovered, r;

        /* A new month lifts the pauses of budgets spent in the last one. */
        r = budget_sweep(ctl);
        if (r < 0)
                log_warning_errno(r, "Failed to lift budget pauses, trying again at the next sweep: %m");
        /* Workspaces of issues closed for long enough go. */
        (void) workspace_sweep(ctl, false);
        /* The live events kept for clients that reconnect are bounded. */
        r = store_events_prune(ctl->store, EVENTS_KEPT);
        if (r < 0)
                log_warning_errno(r, "Failed to forget old events, ignoring: %m");
        /* Reads of a log asked of another host whose askers gave up (crashed, say). */
        if (host_shared(ctl))
                log_forward_prune(ctl);
        /* In the reference's order (§7): lost runs first, then queued work, then issues left without either. */
        recovered = run_recovery_adopt(ctl);
        if (recovered < 0)
                return recovered;
        /* Stops asked through other hosts that NOTIFY did not bring (a lost connection). */
        finalize_stop_requests(ctl);
        r = stranded_reconcile(ctl, &c);
        if (r < 0)
                return log_error_errno(r, "Failed to reconcile stranded issues: %m");
        if (ret)
                *ret = c;
        else
                stranded_counters_done(&c);
        return recovered;
}
