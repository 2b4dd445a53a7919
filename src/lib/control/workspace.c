/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Workspaces: the policy, a run's workspace and its row, and removing them. */
#include "control/workspace.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/fd-util.h"
#include "basic/log.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "basic/time-util.h"
#include "basic/util.h"
#include "control/activity.h"
#include "store/jsonmap.h"
#include "store/queries.h"
#include "supervise/run-workspace.h"

/* A value that goes into the shim's line-based file and onto git's command line. */
static bool plain_value(const char *s, size_t max) {
        if (isempty(s) || strlen(s) > max || s[0] == '-')
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

/* What git check-ref-format says of a branch name, near enough to refuse what it would. */
static bool branch_valid(const char *b) {
        size_t n = strlen(b);

        if (!plain_value(b, 200) || b[0] == '/' || b[n - 1] == '/' || b[n - 1] == '.' || strstr(b, "..") || strstr(b, "//") ||
            strstr(b, "@{") || strstr(b, "/.") || b[0] == '.' || (n >= 5 && streq(b + n - 5, ".lock")))
                return false;
        return strpbrk(b, " ~^:?*[\\") == NULL;
}

int workspace_policy_check(const cJSON *p, const char *what, char **ret_error) {
        const cJSON *m;

        if (!p || cJSON_IsNull(p))
                return 0;
        if (!cJSON_IsObject(p))
                return set_error(ret_error, -EINVAL, "%s must be an object", what);
        cJSON_ArrayForEach (m, p)
                if (!streq(m->string, "repo") && !streq(m->string, "strategy") && !streq(m->string, "baseRef") &&
                    !streq(m->string, "branch"))
                        return set_error(ret_error, -EINVAL, "%s has an unknown key '%.64s' (repo, strategy, baseRef, branch)",
                                         what, m->string);
        const cJSON *strategy = cJSON_GetObjectItemCaseSensitive(p, "strategy"),
                    *repo = cJSON_GetObjectItemCaseSensitive(p, "repo"), *base = cJSON_GetObjectItemCaseSensitive(p, "baseRef"),
                    *branch = cJSON_GetObjectItemCaseSensitive(p, "branch");
        if (strategy &&
            !(cJSON_IsString(strategy) && (streq(strategy->valuestring, "worktree") || streq(strategy->valuestring, "shared"))))
                return set_error(ret_error, -EINVAL, "%s.strategy must be \"worktree\" or \"shared\"", what);
        bool shared = strategy && streq(strategy->valuestring, "shared");
        if (!repo && !shared)
                return set_error(ret_error, -EINVAL, "%s.repo is required: the git repository its workspaces are made of", what);
        if (repo && !(cJSON_IsString(repo) && repo->valuestring[0] == '/' && plain_value(repo->valuestring, 4000)))
                return set_error(ret_error, -EINVAL, "%s.repo must be an absolute path", what);
        if (base && !(cJSON_IsString(base) && plain_value(base->valuestring, 200) && !strpbrk(base->valuestring, " ")))
                return set_error(ret_error, -EINVAL,
                                 "%s.baseRef must be a git revision (a branch, tag or commit), not starting with '-'", what);
        if (branch && !cJSON_IsString(branch))
                return set_error(ret_error, -EINVAL, "%s.branch must be a string", what);
        if (branch) {
                /* The template as a branch, its placeholders filled with what they may be. */
                _cleanup_free_ char *example = NULL;
                const char *t = branch->valuestring;
                char *filled = strdup(t);
                if (!filled)
                        return -ENOMEM;
                for (const char *ph = strchr(t, '{'); ph; ph = strchr(ph + 1, '{'))
                        if (!startswith(ph, "{identifier}") && !startswith(ph, "{issueId}")) {
                                free(filled);
                                return set_error(ret_error, -EINVAL,
                                                 "%s.branch may use {identifier} and {issueId}, nothing else in braces", what);
                        }
                example = strreplace(filled, "{identifier}", "ACME-1");
                free(filled);
                if (!example)
                        return -ENOMEM;
                char *e2 = strreplace(example, "{issueId}", "0b1e8c2a-0000-4000-8000-000000000000");
                bool ok = e2 && branch_valid(e2);
                free(e2);
                if (!ok)
                        return set_error(ret_error, -EINVAL, "%s.branch '%.200s' is not a branch name git accepts", what, t);
        }
        return 0;
}

void workspace_launch_done(WorkspaceLaunch *w) {
        free(w->key);
        free(w->path);
        free(w->branch);
        free(w->repo);
        free(w->base_ref);
        *w = (WorkspaceLaunch){};
}

/* The agent's policy, else its company's; NULL when neither has one. */
static cJSON *policy_of(Control *ctl, const Agent *agent) {
        _cleanup_json_ cJSON *config = cJSON_Parse(agent->adapter_config ?: "{}");
        cJSON *p = cJSON_DetachItemFromObjectCaseSensitive(config, "workspace");
        _cleanup_(company_donep) Company c = {};

        if (cJSON_IsObject(p))
                return p;
        cJSON_Delete(p);
        if (store_get(ctl->store, &company_entity, agent->company_id, &c) < 0)
                return NULL;
        p = cJSON_Parse(c.workspace ?: "{}");
        if (cJSON_IsObject(p) && cJSON_GetArraySize(p) > 0)
                return p;
        cJSON_Delete(p);
        return NULL;
}

static bool removal_running(Control *ctl, const char *key);

/* Write the workspace's row: made, or made active again for this run. */
static int record_use(Control *ctl, const Agent *agent, const Run *run, const WorkspaceLaunch *w, const char *issue_id,
                      char **ret_error) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(workspace_donep) Workspace row = {};
        char now[ISO_TIME_MAX];
        int r;

        r = iso_time_now(now);
        if (r < 0)
                return r;
        r = store_begin(ctl->store);
        if (r < 0)
                return r;
        tx = ctl->store;
        r = store_get(ctl->store, &workspace_entity, w->key, &row);
        bool is_new = r == -ENOENT;
        if (r < 0 && !is_new)
                return r;
        /* A removal left "removing" by a crash is over: the workspace is whole or gone (the
         * remover renames it away before it deletes anything). */
        if (!is_new && row.status == WORKSPACE_REMOVING && removal_running(ctl, w->key))
                return set_error(ret_error, -EBUSY, "the issue's workspace %s is being removed; wake the agent again", row.path);
        if (is_new) {
                if (free_and_strdup(&row.key, w->key) < 0 || free_and_strdup(&row.company_id, agent->company_id) < 0 ||
                    free_and_strdup(&row.issue_id, issue_id) < 0 || free_and_strdup(&row.created_at, now) < 0)
                        return -ENOMEM;
        }
        row.status = WORKSPACE_ACTIVE;
        if (free_and_strdup(&row.run_id, run->id) < 0 || free_and_strdup(&row.agent_id, agent->id) < 0 ||
            free_and_strdup(&row.repo, w->repo) < 0 || free_and_strdup(&row.path, w->path) < 0 ||
            free_and_strdup(&row.branch, w->branch) < 0 || free_and_strdup(&row.base_ref, w->base_ref) < 0 ||
            free_and_strdup(&row.status_reason, NULL) < 0 || free_and_strdup(&row.removed_at, NULL) < 0 ||
            free_and_strdup(&row.updated_at, now) < 0)
                return -ENOMEM;
        r = is_new ? store_insert(ctl->store, &workspace_entity, &row) : store_update(ctl->store, &workspace_entity, &row);
        if (r < 0)
                return r;
        r = store_commit(ctl->store);
        if (r < 0)
                return r;
        tx = NULL;
        return 0;
}

int workspace_for_run(Control *ctl, const Agent *agent, const Run *run, WorkspaceLaunch *ret, char **ret_error) {
        _cleanup_(workspace_launch_done) WorkspaceLaunch w = {};
        _cleanup_json_ cJSON *p = policy_of(ctl, agent), *ctx = cJSON_Parse(run->context_snapshot ?: "{}");
        _cleanup_(issue_donep) Issue issue = {};
        const char *issue_id = json_string_member(ctx, "issueId");
        int r;

        *ret = (WorkspaceLaunch){};
        if (!p || streq_ptr(json_string_member(p, "strategy"), "shared"))
                return 0;
        r = workspace_policy_check(p, "the workspace policy", ret_error);
        if (r < 0)
                return r;
        if (issue_id && store_get(ctl->store, &issue_entity, issue_id, &issue) < 0)
                issue_id = NULL; /* gone: the run works as one of no issue */
        w.on = true;
        w.key = issue_id ? strdup(issue_id) : strprintf("run-%s", run->id);
        w.repo = strdup(json_string_member(p, "repo"));
        w.base_ref = strdup(json_string_member(p, "baseRef") ?: WORKSPACE_DEFAULT_BASE_REF);
        if (!w.key || !w.repo || !w.base_ref)
                return -ENOMEM;
        w.path = strprintf("%s/" WORKSPACE_DIR "/%s", ctl->config->state_dir, w.key);
        if (!w.path)
                return -ENOMEM;
        if (issue_id) {
                /* A run of no issue works detached: it has no branch to keep. */
                _cleanup_free_ char *t =
                        strreplace(json_string_member(p, "branch") ?: WORKSPACE_DEFAULT_BRANCH, "{identifier}", issue.identifier);
                w.branch = t ? strreplace(t, "{issueId}", issue.id) : NULL;
                if (!w.branch)
                        return -ENOMEM;
                if (!branch_valid(w.branch))
                        return set_error(ret_error, -EINVAL, "the workspace's branch '%.200s' is not a branch name git accepts",
                                         w.branch);
        }
        r = record_use(ctl, agent, run, &w, issue_id, ret_error);
        if (r < 0)
                return r;
        *ret = w;
        w = (WorkspaceLaunch){};
        return 1;
}

char *workspace_context(const char *context_json, const WorkspaceLaunch *w) {
        _cleanup_json_ cJSON *ctx = cJSON_Parse(context_json ?: "{}");
        cJSON *o, *payload;

        if (!cJSON_IsObject(ctx)) {
                cJSON_Delete(ctx);
                ctx = cJSON_CreateObject();
        }
        o = cJSON_CreateObject();
        if (!ctx || !o || !cJSON_AddStringToObject(o, "path", w->path) || !cJSON_AddStringToObject(o, "repo", w->repo) ||
            !(w->branch ? cJSON_AddStringToObject(o, "branch", w->branch) : cJSON_AddNullToObject(o, "branch")) ||
            !cJSON_AddStringToObject(o, "baseRef", w->base_ref) || !cJSON_AddStringToObject(o, "strategy", "worktree")) {
                cJSON_Delete(o);
                return NULL;
        }
        payload = cJSON_GetObjectItemCaseSensitive(ctx, "paperclipWake");
        if (cJSON_IsObject(payload)) {
                cJSON_DeleteItemFromObjectCaseSensitive(payload, "workspace");
                cJSON_AddItemToObject(payload, "workspace", cJSON_Duplicate(o, true));
        }
        cJSON_DeleteItemFromObjectCaseSensitive(ctx, "workspace");
        cJSON_AddItemToObject(ctx, "workspace", o);
        return cJSON_PrintUnformatted(ctx);
}

char *workspace_file(const WorkspaceLaunch *w, int64_t owner_uid, int64_t owner_gid) {
        return run_workspace_file(w->repo, w->path, w->branch, w->base_ref, owner_uid, owner_gid);
}

/* ---- removing ---- */

typedef struct WorkspaceRemoval {
        Control *ctl;
        char *key;
        sd_event_source *child;
        struct WorkspaceRemoval *next;
} WorkspaceRemoval;

static WorkspaceRemoval *removal_free(WorkspaceRemoval *rm) {
        if (!rm)
                return NULL;
        sd_event_source_disable_unref(rm->child);
        free(rm->key);
        free(rm);
        return NULL;
}

static bool removal_running(Control *ctl, const char *key) {
        for (WorkspaceRemoval *rm = ctl->removals; rm; rm = rm->next)
                if (streq(rm->key, key))
                        return true;
        return false;
}

static void removal_unlink(Control *ctl, WorkspaceRemoval *rm) {
        for (WorkspaceRemoval **pp = &ctl->removals; *pp; pp = &(*pp)->next)
                if (*pp == rm) {
                        *pp = rm->next;
                        ctl->n_removals--;
                        return;
                }
}

/* Set the row's status, with an activity for an outcome. */
static int record_removal(Control *ctl, const char *key, WorkspaceStatus status, const char *reason) {
        _cleanup_(store_rollbackp) Store *tx = NULL;
        _cleanup_(workspace_donep) Workspace w = {};
        char now[ISO_TIME_MAX];
        int r;

        (void) iso_time_now(now);
        r = store_begin(ctl->store);
        if (r < 0)
                return r;
        tx = ctl->store;
        r = store_get(ctl->store, &workspace_entity, key, &w);
        if (r < 0)
                return r;
        w.status = status;
        if (free_and_strdup(&w.status_reason, reason) < 0 || free_and_strdup(&w.updated_at, now) < 0 ||
            free_and_strdup(&w.removed_at, status == WORKSPACE_REMOVED ? now : NULL) < 0)
                return -ENOMEM;
        r = store_update(ctl->store, &workspace_entity, &w);
        if (r < 0)
                return r;
        if (status == WORKSPACE_REMOVED || status == WORKSPACE_KEPT) {
                cJSON *d = cJSON_CreateObject();
                if (!d || !cJSON_AddStringToObject(d, "path", w.path) ||
                    !(w.branch ? cJSON_AddStringToObject(d, "branch", w.branch) : cJSON_AddNullToObject(d, "branch")) ||
                    (reason && !cJSON_AddStringToObject(d, "reason", reason))) {
                        cJSON_Delete(d);
                        return -ENOMEM;
                }
                r = activity_record(ctl->store, w.company_id, ACTOR_SYSTEM, "workspace",
                                    status == WORKSPACE_REMOVED ? "workspace.removed" : "workspace.kept", "workspace", w.key,
                                    w.agent_id, NULL, d);
                if (r < 0)
                        return r;
        }
        r = store_commit(ctl->store);
        if (r < 0)
                return r;
        tx = NULL;
        return 0;
}

static int start_removal(Control *ctl, const Workspace *w);

/* What a prune queued, while there is room. */
static void start_queued(Control *ctl) {
        while (ctl->prune_queue && ctl->prune_queue[0] && ctl->n_removals < WORKSPACE_REMOVALS_MAX) {
                _cleanup_(workspace_donep) Workspace w = {};
                _cleanup_free_ char *key = ctl->prune_queue[0];

                memmove(ctl->prune_queue, ctl->prune_queue + 1, strv_length(ctl->prune_queue) * sizeof(char *));
                if (store_get(ctl->store, &workspace_entity, key, &w) >= 0 && w.status != WORKSPACE_REMOVED)
                        (void) start_removal(ctl, &w);
        }
        if (ctl->prune_queue && !ctl->prune_queue[0])
                ctl->prune_queue = strv_free(ctl->prune_queue);
}

static void on_removed(RunWorkspaceRemoved outcome, const char *output, void *userdata) {
        WorkspaceRemoval *rm = userdata;
        Control *ctl = rm->ctl;
        _cleanup_free_ char *reason = NULL;

        /* Kept: uncommitted work (what git status lists), or a branch that cannot go back (what
         * git said); a failure is kept too, and said, until a prune tries again. */
        if (outcome != RUN_WORKSPACE_REMOVED)
                reason = strprintf("%s%s", outcome == RUN_WORKSPACE_FAILED ? "its removal failed: " : "",
                                   isempty(output) ? "no reason given" : output);
        if (record_removal(ctl, rm->key, outcome == RUN_WORKSPACE_REMOVED ? WORKSPACE_REMOVED : WORKSPACE_KEPT, reason) < 0)
                log_warning("Workspace %s: cannot record its removal, the next sweep tries again.", rm->key);
        if (outcome == RUN_WORKSPACE_REMOVED)
                log_info("Workspace %s removed.", rm->key);
        else
                log_notice("Workspace %s kept: %s", rm->key, strna(reason));
        removal_unlink(ctl, rm);
        removal_free(rm);
        start_queued(ctl);
        (void) workspace_sweep(ctl, false); /* the next ones due */
}

static int start_removal(Control *ctl, const Workspace *w) {
        _cleanup_free_ char *log_path = NULL;
        WorkspaceRemoval *rm;
        int r;

        if (removal_running(ctl, w->key))
                return 0;
        log_path = strprintf("%s/" WORKSPACE_DIR "/.remove-%s.log", ctl->config->state_dir, w->key);
        rm = calloc(1, sizeof(WorkspaceRemoval));
        if (!log_path || !rm || !(rm->key = strdup(w->key))) {
                removal_free(rm);
                return -ENOMEM;
        }
        rm->ctl = ctl;
        (void) mkdir_parents_and_self(log_path, 0700);
        (void) rmdir(log_path);
        r = record_removal(ctl, w->key, WORKSPACE_REMOVING, NULL);
        if (r >= 0)
                r = run_workspace_remove(ctl->event, ctl->shim_path, w->repo, w->path, w->branch, log_path, on_removed, rm,
                                         &rm->child);
        if (r < 0) {
                removal_free(rm);
                return log_warning_errno(r, "Workspace %s: cannot start its removal, the next sweep tries again: %m", w->key);
        }
        rm->next = ctl->removals;
        ctl->removals = rm;
        ctl->n_removals++;
        log_info("Removing workspace %s (%s).", w->key, w->path);
        return 1;
}

/* Start removing the due workspaces of one list (store_workspaces_due()); with prune, those
 * without room yet are queued. */
static int remove_due(Control *ctl, const char *before, bool kept, bool prune) {
        Workspace *due;
        size_t n;
        int r, started = 0;

        r = store_workspaces_due(ctl->store, before, kept, 64, &due, &n);
        if (r < 0)
                return log_warning_errno(r, "Failed to list the workspaces to remove: %m");
        for (size_t i = 0; i < n; i++) {
                if (ctl->n_removals < WORKSPACE_REMOVALS_MAX) {
                        r = start_removal(ctl, &due[i]);
                        if (r > 0)
                                started++;
                } else if (prune && !removal_running(ctl, due[i].key) &&
                           !strv_contains((const char *const *) ctl->prune_queue, due[i].key)) {
                        /* Each once, as room is made: a kept one is not tried again and again. */
                        if (strv_push(&ctl->prune_queue, due[i].key) < 0)
                                break;
                        started++;
                }
        }
        entity_array_free(&workspace_entity, due, n);
        return started;
}

int workspace_sweep(Control *ctl, bool prune) {
        char before[ISO_TIME_MAX];
        int r, started;

        if (!ctl->shim_path || (!prune && ctl->n_removals >= WORKSPACE_REMOVALS_MAX))
                return 0;
        r = iso_time_format(now_usec() - (prune ? 0 : (int64_t) ctl->config->workspace_remove_delay_sec * USEC_PER_SEC), before);
        if (r < 0)
                return r;
        started = remove_due(ctl, before, false, prune);
        if (prune && started >= 0) {
                r = remove_due(ctl, before, true, true);
                started = r < 0 ? r : started + r;
        }
        return started;
}

void workspace_run_ended(Control *ctl, const char *run_id) {
        _cleanup_(workspace_donep) Workspace w = {};
        _cleanup_free_ char *key = strprintf("run-%s", run_id);

        if (key && store_get(ctl->store, &workspace_entity, key, &w) >= 0 && w.status == WORKSPACE_ACTIVE)
                (void) start_removal(ctl, &w);
}

void workspace_done(Control *ctl) {
        while (ctl->removals) {
                WorkspaceRemoval *rm = ctl->removals;
                ctl->removals = rm->next;
                /* The child goes on alone; its row says removing, which the next start takes up. */
                removal_free(rm);
        }
        ctl->n_removals = 0;
        ctl->prune_queue = strv_free(ctl->prune_queue);
}
