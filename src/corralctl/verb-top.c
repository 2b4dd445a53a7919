/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * corralctl top: active and recent runs, redrawn as they change (corralctl(1), top).
 *
 * The event stream (GET /api/events, run statuses) says when runs change; each change, and
 * each refresh interval for the CPU figures, reads the runs again (every company's live
 * runs and its latest ones). CPU and memory come from each run's cgroup, read here as
 * systemd-cgtop reads them: corralctl runs on corrald's host. On a terminal the screen is
 * redrawn in place and keys sort it; otherwise each refresh prints a plain table.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "basic/fd-util.h"
#include "basic/macro.h"
#include "basic/time-util.h"
#include "basic/util.h"
#include "client.h"
#include "corralctl.h"
#include "names.h"
#include "output.h"

/* What each company's latest runs are read back to, for the recent ones. */
#define TOP_RECENT_RUNS 50

typedef enum TopSort {
        SORT_START, /* newest first */
        SORT_CPU,
        SORT_MEMORY,
        SORT_DURATION,
        SORT_LOG,
        _SORT_MAX,
} TopSort;

static const char *const sort_names[_SORT_MAX] = { "start", "cpu", "memory", "duration", "log" };
static const char sort_keys[_SORT_MAX] = { 's', 'c', 'm', 'd', 'l' };

typedef struct TopRun {
        char id[40], agent[64], issue[32], status[16];
        int64_t started_usec, duration_usec;
        int64_t log_bytes, cost_cents; /* -1: not known */
        int64_t memory; /* bytes, -1: not known */
        double cpu; /* percent of one CPU, < 0: not known */
        uint64_t cpu_usage_usec; /* the cgroup's usage_usec when read */
} TopRun;

typedef struct Top {
        Ctl *ctl;
        bool tty;
        TopSort sort;
        uint64_t delay_usec, recent_usec;
        unsigned iterations, drawn; /* 0: until q */
        bool dirty; /* the stream said something changed */
        uint64_t drawn_usec;
        TopRun *runs, *previous; /* this refresh's, the last one's (for CPU deltas) */
        size_t n_runs, n_previous;
        uint64_t sampled_usec, previous_usec;
        struct termios saved;
        bool raw;
} Top;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
        interrupted = 1;
}

/* A number from the first line of a cgroup file that starts with key (or the file's
 * content when key is NULL): -1 when it cannot be read (no controller, run gone). */
static int64_t cgroup_number(const char *cgroup, const char *file, const char *key) {
        _cleanup_free_ char *path = strprintf("%s/%s", cgroup, file), *text = NULL;
        const char *p;
        size_t size;
        int64_t v;

        if (!path || read_full_file(path, 64 * 1024, &text, &size) < 0)
                return -1;
        p = text;
        if (key) {
                size_t len = strlen(key);
                for (p = text; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
                        if (strncmp(p, key, len) == 0 && p[len] == ' ')
                                break;
                if (!p)
                        return -1;
                p += len + 1;
        }
        if (sscanf(p, "%" SCNd64, &v) != 1)
                return -1;
        return v;
}

static void copy_member(const cJSON *o, const char *field, char *buf, size_t size) {
        char tmp[128];

        snprintf(buf, size, "%s", output_value(o, field, tmp, sizeof(tmp)));
}

static int64_t number_member(const cJSON *o, const char *field) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
        return cJSON_IsNumber(v) ? (int64_t) v->valuedouble : -1;
}

static const TopRun *previous_of(const Top *top, const char *id) {
        for (size_t i = 0; i < top->n_previous; i++)
                if (streq(top->previous[i].id, id))
                        return &top->previous[i];
        return NULL;
}

/* One run of the API as a row: times, its cgroup's figures now, CPU since the last read. */
static void row_of(Top *top, const cJSON *run, int64_t now, TopRun *t) {
        const char *cgroup = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(run, "cgroupPath"));
        const char *started = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(run, "startedAt"));
        const char *finished = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(run, "finishedAt"));
        const char *logpath = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(run, "logPath"));
        const cJSON *usage = cJSON_GetObjectItemCaseSensitive(run, "usageJson");
        int64_t start = 0, end = now;
        struct stat st;

        *t = (TopRun){ .memory = -1, .cpu = -1, .cost_cents = number_member(usage, "costCents") };
        copy_member(run, "id", t->id, sizeof(t->id));
        copy_member(run, "agentId", t->agent, sizeof(t->agent));
        copy_member(run, "issueId", t->issue, sizeof(t->issue));
        copy_member(run, "status", t->status, sizeof(t->status));
        t->log_bytes = number_member(run, "logBytes");
        if (t->log_bytes < 0 && logpath && stat(logpath, &st) >= 0)
                t->log_bytes = st.st_size; /* a live run's log, as long as it is now */
        if (started && iso_time_parse(started, &start) >= 0) {
                if (finished)
                        (void) iso_time_parse(finished, &end);
                t->started_usec = start;
                t->duration_usec = MAX(end - start, 0);
        }
        if (!cgroup || finished)
                return;
        t->memory = cgroup_number(cgroup, "memory.current", NULL);
        int64_t usage_usec = cgroup_number(cgroup, "cpu.stat", "usage_usec");
        if (usage_usec < 0)
                return;
        t->cpu_usage_usec = (uint64_t) usage_usec;
        const TopRun *p = previous_of(top, t->id);
        if (p && p->cpu_usage_usec <= t->cpu_usage_usec && top->sampled_usec > top->previous_usec)
                t->cpu = 100.0 * (double) (t->cpu_usage_usec - p->cpu_usage_usec) /
                        (double) (top->sampled_usec - top->previous_usec);
}

static int compare_runs(const TopRun *a, const TopRun *b, TopSort sort) {
        switch (sort) {
        case SORT_CPU:
                return a->cpu < b->cpu ? 1 : a->cpu > b->cpu ? -1 : 0;
        case SORT_MEMORY:
                return a->memory < b->memory ? 1 : a->memory > b->memory ? -1 : 0;
        case SORT_DURATION:
                return a->duration_usec < b->duration_usec ? 1 : a->duration_usec > b->duration_usec ? -1 : 0;
        case SORT_LOG:
                return a->log_bytes < b->log_bytes ? 1 : a->log_bytes > b->log_bytes ? -1 : 0;
        default:
                return a->started_usec < b->started_usec ? 1 : a->started_usec > b->started_usec ? -1 : 0;
        }
}

static TopSort sort_key;

static int compare_qsort(const void *a, const void *b) {
        int c = compare_runs(a, b, sort_key);
        return c ? c : strcmp(((const TopRun *) a)->id, ((const TopRun *) b)->id);
}

static void json_freep(cJSON **j) {
        cJSON_Delete(*j);
}

static bool listed(const cJSON *rows, const char *id) {
        const cJSON *row;

        cJSON_ArrayForEach (row, rows)
                if (streq_ptr(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "id")), id))
                        return true;
        return false;
}

/* Every company's live runs, and its runs that ended within the recent window. */
static int fetch(Top *top) {
        static const Column labelled[] = { { "AGENT", "agentId", 0, "agent" }, { "ISSUE", "issueId", 0, "issue" }, {} };
        _cleanup_(json_freep) cJSON *companies = NULL, *rows = cJSON_CreateArray();
        const cJSON *company;
        int64_t now = now_usec();
        int r;

        if (!rows)
                return EXIT_API_ERROR;
        r = client_list(top->ctl, "/api/companies", 0, &companies);
        if (r != EXIT_OK)
                return r;
        cJSON_ArrayForEach (company, companies) {
                const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(company, "id"));
                _cleanup_free_ char *live_path = strprintf("/api/companies/%s/live-runs", strempty(id)),
                                    *recent_path = strprintf("/api/companies/%s/heartbeat-runs", strempty(id));
                cJSON *live = NULL, *recent = NULL, *run;

                if (!id || !live_path || !recent_path)
                        return EXIT_API_ERROR;
                r = client_list(top->ctl, live_path, 0, &live);
                if (r == EXIT_OK)
                        r = client_list(top->ctl, recent_path, TOP_RECENT_RUNS, &recent);
                if (r != EXIT_OK) {
                        cJSON_Delete(live);
                        return r;
                }
                while ((run = cJSON_DetachItemFromArray(live, 0)))
                        cJSON_AddItemToArray(rows, run);
                cJSON_Delete(live);
                while ((run = recent ? recent->child : NULL)) {
                        const char *finished = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(run, "finishedAt"));
                        int64_t at;
                        cJSON_DetachItemViaPointer(recent, run);
                        if (finished && iso_time_parse(finished, &at) >= 0 && now - at <= (int64_t) top->recent_usec &&
                            !listed(rows, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(run, "id"))))
                                cJSON_AddItemToArray(rows, run);
                        else
                                cJSON_Delete(run);
                }
                cJSON_Delete(recent);
        }
        /* A run's issue is in its wake's context. */
        cJSON *row;
        cJSON_ArrayForEach (row, rows) {
                const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(row, "contextSnapshot");
                const char *issue = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ctx, "issueId"));
                if (issue)
                        cJSON_AddStringToObject(row, "issueId", issue);
        }
        names_label(top->ctl, rows, labelled);

        free(top->previous);
        top->previous = TAKE_PTR(top->runs);
        top->n_previous = top->n_runs;
        top->previous_usec = top->sampled_usec;
        top->sampled_usec = now_mono_usec();
        top->n_runs = 0;
        top->runs = calloc(MAX(cJSON_GetArraySize(rows), 1), sizeof(TopRun));
        if (!top->runs)
                return EXIT_API_ERROR;
        cJSON_ArrayForEach (row, rows)
                row_of(top, row, now, &top->runs[top->n_runs++]);
        sort_key = top->sort;
        qsort(top->runs, top->n_runs, sizeof(TopRun), compare_qsort);
        return EXIT_OK;
}

static void format_duration(int64_t usec, char *buf, size_t size) {
        int64_t s = usec / (int64_t) USEC_PER_SEC;

        if (s < 60)
                snprintf(buf, size, "%" PRIi64 ".%" PRIi64 "s", s, usec / 100000 % 10);
        else if (s < 3600)
                snprintf(buf, size, "%" PRIi64 "m%02" PRIi64 "s", s / 60, s % 60);
        else
                snprintf(buf, size, "%" PRIi64 "h%02" PRIi64 "m", s / 3600, s / 60 % 60);
}

static void format_bytes(int64_t n, char *buf, size_t size) {
        static const char units[] = "BKMGT";
        double v = (double) n;
        int u = 0;

        if (n < 0) {
                snprintf(buf, size, "-");
                return;
        }
        while (v >= 1024 && u < 4) {
                v /= 1024;
                u++;
        }
        if (u == 0)
                snprintf(buf, size, "%" PRIi64 "B", n);
        else
                snprintf(buf, size, "%.1f%c", v, units[u]);
}

static unsigned terminal_width(const Top *top) {
        struct winsize ws;

        if (top->tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) >= 0 && ws.ws_col > 0)
                return ws.ws_col;
        return 1000; /* not a terminal: no cut */
}

static void draw(Top *top) {
        unsigned width = terminal_width(top), active = 0;
        char line[1024];

        for (size_t i = 0; i < top->n_runs; i++)
                active += streq(top->runs[i].status, "running") || streq(top->runs[i].status, "queued");
        if (top->tty)
                fputs("\033[H\033[2J", stdout); /* home, clear */
        snprintf(line, sizeof(line), "corral top: %u active, %zu recent runs; sorted by %s%s", active, top->n_runs - active,
                 sort_names[top->sort], top->tty ? "  (c cpu, m memory, d duration, l log, s start, q quit)" : "");
        printf("%.*s\n", (int) width, line);
        snprintf(line, sizeof(line), "%-8s  %-16s %-10s %-10s %9s %6s %8s %8s %7s", "RUN", "AGENT", "ISSUE", "STATUS", "DURATION",
                 "CPU%", "MEMORY", "LOG", "COST");
        printf("%s%.*s%s\n", top->tty ? "\033[7m" : "", (int) width, line, top->tty ? "\033[0m" : "");
        for (size_t i = 0; i < top->n_runs; i++) {
                const TopRun *t = &top->runs[i];
                char duration[48], cpu[32], memory[32], log[32], cost[48];

                format_duration(t->duration_usec, duration, sizeof(duration));
                if (t->cpu < 0)
                        snprintf(cpu, sizeof(cpu), "-");
                else
                        snprintf(cpu, sizeof(cpu), "%.1f", t->cpu);
                format_bytes(t->memory, memory, sizeof(memory));
                format_bytes(t->log_bytes, log, sizeof(log));
                if (t->cost_cents < 0)
                        snprintf(cost, sizeof(cost), "-");
                else
                        snprintf(cost, sizeof(cost), "$%" PRIi64 ".%02" PRIi64, t->cost_cents / 100, t->cost_cents % 100);
                snprintf(line, sizeof(line), "%-8.8s  %-16.16s %-10.10s %-10.10s %9s %6s %8s %8s %7s", t->id, t->agent, t->issue,
                         t->status, duration, cpu, memory, log, cost);
                printf("%.*s\n", (int) width, line);
        }
        if (!top->tty)
                putchar('\n');
        fflush(stdout);
}

/* Keys, refreshes and redraws: called by the stream at least about once a second. */
static int on_tick(void *userdata) {
        Top *top = userdata;
        bool redraw = top->dirty || now_mono_usec() - top->drawn_usec >= top->delay_usec;
        int r;

        if (interrupted)
                return -1;
        if (top->tty) {
                char key;
                while (poll(&(struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN }, 1, 0) > 0 &&
                       read(STDIN_FILENO, &key, 1) == 1) {
                        if (key == 'q' || key == 'Q' || key == 3 /* ^C, as the terminal is raw */)
                                return -1;
                        for (int i = 0; i < _SORT_MAX; i++)
                                if (key == sort_keys[i])
                                        top->sort = (TopSort) i;
                        /* Space, or any other key: a refresh. */
                        redraw = true;
                }
        }
        if (!redraw)
                return 0;
        r = fetch(top);
        if (r != EXIT_OK)
                return -1;
        top->dirty = false;
        top->drawn_usec = now_mono_usec();
        draw(top);
        if (top->iterations > 0 && ++top->drawn >= top->iterations)
                return -1;
        return 0;
}

static int on_event(const char *type, const cJSON *data, void *userdata) {
        Top *top = userdata;

        top->dirty = true; /* drawn at the next tick: a burst of changes is one redraw */
        return on_tick(top);
}

static void terminal_restore(Top *top) {
        if (!top->raw)
                return;
        (void) tcsetattr(STDIN_FILENO, TCSANOW, &top->saved);
        fputs("\033[?25h\n", stdout); /* the cursor back */
        fflush(stdout);
        top->raw = false;
}

int verb_top(Ctl *ctl, int argc, char *argv[]) {
        ExtraOpt opts[] = { { "delay", "Seconds between refreshes (default 1)" },
                            { "iterations", "Refresh this many times, then exit (default: until q; 1 when not a terminal)" },
                            { "recent", "Show runs that ended within this many seconds (default 60)" },
                            { "sort", "start (default), cpu, memory, duration or log" },
                            {} };
        Top top = { .ctl = ctl, .delay_usec = USEC_PER_SEC, .recent_usec = 60 * USEC_PER_SEC };
        int first, r;

        first = ctl_args(ctl, NULL, "top", argc, argv, NULL, opts, NULL, 0);
        if (first < 0)
                return -1 - first;
        top.tty = isatty(STDOUT_FILENO) && isatty(STDIN_FILENO);
        top.iterations = top.tty ? 0 : 1;
        if (opts[0].value) {
                double d;
                if (sscanf(opts[0].value, "%lf", &d) != 1 || d < 0.1 || d > 3600) {
                        fprintf(stderr, "corralctl: --delay must be seconds from 0.1 to 3600, not '%s'\n", opts[0].value);
                        return EXIT_USAGE;
                }
                top.delay_usec = (uint64_t) (d * (double) USEC_PER_SEC);
        }
        if (opts[1].value) {
                unsigned n;
                if (sscanf(opts[1].value, "%u", &n) != 1 || n == 0) {
                        fprintf(stderr, "corralctl: --iterations must be a positive number, not '%s'\n", opts[1].value);
                        return EXIT_USAGE;
                }
                top.iterations = n;
        }
        if (opts[2].value) {
                unsigned n;
                if (sscanf(opts[2].value, "%u", &n) != 1) {
                        fprintf(stderr, "corralctl: --recent must be seconds, not '%s'\n", opts[2].value);
                        return EXIT_USAGE;
                }
                top.recent_usec = n * USEC_PER_SEC;
        }
        if (opts[3].value) {
                int s = -1;
                for (int i = 0; i < _SORT_MAX; i++)
                        if (streq(opts[3].value, sort_names[i]))
                                s = i;
                if (s < 0) {
                        fprintf(stderr, "corralctl: --sort must be start, cpu, memory, duration or log, not '%s'\n",
                                opts[3].value);
                        return EXIT_USAGE;
                }
                top.sort = (TopSort) s;
        }

        (void) signal(SIGINT, on_signal);
        (void) signal(SIGTERM, on_signal);
        if (top.tty && tcgetattr(STDIN_FILENO, &top.saved) >= 0) {
                struct termios raw = top.saved;
                raw.c_lflag &= ~(tcflag_t) (ICANON | ECHO | ISIG);
                raw.c_cc[VMIN] = 0;
                raw.c_cc[VTIME] = 0;
                if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) >= 0) {
                        top.raw = true;
                        fputs("\033[?25l", stdout); /* no cursor over the table */
                }
        }
        /* The first screen at once, then what the stream and the clock bring. */
        r = fetch(&top);
        if (r == EXIT_OK) {
                top.drawn_usec = now_mono_usec();
                draw(&top);
                top.drawn = 1;
                if (top.iterations == 0 || top.drawn < top.iterations)
                        r = client_events(ctl, "/api/events?follow=true&types=run.status", on_event, on_tick, &top);
        }
        terminal_restore(&top);
        free(top.runs);
        free(top.previous);
        return r;
}
