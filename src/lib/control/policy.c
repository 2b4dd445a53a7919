/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An agent's heartbeat policy (runtimeConfig.heartbeat), with the reference's defaults.
 */
#include "control/policy.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/log.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "basic/time-util.h"
#include "basic/util.h"
#include "store/jsonmap.h"
#include "store/queries.h"

HeartbeatPolicy policy_heartbeat(const Agent *a) {
        HeartbeatPolicy p = { .enabled = false, .wake_on_demand = true, .max_concurrent = POLICY_MAX_CONCURRENT_DEFAULT };
        _cleanup_json_ cJSON *rc = cJSON_Parse(a->runtime_config ?: "{}");
        const cJSON *hb = cJSON_GetObjectItemCaseSensitive(rc, "heartbeat"), *v;

        if (!cJSON_IsObject(hb))
                return p;
        v = cJSON_GetObjectItemCaseSensitive(hb, "enabled");
        if (cJSON_IsBool(v))
                p.enabled = cJSON_IsTrue(v);
        v = cJSON_GetObjectItemCaseSensitive(hb, "wakeOnDemand");
        if (cJSON_IsBool(v))
                p.wake_on_demand = cJSON_IsTrue(v);
        v = cJSON_GetObjectItemCaseSensitive(hb, "maxConcurrentRuns");
        if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
                double d = floor(v->valuedouble);
                p.max_concurrent = d < 1 ? 1 : d > POLICY_MAX_CONCURRENT_MAX ? POLICY_MAX_CONCURRENT_MAX : (int) d;
        }
        return p;
}
