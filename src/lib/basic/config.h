/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * corrald's configuration: defaults, then /etc/corral/corrald.conf, then the
 * command line. The file holds "key = value" lines whose keys are the long
 * option names (state-dir, socket, ...), so every setting is also a flag.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "basic/macro.h"

#define CONFIG_DEFAULT_PATH CORRAL_SYSCONFDIR "/corral/corrald.conf"
/* The agent socket, unless set: this name beside the operator socket. */
#define CONFIG_AGENT_SOCKET_NAME "agent.sock"
/* The agents' uids, unless set: 65536 of the range systemd leaves unused (its
 * UIDS-GIDS.md: 1879048192-2147352575), above every container and subuid range. */
#define CONFIG_SANDBOX_UID_MIN UINT32_C(1879048192)
#define CONFIG_SANDBOX_UID_MAX UINT32_C(1879113727)

typedef enum PlacementKind {
        PLACEMENT_AUTO,
        PLACEMENT_SCOPE,
        PLACEMENT_CGROUP,
        PLACEMENT_NONE,
        _PLACEMENT_MAX,
        _PLACEMENT_INVALID = -EINVAL,
} PlacementKind;

const char *placement_kind_to_string(PlacementKind p);
PlacementKind placement_kind_from_string(const char *s);

/* The most a model may cost, in USD per million tokens: more is a typo. */
#define CONFIG_PRICE_MAX 100000.0
#define CONFIG_PRICES_MAX 1024
#define CONFIG_MODEL_NAME_MAX 200
#define CONFIG_HOST_ID_MAX 128

/* What a model costs, in USD per million tokens (as the vendors publish it). */
typedef struct Price {
        char *model; /* NULL for the default price */
        double input, cached_input, output;
} Price;

typedef struct Config {
        char *state_dir; /* database and per-run files */
        char *socket_path; /* API socket (when not socket-activated) */
        char *database; /* NULL: <state_dir>/corral.db */
        PlacementKind placement;
        char *cgroup_root; /* cgroup backend: the subtree corrald owns; NULL: <own cgroup>/corral */
        int log_level;
        unsigned sweep_interval_sec; /* how often running runs nobody tracks are recovered */
        unsigned process_loss_retries; /* automatic retries of a run whose process was lost */
        unsigned max_continuation_retries; /* successful continuations without progress before escalation */
        char *boot_id_file; /* NULL: the kernel's; a file here lets tests simulate a reboot */
        bool shim_spawner; /* fork shims from the shim spawner rather than execute each anew */
        char *agent_socket_path; /* the socket agents reach; NULL: agent.sock beside socket_path */
        bool sandbox; /* every agent in its sandbox (needs root); no: agents run as corrald does */
        uint32_t sandbox_uid_min, sandbox_uid_max; /* the uids given to agents */
        /* Quotas; 0 turns one off (corrald(8), LIMITS). */
        unsigned quota_wakes_per_minute; /* wakes an agent may ask for, of itself or others */
        unsigned quota_comments_per_minute; /* comments an agent may post */
        unsigned quota_comment_kib; /* the longest comment body anyone may post, in KiB (1024 at most) */
        unsigned quota_log_mib; /* output of one run past which it is stopped (log_limit) */
        /* A run's tasksMax and memoryMax when its adapterConfig.limits sets none, applied
         * where the controllers are (silently skipped where not); 0: none. */
        unsigned default_tasks_max;
        unsigned default_memory_max_mib;
        /* Budgets: prices of the models, by name, and the price of any other. */
        Price *prices;
        size_t n_prices;
        Price price_default;
        char *month_file; /* NULL: the clock's UTC month; a file here lets tests turn the month */
        unsigned workspace_remove_delay_sec; /* a closed issue's workspace is removed this long after */
        char *metrics_listen; /* "ADDRESS:PORT" of a TCP listener for GET /metrics alone; NULL: none */
        /* Hosts sharing a database (corrald(8), HOSTS). */
        char *host_id; /* NULL: the machine's id (/etc/machine-id) */
        unsigned host_lease_sec; /* how long this host's lease lasts unless renewed */
        unsigned max_runs; /* runs this host runs at once; 0: no cap */
} Config;

/* The keys config_set() knows, in the order the man page lists them. */
extern const char *const config_keys[];

int config_init(Config *c);
void config_done(Config *c);

/* Set one key. -ENOENT: unknown key; -EINVAL: bad value, with a message in *ret_error. */
int config_set(Config *c, const char *key, const char *value, char **ret_error);

/* Read a config file. A missing file is fine unless must_exist. Errors are logged with
 * the file name and line; unknown keys are warned about and ignored. */
int config_load_file(Config *c, const char *path, bool must_exist);

/* metrics-listen as a socket address: -EINVAL when it is not "IPV4:PORT" or "[IPV6]:PORT". */
int config_metrics_address(const char *listen, struct sockaddr_storage *ret, socklen_t *ret_len);

/* The price of model: its own, else the default (*ret_default set). */
const Price *config_price(const Config *c, const char *model, bool *ret_default);

/* The agent socket's path, derived from socket_path unless set. Returns a new string. */
char *config_agent_socket_path(const Config *c);

/* The database path, derived from state_dir unless set. Returns a new string. */
char *config_database_path(const Config *c);

/* host-id's form: 1 to CONFIG_HOST_ID_MAX letters, digits and ._:- */
bool config_host_id_is_valid(const char *value);
