/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The scope backend of placement (SPEC §4.1): every run is a transient unit
 * corral-run-<runid>.scope in corral.slice, started over the system bus with
 * StartTransientUnit, its limits and a RuntimeMaxUSec that holds even while
 * corrald is down.
 */
#pragma once

#include "supervise/placement.h"

#define SCOPE_SLICE "corral.slice"
#define SCOPE_START_TIMEOUT_USEC (15 * 1000000ULL)

extern const PlacementOps scope_ops;

/* Whether systemd is PID 1 and answers on the system bus: 1 yes, 0 no (with a reason
 * logged at debug level), or -errno. */
int scope_available(void);

/* Connect to the system bus, attach it to the event loop, and listen for the end of jobs. */
int scope_setup(Placement *p);
void scope_teardown(Placement *p);

/* Forget a start job in flight (its place is being freed). */
void scope_start_free(ScopeStart *s);

/* The run id of a scope unit name, or NULL when the name is not a run's. */
char *scope_run_id(const char *unit_name);
