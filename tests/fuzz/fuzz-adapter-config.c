/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Adapter configuration and launch building: the first byte picks the adapter, the rest is
 * the agent's adapterConfig (as the store holds it), with runtimeConfig and a wake context
 * fixed; adapter_build_launch() must refuse or build, never crash.
 */
#include "fuzz.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/adapter.h"
#include "store/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const AdapterType types[] = { ADAPTER_PROCESS, ADAPTER_CLAUDE_LOCAL, ADAPTER_CODEX_LOCAL };
        char *secrets[] = { (char *) "TOKEN", (char *) "s3cret", NULL };
        Agent agent = {};
        Run run = {};
        AdapterLaunch launch = {};
        char *error = NULL;

        if (size < 1)
                return 0;
        agent.id = (char *) "00000000-0000-4000-8000-000000000001";
        agent.company_id = (char *) "00000000-0000-4000-8000-000000000002";
        agent.name = (char *) "fuzz";
        agent.adapter_type = types[data[0] % 3];
        agent.adapter_config = strndup((const char *) data + 1, size - 1);
        if (!agent.adapter_config)
                return 0;
        run.id = (char *) "00000000-0000-4000-8000-000000000003";
        run.agent_id = agent.id;
        run.company_id = agent.company_id;
        run.context_snapshot = (char *) "{\"issueId\":\"00000000-0000-4000-8000-000000000004\",\"wakeReason\":\"fuzz\"}";
        run.session_id_before = data[0] & 4 ? (char *) "session-1" : NULL;
        if (adapter_build_launch(&agent, &run, "/run/corral/agent.sock", "/var/lib/corral/home", secrets, &launch, &error) >= 0)
                adapter_launch_done(&launch);
        free(error);
        free(agent.adapter_config);
        return 0;
}
