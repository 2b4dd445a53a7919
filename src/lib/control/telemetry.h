/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Telemetry (design §3, reference §6.5): agent.first_heartbeat and
 * agent.task_completed go to the journal as structured entries with their own
 * MESSAGE_ID, and are counted for GET /metrics. Nothing leaves the machine.
 */
#pragma once

#include <stdint.h>

#include "store/model.h"

/* journalctl MESSAGE_ID=<id> finds every entry of an event. */
#define TELEMETRY_FIRST_HEARTBEAT_ID "bc2591c0cf4f40f289d0efe117f656ae"
#define TELEMETRY_TASK_COMPLETED_ID "57eb237f31be452c90bbb8efda5efb3b"

typedef struct Telemetry {
        uint64_t first_heartbeat;
        uint64_t task_completed;
} Telemetry;

/* The first run of an agent ended (reference §2.4): with the agent's role. */
void telemetry_first_heartbeat(Telemetry *t, const Agent *agent);

/* An agent moved an issue to done: role, adapter type and model (adapterConfig.model). */
void telemetry_task_completed(Telemetry *t, const Agent *agent, const Issue *issue);
