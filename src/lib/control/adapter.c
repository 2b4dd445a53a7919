/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What all adapters share: adapterConfig (its common keys, limits, environment and
 * secrets), the run's environment and context, and the launch. What differs per adapter is
 * behind its AdapterOps (adapter-process.c, adapter-claude.c, adapter-codex.c).
 */
#include "control/adapter.h"

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
#include "store/jsonmap.h"
#include "supervise/sandbox.h"
#include "basic/strv.h"
#include "control/adapter-internal.h"
#include "control/workspace.h"

void adapter_launch_done(AdapterLaunch *l) {
        strv_free(l->argv);
        strv_free(l->env);
        free(l->cwd);
        free(l->stdin_text);
        free(l->context_json);
        free(l->issue_id);
        free(l->again);
        *l = (AdapterLaunch){};
}

/* A non-negative integer member; def when absent. */
int adapter_get_uint(const cJSON *o, const char *name, uint64_t def, uint64_t max, uint64_t *ret, char **ret_error) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

        if (!v || cJSON_IsNull(v)) {
                *ret = def;
                return 0;
        }
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble != floor(v->valuedouble) || v->valuedouble > (double) max)
                return set_error(ret_error, -EINVAL, "adapterConfig.%s must be an integer from 0 to %" PRIu64, name, max);
        *ret = (uint64_t) v->valuedouble;
        return 0;
}

int adapter_check_string_array(const cJSON *a, const char *name, char **ret_error) {
        const cJSON *m;

        if (!a)
                return 0;
        if (!cJSON_IsArray(a))
                return set_error(ret_error, -EINVAL, "adapterConfig.%s must be an array of strings", name);
        if (cJSON_GetArraySize(a) > ADAPTER_ARGS_MAX)
                return set_error(ret_error, -EINVAL, "adapterConfig.%s has more than %d entries", name, ADAPTER_ARGS_MAX);
        cJSON_ArrayForEach (m, a)
                if (!cJSON_IsString(m))
                        return set_error(ret_error, -EINVAL, "adapterConfig.%s must be an array of strings", name);
        return 0;
}

int adapter_get_bool(const cJSON *o, const char *name, bool *ret, char **ret_error) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

        *ret = false;
        if (!v || cJSON_IsNull(v))
                return 0;
        if (!cJSON_IsBool(v))
                return set_error(ret_error, -EINVAL, "adapterConfig.%s must be true or false", name);
        *ret = cJSON_IsTrue(v);
        return 0;
}

/* The coding CLIs' keys; the process adapter has its command line and stdin instead. */
static int parse_cli_config(const cJSON *c, AdapterConfig *ret, char **ret_error) {
        const AdapterOps *ops = adapter_ops(ret->type);
        int r;

        if (ret->args)
                return set_error(ret_error, -EINVAL, "adapterConfig.args is for the process adapter; %s takes extraArgs",
                                 adapter_type_to_string(ret->type));
        if (ret->stdin_text)
                return set_error(ret_error, -EINVAL,
                                 "adapterConfig.stdin is for the process adapter; %s sends its prompt (promptTemplate)",
                                 adapter_type_to_string(ret->type));
        ret->model = cJSON_GetObjectItemCaseSensitive(c, "model");
        ret->extra_args = cJSON_GetObjectItemCaseSensitive(c, "extraArgs");
        ret->prompt_template = cJSON_GetObjectItemCaseSensitive(c, "promptTemplate");
        if (ret->model && (!cJSON_IsString(ret->model) || isempty(ret->model->valuestring)))
                return set_error(ret_error, -EINVAL, "adapterConfig.model must be a non-empty string");
        if (ret->prompt_template && !cJSON_IsString(ret->prompt_template))
                return set_error(ret_error, -EINVAL, "adapterConfig.promptTemplate must be a string");
        if ((r = adapter_check_string_array(ret->extra_args, "extraArgs", ret_error)) < 0 ||
            (r = adapter_get_bool(c, ops->bypass_key, &ret->skip_permissions, ret_error)) < 0)
                return r;
        /* Caps of a run's spend; the CLI reports what it spent while it runs. */
        if ((r = adapter_get_uint(c, "maxCostCentsPerRun", 0, UINT64_C(100000000), &ret->budget.max_cost_cents_per_run,
                                  ret_error)) < 0 ||
            (r = adapter_get_uint(c, "maxTokensPerRun", 0, UINT64_C(1) << 53, &ret->budget.max_tokens_per_run, ret_error)) < 0)
                return r;
        const cJSON *billing = cJSON_GetObjectItemCaseSensitive(c, "billingType");
        if (billing &&
            !(cJSON_IsString(billing) &&
              (streq(billing->valuestring, "api") || streq(billing->valuestring, "subscription_included"))))
                return set_error(ret_error, -EINVAL, "adapterConfig.billingType must be \"api\" or \"subscription_included\"");
        ret->budget.subscription = billing && streq(billing->valuestring, "subscription_included");
        return ops->parse_config ? ops->parse_config(c, ret, ret_error) : 0;
}

/* require_command: a process agent may be created before its command is known; a launch
 * may not. The coding CLIs default to their usual command names. */
static int parse_config(AdapterType type, const cJSON *c, bool require_command, AdapterConfig *ret, char **ret_error) {
        const cJSON *m, *limits;
        bool cli = adapter_ops(type)->cli;
        int r;

        if (!cJSON_IsObject(c))
                return set_error(ret_error, -EINVAL, "adapterConfig must be a JSON object");
        *ret = (AdapterConfig){
                .type = type,
                .command = cJSON_GetObjectItemCaseSensitive(c, "command"),
                .args = cJSON_GetObjectItemCaseSensitive(c, "args"),
                .cwd = cJSON_GetObjectItemCaseSensitive(c, "cwd"),
                .env = cJSON_GetObjectItemCaseSensitive(c, "env"),
                .stdin_text = cJSON_GetObjectItemCaseSensitive(c, "stdin"),
        };
        if ((ret->command || (require_command && !cli)) && (!cJSON_IsString(ret->command) || isempty(ret->command->valuestring)))
                return set_error(ret_error, -EINVAL, "adapterConfig.command must be a non-empty string");
        if ((r = adapter_check_string_array(ret->args, "args", ret_error)) < 0)
                return r;
        if (ret->cwd && (!cJSON_IsString(ret->cwd) || ret->cwd->valuestring[0] != '/'))
                return set_error(ret_error, -EINVAL, "adapterConfig.cwd must be an absolute path");
        if (ret->env && !cJSON_IsObject(ret->env))
                return set_error(ret_error, -EINVAL, "adapterConfig.env must be an object of strings");
        if (cJSON_GetArraySize(ret->env) > ADAPTER_ENV_MAX)
                return set_error(ret_error, -EINVAL, "adapterConfig.env has more than %d entries", ADAPTER_ENV_MAX);
        cJSON_ArrayForEach (m, ret->env) {
                const cJSON *secret = cJSON_GetObjectItemCaseSensitive(m, "secret");
                /* A secret: {"secret": "VALUE"} as it is given, {"secret": true} as it is stored. */
                bool is_secret =
                        cJSON_IsObject(m) && cJSON_GetArraySize(m) == 1 && (cJSON_IsString(secret) || cJSON_IsTrue(secret));
                if (!cJSON_IsString(m) && !is_secret)
                        return set_error(ret_error, -EINVAL, "adapterConfig.env.%s must be a string or {\"secret\": \"VALUE\"}",
                                         m->string);
                if (isempty(m->string) || strchr(m->string, '='))
                        return set_error(ret_error, -EINVAL, "adapterConfig.env has an invalid variable name '%s'", m->string);
        }
        if (ret->stdin_text && !cJSON_IsString(ret->stdin_text))
                return set_error(ret_error, -EINVAL, "adapterConfig.stdin must be a string");
        static const char *const cli_only[] = { "maxCostCentsPerRun", "maxTokensPerRun", "billingType", NULL };
        for (size_t i = 0; !cli && cli_only[i]; i++)
                if (cJSON_GetObjectItemCaseSensitive(c, cli_only[i]))
                        return set_error(ret_error, -EINVAL,
                                         "adapterConfig.%s is for the coding CLIs, which report what they spend; "
                                         "a process agent reports nothing",
                                         cli_only[i]);
        if (cli && (r = parse_cli_config(c, ret, ret_error)) < 0)
                return r;
        /* design §3 difference 6: the coding CLIs also get an idle timeout by default. */
        if ((r = adapter_get_uint(c, "timeoutSec", ADAPTER_DEFAULT_TIMEOUT_SEC, 365 * 24 * 3600, &ret->timeout_sec, ret_error)) <
                    0 ||
            (r = adapter_get_uint(c, "graceSec", adapter_ops(type)->default_grace_sec, 3600, &ret->grace_sec, ret_error)) < 0 ||
            (r = adapter_get_uint(c, "idleTimeoutSec", adapter_ops(type)->default_idle_timeout_sec, 365 * 24 * 3600,
                                  &ret->idle_timeout_sec, ret_error)) < 0)
                return r;
        r = sandbox_validate_policy(cJSON_GetObjectItemCaseSensitive(c, "sandbox"), ret_error);
        if (r < 0)
                return r;
        r = workspace_policy_check(cJSON_GetObjectItemCaseSensitive(c, "workspace"), "adapterConfig.workspace", ret_error);
        if (r < 0)
                return r;
        limits = cJSON_GetObjectItemCaseSensitive(c, "limits");
        if (limits && !cJSON_IsObject(limits))
                return set_error(ret_error, -EINVAL, "adapterConfig.limits must be an object");
        if (limits) {
                if ((r = adapter_get_uint(limits, "memoryMax", 0, UINT64_C(1) << 50, &ret->limits.memory_max, ret_error)) < 0 ||
                    (r = adapter_get_uint(limits, "tasksMax", 0, 4194304, &ret->limits.tasks_max, ret_error)) < 0 ||
                    (r = adapter_get_uint(limits, "cpuWeight", 0, 10000, &ret->limits.cpu_weight, ret_error)) < 0)
                        return r;
        }
        return 0;
}

int adapter_budget(const Agent *agent, AdapterBudget *ret) {
        _cleanup_json_ cJSON *c = cJSON_Parse(agent->adapter_config ?: "{}");
        _cleanup_free_ char *error = NULL;
        AdapterConfig ac;
        int r;

        r = parse_config(agent->adapter_type, c, false, &ac, &error);
        if (r < 0)
                return r;
        *ret = ac.budget;
        return 0;
}

int adapter_validate_config(AdapterType type, const char *config_json, char **ret_error) {
        _cleanup_json_ cJSON *c = cJSON_Parse(config_json ?: "{}");
        AdapterConfig ac;

        return parse_config(type, c, false, &ac, ret_error);
}

static int env_add(char ***env, const char *fmt, ...) _printf_(2, 3);
static int env_add(char ***env, const char *fmt, ...) {
        _cleanup_free_ char *s = NULL;
        va_list ap;

        va_start(ap, fmt);
        s = strvprintf(fmt, ap);
        va_end(ap);
        if (!s)
                return -ENOMEM;
        /* A later setting of the same name replaces the earlier one. */
        size_t klen = strcspn(s, "=");
        STRV_FOREACH(e, *env)
        if (strncmp(*e, s, klen + 1) == 0) {
                free(*e);
                *e = TAKE_PTR(s);
                return 0;
        }
        return strv_consume(env, TAKE_PTR(s));
}

/* Append a copy of s to a NULL-terminated argv of *n entries. */
int adapter_argv_add_all(char ***argv, const cJSON *strings) {
        const cJSON *m;
        int r;

        cJSON_ArrayForEach (m, strings)
                if ((r = strv_push(argv, m->valuestring)) < 0)
                        return r;
        return 0;
}

#define DEFAULT_PROMPT_TEMPLATE                                                                                          \
        "You are {{agent.name}} (agent {{agent.id}}), woken by corral for run {{run.id}}.\n"                             \
        "Wake reason: {{wake.reason}}.\n"                                                                                \
        "Issue: {{issue.identifier}} {{issue.title}}\n"                                                                  \
        "corral's API is HTTP on the Unix socket in $CORRAL_SOCKET; your run, agent, company and issue ids are in "      \
        "$CORRAL_RUN_ID, $CORRAL_AGENT_ID, $CORRAL_COMPANY_ID and $CORRAL_ISSUE_ID. Comment on your issue and set its "  \
        "status there (for example: curl --unix-socket \"$CORRAL_SOCKET\" http://corral/api/issues/$CORRAL_ISSUE_ID).\n" \
        "The wake payload (your issue and the comments that woke you):\n{{wake.payload}}\n"

/* Fill {{name}} placeholders of the prompt template; unknown ones are kept as they are. */
static char *render_prompt(const char *template, const char *const *vars) {
        size_t size = 0, allocated = strlen(template) + 1;
        char *out = malloc(allocated);
        const char *p = template;

        if (!out)
                return NULL;
        while (*p) {
                const char *value = NULL, *end = NULL;
                size_t n = 1;

                if (p[0] == '{' && p[1] == '{' && (end = strstr(p + 2, "}}")))
                        for (size_t i = 0; vars[i]; i += 2)
                                if (strlen(vars[i]) == (size_t) (end - p - 2) && strncmp(vars[i], p + 2, end - p - 2) == 0) {
                                        value = vars[i + 1];
                                        break;
                                }
                const char *piece = value ?: p;
                size_t piece_size = value ? strlen(value) : n;
                if (size + piece_size + 1 > allocated) {
                        allocated = MAX(allocated * 2, size + piece_size + 1);
                        char *t = realloc(out, allocated);
                        if (!t) {
                                free(out);
                                return NULL;
                        }
                        out = t;
                }
                memcpy(out + size, piece, piece_size);
                size += piece_size;
                p = value ? end + 2 : p + 1;
        }
        out[size] = '\0';
        return out;
}

int adapter_take_secrets(char **config_json, char ***ret_secrets, char ***ret_names) {
        _cleanup_json_ cJSON *c = cJSON_Parse(*config_json ?: "{}");
        _cleanup_strv_free_ char **secrets = NULL, **names = NULL;
        cJSON *env, *m;
        int r;

        env = cJSON_GetObjectItemCaseSensitive(c, "env");
        cJSON_ArrayForEach (m, env) {
                cJSON *secret = cJSON_GetObjectItemCaseSensitive(m, "secret");
                if (!secret)
                        continue;
                if ((r = strv_push(&names, m->string)) < 0)
                        return r;
                if (!cJSON_IsString(secret))
                        continue;
                if ((r = strv_push(&secrets, m->string)) < 0 || (r = strv_push(&secrets, secret->valuestring)) < 0)
                        return r;
                if (!cJSON_ReplaceItemInObjectCaseSensitive(m, "secret", cJSON_CreateTrue()))
                        return -ENOMEM;
        }
        char *text = cJSON_PrintUnformatted(c);
        if (!text)
                return -ENOMEM;
        free(*config_json);
        *config_json = text;
        *ret_secrets = TAKE_PTR(secrets);
        *ret_names = TAKE_PTR(names);
        return 0;
}

/* A resume that the CLI refuses is tried again afresh in the same run, as the reference
 * does: the shim's again file (shim.h), its stale-session words and the command line
 * without the session. */
static int build_again(const AdapterConfig *ac, const Run *run, AdapterLaunch *l) {
        const char *marker = adapter_ops(ac->type)->stale_session_stderr ?: adapter_ops(ac->type)->stale_session_stdout;
        _cleanup_strv_free_ char **fresh = NULL;
        size_t size;
        char *p;
        int r;

        if (!run->session_id_before || !marker)
                return 0;
        r = adapter_ops(ac->type)->argv(ac, NULL, &fresh);
        if (r < 0)
                return r;
        size = strlen(marker) + 1;
        STRV_FOREACH(a, fresh)
        size += strlen(*a) + 1;
        l->again = p = malloc(size);
        if (!p)
                return -ENOMEM;
        p = stpcpy(p, marker) + 1;
        STRV_FOREACH(a, fresh)
        p = stpcpy(p, *a) + 1;
        l->again_size = size;
        return 0;
}

/* The command line, and for a coding CLI its prompt on stdin. */
static int build_command(const Agent *agent, const Run *run, const AdapterConfig *ac, const cJSON *context,
                         const char *payload_text, AdapterLaunch *l) {
        const cJSON *payload = cJSON_GetObjectItemCaseSensitive(context, "paperclipWake"),
                    *issue = cJSON_GetObjectItemCaseSensitive(payload, "issue");
        const char *issue_id = json_string_member(context, "issueId");
        int r;

        if (!adapter_ops(ac->type)->cli) {
                r = strv_push(&l->argv, ac->command->valuestring);
                return r < 0 ? r : adapter_argv_add_all(&l->argv, ac->args);
        }
        const char *vars[] = {
                "agent.id",
                agent->id,
                "agent.name",
                strempty(agent->name),
                "run.id",
                run->id,
                "wake.reason",
                json_string_member(context, "wakeReason") ?: "none",
                "wake.payload",
                payload_text,
                "issue.id",
                strempty(issue_id),
                "issue.identifier",
                json_string_member(issue, "identifier") ?: "(none)",
                "issue.title",
                strempty(json_string_member(issue, "title")),
                NULL,
        };
        r = adapter_ops(ac->type)->argv(ac, run->session_id_before, &l->argv);
        if (r < 0)
                return r;
        r = build_again(ac, run, l);
        if (r < 0)
                return r;
        l->stdin_text = render_prompt(ac->prompt_template ? ac->prompt_template->valuestring : DEFAULT_PROMPT_TEMPLATE, vars);
        return l->stdin_text ? 0 : -ENOMEM;
}

/* A small, explicit environment: nothing of corrald's own reaches agents but PATH. */
static int build_env(const Agent *agent, const Run *run, const AdapterConfig *ac, const cJSON *context, const char *payload_text,
                     const char *socket_path, const char *home, char *const *secrets, AdapterLaunch *l, char **ret_error) {
        const char *path = getenv("PATH");
        const cJSON *m;

        if (env_add(&l->env, "PATH=%s", path ?: "/usr/local/bin:/usr/bin:/bin") < 0 || env_add(&l->env, "HOME=%s", home) < 0 ||
            env_add(&l->env, "LANG=C.UTF-8") < 0 || env_add(&l->env, "CORRAL_RUN_ID=%s", run->id) < 0 ||
            env_add(&l->env, "CORRAL_AGENT_ID=%s", agent->id) < 0 ||
            env_add(&l->env, "CORRAL_COMPANY_ID=%s", agent->company_id) < 0 ||
            env_add(&l->env, "CORRAL_ISSUE_ID=%s", strempty(json_string_member(context, "issueId"))) < 0 ||
            env_add(&l->env, "CORRAL_WAKE_REASON=%s", strempty(json_string_member(context, "wakeReason"))) < 0 ||
            env_add(&l->env, "CORRAL_WAKE_PAYLOAD_JSON=%s", payload_text) < 0 ||
            env_add(&l->env, "CORRAL_SOCKET=%s", socket_path) < 0)
                return -ENOMEM;
        /* The run's git workspace (control/workspace.h), when it has one. */
        const cJSON *ws = cJSON_GetObjectItemCaseSensitive(context, "workspace");
        if (cJSON_IsObject(ws) &&
            (env_add(&l->env, "CORRAL_WORKSPACE_PATH=%s", strempty(json_string_member(ws, "path"))) < 0 ||
             env_add(&l->env, "CORRAL_WORKSPACE_BRANCH=%s", strempty(json_string_member(ws, "branch"))) < 0 ||
             env_add(&l->env, "CORRAL_WORKSPACE_REPO=%s", strempty(json_string_member(ws, "repo"))) < 0))
                return -ENOMEM;
        cJSON_ArrayForEach (m, ac->env) {
                const char *value = m->valuestring;
                if (!cJSON_IsString(m) && !(value = strv_pair_value(secrets, m->string)))
                        return set_error(ret_error, -EINVAL,
                                         "adapterConfig.env.%s is a secret whose value is not stored; set it again", m->string);
                if (env_add(&l->env, "%s=%s", m->string, value) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int adapter_build_launch(const Agent *agent, const Run *run, const char *socket_path, const char *home, char *const *secrets,
                         AdapterLaunch *ret, char **ret_error) {
        _cleanup_(adapter_launch_done) AdapterLaunch l = {};
        _cleanup_json_ cJSON *config = NULL, *context = NULL;
        _cleanup_free_ char *payload_text = NULL;
        const char *issue_id;
        AdapterConfig ac;
        const cJSON *payload;
        int r;

        config = cJSON_Parse(agent->adapter_config ?: "{}");
        r = parse_config(agent->adapter_type, config, true, &ac, ret_error);
        if (r < 0)
                return r;
        context = cJSON_Parse(run->context_snapshot ?: "{}");
        if (!cJSON_IsObject(context)) {
                cJSON_Delete(context);
                context = cJSON_CreateObject();
                if (!context)
                        return -ENOMEM;
        }
        issue_id = json_string_member(context, "issueId");
        payload = cJSON_GetObjectItemCaseSensitive(context, "paperclipWake");
        payload_text = payload ? cJSON_PrintUnformatted(payload) : strdup("{}");
        if (!payload_text)
                return -ENOMEM;

        r = build_command(agent, run, &ac, context, payload_text, &l);
        if (r < 0)
                return r;

        r = build_env(agent, run, &ac, context, payload_text, socket_path, home, secrets, &l, ret_error);
        if (r < 0)
                return r;

        /* Never the run directory: that is corral's, and hidden from a sandboxed agent. A
         * coding CLI keeps its sessions and configuration in its HOME (~/.claude, ~/.codex):
         * by default it works in a directory of its home, not in the home itself, so that
         * those never land in what it works on. */
        _cleanup_free_ char *workspace = strprintf("%s/" SANDBOX_WORKSPACE_DIR, home);
        if (!workspace)
                return -ENOMEM;
        const char *git_workspace = json_string_member(cJSON_GetObjectItemCaseSensitive(context, "workspace"), "path");
        if (!(l.cwd = strdup(git_workspace                       ? git_workspace
                                     : ac.cwd                    ? ac.cwd->valuestring
                                     : adapter_ops(ac.type)->cli ? workspace
                                                                 : home)) ||
            (ac.stdin_text && !(l.stdin_text = strdup(ac.stdin_text->valuestring))) ||
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
                .timeout_sec = ac.timeout_sec,
                .grace_sec = ac.grace_sec,
                .idle_timeout_sec = ac.idle_timeout_sec,
                .limits = ac.limits,
                .again = l.again,
                .again_size = l.again_size,
        };
        *ret = l;
        l = (AdapterLaunch){};
        return 0;
}

const AdapterOps *adapter_ops(AdapterType type) {
        switch (type) {
        case ADAPTER_CLAUDE_LOCAL:
                return &adapter_claude_ops;
        case ADAPTER_CODEX_LOCAL:
                return &adapter_codex_ops;
        case ADAPTER_GEMINI_LOCAL:
                return &adapter_gemini_ops;
        case ADAPTER_PI_LOCAL:
                return &adapter_pi_ops;
        case ADAPTER_OPENCODE_LOCAL:
                return &adapter_opencode_ops;
        default:
                return &adapter_process_ops;
        }
}
