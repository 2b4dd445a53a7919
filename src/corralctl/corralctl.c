/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * corralctl: global options, the verb table, per-verb option parsing.
 */
#include "corralctl.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "client.h"
#include "names.h"
#include "output.h"

#define DEFAULT_SOCKET CORRAL_RUNSTATEDIR "/corral/corrald.sock"

const Verb verbs[] = {
        { NULL, "status", verb_status, "status", "Show whether corrald is up and what it holds" },
        { "company", "list", verb_company_list, "company list", "List companies" },
        { "company", "create", verb_company_create, "company create --name NAME [OPTIONS]", "Create a company" },
        { "company", "show", verb_company_show, "company show ID", "Show one company" },
        { "company", "update", verb_company_update, "company update ID [OPTIONS]", "Change a company" },
        { NULL, "activity", verb_activity, "activity --company ID [--limit N]", "Show a company's activity log, newest first" },
        { "agent", "list", verb_agent_list, "agent list --company ID", "List a company's agents" },
        { "agent", "create", verb_agent_create, "agent create --company ID --name NAME [OPTIONS]", "Create an agent" },
        { "agent", "show", verb_agent_show, "agent show ID", "Show one agent" },
        { "agent", "update", verb_agent_update, "agent update ID [OPTIONS]", "Change an agent" },
        { "agent", "pause", verb_agent_pause, "agent pause ID", "Pause an agent: it is not woken until resumed" },
        { "agent", "resume", verb_agent_resume, "agent resume ID", "Resume a paused agent" },
        { "agent", "approve", verb_agent_approve, "agent approve ID", "Approve an agent pending the board's approval" },
        { "agent", "terminate", verb_agent_terminate, "agent terminate ID", "Terminate an agent for good" },
        { "agent", "state", verb_agent_state, "agent state ID", "Show an agent's session, last run and usage totals" },
        { "agent", "reset-session", verb_agent_reset_session, "agent reset-session ID",
          "Forget an agent's saved sessions: its next runs start fresh" },
        { "issue", "list", verb_issue_list, "issue list --company ID [--status S] [--assignee AGENT] [--limit N]",
          "List a company's issues" },
        { "issue", "create", verb_issue_create, "issue create --company ID --title TITLE [OPTIONS]", "Create an issue" },
        { "issue", "show", verb_issue_show, "issue show ID|IDENTIFIER", "Show one issue" },
        { "issue", "update", verb_issue_update, "issue update ID|IDENTIFIER [OPTIONS]", "Change an issue" },
        { "comment", "list", verb_comment_list, "comment list ISSUE", "List an issue's comments" },
        { "comment", "add", verb_comment_add, "comment add ISSUE TEXT|-", "Comment on an issue (- reads the text from stdin)" },
        { "workspace", "list", verb_workspace_list, "workspace list --company ID [--status S] [--limit N]",
          "List the git workspaces corral made for issues" },
        { "workspace", "show", verb_workspace_show, "workspace show ISSUE", "Show an issue's workspace" },
        { "workspace", "prune", verb_workspace_prune, "workspace prune",
          "Remove now the workspaces of closed issues (those with uncommitted changes are kept)" },
        { "host", "list", verb_host_list, "host list", "List the corralds sharing the database, their leases and runs" },
        { "host", "drain", verb_host_drain, "host drain HOST",
          "Stop a host claiming new runs; it finishes what it runs (until resumed or started again)" },
        { "host", "resume", verb_host_resume, "host resume HOST", "Let a drained host claim runs again" },
        { NULL, "wake", verb_wake, "wake AGENT [--reason TEXT] [--payload JSON]", "Wake an agent: queue a run" },
        { NULL, "runs", verb_runs, "runs --company ID [--agent ID] [--limit N]", "List runs, newest first" },
        { NULL, "run", verb_run, "run RUN", "Show one run" },
        { NULL, "events", verb_events, "events [RUN] [-f|--follow] [--company C] [--after ID] [--types T,...] [--logs AGENT]",
          "Show a run's events; without a run, the event stream of everything (-f: follow it)" },
        { NULL, "top", verb_top, "top [--delay SEC] [--iterations N] [--recent SEC] [--sort KEY]",
          "Show active and recent runs, redrawn as they change (q quits)" },
        { NULL, "logs", verb_logs, "logs [-f] RUN", "Print a run's output; -f follows it until the run ends" },
        { NULL, "cancel", verb_cancel, "cancel RUN", "Cancel a queued or running run" },
        { NULL, "costs", verb_costs, "costs --company ID|--agent ID [--month YYYY-MM]",
          "What a company or an agent spent in a month, by agent and model" },
        { NULL, "sweep", verb_sweep, "sweep", "Take up running runs nobody tracks now, not at the next sweep" },
        {},
};

static void help(void) {
        const char *group = NULL;

        printf("Usage: corralctl [--socket PATH] [--json] [--quiet] VERB [ARGS...]\n\n"
               "Control corrald, the supervisor of AI agent runs.\n\n"
               "Options (also accepted after the verb):\n"
               "  -h --help           Show this help, or a verb's help after the verb\n"
               "     --version        Show the version\n"
               "     --socket PATH    corrald's API socket (default $CORRAL_SOCKET, else %s)\n"
               "  -j --json           Print the API's JSON instead of tables\n"
               "  -q --quiet          Print only the id of what a create verb made\n\n"
               "Verbs:\n",
               DEFAULT_SOCKET);
        for (const Verb *v = verbs; v->name; v++) {
                if (v->group && !streq_ptr(v->group, group))
                        printf("\n");
                group = v->group;
                printf("  %-52s %s\n", v->usage, v->summary);
        }
        printf("\nExit status: 0 success, 1 the API refused or failed, 2 usage error, 3 corrald unreachable.\n"
               "See corralctl(1).\n");
}

const Verb *ctl_find_verb(const char *group, const char *name) {
        for (const Verb *v = verbs; v->name; v++)
                if (streq_ptr(v->group, group) && streq(v->name, name))
                        return v;
        return NULL;
}

static void verb_help(const Verb *verb, const FieldOpt *fields, const ExtraOpt *extra) {
        printf("Usage: corralctl %s\n\n%s.\n\nOptions:\n", verb->usage, verb->summary);
        for (size_t i = 0; extra && extra[i].option; i++)
                printf("  --%-22s %s\n", extra[i].option, extra[i].help);
        for (size_t i = 0; fields && fields[i].option; i++) {
                const char *arg = fields[i].kind == OPT_STRING ? " TEXT"
                        : fields[i].kind == OPT_AGENT          ? " AGENT"
                        : fields[i].kind == OPT_ISSUE          ? " ISSUE"
                        : fields[i].kind == OPT_INT            ? " N"
                        : fields[i].kind == OPT_JSON           ? " JSON"
                                                               : "";
                char opt[64];
                snprintf(opt, sizeof(opt), "%s%s", fields[i].option, arg);
                printf("  --%-22s %s\n", opt, fields[i].help);
        }
        printf("  --%-22s %s\n  --%-22s %s\n  --%-22s %s\n", "json", "Print the API's JSON", "quiet",
               "Print only the id of what was created", "socket PATH", "corrald's API socket");
}

static int add_field(cJSON **body, const FieldOpt *f, const char *arg, const char *verb) {
        cJSON *v;
        int64_t n;

        if (!*body) {
                *body = cJSON_CreateObject();
                if (!*body)
                        return -ENOMEM;
        }
        switch (f->kind) {
        case OPT_STRING:
        case OPT_AGENT: /* resolved once every option is read (the socket may come later) */
        case OPT_ISSUE:
                v = cJSON_CreateString(arg);
                break;
        case OPT_INT:
                if (safe_atoi64(arg, &n) < 0) {
                        fprintf(stderr, "corralctl %s: --%s needs an integer, got '%s'\n", verb, f->option, arg);
                        return -EINVAL;
                }
                v = cJSON_CreateNumber((double) n);
                break;
        case OPT_JSON:
                v = cJSON_Parse(arg);
                if (!v) {
                        fprintf(stderr, "corralctl %s: --%s needs valid JSON, got '%s'\n", verb, f->option, arg);
                        return -EINVAL;
                }
                break;
        case OPT_TRUE:
                v = cJSON_CreateTrue();
                break;
        case OPT_FALSE:
                v = cJSON_CreateFalse();
                break;
        case OPT_NULL:
        default:
                v = cJSON_CreateNull();
                break;
        }
        if (!v)
                return -ENOMEM;
        cJSON_DeleteItemFromObjectCaseSensitive(*body, f->field);
        cJSON_AddItemToObject(*body, f->field, v);
        return 0;
}

int ctl_parse(Ctl *ctl, const Verb *verb, int argc, char *argv[], const FieldOpt *fields, ExtraOpt *extra, cJSON **ret_body,
              int *ret_optind) {
        enum { OPT_HELP = 'h', OPT_JSON_OUT = 'j', OPT_QUIET = 'q', OPT_SOCKET = 0x100, OPT_EXTRA = 0x200, OPT_FIELD = 0x400 };
        struct option options[64];
        size_t n = 0;
        char name[64];
        cJSON *body = NULL;
        int c;

        snprintf(name, sizeof(name), "%s%s%s", verb->group ?: "", verb->group ? " " : "", verb->name);
        options[n++] = (struct option){ "help", no_argument, NULL, OPT_HELP };
        options[n++] = (struct option){ "json", no_argument, NULL, OPT_JSON_OUT };
        options[n++] = (struct option){ "quiet", no_argument, NULL, OPT_QUIET };
        options[n++] = (struct option){ "socket", required_argument, NULL, OPT_SOCKET };
        for (size_t i = 0; extra && extra[i].option && n < 62; i++)
                options[n++] = (struct option){ extra[i].option, required_argument, NULL, OPT_EXTRA + (int) i };
        for (size_t i = 0; fields && fields[i].option && n < 62; i++) {
                bool takes_arg = fields[i].kind == OPT_STRING || fields[i].kind == OPT_INT || fields[i].kind == OPT_JSON ||
                        fields[i].kind == OPT_AGENT || fields[i].kind == OPT_ISSUE;
                options[n++] = (struct option){ fields[i].option, takes_arg ? required_argument : no_argument, NULL,
                                                OPT_FIELD + (int) i };
        }
        options[n] = (struct option){};

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "hjq", options, NULL)) >= 0) {
                if (c == OPT_HELP) {
                        verb_help(verb, fields, extra);
                        cJSON_Delete(body);
                        return -1;
                } else if (c == OPT_JSON_OUT)
                        ctl->json = true;
                else if (c == OPT_QUIET)
                        ctl->quiet = true;
                else if (c == OPT_SOCKET)
                        ctl->socket_path = optarg;
                else if (c >= OPT_FIELD) {
                        int r = add_field(&body, &fields[c - OPT_FIELD], optarg, name);
                        if (r < 0) {
                                cJSON_Delete(body);
                                return r == -ENOMEM ? EXIT_API_ERROR : EXIT_USAGE;
                        }
                } else if (c >= OPT_EXTRA)
                        extra[c - OPT_EXTRA].value = optarg;
                else {
                        if (optopt)
                                fprintf(stderr, "corralctl %s: option -%c is unknown or needs an argument\n", name, optopt);
                        else
                                fprintf(stderr, "corralctl %s: option %s is unknown or needs an argument\n", name,
                                        argv[optind - 1]);
                        fprintf(stderr, "Try 'corralctl %s --help'.\n", name);
                        cJSON_Delete(body);
                        return EXIT_USAGE;
                }
        }
        /* Agents and issues by name, identifier or a prefix of their id. */
        for (size_t i = 0; fields && fields[i].option; i++) {
                cJSON *v = cJSON_GetObjectItemCaseSensitive(body, fields[i].field);
                if ((fields[i].kind != OPT_AGENT && fields[i].kind != OPT_ISSUE) || !cJSON_IsString(v))
                        continue;
                int r;
                _cleanup_free_ char *id =
                        names_resolve(ctl, fields[i].kind == OPT_AGENT ? "agent" : "issue", v->valuestring, NULL, &r);
                if (!id) {
                        cJSON_Delete(body);
                        return r == EXIT_OK ? EXIT_API_ERROR : r;
                }
                (void) cJSON_ReplaceItemInObjectCaseSensitive(body, fields[i].field, cJSON_CreateString(id));
        }
        if (ret_body)
                *ret_body = body;
        else
                cJSON_Delete(body);
        *ret_optind = optind;
        return 0;
}

int main(int argc, char *argv[]) {
        Ctl ctl = { .socket_path = getenv("CORRAL_SOCKET") };
        const Verb *verb;
        int i = 1, r;

        if (isempty(ctl.socket_path))
                ctl.socket_path = DEFAULT_SOCKET;

        /* Global options before the verb. */
        for (; i < argc && argv[i][0] == '-'; i++) {
                if (streq(argv[i], "-h") || streq(argv[i], "--help")) {
                        help();
                        return EXIT_OK;
                } else if (streq(argv[i], "--version")) {
                        printf("corralctl %s\n", PACKAGE_VERSION);
                        return EXIT_OK;
                } else if (streq(argv[i], "-j") || streq(argv[i], "--json"))
                        ctl.json = true;
                else if (streq(argv[i], "-q") || streq(argv[i], "--quiet"))
                        ctl.quiet = true;
                else if (streq(argv[i], "--socket") && i + 1 < argc)
                        ctl.socket_path = argv[++i];
                else if (strncmp(argv[i], "--socket=", 9) == 0)
                        ctl.socket_path = argv[i] + 9;
                else {
                        fprintf(stderr, "corralctl: unknown option '%s'. Try 'corralctl --help'.\n", argv[i]);
                        return EXIT_USAGE;
                }
        }
        if (i >= argc) {
                fprintf(stderr, "corralctl: no verb given. Try 'corralctl --help'.\n");
                return EXIT_USAGE;
        }

        verb = ctl_find_verb(NULL, argv[i]);
        if (!verb) {
                bool is_group = false;
                for (const Verb *v = verbs; v->name; v++)
                        if (streq_ptr(v->group, argv[i]))
                                is_group = true;
                if (!is_group) {
                        fprintf(stderr, "corralctl: unknown verb '%s'. Try 'corralctl --help'.\n", argv[i]);
                        return EXIT_USAGE;
                }
                if (i + 1 >= argc || streq(argv[i + 1], "--help") || streq(argv[i + 1], "-h")) {
                        printf("Usage:\n");
                        for (const Verb *v = verbs; v->name; v++)
                                if (streq_ptr(v->group, argv[i]))
                                        printf("  corralctl %-50s %s\n", v->usage, v->summary);
                        return i + 1 >= argc ? EXIT_USAGE : EXIT_OK;
                }
                verb = ctl_find_verb(argv[i], argv[i + 1]);
                if (!verb) {
                        fprintf(stderr, "corralctl: unknown verb '%s %s'. Try 'corralctl %s --help'.\n", argv[i], argv[i + 1],
                                argv[i]);
                        return EXIT_USAGE;
                }
                i++;
        }

        curl_global_init(CURL_GLOBAL_DEFAULT);
        r = verb->run(&ctl, argc - i, argv + i);
        names_done();
        curl_global_cleanup();
        return r;
}

int ctl_args(Ctl *ctl, const char *group, const char *name, int argc, char *argv[], const FieldOpt *fields, ExtraOpt *extra,
             cJSON **ret_body, int n_args) {
        const Verb *verb = ctl_find_verb(group, name);
        int r, first;

        r = ctl_parse(ctl, verb, argc, argv, fields, extra, ret_body, &first);
        if (r < 0)
                return CTL_DONE(EXIT_OK);
        if (r > 0)
                return CTL_DONE(r);
        /* n_args < 0: at most -n_args of them. */
        if (n_args >= 0 ? argc - first != n_args : argc - first > -n_args) {
                fprintf(stderr, "corralctl %s%s%s: expected %d argument%s, got %d. Usage: corralctl %s\n", strempty(group),
                        group ? " " : "", name, n_args, n_args == 1 ? "" : "s", argc - first, verb->usage);
                if (ret_body) {
                        cJSON_Delete(*ret_body);
                        *ret_body = NULL;
                }
                return CTL_DONE(EXIT_USAGE);
        }
        return first;
}

bool ctl_require(const char *verb, const ExtraOpt *extra) {
        for (size_t i = 0; extra[i].option; i++)
                if (!extra[i].value) {
                        fprintf(stderr, "corralctl %s: --%s is required\n", verb, extra[i].option);
                        return false;
                }
        return true;
}

int ctl_call_on_id(Ctl *ctl, const char *group, const char *name, int argc, char *argv[], const char *method, const char *prefix,
                   const char *suffix, const FieldOpt *fields, bool need_body) {
        _cleanup_free_ char *id = NULL, *path = NULL;
        cJSON *body = NULL, *reply = NULL;
        int first, r;

        first = ctl_args(ctl, group, name, argc, argv, fields, NULL, &body, 1);
        if (first < 0)
                return -1 - first;
        if (need_body && !body) {
                fprintf(stderr, "corralctl %s %s: nothing to change; see 'corralctl %s %s --help'\n", group, name, group, name);
                return EXIT_USAGE;
        }
        /* What the user typed: a name, an identifier or an id's prefix works too. */
        const char *kind = streq(prefix, "/api/companies") ? "company"
                : streq(prefix, "/api/agents")             ? "agent"
                : streq(prefix, "/api/issues")             ? "issue"
                                                           : "run";
        id = names_resolve(ctl, kind, argv[first], NULL, &r);
        if (!id) {
                cJSON_Delete(body);
                return r;
        }
        if (asprintf(&path, "%s/%s%s", prefix, id, strempty(suffix)) < 0) {
                cJSON_Delete(body);
                return EXIT_API_ERROR;
        }
        r = client_call(ctl, method, path, body, &reply);
        cJSON_Delete(body);
        if (r == EXIT_OK)
                output_reply(ctl, reply);
        cJSON_Delete(reply);
        return r;
}

int ctl_company_create(Ctl *ctl, const char *group, const char *collection, int argc, char *argv[], const FieldOpt *fields,
                       const char *required) {
        ExtraOpt extra[] = { { "company", "Company id (required)" }, {} };
        _cleanup_free_ char *company = NULL, *path = NULL;
        cJSON *body = NULL, *reply = NULL;
        int first, r;

        first = ctl_args(ctl, group, "create", argc, argv, fields, extra, &body, 0);
        if (first < 0)
                return -1 - first;
        if (!extra[0].value || !cJSON_GetObjectItemCaseSensitive(body, required)) {
                fprintf(stderr, "corralctl %s create: --%s is required\n", group, extra[0].value ? required : "company");
                cJSON_Delete(body);
                return EXIT_USAGE;
        }
        company = names_resolve(ctl, "company", extra[0].value, NULL, &r);
        if (!company) {
                cJSON_Delete(body);
                return r;
        }
        if (!company || asprintf(&path, "/api/companies/%s/%s", company, collection) < 0) {
                cJSON_Delete(body);
                return EXIT_API_ERROR;
        }
        r = client_call(ctl, "POST", path, body, &reply);
        cJSON_Delete(body);
        if (r == EXIT_OK)
                output_reply(ctl, reply);
        cJSON_Delete(reply);
        return r;
}

int ctl_company_list(Ctl *ctl, const char *group, const char *name, const char *collection, int argc, char *argv[],
                     ExtraOpt *filters, const char *const *filter_params, const void *columns) {
        _cleanup_free_ char *company = NULL, *path = NULL;
        cJSON *reply = NULL;
        int first, r;

        /* filters[0] is --company; the others become query parameters. */
        first = ctl_args(ctl, group, name, argc, argv, NULL, filters, NULL, 0);
        if (first < 0)
                return -1 - first;
        if (!filters[0].value) {
                fprintf(stderr, "corralctl %s%s%s: --company is required\n", strempty(group), group ? " " : "", name);
                return EXIT_USAGE;
        }
        company = names_resolve(ctl, "company", filters[0].value, NULL, &r);
        if (!company)
                return r;
        if (asprintf(&path, "/api/companies/%s/%s", company, collection) < 0)
                return EXIT_API_ERROR;
        size_t want = CLIENT_LIST_DEFAULT;
        for (size_t i = 1; filters[i].option; i++) {
                _cleanup_free_ char *v = NULL;
                char *t;
                if (!filters[i].value)
                        continue;
                if (streq(filter_params[i], "limit")) {
                        /* Any number, or all: corralctl follows the list's pages for it. */
                        uint64_t n;
                        if (streq(filters[i].value, "all"))
                                want = 0;
                        else if (safe_atou64(filters[i].value, &n) < 0 || n == 0 || n > SIZE_MAX / 2) {
                                fprintf(stderr, "corralctl %s%s%s: --limit must be a positive number or 'all', not '%s'\n",
                                        strempty(group), group ? " " : "", name, filters[i].value);
                                return EXIT_USAGE;
                        } else
                                want = (size_t) n;
                        continue;
                }
                if (streq(filter_params[i], "agentId") || streq(filter_params[i], "assigneeAgentId")) {
                        /* An agent of this company, by name or id (an id needs no escaping). */
                        v = names_resolve(ctl, "agent", filters[i].value, company, &r);
                        if (!v)
                                return r;
                } else
                        v = client_escape(filters[i].value);
                if (!v || asprintf(&t, "%s%s%s=%s", path, strchr(path, '?') ? "&" : "?", filter_params[i], v) < 0)
                        return EXIT_API_ERROR;
                free(path);
                path = t;
        }
        r = client_list(ctl, path, want, &reply);
        if (r == EXIT_OK)
                output_list(ctl, reply, columns);
        cJSON_Delete(reply);
        return r;
}
