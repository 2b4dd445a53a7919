/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Run supervision against real processes and a real cgroup v2 hierarchy: the
 * shim, the cgroup backend, pidfd/inotify tracking, stopping and killing, and
 * log capture. Every case checks the terminal status and exit status, that no
 * process of the run is left (by a marker in its command line), that the run's
 * cgroup is gone, and that the log holds exactly what the agent wrote.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "supervise/cgroup.h"
#include "basic/log.h"
#include "store/model.h"
#include "supervise/placement.h"
#include "supervise/runlog.h"
#include "control/finalize.h"
#include "store/store.h"
#include "supervise/supervisor.h"
#include "../unit/test-helpers.h"
#include "basic/time-util.h"
#include "basic/fd-util.h"

static char state_dir[] = "/tmp/corral-test-sup-XXXXXX";
static char *cgroup_root;
static sd_event *event;
static Store *store;
static Placement *placement;
static Supervisor *supervisor;
static char company_id[UUID_STRING_MAX], agent_id[UUID_STRING_MAX];

/* What the finished callback saw. */
static struct {
        bool done;
        RunEnd end;
        int64_t exit_code;
        char signal[32];
        unsigned leftover;
        uint64_t log_bytes;
        Run run; /* the row after finalization */
} seen;

static void on_finished(Supervisor *s, const RunResult *result, void *userdata) {
        seen.done = true;
        seen.end = result->end;
        seen.exit_code = result->exit_code;
        snprintf(seen.signal, sizeof(seen.signal), "%s", strempty(result->signal));
        seen.leftover = result->leftover;
        seen.log_bytes = result->log_bytes;
        entity_done(&run_entity, &seen.run);
        assert_int_equal(finalize_run(store, result, &seen.run), 0);
}

static int insert_row(const Entity *e, void *obj) {
        return store_insert(store, e, obj);
}

static int setup(void **state) {
        _cleanup_free_ char *mount = NULL, *shim = NULL;
        _cleanup_(company_donep) Company c = {};
        _cleanup_(agent_donep) Agent a = {};
        char now[ISO_TIME_MAX];
        const char *builddir = getenv("CORRAL_BUILDDIR");

        log_set_max_level(LOG_WARNING);
        if (geteuid() != 0) {
                printf("1..0 # SKIP needs root to create cgroups\n");
                exit(77);
        }
        if (cgroup_find_v2_mount(&mount) < 0) {
                printf("1..0 # SKIP no cgroup v2 hierarchy is mounted\n");
                exit(77);
        }
        cgroup_root = strprintf("%s/corral-test-%d", mount, (int) getpid());
        assert_non_null(mkdtemp(state_dir));
        shim = strprintf("%s/corral-shim", builddir ?: ".");

        assert_int_equal(sd_event_new(&event), 0);
        assert_int_equal(store_open(":memory:", &store), 0);
        assert_int_equal(placement_new(PLACEMENT_CGROUP, cgroup_root, event, &placement), 0);
        SupervisorConfig config = { .state_dir = state_dir, .shim_path = shim, .leftover_grace_usec = 300000 };
        assert_int_equal(supervisor_new(event, store, placement, &config, on_finished, NULL, &supervisor), 0);

        iso_time_now(now);
        uuid_new(company_id);
        uuid_new(agent_id);
        assert_int_equal(entity_init(&company_entity, &c), 0);
        c.id = strdup(company_id);
        c.name = strdup("Test");
        c.issue_prefix = strdup("T");
        c.created_at = strdup(now);
        c.updated_at = strdup(now);
        assert_int_equal(insert_row(&company_entity, &c), 0);
        assert_int_equal(entity_init(&agent_entity, &a), 0);
        a.id = strdup(agent_id);
        a.company_id = strdup(company_id);
        a.name = strdup("agent");
        a.created_at = strdup(now);
        a.updated_at = strdup(now);
        assert_int_equal(insert_row(&agent_entity, &a), 0);
        return 0;
}

static int teardown(void **state) {
        _cleanup_free_ char *cmd = strprintf("rm -rf '%s'", state_dir);
        supervisor_free(supervisor);
        placement_free(placement);
        store_free(store);
        sd_event_unref(event);
        entity_done(&run_entity, &seen.run);
        /* Every run cgroup is gone when the tests pass; remove the root either way. */
        if (cgroup_root) {
                DIR *d = opendir(cgroup_root);
                struct dirent *de;
                while (d && (de = readdir(d)))
                        if (strncmp(de->d_name, "run-", 4) == 0) {
                                _cleanup_free_ char *p = strprintf("%s/%s", cgroup_root, de->d_name);
                                (void) cgroup_kill(p);
                                usleep(100000);
                                (void) rmdir(p);
                        }
                if (d)
                        closedir(d);
                (void) rmdir(cgroup_root);
        }
        free(cgroup_root);
        return system(cmd) == 0 ? 0 : -1;
}

/* A fresh run row in status running. */
static void new_run(char id[static UUID_STRING_MAX]) {
        _cleanup_(run_donep) Run r = {};
        char now[ISO_TIME_MAX];

        iso_time_now(now);
        uuid_new(id);
        assert_int_equal(entity_init(&run_entity, &r), 0);
        r.id = strdup(id);
        r.company_id = strdup(company_id);
        r.agent_id = strdup(agent_id);
        r.status = RUN_RUNNING;
        r.started_at = strdup(now);
        r.created_at = strdup(now);
        r.updated_at = strdup(now);
        assert_int_equal(insert_row(&run_entity, &r), 0);
}

static int on_safety_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        fail_msg("run %s did not finish in time", (const char *) userdata);
        return 0;
}

typedef struct Case {
        const char *script; /* sh -c script; $1 is the marker */
        char **argv; /* instead of sh -c script */
        void (*launched)(const char *run_id); /* called once supervisor_launch() returned */
        uint64_t timeout_sec, grace_sec, idle_sec;
        bool cancel_after_start;
        RunLimits limits;
        const char *stdin_text;
} Case;

/* Launch, let the loop run until the run finished, and check what every run must hold. */
static void run_case(const Case *c, char id[static UUID_STRING_MAX], char marker[static 64]) {
        _cleanup_(sd_event_source_unrefp) sd_event_source *safety = NULL;
        _cleanup_free_ char *cg = NULL;
        char *sh_argv[] = { "/bin/sh", "-c", (char *) c->script, "agent", marker, NULL }, **argv = c->argv ?: sh_argv;
        char *env[] = { "PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C", NULL };
        struct stat st;

        new_run(id);
        snprintf(marker, 64, "corral-marker-%s", id);
        LaunchSpec spec = {
                .run_id = id,
                .agent_id = agent_id,
                .argv = argv,
                .env = env,
                .timeout_sec = c->timeout_sec,
                .grace_sec = c->grace_sec,
                .idle_timeout_sec = c->idle_sec,
                .limits = c->limits,
                .stdin_text = c->stdin_text,
        };
        seen.done = false;
        entity_done(&run_entity, &seen.run);
        assert_int_equal(supervisor_launch(supervisor, &spec), 0);
        assert_true(supervisor_tracks(supervisor, id));
        cg = strprintf("%s/run-%s", cgroup_root, id);
        assert_int_equal(stat(cg, &st), 0);
        if (c->launched)
                c->launched(id);

        assert_int_equal(sd_event_add_time_relative(event, &safety, CLOCK_MONOTONIC, 120 * 1000000ULL, 0, on_safety_timeout, id),
                         0);
        if (c->cancel_after_start) {
                /* Let it start and print, then cancel. */
                _cleanup_free_ char *log = strprintf("%s/runs/%s/log.ndjson", state_dir, id);
                for (;;) {
                        assert_true(sd_event_run(event, 100000) >= 0);
                        _cleanup_(run_donep) Run r = {};
                        struct stat ls;
                        if (store_get(store, &run_entity, id, &r) >= 0 && r.process_pid != INT_NULL && stat(log, &ls) >= 0 &&
                            ls.st_size > 0)
                                break;
                        assert_false(seen.done);
                }
                assert_int_equal(supervisor_stop(supervisor, id, RUN_END_CANCELLED), 0);
        }
        while (!seen.done)
                assert_true(sd_event_run(event, UINT64_MAX) >= 0);
        assert_false(supervisor_tracks(supervisor, id));

        /* The cgroup is gone, and with it every process of the run. */
        assert_int_equal(stat(cg, &st), -1);
        assert_int_equal(errno, ENOENT);
        DIR *d = opendir("/proc");
        struct dirent *de;
        while ((de = readdir(d))) {
                _cleanup_free_ char *p = NULL, *cmdline = NULL;
                size_t n;
                if (de->d_name[0] < '1' || de->d_name[0] > '9')
                        continue;
                p = strprintf("/proc/%s/cmdline", de->d_name);
                if (read_full_file(p, 1 << 20, &cmdline, &n) < 0)
                        continue;
                for (size_t i = 0; i + 1 < n; i++)
                        if (cmdline[i] == 0)
                                cmdline[i] = ' ';
                if (strstr(cmdline, marker))
                        fail_msg("process %s of run %s survived: %s", de->d_name, id, cmdline);
        }
        closedir(d);
        assert_string_equal(seen.run.id, id);
}

/* The decoded output of one stream of a run's log. */
typedef struct Captured {
        int stream;
        char *data;
        size_t size;
        EVP_MD_CTX *sha;
} Captured;

static int capture(int stream, const char *data, size_t size, void *userdata) {
        Captured *c = userdata;
        if (stream != c->stream)
                return 0;
        if (c->sha) {
                EVP_DigestUpdate(c->sha, data, size);
                c->size += size;
                return 0;
        }
        c->data = realloc(c->data, c->size + size + 1);
        memcpy(c->data + c->size, data, size);
        c->size += size;
        c->data[c->size] = 0;
        return 0;
}

static char *stream_text(const char *id, int stream) {
        _cleanup_free_ char *path = strprintf("%s/runs/%s/log.ndjson", state_dir, id);
        Captured c = { .stream = stream };
        assert_int_equal(runlog_for_each_chunk(path, capture, &c), 0);
        return c.data ?: strdup("");
}

static void test_exit_codes_and_log(void **state) {
        char id[UUID_STRING_MAX], marker[64];
        _cleanup_free_ char *out = NULL, *err = NULL;
        Case c = { .script = "cat; echo; echo to stdout; echo to stderr >&2; printf 'caf\\303\\251 \\377 end'; exit 3",
                   .stdin_text = "from stdin" };

        run_case(&c, id, marker);
        assert_int_equal(seen.end, RUN_END_EXITED);
        assert_int_equal(seen.exit_code, 3);
        assert_int_equal(seen.run.status, RUN_FAILED);
        assert_string_equal(seen.run.error_code, "adapter_failed");
        assert_string_equal(seen.run.error, "Process exited with code 3: to stderr");
        assert_int_equal(seen.run.exit_code, 3);
        out = stream_text(id, 0);
        err = stream_text(id, 1);
        assert_string_equal(out, "from stdin\nto stdout\ncaf\xc3\xa9 \xff end");
        assert_string_equal(err, "to stderr\n");
        /* Tracking columns were written, and the digest covers the whole file. */
        assert_true(seen.run.shim_pid > 0);
        assert_true(seen.run.shim_start_ticks > 0);
        assert_true(seen.run.process_pid > 0);
        assert_int_equal(seen.run.process_group_id, seen.run.process_pid);
        assert_non_null(seen.run.boot_id);
        assert_non_null(strstr(seen.run.cgroup_path, "/run-"));
        assert_true(seen.run.log_bytes > 0);
        assert_int_equal(strlen(seen.run.log_sha256), 64);
        assert_non_null(strstr(seen.run.stdout_excerpt, "to stdout"));
        assert_non_null(strstr(seen.run.stderr_excerpt, "to stderr"));
        assert_int_equal(seen.run.log_offset, (int64_t) seen.log_bytes);
}

static void test_success(void **state) {
        char id[UUID_STRING_MAX], marker[64];
        Case c = { .script = "echo ok" };

        run_case(&c, id, marker);
        assert_int_equal(seen.run.status, RUN_SUCCEEDED);
        assert_null(seen.run.error_code);
        assert_int_equal(seen.exit_code, 0);
        assert_non_null(strstr(seen.run.result_json, "\"stopReason\":\"completed\""));
}

/* (a) a daemon double-forked with setsid outlives the agent: killed through the cgroup. */
static void test_double_fork_daemon(void **state) {
        char id[UUID_STRING_MAX], marker[64];
        _cleanup_free_ char *out = NULL;
        Case c = {
                .script = "echo parent; setsid sh -c 'sleep 300; : $1' \"$1\" </dev/null >/dev/null 2>&1 & echo forked; exit 0"
        };

        run_case(&c, id, marker);
        assert_int_equal(seen.run.status, RUN_SUCCEEDED);
        assert_int_equal(seen.exit_code, 0);
        assert_true(seen.leftover >= 1);
        out = stream_text(id, 0);
        assert_string_equal(out, "parent\nforked\n");
        /* setsid's shell and its sleep: both counted in the run's result. */
        assert_non_null(strstr(seen.run.result_json, "\"leftoverProcessesKilled\":"));
        assert_null(strstr(seen.run.result_json, "\"leftoverProcessesKilled\":0"));
}

/* (b) an agent that ignores SIGTERM is killed after the grace period. */
static void test_ignores_sigterm(void **state) {
        char id[UUID_STRING_MAX], marker[64];
        Case c = { .script = "trap '' TERM; echo started; while :; do sleep 0.05; done", .timeout_sec = 1, .grace_sec = 1 };

        run_case(&c, id, marker);
        assert_int_equal(seen.run.status, RUN_TIMED_OUT);
        assert_string_equal(seen.run.error_code, "timeout");
        assert_string_equal(seen.signal, "SIGKILL");
        assert_int_equal(seen.run.exit_code, INT_NULL);
}

/* (b') the same agent cancelled. */
static void test_cancel(void **state) {
        char id[UUID_STRING_MAX], marker[64];
        Case c = { .script = "trap '' TERM; echo started; while :; do sleep 0.05; done",
                   .grace_sec = 1,
                   .cancel_after_start = true };

        run_case(&c, id, marker);
        assert_int_equal(seen.run.status, RUN_CANCELLED);
        assert_string_equal(seen.run.error_code, "cancelled");
        /* It had started and ignored SIGTERM: the cgroup kill ended it. */
        assert_true(seen.run.process_pid > 0);
        assert_string_equal(seen.signal, "SIGKILL");
}

/* (c) 200 children left running. */
static void test_fork_200(void **state) {
        char id[UUID_STRING_MAX], marker[64];
        Case c = { .script = "for i in $(seq 200); do sh -c 'sleep 300; : $1' x \"$1\" & done; echo spawned; exit 0" };

        run_case(&c, id, marker);
        assert_int_equal(seen.run.status, RUN_SUCCEEDED);
        assert_true(seen.leftover >= 200);
}

/* (d) stdout closed early, the agent goes on with stderr. */
static void test_close_stdout_early(void **state) {
        char id[UUID_STRING_MAX], marker[64];
        _cleanup_free_ char *out = NULL, *err = NULL;
        Case c = { .script = "echo before; exec 1>&-; sleep 0.5; echo after >&2; exit 0" };

        run_case(&c, id, marker);
        assert_int_equal(seen.run.status, RUN_SUCCEEDED);
        out = stream_text(id, 0);
        err = stream_text(id, 1);
        assert_string_equal(out, "before\n");
        assert_string_equal(err, "after\n");
}

/* (e) 100 MB of output, every byte in the log. */
static void test_100mb(void **state) {
        static const char pattern[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_+\n";
        const size_t total = 100 * 1024 * 1024;
        char id[UUID_STRING_MAX], marker[64];
        unsigned char want[EVP_MAX_MD_SIZE], got[EVP_MAX_MD_SIZE];
        unsigned wl, gl;
        _cleanup_free_ char *path = NULL;
        Case c = { .script = "yes 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_+ | head -c 104857600" };

        run_case(&c, id, marker);
        assert_int_equal(seen.run.status, RUN_SUCCEEDED);

        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
        for (size_t done = 0; done < total;) {
                size_t n = total - done < sizeof(pattern) - 1 ? total - done : sizeof(pattern) - 1;
                EVP_DigestUpdate(ctx, pattern, n);
                done += n;
        }
        EVP_DigestFinal_ex(ctx, want, &wl);
        EVP_MD_CTX_free(ctx);

        Captured cap = { .stream = 0, .sha = EVP_MD_CTX_new() };
        EVP_DigestInit_ex(cap.sha, EVP_sha256(), NULL);
        path = strprintf("%s/runs/%s/log.ndjson", state_dir, id);
        assert_int_equal(runlog_for_each_chunk(path, capture, &cap), 0);
        EVP_DigestFinal_ex(cap.sha, got, &gl);
        EVP_MD_CTX_free(cap.sha);
        assert_int_equal(cap.size, total);
        assert_memory_equal(got, want, wl);
        /* The digest the shim made as it wrote the log is the file's. */
        uint64_t size;
        char sha256[65];
        assert_int_equal(runlog_digest(path, &size, sha256), 0);
        assert_int_equal(seen.run.log_bytes, (int64_t) size);
        assert_string_equal(seen.run.log_sha256, sha256);
        /* The excerpt is the tail, and no bigger than its limit. */
        assert_true(strlen(seen.run.stdout_excerpt) <= RUNLOG_EXCERPT_MAX);
        assert_true(strlen(seen.run.stdout_excerpt) > RUNLOG_EXCERPT_MAX - 100);
}

/* (f) death by a signal. */
static void test_signal(void **state) {
        char id[UUID_STRING_MAX], marker[64];
        Case c = { .script = "echo dying; kill -SEGV $$" };

        run_case(&c, id, marker);
        assert_int_equal(seen.run.status, RUN_FAILED);
        assert_string_equal(seen.run.signal, "SIGSEGV");
        assert_int_equal(seen.run.exit_code, INT_NULL);
        assert_string_equal(seen.run.error, "Process was killed by SIGSEGV");
}

/* (g) over the timeout: SIGTERM reaches the agent, which dies of it. */
static void test_timeout(void **state) {
        char id[UUID_STRING_MAX], marker[64];
        Case c = { .script = "echo waiting; exec sleep 300", .timeout_sec = 1, .grace_sec = 5 };

        run_case(&c, id, marker);
        assert_int_equal(seen.run.status, RUN_TIMED_OUT);
        assert_string_equal(seen.run.error_code, "timeout");
        assert_string_equal(seen.signal, "SIGTERM");
        assert_non_null(strstr(seen.run.result_json, "\"timeoutFired\":true"));
}

/* (h) silent past the idle timeout, although output came first. */
static void test_idle_timeout(void **state) {
        char id[UUID_STRING_MAX], marker[64];
        Case c = { .script = "for i in 1 2 3; do echo tick; sleep 0.4; done; exec sleep 300", .idle_sec = 1, .grace_sec = 5 };

        run_case(&c, id, marker);
        assert_int_equal(seen.run.status, RUN_TIMED_OUT);
        assert_string_equal(seen.run.error_code, "idle_timeout");
        assert_non_null(strstr(seen.run.stdout_excerpt, "tick\ntick\ntick\n"));
}

static void test_command_not_found(void **state) {
        char id[UUID_STRING_MAX], marker[64];
        _cleanup_free_ char *err = NULL;
        Case c = { .script = "exec /nonexistent/agent" };

        run_case(&c, id, marker);
        assert_int_equal(seen.run.status, RUN_FAILED);
        assert_int_equal(seen.exit_code, 127);
        err = stream_text(id, 1);
        assert_non_null(strstr(err, "/nonexistent/agent"));
}

static void test_limits_warning(void **state) {
        char id[UUID_STRING_MAX], marker[64];
        void *items;
        size_t n;
        bool warned = false;
        Case c = { .script = "echo limited", .limits = { .memory_max = 64 * 1024 * 1024, .tasks_max = 64 } };

        run_case(&c, id, marker);
        assert_int_equal(seen.run.status, RUN_SUCCEEDED);
        assert_int_equal(store_list(store, &run_event_entity, "WHERE run_id = ?1 ORDER BY seq", (const char *const[]){ id, NULL },
                                    0, &items, &n),
                         0);
        for (size_t i = 0; i < n; i++) {
                RunEvent *e = (RunEvent *) items + i;
                /* Either the limits were enforced or the run says which were not. */
                if (e->message && strstr(e->message, "limits not enforced"))
                        warned = true;
        }
        bool memory = cgroup_controller_available(cgroup_root, "memory") > 0;
        if (!memory)
                assert_true(warned);
        entity_array_free(&run_event_entity, items, n);
}

static void test_agent_not_executed(void **state) {
        char id[UUID_STRING_MAX], marker[64];
        char *missing[] = { "/nonexistent/agent", NULL }, *not_executable[] = { "/etc/passwd", NULL };
        _cleanup_free_ char *err = NULL, *err2 = NULL;
        Case c = { .argv = missing };

        /* The shim itself could not start it: a shell's exit codes, the reason in the log. */
        run_case(&c, id, marker);
        assert_int_equal(seen.run.status, RUN_FAILED);
        assert_int_equal(seen.exit_code, 127);
        assert_true(seen.run.shim_pid > 0);
        assert_int_equal(seen.run.process_pid, INT_NULL); /* there never was an agent */
        err = stream_text(id, 1);
        assert_string_equal(err, "corral-shim: cannot execute '/nonexistent/agent': No such file or directory\n");

        c.argv = not_executable;
        run_case(&c, id, marker);
        assert_int_equal(seen.exit_code, 126);
        err2 = stream_text(id, 1);
        assert_string_equal(err2, "corral-shim: cannot execute '/etc/passwd': Permission denied\n");
}

/* Out of descriptors: the launch fails at once, and its event names the limit to raise. */
static void test_out_of_descriptors(void **state) {
        char id[UUID_STRING_MAX];
        char *argv[] = { "/bin/true", NULL }, *env[] = { "PATH=/usr/bin:/bin", NULL };
        struct rlimit saved, tight;
        int64_t n;

        new_run(id);
        LaunchSpec spec = { .run_id = id, .agent_id = agent_id, .argv = argv, .env = env };
        assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
        /* No descriptor above the ones open now. */
        int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(probe >= 0);
        close(probe);
        tight = saved;
        tight.rlim_cur = (rlim_t) probe;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &tight), 0);
        int r = supervisor_launch(supervisor, &spec);
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
        assert_int_equal(r, -EMFILE);
        assert_false(supervisor_tracks(supervisor, id));
        assert_int_equal(store_count(store, "heartbeat_run_events", "WHERE run_id = ?1 AND message LIKE '%RLIMIT_NOFILE%'",
                                     (const char *const[]){ id, NULL }, &n),
                         0);
        assert_int_equal(n, 1);
}

/* The running shim of a run, as the kernel sees it. */
typedef struct ShimSeen {
        pid_t pid, ppid;
        char comm[32];
        char cmdline[256]; /* NULs as spaces */
        char cgroup[512];
} ShimSeen;

static ShimSeen shim_seen;

static void look_at_shim(const char *run_id) {
        _cleanup_(run_donep) Run r = {};
        _cleanup_free_ char *status = NULL, *comm = NULL, *cmdline = NULL, *cgroup = NULL;
        _cleanup_free_ char *p1 = NULL, *p2 = NULL, *p3 = NULL, *p4 = NULL;
        size_t n;

        /* The row names the shim before the agent may start: once the spawner answered
         * (an event of the loop), or at once for a shim corrald executed. */
        for (int i = 0; i < 500; i++) {
                entity_done(&run_entity, &r);
                assert_int_equal(store_get(store, &run_entity, run_id, &r), 0);
                if (r.shim_pid != INT_NULL && r.shim_pid > 0)
                        break;
                assert_true(sd_event_run(event, 10000) >= 0);
        }
        assert_true(r.shim_pid != INT_NULL && r.shim_pid > 0);
        shim_seen = (ShimSeen){ .pid = (pid_t) r.shim_pid };
        /* The start time in the row is the shim's own, whoever read it: recovery trusts it. */
        uint64_t ticks;
        assert_int_equal(pid_start_ticks(shim_seen.pid, &ticks), 0);
        assert_int_equal(r.shim_start_ticks, (int64_t) ticks);
        p1 = strprintf("/proc/%d/status", shim_seen.pid);
        p2 = strprintf("/proc/%d/comm", shim_seen.pid);
        p3 = strprintf("/proc/%d/cmdline", shim_seen.pid);
        p4 = strprintf("/proc/%d/cgroup", shim_seen.pid);
        assert_int_equal(read_full_file(p1, 1 << 16, &status, NULL), 0);
        /* A shim forked by the spawner names itself in its first instructions, which need not
         * have run yet when the spawner answered. */
        for (int i = 0; i < 1000; i++) {
                comm = mfree(comm);
                assert_int_equal(read_full_file(p2, 64, &comm, NULL), 0);
                if (strncmp(comm, "corral-spawner", 14) != 0)
                        break;
                usleep(1000);
        }
        /* An executed shim's command line is there once its execve is through. */
        for (int i = 0; i < 1000; i++) {
                cmdline = mfree(cmdline);
                assert_int_equal(read_full_file(p3, 1 << 16, &cmdline, &n), 0);
                if (n > 0)
                        break;
                usleep(1000);
        }
        assert_int_equal(read_full_file(p4, 1 << 16, &cgroup, NULL), 0);
        const char *pp = strstr(status, "\nPPid:");
        assert_non_null(pp);
        shim_seen.ppid = (pid_t) strtol(pp + 6, NULL, 10);
        snprintf(shim_seen.comm, sizeof(shim_seen.comm), "%s", strstrip(comm));
        for (size_t i = 0; i + 1 < n; i++)
                if (cmdline[i] == 0)
                        cmdline[i] = ' ';
        snprintf(shim_seen.cmdline, sizeof(shim_seen.cmdline), "%s", cmdline);
        snprintf(shim_seen.cgroup, sizeof(shim_seen.cgroup), "%s", strstrip(cgroup));
}

/* Whether the shim seen was forked by the spawner (it has the spawner's command line) rather
 * than executed (it has its run directory on its command line). */
static bool shim_was_forked(const char *run_id) {
        bool forked = strstr(shim_seen.cmdline, "--spawner") != NULL;
        assert_true(forked != (strstr(shim_seen.cmdline, run_id) != NULL));
        return forked;
}

static void test_spawner_forks_shims(void **state) {
        char id[UUID_STRING_MAX], marker[64];
        Case c = { .script = "echo ok", .launched = look_at_shim };
        pid_t spawner = supervisor_spawner_pid(supervisor);

        assert_true(spawner > 0);
        run_case(&c, id, marker);
        assert_int_equal(seen.run.status, RUN_SUCCEEDED);
        /* Forked by the spawner, yet our child, in its run's cgroup, under its own name. */
        assert_true(shim_was_forked(id));
        assert_int_equal(shim_seen.ppid, getpid());
        assert_string_equal(shim_seen.comm, "corral-shim");
        _cleanup_free_ char *want = strprintf("/run-%s", id);
        assert_non_null(strstr(shim_seen.cgroup, want));
        assert_int_equal(supervisor_spawner_pid(supervisor), spawner);
}

static int on_spawner_gone_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        fail_msg("the supervisor did not notice that its shim spawner died");
        return 0;
}

/* Kill the spawner and run the loop until the supervisor has noticed and reaped it. */
static void kill_spawner(void) {
        _cleanup_(sd_event_source_unrefp) sd_event_source *safety = NULL;
        pid_t spawner = supervisor_spawner_pid(supervisor);

        assert_true(spawner > 0);
        assert_int_equal(kill(spawner, SIGKILL), 0);
        assert_int_equal(
                sd_event_add_time_relative(event, &safety, CLOCK_MONOTONIC, 10 * 1000000ULL, 0, on_spawner_gone_timeout, NULL),
                0);
        while (supervisor_spawner_pid(supervisor) != 0)
                assert_true(sd_event_run(event, UINT64_MAX) >= 0);
        /* Reaped: no zombie is left of it. */
        _cleanup_free_ char *proc = strprintf("/proc/%d", (int) spawner);
        assert_int_equal(access(proc, F_OK), -1);
}

/* A dead spawner costs no launch: it is started again, at most once a second, and shims are
 * executed meanwhile. */
static void test_spawner_killed(void **state) {
        char id[UUID_STRING_MAX], marker[64];
        Case c = { .script = "echo ok", .launched = look_at_shim };
        pid_t first = supervisor_spawner_pid(supervisor), second;

        /* Started long enough ago: the next launch starts a new one and goes through it. */
        kill_spawner();
        run_case(&c, id, marker);
        assert_int_equal(seen.run.status, RUN_SUCCEEDED);
        assert_true(shim_was_forked(id));
        second = supervisor_spawner_pid(supervisor);
        assert_true(second > 0);
        assert_int_not_equal(second, first);

        /* Dead again within a second of its start: the shim is executed. */
        kill_spawner();
        run_case(&c, id, marker);
        assert_int_equal(seen.run.status, RUN_SUCCEEDED);
        assert_false(shim_was_forked(id));
        assert_int_equal(supervisor_spawner_pid(supervisor), 0);

        usleep(1100 * 1000);
        run_case(&c, id, marker);
        assert_int_equal(seen.run.status, RUN_SUCCEEDED);
        assert_true(shim_was_forked(id));
        assert_true(supervisor_spawner_pid(supervisor) > 0);
        assert_int_not_equal(supervisor_spawner_pid(supervisor), second);
}

/* A spawner that stops answering: killed after ten seconds, the run it held up fails as
 * launch_failed with nothing left of it, and the next launch does not wait for it. */
static void test_spawner_hangs(void **state) {
        char id[UUID_STRING_MAX], marker[64];
        Case c = { .script = "echo never" };
        pid_t spawner = supervisor_spawner_pid(supervisor);

        assert_true(spawner > 0);
        assert_int_equal(kill(spawner, SIGSTOP), 0);
        run_case(&c, id, marker);
        assert_int_equal(seen.end, RUN_END_LAUNCH_FAILED);
        assert_int_equal(seen.run.status, RUN_FAILED);
        assert_non_null(strstr(seen.run.error, "the shim spawner failed"));
        assert_int_equal(seen.run.shim_pid, INT_NULL);
        _cleanup_free_ char *proc = strprintf("/proc/%d", (int) spawner);
        assert_int_equal(access(proc, F_OK), -1);

        c.script = "echo ok";
        run_case(&c, id, marker);
        assert_int_equal(seen.run.status, RUN_SUCCEEDED);
}

static void run_pending(void) {
        for (int i = 0; i < 100; i++)
                assert_true(sd_event_run(event, 0) >= 0);
}

/* Inode numbers of the spare run directories there are now. */
static size_t spare_inodes(ino_t *ret, size_t max) {
        _cleanup_free_ char *runs = strprintf("%s/spares", state_dir);
        DIR *d = opendir(runs);
        size_t n = 0;

        assert_non_null(d);
        for (struct dirent *de; (de = readdir(d)) && n < max;)
                if (strncmp(de->d_name, ".spare-", 7) == 0)
                        ret[n++] = de->d_ino;
        closedir(d);
        return n;
}

/* A launch renames a spare directory into place, with its log and context files, and the
 * spares are made again once the run has started. */
static void test_spare_run_dirs(void **state) {
        char id[UUID_STRING_MAX], marker[64];
        ino_t before[16], after[16];
        size_t n_before, n_after;
        struct stat st;
        /* It runs in its run directory: the spare's empty context.json is gone (this run has
         * no context), its log is there. */
        Case c = { .script = "test ! -e context.json && test -e log.ndjson" };

        /* The loop makes them when nothing more urgent is pending (one source per iteration). */
        run_pending();
        n_before = spare_inodes(before, ELEMENTSOF(before));
        assert_true(n_before > 0);
        run_case(&c, id, marker);
        assert_int_equal(seen.run.status, RUN_SUCCEEDED);
        _cleanup_free_ char *dir = strprintf("%s/runs/%s", state_dir, id);
        assert_int_equal(stat(dir, &st), 0);
        bool from_spare = false;
        for (size_t i = 0; i < n_before; i++)
                from_spare = from_spare || before[i] == st.st_ino;
        assert_true(from_spare);
        run_pending();
        n_after = spare_inodes(after, ELEMENTSOF(after));
        assert_int_equal(n_after, n_before);
}

/* shim-spawner = no: every shim is executed, and there is no spawner. */
static void test_exec_shims(void **state) {
        _cleanup_free_ char *shim = strprintf("%s/corral-shim", getenv("CORRAL_BUILDDIR") ?: ".");
        char id[UUID_STRING_MAX], marker[64];
        Case c = { .script = "echo ok", .launched = look_at_shim };
        Supervisor *with_spawner = supervisor;
        SupervisorConfig config = {
                .state_dir = state_dir, .shim_path = shim, .leftover_grace_usec = 300000, .exec_shims = true
        };

        /* An earlier corrald's spare run directory is removed when a supervisor starts. */
        _cleanup_free_ char *stale = strprintf("%s/spares/.spare-stale", state_dir),
                            *stale_log = strprintf("%s/log.ndjson", stale);
        assert_int_equal(mkdir(stale, 0750), 0);
        assert_int_equal(close(open(stale_log, O_WRONLY | O_CREAT | O_CLOEXEC, 0640)), 0);
        assert_int_equal(supervisor_new(event, store, placement, &config, on_finished, NULL, &supervisor), 0);
        assert_int_equal(access(stale, F_OK), -1);
        assert_int_equal(supervisor_spawner_pid(supervisor), 0);
        run_case(&c, id, marker);
        assert_int_equal(seen.run.status, RUN_SUCCEEDED);
        assert_false(shim_was_forked(id));
        assert_int_equal(shim_seen.ppid, getpid());
        supervisor_free(supervisor);
        supervisor = with_spawner;
}

static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_codes_and_log),
        cmocka_unit_test(test_success),
        cmocka_unit_test(test_double_fork_daemon),
        cmocka_unit_test(test_ignores_sigterm),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_fork_200),
        cmocka_unit_test(test_close_stdout_early),
        cmocka_unit_test(test_100mb),
        cmocka_unit_test(test_signal),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_command_not_found),
        cmocka_unit_test(test_limits_warning),
        cmocka_unit_test(test_agent_not_executed),
        cmocka_unit_test(test_out_of_descriptors),
        cmocka_unit_test(test_spawner_forks_shims),
        cmocka_unit_test(test_spawner_killed),
        cmocka_unit_test(test_spawner_hangs),
        cmocka_unit_test(test_spare_run_dirs),
        cmocka_unit_test(test_exec_shims),
};

int main(void) {
        cmocka_set_message_output(CM_OUTPUT_TAP);
        return cmocka_run_group_tests(tests, setup, teardown);
}
