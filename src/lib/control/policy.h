/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An agent's heartbeat policy: runtimeConfig.heartbeat with the reference's defaults (§7). */
#pragma once

#include <stdbool.h>

#include "store/model.h"

#define POLICY_MAX_CONCURRENT_DEFAULT 1
#define POLICY_MAX_CONCURRENT_MAX 10

typedef struct HeartbeatPolicy {
        bool enabled; /* timer wakes */
        bool wake_on_demand; /* every other wake */
        int max_concurrent; /* running runs at once, 1..POLICY_MAX_CONCURRENT_MAX */
} HeartbeatPolicy;

/* Malformed or missing settings take their defaults. */
HeartbeatPolicy policy_heartbeat(const Agent *a);

#define POLICY_HOSTS_MAX 64

/* runtimeConfig.hosts, the ids of the hosts an agent may run on (its repository lives
 * there): the host claims its runs only if it is one of them, or if there is no list. */
bool policy_may_run_on(const Agent *a, const char *host_id);
/* Whether runtimeConfig (JSON text) is one corrald understands; 0, or -EINVAL with the reason. */
int policy_validate(const char *runtime_config, char **ret_error);
