/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The process adapter: run a command with arguments, environment, working
 * directory and optional stdin. Coding-CLI adapters build on it later.
 */
#include "adapter.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "jsonmap.h"

void adapter_launch_done(AdapterLaunch *l) {
        for (size_t i = 0; l->argv && l->argv[i]; i++)
                free(l->argv[i]);
        free(l->argv);
        for (size_t i = 0; l->env && l->env[i]; i++)
                free(l->env[i]);
        free(l->env);
        free(l->cwd);
        free(l->stdin_text);
        free(l->context_json);
        free(l->issue_id);
        *l = (AdapterLaunch){};
}

static int invalid(char **ret_error, const char *fmt, ...) _printf_(2, 3);
static int invalid(char **ret_error, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        *ret_error = strvprintf(fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* A non-negative integer member; def when absent. */
static int get_uint(const cJSON *o, const char *name, uint64_t def, uint64_t max, uint64_t *ret, char **ret_error) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

        if (!v || cJSON_IsNull(v)) {
                *ret = def;
                return 0;
        }
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble != floor(v->valuedouble) || v->valuedouble > (double) max)
                return invalid(ret_error, "adapterConfig.%s must be an integer from 0 to %" PRIu64, name, max);
        *ret = (uint64_t) v->valuedouble;
        return 0;
}

typedef struct ProcessConfig {
        const cJSON *command, *args, *cwd, *env, *stdin_text;
        uint64_t timeout_sec, grace_sec, idle_timeout_sec;
        RunLimits limits;
} ProcessConfig;

/* require_command: an agent may be created before its command is known; a launch may not. */
static int parse_config(const cJSON *c, bool require_command, ProcessConfig *ret, char **ret_error) {
        const cJSON *m, *limits;
        int r;

        if (!cJSON_IsObject(c))
                return invalid(ret_error, "adapterConfig must be a JSON object");
        *ret = (ProcessConfig){
                .command = cJSON_GetObjectItemCaseSensitive(c, "command"),
                .args = cJSON_GetObjectItemCaseSensitive(c, "args"),
                .cwd = cJSON_GetObjectItemCaseSensitive(c, "cwd"),
                .env = cJSON_GetObjectItemCaseSensitive(c, "env"),
                .stdin_text = cJSON_GetObjectItemCaseSensitive(c, "stdin"),
        };
        if ((ret->command || require_command) && (!cJSON_IsString(ret->command) || isempty(ret->command->valuestring)))
                return invalid(ret_error, "adapterConfig.command must be a non-empty string");
        if (ret->args && !cJSON_IsArray(ret->args))
                return invalid(ret_error, "adapterConfig.args must be an array of strings");
        if (cJSON_GetArraySize(ret->args) > ADAPTER_ARGS_MAX)
                return invalid(ret_error, "adapterConfig.args has more than %d entries", ADAPTER_ARGS_MAX);
        cJSON_ArrayForEach (m, ret->args)
                if (!cJSON_IsString(m))
                        return invalid(ret_error, "adapterConfig.args must be an array of strings");
        if (ret->cwd && (!cJSON_IsString(ret->cwd) || ret->cwd->valuestring[0] != '/'))
                return invalid(ret_error, "adapterConfig.cwd must be an absolute path");
        if (ret->env && !cJSON_IsObject(ret->env))
                return invalid(ret_error, "adapterConfig.env must be an object of strings");
        if (cJSON_GetArraySize(ret->env) > ADAPTER_ENV_MAX)
                return invalid(ret_error, "adapterConfig.env has more than %d entries", ADAPTER_ENV_MAX);
        cJSON_ArrayForEach (m, ret->env) {
                if (!cJSON_IsString(m))
                        return invalid(ret_error, "adapterConfig.env.%s must be a string", m->string);
                if (isempty(m->string) || strchr(m->string, '='))
                        return invalid(ret_error, "adapterConfig.env has an invalid variable name '%s'", m->string);
        }
        if (ret->stdin_text && !cJSON_IsString(ret->stdin_text))
                return invalid(ret_error, "adapterConfig.stdin must be a string");
        if ((r = get_uint(c, "timeoutSec", ADAPTER_DEFAULT_TIMEOUT_SEC, 365 * 24 * 3600, &ret->timeout_sec, ret_error)) < 0 ||
            (r = get_uint(c, "graceSec", ADAPTER_DEFAULT_GRACE_SEC, 3600, &ret->grace_sec, ret_error)) < 0 ||
            (r = get_uint(c, "idleTimeoutSec", 0, 365 * 24 * 3600, &ret->idle_timeout_sec, ret_error)) < 0)
                return r;
        limits = cJSON_GetObjectItemCaseSensitive(c, "limits");
        if (limits && !cJSON_IsObject(limits))
                return invalid(ret_error, "adapterConfig.limits must be an object");
        if (limits) {
                if ((r = get_uint(limits, "memoryMax", 0, UINT64_C(1) << 50, &ret->limits.memory_max, ret_error)) < 0 ||
                    (r = get_uint(limits, "tasksMax", 0, 4194304, &ret->limits.tasks_max, ret_error)) < 0 ||
                    (r = get_uint(limits, "cpuWeight", 0, 10000, &ret->limits.cpu_weight, ret_error)) < 0)
                        return r;
        }
        return 0;
}

int adapter_validate_config(AdapterType type, const char *config_json, char **ret_error) {
        cJSON *c;
        ProcessConfig pc;
        int r;

        if (type != ADAPTER_PROCESS)
                return 0; /* checked when the coding-CLI adapters exist */
        c = cJSON_Parse(config_json ?: "{}");
        r = parse_config(c, false, &pc, ret_error);
        cJSON_Delete(c);
        return r;
}

static int env_add(char ***env, size_t *n, const char *fmt, ...) _printf_(3, 4);
static int env_add(char ***env, size_t *n, const char *fmt, ...) {
        char *s, **t;
        va_list ap;

        va_start(ap, fmt);
        s = strvprintf(fmt, ap);
        va_end(ap);
        if (!s)
                return -ENOMEM;
        /* A later setting of the same name replaces the earlier one. */
        size_t klen = strcspn(s, "=");
        for (size_t i = 0; i < *n; i++)
                if (strncmp((*env)[i], s, klen + 1) == 0) {
                        free((*env)[i]);
                        (*env)[i] = s;
                        return 0;
                }
        t = realloc(*env, (*n + 2) * sizeof(char *));
        if (!t) {
                free(s);
                return -ENOMEM;
        }
        *env = t;
        t[(*n)++] = s;
        t[*n] = NULL;
        return 0;
}

static const char *json_str(const cJSON *o, const char *name) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

int adapter_build_launch(const Agent *agent, const Run *run, const char *socket_path, AdapterLaunch *ret, char **ret_error) {
        _cleanup_(adapter_launch_done) AdapterLaunch l = {};
        _cleanup_json_ cJSON *config = NULL, *context = NULL;
        _cleanup_free_ char *payload_text = NULL;
        const char *path = getenv("PATH"), *issue_id;
        ProcessConfig pc;
        size_t n_env = 0, n_args = 0;
        const cJSON *m, *payload;
        int r;

        if (agent->adapter_type != ADAPTER_PROCESS)
                return invalid(ret_error, "the %s adapter is not available in this build yet",
                               adapter_type_to_string(agent->adapter_type));
        config = cJSON_Parse(agent->adapter_config ?: "{}");
        r = parse_config(config, true, &pc, ret_error);
        if (r < 0)
                return r;
        context = cJSON_Parse(run->context_snapshot ?: "{}");
        if (!cJSON_IsObject(context)) {
                cJSON_Delete(context);
                context = cJSON_CreateObject();
                if (!context)
                        return -ENOMEM;
        }
        issue_id = json_str(context, "issueId");

        l.argv = calloc((size_t) cJSON_GetArraySize(pc.args) + 2, sizeof(char *));
        if (!l.argv)
                return -ENOMEM;
        l.argv[n_args++] = strdup(pc.command->valuestring);
        cJSON_ArrayForEach (m, pc.args)
                l.argv[n_args++] = strdup(m->valuestring);
        for (size_t i = 0; i < n_args; i++)
                if (!l.argv[i])
                        return -ENOMEM;

        /* A small, explicit environment: nothing of corrald's own reaches agents but PATH. */
        payload = cJSON_GetObjectItemCaseSensitive(context, "paperclipWake");
        payload_text = payload ? cJSON_PrintUnformatted(payload) : strdup("{}");
        if (!payload_text || env_add(&l.env, &n_env, "PATH=%s", path ?: "/usr/local/bin:/usr/bin:/bin") < 0 ||
            env_add(&l.env, &n_env, "HOME=%s", pc.cwd ? pc.cwd->valuestring : "/") < 0 ||
            env_add(&l.env, &n_env, "LANG=C.UTF-8") < 0 || env_add(&l.env, &n_env, "CORRAL_RUN_ID=%s", run->id) < 0 ||
            env_add(&l.env, &n_env, "CORRAL_AGENT_ID=%s", agent->id) < 0 ||
            env_add(&l.env, &n_env, "CORRAL_COMPANY_ID=%s", agent->company_id) < 0 ||
            env_add(&l.env, &n_env, "CORRAL_ISSUE_ID=%s", strempty(issue_id)) < 0 ||
            env_add(&l.env, &n_env, "CORRAL_WAKE_REASON=%s", strempty(json_str(context, "wakeReason"))) < 0 ||
            env_add(&l.env, &n_env, "CORRAL_WAKE_PAYLOAD_JSON=%s", payload_text) < 0 ||
            env_add(&l.env, &n_env, "CORRAL_SOCKET=%s", socket_path) < 0)
                return -ENOMEM;
        cJSON_ArrayForEach (m, pc.env)
                if (env_add(&l.env, &n_env, "%s=%s", m->string, m->valuestring) < 0)
                        return -ENOMEM;

        if ((pc.cwd && !(l.cwd = strdup(pc.cwd->valuestring))) ||
            (pc.stdin_text && !(l.stdin_text = strdup(pc.stdin_text->valuestring))) ||
            (issue_id && !(l.issue_id = strdup(issue_id))))
                return -ENOMEM;
        l.context_json = cJSON_Print(context);
        if (!l.context_json)
                return -ENOMEM;

        l.spec = (LaunchSpec){
                .run_id = run->id,
                .agent_id = agent->id,
                .issue_id = l.issue_id,
                .argv = l.argv,
                .env = l.env,
                .cwd = l.cwd,
                .stdin_text = l.stdin_text,
                .context_json = l.context_json,
                .timeout_sec = pc.timeout_sec,
                .grace_sec = pc.grace_sec,
                .idle_timeout_sec = pc.idle_timeout_sec,
                .limits = pc.limits,
        };
        *ret = l;
        l = (AdapterLaunch){};
        return 0;
}
