/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "control/host.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/fd-util.h"
#include "basic/log.h"
#include "basic/macro.h"
#include "basic/time-util.h"
#include "basic/util.h"
#include "store/queries.h"

typedef struct HostSelf {
        char *id;
        int64_t epoch;
        char lease_expires[ISO_TIME_MAX];
        sd_event_source *timer;
} HostSelf;

/* The machine's id (/etc/machine-id), which names the host unless host-id does; without
 * one (a container), its host name. */
static int default_host_id(char **ret) {
        _cleanup_free_ char *text = NULL;
        char name[256] = "";
        size_t size;

        if (read_full_file("/etc/machine-id", 64, &text, &size) >= 0) {
                text[strcspn(text, "\n")] = 0;
                if (strlen(text) == 32) {
                        *ret = TAKE_PTR(text);
                        return 0;
                }
        }
        if (gethostname(name, sizeof(name) - 1) < 0 || isempty(name))
                return log_error_errno(-ENOENT,
                                       "This machine has neither a machine id nor a host name; set host-id in corrald.conf.");
        log_warning("No machine id in /etc/machine-id: this host is '%s', its host name; set host-id to name it for good.", name);
        *ret = strdup(name);
        return *ret ? 0 : -ENOMEM;
}

/* now and now + the lease, as ISO times. */
static int lease_times(const Control *ctl, char now[static ISO_TIME_MAX], char expires[static ISO_TIME_MAX]) {
        int64_t usec = now_usec();
        int r = iso_time_format(usec, now);
        if (r < 0)
                return r;
        return iso_time_format(usec + (int64_t) ctl->config->host_lease_sec * 1000000, expires);
}

/* Our row, with a new epoch: what it held is of an earlier start of this host. */
static int host_register(Control *ctl, HostSelf *h) {
        _cleanup_(host_donep) Host row = {};
        _cleanup_(store_rollbackp) Store *tx = NULL;
        char now[ISO_TIME_MAX], expires[ISO_TIME_MAX], name[256] = "";
        bool exists;
        int r;

        r = lease_times(ctl, now, expires);
        if (r < 0)
                return r;
        (void) gethostname(name, sizeof(name) - 1);
        r = store_begin(ctl->store);
        if (r < 0)
                return r;
        tx = ctl->store;
        r = store_get(ctl->store, &host_entity, h->id, &row);
        if (r < 0 && r != -ENOENT)
                return r;
        exists = r >= 0;
        if (!exists) {
                r = entity_init(&host_entity, &row);
                if (r < 0)
                        return r;
                if (free_and_strdup(&row.id, h->id) < 0 || free_and_strdup(&row.created_at, now) < 0)
                        return -ENOMEM;
                row.epoch = 0;
        }
        row.epoch++;
        row.status = HOST_LIVE;
        row.max_runs = ctl->config->max_runs;
        if (free_and_strdup(&row.name, isempty(name) ? h->id : name) < 0 || free_and_strdup(&row.started_at, now) < 0 ||
            free_and_strdup(&row.renewed_at, now) < 0 || free_and_strdup(&row.lease_expires_at, expires) < 0 ||
            free_and_strdup(&row.updated_at, now) < 0)
                return -ENOMEM;
        r = exists ? store_update(ctl->store, &host_entity, &row) : store_insert(ctl->store, &host_entity, &row);
        if (r < 0)
                return r;
        r = store_commit(ctl->store);
        if (r < 0)
                return r;
        tx = NULL;
        h->epoch = row.epoch;
        memcpy(h->lease_expires, expires, sizeof(h->lease_expires));
        return 0;
}

static int on_renew(sd_event_source *s, uint64_t usec, void *userdata) {
        Control *ctl = userdata;
        HostSelf *h = ctl->host;
        char now[ISO_TIME_MAX], expires[ISO_TIME_MAX];
        bool ours = true;
        int r;

        r = lease_times(ctl, now, expires);
        if (r >= 0 && h->epoch == 0) {
                /* Not recorded at start (the database could not be written): now. */
                r = host_register(ctl, h);
                if (r >= 0)
                        log_notice("Host %s recorded, epoch %" PRIi64 ".", h->id, h->epoch);
        } else if (r >= 0)
                r = store_host_renew(ctl->store, h->id, h->epoch, now, expires, &ours);
        if (r < 0)
                log_warning_errno(r, "Host %s: cannot renew its lease: %m", h->id);
        else if (!ours) {
                /* Our row has another epoch, or says dead: another start of this host id, or
                 * hosts that took us for dead. Take it again, as a new start would. */
                log_error("Host %s: its row in the database is no longer this corrald's (epoch %" PRIi64
                          "); taking it again. Two corralds with one host-id share nothing safely.",
                          h->id, h->epoch);
                r = host_register(ctl, h);
                if (r < 0)
                        log_error_errno(r, "Host %s: cannot take its row again: %m", h->id);
                else
                        log_notice("Host %s: epoch %" PRIi64 ".", h->id, h->epoch);
        } else
                memcpy(h->lease_expires, expires, sizeof(h->lease_expires));
        r = sd_event_source_set_time_relative(s, (uint64_t) ctl->config->host_lease_sec * 1000000 / 3);
        if (r >= 0)
                r = sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        if (r < 0)
                log_error_errno(r, "Failed to re-arm the host lease timer: %m");
        return 0;
}

int host_start(Control *ctl) {
        _cleanup_free_ HostSelf *h = calloc(1, sizeof(HostSelf));
        int r;

        if (!h)
                return log_oom();
        if (ctl->config->host_id)
                h->id = strdup(ctl->config->host_id);
        else if ((r = default_host_id(&h->id)) < 0)
                return r;
        if (!h->id)
                return log_oom();
        /* A database that cannot be written now (read-only, locked) does not keep corrald
         * from starting: the lease timer records the host once it can. */
        r = host_register(ctl, h);
        if (r < 0)
                log_error_errno(r, "Failed to record host %s in the database: %m; trying again every %us.", h->id,
                                ctl->config->host_lease_sec / 3);
        r = sd_event_add_time_relative(ctl->event, &h->timer, CLOCK_MONOTONIC,
                                       (uint64_t) ctl->config->host_lease_sec * 1000000 / 3, 0, on_renew, ctl);
        if (r < 0) {
                free(h->id);
                return log_error_errno(r, "Failed to arm the host lease timer: %m");
        }
        log_info("Host %s, epoch %" PRIi64 ", lease %us.", h->id, h->epoch, ctl->config->host_lease_sec);
        ctl->host = TAKE_PTR(h);
        return 0;
}

void host_stop(Control *ctl) {
        HostSelf *h = ctl->host;

        if (!h)
                return;
        sd_event_source_disable_unref(h->timer);
        free(h->id);
        free(h);
        ctl->host = NULL;
}

const char *host_self_id(const Control *ctl) {
        return ctl->host ? ctl->host->id : NULL;
}

int64_t host_self_epoch(const Control *ctl) {
        return ctl->host ? ctl->host->epoch : 0;
}

const char *host_self_lease_expires(const Control *ctl) {
        return ctl->host ? ctl->host->lease_expires : NULL;
}

int host_free_slots(Control *ctl, int64_t *ret) {
        _cleanup_(host_donep) Host row = {};
        int64_t running;
        int r;

        *ret = INT64_MAX;
        if (!ctl->host)
                return 0;
        /* The row, not a copy: a drain asked of another host's API reaches this one. */
        r = store_get(ctl->store, &host_entity, ctl->host->id, &row);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (row.status != HOST_LIVE) {
                *ret = 0;
                return 0;
        }
        if (ctl->config->max_runs == 0)
                return 0;
        r = store_runs_running_on_host_count(ctl->store, ctl->host->id, &running);
        if (r < 0)
                return r;
        *ret = MAX((int64_t) ctl->config->max_runs - running, (int64_t) 0);
        return 0;
}

int host_drain(Control *ctl, const char *host_id) {
        _cleanup_(host_donep) Host row = {};
        static const char *const columns[] = { "status", "updated_at", NULL };
        char now[ISO_TIME_MAX];
        int r;

        r = iso_time_now(now);
        if (r < 0)
                return r;
        r = store_get(ctl->store, &host_entity, host_id, &row);
        if (r < 0)
                return r;
        if (row.status != HOST_LIVE)
                return 0;
        row.status = HOST_DRAINING;
        if (free_and_strdup(&row.updated_at, now) < 0)
                return -ENOMEM;
        r = store_update_columns(ctl->store, &host_entity, &row, columns);
        if (r < 0)
                return r;
        log_notice("Host %s drains: it claims nothing new and finishes what it runs.", host_id);
        return 0;
}
