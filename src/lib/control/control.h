/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the control plane works with: the loop, the configuration, the store, the
 * placement and supervisor that runs go through, the sandbox. The daemon creates and
 * frees each of them; control and API modules get this narrow view instead of the whole
 * Manager, so that nothing below the daemon depends on it (docs/design.md, "Layers").
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "basic/config.h"
#include "control/telemetry.h"
#include "store/store.h"
#include "supervise/placement.h"
#include "supervise/sandbox.h"
#include "supervise/supervisor.h"

typedef struct Scheduler Scheduler;

typedef struct Control {
        sd_event *event;
        const Config *config;
        Store *store;
        Placement *placement;
        Supervisor *supervisor;
        Sandbox *sandbox; /* NULL when agents run unsandboxed (sandbox = no) */
        Scheduler *scheduler;
        struct Quota *quota; /* what agents asked for this minute (control/quota.h) */
        Telemetry telemetry;
        char *agent_socket_path; /* CORRAL_SOCKET of every run */
        char *shim_path; /* corral-shim, which also removes workspaces */

        /* Workspace removals under way: workspace.c's alone. */
        struct WorkspaceRemoval *removals;
        unsigned n_removals;
        char **prune_queue; /* keys a prune is to remove still, each tried once */

        /* Runs whose spend is followed while they stream: budget.c's alone. */
        struct EventHub *events; /* the subscribers of GET /api/events: api-events.c's alone */
        struct Hashmap *live_spend; /* run id -> LiveSpend */
        struct LiveSpend *live_spend_list; /* the same, to free them */
        struct Hashmap *live_totals; /* agent or company id -> LiveTotal: what their live runs spent */

        /* Run ends not recorded yet, tried again from a timer: finalize.c's alone. */
        struct PendingEnd *pending_ends;
        sd_event_source *pending_source;

        /* This corrald among the hosts sharing the database: host.c's alone. */
        struct HostSelf *host;
        struct WorkListen *work_listen; /* work other hosts made: work-listen.c's alone */
        struct ClaimPump *claim_pump; /* claims asked for in bulk: claim-pump.c's alone */

        /* What the daemon says of itself in GET /api/health. */
        int64_t started_usec;
        bool socket_activated;
} Control;
