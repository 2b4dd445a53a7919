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

#include "basic/config.h"
#include "control/control.h"

typedef struct Api Api;

typedef struct Manager {
        Control control; /* the loop, store, placement, supervisor, sandbox: what control and API see */
        sd_event_source *sigterm_source, *sigint_source, *sighup_source, *stall_source;
        sd_event_source *sweep_timer;
        sd_event_source *startup_source; /* recovery, the loop's first act */

        /* Configuration: defaults, then the file, then the command-line overrides (key, value pairs). */
        Config config;
        char *config_path;
        bool config_must_exist;
        char **overrides; /* strv of key, value, key, value, ... */

        Api *api; /* on the operator socket: every caller is the board */
        Api *agent_api; /* on the agent socket: every caller is a run's agent, or refused */
        Api *metrics_api; /* on metrics-listen, when set: GET /metrics alone */
        char *socket_path_effective; /* the operator socket's path, also when systemd passed it */
        int listen_fd, agent_listen_fd, metrics_listen_fd;
        bool socket_created; /* we made the socket file: remove it on exit */
} Manager;

int manager_new(Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Remember a command-line setting; it wins over the file, now and on reload. */
int manager_add_override(Manager *m, const char *key, const char *value);
int manager_load_config(Manager *m);

/* Open the store and the API socket, start serving. */
int manager_startup(Manager *m);
/* Run until SIGTERM/SIGINT. */
int manager_run(Manager *m);

sd_event *manager_event(Manager *m);
