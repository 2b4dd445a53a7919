/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * This corrald as a host (corrald(8), HOSTS): its row in the hosts table, with a lease it
 * renews every third of host-lease-sec and an epoch that counts its starts; the runs it
 * claims carry its id, and it supervises, re-adopts and recovers only those (and the runs
 * of no host, made before hosts were recorded).
 *
 * Failover, where hosts share a PostgreSQL database: every live host declares dead the
 * hosts whose lease ran out and finalizes their runs as lost, with the one retry. A host
 * fences itself: it writes nothing and kills its runs unrecorded when it has not renewed
 * its lease for five sixths of it, or finds its row taken; then it takes its row again
 * with a new epoch and kills what is left of the runs taken from it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "control/control.h"
#include "store/model.h"

/* Take this host's row (a new epoch, status live, a fresh lease) and renew it from a timer. */
int host_start(Control *ctl);
void host_stop(Control *ctl);

/* This host's id, epoch and lease end (ISO time); NULL/0 before host_start(). */
const char *host_self_id(const Control *ctl);
int64_t host_self_epoch(const Control *ctl);
const char *host_self_lease_expires(const Control *ctl);
/* Whether this host killed its runs for its lease (see above) and has not had its row back
 * since: it recovers and claims nothing meanwhile. */
bool host_fenced(const Control *ctl);
/* Whether other hosts may share the database (PostgreSQL): each supervises its own runs, and
 * one is asked to stop them. On SQLite this corrald is the only host, and a running run of
 * another host id (the machine's changed) is its to finish. */
bool host_shared(const Control *ctl);

/* Kill what is left here of the runs others took over while this host was declared dead
 * (its row said so when it took it again), writing nothing of them; recovery does it
 * first. */
void host_recover_stale(Control *ctl);

/* How many more runs this host may start now: 0 while it drains, INT64_MAX without a
 * max-runs cap. */
int host_free_slots(Control *ctl, int64_t *ret);

/* Stop a host claiming anything new; it finishes what it runs. -ENOENT: no such host. */
int host_drain(Control *ctl, const char *host_id);
/* Let a draining host claim again, at once: it claims what is queued for it, told so when
 * it is another (store_work_tell(), "resume:HOST"). -ENOENT: no such host; -ESTALE: the
 * host is dead (it is live again when its corrald starts again). */
int host_resume(Control *ctl, const char *host_id);
