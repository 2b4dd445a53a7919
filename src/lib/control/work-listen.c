/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "control/work-listen.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/log.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "basic/time-util.h"
#include "control/claim-pump.h"
#include "control/finalize.h"
#include "control/host.h"
#include "control/log-forward.h"
#include "store/queries.h"

/* How soon a lost listening connection is tried again. */
#define WORK_RELISTEN_USEC (2 * USEC_PER_SEC)

typedef struct WorkListen {
        sd_event_source *io, *retry;
} WorkListen;

static int listen_now(Control *ctl);

static void on_work(const char *what, void *userdata) {
        char ***told = userdata;

        /* One claim per agent however often it was told: a commit may tell of many runs.
         * "stop:RUN" asks the run's host to stop it (finalize_stop_requested()),
         * "resume:HOST" a drained host to claim again (host_resume()), and "log:ID" the host
         * of a run to read its log for another (log_forward_serve()). */
        if (!strv_contains((const char *const *) *told, what))
                (void) strv_push(told, what);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Control *ctl = userdata;

        if (listen_now(ctl) >= 0) {
                log_info("Listening for other hosts' work again.");
                (void) claim_pump_want_all(ctl);
                finalize_stop_requests(ctl);
        }
        return 0;
}

static void relisten_later(Control *ctl) {
        WorkListen *w = ctl->work_listen;
        int r;

        w->io = sd_event_source_disable_unref(w->io);
        store_work_unlisten(ctl->store);
        if (!w->retry)
                r = sd_event_add_time_relative(ctl->event, &w->retry, CLOCK_MONOTONIC, WORK_RELISTEN_USEC, 0, on_retry, ctl);
        else {
                r = sd_event_source_set_time_relative(w->retry, WORK_RELISTEN_USEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(w->retry, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                log_error_errno(r, "Cannot arm the timer to listen for other hosts' work again; the sweep finds it: %m");
}

static int on_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Control *ctl = userdata;
        _cleanup_strv_free_ char **told = NULL;
        bool all = false;
        int r;

        r = store_work_read(ctl->store, on_work, &told);
        STRV_FOREACH(w, told) {
                const char *run_id = after_prefix(*w, "stop:"), *host_id = after_prefix(*w, "resume:"),
                           *log_read = after_prefix(*w, "log:");
                if (run_id)
                        (void) finalize_stop_requested(ctl, run_id);
                else if (log_read)
                        log_forward_serve(ctl, log_read);
                else if (host_id)
                        all = all || streq(host_id, host_self_id(ctl));
                else
                        claim_pump_want(ctl, *w);
        }
        if (all)
                (void) claim_pump_want_all(ctl);
        if (r < 0) {
                log_warning_errno(r, "Lost the connection that listens for other hosts' work, listening again in %u s: %m",
                                  (unsigned) (WORK_RELISTEN_USEC / USEC_PER_SEC));
                relisten_later(ctl);
        }
        return 0;
}

static int listen_now(Control *ctl) {
        WorkListen *w = ctl->work_listen;
        int fd, r;

        r = store_work_listen(ctl->store, &fd);
        if (r >= 0)
                r = sd_event_add_io(ctl->event, &w->io, fd, EPOLLIN, on_readable, ctl);
        if (r < 0) {
                log_warning_errno(r, "Cannot listen for other hosts' work, trying again in %u s: %m",
                                  (unsigned) (WORK_RELISTEN_USEC / USEC_PER_SEC));
                relisten_later(ctl);
                return r;
        }
        (void) sd_event_source_set_description(w->io, "work-listen");
        return 0;
}

int work_listen_start(Control *ctl) {
        if (store_backend(ctl->store) != STORE_BACKEND_POSTGRESQL)
                return 0;
        ctl->work_listen = calloc(1, sizeof(WorkListen));
        if (!ctl->work_listen)
                return log_oom();
        (void) listen_now(ctl);
        return 0;
}

void work_listen_stop(Control *ctl) {
        WorkListen *w = ctl->work_listen;

        if (!w)
                return;
        sd_event_source_disable_unref(w->io);
        sd_event_source_disable_unref(w->retry);
        store_work_unlisten(ctl->store);
        free(w);
        ctl->work_listen = NULL;
}
