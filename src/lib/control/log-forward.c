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

int log_forward_ask(Control *ctl, const Run *run, int64_t offset, int64_t limit, char **ret_id) {
        _cleanup_(log_read_donep) LogRead ask = { .offset_bytes = offset, .limit_bytes = limit, .status = LOG_READ_ASKED };
        _cleanup_free_ char *told = NULL;
        int r;

        r = record_stamp(&ask.id, &ask.created_at, &ask.updated_at, NULL);
        if (r < 0)
                return r;
        ask.run_id = strdup(run->id);
        ask.host_id = strdup(strempty(run->host_id));
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

int log_forward_take(Control *ctl, const char *id, LogRead *ret) {
        int r;

        r = store_get(ctl->store, &log_read_entity, id, ret);
        if (r < 0)
                return r;
        if (ret->status == LOG_READ_ASKED) {
                entity_done(&log_read_entity, ret);
                *ret = (LogRead){};
                return 0;
        }
        r = store_delete(ctl->store, &log_read_entity, id);
        if (r < 0)
                log_debug_errno(r, "Log read %s: cannot delete it, the sweep does: %m", id);
        return 1;
}

void log_forward_drop(Control *ctl, const char *id) {
        int r = store_delete(ctl->store, &log_read_entity, id);
        if (r < 0 && r != -ENOENT)
                log_debug_errno(r, "Log read %s: cannot delete it, the sweep does: %m", id);
}

void log_forward_serve(Control *ctl, const char *id) {
        _cleanup_(log_read_donep) LogRead ask = {};
        _cleanup_(run_donep) Run run = {};
        char now[ISO_TIME_MAX];
        size_t n = 0, len = 0;
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
        if (r >= 0) {
                ask.log_ref = run.log_path ? strdup(run.log_path) : supervisor_log_path(ctl->supervisor, run.id);
                r = ask.log_ref ? runlog_read(ask.log_ref, ask.offset_bytes, (size_t) ask.limit_bytes, &ask.content, &n, &len)
                                : -ENOMEM;
        }
        if (r < 0 && r != -ENOENT) {
                log_warning_errno(r, "Log read %s of run %s: cannot read the log, its asker hears nothing: %m", id, ask.run_id);
                return;
        }
        if (r == -ENOENT) {
                ask.status = LOG_READ_MISSING;
                ask.log_ref = mfree(ask.log_ref);
                ask.content = mfree(ask.content);
        } else {
                ask.status = LOG_READ_ANSWERED;
                ask.read_bytes = (int64_t) n;
                ask.kept_bytes = (int64_t) len;
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
