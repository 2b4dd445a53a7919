/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The supervisor's own state, shared by its three files: supervisor.c (the state machine,
 * stopping, finishing), supervisor-launch.c (run directories, the shim, the go) and
 * supervisor-recover.c (runs taken up after a restart). Nothing outside supervise/ sees it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "basic/hashmap.h"
#include "basic/macro.h"
#include "supervise/placement.h"
#include "supervise/runlog.h"
#include "supervise/spawner.h"
#include "basic/histogram.h"
#include "supervise/supervisor.h"

/* Run directories made ahead (see make_spare()). */
#define SPARE_RUN_DIRS 4
#define SPARE_DIR "spares" /* in the state directory, beside runs/ */
#define SPARE_PREFIX ".spare-"
/* The run's context, in its directory, for the agent. */
#define RUN_CONTEXT_FILE "context.json"

/* Log bytes given to watchers per dispatch of the follow queue, and per run in one turn: a
 * dispatch takes well under a millisecond. */
#define FOLLOW_BUDGET (1024 * 1024)
#define FOLLOW_SLICE (256 * 1024)
/* Reads of inotify events per dispatch (each up to 16 KiB of them). */
#define INOTIFY_READS_MAX 4

/* Each state's meaning: supervisor.c, at the top. */
typedef enum TrackState {
        TRACK_LAUNCHING,
        TRACK_RUNNING,
        TRACK_STOPPING,
        TRACK_DRAINING,
} TrackState;

/* Where a tracked run came from: its state machine is the same, what its end means is not. */
typedef enum TrackOrigin {
        TRACK_LAUNCHED, /* by this corrald: the shim is its child */
        TRACK_ADOPTED, /* taken up after a restart: the shim is not its child */
        TRACK_AFTER_REBOOT, /* taken up after a reboot: its processes belonged to another boot */
} TrackOrigin;

typedef struct Tracked {
        Supervisor *supervisor;
        TrackState state; /* changed by tracked_set_state() only */
        TrackOrigin origin;
        size_t slot; /* its index in Supervisor.runs */
        char *run_id, *agent_id, *issue_id;
        char *run_dir;
        RunPlace place;

        pid_t shim_pid;
        int pidfd;
        uint64_t shim_start_ticks;
        pid_t agent_pid;
        int go_fd, report_fd;
        bool spawning; /* the shim spawner has not answered for this run's shim yet (in any state) */
        int shim_status; /* si_code/si_status of the shim, for a shim that died itself */

        RunEnd stop_reason; /* set when corral decided to end the run */
        bool detached; /* the row says process_detached until the run shows life */
        bool killed; /* the cgroup was killed: a run without an exit status died of that */
        bool fenced; /* this host may have been declared dead: killed, and nothing of it is written */
        bool sandboxed; /* the agent's tree has a sandbox init, which is not a leftover */
        unsigned leftover;

        uint64_t grace_usec, idle_usec, timeout_usec;
        int64_t deadline_usec; /* CLOCK_REALTIME, of a re-adopted run: its row's deadline; 0 for none */
        RunLimits limits;
        char *error; /* why the run could not be launched or placed */
        uint64_t last_output; /* CLOCK_MONOTONIC */
        uint64_t launched_usec; /* CLOCK_MONOTONIC, when supervisor_launch() took it; 0 when adopted */

        RunLog *log;
        bool watched; /* its output goes to the supervisor's output watcher too */
        /* In the supervisor's follow queue: output its watcher has not had yet. */
        struct Tracked *follow_next, **follow_prev;
        int log_wd, events_wd, memory_wd;
        uint64_t oom_kills; /* seen in memory.events while the run's cgroup existed */

        sd_event_source *pidfd_source, *report_source;
        sd_event_source *deadline_timer, *grace_timer, *idle_timer, *leftover_timer;
} Tracked;

struct Supervisor {
        sd_event *event;
        Store *store;
        Placement *placement;
        char *state_dir, *shim_path;
        char *lease_path; /* STATE-DIR/SUPERVISOR_LEASE_FILE, once there is a lease; NULL */
        uint64_t leftover_grace_usec;
        char boot_id[64];
        SupervisorFinished finished;
        void *userdata;
        SupervisorOutputFn output;
        void *output_userdata;
        Histogram launch_latency; /* seconds, from supervisor_launch() to the agent started */

        Spawner *spawner; /* NULL: every shim is executed directly */
        char *spares[SPARE_RUN_DIRS]; /* made run directories, each ready to be renamed into place */
        size_t n_spares;
        sd_event_source *spare_source; /* makes them, after a launch has sent its go */
        int inotify_fd;
        sd_event_source *inotify_source;
        Tracked **runs;
        size_t n_runs;
        Hashmap *by_id; /* run id -> Tracked */
        Hashmap *by_wd; /* inotify watch -> Tracked: the log, cgroup.events or memory.events of a run */
        /* Watched runs whose log grew, oldest first: read a slice at a time, between the
         * loop's other work, so a flood of output never holds up a request for long. The
         * shim hashes the log as it writes it (status.json): corrald reads no other run's. */
        Tracked *follow_head, **follow_tail;
        int follow_fd; /* an eventfd: readable while the queue holds a run */
        sd_event_source *follow_source;
};

/* Journal fields naming the run, so "journalctl CORRAL_RUN_ID=<id>" shows its life. */
#define RUN_FIELDS(t, name)                                                                          \
        char name##_run[64], name##_agent[64], name##_issue[64];                                     \
        snprintf(name##_run, sizeof(name##_run), "CORRAL_RUN_ID=%s", (t)->run_id);                   \
        snprintf(name##_agent, sizeof(name##_agent), "CORRAL_AGENT_ID=%s", strempty((t)->agent_id)); \
        snprintf(name##_issue, sizeof(name##_issue), "CORRAL_ISSUE_ID=%s", strempty((t)->issue_id)); \
        const char *const name[] = { name##_run, name##_agent, (t)->issue_id ? name##_issue : NULL, NULL }

/* supervisor.c */
Tracked *supervisor_find(Supervisor *s, const char *run_id);
void supervisor_untrack(Supervisor *s, Tracked *t);
void tracked_free(Tracked *t);
void tracked_set_state(Tracked *t, TrackState state);
/* A lifecycle event on the run. */
void tracked_event(Tracked *t, EventLevel level, const char *message);
/* Kill everything in the run's cgroup (and the shim, where nothing else reaches it). */
void tracked_kill(Tracked *t);
/* The agent's processes left in the run's cgroup. */
unsigned tracked_count_leftovers(Tracked *t);
/* Queue the run's new output for its watcher (a no-op when it is queued or unwatched). */
void tracked_follow(Tracked *t);
/* Finish the run if its shim is gone and its cgroup empty: may report and free t. */
void tracked_maybe_finish(Tracked *t);
int tracked_on_shim_exit(sd_event_source *src, int fd, uint32_t revents, void *userdata);
int tracked_on_report(sd_event_source *src, int fd, uint32_t revents, void *userdata);

/* Watch path with inotify for t; the watch, or -1 (said in the journal). */
int tracked_add_watch(Tracked *t, const char *path, const char *what);

/* supervisor-launch.c */
/* A new tracked run, registered with the supervisor. */
int tracked_new(Supervisor *s, const char *run_id, const char *agent_id, const char *issue_id, Tracked **ret);
/* Watch the run's log and cgroup. */
void tracked_watch(Tracked *t);
/* Ask for the spare run directories that are missing. */
void supervisor_want_spares(Supervisor *s);
/* Remove the spares an earlier corrald left and set up making new ones. */
int supervisor_setup_spares(Supervisor *s);
/* Remove the spares made (at exit). */
void supervisor_remove_spares(Supervisor *s);
