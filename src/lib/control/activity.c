/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Activity rows.
 */
#include "control/activity.h"

#include <errno.h>
#include <stdlib.h>

#include "basic/macro.h"
#include "store/jsonmap.h"

int activity_record(Store *s, const char *company_id, ActorType actor_type, const char *actor_id, const char *action,
                    const char *entity_type, const char *entity_id, const char *agent_id, const char *run_id, cJSON *details) {
        _cleanup_json_ cJSON *d = details;
        _cleanup_(activity_donep) Activity a = {};
        int r;

        r = entity_init(&activity_entity, &a);
        if (r < 0)
                return r;
        r = record_stamp(&a.id, &a.created_at, NULL, NULL);
        if (r < 0)
                return r;
        a.actor_type = actor_type;
        if (d) {
                free(a.details);
                a.details = cJSON_PrintUnformatted(d);
        }
        if (!a.details || free_and_strdup(&a.company_id, company_id) < 0 || free_and_strdup(&a.actor_id, actor_id) < 0 ||
            free_and_strdup(&a.action, action) < 0 || free_and_strdup(&a.entity_type, entity_type) < 0 ||
            free_and_strdup(&a.entity_id, entity_id) < 0 || free_and_strdup(&a.agent_id, agent_id) < 0 ||
            free_and_strdup(&a.run_id, run_id) < 0)
                return -ENOMEM;
        return store_insert(s, &activity_entity, &a);
}

int activity_record_by(Store *s, const Actor *actor, const char *company_id, const char *action, const char *entity_type,
                       const char *entity_id, const char *agent_id, cJSON *details) {
        return activity_record(s, company_id, actor->type, actor->id, action, entity_type, entity_id, agent_id, NULL, details);
}
