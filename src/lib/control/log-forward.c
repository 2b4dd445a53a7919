/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "control/log-forward.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/log.h"
#include "basic/macro.h"
#include "basic/util.h"
#include "control/host.h"
#include "store/queries.h"
#include "supervise/runlog.h"
#include "supervise/supervisor.h"

/* How old a request is forgotten at the sweep: its asker waited LOG_FORWARD_TIMEOUT_USEC. */
#define LOG_FORWARD_KEEP_SEC 60

void log_piece_done(LogPiece *p) {
        free(p->host_id);
        free(p->log_ref);
        free(p->content);
        *p = (LogPiece){};
}

/* Ask the run's host for the read: the request's id goes to *ret_id. */
static int ask_its_host(Control *ctl, const Run *run, int64_t offset, int64_t limit, char **ret_id) {
        _cleanup_(log_read_donep) LogRead ask = { .offset_bytes = offset, .limit_bytes = limit, .status = LOG_READ_ASKED };
        _cleanup_free_ char *told = NULL;
        int r;

        r = record_stamp(&ask.id, &ask.created_at, &ask.updated_at, NULL);
        if (r < 0)
                return r;
        ask.run_id = strdup(run->id);
        ask.host_id = strdup(run->host_id);
        ask.asked_by = strdup(strempty(host_self_id(ctl)));
        told = strprintf("log:%s", ask.id);
        if (!ask.run_id || !ask.host_id || !ask.asked_by || !told)
                return -ENOMEM;
        /* The row and the notification together: the host is told of a row it can read. */
        _cleanup_(store_rollbackp) Store *tx = NULL;
        r = store_begin(ctl->store);
        if (r < 0)
                return r;
        tx = ctl->store;
        r = store_insert(ctl->store, &log_read_entity, &ask);
        if (r >= 0)
                r = store_work_tell(ctl->store, told);
        if (r >= 0)
                r = store_commit(ctl->store);
        if (r < 0)
                return r;
        tx = NULL;
        *ret_id = TAKE_PTR(ask.id);
        return 0;
}

static void forget(Control *ctl, const char *id) {
        int r = store_delete(ctl->store, &log_read_entity, id);
        if (r < 0 && r != -ENOENT)
                log_debug_errno(r, "Log read %s: cannot delete it, the sweep does: %m", id);
}

/* The answer to request id: 1 with it in *ret (and the request forgotten), 0 while there is
 * none yet. */
static int take(Control *ctl, const char *id, LogRead *ret) {
        int r;

        r = store_get(ctl->store, &log_read_entity, id, ret);
        if (r < 0)
                return r;
        if (ret->status == LOG_READ_ASKED) {
                entity_done(&log_read_entity, ret);
                *ret = (LogRead){};
                return 0;
        }
        forget(ctl, id);
        return 1;
}

/* The log read here, from the file the run's row names (or this host's own path of it). */
static int read_here(Control *ctl, const Run *run, int64_t offset, int64_t limit, LogPiece *ret) {
        size_t n, len;
        int r;

        ret->log_ref = run->log_path ? strdup(run->log_path) : supervisor_log_path(ctl->supervisor, run->id);
        if (!ret->log_ref)
                return -ENOMEM;
        r = runlog_read(ret->log_ref, offset, (size_t) limit, &ret->content, &n, &len);
        if (r < 0)
                return r;
        ret->read_bytes = (int64_t) n;
        ret->kept_bytes = (int64_t) len;
        return 0;
}

int log_forward_read(Control *ctl, const Run *run, int64_t offset, int64_t limit, char **asked, uint64_t since_usec,
                     LogPiece *ret, Host *ret_host) {
        _cleanup_(log_read_donep) LogRead answer = {};
        bool silent = false;
        int r;

        *ret = (LogPiece){};
        if (!host_shared(ctl) || !run->host_id || streq(run->host_id, host_self_id(ctl)))
                return read_here(ctl, run, offset, limit, ret);

        r = store_get(ctl->store, &host_entity, run->host_id, ret_host);
        if (r == -ENOENT)
                r = free_and_strdup(&ret_host->id, run->host_id);
        if (r < 0)
                return r;
        if (ret_host->name && ret_host->status != HOST_DEAD) {
                if (!*asked) {
                        r = ask_its_host(ctl, run, offset, limit, asked);
                        return r < 0 ? r : -EAGAIN;
                }
                r = take(ctl, *asked, &answer);
                if (r < 0)
                        return r;
                if (r > 0) {
                        if (answer.status == LOG_READ_MISSING)
                                return -ENOENT;
                        ret->host_id = TAKE_PTR(answer.host_id);
                        ret->log_ref = TAKE_PTR(answer.log_ref);
                        ret->content = TAKE_PTR(answer.content);
                        ret->read_bytes = answer.read_bytes;
                        ret->kept_bytes = answer.kept_bytes;
                        return 0;
                }
                if (since_usec < LOG_FORWARD_TIMEOUT_USEC)
                        return -EAGAIN;
                forget(ctl, *asked);
                silent = true;
        }
        /* Its host cannot read it for this one: the file may be here all the same. */
        r = read_here(ctl, run, offset, limit, ret);
        if (r == -ENOENT)
                return silent ? -ETIMEDOUT : -EHOSTDOWN;
        return r;
}

void log_forward_serve(Control *ctl, const char *id) {
        _cleanup_(log_read_donep) LogRead ask = {};
        _cleanup_(log_piece_done) LogPiece piece = {};
        _cleanup_(run_donep) Run run = {};
        char now[ISO_TIME_MAX];
        bool answered;
        int r;

        r = store_get(ctl->store, &log_read_entity, id, &ask);
        if (r == -ENOENT)
                return; /* given up already */
        if (r < 0) {
                log_warning_errno(r, "Log read %s: cannot read the request, its asker hears nothing: %m", id);
                return;
        }
        if (ask.status != LOG_READ_ASKED || !streq_ptr(ask.host_id, host_self_id(ctl)))
                return;
        r = store_get(ctl->store, &run_entity, ask.run_id, &run);
        if (r >= 0)
                r = read_here(ctl, &run, ask.offset_bytes, ask.limit_bytes, &piece);
        if (r < 0 && r != -ENOENT) {
                log_warning_errno(r, "Log read %s of run %s: cannot read the log, its asker hears nothing: %m", id, ask.run_id);
                return;
        }
        ask.status = r == -ENOENT ? LOG_READ_MISSING : LOG_READ_ANSWERED;
        if (r >= 0) {
                ask.content = TAKE_PTR(piece.content);
                ask.log_ref = TAKE_PTR(piece.log_ref);
                ask.read_bytes = piece.read_bytes;
                ask.kept_bytes = piece.kept_bytes;
        }
        if (iso_time_now(now) < 0 || free_and_strdup(&ask.updated_at, now) < 0)
                return;
        r = store_log_read_answer(ctl->store, &ask, &answered);
        if (r < 0)
                log_warning_errno(r, "Log read %s of run %s: cannot write the answer, its asker hears nothing: %m", id,
                                  ask.run_id);
}

void log_forward_prune(Control *ctl) {
        char before[ISO_TIME_MAX];
        int r;

        if (iso_time_format(now_usec() - LOG_FORWARD_KEEP_SEC * (int64_t) USEC_PER_SEC, before) < 0)
                return;
        r = store_log_reads_prune(ctl->store, before);
        if (r < 0)
                log_debug_errno(r, "Cannot forget old log reads, the next sweep does: %m");
}
