/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Daemon lifecycle: configuration, store, socket, signals, readiness.
 */
#include "daemon/manager.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "api/api.h"
#include "basic/util.h"
#include "control/budget.h"
#include "control/workspace.h"
#include "control/finalize.h"
#include "control/host.h"
#include "control/claim-pump.h"
#include "control/work-listen.h"
#include "control/quota.h"
#include "basic/log.h"
#include "control/sweep.h"
#include "control/scheduler.h"
#include "basic/time-util.h"
#include "basic/fd-util.h"
#include "basic/strv.h"

/* How long the loop waits for a database lock another process holds (store.h). */
#define MANAGER_BUSY_TIMEOUT_MS 50

sd_event *manager_event(Manager *m) {
        return m->control.event;
}

int manager_new(Manager **ret) {
        Manager *m;
        int r;

        m = calloc(1, sizeof(Manager));
        if (!m)
                return -ENOMEM;
        m->listen_fd = m->agent_listen_fd = m->metrics_listen_fd = -EBADF;
        m->control.started_usec = now_usec();
        m->control.config = &m->config; /* the same struct across reloads */
        telemetry_init(&m->control.telemetry);
        r = config_init(&m->config);
        if (r < 0) {
                free(m);
                return r;
        }
        m->config_path = strdup(CONFIG_DEFAULT_PATH);
        if (!m->config_path) {
                manager_free(m);
                return -ENOMEM;
        }
        *ret = m;
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        /* What is claimed is launched before anything it needs goes. */
        claim_pump_free(&m->control);
        api_events_done(&m->control);
        api_free(m->api);
        api_free(m->agent_api);
        api_free(m->metrics_api);
        scheduler_free(m->control.scheduler);
        work_listen_stop(&m->control);
        host_stop(&m->control);
        quota_free(m->control.quota);
        supervisor_free(m->control.supervisor);
        finalize_pending_free(&m->control);
        budget_done(&m->control);
        workspace_done(&m->control);
        free(m->control.shim_path);
        placement_free(m->control.placement);
        sandbox_free(m->control.sandbox);
        free(m->socket_path_effective);
        if (m->socket_created && m->config.socket_path)
                (void) unlink(m->config.socket_path);
        safe_close(m->listen_fd);
        if (m->control.agent_socket_path)
                (void) unlink(m->control.agent_socket_path);
        free(m->control.agent_socket_path);
        safe_close(m->agent_listen_fd);
        safe_close(m->metrics_listen_fd);
        store_free(m->control.store);
        sd_event_source_disable_unref(m->sigterm_source);
        sd_event_source_disable_unref(m->sigint_source);
        sd_event_source_disable_unref(m->sighup_source);
        sd_event_source_disable_unref(m->stall_source);
        sd_event_source_disable_unref(m->sweep_timer);
        sd_event_source_disable_unref(m->startup_source);
        sd_event_unref(m->control.event);
        strv_free(m->overrides);
        free(m->config_path);
        config_done(&m->config);
        free(m);
        return NULL;
}

int manager_add_override(Manager *m, const char *key, const char *value) {
        size_t n = strv_length(m->overrides);
        int r = strv_push(&m->overrides, key);

        if (r >= 0 && (r = strv_push(&m->overrides, value)) < 0)
                /* Never a key without its value. */
                m->overrides[n] = mfree(m->overrides[n]);
        return r;
}

int manager_load_config(Manager *m) {
        Config c;
        int r;

        r = config_init(&c);
        if (r < 0)
                return log_oom();
        r = config_load_file(&c, m->config_path, m->config_must_exist);
        if (r < 0) {
                config_done(&c);
                return r;
        }
        for (size_t i = 0; m->overrides && m->overrides[2 * i]; i++) {
                _cleanup_free_ char *error = NULL;
                r = config_set(&c, m->overrides[2 * i], m->overrides[2 * i + 1], &error);
                if (r < 0) {
                        config_done(&c);
                        return log_error_errno(r, "--%s: %s", m->overrides[2 * i], error ?: strerror(-r));
                }
        }
        config_done(&m->config);
        m->config = c;
        log_set_max_level(m->config.log_level);
        return 0;
}

/* Bind a Unix stream socket at path (its directory made if missing) with mode, replacing
 * the file a crashed corrald left but never a live socket. The new one is bound under a name
 * of its own and renamed over the old, not made after it was removed: the path is never
 * missing, not even for an instant, since a shim of the crashed corrald may be opening it
 * right then to bind it into its run's sandbox. */
static int bind_socket(const char *path, mode_t mode, int *ret_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX }, bound = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *dir = NULL;
        bool replace = false;
        int r;

        strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
        dir = strdup(path);
        if (!dir)
                return log_oom();
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = 0;
                r = mkdir_parents_and_self(dir, 0755);
                if (r < 0)
                        return log_error_errno(r, "Failed to create socket directory %s: %m", dir);
        }

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(-errno, "Failed to create a socket for %s: %m", path);
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) >= 0)
                return log_error_errno(-EADDRINUSE, "Another corrald is already listening on %s.", sa.sun_path);
        if (errno == ECONNREFUSED) {
                struct stat st;
                if (lstat(sa.sun_path, &st) >= 0 && !S_ISSOCK(st.st_mode))
                        return log_error_errno(-EEXIST, "%s exists and is not a socket; refusing to replace it.", sa.sun_path);
                replace = true;
        }
        safe_close(fd);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(-errno, "Failed to create a socket for %s: %m", path);

        bound = sa;
        if (replace && snprintf(bound.sun_path, sizeof(bound.sun_path), "%s.new", sa.sun_path) >= (int) sizeof(bound.sun_path)) {
                /* No room for another name: removed, then made. */
                bound = sa;
                (void) unlink(sa.sun_path);
        } else if (replace)
                (void) unlink(bound.sun_path); /* what a corrald that crashed right here left */
        /* Never, not even for an instant, more open than mode. */
        mode_t old = umask(0777 & ~mode);
        r = bind(fd, (struct sockaddr *) &bound, sizeof(bound));
        umask(old);
        if (r < 0)
                return log_error_errno(-errno, "Failed to bind a socket to %s: %m", bound.sun_path);
        if (chmod(bound.sun_path, mode) < 0)
                r = log_error_errno(-errno, "Failed to set the mode of %s: %m", bound.sun_path);
        else if (listen(fd, SOMAXCONN) < 0)
                r = log_error_errno(-errno, "Failed to listen on %s: %m", bound.sun_path);
        else if (!streq(bound.sun_path, sa.sun_path) && rename(bound.sun_path, sa.sun_path) < 0)
                r = log_error_errno(-errno, "Failed to put the socket %s in place of %s: %m", bound.sun_path, sa.sun_path);
        if (r < 0) {
                (void) unlink(bound.sun_path);
                return r;
        }
        log_info("Listening on %s.", sa.sun_path);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* The operator socket from systemd, or made here (mode 0660: root and group corral). */
static int manager_open_socket(Manager *m) {
        int n, r;

        n = sd_listen_fds(true);
        if (n < 0)
                return log_error_errno(n, "Failed to read sockets passed by systemd: %m");
        if (n > 1)
                return log_error_errno(-EINVAL, "Got %d sockets from systemd, expected one (the operator socket).", n);
        if (n == 1) {
                r = sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0);
                if (r < 0)
                        return log_error_errno(r, "Failed to check the socket passed by systemd: %m");
                if (r == 0)
                        return log_error_errno(-EINVAL, "The socket passed by systemd is not a listening Unix stream socket.");
                m->listen_fd = SD_LISTEN_FDS_START;
                m->control.socket_activated = true;
                (void) fcntl(m->listen_fd, F_SETFL, fcntl(m->listen_fd, F_GETFL) | O_NONBLOCK);
                log_info("Using the operator socket passed by systemd.");
                return 0;
        }
        r = bind_socket(m->config.socket_path, 0660, &m->listen_fd);
        if (r < 0)
                return r;
        m->socket_created = true;
        return 0;
}

/* The agent socket: anyone may connect, and only a process of a running run is served. */
static int manager_open_agent_socket(Manager *m) {
        int r;

        m->control.agent_socket_path = config_agent_socket_path(&m->config);
        if (!m->control.agent_socket_path)
                return log_oom();
        if (streq(m->control.agent_socket_path, m->config.socket_path))
                return log_error_errno(-EINVAL, "agent-socket and socket must be different paths (both are %s).",
                                       m->control.agent_socket_path);
        r = bind_socket(m->control.agent_socket_path, 0666, &m->agent_listen_fd);
        if (r < 0) {
                m->control.agent_socket_path = mfree(m->control.agent_socket_path);
                return r;
        }
        return 0;
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        log_info("Received %s, shutting down.", si->ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down...");
        return sd_event_exit(m->control.event, 0);
}

/* Test hook (CORRAL_TEST_HOOKS=1): SIGUSR2 blocks the loop for good, so that tests can
 * see the watchdog restart a stuck corrald. */
static int on_stall(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        log_warning("Test hook: SIGUSR2 received, the event loop stalls now (the watchdog should end this).");
        for (;;)
                pause();
        return 0;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        _cleanup_free_ char *old_state = strdup(strempty(m->config.state_dir));
        _cleanup_free_ char *old_socket = strdup(strempty(m->config.socket_path));
        _cleanup_free_ char *old_metrics = m->config.metrics_listen ? strdup(m->config.metrics_listen) : NULL;
        _cleanup_free_ char *old_db = config_database_path(&m->config);
        _cleanup_free_ char *new_db = NULL;
        bool old_spawner = m->config.shim_spawner, old_sandbox = m->config.sandbox;
        uint32_t old_uid_min = m->config.sandbox_uid_min, old_uid_max = m->config.sandbox_uid_max;
        _cleanup_free_ char *old_agent_socket = config_agent_socket_path(&m->config), *new_agent_socket = NULL;
        int r;

        (void) sd_notify(false, "RELOADING=1\nSTATUS=Reloading configuration...");
        r = manager_load_config(m);
        if (r < 0)
                log_warning("Reloading %s failed; keeping the previous configuration.", m->config_path);
        else {
                new_db = config_database_path(&m->config);
                if (!streq_ptr(old_state, m->config.state_dir) || !streq_ptr(old_db, new_db))
                        log_warning("state-dir/database changed in the configuration; the change takes effect on restart.");
                if (!streq_ptr(old_socket, m->config.socket_path))
                        log_warning("socket changed in the configuration; the change takes effect on restart.");
                if (!streq_ptr(old_metrics, m->config.metrics_listen))
                        log_warning("metrics-listen changed in the configuration; the change takes effect on restart.");
                if (old_spawner != m->config.shim_spawner)
                        log_warning("shim-spawner changed in the configuration; the change takes effect on restart.");
                new_agent_socket = config_agent_socket_path(&m->config);
                if (old_sandbox != m->config.sandbox || old_uid_min != m->config.sandbox_uid_min ||
                    old_uid_max != m->config.sandbox_uid_max || !streq_ptr(old_agent_socket, new_agent_socket))
                        log_warning("sandbox, sandbox-uids or agent-socket changed in the configuration; the change takes "
                                    "effect on restart.");
                log_info("Configuration reloaded (log level %s).", log_level_to_string(m->config.log_level));
        }
        (void) sd_notify(false, "READY=1\nSTATUS=Running.");
        return 0;
}

/* metrics-listen: a TCP socket for GET /metrics alone (Prometheus scrapes it). */
static int open_metrics_listener(Manager *m) {
        struct sockaddr_storage sa;
        socklen_t len;
        int one = 1, r;

        r = config_metrics_address(m->config.metrics_listen, &sa, &len);
        if (r < 0)
                return log_error_errno(r, "metrics-listen=%s is not an address and port.", m->config.metrics_listen);
        m->metrics_listen_fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (m->metrics_listen_fd < 0)
                return log_error_errno(-errno, "Failed to create the metrics socket: %m");
        (void) setsockopt(m->metrics_listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(m->metrics_listen_fd, (struct sockaddr *) &sa, len) < 0 || listen(m->metrics_listen_fd, SOMAXCONN) < 0)
                return log_error_errno(-errno, "Failed to listen for metrics on %s: %m", m->config.metrics_listen);
        log_info("Serving GET /metrics on %s.", m->config.metrics_listen);
        return 0;
}

/* The shim next to corrald (a build tree) or the installed one. */
static char *find_shim(void) {
        _cleanup_free_ char *self = NULL;
        char *slash, *candidate;
        ssize_t n;

        self = calloc(1, 4096);
        if (!self)
                return NULL;
        n = readlink("/proc/self/exe", self, 4095);
        if (n > 0 && (slash = strrchr(self, '/'))) {
                *slash = 0;
                candidate = strprintf("%s/corral-shim", self);
                if (candidate && access(candidate, X_OK) >= 0)
                        return candidate;
                free(candidate);
        }
        return strdup(CORRAL_LIBEXECDIR "/corral-shim");
}

/* The socket's path as agents should use it, also when systemd passed it. */
static char *socket_path_of(Manager *m) {
        struct sockaddr_un sa = {};
        socklen_t len = sizeof(sa);

        if (m->control.socket_activated && getsockname(m->listen_fd, (struct sockaddr *) &sa, &len) >= 0 && sa.sun_path[0])
                return strndup(sa.sun_path, sizeof(sa.sun_path));
        return strdup(m->config.socket_path);
}

/* The loop's first act (manager_startup()): recovery, then readiness. */
static int on_startup(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        uint64_t start = now_mono_usec();
        int r;

        /* Runs a previous corrald left running are taken up before anything new starts. */
        r = control_sweep(&m->control, NULL);
        if (r > 0)
                log_notice("Recovered %d run%s left running by a previous corrald in %" PRIu64 " ms.", r, r == 1 ? "" : "s",
                           (now_mono_usec() - start) / 1000);
        (void) sd_notifyf(false, "READY=1\nSTATUS=Running, API on %s.",
                          m->control.socket_activated ? "the socket passed by systemd" : m->config.socket_path);
        return 0;
}

static int on_sweep(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        int r;

        r = control_sweep(&m->control, NULL);
        if (r > 0)
                log_info("Sweep: %d running run%s taken up.", r, r == 1 ? "" : "s");
        r = sd_event_source_set_time_relative(s, (uint64_t) m->config.sweep_interval_sec * 1000000);
        if (r >= 0)
                r = sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        if (r < 0)
                log_error_errno(r, "Failed to re-arm the sweep timer: %m");
        return 0;
}

/* A watched run's output: to what it spends, and to the event streams that follow it. */
static void on_run_output(Supervisor *s, const char *run_id, int stream, const char *data, size_t size, void *userdata) {
        Control *ctl = userdata;

        budget_on_output(s, run_id, stream, data, size, ctl);
        api_events_on_output(ctl, run_id, stream, data, size);
}

/* Long because startup is one sequence whose order is the point (signals, state directory,
 * store, placement, supervisor, recovery, sockets, then listening), each step refusing to
 * start with a message of its own. */
int manager_startup(Manager *m) {
        _cleanup_free_ char *db = NULL;
        int r;

        r = sd_event_default(&m->control.event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");
        r = sd_event_set_watchdog(m->control.event, true);
        if (r < 0)
                log_warning_errno(r, "Failed to enable the watchdog, ignoring: %m");

        r = sd_event_add_signal(m->control.event, &m->sigterm_source, SIGTERM, on_sigterm, m);
        if (r >= 0)
                r = sd_event_add_signal(m->control.event, &m->sigint_source, SIGINT, on_sigterm, m);
        if (r >= 0)
                r = sd_event_add_signal(m->control.event, &m->sighup_source, SIGHUP, on_sighup, m);
        if (r >= 0 && streq_ptr(getenv("CORRAL_TEST_HOOKS"), "1")) {
                sigset_t usr2;
                sigemptyset(&usr2);
                sigaddset(&usr2, SIGUSR2);
                (void) sigprocmask(SIG_BLOCK, &usr2, NULL);
                r = sd_event_add_signal(m->control.event, &m->stall_source, SIGUSR2, on_stall, m);
        }
        if (r < 0)
                return log_error_errno(r, "Failed to watch signals: %m");

        /* Everything corrald makes is its own alone unless it says otherwise (the sockets). */
        umask(0077);
        if (m->config.sandbox && geteuid() != 0)
                return log_error_errno(-EPERM,
                                       "The agent sandbox (sandbox=yes) needs corrald to run as root, to give agents "
                                       "their own users and namespaces. Run corrald as root, or set sandbox=no to run "
                                       "agents unconfined as corrald's own user.");
        r = mkdir_parents_and_self(m->config.state_dir, 0700);
        if (r < 0)
                return log_error_errno(r, "Failed to create state directory %s: %m", m->config.state_dir);
        /* An older corrald made it 0750; runs, logs and the database are root's only. */
        if (chmod(m->config.state_dir, 0700) < 0)
                return log_error_errno(-errno, "Failed to make state directory %s private: %m", m->config.state_dir);

        db = config_database_path(&m->config);
        if (!db)
                return log_oom();
        r = store_open(db, &m->control.store);
        if (r < 0) {
                _cleanup_free_ char *shown = store_target_redacted(db);
                return log_error_errno(r, "Failed to open database %s: %m", strna(shown));
        }
        log_info("Database %s (%s) at schema version %d.", store_target(m->control.store),
                 store_backend_name(store_backend(m->control.store)), store_schema_version(m->control.store));
        /* A lock another process holds is waited for on the loop: briefly. A request that
         * finds it locked is tried again from a timer (api.c), a run's end too (finalize.c). */
        store_set_busy_timeout(m->control.store, MANAGER_BUSY_TIMEOUT_MS);
        /* corrald runs on (the board can still read what is there), but says at once that
         * nothing it does will be recorded; GET /api/health says degraded meanwhile. */
        if (store_read_only(m->control.store))
                log_error("Database %s is read-only: no run, wake or change can be recorded until it can be written.", db);
        else {
                r = store_probe_write(m->control.store);
                if (r < 0)
                        log_error_errno(r, "Database %s cannot be written now: %m", db);
        }

        r = placement_new(m->config.placement, m->config.cgroup_root, m->control.event, &m->control.placement);
        if (r < 0)
                return r;
        _cleanup_free_ char *shim = find_shim();
        if (!shim)
                return log_oom();
        m->control.shim_path = strdup(shim);
        if (!m->control.shim_path)
                return log_oom();
        SupervisorConfig sc = { .state_dir = m->config.state_dir,
                                .shim_path = shim,
                                .boot_id_path = m->config.boot_id_file,
                                .exec_shims = !m->config.shim_spawner };
        r = supervisor_new(m->control.event, m->control.store, m->control.placement, &sc, finalize_run_finished, &m->control,
                           &m->control.supervisor);
        if (r < 0)
                return r;
        supervisor_set_output_watcher(m->control.supervisor, on_run_output, &m->control);

        /* This corrald's row among the hosts, before it claims or recovers anything; its
         * lease goes to the supervisor, for the shims. */
        r = host_start(&m->control);
        if (r < 0)
                return r;

        r = manager_open_socket(m);
        if (r < 0)
                return r;
        m->socket_path_effective = socket_path_of(m);
        if (!m->socket_path_effective)
                return log_oom();
        r = manager_open_agent_socket(m);
        if (r < 0)
                return r;
        SandboxSettings ss = {
                .enabled = m->config.sandbox,
                .uid_min = m->config.sandbox_uid_min,
                .uid_max = m->config.sandbox_uid_max,
                .state_dir = m->config.state_dir,
                .operator_socket = m->socket_path_effective,
                .agent_socket = m->control.agent_socket_path,
                .config_dir = CORRAL_SYSCONFDIR "/corral",
        };
        r = sandbox_new(&ss, &m->control.sandbox);
        if (r < 0)
                return log_oom();
        if (!m->config.sandbox)
                log_warning("The agent sandbox is off (sandbox=no): agents run as corrald's own user, unconfined.");

        r = scheduler_new(&m->control, &m->control.scheduler);
        if (r < 0)
                return r;
        r = quota_new(&m->control.quota);
        if (r < 0)
                return log_oom();
        r = sd_event_add_time_relative(m->control.event, &m->sweep_timer, CLOCK_MONOTONIC,
                                       (uint64_t) m->config.sweep_interval_sec * 1000000, 0, on_sweep, m);
        if (r < 0)
                return log_error_errno(r, "Failed to arm the sweep timer: %m");
        /* Work that other hosts sharing the database make, heard as it is made. */
        r = work_listen_start(&m->control);
        if (r < 0)
                return r;
        r = api_new(&m->control, m->listen_fd, API_OPERATOR, &m->api);
        if (r < 0)
                return r;
        r = api_new(&m->control, m->agent_listen_fd, API_AGENT, &m->agent_api);
        if (r < 0)
                return r;
        if (m->config.metrics_listen) {
                r = open_metrics_listener(m);
                if (r < 0)
                        return r;
                r = api_new(&m->control, m->metrics_listen_fd, API_METRICS, &m->metrics_api);
                if (r < 0)
                        return r;
        }
        /* The API listens from here on (its thread accepts and reads requests); the loop's
         * first act is to take up the runs a previous corrald left running, before any
         * request is carried out (design §5). */
        r = sd_event_add_defer(m->control.event, &m->startup_source, on_startup, m);
        if (r >= 0)
                r = sd_event_source_set_priority(m->startup_source, SD_EVENT_PRIORITY_IMPORTANT);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->startup_source, SD_EVENT_ONESHOT);
        if (r < 0)
                return log_error_errno(r, "Failed to schedule recovery: %m");
        (void) sd_event_source_set_description(m->startup_source, "startup-recovery");
        return 0;
}

int manager_run(Manager *m) {
        int r;

        r = sd_event_loop(m->control.event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        log_info("corrald stopped.");
        return 0;
}
