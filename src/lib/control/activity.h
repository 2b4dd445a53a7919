/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The activity log: who did what to which record (reference §1.10).
 */
#pragma once

#include <cjson/cJSON.h>

#include "store/model.h"
#include "store/store.h"

/* Insert one activity row; details (may be NULL) is consumed. Call inside the transaction
 * of the change it records. */
int activity_record(Store *s, const char *company_id, ActorType actor_type, const char *actor_id, const char *action,
                    const char *entity_type, const char *entity_id, const char *agent_id, const char *run_id, cJSON *details);
