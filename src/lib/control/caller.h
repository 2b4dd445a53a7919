/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Who is calling on the agent socket: the run whose live process is the peer, found from
 * the peer's cgroup (never from anything the peer says), and whether that run still runs.
 */
#pragma once

#include "control/control.h"

/* The run whose live process is the peer of the connected socket fd, from its cgroup or
 * scope, or NULL: a peer that is gone or outside every run's cgroup. It reads only what is
 * fixed when corrald starts, so the HTTP thread calls it as a connection is accepted. */
int control_peer_run(Control *ctl, int fd, char **ret_run_id);
/* Is run_id a run this corrald tracks, still running? Then its id, agent and company (each
 * NULL otherwise): a cgroup that only looks like a run's, or a leftover of a finished run,
 * speaks for nobody. Such a request counts as activity of the run. */
int control_identify_caller(Control *ctl, const char *run_id, char **ret_run_id, char **ret_agent_id, char **ret_company_id);
