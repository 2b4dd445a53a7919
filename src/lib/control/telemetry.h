/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Telemetry (design §3, reference §6.5): agent.first_heartbeat and
 * agent.task_completed go to the journal as structured entries with their own
 * MESSAGE_ID, and are counted for GET /metrics. Nothing leaves the machine.
 */
#pragma once

#include <stdint.h>

#include "basic/histogram.h"
#include "store/model.h"

/* journalctl MESSAGE_ID=<id> finds every entry of an event. */
#define TELEMETRY_FIRST_HEARTBEAT_ID "bc2591c0cf4f40f289d0efe117f656ae"
#define TELEMETRY_TASK_COMPLETED_ID "57eb237f31be452c90bbb8efda5efb3b"

/* Run ends since corrald started, by what they ended as: a few statuses, adapters and error
 * codes, so a small table. */
#define TELEMETRY_RUN_END_KINDS 128

typedef struct RunEndCount {
        RunStatus status;
        AdapterType adapter;
        char error_code[32]; /* "" for none */
        uint64_t n;
} RunEndCount;

typedef struct Telemetry {
        uint64_t first_heartbeat;
        uint64_t task_completed;
        RunEndCount run_ends[TELEMETRY_RUN_END_KINDS];
        size_t n_run_ends;
        uint64_t run_ends_other; /* past the table's room */
        uint64_t log_bytes; /* of the runs that ended */
        Histogram run_duration; /* seconds, from start to end, of the runs that started */
} Telemetry;

void telemetry_init(Telemetry *t);

/* A run ended: counted by status, adapter and error code, its duration and log observed. */
void telemetry_run_ended(Telemetry *t, const Run *run, AdapterType adapter);

/* The first run of an agent ended (reference §2.4): with the agent's role. */
void telemetry_first_heartbeat(Telemetry *t, const Agent *agent);

/* An agent moved an issue to done: role, adapter type and model (adapterConfig.model). */
void telemetry_task_completed(Telemetry *t, const Agent *agent, const Issue *issue);
