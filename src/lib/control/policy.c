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

#include "basic/config.h"
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

bool policy_may_run_on(const Agent *a, const char *host_id) {
        _cleanup_json_ cJSON *rc = cJSON_Parse(a->runtime_config ?: "{}");
        const cJSON *hosts = cJSON_GetObjectItemCaseSensitive(rc, "hosts"), *h;

        /* The API refuses a list that is not one; one written around it lets the agent run
         * nowhere rather than anywhere, since it was meant to narrow. */
        if (!hosts || cJSON_IsNull(hosts))
                return true;
        cJSON_ArrayForEach (h, hosts)
                if (cJSON_IsString(h) && streq_ptr(h->valuestring, host_id))
                        return true;
        return false;
}

int policy_validate(const char *runtime_config, char **ret_error) {
        _cleanup_json_ cJSON *rc = cJSON_Parse(runtime_config ?: "{}");
        const cJSON *hosts = cJSON_GetObjectItemCaseSensitive(rc, "hosts"), *h;

        *ret_error = NULL;
        if (!hosts || cJSON_IsNull(hosts))
                return 0;
        if (!cJSON_IsArray(hosts) || cJSON_GetArraySize(hosts) < 1 || cJSON_GetArraySize(hosts) > POLICY_HOSTS_MAX) {
                *ret_error = strprintf("runtimeConfig.hosts must be a list of 1 to %d host ids, or null for any host",
                                       POLICY_HOSTS_MAX);
                return -EINVAL;
        }
        cJSON_ArrayForEach (h, hosts)
                if (!cJSON_IsString(h) || !config_host_id_is_valid(h->valuestring)) {
                        *ret_error = strprintf("runtimeConfig.hosts: a host id is 1 to %d letters, digits and ._:-",
                                               CONFIG_HOST_ID_MAX);
                        return -EINVAL;
                }
        return 0;
}
