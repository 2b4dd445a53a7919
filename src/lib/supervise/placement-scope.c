/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "supervise/placement-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "supervise/cgroup.h"
#include "basic/log.h"

/* The backend's own state, behind Placement.scope. */
struct PlacementScope {
        sd_event *event;
        sd_bus *bus;
        sd_bus_slot *job_removed_slot;
        ScopeStart *starts; /* start jobs in flight */
        uint64_t start_timeout_usec;
};

#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER "org.freedesktop.systemd1.Manager"

/* One StartTransientUnit in flight: first its method reply (the job's path), then the
 * JobRemoved signal that says how the job ended, or the deadline. */
struct ScopeStart {
        Placement *placement;
        RunPlace *place;
        pid_t shim;
        char *job;
        sd_bus_slot *call_slot;
        sd_event_source *timer;
        PlacementAttached done;
        void *userdata;
        ScopeStart *next;
};

void scope_start_free(ScopeStart *s) {
        if (!s)
                return;
        for (ScopeStart **p = &s->placement->scope->starts; *p; p = &(*p)->next)
                if (*p == s) {
                        *p = s->next;
                        break;
                }
        if (s->place)
                s->place->pending = NULL;
        sd_bus_slot_unref(s->call_slot);
        sd_event_source_disable_unref(s->timer);
        free(s->job);
        free(s);
}

/* Report the end of a start exactly once, then forget it. */
static void start_done(ScopeStart *s, int r, const char *error) {
        PlacementAttached done = s->done;
        void *userdata = s->userdata;

        scope_start_free(s);
        done(r, error, userdata);
}

/* The scope's cgroup is wherever systemd put the shim. */
static int cgroup_of_pid(Placement *p, pid_t pid, char **ret) {
        _cleanup_free_ char *cg = NULL;
        int r;

        r = cgroup_pid_path(pid, &cg);
        if (r < 0)
                return r;
        *ret = strprintf("%s%s", p->cgroup_mount, cg);
        return *ret ? 0 : -ENOMEM;
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Placement *p = userdata;
        const char *job, *unit, *result;
        uint32_t id;
        int r;

        r = sd_bus_message_read(m, "uoss", &id, &job, &unit, &result);
        if (r < 0)
                return 0;
        for (ScopeStart *s = p->scope->starts; s; s = s->next) {
                if (!streq_ptr(s->job, job))
                        continue;
                if (!streq(result, "done")) {
                        _cleanup_free_ char *msg =
                                strprintf("systemd could not start %s: its job ended with \"%s\"", unit, result);
                        start_done(s, -EIO, msg ?: "systemd could not start the run's scope");
                        return 0;
                }
                r = cgroup_of_pid(p, s->shim, &s->place->cgroup_path);
                if (r < 0) {
                        start_done(s, r, "the run's scope started, but its cgroup cannot be read");
                        return 0;
                }
                start_done(s, 0, NULL);
                return 0;
        }
        return 0;
}

static int on_start_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        ScopeStart *s = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        const char *job;
        int r;

        s->call_slot = sd_bus_slot_unref(s->call_slot);
        if (e) {
                _cleanup_free_ char *msg = NULL;
                /* The run id is in the unit name: an existing unit means the run is live already. */
                if (sd_bus_error_has_name(e, "org.freedesktop.systemd1.UnitExists"))
                        msg = strprintf("%s already exists: the run is already live", s->place->unit_name);
                else
                        msg = strprintf("systemd refused to start %s: %s", s->place->unit_name, e->message ?: e->name);
                start_done(s, sd_bus_error_has_name(e, "org.freedesktop.systemd1.UnitExists") ? -EEXIST : -EIO,
                           msg ?: "systemd refused to start the run's scope");
                return 0;
        }
        r = sd_bus_message_read(m, "o", &job);
        if (r < 0 || free_and_strdup(&s->job, job) < 0) {
                start_done(s, r < 0 ? r : -ENOMEM, "systemd's answer to StartTransientUnit cannot be read");
                return 0;
        }
        return 0;
}

static int on_start_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        ScopeStart *s = userdata;
        _cleanup_free_ char *msg = strprintf("systemd did not start %s within %" PRIu64 " s; the outcome is unknown",
                                             s->place->unit_name, s->placement->scope->start_timeout_usec / 1000000);

        /* Whatever systemd did meanwhile, the run must not go on: its processes are killed
         * by the caller, and a scope that appears later is empty and collected. */
        start_done(s, -ETIMEDOUT, msg ?: "systemd did not start the run's scope in time");
        return 0;
}

static int append_property(sd_bus_message *m, const char *name, uint64_t value) {
        return value ? sd_bus_message_append(m, "(sv)", name, "t", value) : 0;
}

/* A property whose value is an array (signature "a" element): open it for the elements,
 * then close_array_property(). */
static int open_array_property(sd_bus_message *m, const char *name, const char *element) {
        char signature[16];
        int r;

        snprintf(signature, sizeof(signature), "a%s", element);
        r = sd_bus_message_open_container(m, 'r', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", name);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', signature);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', element);
        return r;
}

static int close_array_property(sd_bus_message *m) {
        int r = 0;

        for (int i = 0; r >= 0 && i < 3; i++)
                r = sd_bus_message_close_container(m);
        return r;
}

/* One a(iayu) address list property: IPAddressAllow=, IPAddressDeny=. */
static int append_addresses(sd_bus_message *m, const char *name, const IpPrefix *l, size_t n) {
        int r;

        r = open_array_property(m, name, "(iayu)");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = sd_bus_message_open_container(m, 'r', "iayu");
                if (r >= 0)
                        r = sd_bus_message_append(m, "i", (int32_t) l[i].family);
                if (r >= 0)
                        r = sd_bus_message_append_array(m, 'y', l[i].address, l[i].family == AF_INET ? 4 : 16);
                if (r >= 0)
                        r = sd_bus_message_append(m, "u", (uint32_t) l[i].prefix_len);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        }
        return r >= 0 ? close_array_property(m) : r;
}

/* An allowlist: its addresses allowed, every other denied (the more specific rule wins). */
static int append_ip_allowlist(sd_bus_message *m, const RunLimits *limits) {
        static const IpPrefix any[] = { { .family = AF_INET }, { .family = AF_INET6 } };
        int r;

        if (limits->n_ip_allow == 0)
                return 0;
        r = append_addresses(m, "IPAddressDeny", any, ELEMENTSOF(any));
        if (r >= 0)
                r = append_addresses(m, "IPAddressAllow", limits->ip_allow, limits->n_ip_allow);
        return r;
}

static int scope_attach(Placement *p, RunPlace *place, const PlacementAttach *a) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        ScopeStart *s;
        int r;

        r = sd_bus_message_new_method_call(p->scope->bus, &m, SD_DEST, SD_PATH, SD_MANAGER, "StartTransientUnit");
        if (r < 0)
                return r;
        /* mode "fail": a second start of the same run is refused, never queued behind it. */
        r = sd_bus_message_append(m, "ss", place->unit_name, "fail");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sv)");
        if (r >= 0)
                /* OOMPolicy=continue: after an OOM kill the shim lives on to write the exit status. */
                r = sd_bus_message_append(m, "(sv)(sv)(sv)(sv)", "Slice", "s", SCOPE_SLICE, "Description", "s", a->description,
                                          "CollectMode", "s", "inactive-or-failed", "OOMPolicy", "s", "continue");
        if (r >= 0)
                r = open_array_property(m, "PIDs", "u");
        for (size_t i = 0; r >= 0 && i < a->n_pids; i++)
                r = sd_bus_message_append(m, "u", (uint32_t) a->pids[i]);
        if (r >= 0)
                r = close_array_property(m);
        if (r >= 0)
                r = append_property(m, "MemoryMax", a->limits->memory_max ?: a->limits->default_memory_max);
        if (r >= 0)
                r = append_property(m, "TasksMax", a->limits->tasks_max ?: a->limits->default_tasks_max);
        if (r >= 0)
                r = append_property(m, "CPUWeight", a->limits->cpu_weight);
        if (r >= 0)
                r = append_property(m, "RuntimeMaxUSec", a->runtime_max_usec);
        if (r >= 0)
                r = append_ip_allowlist(m, a->limits);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "a(sa(sv))", 0);
        if (r < 0)
                return r;

        s = calloc(1, sizeof(ScopeStart));
        if (!s)
                return -ENOMEM;
        *s = (ScopeStart){ .placement = p, .place = place, .shim = a->pids[0], .done = a->done, .userdata = a->userdata };
        s->next = p->scope->starts;
        p->scope->starts = s;
        place->pending = s;
        r = sd_bus_call_async(p->scope->bus, &s->call_slot, m, on_start_reply, s, p->scope->start_timeout_usec);
        if (r >= 0)
                r = sd_event_add_time_relative(p->scope->event, &s->timer, CLOCK_MONOTONIC, p->scope->start_timeout_usec, 0,
                                               on_start_timeout, s);
        if (r < 0) {
                scope_start_free(s);
                return r;
        }
        return 0;
}

static int scope_prepare(Placement *p, const char *run_id, const RunLimits *limits, RunPlace *ret, char **ret_warning) {
        ret->unit_name = strprintf("corral-run-%s.scope", run_id);
        ret->cgroup_fd = -EBADF;
        return ret->unit_name ? 0 : -ENOMEM;
}

static int scope_kill_all(Placement *p, const RunPlace *place) {
        int r = 0;

        /* cgroup.kill is immediate and atomic; KillUnit also reaches a scope whose cgroup
         * corrald has not learned yet. */
        if (place->cgroup_path) {
                r = cgroup_kill(place->cgroup_path);
                if (cgroup_gone(r))
                        r = 0;
        }
        if (place->unit_name)
                (void) sd_bus_call_method_async(p->scope->bus, NULL, SD_DEST, SD_PATH, SD_MANAGER, "KillUnit", NULL, NULL, "ssi",
                                                place->unit_name, "all", SIGKILL);
        return r;
}

static int scope_populated(Placement *p, const RunPlace *place) {
        if (!place->cgroup_path)
                return 0;
        int r = cgroup_is_populated(place->cgroup_path);
        return cgroup_gone(r) ? 0 : r;
}

static int scope_count(Placement *p, const RunPlace *place, unsigned *ret) {
        *ret = 0;
        if (!place->cgroup_path)
                return 0;
        int r = cgroup_count_procs(place->cgroup_path, ret);
        return cgroup_gone(r) ? 0 : r;
}

static int scope_oom_kills(Placement *p, const RunPlace *place, uint64_t *ret) {
        *ret = 0;
        if (!place->cgroup_path)
                return 0;
        int r = cgroup_read_key(place->cgroup_path, "memory.events", "oom_kill", ret);
        return cgroup_gone(r) ? 0 : r;
}

/* An empty scope stops, and CollectMode=inactive-or-failed makes systemd forget it. */
static int scope_remove(Placement *p, const RunPlace *place) {
        return 0;
}

static char *scope_events_path(Placement *p, const RunPlace *place) {
        return place->cgroup_path ? strprintf("%s/cgroup.events", place->cgroup_path) : NULL;
}

static int scope_locate(Placement *p, const char *run_id, RunPlace *ret) {
        _cleanup_free_ char *unit = strprintf("corral-run-%s.scope", run_id),
                            *path = unit ? strprintf("%s/" SCOPE_SLICE "/%s", p->cgroup_mount, unit) : NULL;

        if (!path)
                return -ENOMEM;
        ret->unit_name = TAKE_PTR(unit);
        if (access(path, F_OK) >= 0)
                ret->cgroup_path = TAKE_PTR(path);
        return 0;
}

const PlacementOps scope_ops = {
        .name = "scope",
        .prepare = scope_prepare,
        .attach = scope_attach,
        .kill_all = scope_kill_all,
        .populated = scope_populated,
        .count = scope_count,
        .oom_kills = scope_oom_kills,
        .remove = scope_remove,
        .events_path = scope_events_path,
        .locate = scope_locate,
};

int scope_available(void) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        if (sd_booted() <= 0) {
                log_debug("systemd is not PID 1: no scopes.");
                return 0;
        }
        r = sd_bus_open_system(&bus);
        if (r < 0) {
                log_debug_errno(r, "The system bus cannot be reached, no scopes: %m");
                return 0;
        }
        r = sd_bus_call_method(bus, SD_DEST, SD_PATH, "org.freedesktop.DBus.Peer", "Ping", &error, NULL, NULL);
        if (r < 0) {
                log_debug("systemd does not answer on the system bus, no scopes: %s", error.message ?: strerror(-r));
                return 0;
        }
        return 1;
}

int scope_setup(Placement *p, sd_event *event) {
        int r;

        p->scope = calloc(1, sizeof(PlacementScope));
        if (!p->scope)
                return -ENOMEM;
        p->scope->event = sd_event_ref(event);
        r = sd_bus_open_system(&p->scope->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");
        r = sd_bus_attach_event(p->scope->bus, p->scope->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the system bus to the event loop: %m");
        /* Listen before the first start, so no job's end can be missed. */
        r = sd_bus_match_signal_async(p->scope->bus, &p->scope->job_removed_slot, SD_DEST, SD_PATH, SD_MANAGER, "JobRemoved",
                                      on_job_removed, NULL, p);
        if (r < 0)
                return log_error_errno(r, "Failed to listen for systemd's JobRemoved: %m");
        r = sd_bus_call_method_async(p->scope->bus, NULL, SD_DEST, SD_PATH, SD_MANAGER, "Subscribe", NULL, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to subscribe to systemd's signals: %m");
        p->scope->start_timeout_usec = SCOPE_START_TIMEOUT_USEC;
        return 0;
}

void scope_teardown(Placement *p) {
        if (!p->scope)
                return;
        while (p->scope->starts)
                scope_start_free(p->scope->starts);
        sd_bus_slot_unref(p->scope->job_removed_slot);
        sd_bus_flush_close_unref(p->scope->bus);
        sd_event_unref(p->scope->event);
        p->scope = mfree(p->scope);
}

char *scope_run_id(const char *unit_name) {
        const char *prefix = "corral-run-", *suffix = ".scope";
        size_t n = strlen(unit_name);

        if (strncmp(unit_name, prefix, strlen(prefix)) != 0 || n <= strlen(prefix) + strlen(suffix) ||
            !streq(unit_name + n - strlen(suffix), suffix))
                return NULL;
        return strndup(unit_name + strlen(prefix), n - strlen(prefix) - strlen(suffix));
}
