/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * corralctl agent list|create|show|update|pause|resume|terminate
 */
#include <stdio.h>
#include <stdlib.h>

#include "basic/macro.h"
#include "client.h"
#include "corralctl.h"
#include "output.h"

static const FieldOpt agent_fields[] = {
        { "name", "name", OPT_STRING, "Agent name" },
        { "role", "role", OPT_STRING, "Role, e.g. engineer (default general)" },
        { "title", "title", OPT_STRING, "Title" },
        { "adapter", "adapterType", OPT_STRING, "process, claude_local or codex_local (default process)" },
        { "config", "adapterConfig", OPT_JSON, "Adapter configuration, a JSON object" },
        { "runtime-config", "runtimeConfig", OPT_JSON, "Runtime configuration (heartbeat policy), a JSON object" },
        {},
};

static const Column agent_columns[] = {
        { "ID", "id", 0 },
        { "NAME", "name", 24 },
        { "ROLE", "role", 16 },
        { "STATUS", "status", 0 },
        { "ADAPTER", "adapterType", 0 },
        { "LAST HEARTBEAT", "lastHeartbeatAt", 0 },
        {},
};

int verb_agent_list(Ctl *ctl, int argc, char *argv[]) {
        ExtraOpt extra[] = { { "company", "Company id (required)" }, {} };
        _cleanup_free_ char *company = NULL, *path = NULL;
        cJSON *reply = NULL;
        int first, r;

        first = ctl_args(ctl, "agent", "list", argc, argv, NULL, extra, NULL, 0);
        if (first < 0)
                return -1 - first;
        if (!ctl_require("agent list", extra))
                return EXIT_USAGE;
        company = client_escape(extra[0].value);
        if (!company || asprintf(&path, "/api/companies/%s/agents", company) < 0)
                return EXIT_API_ERROR;
        r = client_call(ctl, "GET", path, NULL, &reply);
        if (r == EXIT_OK)
                output_list(ctl, reply, agent_columns);
        cJSON_Delete(reply);
        return r;
}

int verb_agent_create(Ctl *ctl, int argc, char *argv[]) {
        ExtraOpt extra[] = { { "company", "Company id (required)" }, {} };
        _cleanup_free_ char *company = NULL, *path = NULL;
        cJSON *body = NULL, *reply = NULL;
        int first, r;

        first = ctl_args(ctl, "agent", "create", argc, argv, agent_fields, extra, &body, 0);
        if (first < 0)
                return -1 - first;
        if (!ctl_require("agent create", extra) || !cJSON_GetObjectItemCaseSensitive(body, "name")) {
                if (extra[0].value)
                        fprintf(stderr, "corralctl agent create: --name is required\n");
                cJSON_Delete(body);
                return EXIT_USAGE;
        }
        company = client_escape(extra[0].value);
        if (!company || asprintf(&path, "/api/companies/%s/agents", company) < 0) {
                cJSON_Delete(body);
                return EXIT_API_ERROR;
        }
        r = client_call(ctl, "POST", path, body, &reply);
        cJSON_Delete(body);
        if (r == EXIT_OK)
                output_reply(ctl, reply);
        cJSON_Delete(reply);
        return r;
}

int verb_agent_show(Ctl *ctl, int argc, char *argv[]) {
        return ctl_call_on_id(ctl, "agent", "show", argc, argv, "GET", "/api/agents", NULL, NULL, false);
}

int verb_agent_update(Ctl *ctl, int argc, char *argv[]) {
        return ctl_call_on_id(ctl, "agent", "update", argc, argv, "PATCH", "/api/agents", NULL, agent_fields, true);
}

int verb_agent_pause(Ctl *ctl, int argc, char *argv[]) {
        return ctl_call_on_id(ctl, "agent", "pause", argc, argv, "POST", "/api/agents", "/pause", NULL, false);
}

int verb_agent_resume(Ctl *ctl, int argc, char *argv[]) {
        return ctl_call_on_id(ctl, "agent", "resume", argc, argv, "POST", "/api/agents", "/resume", NULL, false);
}

int verb_agent_terminate(Ctl *ctl, int argc, char *argv[]) {
        return ctl_call_on_id(ctl, "agent", "terminate", argc, argv, "POST", "/api/agents", "/terminate", NULL, false);
}
