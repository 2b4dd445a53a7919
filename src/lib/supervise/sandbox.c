/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The sandbox policy of a run: identity, mounts, network and system calls, written as
 * the files the shim reads (see sandbox.h and shim-sandbox.h).
 */
#include "supervise/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/util.h"
#include "store/jsonmap.h"
#include "basic/log.h"
#include "shim/shim-sandbox.h"
#include "basic/fd-util.h"
#include "basic/strv.h"

#define SANDBOX_PATHS_MAX 64
#define SANDBOX_FILTER_FILE "seccomp.bpf"
#define SANDBOX_PASSWD_FILE "passwd"
#define SANDBOX_GROUP_FILE "group"

/* What no coding agent needs, and what an escape would: new mounts and namespaces,
 * kernel modules, kexec, BPF, perf, the kernel keyring, the clock, swap, reboot.
 * ptrace is not here: in its own pid namespace an agent can reach only its own run. */
static const char *const default_deny[] = {
        "mount",
        "umount",
        "umount2",
        "pivot_root",
        "chroot",
        "move_mount",
        "open_tree",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "mount_setattr",
        "unshare",
        "setns",
        "init_module",
        "finit_module",
        "delete_module",
        "kexec_load",
        "kexec_file_load",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "keyctl",
        "add_key",
        "request_key",
        "swapon",
        "swapoff",
        "reboot",
        "acct",
        "quotactl",
        "quotactl_fd",
        "settimeofday",
        "clock_settime",
        "clock_adjtime",
        "adjtimex",
        "iopl",
        "ioperm",
        "open_by_handle_at",
        "lookup_dcookie",
        "nfsservctl",
        "vhangup",
        "syslog",
        NULL,
};

/* The namespace flags that clone() is refused with while unshare is denied: otherwise a
 * user namespace, and with it mount and the rest, is one clone() away. */
static const uint64_t clone_namespace_flags[] = {
        CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWCGROUP,
};

#define FILTER_CACHE_MAX 16

typedef struct CachedFilter {
        char *key; /* the deny list, joined */
        void *program;
        size_t size;
} CachedFilter;

struct Sandbox {
        bool enabled;
        uint32_t uid_min, uid_max;
        char *state_dir, *operator_socket, *agent_socket, *config_dir;
        CachedFilter filters[FILTER_CACHE_MAX];
        size_t n_filters;
};

/* corrald's own paths without symbolic links (/var/run is one on Debian), which no policy
 * path may hold; as given when they do not exist. */
static char *resolved(const char *path) {
        return realpath(path, NULL) ?: strdup(path);
}

int sandbox_new(const SandboxSettings *settings, Sandbox **ret) {
        _cleanup_(sandbox_freep) Sandbox *sb = calloc(1, sizeof(Sandbox));

        if (!sb)
                return -ENOMEM;
        sb->enabled = settings->enabled;
        sb->uid_min = settings->uid_min;
        sb->uid_max = settings->uid_max;
        sb->state_dir = resolved(settings->state_dir);
        sb->operator_socket = resolved(settings->operator_socket);
        sb->agent_socket = resolved(settings->agent_socket);
        sb->config_dir = resolved(settings->config_dir);
        if (!sb->state_dir || !sb->operator_socket || !sb->agent_socket || !sb->config_dir)
                return -ENOMEM;
        *ret = TAKE_PTR(sb);
        return 0;
}

Sandbox *sandbox_free(Sandbox *sb) {
        if (!sb)
                return NULL;
        for (size_t i = 0; i < sb->n_filters; i++) {
                free(sb->filters[i].key);
                free(sb->filters[i].program);
        }
        free(sb->state_dir);
        free(sb->operator_socket);
        free(sb->agent_socket);
        free(sb->config_dir);
        free(sb);
        return NULL;
}

void sandbox_launch_done(SandboxLaunch *l) {
        free(l->policy);
        free(l->filter);
        free(l->passwd);
        free(l->group);
        free(l->warning);
        *l = (SandboxLaunch){};
}

char *sandbox_home_path(Sandbox *sb, const char *agent_id) {
        return strprintf("%s/homes/%s", sb->state_dir, agent_id);
}

/* ---- the policy in adapterConfig.sandbox ---- */

typedef struct Policy {
        const char *user; /* NULL: an allocated uid */
        bool network_none;
        IpPrefix ip_allow[RUN_IP_ALLOW_MAX]; /* network: {"allow": [...]} */
        size_t n_ip_allow;
        const cJSON *rw, *ro, *hide, *allow, *deny;
} Policy;

/* A path the policy file can carry and the shim can resolve: absolute, no "." or ".."
 * component, no tab or newline. */
static bool path_ok(const char *p) {
        if (p[0] != '/' || strlen(p) >= 4096 || strpbrk(p, "\t\n"))
                return false;
        for (const char *c = p; (c = strchr(c, '/')); c++)
                if (streq(c, "/.") || streq(c, "/..") || startswith(c, "/./") || startswith(c, "/../"))
                        return false;
        return true;
}

static int check_list(const cJSON *l, const char *name, bool paths, char **ret_error) {
        const cJSON *m;

        if (!l)
                return 0;
        if (!cJSON_IsArray(l) || cJSON_GetArraySize(l) > SANDBOX_PATHS_MAX)
                return set_error(ret_error, -EINVAL, "adapterConfig.sandbox.%s must be an array of at most %d strings", name,
                                 SANDBOX_PATHS_MAX);
        cJSON_ArrayForEach (m, l) {
                if (!cJSON_IsString(m))
                        return set_error(ret_error, -EINVAL, "adapterConfig.sandbox.%s must be an array of strings", name);
                if (paths && !path_ok(m->valuestring))
                        return set_error(ret_error, -EINVAL,
                                         "adapterConfig.sandbox.%s: '%.200s' is not an absolute path without '.', '..', tabs "
                                         "or newlines",
                                         name, m->valuestring);
                if (!paths && seccomp_syscall_resolve_name(m->valuestring) == __NR_SCMP_ERROR)
                        return set_error(ret_error, -EINVAL,
                                         "adapterConfig.sandbox.%s: '%.64s' is not a system call of this machine", name,
                                         m->valuestring);
        }
        return 0;
}

static bool user_name_ok(const char *s) {
        if (isempty(s) || strlen(s) > 64 || s[0] == '-')
                return false;
        for (const char *c = s; *c; c++)
                if (!(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z') && !(*c >= '0' && *c <= '9') && !strchr("_-.", *c))
                        return false;
        return true;
}

/* "10.0.0.0/8", "192.168.1.7", "::1/128": an address and an optional prefix length. */
static int parse_prefix(const char *s, IpPrefix *ret) {
        _cleanup_free_ char *address = strndup(s, strcspn(s, "/"));
        const char *slash = strchr(s, '/');
        IpPrefix p = {};
        uint64_t len;

        if (!address)
                return -ENOMEM;
        if (inet_pton(AF_INET, address, p.address) == 1)
                p.family = AF_INET;
        else if (inet_pton(AF_INET6, address, p.address) == 1)
                p.family = AF_INET6;
        else
                return -EINVAL;
        len = p.family == AF_INET ? 32 : 128;
        if (slash && (safe_atou64(slash + 1, &len) < 0 || len > (p.family == AF_INET ? 32u : 128u)))
                return -EINVAL;
        p.prefix_len = (uint8_t) len;
        *ret = p;
        return 0;
}

/* network: "host", "none", or {"allow": [PREFIX, ...]} (host networking, other addresses
 * denied by the scope's IPAddressAllow=). */
static int parse_network(const cJSON *network, Policy *ret, char **ret_error) {
        const cJSON *allow, *m;
        int r;

        if (!network)
                return 0;
        if (cJSON_IsString(network) && (streq(network->valuestring, "host") || streq(network->valuestring, "none"))) {
                ret->network_none = streq(network->valuestring, "none");
                return 0;
        }
        allow = cJSON_GetObjectItemCaseSensitive(network, "allow");
        if (!cJSON_IsObject(network) || cJSON_GetArraySize(network) != 1 || !cJSON_IsArray(allow) ||
            cJSON_GetArraySize(allow) < 1 || cJSON_GetArraySize(allow) > RUN_IP_ALLOW_MAX)
                return set_error(ret_error, -EINVAL,
                                 "adapterConfig.sandbox.network must be \"host\", \"none\" or {\"allow\": [ADDRESS[/LENGTH], "
                                 "...]} with 1 to %d addresses",
                                 RUN_IP_ALLOW_MAX);
        cJSON_ArrayForEach (m, allow) {
                if (!cJSON_IsString(m) || (r = parse_prefix(m->valuestring, &ret->ip_allow[ret->n_ip_allow])) == -EINVAL)
                        return set_error(ret_error, -EINVAL,
                                         "adapterConfig.sandbox.network.allow: '%.64s' is not an IPv4 or IPv6 address with an "
                                         "optional /LENGTH",
                                         cJSON_IsString(m) ? m->valuestring : "(not a string)");
                if (r < 0)
                        return r;
                ret->n_ip_allow++;
        }
        return 0;
}

static int parse_policy(const cJSON *p, Policy *ret, char **ret_error) {
        static const char *const known[] = {
                "user", "network", "readWritePaths", "readOnlyPaths", "inaccessiblePaths", "syscallAllow", "syscallDeny", NULL
        };
        const cJSON *user, *network, *m;
        int r;

        *ret = (Policy){};
        if (!p || cJSON_IsNull(p))
                return 0;
        if (!cJSON_IsObject(p))
                return set_error(ret_error, -EINVAL, "adapterConfig.sandbox must be an object");
        cJSON_ArrayForEach (m, p)
                if (!strv_contains(known, m->string))
                        return set_error(ret_error, -EINVAL, "adapterConfig.sandbox has an unknown key '%.64s'", m->string);
        user = cJSON_GetObjectItemCaseSensitive(p, "user");
        if (user && (!cJSON_IsString(user) || !user_name_ok(user->valuestring)))
                return set_error(ret_error, -EINVAL, "adapterConfig.sandbox.user must be a user name (or \"root\")");
        ret->user = user ? user->valuestring : NULL;
        network = cJSON_GetObjectItemCaseSensitive(p, "network");
        r = parse_network(network, ret, ret_error);
        if (r < 0)
                return r;
        ret->rw = cJSON_GetObjectItemCaseSensitive(p, "readWritePaths");
        ret->ro = cJSON_GetObjectItemCaseSensitive(p, "readOnlyPaths");
        ret->hide = cJSON_GetObjectItemCaseSensitive(p, "inaccessiblePaths");
        ret->allow = cJSON_GetObjectItemCaseSensitive(p, "syscallAllow");
        ret->deny = cJSON_GetObjectItemCaseSensitive(p, "syscallDeny");
        if ((r = check_list(ret->rw, "readWritePaths", true, ret_error)) < 0 ||
            (r = check_list(ret->ro, "readOnlyPaths", true, ret_error)) < 0 ||
            (r = check_list(ret->hide, "inaccessiblePaths", true, ret_error)) < 0 ||
            (r = check_list(ret->allow, "syscallAllow", false, ret_error)) < 0 ||
            (r = check_list(ret->deny, "syscallDeny", false, ret_error)) < 0)
                return r;
        return 0;
}

int sandbox_config_user(const char *adapter_config_json, char **ret_user) {
        _cleanup_json_ cJSON *c = cJSON_Parse(adapter_config_json ?: "{}");
        const char *user = json_string_member(cJSON_GetObjectItemCaseSensitive(c, "sandbox"), "user");

        *ret_user = NULL;
        if (user && !(*ret_user = strdup(user)))
                return -ENOMEM;
        return 0;
}

int sandbox_validate_policy(const cJSON *policy, char **ret_error) {
        Policy p;
        return parse_policy(policy, &p, ret_error);
}

/* ---- the seccomp program ---- */

static bool json_list_has(const cJSON *l, const char *s) {
        const cJSON *m;

        cJSON_ArrayForEach (m, l)
                if (cJSON_IsString(m) && streq(m->valuestring, s))
                        return true;
        return false;
}

/* The default list less what the policy allows, plus what it denies. */
static int deny_list(const Policy *p, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        const cJSON *m;
        int r;

        for (size_t i = 0; default_deny[i]; i++)
                if (!json_list_has(p->allow, default_deny[i]) && (r = strv_push(&l, default_deny[i])) < 0)
                        return r;
        cJSON_ArrayForEach (m, p->deny)
                if (!strv_contains((const char *const *) l, m->valuestring) && (r = strv_push(&l, m->valuestring)) < 0)
                        return r;
        *ret = TAKE_PTR(l);
        return 0;
}

static int compile_filter(char *const *deny, void **ret, size_t *ret_size) {
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *program = NULL;
        size_t size = 0;
        int r = 0;

        if (!ctx)
                return -ENOMEM;
        /* The shim sets no_new_privs itself, after it changed the uid. */
        if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) < 0)
                r = -EINVAL;
        for (size_t i = 0; r >= 0 && deny[i]; i++) {
                int nr = seccomp_syscall_resolve_name(deny[i]);
                if (nr == __NR_SCMP_ERROR)
                        continue; /* not a system call of this architecture */
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
        }
        if (r >= 0 && strv_contains((const char *const *) deny, "unshare")) {
                for (size_t i = 0; r >= 0 && i < ELEMENTSOF(clone_namespace_flags); i++)
                        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                                             SCMP_A0(SCMP_CMP_MASKED_EQ, clone_namespace_flags[i], clone_namespace_flags[i]));
                /* clone3's flags are behind a pointer, which a filter cannot read: ENOSYS
                 * makes the C library fall back to clone(), which it can. */
                if (r >= 0)
                        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
        }
        if (r >= 0) {
                fd = memfd_create("corral-seccomp", MFD_CLOEXEC);
                r = fd < 0 ? -errno : seccomp_export_bpf(ctx, fd);
        }
        seccomp_release(ctx);
        if (r < 0)
                return r;
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        program = malloc(SANDBOX_FILTER_MAX * 8);
        if (!program)
                return -ENOMEM;
        for (;;) {
                ssize_t k = read(fd, program + size, SANDBOX_FILTER_MAX * 8 - size);
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                size += (size_t) k;
                if (size == SANDBOX_FILTER_MAX * 8)
                        return -E2BIG;
        }
        *ret = TAKE_PTR(program);
        *ret_size = size;
        return 0;
}

/* The program for a deny list, compiled once per list (most agents share the default). */
static int filter_for(Sandbox *sb, char *const *deny, void **ret, size_t *ret_size) {
        _cleanup_free_ char *key = NULL;
        size_t len = 0;
        int r;

        for (size_t i = 0; deny[i]; i++)
                len += strlen(deny[i]) + 1;
        key = calloc(1, len + 1);
        if (!key)
                return -ENOMEM;
        for (size_t i = 0; deny[i]; i++)
                strcat(strcat(key, deny[i]), " ");

        for (size_t i = 0; i < sb->n_filters; i++)
                if (streq(sb->filters[i].key, key)) {
                        *ret = memdup(sb->filters[i].program, sb->filters[i].size);
                        *ret_size = sb->filters[i].size;
                        return *ret ? 0 : -ENOMEM;
                }
        void *program = NULL;
        size_t size = 0;
        r = compile_filter(deny, &program, &size);
        if (r < 0)
                return r;
        if (sb->n_filters < FILTER_CACHE_MAX) {
                void *copy = memdup(program, size);
                if (copy) {
                        sb->filters[sb->n_filters++] = (CachedFilter){ .key = TAKE_PTR(key), .program = copy, .size = size };
                }
        }
        *ret = program;
        *ret_size = size;
        return 0;
}

/* ---- identity and home ---- */

static bool uid_in_use(uint32_t uid) {
        return getpwuid(uid) || getgrgid(uid);
}

typedef struct Identity {
        uid_t uid;
        gid_t gid;
        bool allocated; /* corral's own uid, unknown to the host's passwd */
} Identity;

static int identity_of(Sandbox *sb, Store *store, const Agent *agent, const Policy *p, Identity *ret, char **ret_error) {
        uint32_t uid;
        int r;

        if (p->user) {
                struct passwd *pw;
                errno = 0;
                pw = getpwnam(p->user);
                if (!pw)
                        return set_error(ret_error, -EINVAL, "adapterConfig.sandbox.user '%s' %s", p->user,
                                         errno != 0 ? strerror(errno) : "does not exist on this host");
                *ret = (Identity){ .uid = pw->pw_uid, .gid = pw->pw_gid };
                return 0;
        }
        r = store_agent_sandbox_uid(store, agent->id, sb->uid_min, sb->uid_max, uid_in_use, &uid);
        if (r == -EUSERS)
                return set_error(ret_error, -EINVAL, "every uid of sandbox-uids (%u-%u) is taken; widen the range", sb->uid_min,
                                 sb->uid_max);
        if (r < 0)
                return r;
        *ret = (Identity){ .uid = uid, .gid = uid, .allocated = true };
        return 0;
}

/* The home directory, made if missing, owned by the agent. The agent may write in it,
 * never in homes/ itself, so opening it without following links reaches the real one. */
static int make_home(const char *home, const Identity *id, char **ret_error) {
        _cleanup_free_ char *parent = strdup(home);
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r;

        if (!parent)
                return -ENOMEM;
        *strrchr(parent, '/') = '\0';
        r = mkdir_parents_and_self(parent, 0755);
        if (r >= 0 && mkdir(home, 0700) < 0 && errno != EEXIST)
                r = -errno;
        if (r >= 0 && (fd = open(home, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                r = -errno;
        if (r >= 0 && fstat(fd, &st) < 0)
                r = -errno;
        if (r >= 0 && id && (st.st_uid != id->uid || st.st_gid != id->gid) && fchown(fd, id->uid, id->gid) < 0)
                r = -errno;
        if (r < 0)
                return set_error(ret_error, -EINVAL, "cannot make the agent's home %s: %s", home, strerror(-r));
        /* The default working directory of a coding CLI, owned by the agent too. */
        _cleanup_close_ int wfd = -EBADF;
        if (mkdirat(fd, SANDBOX_WORKSPACE_DIR, 0700) < 0 && errno != EEXIST)
                r = -errno;
        if (r >= 0 && (wfd = openat(fd, SANDBOX_WORKSPACE_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                r = -errno;
        if (r >= 0 && fstat(wfd, &st) < 0)
                r = -errno;
        if (r >= 0 && id && (st.st_uid != id->uid || st.st_gid != id->gid) && fchown(wfd, id->uid, id->gid) < 0)
                r = -errno;
        if (r < 0)
                return set_error(ret_error, -EINVAL, "cannot make the agent's workspace in %s: %s", home, strerror(-r));
        return 0;
}

/* The host's passwd or group file with the agent's line added, so that its programs can
 * tell who they are (node's os.userInfo(), git, ssh refuse otherwise). */
static int with_agent_line(const char *path, const char *line, char **ret) {
        _cleanup_free_ char *host = NULL;
        int r;

        r = read_full_file(path, 4 * 1024 * 1024, &host, NULL);
        if (r < 0 && r != -ENOENT)
                return r;
        size_t n = host ? strlen(host) : 0;
        *ret = strprintf("%s%s%s", strempty(host), n > 0 && host[n - 1] != '\n' ? "\n" : "", line);
        return *ret ? 0 : -ENOMEM;
}

/* ---- the policy file ---- */

typedef struct Text {
        char *s;
        int r;
} Text;

static void text_add(Text *t, const char *key, const char *value, const char *value2) {
        char *n;

        if (t->r < 0)
                return;
        n = value2 ? strprintf("%s%s\t%s\t%s\n", strempty(t->s), key, value, value2)
                   : strprintf("%s%s\t%s\n", strempty(t->s), key, value);
        if (!n) {
                t->r = -ENOMEM;
                return;
        }
        free(t->s);
        t->s = n;
}

static bool is_ancestor_or_same(const char *a, const char *b) {
        size_t n = strlen(a);
        return streq(a, "/") || (strncmp(a, b, n) == 0 && (b[n] == '\0' || b[n] == '/'));
}

/* Another agent's working directory is hidden, unless hiding it would hide what this one
 * must see, or it is a top-level directory (/srv, /home) that is no one's own. */
static bool may_hide(const char *path, const char *const *visible) {
        if (!path_ok(path) || !strchr(path + 1, '/'))
                return false;
        for (size_t i = 0; visible[i]; i++)
                if (is_ancestor_or_same(path, visible[i]))
                        return false;
        return true;
}

/* Long because the policy file is written in one pass, directive by directive, in the order
 * the shim applies them (identity, home, files, network, syscalls): split, the order would
 * be spread over several functions that each need the open file. */
int sandbox_prepare(Sandbox *sb, Store *store, const Agent *agent, const char *run_dir, const char *cwd,
                    const char *const *read_only, SandboxLaunch *ret, char **ret_error) {
        _cleanup_(sandbox_launch_done) SandboxLaunch l = {};
        _cleanup_json_ cJSON *config = cJSON_Parse(agent->adapter_config ?: "{}");
        _cleanup_strv_free_ char **deny = NULL, **others = NULL;
        _cleanup_free_ char *home = sandbox_home_path(sb, agent->id), *filter_path = NULL, *passwd_path = NULL,
                            *group_path = NULL, *line = NULL;
        char uid[16], gid[16];
        const cJSON *m;
        Identity id = {};
        Policy p;
        int r;

        if (!home)
                return -ENOMEM;
        if (!sb->enabled) {
                /* The operator's choice for every agent, said at startup and here again. */
                if (geteuid() == 0)
                        log_warning("Agent %s runs unconfined, as root (sandbox=no).", agent->id);
                r = make_home(home, NULL, ret_error);
                if (r < 0)
                        return r;
                *ret = l;
                l = (SandboxLaunch){};
                return 0;
        }

        r = parse_policy(cJSON_GetObjectItemCaseSensitive(config, "sandbox"), &p, ret_error);
        if (r < 0)
                return r;
        r = identity_of(sb, store, agent, &p, &id, ret_error);
        if (r < 0)
                return r;
        if (id.uid == 0)
                l.warning = strdup("the agent runs as root in its sandbox (adapterConfig.sandbox.user)");
        r = make_home(home, &id, ret_error);
        if (r < 0)
                return r;

        filter_path = strprintf("%s/%s", run_dir, SANDBOX_FILTER_FILE);
        passwd_path = strprintf("%s/%s", run_dir, SANDBOX_PASSWD_FILE);
        group_path = strprintf("%s/%s", run_dir, SANDBOX_GROUP_FILE);
        if (!filter_path || !passwd_path || !group_path)
                return -ENOMEM;
        if ((r = deny_list(&p, &deny)) < 0 || (r = filter_for(sb, deny, &l.filter, &l.filter_size)) < 0)
                return log_error_errno(r, "Failed to compile the seccomp filter of agent %s: %m", agent->id);

        snprintf(uid, sizeof(uid), "%u", (unsigned) id.uid);
        snprintf(gid, sizeof(gid), "%u", (unsigned) id.gid);
        Text t = {};
        text_add(&t, "uid", uid, NULL);
        text_add(&t, "gid", gid, NULL);
        text_add(&t, "network", p.network_none ? "none" : "host", NULL);
        text_add(&t, "chdir", cwd ?: home, NULL);
        text_add(&t, "seccomp", filter_path, NULL);
        text_add(&t, "tmpfs", "/tmp", NULL);
        text_add(&t, "tmpfs", "/var/tmp", NULL);
        text_add(&t, "tmpfs", "/dev/shm", NULL);
        text_add(&t, "hide", sb->state_dir, NULL);
        text_add(&t, "hide", sb->config_dir, NULL);
        text_add(&t, "hide", sb->operator_socket, NULL);

        /* What this agent sees: another agent's workspace is hidden only where that hides
         * none of it. */
        const char *visible[2 * SANDBOX_PATHS_MAX + 8] = { home, cwd ?: home, sb->agent_socket };
        size_t n_visible = 3;
        cJSON_ArrayForEach (m, p.rw)
                visible[n_visible++] = m->valuestring;
        cJSON_ArrayForEach (m, p.ro)
                visible[n_visible++] = m->valuestring;
        for (size_t i = 0; read_only && read_only[i] && n_visible < ELEMENTSOF(visible) - 1; i++)
                visible[n_visible++] = read_only[i];
        visible[n_visible] = NULL;
        r = store_agent_workspaces_except(store, agent->id, &others);
        if (r < 0)
                return log_error_errno(r, "Failed to read the other agents' workspaces: %m");
        for (size_t i = 0; others && others[i]; i++)
                if (may_hide(others[i], visible))
                        text_add(&t, "hide", others[i], NULL);
        cJSON_ArrayForEach (m, p.hide)
                text_add(&t, "hide", m->valuestring, NULL);

        text_add(&t, "rw", home, NULL);
        if (cwd && !streq(cwd, home))
                text_add(&t, "rw", cwd, NULL);
        cJSON_ArrayForEach (m, p.rw)
                text_add(&t, "rw", m->valuestring, NULL);
        text_add(&t, "ro", sb->agent_socket, NULL);
        cJSON_ArrayForEach (m, p.ro)
                text_add(&t, "ro", m->valuestring, NULL);
        for (size_t i = 0; read_only && read_only[i]; i++)
                text_add(&t, "ro", read_only[i], NULL);
        if (id.allocated) {
                text_add(&t, "bind-ro", passwd_path, "/etc/passwd");
                text_add(&t, "bind-ro", group_path, "/etc/group");
        }
        if (t.r < 0) {
                free(t.s);
                return t.r;
        }
        l.policy = t.s;

        if (id.allocated) {
                line = strprintf("corral-agent:x:%u:%u:corral agent %s:%s:/bin/sh\n", (unsigned) id.uid, (unsigned) id.gid,
                                 agent->id, home);
                if (!line || (r = with_agent_line("/etc/passwd", line, &l.passwd)) < 0)
                        return line ? r : -ENOMEM;
                free(line);
                line = strprintf("corral-agent:x:%u:\n", (unsigned) id.gid);
                if (!line || (r = with_agent_line("/etc/group", line, &l.group)) < 0)
                        return line ? r : -ENOMEM;
        }

        l.confined = true;
        l.uid = (uint32_t) id.uid;
        l.gid = (uint32_t) id.gid;
        memcpy(l.ip_allow, p.ip_allow, sizeof(l.ip_allow));
        l.n_ip_allow = p.n_ip_allow;
        l.files[l.n_files++] = (RunFile){ SHIM_SANDBOX_FILE, l.policy, strlen(l.policy), 0600 };
        l.files[l.n_files++] = (RunFile){ SANDBOX_FILTER_FILE, l.filter, l.filter_size, 0600 };
        if (id.allocated) {
                /* Shown at /etc/passwd and /etc/group in the sandbox, readable as those are. */
                l.files[l.n_files++] = (RunFile){ SANDBOX_PASSWD_FILE, l.passwd, strlen(l.passwd), 0644 };
                l.files[l.n_files++] = (RunFile){ SANDBOX_GROUP_FILE, l.group, strlen(l.group), 0644 };
        }
        *ret = l;
        l = (SandboxLaunch){};
        return 0;
}
