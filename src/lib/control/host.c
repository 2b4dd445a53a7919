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
#include "control/budget.h"
#include "control/claim-pump.h"
#include "control/finalize.h"
#include "control/run-recovery.h"
#include "store/queries.h"
#include "supervise/supervisor.h"

typedef struct HostSelf {
        char *id;
        int64_t epoch;
        char lease_expires[ISO_TIME_MAX];
        /* Several hosts may share the database (PostgreSQL): writes are fenced by the lease. */
        bool shared;
        /* CLOCK_MONOTONIC at the start of the last renewal that held: the lease runs from there. */
        uint64_t renewed_mono;
        /* Its runs were killed unrecorded (host_fence()): recovery takes up what is left once
         * the host knows its row again. */
        bool fenced;
        /* Its row said dead when it took it: others took its runs over since then (ISO time),
         * and what is left of them here is to be killed (host_recover_stale()). */
        char *stale_since;
        sd_event_source *timer, *fence_timer;
} HostSelf;

static uint64_t lease_usec(const Control *ctl) {
        return (uint64_t) ctl->config->host_lease_sec * USEC_PER_SEC;
}

/* How long after a renewal began a host stops writing and kills its runs unless it has
 * renewed again: before the lease runs out, by a sixth of it, which is the margin for the
 * clocks of the hosts (by which the others see it run out) to differ. */
static uint64_t fence_usec(const Control *ctl) {
        return lease_usec(ctl) - lease_usec(ctl) / 6;
}

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

static void arm_fence(Control *ctl, HostSelf *h, uint64_t start);

/* Our row, with a new epoch: what it held is of an earlier start of this host. */
static int host_register(Control *ctl, HostSelf *h) {
        _cleanup_(host_donep) Host row = {};
        _cleanup_(store_rollbackp) Store *tx = NULL;
        char now[ISO_TIME_MAX], expires[ISO_TIME_MAX], name[256] = "";
        bool exists;
        int r;

        uint64_t start = now_mono_usec();
        r = lease_times(ctl, now, expires);
        if (r < 0)
                return r;
        (void) gethostname(name, sizeof(name) - 1);
        /* Past the fence: taking the row is what makes this corrald the host again. */
        r = store_begin_unfenced(ctl->store);
        if (r < 0)
                return r;
        tx = ctl->store;
        r = store_get(ctl->store, &host_entity, h->id, &row);
        if (r < 0 && r != -ENOENT)
                return r;
        exists = r >= 0;
        /* Declared dead while it was away: the others finalized its runs since its last renewal. */
        if (exists && row.status == HOST_DEAD && free_and_strdup(&h->stale_since, row.renewed_at ?: row.started_at) < 0)
                return -ENOMEM;
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
        arm_fence(ctl, h, start);
        return 0;
}

static int on_fence(sd_event_source *s, uint64_t usec, void *userdata);

/* The lease runs from start: writes are allowed, and the runs live, until fence_usec() after. */
static void arm_fence(Control *ctl, HostSelf *h, uint64_t start) {
        int r;

        h->renewed_mono = start;
        if (!h->shared)
                return;
        r = store_set_fence(ctl->store, h->id, h->epoch, start + fence_usec(ctl));
        if (r < 0) {
                log_error_errno(r, "Host %s: cannot set its fence: %m", h->id);
                return;
        }
        /* The shims fence their agents by the same deadline, should this corrald be gone
         * or frozen when it passes (its failure to write is logged; the fence timer below
         * still holds while corrald lives). */
        if (ctl->supervisor)
                (void) supervisor_set_lease(ctl->supervisor, start + fence_usec(ctl));
        if (!h->fence_timer) {
                r = sd_event_add_time(ctl->event, &h->fence_timer, CLOCK_MONOTONIC, start + fence_usec(ctl), 0, on_fence, ctl);
                if (r >= 0)
                        /* Before anything else the loop has to do when it wakes from a freeze. */
                        r = sd_event_source_set_priority(h->fence_timer, SD_EVENT_PRIORITY_IMPORTANT);
        } else {
                r = sd_event_source_set_time(h->fence_timer, start + fence_usec(ctl));
                if (r >= 0)
                        r = sd_event_source_set_enabled(h->fence_timer, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                log_error_errno(r, "Host %s: cannot arm its fence timer: %m", h->id);
}

/* Kill every run of this host, recording nothing: the others may be taking them over. */
static void host_fence(Control *ctl, HostSelf *h, const char *why) {
        unsigned n;

        if (h->fenced)
                return;
        h->fenced = true;
        n = ctl->supervisor ? supervisor_fence(ctl->supervisor) : 0;
        budget_forget_live(ctl);
        log_error("Host %s: %s; %u run%s killed unrecorded, so that no run executes twice. It writes nothing until it "
                  "has its row again.",
                  h->id, why, n, n == 1 ? "" : "s");
}

static int on_fence(sd_event_source *s, uint64_t usec, void *userdata) {
        Control *ctl = userdata;
        HostSelf *h = ctl->host;
        char why[128];

        snprintf(why, sizeof(why), "its lease was not renewed for %" PRIu64 " s, and the other hosts may take it for dead",
                 fence_usec(ctl) / USEC_PER_SEC);
        host_fence(ctl, h, why);
        return 0;
}

/* The row is this corrald's again (renewed, or taken with a new epoch): what the fence left
 * is recovered as after a restart, and the work of others goes on. */
static void host_unfence(Control *ctl, HostSelf *h) {
        if (!h->fenced && !h->stale_since)
                return;
        h->fenced = false;
        log_notice("Host %s: its row is its own again (epoch %" PRIi64 "); recovering what its runs left.", h->id, h->epoch);
        (void) run_recovery_adopt(ctl);
}

/* The hosts whose lease ran out are declared dead, one transaction each, and the runs of
 * every dead host are finalized as lost, each with its retry: any live host may do it, the
 * guards make one of them do each. */
static void host_take_over(Control *ctl, HostSelf *h) {
        Host *hosts = NULL;
        Run *runs = NULL;
        size_t n_hosts = 0, n_runs = 0;
        char now[ISO_TIME_MAX];
        int r;

        r = iso_time_now(now);
        if (r >= 0)
                r = store_hosts_expired(ctl->store, h->id, now, &hosts, &n_hosts);
        if (r < 0) {
                log_warning_errno(r, "Host %s: cannot look for hosts whose lease ran out: %m", h->id);
                return;
        }
        for (size_t i = 0; i < n_hosts; i++) {
                bool taken = false;

                r = store_begin(ctl->store);
                if (r >= 0) {
                        r = store_host_declare_dead(ctl->store, hosts[i].id, now, &taken);
                        if (r >= 0)
                                r = store_commit(ctl->store);
                        else
                                store_rollback(ctl->store);
                }
                if (r < 0)
                        log_warning_errno(r, "Host %s: cannot declare host %s dead: %m", h->id, hosts[i].id);
                else if (taken)
                        log_warning("Host %s (%s) last renewed its lease at %s, which ran out at %s: declared dead by host "
                                    "%s, which finalizes its runs as lost.",
                                    hosts[i].id, strna(hosts[i].name), strna(hosts[i].renewed_at),
                                    strna(hosts[i].lease_expires_at), h->id);
        }
        entity_array_free(&host_entity, hosts, n_hosts);

        r = store_runs_running_on_dead_hosts(ctl->store, &runs, &n_runs);
        if (r < 0) {
                log_warning_errno(r, "Host %s: cannot list the runs of dead hosts: %m", h->id);
                return;
        }
        for (size_t i = 0; i < n_runs; i++) {
                _cleanup_(host_donep) Host dead = {};
                _cleanup_free_ char *error = NULL;

                (void) store_get(ctl->store, &host_entity, runs[i].host_id, &dead);
                error = strprintf("Process lost -- its host %s stopped renewing its lease at %s and was declared dead; "
                                  "host %s took its runs over",
                                  runs[i].host_id, strna(dead.renewed_at), h->id);
                if (!error)
                        break;
                (void) finalize_run_lost_elsewhere(ctl, &runs[i], error);
        }
        entity_array_free(&run_entity, runs, n_runs);
}

void host_recover_stale(Control *ctl) {
        HostSelf *h = ctl->host;
        Run *runs;
        size_t n;
        int r;

        if (!h || !h->stale_since)
                return;
        r = store_runs_taken_over(ctl->store, h->id, h->stale_since, &runs, &n);
        if (r < 0) {
                log_warning_errno(r, "Host %s: cannot list the runs others took over from it: %m", h->id);
                return;
        }
        h->stale_since = mfree(h->stale_since);
        for (size_t i = 0; i < n; i++) {
                RecoverSpec spec = { .grace_sec = 1, .stale = true };
                RecoverOutcome outcome;

                if (supervisor_tracks(ctl->supervisor, runs[i].id))
                        continue;
                r = supervisor_recover(ctl->supervisor, &runs[i], &spec, &outcome);
                if (r < 0)
                        log_warning_errno(r, "Run %s: cannot take up what is left of it: %m", runs[i].id);
        }
        entity_array_free(&run_entity, runs, n);
}

static int on_renew(sd_event_source *s, uint64_t usec, void *userdata) {
        Control *ctl = userdata;
        HostSelf *h = ctl->host;
        char now[ISO_TIME_MAX], expires[ISO_TIME_MAX];
        uint64_t start = now_mono_usec();
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
                /* Our row has another epoch, or says dead: hosts that took us for dead (a
                 * freeze, a partition), or another start of this host id. Whatever ran
                 * here may run elsewhere by now: killed unrecorded, before the row is
                 * taken again, as a new start would. */
                host_fence(ctl, h, "its row in the database is no longer this corrald's: the other hosts declared it dead");
                log_error("Host %s: taking its row again. (Two corralds with one host-id share nothing safely.)", h->id);
                r = host_register(ctl, h);
                if (r < 0)
                        log_error_errno(r, "Host %s: cannot take its row again: %m", h->id);
                else
                        log_notice("Host %s: epoch %" PRIi64 ".", h->id, h->epoch);
        } else {
                memcpy(h->lease_expires, expires, sizeof(h->lease_expires));
                arm_fence(ctl, h, start);
        }
        if (r >= 0) {
                host_unfence(ctl, h);
                host_take_over(ctl, h);
        }
        r = sd_event_source_set_time_relative(s, lease_usec(ctl) / 3);
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
        h->shared = store_backend(ctl->store) == STORE_BACKEND_POSTGRESQL;
        /* A database that cannot be written now (read-only, locked) does not keep corrald
         * from starting: the lease timer records the host once it can. */
        r = host_register(ctl, h);
        if (r < 0)
                log_error_errno(r, "Failed to record host %s in the database: %m; trying again every %us.", h->id,
                                ctl->config->host_lease_sec / 3);
        r = sd_event_add_time_relative(ctl->event, &h->timer, CLOCK_MONOTONIC, lease_usec(ctl) / 3, 0, on_renew, ctl);
        if (r >= 0)
                /* Renewed first when the loop wakes from a freeze: it tells whether to go on. */
                r = sd_event_source_set_priority(h->timer, SD_EVENT_PRIORITY_IMPORTANT);
        if (r < 0) {
                sd_event_source_disable_unref(h->fence_timer);
                (void) store_set_fence(ctl->store, NULL, 0, 0);
                free(h->stale_since);
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
        sd_event_source_disable_unref(h->fence_timer);
        (void) store_set_fence(ctl->store, NULL, 0, 0);
        free(h->stale_since);
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

bool host_fenced(const Control *ctl) {
        return ctl->host && ctl->host->fenced;
}

bool host_shared(const Control *ctl) {
        return ctl->host && ctl->host->shared;
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
        if (ctl->host->fenced) {
                *ret = 0;
                return 0;
        }
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

/* The host's row in status to, and told (NULL: nothing) to the hosts listening in the same
 * transaction: they hear of it once it is so. */
static int set_status(Control *ctl, Host *row, HostStatus to, const char *told) {
        static const char *const columns[] = { "status", "updated_at", NULL };
        char now[ISO_TIME_MAX];
        int r;

        r = iso_time_now(now);
        if (r < 0)
                return r;
        row->status = to;
        if (free_and_strdup(&row->updated_at, now) < 0)
                return -ENOMEM;
        _cleanup_(store_rollbackp) Store *tx = NULL;
        r = store_begin(ctl->store);
        if (r < 0)
                return r;
        tx = ctl->store;
        r = store_update_columns(ctl->store, &host_entity, row, columns);
        if (r >= 0 && told)
                r = store_work_tell(ctl->store, told);
        if (r >= 0)
                r = store_commit(ctl->store);
        if (r < 0)
                return r;
        tx = NULL;
        return 0;
}

int host_drain(Control *ctl, const char *host_id) {
        _cleanup_(host_donep) Host row = {};
        int r;

        r = store_get(ctl->store, &host_entity, host_id, &row);
        if (r < 0)
                return r;
        if (row.status != HOST_LIVE)
                return 0;
        /* Nothing to tell: a host reads its row before each claim. */
        r = set_status(ctl, &row, HOST_DRAINING, NULL);
        if (r < 0)
                return r;
        log_notice("Host %s drains: it claims nothing new and finishes what it runs.", host_id);
        return 0;
}

int host_resume(Control *ctl, const char *host_id) {
        _cleanup_(host_donep) Host row = {};
        _cleanup_free_ char *told = NULL;
        int r;

        r = store_get(ctl->store, &host_entity, host_id, &row);
        if (r < 0)
                return r;
        if (row.status == HOST_DEAD)
                return -ESTALE;
        if (row.status == HOST_LIVE)
                return 0;
        told = strprintf("resume:%s", host_id);
        if (!told)
                return -ENOMEM;
        r = set_status(ctl, &row, HOST_LIVE, told);
        if (r < 0)
                return r;
        log_notice("Host %s claims runs again.", host_id);
        if (streq_ptr(host_id, host_self_id(ctl)))
                (void) claim_pump_want_all(ctl);
        return 0;
}
