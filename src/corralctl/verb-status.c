/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * corralctl status
 */
#include <stdio.h>

#include "client.h"
#include "corralctl.h"
#include "output.h"

int verb_status(Ctl *ctl, int argc, char *argv[]) {
        cJSON *reply = NULL;
        const cJSON *counts;
        char b[64];
        int first, r;

        first = ctl_args(ctl, NULL, "status", argc, argv, NULL, NULL, NULL, 0);
        if (first < 0)
                return -1 - first;
        r = client_call(ctl, "GET", "/api/health", NULL, &reply);
        if (r != EXIT_OK)
                return r;
        if (ctl->json)
                output_json(reply);
        else {
                counts = cJSON_GetObjectItemCaseSensitive(reply, "counts");
                printf("corrald %s is %s (pid %s, up %ss)\n", output_value(reply, "version", b, sizeof(b)),
                       output_value(reply, "status", b + 16, 16), output_value(reply, "pid", b + 32, 16),
                       output_value(reply, "uptimeSec", b + 48, 16));
                printf("   socket: %s\n", ctl->socket_path);
                printf("    state: %s (schema version %s)\n", output_value(reply, "stateDir", b, sizeof(b)),
                       output_value(reply, "schemaVersion", b + 32, 32));
                printf("placement: %s\n", output_value(reply, "placement", b, sizeof(b)));
                const cJSON *db = cJSON_GetObjectItemCaseSensitive(reply, "database");
                char d[64];
                printf(" database: %s %s\n", output_value(db, "backend", d, sizeof(d)), output_value(db, "target", b, sizeof(b)));
                printf("  holding: %s companies, %s agents, %s issues, %s active runs\n",
                       output_value(counts, "companies", b, 16), output_value(counts, "agents", b + 16, 16),
                       output_value(counts, "issues", b + 32, 16), output_value(counts, "activeRuns", b + 48, 16));
        }
        cJSON_Delete(reply);
        return EXIT_OK;
}
