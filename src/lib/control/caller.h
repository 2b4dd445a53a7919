/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Who is calling on the agent socket: the run whose live process is the peer, found from
 * the peer's cgroup (never from anything the peer says), and whether that run still runs.
 */
#pragma once

#include "control/control.h"

/* The run whose live process is the peer of the connected socket fd (tracked by this
 * corrald, in its cgroup or scope), or NULL: a peer that is gone, outside every run, or in
 * a cgroup that only looks like a run's. */
int control_identify_peer(Control *ctl, int fd, char **ret_run_id);
/* Is run_id still running? Then its id, agent and company (each NULL otherwise). Such a
 * request counts as activity of the run. */
int control_identify_caller(Control *ctl, const char *run_id, char **ret_run_id, char **ret_agent_id, char **ret_company_id);
