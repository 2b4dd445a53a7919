/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Configuration parsing and validation.
 */
#include "basic/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/util.h"
#include "basic/log.h"
#include "basic/fd-util.h"

static const char *const placement_names[] = { "auto", "scope", "cgroup", "none", NULL };

const char *placement_kind_to_string(PlacementKind p) {
        return p >= 0 && p < _PLACEMENT_MAX ? placement_names[p] : NULL;
}

PlacementKind placement_kind_from_string(const char *s) {
        for (int i = 0; s && placement_names[i]; i++)
                if (streq(placement_names[i], s))
                        return (PlacementKind) i;
        return _PLACEMENT_INVALID;
}

const char *const config_keys[] = {
        "state-dir",
        "socket",
        "database",
        "placement",
        "cgroup-root",
        "log-level",
        "sweep-interval-sec",
        "process-loss-retries",
        "boot-id-file",
        "max-continuation-retries",
        "shim-spawner",
        "agent-socket",
        "sandbox",
        "sandbox-uids",
        "quota-wakes-per-minute",
        "quota-comments-per-minute",
        "quota-comment-kib",
        "quota-log-mib",
        "default-tasks-max",
        "default-memory-max-mib",
        "price",
        "price-default",
        "month-file",
        "workspace-remove-delay-sec",
        "metrics-listen",
        "host-id",
        "host-lease-sec",
        "max-runs",
        NULL,
};

int config_init(Config *c) {
        *c = (Config){
                .state_dir = strdup(CORRAL_LOCALSTATEDIR "/lib/corral"),
                .socket_path = strdup(CORRAL_RUNSTATEDIR "/corral/corrald.sock"),
                .placement = PLACEMENT_AUTO,
                .log_level = LOG_INFO,
                .sweep_interval_sec = 30,
                .host_lease_sec = 15,
                .process_loss_retries = 1,
                .max_continuation_retries = 2,
                .shim_spawner = true,
                .sandbox = true,
                .sandbox_uid_min = CONFIG_SANDBOX_UID_MIN,
                .sandbox_uid_max = CONFIG_SANDBOX_UID_MAX,
                .quota_wakes_per_minute = 60,
                .quota_comments_per_minute = 60,
                .quota_comment_kib = 256,
                .quota_log_mib = 1024,
                .default_tasks_max = 4096,
                .default_memory_max_mib = 8192,
                .workspace_remove_delay_sec = 3600,
                /* A model corrald has no price for is not free: it is priced as the dearest
                 * models were when this was written, and its runs say so. */
                .price_default = { .input = 15.0, .cached_input = 1.5, .output = 75.0 },
        };
        if (!c->state_dir || !c->socket_path) {
                config_done(c);
                return -ENOMEM;
        }
        return 0;
}

void config_done(Config *c) {
        free(c->state_dir);
        free(c->socket_path);
        free(c->database);
        free(c->cgroup_root);
        free(c->boot_id_file);
        free(c->agent_socket_path);
        free(c->month_file);
        free(c->metrics_listen);
        free(c->host_id);
        for (size_t i = 0; i < c->n_prices; i++)
                free(c->prices[i].model);
        free(c->prices);
        *c = (Config){};
}

/* "INPUT CACHED OUTPUT": three prices, USD per million tokens. */
static int parse_prices(const char *text, Price *p) {
        double v[3];
        char *end;

        for (int i = 0; i < 3; i++) {
                text += strspn(text, " \t");
                if (*text == 0)
                        return -EINVAL;
                errno = 0;
                v[i] = strtod(text, &end);
                if (errno != 0 || end == text || !isfinite(v[i]) || v[i] < 0 || v[i] > CONFIG_PRICE_MAX ||
                    (*end && *end != ' ' && *end != '\t'))
                        return -EINVAL;
                text = end;
        }
        if (text[strspn(text, " \t")] != 0)
                return -EINVAL;
        p->input = v[0];
        p->cached_input = v[1];
        p->output = v[2];
        return 0;
}

/* price = MODEL INPUT CACHED OUTPUT (a model given again is priced anew);
 * price-default = INPUT CACHED OUTPUT. */
static int set_price(Config *c, const char *key, const char *value, char **ret_error) {
        Price p = {};
        size_t n;

        value = strempty(value);
        if (streq(key, "price-default")) {
                if (parse_prices(value, &p) < 0) {
                        *ret_error = strprintf("price-default must be three prices in USD per million tokens, "
                                               "input, cached input and output, each from 0 to %g; got '%s'",
                                               CONFIG_PRICE_MAX, value);
                        return -EINVAL;
                }
                c->price_default = p;
                return 0;
        }
        n = strcspn(value, " \t");
        if (n == 0 || n > CONFIG_MODEL_NAME_MAX || parse_prices(value + n, &p) < 0) {
                *ret_error = strprintf("price must be a model's name and three prices in USD per million tokens, "
                                       "input, cached input and output, each from 0 to %g; got '%s'",
                                       CONFIG_PRICE_MAX, value);
                return -EINVAL;
        }
        for (size_t i = 0; i < c->n_prices; i++)
                if (strlen(c->prices[i].model) == n && strncmp(c->prices[i].model, value, n) == 0) {
                        p.model = c->prices[i].model;
                        c->prices[i] = p;
                        return 0;
                }
        if (c->n_prices >= CONFIG_PRICES_MAX) {
                *ret_error = strprintf("at most %d models may be priced", CONFIG_PRICES_MAX);
                return -EINVAL;
        }
        Price *t = reallocarray(c->prices, c->n_prices + 1, sizeof(Price));
        if (!t)
                return -ENOMEM;
        c->prices = t;
        p.model = strndup(value, n);
        if (!p.model)
                return -ENOMEM;
        c->prices[c->n_prices++] = p;
        return 0;
}

int config_metrics_address(const char *listen, struct sockaddr_storage *ret, socklen_t *ret_len) {
        _cleanup_free_ char *host = NULL;
        struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM }, *ai = NULL;
        const char *colon = strrchr(listen, ':'), *port;

        if (!colon || !colon[1])
                return -EINVAL;
        port = colon + 1;
        if (listen[0] == '[') {
                if (colon == listen || colon[-1] != ']')
                        return -EINVAL;
                host = strndup(listen + 1, (size_t) (colon - listen - 2));
        } else
                host = strndup(listen, (size_t) (colon - listen));
        if (!host)
                return -ENOMEM;
        if (strspn(port, "0123456789") != strlen(port) || getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
                return -EINVAL;
        memcpy(ret, ai->ai_addr, ai->ai_addrlen);
        *ret_len = ai->ai_addrlen;
        freeaddrinfo(ai);
        return 0;
}

const Price *config_price(const Config *c, const char *model, bool *ret_default) {
        for (size_t i = 0; model && i < c->n_prices; i++)
                if (streq(c->prices[i].model, model)) {
                        *ret_default = false;
                        return &c->prices[i];
                }
        *ret_default = true;
        return &c->price_default;
}

/* A host id reads the same in a URL, a log line and a table. */
bool config_host_id_is_valid(const char *value) {
        bool ok = !isempty(value) && strlen(value) <= CONFIG_HOST_ID_MAX;

        for (const char *p = value; ok && *p; p++)
                ok = isalnum((unsigned char) *p) || strchr("._:-", *p);
        return ok;
}

static int set_path(char **field, const char *key, const char *value, char **ret_error) {
        if (isempty(value) || value[0] != '/') {
                *ret_error = strprintf("%s must be an absolute path, got '%s'", key, strempty(value));
                return -EINVAL;
        }
        if (strlen(value) >= 4096) {
                *ret_error = strprintf("%s is too long", key);
                return -EINVAL;
        }
        return free_and_strdup(field, value);
}

/* An SQLite file's absolute path, or a PostgreSQL URI (libpq's: postgresql://...). */
static int set_database(char **field, const char *key, const char *value, char **ret_error) {
        if (!startswith(strempty(value), "postgresql://") && !startswith(strempty(value), "postgres://"))
                return set_path(field, key, value, ret_error);
        if (strlen(value) >= 4096) {
                *ret_error = strprintf("%s is too long", key);
                return -EINVAL;
        }
        return free_and_strdup(field, value);
}

static int set_yes_no(bool *field, const char *key, const char *value, char **ret_error) {
        if (streq_ptr(value, "yes"))
                *field = true;
        else if (streq_ptr(value, "no"))
                *field = false;
        else {
                *ret_error = strprintf("%s must be yes or no; got '%s'", key, strempty(value));
                return -EINVAL;
        }
        return 0;
}

/* "FIRST-LAST": the uids corral gives its agents, at least one and never root's. */
static int set_uid_range(Config *c, const char *key, const char *value, char **ret_error) {
        uint64_t first, last;
        const char *dash = value ? strchr(value, '-') : NULL;
        _cleanup_free_ char *head = dash ? strndup(value, (size_t) (dash - value)) : NULL;

        if (!head || safe_atou64(head, &first) < 0 || safe_atou64(dash + 1, &last) < 0 || first == 0 || first > last ||
            last >= UINT32_MAX - 1) {
                *ret_error = strprintf("%s must be FIRST-LAST, two uids from 1 to %u with FIRST <= LAST; got '%s'", key,
                                       UINT32_MAX - 2, strempty(value));
                return -EINVAL;
        }
        c->sandbox_uid_min = (uint32_t) first;
        c->sandbox_uid_max = (uint32_t) last;
        return 0;
}

static int set_socket(char **field, const char *key, const char *value, char **ret_error) {
        /* sun_path holds 108 bytes with the NUL. */
        if (value && strlen(value) > 107) {
                *ret_error = strprintf("%s path '%s' is longer than 107 bytes", key, value);
                return -EINVAL;
        }
        return set_path(field, key, value, ret_error);
}

int config_set(Config *c, const char *key, const char *value, char **ret_error) {
        if (streq(key, "state-dir"))
                return set_path(&c->state_dir, key, value, ret_error);
        if (streq(key, "socket"))
                return set_socket(&c->socket_path, key, value, ret_error);
        if (streq(key, "agent-socket"))
                return set_socket(&c->agent_socket_path, key, value, ret_error);
        if (streq(key, "sandbox"))
                return set_yes_no(&c->sandbox, key, value, ret_error);
        if (streq(key, "sandbox-uids"))
                return set_uid_range(c, key, value, ret_error);
        if (streq(key, "database"))
                return set_database(&c->database, key, value, ret_error);
        if (streq(key, "cgroup-root"))
                return set_path(&c->cgroup_root, key, value, ret_error);
        if (streq(key, "price") || streq(key, "price-default"))
                return set_price(c, key, value, ret_error);
        if (streq(key, "host-id")) {
                if (!config_host_id_is_valid(value)) {
                        *ret_error = strprintf("host-id must be 1 to 128 letters, digits and ._:-; got '%s'", strempty(value));
                        return -EINVAL;
                }
                return free_and_strdup(&c->host_id, value);
        }
        if (streq(key, "metrics-listen")) {
                struct sockaddr_storage sa;
                socklen_t len;
                if (isempty(value) || streq(value, "no"))
                        return free_and_strdup(&c->metrics_listen, NULL);
                if (config_metrics_address(value, &sa, &len) < 0) {
                        *ret_error = strprintf("metrics-listen must be an address and port, 127.0.0.1:9464 or [::1]:9464 "
                                               "(or no); got '%s'",
                                               value);
                        return -EINVAL;
                }
                return free_and_strdup(&c->metrics_listen, value);
        }
        if (streq(key, "month-file"))
                return set_path(&c->month_file, key, value, ret_error);
        if (streq(key, "boot-id-file"))
                return set_path(&c->boot_id_file, key, value, ret_error);
        if (streq(key, "placement")) {
                PlacementKind p = placement_kind_from_string(value);
                if (p < 0) {
                        *ret_error = strprintf("placement must be one of auto, scope, cgroup, none; got '%s'", strempty(value));
                        return -EINVAL;
                }
                c->placement = p;
                return 0;
        }
        static const struct {
                const char *key;
                unsigned min, max;
                size_t offset;
        } numbers[] = {
                { "sweep-interval-sec", 1, 86400, offsetof(Config, sweep_interval_sec) },
                { "process-loss-retries", 0, 10, offsetof(Config, process_loss_retries) },
                { "max-continuation-retries", 1, 100, offsetof(Config, max_continuation_retries) },
                { "quota-wakes-per-minute", 0, 100000, offsetof(Config, quota_wakes_per_minute) },
                { "quota-comments-per-minute", 0, 100000, offsetof(Config, quota_comments_per_minute) },
                { "quota-comment-kib", 0, 1024, offsetof(Config, quota_comment_kib) },
                { "quota-log-mib", 0, 1048576, offsetof(Config, quota_log_mib) },
                { "default-tasks-max", 0, 4194304, offsetof(Config, default_tasks_max) },
                { "default-memory-max-mib", 0, 1048576, offsetof(Config, default_memory_max_mib) },
                { "workspace-remove-delay-sec", 0, 31536000, offsetof(Config, workspace_remove_delay_sec) },
                { "host-lease-sec", 3, 3600, offsetof(Config, host_lease_sec) },
                { "max-runs", 0, 1000000, offsetof(Config, max_runs) },
        };
        for (size_t i = 0; i < ELEMENTSOF(numbers); i++) {
                uint64_t v;
                if (!streq(key, numbers[i].key))
                        continue;
                if (safe_atou64(value, &v) < 0 || v < numbers[i].min || v > numbers[i].max) {
                        *ret_error = strprintf("%s must be an integer from %u to %u; got '%s'", key, numbers[i].min,
                                               numbers[i].max, strempty(value));
                        return -EINVAL;
                }
                *(unsigned *) ((char *) c + numbers[i].offset) = (unsigned) v;
                return 0;
        }
        if (streq(key, "shim-spawner"))
                return set_yes_no(&c->shim_spawner, key, value, ret_error);
        if (streq(key, "log-level")) {
                int l = log_level_from_string(value);
                if (l < 0) {
                        *ret_error = strprintf("log-level must be one of err, warning, notice, info, debug; got '%s'",
                                               strempty(value));
                        return -EINVAL;
                }
                c->log_level = l;
                return 0;
        }
        return -ENOENT;
}

int config_load_file(Config *c, const char *path, bool must_exist) {
        _cleanup_free_ char *text = NULL;
        char *line, *next;
        unsigned lineno = 0;
        int r;

        r = read_full_file(path, 1024 * 1024, &text, NULL);
        if (r == -ENOENT && !must_exist)
                return 0;
        if (r < 0)
                return log_error_errno(r, "Failed to read configuration file %s: %m", path);

        for (line = text; line; line = next) {
                _cleanup_free_ char *error = NULL;
                char *l, *eq, *key, *value;

                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                lineno++;
                l = strstrip(line);

                if (*l == 0 || *l == '#' || *l == ';')
                        continue;
                if (*l == '[') {
                        if (!streq(l, "[corrald]"))
                                log_warning("%s:%u: unknown section %s, its keys apply anyway.", path, lineno, l);
                        continue;
                }
                eq = strchr(l, '=');
                if (!eq)
                        return log_error_errno(-EINVAL, "%s:%u: expected 'key = value', got '%s'.", path, lineno, l);
                *eq = 0;
                key = strstrip(l);
                value = strstrip(eq + 1);
                /* Allow values in double quotes for paths with spaces. */
                size_t n = strlen(value);
                if (n >= 2 && value[0] == '"' && value[n - 1] == '"') {
                        value[n - 1] = 0;
                        value++;
                }

                r = config_set(c, key, value, &error);
                if (r == -ENOENT) {
                        log_warning("%s:%u: unknown key '%s', ignoring.", path, lineno, key);
                        continue;
                }
                if (r == -EINVAL)
                        return log_error_errno(r, "%s:%u: %s", path, lineno, strna(error));
                if (r < 0)
                        return log_error_errno(r, "%s:%u: %m", path, lineno);
        }
        return 0;
}

char *config_agent_socket_path(const Config *c) {
        const char *slash;

        if (c->agent_socket_path)
                return strdup(c->agent_socket_path);
        slash = strrchr(c->socket_path, '/');
        return strprintf("%.*s/" CONFIG_AGENT_SOCKET_NAME, (int) (slash ? slash - c->socket_path : 0), c->socket_path);
}

char *config_database_path(const Config *c) {
        if (c->database)
                return strdup(c->database);
        return strprintf("%s/corral.db", c->state_dir);
}
