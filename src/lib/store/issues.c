/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Issue record rules.
 */
#include "store/issues.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"

static int set_time(char **field, const char *now) {
        return free_and_strdup(field, now);
}

static void clear(char **field) {
        free(*field);
        *field = NULL;
}

static void release_execution_lock(Issue *issue) {
        clear(&issue->execution_run_id);
        clear(&issue->execution_agent_id);
        clear(&issue->execution_locked_at);
}

static int apply_status_times(Issue *issue, const char *now) {
        int r = 0;

        if (issue->status == ISSUE_IN_PROGRESS && !issue->started_at)
                r = set_time(&issue->started_at, now);
        if (r < 0)
                return r;
        if (issue->status == ISSUE_DONE)
                r = set_time(&issue->completed_at, now);
        else
                clear(&issue->completed_at);
        if (r < 0)
                return r;
        if (issue->status == ISSUE_CANCELLED)
                r = set_time(&issue->cancelled_at, now);
        else
                clear(&issue->cancelled_at);
        return r;
}

int issue_apply_create_rules(Issue *issue, const char *now) {
        return apply_status_times(issue, now);
}

bool issue_assignee_changed(const Issue *a, const Issue *b) {
        return !streq_ptr(a->assignee_agent_id, b->assignee_agent_id) || !streq_ptr(a->assignee_user_id, b->assignee_user_id);
}

int issue_apply_update_rules(const Issue *before, Issue *after, bool status_given, const char *now) {
        bool reassigned = issue_assignee_changed(before, after);
        int r;

        /* Work in progress handed to someone else starts over from todo. */
        if (reassigned && !status_given && before->status == ISSUE_IN_PROGRESS)
                after->status = ISSUE_TODO;

        if (after->status != before->status) {
                r = apply_status_times(after, now);
                if (r < 0)
                        return r;
                if (after->status != ISSUE_IN_PROGRESS) {
                        clear(&after->checkout_run_id);
                        release_execution_lock(after);
                }
        }

        if (reassigned) {
                clear(&after->checkout_run_id);
                if (after->status != ISSUE_IN_PROGRESS)
                        release_execution_lock(after);
        }
        return 0;
}

bool issue_prefix_is_valid(const char *prefix) {
        size_t n;

        if (!prefix)
                return false;
        n = strlen(prefix);
        if (n < 1 || n > 10 || !isupper((unsigned char) prefix[0]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isupper((unsigned char) prefix[i]) && !isdigit((unsigned char) prefix[i]))
                        return false;
        return true;
}

int issue_prefix_from_name(const char *name, char **ret) {
        char buf[5];
        size_t n = 0;

        for (const char *p = name; p && *p && n < 4; p++) {
                unsigned char c = (unsigned char) *p;
                /* The prefix must start with a letter: skip leading digits. */
                if (isalpha(c) || (n > 0 && isdigit(c)))
                        if (c < 128)
                                buf[n++] = (char) toupper(c);
        }
        buf[n] = 0;
        *ret = strdup(n > 0 ? buf : "CRL");
        return *ret ? 0 : -ENOMEM;
}

cJSON *issue_reopen_details(const Issue *issue, IssueStatus from, const char *source) {
        cJSON *d = cJSON_CreateObject();

        if (!d)
                return NULL;
        cJSON_AddStringToObject(d, "identifier", issue->identifier);
        cJSON_AddStringToObject(d, "status", "todo");
        cJSON_AddBoolToObject(d, "reopened", true);
        cJSON_AddStringToObject(d, "reopenedFrom", issue_status_to_string(from));
        if (source)
                cJSON_AddStringToObject(d, "source", source);
        return d;
}

bool issue_status_is_closed(IssueStatus s) {
        return s == ISSUE_DONE || s == ISSUE_CANCELLED;
}
