/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Placement: how a run gets a cgroup of its own before its first instruction
 * (design §4.1). Backends share one small table of operations; the supervisor
 * does not know which one it talks to.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "basic/config.h"

/* Resource limits of a run (adapterConfig.limits); 0 = not set. */
/* An address prefix: 10.0.0.0/8, ::1/128. */
typedef struct IpPrefix {
        int family; /* AF_INET or AF_INET6 */
        uint8_t address[16];
        uint8_t prefix_len;
} IpPrefix;

#define RUN_IP_ALLOW_MAX 16

typedef struct RunLimits {
        uint64_t memory_max; /* bytes */
        uint64_t tasks_max;
        uint64_t cpu_weight; /* 1..10000 */
        /* Where memory_max or tasks_max is 0: the operator's defaults, set where their
         * controllers are and silently skipped where not (0: none). */
        uint64_t default_memory_max, default_tasks_max;
        /* The only addresses the run may talk to over IP (n_ip_allow > 0; the scope backend
         * alone can enforce it: IPAddressAllow=, every other address denied). */
        IpPrefix ip_allow[RUN_IP_ALLOW_MAX];
        size_t n_ip_allow;
} RunLimits;

typedef struct ScopeStart ScopeStart;
typedef struct PlacementScope PlacementScope;

/* Where one run lives. */
typedef struct RunPlace {
        char *cgroup_path; /* filesystem path of the run's cgroup (both backends, once known) */
        char *unit_name; /* corral-run-<id>.scope (scope backend) */
        int cgroup_fd; /* O_PATH fd for CLONE_INTO_CGROUP, or -1 */
        pid_t pgid; /* the agent's process group (none backend) */
        ScopeStart *pending; /* scope backend: the unit's start job, until it is done */
} RunPlace;

/* attach() is done: r < 0 with a message when the run could not be placed. */
typedef void (*PlacementAttached)(int r, const char *error, void *userdata);

typedef struct PlacementAttach {
        const pid_t *pids; /* the shim and its agent, not yet started */
        size_t n_pids;
        const RunLimits *limits;
        const char *description;
        uint64_t runtime_max_usec; /* a deadline that holds without corrald; 0 for none */
        PlacementAttached done;
        void *userdata;
} PlacementAttach;

/* Free what a place holds, a start job in flight included. */
void run_place_done(RunPlace *p);
/* Forget a start job in flight (its place is being freed). */
void scope_start_free(ScopeStart *s);

typedef struct Placement Placement;

typedef struct PlacementOps {
        const char *name;
        /* Create the run's cgroup before the shim exists. *ret_warning names limits that
         * could not be enforced (NULL when all were). */
        int (*prepare)(Placement *p, const char *run_id, const RunLimits *limits, RunPlace *ret, char **ret_warning);
        /* Move the run's first processes into its place, asynchronously: a->done is called
         * from the event loop once, unless the place is freed first. NULL for backends whose
         * prepare() already placed the run (the shim is cloned into its cgroup). */
        int (*attach)(Placement *p, RunPlace *place, const PlacementAttach *a);
        /* SIGKILL every process of the run. */
        int (*kill_all)(Placement *p, const RunPlace *place);
        /* 1 while any process of the run exists, 0 once none does. */
        int (*populated)(Placement *p, const RunPlace *place);
        /* Number of processes in the run (for the leftover event). */
        int (*count)(Placement *p, const RunPlace *place, unsigned *ret);
        /* OOM kills in the run so far (0 where not known). */
        int (*oom_kills)(Placement *p, const RunPlace *place, uint64_t *ret);
        /* Remove the run's cgroup once it is empty. */
        int (*remove)(Placement *p, const RunPlace *place);
        /* A file whose modification means the run's population changed (for inotify), or NULL. */
        char *(*events_path)(Placement *p, const RunPlace *place);
        /* The place prepare() makes for a run id, if it exists: for runs whose row never
         * learned it (corrald died between creating it and recording it). */
        int (*locate)(Placement *p, const char *run_id, RunPlace *ret);
} PlacementOps;

struct Placement {
        const PlacementOps *ops;
        PlacementKind kind; /* resolved: never PLACEMENT_AUTO */
        char *cgroup_root; /* cgroup backend */
        char *cgroup_mount; /* where the v2 hierarchy is mounted */
        PlacementScope *scope; /* scope backend: its bus and start jobs, placement-scope.c's alone */
};

/* Resolve kind (auto picks scope when systemd is PID 1 and its bus answers, else cgroup)
 * and set the backend up. Logs why when no backend is available. */
int placement_new(PlacementKind kind, const char *cgroup_root, sd_event *event, Placement **ret);
Placement *placement_free(Placement *p);

/* The run a process belongs to, from its cgroup: *ret is NULL when it belongs to none (or
 * the backend cannot tell, as with placement=none). */
int placement_run_of_pid(Placement *p, pid_t pid, char **ret);

/* The cgroup backend's default root: "<cgroup2 mount><own cgroup>/corral". */
int placement_default_cgroup_root(char **ret);
