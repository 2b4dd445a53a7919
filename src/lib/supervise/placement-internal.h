/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the placement backends share with placement.c, which picks one. Only
 * placement-scope.c sees the system bus.
 */
#pragma once

#include "supervise/placement.h"

#define SCOPE_SLICE "corral.slice"
#define SCOPE_START_TIMEOUT_USEC (15 * 1000000ULL)

extern const PlacementOps cgroup_ops, none_ops, scope_ops;

/* cgroup: make sure the root exists, is a cgroup v2 directory, and enable what limits need. */
int cgroup_placement_setup_root(const char *root);

/* scope: every run is a transient unit corral-run-<runid>.scope in corral.slice (SPEC
 * §4.1), started over the system bus with its limits and a RuntimeMaxUSec that holds even
 * while corrald is down. */

/* Whether systemd is PID 1 and answers on the system bus: 1 yes, 0 no (with a reason
 * logged at debug level), or -errno. */
int scope_available(void);

/* Connect to the system bus, attach it to the event loop, and listen for the end of jobs. */
int scope_setup(Placement *p, sd_event *event);
void scope_teardown(Placement *p);

/* The run id of a scope unit name, or NULL when the name is not a run's. */
char *scope_run_id(const char *unit_name);
