/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * corral's benchmarks (`make bench`): every figure is measured side by side with a
 * reference in the same run, and printed as medians and ratios. Nothing here is a
 * test: no figure fails the run.
 *
 *   bench --corrald PATH --agent PATH [--placement KIND] [--runs N] [--seconds S]
 *         [--recovery-runs N] [--log-bytes N] [--only NAME] [--reference-scope] [--keep-state]
 *         [--database PATH|URI]
 *
 * It starts its own corrald on a temporary state directory and socket, and stops it; the
 * hosts stage (--only hosts, on PostgreSQL) two more beside it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <dirent.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "supervise/cgroup.h"
#include "supervise/runlog.h"
#include "basic/fd-util.h"

extern char **environ;

static const char *corrald_path, *agent_path, *placement = "cgroup", *only, *sandbox = "no", *database;
static bool reference_scope; /* the launch reference is systemd-run --scope, not posix_spawn */
/* Leave the state directory behind: to look at it, and because on an ext4 without a
 * journal, deleting thousands of files makes every file created in the same block group
 * for a while after slow (ext4 scans past recently deleted inodes), which would slow the
 * next benchmark run. */
static bool keep_state;
/* On disk like /var/lib/corral, which /tmp need not be (it is a tmpfs on many systems). */
static char state_dir[] = "/var/tmp/corral-bench-XXXXXX";
/* What the agents and the bench share (the stamp fifo, the release file): outside the
 * state directory, which a sandboxed agent does not see, and given to sandboxed agents as
 * a read-write path. */
static char share_dir[] = "/var/tmp/corral-bench-share-XXXXXX";
static char socket_path[100], fifo_path[160];
static pid_t corrald_pid;
/* The hosts stage (PostgreSQL): two more corralds on the same database, each with its own
 * state directory, socket, cgroup root and host id; wakes go to the three in turn. */
#define EXTRA_HOSTS 2
typedef struct ExtraHost {
        pid_t pid;
        char id[32], state[64], socket[100], cgroup[4200];
} ExtraHost;
static ExtraHost extra[EXTRA_HOSTS];
static char main_socket[100];
static unsigned n_hosts = 1; /* what wake() spreads over: 1, or 1 + EXTRA_HOSTS */
static unsigned n_runs = 1000, seconds = 30, recovery_runs = 1000;
static uint64_t log_bytes = UINT64_C(1) << 30;

static int64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_us(long us) {
        struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 };
        nanosleep(&ts, NULL);
}

/* With the cgroup backend, the bench's runs live under a root of its own, which it removes
 * at the end: runs that outlive a corrald the bench stopped leave nothing behind. */
static char cgroup_root[4096];

/* Stop a corrald the bench started, if it still runs, and reap it. */
static void stop_process(pid_t *pid, int sig) {
        if (*pid <= 0)
                return;
        kill(*pid, sig);
        waitpid(*pid, NULL, 0);
        *pid = 0;
}

static void remove_cgroup_tree(const char *root) {
        DIR *d;

        if (!root[0] || !(d = opendir(root)))
                return;
        for (struct dirent *de; (de = readdir(d));) {
                if (strncmp(de->d_name, "run-", 4) != 0)
                        continue;
                _cleanup_free_ char *cg = strprintf("%s/%s", root, de->d_name);
                if (!cg)
                        continue;
                (void) cgroup_kill(cg);
                for (int i = 0; i < 200 && rmdir(cg) < 0 && errno == EBUSY; i++)
                        sleep_us(10000);
        }
        closedir(d);
        (void) rmdir(root);
}

static void remove_cgroup_root(void) {
        remove_cgroup_tree(cgroup_root);
        for (int i = 0; i < EXTRA_HOSTS; i++) {
                stop_process(&extra[i].pid, SIGKILL);
                remove_cgroup_tree(extra[i].cgroup);
        }
}

static _noreturn_ void die(const char *fmt, ...) _printf_(1, 2);
static _noreturn_ void die(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs("bench: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        stop_process(&corrald_pid, SIGTERM);
        remove_cgroup_root();
        exit(1);
}

/* ---- a small HTTP/1.1 client on the Unix socket: one connection per request ---- */

static int http(const char *method, const char *path, const char *body, char **ret_body) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_free_ char *request = NULL, *reply = NULL;
        size_t size = 0, allocated = 0;
        int fd, status = -1;

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socket_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                safe_close(fd);
                return -errno;
        }
        request = strprintf("%s %s HTTP/1.1\r\nHost: corral\r\nConnection: close\r\nContent-Type: application/json\r\n"
                            "Content-Length: %zu\r\n\r\n%s",
                            method, path, body ? strlen(body) : 0, body ?: "");
        if (!request || write(fd, request, strlen(request)) != (ssize_t) strlen(request)) {
                safe_close(fd);
                return -EIO;
        }
        for (;;) {
                if (size + 4096 + 1 > allocated) {
                        allocated = (size + 4096 + 1) * 2;
                        char *t = realloc(reply, allocated);
                        if (!t)
                                die("out of memory");
                        reply = t;
                }
                ssize_t k = read(fd, reply + size, allocated - size - 1);
                if (k <= 0)
                        break;
                size += (size_t) k;
        }
        safe_close(fd);
        if (!reply)
                return -EIO;
        reply[size] = 0;
        if (sscanf(reply, "HTTP/1.1 %d", &status) != 1)
                return -EIO;
        if (ret_body) {
                char *b = strstr(reply, "\r\n\r\n");
                *ret_body = strdup(b ? b + 4 : "");
        }
        return status;
}

/* The string value of "key" in a JSON object text (good enough for ids and statuses). */
static char *json_string(const char *json, const char *key) {
        _cleanup_free_ char *needle = strprintf("\"%s\":\"", key);
        const char *p = json && needle ? strstr(json, needle) : NULL;
        if (!p)
                return NULL;
        p += strlen(needle);
        return strndup(p, strcspn(p, "\""));
}

static int64_t json_int(const char *json, const char *key) {
        _cleanup_free_ char *needle = strprintf("\"%s\":", key);
        const char *p = json && needle ? strstr(json, needle) : NULL;
        return p ? strtoll(p + strlen(needle), NULL, 10) : -1;
}

static char *post_id(const char *path, const char *body) {
        _cleanup_free_ char *reply = NULL;
        int status = http("POST", path, body, &reply);
        if (status < 200 || status >= 300)
                die("POST %s: %d %s", path, status, strempty(reply));
        return json_string(reply, "id");
}

static int64_t active_runs(void) {
        _cleanup_free_ char *reply = NULL;
        if (http("GET", "/api/health", NULL, &reply) != 200)
                return -1;
        return json_int(reply, "activeRuns");
}

/* The count of runs with a status, from /metrics. */
static int64_t runs_with_status(const char *status) {
        _cleanup_free_ char *reply = NULL, *needle = strprintf("corral_runs{status=\"%s\"} ", status);
        if (http("GET", "/metrics", NULL, &reply) != 200 || !needle)
                return -1;
        const char *p = strstr(reply, needle);
        return p ? strtoll(p + strlen(needle), NULL, 10) : 0;
}

static bool run_terminal(const char *run_id) {
        _cleanup_free_ char *path = strprintf("/api/heartbeat-runs/%s", run_id), *reply = NULL, *status = NULL;
        if (http("GET", path, NULL, &reply) != 200)
                return false;
        status = json_string(reply, "status");
        return status && !streq(status, "queued") && !streq(status, "running");
}

static void wait_idle(void) {
        for (int i = 0; i < 600000 && active_runs() != 0; i++)
                sleep_us(1000);
}

/* ---- corrald ---- */

/* corrald on a state directory and socket: as host_id (NULL: the machine's), its runs'
 * cgroups under cgroup (empty: none of its own). */
static pid_t spawn_corrald(char *state, char *socket, char *host_id, char *cgroup) {
        /* --database, or the default said as what it is: the SQLite file of the state directory. */
        _cleanup_free_ char *db_default = strprintf("%s/corral.db", state);
        /* Errors only: not the warning an unconfined agent gets at every launch. */
        char *argv[24] = { (char *) corrald_path,
                           "--state-dir",
                           state,
                           "--socket",
                           socket,
                           "--placement",
                           (char *) placement,
                           "--log-level",
                           "err",
                           "--sweep-interval-sec",
                           "86400",
                           "--sandbox",
                           (char *) sandbox,
                           "--database",
                           database ? (char *) database : db_default };
        size_t n = 15;
        if (cgroup[0]) {
                argv[n++] = "--cgroup-root";
                argv[n++] = cgroup;
        }
        if (host_id) {
                argv[n++] = "--host-id";
                argv[n++] = host_id;
        }
        pid_t pid;
        if (posix_spawn(&pid, corrald_path, NULL, NULL, argv, environ) != 0)
                die("cannot start %s", corrald_path);
        return pid;
}

static void start_corrald(void) {
        corrald_pid = spawn_corrald(state_dir, socket_path, NULL, cgroup_root);
        for (int i = 0; i < 20000; i++) {
                if (http("GET", "/api/health", NULL, NULL) == 200)
                        return;
                sleep_us(500);
        }
        die("corrald did not answer");
}

static void stop_corrald(int sig) {
        stop_process(&corrald_pid, sig);
}

/* ---- statistics ---- */

static int cmp_i64(const void *a, const void *b) {
        int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
        return x < y ? -1 : x > y;
}

static int64_t percentile(int64_t *v, size_t n, double p) {
        qsort(v, n, sizeof(int64_t), cmp_i64);
        size_t i = (size_t) (p * (double) (n - 1) + 0.5);
        return v[i];
}

static void row(const char *what, const char *corral, const char *reference, const char *ratio, const char *goal) {
        char label[128];

        snprintf(label, sizeof(label), "%s%s", what, n_hosts > 1 ? ", 3 hosts" : "");
        printf("| %-34s | %-22s | %-22s | %-8s | %-20s |\n", label, corral, reference, ratio, goal);
        fflush(stdout);
}

static bool want(const char *name) {
        return !only || streq(only, name);
}

static char company[64];

static char *new_agent(const char *name, const char *config, const char *runtime) {
        /* A sandboxed agent reaches the shared directory; config is an object: "{..." */
        _cleanup_free_ char *sandboxed = streq(sandbox, "yes")
                ? strprintf("{\"sandbox\":{\"readWritePaths\":[\"%s\"]},%s", share_dir, config + 1)
                : strdup(config);
        _cleanup_free_ char *path = strprintf("/api/companies/%s/agents", company),
                            *body = strprintf("{\"name\":\"%s\",\"adapterConfig\":%s,\"runtimeConfig\":%s}", name, sandboxed,
                                              runtime ?: "{}");
        return post_id(path, body);
}

static void use_socket(const char *path) {
        snprintf(socket_path, sizeof(socket_path), "%s", path);
}

/* Through the hosts in turn, in the hosts stage. */
static char *wake(const char *agent, unsigned key) {
        _cleanup_free_ char *path = strprintf("/api/agents/%s/wakeup", agent),
                            *body = strprintf("{\"payload\":{\"taskKey\":\"k%u\"}}", key);
        if (n_hosts > 1 && key % n_hosts > 0)
                use_socket(extra[key % n_hosts - 1].socket);
        char *id = post_id(path, body);
        use_socket(main_socket);
        return id;
}

/* ---- 1. launch latency ---- */

static int64_t read_stamp(int fifo) {
        int64_t t;
        if (read(fifo, &t, sizeof(t)) != sizeof(t))
                die("the agent's stamp did not arrive");
        return t;
}

/* n wakes of agent, one after the other, each timed to its agent's first instruction. */
static void time_launches(int fifo, const char *agent, unsigned n, int64_t *ret) {
        for (unsigned i = 0; i < n; i++) {
                int64_t t0 = now_ns();
                _cleanup_free_ char *run = wake(agent, i);
                ret[i] = read_stamp(fifo) - t0;
                while (!run_terminal(run))
                        sleep_us(200);
        }
}

static void bench_launch(int fifo) {
        _cleanup_free_ int64_t *corral = calloc(n_runs, sizeof(int64_t)), *spawn = calloc(n_runs, sizeof(int64_t));
        _cleanup_free_ char *config = strprintf("{\"command\":\"%s\",\"env\":{\"BENCH_FIFO\":\"%s\"}}", agent_path, fifo_path);
        _cleanup_free_ char *agent = new_agent("launch", config, NULL);
        _cleanup_free_ char *env_fifo = strprintf("BENCH_FIFO=%s", fifo_path);
        char *argv[] = { (char *) agent_path, NULL }, *envp[] = { env_fifo, (char *) "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
        char a[64], b[64], c[32];

        time_launches(fifo, agent, n_runs, corral);
        char *scope_argv[] = { (char *) "systemd-run",
                               (char *) "--scope",
                               (char *) "--quiet",
                               (char *) "--collect",
                               (char *) "--",
                               (char *) agent_path,
                               NULL };
        for (unsigned i = 0; i < n_runs; i++) {
                pid_t pid;
                int64_t t0 = now_ns();
                if (reference_scope ? posix_spawnp(&pid, "systemd-run", NULL, NULL, scope_argv, envp) != 0
                                    : posix_spawn(&pid, agent_path, NULL, NULL, argv, envp) != 0)
                        die("cannot start the reference");
                spawn[i] = read_stamp(fifo) - t0;
                waitpid(pid, NULL, 0);
        }
        int64_t cm = percentile(corral, n_runs, 0.5), c99 = percentile(corral, n_runs, 0.99);
        int64_t sm = percentile(spawn, n_runs, 0.5), s99 = percentile(spawn, n_runs, 0.99);
        snprintf(a, sizeof(a), "%.3f / %.3f ms", cm / 1e6, c99 / 1e6);
        snprintf(b, sizeof(b), "%.3f / %.3f ms", sm / 1e6, s99 / 1e6);
        snprintf(c, sizeof(c), "%.1fx", (double) cm / (double) sm);
        row("launch: wake → first instruction", a, b, c, reference_scope ? "≤ 1x (systemd-run)" : "≤ 2 ms and ≤ 3x");
        printf("|   (median / p99 over %u runs; reference: %s of the same binary) |\n", n_runs,
               reference_scope ? "systemd-run --scope" : "posix_spawn");
}

/* ---- 3. throughput ---- */

static void bench_throughput(void) {
        enum { AGENTS = 8, IN_FLIGHT = 160 };
        char *agents[AGENTS];
        unsigned wakes = 0;
        char a[64], b[64], c[32];

        for (int i = 0; i < AGENTS; i++) {
                char name[32];
                snprintf(name, sizeof(name), "true-%d", i);
                agents[i] = new_agent(name, "{\"command\":\"/bin/true\"}", "{\"heartbeat\":{\"maxConcurrentRuns\":10}}");
        }
        int64_t t0 = now_ns(), end = t0 + (int64_t) seconds * 1000000000;
        while (now_ns() < end) {
                free(wake(agents[wakes % AGENTS], wakes));
                wakes++;
                if (wakes % 40 == 0)
                        while (active_runs() > IN_FLIGHT)
                                sleep_us(1000);
        }
        wait_idle();
        double corral_rate = wakes / ((now_ns() - t0) / 1e9);
        for (int i = 0; i < AGENTS; i++)
                free(agents[i]);

        /* Reference: /bin/true spawned and reaped with as many in flight as cores. */
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        unsigned spawned = 0, running = 0;
        char *argv[] = { (char *) "/bin/true", NULL };
        t0 = now_ns();
        end = t0 + (int64_t) seconds * 1000000000;
        while (now_ns() < end || running > 0) {
                if (now_ns() < end && running < (unsigned) cores * 2) {
                        pid_t pid;
                        if (posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ) == 0) {
                                running++;
                                spawned++;
                        }
                        continue;
                }
                if (wait(NULL) > 0)
                        running--;
        }
        double spawn_rate = spawned / ((now_ns() - t0) / 1e9);
        snprintf(a, sizeof(a), "%.0f runs/s", corral_rate);
        snprintf(b, sizeof(b), "%.0f spawns/s", spawn_rate);
        snprintf(c, sizeof(c), "%.2f", corral_rate / spawn_rate);
        row("throughput: /bin/true wake → end", a, b, c, "≥ 500 runs/s");
        printf("|   (%u runs over %u s, 8 agents x 10 slots; reference: posix_spawn + wait, 2 per core) |\n", wakes, seconds);
}

/* ---- 5. log ingestion ---- */

typedef struct Count {
        uint64_t bytes;
} Count;

static int count_chunk(int stream, const char *data, size_t size, void *userdata) {
        ((Count *) userdata)->bytes += stream == 0 ? size : 0;
        return 0;
}

static void bench_log(void) {
        _cleanup_free_ char *config =
                strprintf("{\"command\":\"%s\",\"args\":[\"%" PRIu64 "\"],\"timeoutSec\":0}", agent_path, log_bytes);
        _cleanup_free_ char *agent = new_agent("writer", config, NULL);
        _cleanup_free_ char *file = strprintf("%s/reference.out", state_dir), *count = strprintf("%" PRIu64, log_bytes);
        char a[64], b[64], c[32];

        int64_t t0 = now_ns();
        _cleanup_free_ char *run = wake(agent, 0);
        while (!run_terminal(run))
                sleep_us(2000);
        double corral_s = (now_ns() - t0) / 1e9;
        _cleanup_free_ char *log = strprintf("%s/runs/%s/log.ndjson", state_dir, run);
        Count n = {};
        (void) runlog_for_each_chunk(log, count_chunk, &n);

        /* Reference: the same stream into a file ("cat > file"). */
        pid_t pid;
        posix_spawn_file_actions_t fa;
        char *argv[] = { (char *) agent_path, count, NULL };
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        t0 = now_ns();
        if (posix_spawn(&pid, agent_path, &fa, NULL, argv, environ) != 0)
                die("posix_spawn failed");
        waitpid(pid, NULL, 0);
        if (fsync(open(file, O_RDONLY)) < 0) {
        }
        double ref_s = (now_ns() - t0) / 1e9;
        posix_spawn_file_actions_destroy(&fa);
        unlink(file);
        double mb = log_bytes / 1e6;
        snprintf(a, sizeof(a), "%.0f MB/s", mb / corral_s);
        snprintf(b, sizeof(b), "%.0f MB/s", mb / ref_s);
        snprintf(c, sizeof(c), "%.2f", ref_s / corral_s);
        row("log ingestion: one agent, flat out", a, b, c, "≥ 200 MB/s");
        printf("|   (%" PRIu64 " bytes written, %" PRIu64 " in the log%s; reference: the same stream > file) |\n", log_bytes,
               n.bytes, n.bytes == log_bytes ? ", nothing lost" : ", BYTES MISSING");
        unlink(log);
}

/* ---- 6. memory and 4. recovery ---- */

static long status_kb(pid_t pid, const char *key) {
        _cleanup_free_ char *path = strprintf("/proc/%d/status", (int) pid), *text = NULL;
        if (read_full_file(path, 1 << 16, &text, NULL) < 0)
                return -1;
        const char *p = strstr(text, key);
        return p ? strtol(p + strlen(key) + 1, NULL, 10) : -1;
}

static long pss_kb(pid_t pid) {
        _cleanup_free_ char *path = strprintf("/proc/%d/smaps_rollup", (int) pid), *text = NULL;
        if (read_full_file(path, 1 << 16, &text, NULL) < 0)
                return -1;
        const char *p = strstr(text, "\nPss:");
        return p ? strtol(p + 5, NULL, 10) : -1;
}

/* Pids of processes whose command line starts with prefix (benchmark only: corral never scans pids). */
static size_t find_procs(const char *exe_suffix, pid_t *ret, size_t max) {
        size_t n = 0;
        for (pid_t pid = 2; pid < 4194304 && n < max; pid++) {
                char path[64];
                snprintf(path, sizeof(path), "/proc/%d/comm", (int) pid);
                _cleanup_free_ char *comm = NULL;
                if (access(path, F_OK) < 0 || read_full_file(path, 64, &comm, NULL) < 0)
                        continue;
                if (streq(strstrip(comm), exe_suffix))
                        ret[n++] = pid;
        }
        return n;
}

static void bench_recovery(void) {
        unsigned agents = (recovery_runs + 9) / 10;
        char **ids = calloc(agents, sizeof(char *));
        char a[64], b[64], c[32];
        long idle_rss = status_kb(corrald_pid, "VmRSS:");

        /* Half the runs sleep for long; the other half end once corrald is down (when the
         * release file appears), so they finish while nobody watches them. */
        _cleanup_free_ char *release = strprintf("%s/release", share_dir);
        _cleanup_free_ char *waiter = strprintf("{\"command\":\"/bin/sh\",\"args\":[\"-c\",\"while [ ! -e %s ]; do sleep 0.2; "
                                                "done\"]}",
                                                release);
        for (unsigned i = 0; i < agents; i++) {
                char name[32];
                snprintf(name, sizeof(name), "sleeper-%u", i);
                ids[i] = new_agent(name, i % 2 ? "{\"command\":\"/bin/sleep\",\"args\":[\"3600\"]}" : waiter,
                                   "{\"heartbeat\":{\"maxConcurrentRuns\":10}}");
        }
        for (unsigned k = 0; k < recovery_runs; k++)
                free(wake(ids[k % agents], k));
        for (int i = 0; i < 60000 && runs_with_status("running") < recovery_runs; i++)
                sleep_us(1000);
        int64_t running = runs_with_status("running");

        /* 6. memory, with every run alive. */
        long rss = status_kb(corrald_pid, "VmRSS:");
        pid_t *shims = calloc(recovery_runs + 16, sizeof(pid_t)), *sleeps = calloc(recovery_runs + 16, sizeof(pid_t));
        size_t n_shims = find_procs("corral-shim", shims, recovery_runs + 16), n_sleeps = find_procs("sleep", sleeps, 256);
        int64_t *pss = calloc(n_shims + 1, sizeof(int64_t)), *spss = calloc(n_sleeps + 1, sizeof(int64_t));
        /* Only processes still there when read: the waiters' own short sleeps come and go. */
        size_t k = 0;
        for (size_t i = 0; i < n_shims; i++)
                if ((pss[k] = pss_kb(shims[i])) >= 0)
                        k++;
        n_shims = k;
        k = 0;
        for (size_t i = 0; i < n_sleeps; i++)
                if ((spss[k] = pss_kb(sleeps[i])) >= 0)
                        k++;
        n_sleeps = k;
        snprintf(a, sizeof(a), "%.1f MiB", rss / 1024.0);
        snprintf(b, sizeof(b), "%.1f MiB idle", idle_rss / 1024.0);
        snprintf(c, sizeof(c), "%.1f", (double) rss / (double) idle_rss);
        row("corrald RSS, runs alive", a, b, c, "≤ 64 MiB");
        printf("|   (%" PRIi64 " runs running) |\n", running);
        snprintf(a, sizeof(a), "%" PRIi64 " KiB", n_shims ? percentile(pss, n_shims, 0.5) : -1);
        snprintf(b, sizeof(b), "%" PRIi64 " KiB (sleep)", n_sleeps ? percentile(spss, n_sleeps, 0.5) : -1);
        snprintf(c, sizeof(c), "%.2f",
                 n_shims && n_sleeps ? (double) percentile(pss, n_shims, 0.5) / (double) percentile(spss, n_sleeps, 0.5) : 0);
        row("shim PSS (smaps_rollup, median)", a, b, c, "≤ 256 KiB");
        free(pss), free(spss), free(shims), free(sleeps);

        /* 4. recovery: SIGKILL corrald, let half the runs end, restart. */
        int64_t succeeded_before = runs_with_status("succeeded");
        stop_corrald(SIGKILL);
        int fd = open(release, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        safe_close(fd);
        sleep(3); /* the waiters notice within 0.2 s; their shims write status.json and exit */
        int64_t t0 = now_ns();
        start_corrald();
        while (runs_with_status("running") > (int64_t) recovery_runs / 2)
                sleep_us(500);
        double recover_s = (now_ns() - t0) / 1e9;
        int64_t done = runs_with_status("succeeded") - succeeded_before;

        /* Reference: the same corrald starting on an empty database. */
        stop_corrald(SIGTERM);
        _cleanup_free_ char *saved = strprintf("%s.saved", state_dir);
        rename(state_dir, saved);
        mkdir(state_dir, 0750);
        t0 = now_ns();
        start_corrald();
        double empty_s = (now_ns() - t0) / 1e9;
        stop_corrald(SIGTERM);
        _cleanup_free_ char *rm = strprintf("rm -rf '%s'", state_dir);
        (void) system(rm);
        rename(saved, state_dir);
        start_corrald();

        snprintf(a, sizeof(a), "%.0f ms", recover_s * 1000);
        snprintf(b, sizeof(b), "%.0f ms (empty db)", empty_s * 1000);
        snprintf(c, sizeof(c), "%.1f", recover_s / empty_s);
        row("recovery after SIGKILL", a, b, c, "≤ 1 s");
        printf("|   (%u runs: %" PRIi64 " finished while corrald was down, the rest re-adopted) |\n", recovery_runs, done);

        for (unsigned i = 0; i < agents; i++) {
                _cleanup_free_ char *path = strprintf("/api/agents/%s/pause", ids[i]);
                (void) http("POST", path, "{}", NULL);
                free(ids[i]);
        }
        free(ids);
        wait_idle();
}

/* ---- 7. history: the same figures on an empty database and on one of 1M finished runs ---- */

static unsigned history_runs = 1000000;

/* Run sql through the sqlite3 shell on the bench's database (corrald stopped). */
static void sqlite_run(const char *sql) {
        _cleanup_free_ char *cmd = strprintf("sqlite3 -bail '%s/corral.db'", state_dir);
        FILE *f = cmd ? popen(cmd, "w") : NULL;

        if (!f)
                die("cannot run sqlite3");
        fputs(sql, f);
        if (pclose(f) != 0)
                die("sqlite3 failed on: %.200s", sql);
}

static char *sqlite_query(const char *sql) {
        _cleanup_free_ char *cmd = strprintf("sqlite3 '%s/corral.db' \"%s\"", state_dir, sql);
        char buf[65536];
        FILE *f = cmd ? popen(cmd, "r") : NULL;
        size_t n;

        if (!f)
                die("cannot run sqlite3");
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = 0;
        pclose(f);
        return strdup(strstrip(buf));
}

/* Copy the row of table that where selects count times, each column as itself unless
 * overrides ("column=expression;...", the expressions see i, 1..count) say otherwise:
 * history made of real rows' shapes. */
static void copy_rows(const char *table, const char *where, unsigned count, const char *overrides) {
        _cleanup_free_ char *q =
                strprintf("SELECT group_concat(name, ' ') FROM pragma_table_xinfo('%s') WHERE hidden = 0", table);
        _cleanup_free_ char *cols = sqlite_query(q);
        char *names = NULL, *values = NULL, *save = NULL;
        size_t ns = 0, vs = 0;
        FILE *fn = open_memstream(&names, &ns), *fv = open_memstream(&values, &vs);

        for (char *c = strtok_r(cols, " ", &save); c; c = strtok_r(NULL, " ", &save)) {
                _cleanup_free_ char *key = strprintf(";%s=", c), *all = strprintf(";%s", overrides);
                const char *o = strstr(all, key);
                fprintf(fn, "%s%s", ns || ftell(fn) ? "," : "", c);
                if (o) {
                        o += strlen(key);
                        fprintf(fv, "%s%.*s", ftell(fv) ? "," : "", (int) strcspn(o, ";"), o);
                } else
                        fprintf(fv, "%ss.%s", ftell(fv) ? "," : "", c);
        }
        fclose(fn);
        fclose(fv);
        _cleanup_free_ char *sql = strprintf(
                "PRAGMA foreign_keys = ON; BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %u) "
                "INSERT INTO %s (%s) SELECT %s FROM n, (SELECT * FROM %s WHERE %s LIMIT 1) s; COMMIT;\n",
                count, table, names, values, table, where);
        free(names);
        free(values);
        sqlite_run(sql);
}

/* A run directory for each copied run, its files hard links to those of the real run
 * (a directory and a name per run, as on a host that kept them: the disk's own cost). */
static void link_run_dirs(const char *real_run, unsigned count) {
        static const char *const files[] = { "log.ndjson", "status.json", "context.json", "stdout.tail" };

        char source[4096];

        snprintf(source, sizeof(source), "%s/runs/%s", state_dir, real_run);
        for (unsigned i = 1; i <= count; i++) {
                char dir[4096];
                snprintf(dir, sizeof(dir), "%s/runs/20000000-0000-4000-8000-%012u", state_dir, i);
                if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                        die("mkdir %s: %m", dir);
                /* A file has at most 65000 names on ext4: every 60000 runs, copies to link to. */
                bool copy = i % 60000 == 0;
                for (size_t k = 0; k < ELEMENTSOF(files); k++) {
                        char from[4200], to[4200];
                        snprintf(from, sizeof(from), "%s/%s", source, files[k]);
                        snprintf(to, sizeof(to), "%s/%s", dir, files[k]);
                        if (copy) {
                                _cleanup_free_ char *data = NULL;
                                size_t size = 0;
                                if (read_full_file(from, 64 << 20, &data, &size) >= 0 &&
                                    write_file_atomic(to, data, size, 0600) < 0)
                                        die("copy %s: %m", to);
                        } else if (link(from, to) < 0 && errno != ENOENT && errno != EEXIST)
                                die("link %s: %m", to);
                }
                if (copy)
                        snprintf(source, sizeof(source), "%s", dir);
        }
}

typedef struct Figures {
        double launch_ms, issue_launch_ms, throughput, sweep_ms, startup_ms, metrics_ms, health_ms;
        double list_ms[6];
        size_t list_bytes[6];
        long rss_kb;
} Figures;

static const char *const list_names[6] = { "runs", "issues", "activity", "agents", "wakeups", "comments" };

static double median_ms(int64_t *v, size_t n) {
        return percentile(v, n, 0.5) / 1e6;
}

static double request_ms(const char *method, const char *path, size_t *ret_bytes) {
        int64_t t[9];
        for (int k = 0; k < 9; k++) {
                _cleanup_free_ char *reply = NULL;
                int64_t t0 = now_ns();
                int status = http(method, path, NULL, &reply);
                t[k] = now_ns() - t0;
                if (status != 200)
                        die("%s %s: %d", method, path, status);
                if (ret_bytes)
                        *ret_bytes = strlen(reply);
        }
        return median_ms(t, 9);
}

/* A wake, timed to its agent's first instruction (the stamp), and its run's end. */
static double launch_ms(int fifo, const char *agent, const char *issue) {
        int64_t t[21];
        for (int k = 0; k < 21; k++) {
                _cleanup_free_ char *path = strprintf("/api/agents/%s/wakeup", agent),
                                    *body = issue ? strprintf("{\"payload\":{\"issueId\":\"%s\",\"taskKey\":\"h%d\"}}", issue, k)
                                                  : strprintf("{\"payload\":{\"taskKey\":\"h%d\"}}", k);
                int64_t t0 = now_ns();
                _cleanup_free_ char *run = post_id(path, body);
                t[k] = read_stamp(fifo) - t0;
                while (!run_terminal(run))
                        sleep_us(200);
        }
        return median_ms(t, 21);
}

static void measure(int fifo, const char *co, const char *agent, const char *issue, const char *true_agent, Figures *f) {
        char path[256];

        f->launch_ms = launch_ms(fifo, agent, NULL);
        f->issue_launch_ms = launch_ms(fifo, agent, issue);
        /* Throughput: 5 s of /bin/true wakes of one agent, 10 at a time. */
        unsigned wakes = 0;
        int64_t t0 = now_ns();
        while (now_ns() - t0 < 5 * (int64_t) 1000000000) {
                free(wake(true_agent, wakes++));
                if (wakes % 20 == 0)
                        while (active_runs() > 40)
                                sleep_us(1000);
        }
        wait_idle();
        f->throughput = wakes / ((now_ns() - t0) / 1e9);
        f->sweep_ms = request_ms("POST", "/api/sweep", NULL);
        f->metrics_ms = request_ms("GET", "/metrics", NULL);
        f->health_ms = request_ms("GET", "/api/health", NULL);
        for (int i = 0; i < 6; i++) {
                if (i == 4)
                        snprintf(path, sizeof(path), "/api/agents/%s/wakeup-requests", agent);
                else if (i == 5)
                        snprintf(path, sizeof(path), "/api/issues/%s/comments", issue);
                else
                        snprintf(path, sizeof(path), "/api/companies/%s/%s", co,
                                 i == 0           ? "heartbeat-runs"
                                         : i == 1 ? "issues"
                                         : i == 2 ? "activity"
                                                  : "agents");
                f->list_ms[i] = request_ms("GET", path, &f->list_bytes[i]);
        }
        f->rss_kb = status_kb(corrald_pid, "VmRSS:");
}

static double startup_ms(void) {
        int64_t t0 = now_ns();
        start_corrald();
        return (now_ns() - t0) / 1e6;
}

static void history_row(const char *what, double empty, double full, const char *unit, const char *goal, bool higher_better) {
        char a[64], b[64], c[32];
        snprintf(a, sizeof(a), "%.2f %s", empty, unit);
        snprintf(b, sizeof(b), "%.2f %s", full, unit);
        snprintf(c, sizeof(c), "%.2fx", higher_better ? full / empty : full / empty);
        row(what, a, b, c, goal);
}

static void bench_history(int fifo) {
        _cleanup_free_ char *co = post_id("/api/companies", "{\"name\":\"History\",\"issuePrefix\":\"HIS\"}");
        _cleanup_free_ char *config = strprintf("{\"command\":\"%s\",\"env\":{\"BENCH_FIFO\":\"%s\"}}", agent_path, fifo_path);
        _cleanup_free_ char *agents_path = strprintf("/api/companies/%s/agents", co),
                            *issues_path = strprintf("/api/companies/%s/issues", co);
        _cleanup_free_ char *body = strprintf("{\"name\":\"hist\",\"adapterConfig\":%s}", config);
        _cleanup_free_ char *agent = post_id(agents_path, body);
        _cleanup_free_ char *true_agent = post_id(agents_path,
                                                  "{\"name\":\"hist-true\",\"adapterConfig\":{\"command\":\"/bin/true\"},"
                                                  "\"runtimeConfig\":{\"heartbeat\":{\"maxConcurrentRuns\":10}}}");
        _cleanup_free_ char *ib = strprintf("{\"title\":\"History target\",\"status\":\"todo\"}");
        _cleanup_free_ char *issue = post_id(issues_path, ib);
        _cleanup_free_ char *cpath = strprintf("/api/issues/%s/comments", issue);
        free(post_id(cpath, "{\"body\":\"A comment as comments go, with a line or two of text about the work.\"}"));
        Figures empty = {}, full = {};
        char a[64], b[64];

        measure(fifo, co, agent, issue, true_agent, &empty);
        stop_corrald(SIGTERM);
        empty.startup_ms = startup_ms();
        stop_corrald(SIGTERM);

        /* History, copied from the rows the measurement just made. */
        int64_t t0 = now_ns();
        unsigned runs = history_runs, issues = MAX(history_runs / 5, 1u), n_agents = 1000;
        _cleanup_free_ char *w_agents = strprintf("id = '%s'", agent), *w_issue = strprintf("id = '%s'", issue);
        _cleanup_free_ char *o_agents = strprintf("id=printf('a0000000-0000-4000-8000-%%012d', i);name='hist-' || i");
        copy_rows("agents", w_agents, n_agents, o_agents);
        _cleanup_free_ char *o_issues =
                strprintf("id=printf('10000000-0000-4000-8000-%%012d', i);issue_number=1000 + i;identifier='HIS-' || (1000 + i);"
                          "status='done';execution_run_id=NULL;execution_locked_at=NULL;checkout_run_id=NULL;"
                          "assignee_agent_id=printf('a0000000-0000-4000-8000-%%012d', 1 + i %% %u)",
                          n_agents);
        copy_rows("issues", w_issue, issues, o_issues);
        _cleanup_free_ char *w_wake = strprintf("agent_id = '%s' AND run_id IS NOT NULL", agent);
        _cleanup_free_ char *o_wakes = strprintf(
                "id=printf('30000000-0000-4000-8000-%%012d', i);agent_id=printf('a0000000-0000-4000-8000-%%012d', 1 + i %% %u);"
                "run_id=NULL;status='completed';payload=json_set(coalesce(payload, '{}'), '$.issueId', "
                "printf('10000000-0000-4000-8000-%%012d', 1 + i %% %u));"
                "requested_at=strftime('%%Y-%%m-%%dT%%H:%%M:%%S.000Z', '2025-01-01', '+' || (i * 20) || ' seconds')",
                n_agents, issues);
        copy_rows("agent_wakeup_requests", w_wake, runs, o_wakes);
        _cleanup_free_ char *w_run = strprintf("agent_id = '%s' AND status = 'succeeded' AND issue_id IS NOT NULL", agent);
        _cleanup_free_ char *o_runs = strprintf(
                "id=printf('20000000-0000-4000-8000-%%012d', i);agent_id=printf('a0000000-0000-4000-8000-%%012d', 1 + i %% %u);"
                "wakeup_request_id=printf('30000000-0000-4000-8000-%%012d', i);"
                "context_snapshot=json_set(context_snapshot, '$.issueId', printf('10000000-0000-4000-8000-%%012d', 1 + i %% %u));"
                "created_at=strftime('%%Y-%%m-%%dT%%H:%%M:%%S.000Z', '2025-01-01', '+' || (i * 20) || ' seconds')",
                n_agents, issues);
        copy_rows("heartbeat_runs", w_run, runs, o_runs);
        _cleanup_free_ char *q_real = strprintf("SELECT id FROM heartbeat_runs WHERE %s LIMIT 1", w_run);
        _cleanup_free_ char *real_run = sqlite_query(q_real);
        link_run_dirs(real_run, runs);
        _cleanup_free_ char *w_event = strprintf("agent_id = '%s'", agent);
        copy_rows("heartbeat_run_events", w_event, runs, "id=NULL;run_id=printf('20000000-0000-4000-8000-%012d', i)");
        _cleanup_free_ char *w_comment = strprintf("issue_id = '%s'", issue);
        copy_rows("issue_comments", w_comment, issues,
                  "id=printf('40000000-0000-4000-8000-%012d', i);issue_id=printf('10000000-0000-4000-8000-%012d', i)");
        _cleanup_free_ char *w_activity = strprintf("company_id = '%s'", co);
        copy_rows("activity_log", w_activity, runs, "id=printf('50000000-0000-4000-8000-%012d', i)");
        _cleanup_free_ char *counter = strprintf("UPDATE companies SET issue_counter = %u WHERE id = '%s';\n", 1000 + issues, co);
        sqlite_run(counter);
        _cleanup_free_ char *fk = sqlite_query("PRAGMA foreign_key_check");
        double build_s = (now_ns() - t0) / 1e9;

        full.startup_ms = startup_ms();
        measure(fifo, co, agent, issue, true_agent, &full);

        printf("|   (history: %u finished runs with as many wakes, events and activity rows, %u issues with a comment each, "
               "%u agents, copied from real rows with a run directory each in %.0f s; foreign keys: %s) |\n",
               runs, issues, n_agents, build_s, isempty(fk) ? "ok" : fk);
        history_row("history: plain launch", empty.launch_ms, full.launch_ms, "ms", "≤ 1.5x", false);
        history_row("history: issue-scoped launch", empty.issue_launch_ms, full.issue_launch_ms, "ms", "≤ 1.5x", false);
        history_row("history: throughput", empty.throughput, full.throughput, "runs/s", "≥ 0.8x", true);
        history_row("history: sweep", empty.sweep_ms, full.sweep_ms, "ms", "≤ 50 ms, ≤ 1.5x", false);
        history_row("history: startup to first answer", empty.startup_ms, full.startup_ms, "ms", "≤ 1.5x", false);
        history_row("history: GET /metrics", empty.metrics_ms, full.metrics_ms, "ms", "≤ 1.5x", false);
        history_row("history: GET /api/health", empty.health_ms, full.health_ms, "ms", "≤ 1.5x", false);
        for (int i = 0; i < 6; i++) {
                char what[64];
                snprintf(what, sizeof(what), "history: list %s", list_names[i]);
                history_row(what, empty.list_ms[i], full.list_ms[i], "ms", "≤ 1.5x, ≤ 1 MB", false);
                printf("|   (default page: %zu bytes empty, %zu bytes with history) |\n", empty.list_bytes[i],
                       full.list_bytes[i]);
        }
        snprintf(a, sizeof(a), "%ld KiB", empty.rss_kb);
        snprintf(b, sizeof(b), "%ld KiB", full.rss_kb);
        row("history: corrald RSS", a, b, "", "≤ 1.5x");
}

/* ---- 8. log flood: 100 agents writing 10 MB each at once, and a wake during it ---- */

static unsigned flood_agents = 100;
static uint64_t flood_bytes = 10000000;

/* Wakes of the stamp agent, one after the other while keep_going() says so (at least min
 * of them): the medians in ms of the wake's answer (the control plane) and of its agent's
 * first instruction (which also waits for the agent to get a share of the CPU). */
typedef struct Probe {
        double answer_ms, first_ms;
        unsigned n;
} Probe;

static Probe probe(int fifo, const char *agent, unsigned min, bool (*keep_going)(void)) {
        static int64_t answer[4096], first[4096];
        unsigned n = 0;

        while (n < ELEMENTSOF(first) && (n < min || (keep_going && keep_going()))) {
                _cleanup_free_ char *path = strprintf("/api/agents/%s/wakeup", agent),
                                    *body = strprintf("{\"payload\":{\"taskKey\":\"p%u\"}}", n);
                int64_t t0 = now_ns();
                _cleanup_free_ char *run = post_id(path, body);
                answer[n] = now_ns() - t0;
                first[n] = read_stamp(fifo) - t0;
                n++;
                /* Not too eager: the bench's requests compete for the same two cores. */
                while (!run_terminal(run))
                        sleep_us(2000);
        }
        return (Probe){ .answer_ms = median_ms(answer, n), .first_ms = median_ms(first, n), .n = n };
}

static bool flood_running(void) {
        return active_runs() > 0;
}

/* The reference: the same streams, each through a pipe into a file of its own ("agent |
 * cat > file"), all at once; its seconds. */
static double flood_reference(const char *count) {
        pid_t *pids = calloc(2 * (size_t) flood_agents, sizeof(pid_t));
        int64_t t0;

        if (!pids)
                die("out of memory");
        sync(); /* what an earlier stage wrote is not written back during this one */
        t0 = now_ns();
        for (unsigned i = 0; i < flood_agents; i++) {
                _cleanup_free_ char *file = strprintf("%s/reference-%u.out", state_dir, i);
                char *agent_argv[] = { (char *) agent_path, (char *) count, NULL }, *cat_argv[] = { (char *) "cat", NULL };
                posix_spawn_file_actions_t fa;
                int p[2];

                if (pipe2(p, O_CLOEXEC) < 0)
                        die("pipe: %m");
                posix_spawn_file_actions_init(&fa);
                posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
                if (posix_spawn(&pids[2 * i], agent_path, &fa, NULL, agent_argv, environ) != 0)
                        die("posix_spawn failed");
                posix_spawn_file_actions_destroy(&fa);
                posix_spawn_file_actions_init(&fa);
                posix_spawn_file_actions_adddup2(&fa, p[0], STDIN_FILENO);
                posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
                if (posix_spawnp(&pids[2 * i + 1], "cat", &fa, NULL, cat_argv, environ) != 0)
                        die("posix_spawn failed");
                posix_spawn_file_actions_destroy(&fa);
                safe_close(p[0]);
                safe_close(p[1]);
        }
        for (unsigned i = 0; i < 2 * flood_agents; i++)
                waitpid(pids[i], NULL, 0);
        double s = (now_ns() - t0) / 1e9;
        for (unsigned i = 0; i < flood_agents; i++) {
                _cleanup_free_ char *file = strprintf("%s/reference-%u.out", state_dir, i);
                unlink(file);
        }
        free(pids);
        return s;
}

static void bench_flood(int fifo) {
        _cleanup_free_ char *probe_config =
                strprintf("{\"command\":\"%s\",\"env\":{\"BENCH_FIFO\":\"%s\"}}", agent_path, fifo_path);
        _cleanup_free_ char *probe_agent = new_agent("probe", probe_config, NULL);
        _cleanup_free_ char *release = strprintf("%s/flood-release", share_dir);
        _cleanup_free_ char *flood_config =
                strprintf("{\"command\":\"%s\",\"args\":[\"%" PRIu64 "\"],\"timeoutSec\":0,\"env\":{\"BENCH_RELEASE\":\"%s\"}}",
                          agent_path, flood_bytes, release);
        _cleanup_free_ char *count = strprintf("%" PRIu64, flood_bytes);
        char **agents = calloc(flood_agents, sizeof(char *)), **runs = calloc(flood_agents, sizeof(char *));
        char a[64], b[64], c[32];

        if (!agents || !runs || !probe_config || !flood_config || !count)
                die("out of memory");
        for (unsigned i = 0; i < flood_agents; i++) {
                char name[32];
                snprintf(name, sizeof(name), "flood-%u", i);
                agents[i] = new_agent(name, flood_config, NULL);
        }
        Probe idle = probe(fifo, probe_agent, 21, NULL);
        /* The reference before and after corral's turn, the faster counting: the disk's
         * speed wanders from one second to the next. */
        double ref_s = flood_reference(count);

        /* Every run launched and waiting, then all of them released at once: the figures are
         * the flood's, not the launches'. */
        for (unsigned i = 0; i < flood_agents; i++)
                runs[i] = wake(agents[i], 0);
        while (runs_with_status("running") < (int64_t) flood_agents)
                sleep_us(10000);
        sync();
        int64_t t0 = now_ns();
        int fd = open(release, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
                die("%s: %m", release);
        safe_close(fd);
        Probe during = probe(fifo, probe_agent, 1, flood_running);
        wait_idle();
        double corral_s = (now_ns() - t0) / 1e9;

        /* Every byte of every stream in its run's log. */
        uint64_t logged = 0;
        for (unsigned i = 0; i < flood_agents; i++) {
                _cleanup_free_ char *log = strprintf("%s/runs/%s/log.ndjson", state_dir, runs[i]);
                Count n = {};
                (void) runlog_for_each_chunk(log, count_chunk, &n);
                logged += n.bytes;
                unlink(log);
        }

        ref_s = MIN(ref_s, flood_reference(count));

        double mb = (double) flood_bytes * flood_agents / 1e6;
        snprintf(a, sizeof(a), "%.0f MB/s", mb / corral_s);
        snprintf(b, sizeof(b), "%.0f MB/s", mb / ref_s);
        snprintf(c, sizeof(c), "%.2f", ref_s / corral_s);
        row("log flood: aggregate ingestion", a, b, c, "≥ 0.5x");
        printf("|   (%u agents x %" PRIu64 " bytes at once: %" PRIu64 " bytes in the logs%s; reference: agent | cat > file) |\n",
               flood_agents, flood_bytes, logged, logged == flood_bytes * flood_agents ? ", nothing lost" : ", BYTES MISSING");
        snprintf(a, sizeof(a), "%.2f ms", during.answer_ms);
        snprintf(b, sizeof(b), "%.2f ms idle", idle.answer_ms);
        snprintf(c, sizeof(c), "%.2fx", during.answer_ms / idle.answer_ms);
        row("log flood: wake answered", a, b, c, "≤ 2x");
        snprintf(a, sizeof(a), "%.2f ms", during.first_ms);
        snprintf(b, sizeof(b), "%.2f ms idle", idle.first_ms);
        snprintf(c, sizeof(c), "%.2fx", during.first_ms / idle.first_ms);
        row("log flood: wake → first instruction", a, b, c, "≤ 2x");
        printf("|   (medians of %u wakes during the flood, 21 idle; every process of the flood is busy, and the new agent "
               "gets its share of the CPU among them) |\n",
               during.n);

        for (unsigned i = 0; i < flood_agents; i++) {
                _cleanup_free_ char *path = strprintf("/api/agents/%s/pause", agents[i]);
                (void) http("POST", path, "{}", NULL);
                free(agents[i]);
                free(runs[i]);
        }
        free(agents);
        free(runs);
}

/* ---- 9. live runs: 1,000, 5,000 and 10,000 at once ---- */

static unsigned live_max = 10000;

/* A gauge or counter of /metrics without labels; -1 when missing. */
static int64_t metric(const char *name) {
        _cleanup_free_ char *reply = NULL, *needle = strprintf("\n%s ", name);
        if (http("GET", "/metrics", NULL, &reply) != 200 || !needle)
                return -1;
        const char *p = strstr(reply, needle);
        return p ? strtoll(p + strlen(needle), NULL, 10) : -1;
}

static unsigned count_fds(pid_t pid) {
        _cleanup_free_ char *path = strprintf("/proc/%d/fd", (int) pid);
        DIR *d = path ? opendir(path) : NULL;
        unsigned n = 0;

        if (!d)
                return 0;
        for (struct dirent *de; (de = readdir(d));)
                n += de->d_name[0] != '.';
        closedir(d);
        return n;
}

static void bench_live(int fifo) {
        const unsigned sizes[] = { 1000, 5000, 10000 };
        unsigned n_agents = (live_max + 9) / 10, live = 0;
        _cleanup_free_ char *stamp_config =
                strprintf("{\"command\":\"%s\",\"env\":{\"BENCH_FIFO\":\"%s\"}}", agent_path, fifo_path);
        _cleanup_free_ char *stamp = new_agent("live-stamp", stamp_config, NULL);
        char **agents = calloc(n_agents, sizeof(char *));
        char a[64], b[64], c[32];

        if (!agents || !stamp_config)
                die("out of memory");
        for (unsigned i = 0; i < n_agents; i++) {
                char name[32];
                snprintf(name, sizeof(name), "live-%u", i);
                agents[i] = new_agent(name, "{\"command\":\"/bin/sleep\",\"args\":[\"3600\"]}",
                                      "{\"heartbeat\":{\"maxConcurrentRuns\":10}}");
        }
        Probe idle = probe(fifo, stamp, 21, NULL);
        long idle_rss = status_kb(corrald_pid, "VmRSS:");
        double empty_start_ms = 0;
        {
                /* The reference of a restart: corrald on the same database, nothing running. */
                stop_corrald(SIGKILL);
                int64_t t0 = now_ns();
                start_corrald();
                empty_start_ms = (now_ns() - t0) / 1e6;
        }

        for (size_t k = 0; k < ELEMENTSOF(sizes) && sizes[k] <= live_max; k++) {
                unsigned size = sizes[k];
                while (live < size) {
                        free(wake(agents[live % n_agents], live));
                        live++;
                }
                for (int i = 0; i < 6000 && runs_with_status("running") < (int64_t) size; i++)
                        sleep_us(50000);
                int64_t running = runs_with_status("running");
                if (running < (int64_t) size)
                        die("only %" PRIi64 " of %u runs are running", running, size);

                Probe last = probe(fifo, stamp, 5, NULL);
                long rss = status_kb(corrald_pid, "VmRSS:");
                unsigned fds = count_fds(corrald_pid);

                /* Recovery: SIGKILL, then the time to the first answer and to every run taken up. */
                stop_corrald(SIGKILL);
                int64_t t0 = now_ns();
                start_corrald();
                double answer_ms = (now_ns() - t0) / 1e6;
                while (metric("corral_supervised_runs") < (int64_t) size && now_ns() - t0 < 120 * (int64_t) 1000000000)
                        sleep_us(2000);
                double adopted_ms = (now_ns() - t0) / 1e6;
                int64_t supervised = metric("corral_supervised_runs"), after = runs_with_status("running");

                printf("| %u live runs %*s|\n", size, 60, "");
                snprintf(a, sizeof(a), "%.2f ms", last.first_ms);
                snprintf(b, sizeof(b), "%.2f ms (none live)", idle.first_ms);
                snprintf(c, sizeof(c), "%.2fx", last.first_ms / idle.first_ms);
                row("live: wake → first instruction", a, b, c, "≤ 1.5x");
                snprintf(a, sizeof(a), "%.1f MiB", rss / 1024.0);
                snprintf(b, sizeof(b), "%.1f MiB (none live)", idle_rss / 1024.0);
                snprintf(c, sizeof(c), "%.1fx", (double) rss / (double) idle_rss);
                row("live: corrald RSS", a, b, c, "≤ 64 MiB");
                printf("|   (%u descriptors open in corrald) |\n", fds);
                snprintf(a, sizeof(a), "%.0f / %.0f ms", answer_ms, adopted_ms);
                snprintf(b, sizeof(b), "%.0f ms (none live)", empty_start_ms);
                snprintf(c, sizeof(c), "%.1fx", adopted_ms / empty_start_ms);
                row("live: SIGKILL → answer / all adopted", a, b, c, "≤ 2 s");
                printf("|   (%" PRIi64 " of %u runs tracked again, %" PRIi64 " running%s) |\n", supervised, size, after,
                       supervised == (int64_t) size && after == (int64_t) size ? ", nothing lost" : ", RUNS MISSING");
        }

        /* The runs are left to the end of the bench, which kills their cgroups. */
        for (unsigned i = 0; i < n_agents; i++)
                free(agents[i]);
        free(agents);
}

/* ---- 8. event subscribers ---- */

static unsigned subscribers = 200;

/* A client of GET /api/events; rcvbuf > 0 shrinks its receive buffer (one that never reads). */
static int subscribe(int rcvbuf) {
        static const char request[] = "GET /api/events?follow=true HTTP/1.1\r\nHost: bench\r\n\r\n";
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socket_path);
        if (fd < 0 || (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0) ||
            connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            write(fd, request, strlen(request)) != (ssize_t) strlen(request))
                die("cannot subscribe to the event stream: %m");
        return fd;
}

/* The idle subscribers read what they are sent, and nothing else. */
static void *drain(void *userdata) {
        int ep = (int) (intptr_t) userdata;
        struct epoll_event ev[64];
        char buf[65536];

        for (;;) {
                int n = epoll_wait(ep, ev, 64, -1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return NULL;
                for (int i = 0; i < n; i++)
                        if (read(ev[i].data.fd, buf, sizeof(buf)) <= 0)
                                (void) epoll_ctl(ep, EPOLL_CTL_DEL, ev[i].data.fd, NULL);
        }
}

/* Launches while 200 clients follow the event stream and one never reads it, against the
 * same launches with no client, in the same run: every launch is several events, each
 * written to every subscriber. The two alternate in rounds, so that what grows as runs
 * pile up (the database, the file system's inode tables) weighs on both alike. */
static void bench_subscribers(int fifo) {
        _cleanup_free_ char *config = strprintf("{\"command\":\"%s\",\"env\":{\"BENCH_FIFO\":\"%s\"}}", agent_path, fifo_path);
        _cleanup_free_ char *agent = new_agent("subscribed", config, NULL);
        _cleanup_free_ int *fds = calloc(subscribers + 1, sizeof(int));
        const unsigned rounds = 6, per_round = MAX(MIN(n_runs, 300u) / rounds, 1u), n = per_round * rounds / 2;
        _cleanup_free_ int64_t *alone = calloc(n, sizeof(int64_t)), *watched = calloc(n, sizeof(int64_t));
        pthread_t reader;
        char a[64], b[64], c[32], what[96];
        int ep = epoll_create1(EPOLL_CLOEXEC);

        if (!fds || !alone || !watched || ep < 0)
                die("epoll: %m");
        if (pthread_create(&reader, NULL, drain, (void *) (intptr_t) ep) != 0)
                die("pthread_create failed");
        for (unsigned round = 0; round < rounds; round++) {
                if (round % 2 == 0) {
                        time_launches(fifo, agent, per_round, alone + round / 2 * per_round);
                        continue;
                }
                for (unsigned i = 0; i < subscribers; i++) {
                        fds[i] = subscribe(0);
                        if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &(struct epoll_event){ .events = EPOLLIN, .data.fd = fds[i] }) <
                            0)
                                die("epoll_ctl: %m");
                }
                fds[subscribers] = subscribe(4096); /* never read */
                sleep_us(200000);
                time_launches(fifo, agent, per_round, watched + round / 2 * per_round);
                for (unsigned i = 0; i < subscribers; i++)
                        (void) epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
                for (unsigned i = 0; i <= subscribers; i++)
                        close(fds[i]);
                sleep_us(200000); /* corrald sees them gone at its next write */
        }
        int64_t wm = percentile(watched, n, 0.5), w99 = percentile(watched, n, 0.99);
        int64_t am = percentile(alone, n, 0.5), a99 = percentile(alone, n, 0.99);
        snprintf(a, sizeof(a), "%.3f / %.3f ms", wm / 1e6, w99 / 1e6);
        snprintf(b, sizeof(b), "%.3f / %.3f ms", am / 1e6, a99 / 1e6);
        snprintf(c, sizeof(c), "%.2fx", (double) wm / (double) am);
        snprintf(what, sizeof(what), "launch with %u event subscribers + 1 stuck", subscribers);
        row(what, a, b, c, "≤ 1.2x (no subscriber)");
        printf("|   (median / p99 over %u launches each, in %u alternating rounds; reference: the same launches with no "
               "subscriber) |\n",
               n, rounds);
        (void) pthread_cancel(reader);
        (void) pthread_join(reader, NULL);
        close(ep);
}

/* ---- 9. hosts: three corralds on one PostgreSQL database ---- */

static void start_extra(ExtraHost *h) {
        h->pid = spawn_corrald(h->state, h->socket, h->id, h->cgroup);
}

static void wait_extra(ExtraHost *h) {
        use_socket(h->socket);
        for (int i = 0; i < 20000 && http("GET", "/api/health", NULL, NULL) != 200; i++)
                sleep_us(500);
        use_socket(main_socket);
}

/* POST /api/hosts/ID/what (drain, resume) of every host, through each host's own API. */
static void hosts_post(const char *what) {
        _cleanup_free_ char *health = NULL;
        if (http("GET", "/api/health", NULL, &health) != 200)
                die("no health");
        _cleanup_free_ char *self = json_string(strstr(health, "\"host\"") ?: "", "id");
        const char *ids[] = { self, extra[0].id, extra[1].id };
        const char *sockets[] = { main_socket, extra[0].socket, extra[1].socket };
        for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
                _cleanup_free_ char *path = strprintf("/api/hosts/%s/%s", ids[i], what);
                use_socket(sockets[i]);
                int status = http("POST", path, "{}", NULL);
                if (status < 200 || status >= 300)
                        die("POST %s: %d", path, status);
        }
        use_socket(main_socket);
}

/* Claims across three hosts: N trivial runs queued while every host drains, then the three
 * resumed at once, which claim them all; timed from the first resume to the last claim. */
static void bench_claims(void) {
        enum { AGENTS = 150, PER_AGENT = 10 };
        char *agents[AGENTS];
        char a[64];

        for (int i = 0; i < AGENTS; i++) {
                char name[32];
                snprintf(name, sizeof(name), "claim-%d", i);
                agents[i] = new_agent(name, "{\"command\":\"/bin/true\"}", "{\"heartbeat\":{\"maxConcurrentRuns\":10}}");
        }
        wait_idle();
        hosts_post("drain");
        for (unsigned k = 0; k < AGENTS * PER_AGENT; k++)
                free(wake(agents[k % AGENTS], 100000 + k));
        int64_t t0 = now_ns();
        hosts_post("resume");
        int64_t t_up = now_ns();
        /* A /metrics costs a few statements: polled gently. One that fails (-1) is no answer:
         * polled again. */
        int64_t queued;
        while ((queued = runs_with_status("queued")) != 0) {
                if (now_ns() - t0 > 120 * (int64_t) 1000000000)
                        die("claims: %" PRIi64 " runs still queued 120 s after the resume", queued);
                sleep_us(10000);
        }
        int64_t t_end = now_ns();
        double rate = AGENTS * PER_AGENT / ((t_end - t0) / 1e9);
        wait_idle();
        int64_t t_idle = now_ns();
        for (int i = 0; i < AGENTS; i++)
                free(agents[i]);
        snprintf(a, sizeof(a), "%.0f runs/s", rate);
        row("claims: queued → running", a, "-", "-", "≥ 1000 runs/s");
        printf("|   (%u queued runs of %u agents, claimed by the three hosts resumed at once: %.0f ms from the first "
               "resume to the last claim, of which %.0f ms until all three were resumed; all ended %.0f ms after "
               "the first resume) |\n",
               AGENTS * PER_AGENT, AGENTS, (t_end - t0) / 1e6, (t_up - t0) / 1e6, (t_idle - t0) / 1e6);
}

/* Failover: a host SIGKILLed with a run on it; timed until another host has finalized it. */
static void bench_failover(void) {
        char a[64], b[64], c[32];
        _cleanup_free_ char *runtime = strprintf("{\"hosts\":[\"%s\"]}", extra[0].id);
        _cleanup_free_ char *agent = new_agent("failover", "{\"command\":\"/bin/sleep\",\"args\":[\"600\"]}", runtime);
        _cleanup_free_ char *path = strprintf("/api/agents/%s/wakeup", agent), *run = post_id(path, "{}");
        _cleanup_free_ char *run_path = strprintf("/api/heartbeat-runs/%s", run);

        for (;;) {
                _cleanup_free_ char *reply = NULL, *status = NULL;
                if (http("GET", run_path, NULL, &reply) == 200 && (status = json_string(reply, "status")) &&
                    streq(status, "running"))
                        break;
                sleep_us(1000);
        }
        int64_t t0 = now_ns();
        stop_process(&extra[0].pid, SIGKILL);
        while (!run_terminal(run))
                sleep_us(10000);
        double took = (now_ns() - t0) / 1e9;
        snprintf(a, sizeof(a), "%.1f s", took);
        snprintf(b, sizeof(b), "lease 15 s");
        snprintf(c, sizeof(c), "%.2f", took / 15);
        row("failover: host killed → run lost", a, b, c, "≤ lease + 5 s");
        printf("|   (a host SIGKILLed with a run; until another host has finalized it as process_lost, with its retry) |\n");
}

static void bench_hosts(int fifo) {
        if (!database || !startswith(database, "postgres")) {
                printf("| hosts: needs --database postgresql://... |\n");
                return;
        }
        for (int i = 0; i < EXTRA_HOSTS; i++) {
                ExtraHost *h = &extra[i];
                snprintf(h->id, sizeof(h->id), "bench-%c", 'b' + i);
                snprintf(h->state, sizeof(h->state), "%s-%c", state_dir, 'b' + i);
                snprintf(h->socket, sizeof(h->socket), "%s/corrald.sock", h->state);
                if (cgroup_root[0])
                        snprintf(h->cgroup, sizeof(h->cgroup), "%s-%c", cgroup_root, 'b' + i);
                if (mkdir(h->state, 0700) < 0 && errno != EEXIST)
                        die("mkdir %s: %m", h->state);
                start_extra(h);
                wait_extra(h);
        }
        n_hosts = 1 + EXTRA_HOSTS;
        bench_launch(fifo);
        bench_throughput();
        bench_claims();
        n_hosts = 1;
        bench_failover();
        for (int i = 0; i < EXTRA_HOSTS; i++) {
                stop_process(&extra[i].pid, SIGTERM);
                _cleanup_free_ char *rm = strprintf("rm -rf '%s'", extra[i].state);
                (void) system(rm);
        }
}

/* Interrupted (a timeout, ^C): the corralds and their runs' cgroups go, as on a failure. */
static void on_signal(int sig) {
        die("interrupted by signal %d", sig);
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "corrald", required_argument, NULL, 'c' },
                { "agent", required_argument, NULL, 'a' },
                { "placement", required_argument, NULL, 'p' },
                { "runs", required_argument, NULL, 'n' },
                { "seconds", required_argument, NULL, 's' },
                { "recovery-runs", required_argument, NULL, 'r' },
                { "log-bytes", required_argument, NULL, 'l' },
                { "only", required_argument, NULL, 'o' },
                { "reference-scope", no_argument, NULL, 'S' },
                { "keep-state", no_argument, NULL, 'k' },
                { "sandbox", required_argument, NULL, 'x' },
                { "history-runs", required_argument, NULL, 'H' },
                { "live-runs", required_argument, NULL, 'L' },
                { "database", required_argument, NULL, 'D' },
                {},
        };
        int c, fifo;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        corrald_path = optarg;
                        break;
                case 'a':
                        agent_path = optarg;
                        break;
                case 'p':
                        placement = optarg;
                        break;
                case 'n':
                        n_runs = (unsigned) atoi(optarg);
                        break;
                case 's':
                        seconds = (unsigned) atoi(optarg);
                        break;
                case 'r':
                        recovery_runs = (unsigned) atoi(optarg);
                        break;
                case 'l':
                        log_bytes = strtoull(optarg, NULL, 10);
                        break;
                case 'o':
                        only = optarg;
                        break;
                case 'S':
                        reference_scope = true;
                        break;
                case 'k':
                        keep_state = true;
                        break;
                case 'x':
                        sandbox = optarg;
                        break;
                case 'H':
                        history_runs = (unsigned) atoi(optarg);
                        break;
                case 'L':
                        live_max = (unsigned) atoi(optarg);
                        break;
                case 'D':
                        database = optarg;
                        break;
                default:
                        return 2;
                }
        if (!corrald_path || !agent_path || n_runs == 0) {
                fprintf(stderr,
                        "usage: bench --corrald PATH --agent PATH [--placement KIND] [--runs N] [--seconds S] "
                        "[--recovery-runs N] [--log-bytes N] [--only "
                        "launch|throughput|log|recovery|subscribers|flood|history|live|hosts] "
                        "[--live-runs N] "
                        "[--history-runs N] "
                        "[--reference-scope] "
                        "[--keep-state] [--sandbox yes|no] [--database PATH|URI]\n");
                return 2;
        }
        if (!mkdtemp(state_dir) || !mkdtemp(share_dir) || chmod(share_dir, 0777) < 0)
                die("mkdtemp: %m");
        snprintf(socket_path, sizeof(socket_path), "%s/corrald.sock", state_dir);
        snprintf(main_socket, sizeof(main_socket), "%s", socket_path);
        snprintf(fifo_path, sizeof(fifo_path), "%s/stamp.fifo", share_dir);
        if (mkfifo(fifo_path, 0666) < 0 || chmod(fifo_path, 0666) < 0 || (fifo = open(fifo_path, O_RDWR | O_CLOEXEC)) < 0)
                die("fifo: %m");
        signal(SIGPIPE, SIG_IGN);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        if (streq(placement, "cgroup")) {
                _cleanup_free_ char *mount = NULL, *self = NULL;
                if (cgroup_find_v2_mount(&mount) < 0 || cgroup_self_path(&self) < 0)
                        die("no cgroup v2 hierarchy for placement cgroup");
                snprintf(cgroup_root, sizeof(cgroup_root), "%s%s/corral-bench-%d", mount, streq(self, "/") ? "" : self,
                         (int) getpid());
        }
        start_corrald();
        _cleanup_free_ char *co = post_id("/api/companies", "{\"name\":\"Bench\",\"issuePrefix\":\"BEN\"}");
        snprintf(company, sizeof(company), "%s", co);

        printf("corral benchmarks: placement %s, sandbox %s, database %s, %ld cores\n\n", placement, sandbox,
               database ? "postgresql" : "sqlite", sysconf(_SC_NPROCESSORS_ONLN));
        row("what", "corral", "reference", "ratio", "goal");
        row("---", "---", "---", "---", "---");
        if (want("launch"))
                bench_launch(fifo);
        if (want("log"))
                bench_log();
        if (want("throughput"))
                bench_throughput();
        if (want("recovery"))
                bench_recovery();
        if (want("subscribers"))
                bench_subscribers(fifo);
        if (want("flood"))
                bench_flood(fifo);
        /* The history is built with the sqlite3 shell, from the SQLite file. */
        if (want("history") && history_runs > 0 && !database)
                bench_history(fifo);
        /* Only when asked for: it needs PostgreSQL, and takes a lease's time. */
        if (only && streq(only, "hosts"))
                bench_hosts(fifo);
        /* Last: it leaves its runs running, for the end to kill. */
        if (want("live") && live_max > 0)
                bench_live(fifo);
        stop_corrald(SIGTERM);
        remove_cgroup_root();
        _cleanup_free_ char *rm_share = strprintf("rm -rf '%s'", share_dir);
        (void) system(rm_share);
        if (keep_state) {
                printf("\nstate directory left in %s\n", state_dir);
                return 0;
        }
        _cleanup_free_ char *rm = strprintf("rm -rf '%s'", state_dir);
        (void) system(rm);
        return 0;
}
