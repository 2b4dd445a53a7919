/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A run's log read through another host's API (corrald(8), HOSTS: Runs of other hosts). The
 * log stays in the state directory of the host that ran the run, and the hosts share the
 * database only, so the read goes through it: the asking host writes the request in
 * log_reads and tells the run's host of it by NOTIFY ("log:ID"), in one transaction; that
 * host reads its file and writes what it read into the row, which the asker reads and
 * deletes. Between live hosts, a few milliseconds.
 */
#pragma once

#include <stdint.h>

#include "basic/time-util.h"
#include "control/control.h"
#include "store/model.h"

/* How long an asker waits for the answer before it says that the run's host did not answer:
 * within the API's own deadline (API_ANSWER_TIMEOUT_USEC). */
#define LOG_FORWARD_TIMEOUT_USEC (2 * USEC_PER_SEC)

/* Ask the run's host for up to limit bytes of the run's log from offset; the request's id
 * goes to *ret_id. */
int log_forward_ask(Control *ctl, const Run *run, int64_t offset, int64_t limit, char **ret_id);
/* The answer to request id: 1 with it in *ret (and the request forgotten), 0 while there
 * is none yet. */
int log_forward_take(Control *ctl, const char *id, LogRead *ret);
/* Forget request id: its asker gave up waiting. */
void log_forward_drop(Control *ctl, const char *id);
/* On the run's host, told of request id: read the log and write the answer. Requests of
 * other hosts' runs, and those answered or given up, are left alone. */
void log_forward_serve(Control *ctl, const char *id);
/* From the sweep: forget requests a minute old, whose askers are gone. */
void log_forward_prune(Control *ctl);
