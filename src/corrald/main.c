/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * corrald: parse the command line, load the configuration, run the manager.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>

#include "basic/config.h"
#include "basic/log.h"
#include "daemon/manager.h"

static void help(void) {
        printf("Usage: corrald [OPTIONS...]\n\n"
               "Supervise AI agent runs: wake agents, run each in its own cgroup, keep all state in SQLite.\n\n"
               "  -h --help              Show this help\n"
               "     --version           Show the version\n"
               "  -c --config=PATH       Configuration file (default %s)\n"
               "     --state-dir=DIR     Database and per-run files (default %s/lib/corral)\n"
               "     --socket=PATH       API socket when not socket-activated (default %s/corral/corrald.sock)\n"
               "     --database=PATH|URI SQLite database file (default STATE-DIR/corral.db),\n"
               "                         or a PostgreSQL database's postgresql:// URI\n"
               "     --placement=MODE    auto, scope, cgroup or none (default auto)\n"
               "     --cgroup-root=PATH  cgroup v2 directory for run cgroups (default OWN-CGROUP/corral)\n"
               "     --log-level=LEVEL   err, warning, notice, info or debug (default info)\n"
               "     --sweep-interval-sec=N   recover untracked running runs every N s (default 30)\n"
               "     --process-loss-retries=N automatic retries of a lost run (default 1)\n"
               "     --boot-id-file=PATH read the boot id here (tests simulate reboots)\n"
               "     --max-continuation-retries=N  continuations without progress before escalation (default 2)\n"
               "     --shim-spawner=yes|no  fork shims from one spawner rather than execute each (default yes)\n"
               "     --agent-socket=PATH the socket agents reach (default agent.sock beside --socket)\n"
               "     --sandbox=yes|no    every agent in its sandbox, as a user of its own (default yes; needs root)\n"
               "     --sandbox-uids=FIRST-LAST  the uids given to agents (default %u-%u)\n"
               "     --quota-wakes-per-minute=N     wakes one agent may ask for a minute (default 60; 0: no quota)\n"
               "     --quota-comments-per-minute=N  comments one agent may post a minute (default 60; 0: no quota)\n"
               "     --quota-comment-kib=N          longest comment body (default 256; 0: up to the body limit)\n"
               "     --quota-log-mib=N              output of a run past which it is stopped (default 1024; 0: none)\n"
               "     --default-tasks-max=N          a run's tasksMax unless it sets one (default 4096; 0: none)\n"
               "     --default-memory-max-mib=N     a run's memoryMax unless it sets one (default 8192; 0: none)\n"
               "     --price='MODEL IN CACHED OUT'  what a model costs, USD per million tokens (repeatable)\n"
               "     --price-default='IN CACHED OUT' what any other model costs (default 15 1.5 75)\n"
               "     --month-file=PATH   read the current month (YYYY-MM) here (tests turn the month)\n"
               "     --workspace-remove-delay-sec=N  a closed issue's workspace goes N s later (default 3600)\n"
               "     --metrics-listen=ADDR:PORT  also serve GET /metrics over TCP there (default: no)\n"
               "     --host-id=ID        this corrald's name among hosts (default: the machine id)\n"
               "     --host-lease-sec=N  this host's lease lasts N s unless renewed (default 15)\n"
               "     --max-runs=N        run at most N runs at once on this host (default 0: no cap)\n"
               "\nSee corrald(8) and corrald.conf(5).\n",
               CONFIG_DEFAULT_PATH, CORRAL_LOCALSTATEDIR, CORRAL_RUNSTATEDIR, CONFIG_SANDBOX_UID_MIN, CONFIG_SANDBOX_UID_MAX);
}

static int parse_argv(Manager *m, int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_SETTING };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "config", required_argument, NULL, 'c' },
                { "state-dir", required_argument, NULL, ARG_SETTING },
                { "socket", required_argument, NULL, ARG_SETTING },
                { "database", required_argument, NULL, ARG_SETTING },
                { "placement", required_argument, NULL, ARG_SETTING },
                { "cgroup-root", required_argument, NULL, ARG_SETTING },
                { "sweep-interval-sec", required_argument, NULL, ARG_SETTING },
                { "process-loss-retries", required_argument, NULL, ARG_SETTING },
                { "boot-id-file", required_argument, NULL, ARG_SETTING },
                { "max-continuation-retries", required_argument, NULL, ARG_SETTING },
                { "shim-spawner", required_argument, NULL, ARG_SETTING },
                { "agent-socket", required_argument, NULL, ARG_SETTING },
                { "sandbox", required_argument, NULL, ARG_SETTING },
                { "sandbox-uids", required_argument, NULL, ARG_SETTING },
                { "quota-wakes-per-minute", required_argument, NULL, ARG_SETTING },
                { "quota-comments-per-minute", required_argument, NULL, ARG_SETTING },
                { "quota-comment-kib", required_argument, NULL, ARG_SETTING },
                { "quota-log-mib", required_argument, NULL, ARG_SETTING },
                { "default-tasks-max", required_argument, NULL, ARG_SETTING },
                { "default-memory-max-mib", required_argument, NULL, ARG_SETTING },
                { "log-level", required_argument, NULL, ARG_SETTING },
                { "price", required_argument, NULL, ARG_SETTING },
                { "price-default", required_argument, NULL, ARG_SETTING },
                { "month-file", required_argument, NULL, ARG_SETTING },
                { "workspace-remove-delay-sec", required_argument, NULL, ARG_SETTING },
                { "metrics-listen", required_argument, NULL, ARG_SETTING },
                { "host-id", required_argument, NULL, ARG_SETTING },
                { "host-lease-sec", required_argument, NULL, ARG_SETTING },
                { "max-runs", required_argument, NULL, ARG_SETTING },
                {},
        };
        int c, idx, r;

        while ((c = getopt_long(argc, argv, "hc:", options, &idx)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("corrald %s\n", PACKAGE_VERSION);
                        return 0;
                case 'c':
                        free(m->config_path);
                        m->config_path = strdup(optarg);
                        if (!m->config_path)
                                return log_oom();
                        m->config_must_exist = true;
                        break;
                case ARG_SETTING: {
                        /* Validate now so a typo is a usage error, not a startup failure later. */
                        _cleanup_free_ char *error = NULL;
                        Config probe;
                        if (config_init(&probe) < 0)
                                return log_oom();
                        r = config_set(&probe, options[idx].name, optarg, &error);
                        config_done(&probe);
                        if (r < 0)
                                return log_error_errno(r, "--%s: %s", options[idx].name, error ?: strerror(-r));
                        r = manager_add_override(m, options[idx].name, optarg);
                        if (r < 0)
                                return log_oom();
                        break;
                }
                case '?':
                        return -EINVAL;
                default:
                        return -EINVAL;
                }
        }
        if (optind < argc)
                return log_error_errno(-EINVAL, "corrald takes no positional arguments (got '%s').", argv[optind]);
        return 1;
}

int main(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        sigset_t mask;
        int r;

        log_setup("corrald", LOG_TARGET_AUTO);

        r = manager_new(&m);
        if (r < 0) {
                log_oom();
                return EXIT_FAILURE;
        }
        r = parse_argv(m, argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : EXIT_SUCCESS;

        r = manager_load_config(m);
        if (r < 0)
                return EXIT_FAILURE;

        /* sd-event takes these through signalfd; they must not be delivered the classic way. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        /* As systemd's own services do: every live run costs descriptors, and the soft limit
         * (1,024 by default) would cap the runs far below what the machine holds. */
        struct rlimit nofile;
        if (getrlimit(RLIMIT_NOFILE, &nofile) >= 0 && nofile.rlim_cur < nofile.rlim_max) {
                nofile.rlim_cur = nofile.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &nofile) < 0)
                        log_warning_errno(-errno, "Failed to raise the open files limit to %llu, ignoring: %m",
                                          (unsigned long long) nofile.rlim_max);
        }

        log_info("corrald %s starting (state in %s).", PACKAGE_VERSION, m->config.state_dir);
        r = manager_startup(m);
        if (r < 0)
                return EXIT_FAILURE;
        r = manager_run(m);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
