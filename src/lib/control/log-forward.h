/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A run's log, read wherever it is (corrald(8), HOSTS: Runs of other hosts). The log stays
 * in the state directory of the host that ran the run, and the hosts share the database
 * only, so a read through another host goes through it: the asking host writes the request
 * in log_reads and tells the run's host of it by NOTIFY ("log:ID"), in one transaction; that
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

/* What was read of a log. */
typedef struct LogPiece {
        char *host_id; /* the host that read it, when not this one */
        char *log_ref; /* the log's path there */
        char *content; /* whole lines (runlog_read()) */
        int64_t read_bytes; /* read from the offset */
        int64_t kept_bytes; /* of those, in content */
} LogPiece;

void log_piece_done(LogPiece *p);

/* Up to limit bytes of the run's log from offset: read here, or, for a run of another live
 * host, by that host. The request to it is kept in *asked (malloc'd, NULL at the first try);
 * on -EAGAIN the caller tries again later with the same *asked and the time since its first
 * try. A dead (or gone) host's log, or one whose host did not answer within
 * LOG_FORWARD_TIMEOUT_USEC, is looked for here (hosts may share a file system). Errors:
 * -ENOENT no log (on the run's host, when that answered), -EHOSTDOWN its host is dead or
 * gone and the file is not here, -ETIMEDOUT its host did not answer and the file is not
 * here. *ret_host gets the run's host row when it is another (its id at least). */
int log_forward_read(Control *ctl, const Run *run, int64_t offset, int64_t limit, char **asked, uint64_t since_usec,
                     LogPiece *ret, Host *ret_host);
/* On the run's host, told of request id: read the log and write the answer. Requests of
 * other hosts' runs, and those answered or given up, are left alone. */
void log_forward_serve(Control *ctl, const char *id);
/* From the sweep: forget requests a minute old, whose askers are gone. */
void log_forward_prune(Control *ctl);
