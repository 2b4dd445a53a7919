/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Manager: all of corrald's state, owned by one sd-event loop. It loads the
 * configuration, opens the store, takes or creates the API socket, and shuts
 * everything down in order.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "placement.h"
#include "sandbox.h"
#include "store.h"
#include "supervisor.h"
#include "telemetry.h"

typedef struct Api Api;
typedef struct Scheduler Scheduler;

typedef struct Manager {
        sd_event *event;
        sd_event_source *sigterm_source, *sigint_source, *sighup_source, *stall_source;
        sd_event_source *sweep_timer;

        /* Configuration: defaults, then the file, then the command-line overrides (key, value pairs). */
        Config config;
        char *config_path;
        bool config_must_exist;
        char **overrides;
        size_t n_overrides;

        Store *store;
        Placement *placement;
        Supervisor *supervisor;
        Scheduler *scheduler;
        Telemetry telemetry;
        Sandbox *sandbox;
        Api *api; /* on the operator socket: every caller is the board */
        Api *agent_api; /* on the agent socket: every caller is a run's agent, or refused */
        char *socket_path_effective; /* the operator socket's path, also when systemd passed it */
        char *agent_socket_path; /* the agent socket (CORRAL_SOCKET of every run) */
        int listen_fd, agent_listen_fd;
        bool socket_activated;
        bool socket_created; /* we made the socket file: remove it on exit */

        int64_t started_usec;
} Manager;

int manager_new(Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Remember a command-line setting; it wins over the file, now and on reload. */
int manager_add_override(Manager *m, const char *key, const char *value);
int manager_load_config(Manager *m);

/* Open the store and the API socket, start serving. */
int manager_startup(Manager *m);
/* The run whose live process is the peer of the connected socket fd (tracked by this
 * corrald, in its cgroup or scope), or NULL: a peer that is gone, outside every run, or in
 * a cgroup that only looks like a run's. */
int manager_identify_peer(Manager *m, int fd, char **ret_run_id);
/* Is run_id still running? Then its id, agent and company (each NULL otherwise). Such a
 * request counts as activity of the run. */
int manager_identify_caller(Manager *m, const char *run_id, char **ret_run_id, char **ret_agent_id, char **ret_company_id);

typedef struct StrandedCounters StrandedCounters;

/* A sweep (also done on a timer): recover running runs nobody tracks, start queued ones,
 * reconcile stranded issues. Returns the number of runs taken up; *ret (may be NULL) gets
 * the reconciliation's counters. */
int manager_sweep(Manager *m, StrandedCounters *ret);
/* Run until SIGTERM/SIGINT. */
int manager_run(Manager *m);

sd_event *manager_event(Manager *m);
