/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The supervisor (design §4): launches each run's shim inside the run's own
 * cgroup, tracks it with a pidfd, cgroup.events and the log file through the
 * event loop, ends it (SIGTERM through the shim, then the whole cgroup killed
 * after the grace period), and reports how it ended once its cgroup is empty.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "store/model.h"
#include "supervise/placement.h"
#include "store/store.h"

typedef struct Supervisor Supervisor;

/* A file of the run directory, written before the shim's go. */
typedef struct RunFile {
        const char *name;
        const void *data;
        size_t size;
        unsigned mode; /* 0600 unless it is to be read inside the sandbox */
} RunFile;

typedef struct LaunchSpec {
        const char *run_id;
        const char *agent_id;
        const char *issue_id; /* NULL when the run has no issue */
        char *const *argv; /* the agent's command line; argv[0] is looked up in PATH */
        char *const *env; /* the agent's whole environment */
        const char *cwd; /* NULL: the run directory */
        const char *stdin_text; /* NULL: /dev/null */
        const char *context_json; /* written to context.json, may be NULL */
        uint64_t timeout_sec; /* 0: none */
        uint64_t grace_sec; /* SIGTERM to SIGKILL; 0 means 1 */
        uint64_t idle_timeout_sec; /* no output for this long ends the run; 0: none */
        uint64_t log_bytes_max; /* output past this stops the run (log_limit); 0: none */
        RunLimits limits;
        bool sandboxed; /* the shim starts the agent in the sandbox its files describe */
        /* A coding CLI resuming a session: what it says on stderr when it cannot, and its
         * command line afresh, each NUL-terminated; the shim runs that once more in the same
         * run when it must (shim.h, again). NULL: never. */
        const char *again;
        size_t again_size;
        const RunFile *files; /* more files for the run directory (the sandbox's) */
        size_t n_files;
} LaunchSpec;

typedef enum RunEnd {
        RUN_END_EXITED, /* the agent exited (any status) */
        RUN_END_CANCELLED,
        RUN_END_TIMEOUT,
        RUN_END_IDLE_TIMEOUT,
        RUN_END_OOM,
        RUN_END_LAUNCH_FAILED,
        RUN_END_LOST, /* found after a restart with its shim gone and no exit status */
        RUN_END_LOG_LIMIT, /* its output passed log_bytes_max: the shim stopped it */
        RUN_END_BUDGET, /* it reached a limit of what it may spend (the control plane's) */
        RUN_END_BUDGET_PAUSED, /* cancelled: its agent was paused by a budget */
        _RUN_END_MAX,
        _RUN_END_INVALID = -EINVAL,
} RunEnd;

const char *run_end_to_string(RunEnd e);
RunEnd run_end_from_string(const char *s);

typedef struct RunResult {
        const char *run_id;
        RunEnd end;
        int64_t exit_code; /* INT_NULL when the agent did not exit normally */
        const char *signal; /* "SIGKILL", or NULL */
        unsigned leftover; /* processes still in the cgroup after the agent exited, killed */
        uint64_t oom_kills;
        uint64_t log_bytes;
        uint64_t log_offset; /* how much of log.ndjson was ingested; 0 leaves the row's as it is */
        uint64_t log_dropped_bytes; /* output the shim could not write (the disk was full) */
        bool session_retried; /* the CLI could not resume its session and ran again afresh (shim.h, again) */
        char log_sha256[65];
        const char *stdout_excerpt;
        const char *stderr_excerpt;
        const char *error; /* what went wrong, for launch failures; NULL otherwise */
        const struct CliOutput *cli; /* what a coding CLI reported; set by the control plane */
        const char *record_error; /* set by the control plane when recording the whole end failed:
                                   * the run is recorded failed, finalize_failed, saying why */
        const char *budget_json; /* set by the control plane: the limit that stopped it, for its resultJson */
} RunResult;

/* Called once per run, after its cgroup is empty and removed. */
typedef void (*SupervisorFinished)(Supervisor *s, const RunResult *result, void *userdata);

typedef struct SupervisorConfig {
        const char *state_dir; /* runs/<id>/ lives below */
        const char *shim_path;
        uint64_t leftover_grace_usec; /* after the agent exits, how long leftovers may linger */
        const char *boot_id_path; /* NULL: /proc/sys/kernel/random/boot_id (tests simulate reboots) */
        bool exec_shims; /* execute every shim anew instead of forking it from the shim spawner */
} SupervisorConfig;

int supervisor_new(sd_event *event, Store *store, Placement *placement, const SupervisorConfig *config,
                   SupervisorFinished finished, void *userdata, Supervisor **ret);
Supervisor *supervisor_free(Supervisor *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Supervisor *, supervisor_free);

/* Start a run whose row exists (status running). The tracking columns are written to the
 * row before the agent executes its first instruction. A failure returned here leaves nothing
 * behind; one found later (the shim spawner failed, the run could not be placed or recorded)
 * ends the run as RUN_END_LAUNCH_FAILED through the finished callback, like any run. */
int supervisor_launch(Supervisor *s, const LaunchSpec *spec);

/* Timing of a run being recovered (from its agent's adapter configuration). */
typedef struct RecoverSpec {
        uint64_t grace_sec;
        uint64_t idle_timeout_sec;
        /* Another host took the run over while this one was away (corrald(8), HOSTS): what
         * is left of it is killed, and nothing of it written. */
        bool stale;
} RecoverSpec;

typedef enum RecoverOutcome {
        RECOVER_ADOPTED, /* the shim lives: tracked again, it ends as any run */
        RECOVER_FINISHING, /* the shim is gone: the run is being finished from what it left */
        RECOVER_REBOOTED, /* the run belongs to an earlier boot: reported lost at once */
} RecoverOutcome;

/* Take up a run in status running that no supervisor tracks (after a restart of corrald),
 * following design §5: a live shim (pidfd opens, start ticks match) is re-adopted with its
 * watchers and deadline; a dead one is finished with the exit status it wrote, or as lost,
 * after the run's cgroup is killed and empty. The finished callback reports the end. */
int supervisor_recover(Supervisor *s, const Run *run, const RecoverSpec *spec, RecoverOutcome *ret);

/* End a run: SIGTERM to the agent's process group through the shim, then after the grace
 * period every process in its cgroup is killed. why is CANCELLED, TIMEOUT, IDLE_TIMEOUT,
 * BUDGET or BUDGET_PAUSED.
 * -ENOENT when this supervisor does not track the run. */
int supervisor_stop(Supervisor *s, const char *run_id, RunEnd why);

/* This host may have been declared dead, and its runs taken over by another (corrald(8),
 * HOSTS): kill every process of every tracked run, and write nothing more of them; each is
 * forgotten once its cgroup is empty, without the finished callback. How many it fenced. */
unsigned supervisor_fence(Supervisor *s);

/* The end of this host's lease, for its shims, which stop their agents by themselves when it
 * passes with corrald gone or frozen (shim.h, lease_file): until_usec on CLOCK_MONOTONIC,
 * written atomically to STATE-DIR/SUPERVISOR_LEASE_FILE. Runs launched from the first call on
 * are fenced by it; runs taken up after a restart keep what their limits file says. */
#define SUPERVISOR_LEASE_FILE "host.lease"
int supervisor_set_lease(Supervisor *s, uint64_t until_usec);

/* The excerpts of a tracked run as they are now (malloc'ed into *ret_stdout, *ret_stderr,
 * replacing what they held): -ESRCH for a run not tracked. */
int supervisor_live_excerpts(Supervisor *s, const char *run_id, char **ret_stdout, char **ret_stderr);

bool supervisor_tracks(Supervisor *s, const char *run_id);
/* Whether the run's processes are gone (or it is not tracked): nothing is there to stop. */
bool supervisor_run_ending(Supervisor *s, const char *run_id);

/* How long launches took, from supervisor_launch() to the agent's start (GET /metrics). */
const struct Histogram *supervisor_launch_latency(Supervisor *s);

/* The output of a watched run, chunk by chunk as it is written: stream 0 is stdout, 1 stderr.
 * It may call supervisor_stop() on the run. */
typedef void (*SupervisorOutputFn)(Supervisor *s, const char *run_id, int stream, const char *data, size_t size, void *userdata);
void supervisor_set_output_watcher(Supervisor *s, SupervisorOutputFn fn, void *userdata);
/* Give a tracked run's output to the watcher, from its first byte (what is there already
 * first): -ENOENT when the run is not tracked. */
int supervisor_watch_output(Supervisor *s, const char *run_id);

/* The run's agent did something (an API request): a detached warning is cleared. */
void supervisor_report_activity(Supervisor *s, const char *run_id);
unsigned supervisor_count(Supervisor *s);
/* The shim spawner's pid, 0 while none runs. */
pid_t supervisor_spawner_pid(Supervisor *s);

/* The run directory of a run: <state_dir>/runs/<id>, and its log file. */
char *supervisor_run_dir(Supervisor *s, const char *run_id);
char *supervisor_log_path(Supervisor *s, const char *run_id);
