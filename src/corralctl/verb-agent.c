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
        { "adapter", "adapterType", OPT_STRING,
          "process, claude_local, codex_local, gemini_local, pi_local or opencode_local (default process)" },
        { "config", "adapterConfig", OPT_JSON, "Adapter configuration, a JSON object" },
        { "runtime-config", "runtimeConfig", OPT_JSON, "Runtime configuration (heartbeat policy), a JSON object" },
        { "budget-cents", "budgetMonthlyCents", OPT_INT, "Monthly budget in cents (0: none)" },
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
        ExtraOpt filters[] = { { "company", "Company id (required)" }, {} };
        return ctl_company_list(ctl, "agent", "list", "agents", argc, argv, filters, NULL, agent_columns);
}

int verb_agent_create(Ctl *ctl, int argc, char *argv[]) {
        return ctl_company_create(ctl, "agent", "agents", argc, argv, agent_fields, "name");
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

int verb_agent_approve(Ctl *ctl, int argc, char *argv[]) {
        return ctl_call_on_id(ctl, "agent", "approve", argc, argv, "POST", "/api/agents", "/approve", NULL, false);
}

int verb_agent_terminate(Ctl *ctl, int argc, char *argv[]) {
        return ctl_call_on_id(ctl, "agent", "terminate", argc, argv, "POST", "/api/agents", "/terminate", NULL, false);
}

int verb_agent_state(Ctl *ctl, int argc, char *argv[]) {
        return ctl_call_on_id(ctl, "agent", "state", argc, argv, "GET", "/api/agents", "/runtime-state", NULL, false);
}

int verb_agent_reset_session(Ctl *ctl, int argc, char *argv[]) {
        return ctl_call_on_id(ctl, "agent", "reset-session", argc, argv, "POST", "/api/agents", "/runtime-state/reset-session",
                              NULL, false);
}
