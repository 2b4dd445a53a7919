/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Work that other hosts made (corrald(8), HOSTS): where several hosts share a PostgreSQL
 * database, each listens for the runs any host queued and the runs that ended (their
 * agent has a free slot), and claims what it can of that agent's queued runs at once,
 * rather than at its next sweep. A lost connection is made again, every few seconds until
 * it is, and then all queued work is looked at: what was told meanwhile is gone.
 */
#pragma once

#include "control/control.h"

/* Listen, if the database is shared; nothing on SQLite. */
int work_listen_start(Control *ctl);
void work_listen_stop(Control *ctl);
