/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * corralctl: the command-line client of corrald's API. Shared state of one
 * invocation, the verb table's types and the exit codes.
 */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>

/* Exit codes, documented in corralctl(1). */
#define EXIT_OK 0
#define EXIT_API_ERROR 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3

typedef struct Ctl {
        const char *socket_path;
        bool json; /* print the API's JSON instead of tables */
        bool quiet; /* print only ids (create verbs) */
        bool quiet_errors; /* a failed request says nothing (names.c's lookups of labels) */
} Ctl;

typedef int (*VerbFn)(Ctl *ctl, int argc, char *argv[]);

typedef struct Verb {
        const char *group; /* "company", or NULL for a top-level verb */
        const char *name;
        VerbFn run;
        const char *usage;
        const char *summary;
} Verb;

extern const Verb verbs[];

/* How an option of a create/update verb becomes a member of the JSON body. */
typedef enum OptKind {
        OPT_STRING, /* --name X       -> "name": "X" */
        OPT_INT, /* --budget N     -> "budgetMonthlyCents": N */
        OPT_JSON, /* --config JSON  -> "adapterConfig": {...} */
        OPT_TRUE, /* --flag         -> "field": true */
        OPT_FALSE, /* --no-flag      -> "field": false */
        OPT_NULL, /* --unassign     -> "field": null */
        OPT_AGENT, /* --assignee eng -> "field": the id of the agent that names (names.h) */
        OPT_ISSUE, /* --parent DEMO-1 -> "field": the id of that issue */
} OptKind;

typedef struct FieldOpt {
        const char *option;
        const char *field;
        OptKind kind;
        const char *help;
} FieldOpt;

/*
 * Parse argv of a verb: the common options (--json, --quiet, --socket, --help), the
 * field options (members of *ret_body, created when any is given) and extra options
 * ("company" -> value in extra_values[i]). Positional arguments are left in
 * argv[*ret_optind...]. Returns 0, EXIT_USAGE, or -1 after printing help.
 */
typedef struct ExtraOpt {
        const char *option;
        const char *help;
        const char *value; /* filled in */
} ExtraOpt;

int ctl_parse(Ctl *ctl, const Verb *verb, int argc, char *argv[], const FieldOpt *fields, ExtraOpt *extra, cJSON **ret_body,
              int *ret_optind);

/* Verb implementations, one file per group. */
int verb_status(Ctl *ctl, int argc, char *argv[]);
int verb_top(Ctl *ctl, int argc, char *argv[]);
int verb_company_list(Ctl *ctl, int argc, char *argv[]);
int verb_company_create(Ctl *ctl, int argc, char *argv[]);
int verb_company_show(Ctl *ctl, int argc, char *argv[]);
int verb_company_update(Ctl *ctl, int argc, char *argv[]);
int verb_activity(Ctl *ctl, int argc, char *argv[]);
int verb_agent_list(Ctl *ctl, int argc, char *argv[]);
int verb_agent_create(Ctl *ctl, int argc, char *argv[]);
int verb_agent_show(Ctl *ctl, int argc, char *argv[]);
int verb_agent_update(Ctl *ctl, int argc, char *argv[]);
int verb_agent_pause(Ctl *ctl, int argc, char *argv[]);
int verb_agent_resume(Ctl *ctl, int argc, char *argv[]);
int verb_agent_approve(Ctl *ctl, int argc, char *argv[]);
int verb_agent_terminate(Ctl *ctl, int argc, char *argv[]);
int verb_agent_state(Ctl *ctl, int argc, char *argv[]);
int verb_agent_reset_session(Ctl *ctl, int argc, char *argv[]);
int verb_issue_list(Ctl *ctl, int argc, char *argv[]);
int verb_issue_create(Ctl *ctl, int argc, char *argv[]);
int verb_issue_show(Ctl *ctl, int argc, char *argv[]);
int verb_issue_update(Ctl *ctl, int argc, char *argv[]);
int verb_comment_list(Ctl *ctl, int argc, char *argv[]);
int verb_comment_add(Ctl *ctl, int argc, char *argv[]);
int verb_wake(Ctl *ctl, int argc, char *argv[]);
int verb_runs(Ctl *ctl, int argc, char *argv[]);
int verb_run(Ctl *ctl, int argc, char *argv[]);
int verb_events(Ctl *ctl, int argc, char *argv[]);
int verb_logs(Ctl *ctl, int argc, char *argv[]);
int verb_cancel(Ctl *ctl, int argc, char *argv[]);
int verb_sweep(Ctl *ctl, int argc, char *argv[]);
int verb_costs(Ctl *ctl, int argc, char *argv[]);
int verb_workspace_list(Ctl *ctl, int argc, char *argv[]);
int verb_workspace_show(Ctl *ctl, int argc, char *argv[]);
int verb_workspace_prune(Ctl *ctl, int argc, char *argv[]);
int verb_host_list(Ctl *ctl, int argc, char *argv[]);
int verb_host_drain(Ctl *ctl, int argc, char *argv[]);
int verb_host_resume(Ctl *ctl, int argc, char *argv[]);

/* The verb table entry of the running verb (for usage messages). */
const Verb *ctl_find_verb(const char *group, const char *name);

/* Parse a verb's options and check it got exactly n_args positional arguments (n_args < 0:
 * at most -n_args). Returns
 * >= 0 (the index of the first positional argument) or the exit code to return (as -1 - code). */
#define CTL_DONE(code) (-1 - (code))
int ctl_args(Ctl *ctl, const char *group, const char *name, int argc, char *argv[], const FieldOpt *fields, ExtraOpt *extra,
             cJSON **ret_body, int n_args);

/* One positional ID: method prefix/ID[suffix] with an optional body, then print the record. */
int ctl_call_on_id(Ctl *ctl, const char *group, const char *name, int argc, char *argv[], const char *method, const char *prefix,
                   const char *suffix, const FieldOpt *fields, bool need_body);

/* Verbs on a company's collection ("agents", "issues"): --company ID is required.
 * list: GET /api/companies/ID/COLLECTION[?query] as a table. create: POST with the field
 * options as the body, required naming the one field that must be given. */
int ctl_company_list(Ctl *ctl, const char *group, const char *name, const char *collection, int argc, char *argv[],
                     ExtraOpt *filters, const char *const *filter_params, const void *columns);
int ctl_company_create(Ctl *ctl, const char *group, const char *collection, int argc, char *argv[], const FieldOpt *fields,
                       const char *required);

/* Check that a required extra option was given. */
bool ctl_require(const char *verb, const ExtraOpt *extra);
