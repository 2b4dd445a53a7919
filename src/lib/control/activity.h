/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The activity log: who did what to which record (reference §1.10).
 */
#pragma once

#include <cjson/cJSON.h>

#include "basic/util.h"
#include "store/model.h"
#include "store/store.h"

/* Who acts: a process inside a run's cgroup acts as that run's agent (design §7); any other
 * peer the operator socket lets in is the board, recorded with its uid; corrald itself is
 * the system. */
typedef struct Actor {
        ActorType type;
        char id[UUID_STRING_MAX + 8]; /* an agent id, "uid:N", "board" or "heartbeat" */
        const char *run_id; /* an agent's: the run it acts in */
} Actor;

/* Insert one activity row; details (may be NULL) is consumed. Call inside the transaction
 * of the change it records. */
int activity_record(Store *s, const char *company_id, ActorType actor_type, const char *actor_id, const char *action,
                    const char *entity_type, const char *entity_id, const char *agent_id, const char *run_id, cJSON *details);

/* The same, by an actor. */
int activity_record_by(Store *s, const Actor *actor, const char *company_id, const char *action, const char *entity_type,
                       const char *entity_id, const char *agent_id, cJSON *details);
